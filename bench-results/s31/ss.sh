#!/bin/bash
# session 31: mismatch (queue 60 ms, as the bench), N CUBIC flows (DIR up or down) in one fresh
# lab; the sender's TCP state (ss -tin: cwnd, ssthresh, retrans, reordering, dsack) every 20 ms,
# and the controllers traced (MPCTL_BENCH_KEEP-like: OUT/cc.*.jsonl, OUT/flows.txt)
cd ${TREE:-/work/main}; N=${N:-4}; OUT=${OUT:-/tmp/s31/ss}; L=${L:-s31ss}; mkdir -p $OUT
cat > /tmp/s31-mm.toml <<T
[[links]]
rate = "20mbit"
delay = "10ms"
queue = "60ms"
[[links]]
rate = "20mbit"
delay = "60ms"
queue = "60ms"
T
bin/mpctl lab down --name $L >/dev/null 2>&1
MPCTL_CC_TRACE=$OUT/cc bin/mpctl lab up --name $L --scenario /tmp/s31-mm.toml > /dev/null || exit 1
sleep 2.5
ip netns exec mp-$L-server iperf3 -s -D; sleep 0.3
for i in $(seq 1 $N); do
  R=""; snd=client; [ "${DIR:-up}" = down ] && R="-R" && snd=server
  ( end=$((SECONDS + 13)); while [ $SECONDS -lt $end ]; do echo "T $(date +%s%3N)"; ip netns exec mp-$L-$snd ss -tinH state established '( dport = 5201 or sport = 5201 )' | grep -o "cwnd.*" | grep bytes_sent; sleep 0.02; done ) > $OUT/ss-$i.txt &
  S=$(date +%s%3N)
  r=$(ip netns exec mp-$L-client iperf3 -c 203.0.113.2 -t 10 -O 2 -C ${CC:-cubic} $R -f m 2>&1 | grep -E "receiver" | awk '{print $7}')
  E=$(date +%s%3N)
  wait
  echo "flow $i ${R:-up} start $S end $E $r Mbit/s" | tee -a $OUT/flows.txt
  sleep 2
done
bin/mpctl lab down --name $L > /dev/null
