#!/usr/bin/env bash
# The last step of action.yml: fail when the plan failed (or never ran), and on changes when
# QATLAN_ACTION_FAIL_ON_CHANGES is true. Runs after the state was saved and the plan uploaded.
set -euo pipefail
case "${QATLAN_ACTION_EXITCODE:-}" in
  0) echo "qatlan: in sync" ;;
  2) echo "qatlan: changes present (drift)"
     [ "${QATLAN_ACTION_FAIL_ON_CHANGES:-false}" != "true" ] || exit 1 ;;
  "") echo "::error::qatlan plan did not run"; exit 1 ;;
  *) echo "::error::qatlan plan failed (exit ${QATLAN_ACTION_EXITCODE}); see the plan step's log"; exit 1 ;;
esac
