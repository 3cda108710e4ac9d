#!/bin/bash
# session 27: 300+80 trace: one flow, full cc of both links every second, emulator health after
L=${L:-s27a}; cd /work/main
cat > /tmp/s27-300.toml <<T
[[links]]
rate = "${R1:-300}mbit"
delay = "10ms"
queue = "60ms"
[[links]]
rate = "${R2:-80}mbit"
delay = "30ms"
queue = "60ms"
T
bin/mpctl lab down --name $L >/dev/null 2>&1
bin/mpctl lab up --name $L --scenario /tmp/s27-300.toml $EXTRA > /dev/null || exit 1
sleep 2
ip netns exec mp-$L-server iperf3 -s -D
sleep 0.5
for rep in $(seq 1 ${REPS:-1}); do
for cc in ${CCS:-cubic bbr}; do for dir in ${DIRS:-up down}; do
  R=""; role=lp; [ $dir = down ] && R="-R" && role=rp
  ( for i in $(seq 1 ${NS:-12}); do sleep ${SI:-1}; bin/mpctl status -i $L-$role --json 2>/dev/null | python3 -c "
import json,sys
s=json.load(sys.stdin)
def f(l):
  c=l.get('cc') or {}
  return f\"{l['id']}: rate {l['rateBps']/1e6:.0f} bw {c.get('bwBps',0)/1e6:.0f} dlv {c.get('deliveryBps',0)/1e6:.0f} q {c.get('queueMs',0):.1f} loss {c.get('lossPct',0):.2f} {c.get('phase','')} sh {(l.get('shapeBps') or 0)/1e6:.0f} owd {l['owdUs']/1000:.1f}\"
d={k:v for k,v in s.get('drops',{}).items() if v}
print('  $role', ' | '.join(f(l) for l in s['links']), d)
"; done ) &
  SP=$!
  echo "== $cc $dir"
  bin/mpctl lab status --name $L --json > /tmp/s27-ls0.json
  c0=($(head -1 /proc/stat))
  ip netns exec mp-$L-client iperf3 -c 203.0.113.2 -t 12 -C $cc $R -f m 2>&1 | grep -E "sender|receiver"
  c1=($(head -1 /proc/stat))
  bin/mpctl lab status --name $L --json > /tmp/s27-ls1.json
  python3 -c "a=[int(x) for x in '${c0[*]:1}'.split()]; b=[int(x) for x in '${c1[*]:1}'.split()]; d=[y-x for x,y in zip(a,b)]; t=sum(d); print(f'  cpu: idle {100*d[3]/t:.0f} %, softirq {100*d[6]/t:.0f} %, user {100*d[0]/t:.0f} %, sys {100*d[2]/t:.0f} %')" 
  python3 /work/main/bench-results/s27/emdiff.py /tmp/s27-ls0.json /tmp/s27-ls1.json
  wait $SP
done; done; done
bin/mpctl lab down --name $L > /dev/null
