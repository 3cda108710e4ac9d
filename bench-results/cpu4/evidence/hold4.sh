#!/bin/bash
# one lock hold: three idle 3-link labs side by side (order: branch, branch without the literal lookup, base)
cd /work/wt-cpu4 && bin/mpctl lab up --name c4n --links 3 > /tmp/cpu4/up4-c4n.log 2>&1
cd /work/wt-cpu4-x && bin/mpctl lab up --name c4x --links 3 > /tmp/cpu4/up4-c4x.log 2>&1
cd /work/wt-cpu4-base && bin/mpctl lab up --name c4b --links 3 > /tmp/cpu4/up4-c4b.log 2>&1
sleep 55
for w in 1 2; do /tmp/cpu4/measure.sh 45 c4n c4x c4b | sed "s/^/w$w /"; cat /proc/loadavg; done
for l in c4n c4b; do P=$(pgrep -f /run/mpctl/lab/$l/lp.toml | head -1); perf record -e cpu-clock -F 1000 -g -p $P -o /tmp/cpu4/h4-perf-$l.data -- sleep 20 > /dev/null 2>&1 & done; wait
cd /work/wt-cpu4 && for l in c4n c4x c4b; do bin/mpctl lab down --name $l; done
