#!/usr/bin/env bash
# The plan step of action.yml: `qatlan plan --detailed-exitcode --markdown --out`, then the
# plan's checksum and base serial as step outputs (for the comment's marker). Always exits 0:
# the exit code is an output, so that the state is saved and the plan uploaded even on drift;
# result.sh fails the action afterwards when it should.
#   QATLAN_ACTION_CONFIG  qatlan.toml        QATLAN_ACTION_STATE  the state database
#   QATLAN_ACTION_OUT     folder for plan.json and comment.md
#   QATLAN_ACTION_ARGS    more arguments for `qatlan plan` (split on blanks, quotes honoured)
set -uo pipefail
out="${QATLAN_ACTION_OUT:-qatlan-plan}"
mkdir -p "$out" "$(dirname "${QATLAN_ACTION_STATE:-state/qatlan.db}")"
rm -f "$out/plan.json" "$out/comment.md"
# split like a shell would, without running anything the string holds
mapfile -t extra < <(python3 -c 'import os, shlex; [print(a) for a in shlex.split(os.environ.get("QATLAN_ACTION_ARGS", ""))]')
qatlan plan --config "${QATLAN_ACTION_CONFIG:-qatlan.toml}" --state "${QATLAN_ACTION_STATE:-state/qatlan.db}" \
  --detailed-exitcode --markdown --out "$out/plan.json" "${extra[@]}" > "$out/comment.md"
code=$?
echo "exitcode=$code" >> "$GITHUB_OUTPUT"
if [ -s "$out/plan.json" ]; then
  echo "plan-file=$out/plan.json" >> "$GITHUB_OUTPUT"
  python3 - "$out/plan.json" >> "$GITHUB_OUTPUT" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
print(f"checksum={doc['checksum']}")
print(f"serial={doc['plan']['base']['serial']}")
PY
  qatlan show "$out/plan.json" || true   # the full plan, in the job's log
fi
echo "qatlan plan exited $code (0 in sync, 2 changes present, 1 error)"
exit 0
