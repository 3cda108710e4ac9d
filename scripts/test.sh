#!/usr/bin/env bash
# Installs and builds what is missing, then runs every test (unit, BPF, lab end-to-end) with
# node's test runner. Tests make their own per-run namespaces and remove them, even on failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# Two files at a time, the unit files first (scripts/run-tests.mjs: order, concurrency, report)
exec node --import tsx scripts/run-tests.mjs "$@"
