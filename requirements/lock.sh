#!/usr/bin/env bash
# Regenerates requirements/lock.txt: every package (with hashes) that `pip install -e '.[test]'`
# needs, at the newest versions pyproject.toml allows, for Python 3.11 on any platform.
# uv does the resolving from a throwaway venv; it is not a dependency of qatlan.
#
#   requirements/lock.sh                      # after changing dependencies in pyproject.toml
#   requirements/lock.sh --upgrade-package httpx   # arguments go to `uv pip compile`
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${QATLAN_LOCK_TOOLS:-.floors/tools}
[ -x "$tools/bin/uv" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q uv; }
"$tools/bin/uv" pip compile -q pyproject.toml --extra test --generate-hashes --universal \
  --python-version 3.11 --custom-compile-command "requirements/lock.sh" \
  -o requirements/lock.txt "$@"
