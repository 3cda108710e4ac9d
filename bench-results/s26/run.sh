#!/bin/bash
# session 26: the bonding reports rerun with the lab's new defaults (routed hosts, shaping portals)
cd /work/wt-shdef
for s in "$@"; do
  echo "== $s $(date +%T)"
  flock -o /tmp/mpctl-heavy.lock bin/mpctl lab bench "$s" 2>&1 | tail -3
  echo "== $s done $(date +%T)"
done
echo ALLDONE
