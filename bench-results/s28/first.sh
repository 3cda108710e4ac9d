#!/bin/bash
# session 27: a lab's first flows in `mismatch` (20/10 + 20/60): N CUBIC flows in one fresh lab,
# each with the LP's plan caps after it and the sender's retransmits / recoveries / DSACKs
L=${L:-s27m}; cd ${TREE:-/work/main}; N=${N:-5}; DIR=${DIR:-up}
cat > /tmp/s27-mm.toml <<T
[[links]]
rate = "20mbit"
delay = "10ms"
[[links]]
rate = "20mbit"
delay = "60ms"
T
bin/mpctl lab down --name $L >/dev/null 2>&1
bin/mpctl lab up --name $L --scenario /tmp/s27-mm.toml $EXTRA > /dev/null || exit 1
sleep ${SETTLE:-1}
ip netns exec mp-$L-server iperf3 -s -D; sleep 0.3
R=""; snd=client; role=lp; [ $DIR = down ] && R="-R" && snd=server && role=rp
caps() { bpftool map dump pinned /run/mpctl/bpf/$L-$role/mp_links -j | python3 -c "
import json,sys; d=json.load(sys.stdin)
print('  caps', [ (e['formatted']['value'].get('plan_cap_ms'), e['formatted']['value'].get('rate_bps')//1000000) for e in d if e['formatted']['value'].get('state')])"; }
for i in $(seq 1 $N); do
  caps
  ip netns exec mp-$L-$snd nstat -n
  ip netns exec mp-$L-client iperf3 -c 203.0.113.2 -t 12 -O 2 -C ${CC:-cubic} $R -f m 2>&1 | grep -E "receiver"
  ip netns exec mp-$L-$snd nstat | grep -E "TcpRetransSegs|TCPSackRecovery |TCPDSACKRecv |TCPSACKReorder|TCPTimeouts|TCPLossProbes " | tr -s ' ' | tr '\n' ' '; echo
  sleep 2
done
caps
[ -n "$KEEP" ] || bin/mpctl lab down --name $L > /dev/null
