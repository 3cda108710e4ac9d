#!/bin/bash
# session 29: mismatch, U CUBIC uploads then D CUBIC downloads in one fresh lab (as the bench
# orders them), both portals' controllers traced; per flow: Mbit/s, sender's retransmissions
cd ${TREE:-/work/main}; U=${U:-3}; D=${D:-3}; K=${K:-2}
cat > /tmp/s29-mm.toml <<T
[[links]]
rate = "20mbit"
delay = "10ms"
[[links]]
rate = "20mbit"
delay = "60ms"
T
for k in $(seq 1 $K); do
  L=${P:-s29q}$k
  bin/mpctl lab down --name $L >/dev/null 2>&1
  T0=$(date +%s.%N)
  MPCTL_CC_TRACE=/tmp/s29/tr/$L bin/mpctl lab up --name $L --scenario /tmp/s29-mm.toml > /dev/null || exit 1
  sleep 2.5
  ip netns exec mp-$L-server iperf3 -s -D; sleep 0.3
  for i in $(seq 1 $((U + D))); do
    R=""; snd=client; [ $i -gt $U ] && R="-R" && snd=server
    S=$(date +%s.%N)
    ip netns exec mp-$L-$snd nstat -n
    r=$(ip netns exec mp-$L-client iperf3 -c 203.0.113.2 -t 10 -O 2 -C ${CC:-cubic} $R -f m 2>&1 | grep -E "receiver" | awk '{print $7}')
    n=$(ip netns exec mp-$L-$snd nstat | awk '/TcpRetransSegs|TCPDSACKRecv |TCPTimeouts/{printf "%s %s ", $1, $2}')
    echo "lab $k flow $i ${R:-up} at $(echo "$S - $T0" | bc) s: $r Mbit/s $n"
    sleep 2
  done
  for r in lp rp; do bin/mpctl status -i $L-$r --json > /tmp/s29/tr/$L-$r-status.json; done
  bin/mpctl lab down --name $L > /dev/null
done
