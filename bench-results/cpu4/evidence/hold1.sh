#!/bin/bash
# one lock hold: two idle 3-link labs (base tree, branch tree), split + perf + strace
set -x
cd /work/wt-cpu4-base && bin/mpctl lab up --name c4b --links 3 > /tmp/cpu4/up-c4b.log 2>&1
cd /work/wt-cpu4 && bin/mpctl lab up --name c4n --links 3 > /tmp/cpu4/up-c4n.log 2>&1
sleep 60
/tmp/cpu4/measure.sh 60 c4b c4n > /tmp/cpu4/${TAG}-split.txt 2>&1
LP=$(pgrep -f /run/mpctl/lab/c4b/lp.toml | head -1); RP=$(pgrep -f /run/mpctl/lab/c4b/rp.toml | head -1)
perf record -e cpu-clock -F 1000 -g -p $LP -o /tmp/cpu4/${TAG}-perf-lp.data -- sleep 20 > /dev/null 2>&1 &
perf record -e cpu-clock -F 1000 -g -p $RP -o /tmp/cpu4/${TAG}-perf-rp.data -- sleep 20 > /dev/null 2>&1 &
wait
timeout -s INT 20 strace -c -f -p $LP -o /tmp/cpu4/${TAG}-strace-lp.txt &
timeout -s INT 20 strace -c -f -p $RP -o /tmp/cpu4/${TAG}-strace-rp.txt &
wait
cd /work/wt-cpu4 && bin/mpctl lab down --name c4b; bin/mpctl lab down --name c4n
