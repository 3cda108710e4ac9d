#!/bin/bash
# session 26: 300+80 in a lab of the defaults (routed hosts, shaping; EXTRA="--no-shape" for the
# other side): one flow each way per CC, the sending portal's links every second
L=${L:-s26a}; cd /work/wt-shdef
cat > /tmp/s26-300.toml <<T
[[links]]
rate = "300mbit"
delay = "10ms"
queue = "60ms"
[[links]]
rate = "80mbit"
delay = "30ms"
queue = "60ms"
T
bin/mpctl lab down --name $L >/dev/null 2>&1
bin/mpctl lab up --name $L --scenario /tmp/s26-300.toml $EXTRA > /dev/null || exit 1
sleep 2
ip netns exec mp-$L-server iperf3 -s -D
sleep 0.5
for cc in ${CCS:-cubic bbr}; do for dir in ${DIRS:-up down}; do
  R=""; role=lp; [ $dir = down ] && R="-R" && role=rp
  ( [ -n "$NOSTATUS" ] && exit 0; for i in $(seq 1 13); do sleep 1; bin/mpctl status -i $L-$role --json 2>/dev/null | python3 -c "
import json,sys
s=json.load(sys.stdin)
print('  $role', ' | '.join(f\"{l['id']}: tx {l['tx']['bytes']*8/1e6:.0f}Mb rate {l['rateBps']/1e6:.0f} bw {(l.get('cc') or {}).get('bwBps',0)/1e6:.0f} dlv {(l.get('cc') or {}).get('deliveryBps',0)/1e6:.0f} q {(l.get('cc') or {}).get('queueMs',0):.1f} {(l.get('cc') or {}).get('phase','')} sh {(l.get('shapeBps') or 0)/1e6:.0f} owd {l['owdUs']/1000:.1f}\" for l in s['links']))
"; done ) &
  SP=$!
  echo "== $cc $dir"
  c0=($(head -1 /proc/stat))
  ip netns exec mp-$L-client iperf3 -c 203.0.113.2 -t 12 -C $cc $R -f m 2>&1 | grep -E "sender|receiver"
  c1=($(head -1 /proc/stat))
  python3 -c "a=[int(x) for x in '${c0[*]:1}'.split()]; b=[int(x) for x in '${c1[*]:1}'.split()]; d=[y-x for x,y in zip(a,b)]; t=sum(d); print(f'  cpu: idle {100*d[3]/t:.0f} %, softirq {100*d[6]/t:.0f} %, user {100*d[0]/t:.0f} %, sys {100*d[2]/t:.0f} %')" 
  wait $SP
done; done
bin/mpctl lab down --name $L > /dev/null
