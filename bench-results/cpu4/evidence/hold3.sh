#!/bin/bash
# one lock hold: idle 3-link labs side by side, base (main 748b416) vs branch cpu4; 60 s settle, windows of 45 s
cd /work/wt-cpu4-base && bin/mpctl lab up --name c4b --links 3 > /tmp/cpu4/up3-c4b.log 2>&1
cd /work/wt-cpu4 && bin/mpctl lab up --name c4n --links 3 > /tmp/cpu4/up3-c4n.log 2>&1
sleep 60
for w in 1 2 3; do /tmp/cpu4/measure.sh 45 c4b c4n | sed "s/^/w$w /"; cat /proc/loadavg; done
cd /work/wt-cpu4 && bin/mpctl lab down --name c4b; bin/mpctl lab down --name c4n
