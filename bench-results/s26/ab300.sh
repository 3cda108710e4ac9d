#!/bin/bash
# 300+80, CUBIC upload: the lab's default (htb roots, here with open classes only) against --no-shape, alternating
for i in 1 2; do
  for x in "" "--no-shape"; do
    echo "### ${x:-default}"
    EXTRA="$x" NOSTATUS=1 CCS=cubic DIRS=up /work/wt-shdef/bench-results/s26/hi.sh 2>&1 | grep -E "sender|receiver|cpu"
  done
done
