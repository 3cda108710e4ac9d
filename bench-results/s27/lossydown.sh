#!/bin/bash
# session 27: `lossy` (20/10 + 20/10 with 2 % loss) downloads in one fresh lab of the defaults:
# N CUBIC flows, the RP's links (rate, estimate, random loss, flags) after each
L=${L:-s27l}; cd ${TREE:-/work/main}; N=${N:-5}
cat > /tmp/s27-lossy.toml <<T
[[links]]
rate = "20mbit"
delay = "10ms"
[[links]]
rate = "20mbit"
delay = "10ms"
loss = "2%"
T
bin/mpctl lab down --name $L >/dev/null 2>&1
bin/mpctl lab up --name $L --scenario /tmp/s27-lossy.toml $EXTRA > /dev/null || exit 1
sleep 1
ip netns exec mp-$L-server iperf3 -s -D; sleep 0.3
st() { bin/mpctl status -i $L-rp --json | python3 -c "
import json,sys; s=json.load(sys.stdin)
for l in s['links']:
  c=l.get('cc') or {}
  print(f\"  rp {l['id']}: rate {l['rateBps']/1e6:.1f} bw {c.get('bwBps',0)/1e6:.1f} {c.get('phase')} rloss {c.get('randomLossPct',0):.2f} % depth {c.get('depthMs')} tx {l['tx']['packets']}\")
print('  drops', {k:v for k,v in s['drops'].items() if v})"; }
# UPS: CUBIC uploads first, as the bench runs them (its downloads come after six)
for i in $(seq 1 ${UPS:-0}); do
  ip netns exec mp-$L-client iperf3 -c 203.0.113.2 -t 10 -O 2 -C ${CC:-cubic} -f m 2>&1 | grep -E "receiver" | sed 's/^/  up: /'
  sleep 2
done
for i in $(seq 1 $N); do
  st
  ip netns exec mp-$L-server nstat -n
  ip netns exec mp-$L-client iperf3 -c 203.0.113.2 -t 10 -O 2 -C ${CC:-cubic} -R -f m 2>&1 | grep -E "receiver"
  ip netns exec mp-$L-server nstat | grep -E "TcpRetransSegs|TCPSackRecovery |TCPDSACKRecv " | tr -s ' ' | tr '\n' ' '; echo
  sleep 2
done
st
[ -n "$KEEP" ] || bin/mpctl lab down --name $L > /dev/null
