#!/usr/bin/env bash
# Installs and builds what is missing, then runs every test (unit, BPF, lab end-to-end) with
# node's test runner. Tests make their own per-run namespaces and remove them, even on failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
if [ $# -eq 0 ]; then set -- test/*.test.ts; fi
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "$@"
