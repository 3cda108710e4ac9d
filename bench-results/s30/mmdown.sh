#!/bin/bash
# session 30: mismatch, D CUBIC downloads in one fresh lab (after U uploads), per flow: Mbit/s,
# the sender's retransmissions, where packets were dropped (the RP's htb classes, each link
# emulator's rate queue = its tbf tail drops, per direction) and the machine's CPU pressure
cd ${TREE:-/work/main}; U=${U:-0}; D=${D:-4}; K=${K:-2}
cat > /tmp/s30-mm.toml <<T
[[links]]
rate = "20mbit"
delay = "10ms"
[[links]]
rate = "20mbit"
delay = "60ms"
T
psi() { sed -n 's/^some .*total=\([0-9]*\)/\1/p' /proc/pressure/cpu; }
drops() { # RP class drops (wan), emulator queue drops per isp and direction
  e=""; for k in 1 2; do e="$e isp$k:$(ip netns exec mp-$L-isp$k build/native/linkem --ctl-send mpctl-linkem get | python3 -c 'import json,sys; j=json.load(sys.stdin); print(" ".join("%s q%d s%d late%d/%dus" % (d, j[d]["stats"]["dropped_queue"], j[d]["stats"]["dropped_socket"], j[d]["stats"]["late_packets"], j[d]["stats"]["late_max_us"]) for d in ("up", "down")))')"; done
  echo "$e | rp drops $(bin/mpctl status -i $L-rp --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("drops"))')"
}
for k in $(seq 1 $K); do
  L=${P:-s30d}$k
  bin/mpctl lab down --name $L >/dev/null 2>&1
  T0=$(date +%s.%N)
  MPCTL_CC_TRACE=${TR:-/tmp/s30/tr}/$L bin/mpctl lab up --name $L --scenario /tmp/s30-mm.toml > /dev/null || exit 1
  sleep 2.5
  ip netns exec mp-$L-server iperf3 -s -D; sleep 0.3
  for i in $(seq 1 $((U + D))); do
    R=""; snd=client; [ $i -gt $U ] && R="-R" && snd=server
    S=$(date +%s.%N)
    ip netns exec mp-$L-$snd nstat -n
    d0=$(drops); p0=$(psi)
    r=$(ip netns exec mp-$L-client iperf3 -c 203.0.113.2 -t 10 -O 2 -C ${CC:-cubic} $R -f m 2>&1 | grep -E "receiver" | awk '{print $7}')
    p1=$(psi); E=$(date +%s.%N)
    n=$(ip netns exec mp-$L-$snd nstat | awk '/TcpRetransSegs|TCPDSACKRecv |TCPTimeouts|Undo|Reorder|TCPLostRetransmit|TCPFastRetrans /{printf "%s %s ", $1, $2}')
    echo "lab $k flow $i ${R:-up} at $(echo "$S - $T0" | bc) s: $r Mbit/s $n psi $(echo "scale=1; ($p1 - $p0) / (($E - $S) * 10000)" | bc) %"
    echo "   before: $d0"; echo "   after:  $(drops)"
    sleep 2
  done
  for r in lp rp; do bin/mpctl status -i $L-$r --json > ${TR:-/tmp/s30/tr}/$L-$r-status.json; done
  bin/mpctl lab down --name $L > /dev/null
done
