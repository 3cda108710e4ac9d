#!/bin/bash
# session 27: the portals' idle CPU in the lab of the defaults (routed hosts, shaping): utime+stime
# of each portal process over 60 s windows from 180 s after up, % of one core
L=${L:-s27c}; cd /work/main
bin/mpctl lab down --name $L >/dev/null 2>&1
bin/mpctl lab up --name $L $EXTRA > /dev/null || exit 1
pid() { ip netns pids mp-$L-$1 | while read p; do grep -q "portal\|mpctl" /proc/$p/cmdline 2>/dev/null && tr '\0' ' ' < /proc/$p/cmdline | grep -q node && echo $p; done | head -1; }
LP=$(pid lp); RP=$(pid rp); echo "lp $LP rp $RP"
t() { awk '{print $14+$15}' /proc/$1/stat; }
sleep ${SETTLE:-180}
for w in 1 2 3; do
  a=$(t $LP); b=$(t $RP); sleep 60; c=$(t $LP); d=$(t $RP)
  echo "window $w: lp $(echo "scale=2; ($c-$a)/60" | bc) % rp $(echo "scale=2; ($d-$b)/60" | bc) % (load1 $(cut -d' ' -f1 /proc/loadavg))"
done
tc_() { ip netns exec mp-$L-$1 tc class show | wc -l; }
echo "classes lp $(tc_ lp) rp $(tc_ rp)"
bin/mpctl lab down --name $L > /dev/null
