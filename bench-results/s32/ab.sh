#!/bin/bash
# session 32: one fresh mismatch lab (as the bench: 20 Mbit/10 ms + 20 Mbit/60 ms, 60 ms queues)
# of tree TREE, N CUBIC flows alternating up and down (10 s after a 2 s omit), the controllers
# traced: OUT/cc.*.jsonl and OUT/flows.jsonl as MPCTL_BENCH_KEEP writes them (losscause.py)
cd ${TREE:?}; N=${N:-8}; OUT=${OUT:?}; L=${L:-s32ab}; mkdir -p $OUT
cat > /tmp/$L.toml <<T
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
MPCTL_CC_TRACE=$OUT/cc bin/mpctl lab up --name $L --scenario /tmp/$L.toml > /dev/null || exit 1
sleep 8 # depth trains
ip netns exec mp-$L-server iperf3 -s -D; sleep 0.3
for i in $(seq 1 $N); do
  R=""; d=up; [ $((i % 2)) = 0 ] && R="-R" && d=down
  S=$(date +%s%3N)
  r=$(ip netns exec mp-$L-client iperf3 -c 203.0.113.2 -t 10 -O 2 -C ${CC:-cubic} $R -f m 2>&1 | grep -E "receiver" | awk '{print $7}')
  E=$(date +%s%3N)
  echo "{\"cc\":\"${CC:-cubic}\",\"dir\":\"$d\",\"startMs\":$S,\"endMs\":$E,\"mbit\":${r:-0},\"retransmits\":0,\"drops\":{}}" >> $OUT/flows.jsonl
  sleep 1
done
bin/mpctl lab down --name $L > /dev/null
