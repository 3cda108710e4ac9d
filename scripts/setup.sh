#!/usr/bin/env bash
# Installs what mpctl needs on Debian 12 and builds it. Idempotent, and quick when all is there.
# Sourced by scripts/demo.sh and scripts/test.sh; run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "mpctl setup: run as root (network namespaces, eBPF and apt need it)" >&2
  exit 1
fi

# Debian packages. What a portal needs to build and run (README "Deploying on two machines" lists
# the same; test/packaging.test.ts checks it):
PKGS=(git gcc make clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config bpftool iproute2 ethtool)
# and what the lab and the tests add: traffic, ping, tracepath and traceroute, nix-instantiate for flake.nix
TEST_PKGS=(iperf3 iputils-ping iputils-tracepath traceroute nix-bin)
missing=()
for p in "${PKGS[@]}" "${TEST_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js 20 or newer (Debian 12's own nodejs is 18: too old).
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "mpctl setup: Node.js >= 20 with npm is required (found: $(node -v 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm dependencies, only when package-lock.json changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# bpf/ and native/ (make: only what changed) and the TypeScript control plane.
make -s -C bpf
make -s -C native
npx tsc -p tsconfig.json && node scripts/source-stamp.mjs # dist/ and what it was built from (bin/mpctl)
log "ready: $(bin/mpctl --version)"
