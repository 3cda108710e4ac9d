#!/bin/bash
# session 28: `lte` BBR downloads in one fresh lab: N flows, both portals' links (random loss,
# mp_links flags: 1 no ACKs, 2 parity) after each
L=${L:-s28l}; cd ${TREE:-/work/main}; N=${N:-6}
cat > /tmp/s28-lte.toml <<T
[[links]]
label = "cable"
delay = "8ms"
up = { rate = "10mbit" }
down = { rate = "40mbit" }
[[links]]
label = "lte"
delay = "30ms"
jitter = "10ms"
loss = "0.5%"
up = { rate = "5mbit" }
down = { rate = "25mbit" }
T
bin/mpctl lab down --name $L >/dev/null 2>&1
bin/mpctl lab up --name $L --scenario /tmp/s28-lte.toml > /dev/null || exit 1
sleep 1
ip netns exec mp-$L-server iperf3 -s -D; sleep 0.3
st() { for r in lp rp; do bpftool map dump pinned /run/mpctl/bpf/$L-$r/mp_links -j | python3 -c "
import json,sys; d=json.load(sys.stdin)
print('  $r flags', [ e['formatted']['value'].get('flags') for e in d if e['formatted']['value'].get('state')], end=' ')"; bin/mpctl status -i $L-$r --json | python3 -c "
import json,sys; s=json.load(sys.stdin)
print('rloss', [round((l.get('cc') or {}).get('randomLossPct',0),2) for l in s['links']])"; done; }
for i in $(seq 1 $N); do
  st
  ip netns exec mp-$L-client iperf3 -c 203.0.113.2 -t 10 -O 2 -C ${CC:-bbr} -R -f m 2>&1 | grep -E "receiver"
  sleep 2
done
st
[ -n "$KEEP" ] || bin/mpctl lab down --name $L > /dev/null
