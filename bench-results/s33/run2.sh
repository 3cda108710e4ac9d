#!/bin/bash
# one 2x20 lab, 30 s CUBIC flows each way x2 at 0.1 s intervals, controllers traced, drops per flow
set -u
cd "$(dirname "$0")/../.."
rm -f /tmp/dips/cc.*.jsonl /tmp/dips/st-*.json
export MPCTL_CC_TRACE=/tmp/dips/cc
bin/mpctl lab up -n dips -s bench-results/s33/2x20.json > /tmp/dips/up.log 2>&1 || { echo up failed; exit 1; }
sleep 15
bin/mpctl lab exec -n dips server -- iperf3 -s -D
sleep 1
n=0
for d in down up down up; do
  n=$((n+1))
  R=; [ $d = down ] && R=-R
  for r in lp rp; do bin/mpctl status -i dips-$r --json > /tmp/dips/st-$n-$r-a.json; done
  date +%s%3N > /tmp/dips/f$n.start
  bin/mpctl lab exec -n dips client -- iperf3 -c server -t 30 -i 0.1 $R -C cubic -J > /tmp/dips/f$n-$d.json
  for r in lp rp; do bin/mpctl status -i dips-$r --json > /tmp/dips/st-$n-$r-b.json; done
  sleep 2
done
bin/mpctl lab down -n dips
