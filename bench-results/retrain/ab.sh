#!/bin/bash
# alternate builds: ab.sh N wtA wtB ...
n=$1; shift
for i in $(seq 1 $n); do
  for w in "$@"; do
    flock -o /tmp/mpctl-heavy.lock node --import tsx "$(dirname "$0")/ab.mts" /work/wt-$w ${w:0:1}$i 2>&1 | grep -v "^\s*$"
  done
done
