#!/bin/bash
# alternate gain builds: 0.98 (wt-shape) and 1.0 (wt-g1), shaped, routed; CUBIC ↑↓↑↓, BBR ↑↓
while pgrep -f "lab bench mismatch" > /dev/null; do sleep 5; done
for i in 1 2; do
  for w in g1 shape; do
    echo "== $w $i"
    flock -o /tmp/mpctl-heavy.lock node --import tsx "$(dirname "$0")/ab.mts" /work/wt-$w on 1 2>&1 | grep -E "^on" | sed -E 's/, lp: .*//'
  done
done
echo done
