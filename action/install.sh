#!/usr/bin/env bash
# Step 1 of action.yml: install qatlan into its own venv and put it on PATH for later steps.
# By default from this action's own checkout (the repository at the ref named in `uses:`),
# with the committed lock; QATLAN_INSTALL names another pip requirement instead.
set -euo pipefail
venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/qatlan-venv"
python3 -m venv "$venv"
if [ -n "${QATLAN_INSTALL:-}" ]; then
  "$venv/bin/pip" install -q "$QATLAN_INSTALL"
else
  "$venv/bin/pip" install -q --require-hashes -r "$GITHUB_ACTION_PATH/requirements/lock.txt"
  "$venv/bin/pip" install -q --no-deps "$GITHUB_ACTION_PATH"
fi
echo "$venv/bin" >> "$GITHUB_PATH"
"$venv/bin/qatlan" --version
