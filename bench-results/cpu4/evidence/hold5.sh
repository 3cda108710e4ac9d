#!/bin/bash
# one lock hold: bench cpu bond100 (UDP 100 Mbit/s through 2 unshaped links), main then branch then main then branch, 2 windows each
for i in 1 2; do
  for t in base:/work/wt-cpu4-base cpu4:/work/wt-cpu4; do
    cd ${t#*:} && bin/mpctl lab bench cpu --only bond100 --runs 2 --out /tmp/cpu4/b100-${t%%:*}-$i > /dev/null 2>&1
    echo "== ${t%%:*} round $i"; grep -A1 "through the bond (2 unshaped links): [LR]P" /tmp/cpu4/b100-${t%%:*}-$i/summary.txt
  done
done
