#!/usr/bin/env bash
# Installs and builds what is missing, then runs every test (unit, BPF, lab end-to-end) with
# node's test runner. Tests make their own per-run namespaces and remove them, even on failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# Two files at a time: the unit files side by side first; then the files that run a lab or
# portals, or measure time, each alone (they take test/helpers/serial.ts's lock), after them
if [ $# -eq 0 ]; then
  serial=$(grep -l "helpers/lab\|helpers/serial" test/*.test.ts)
  set -- $(grep -L "helpers/lab\|helpers/serial" test/*.test.ts) $serial
fi
exec node --import tsx --test --test-concurrency=2 --test-reporter=spec "$@"
