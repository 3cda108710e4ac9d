#!/usr/bin/env bash
# UDP 18.74 Mbit/s (50 % of 2x20 on the wire) for 10 s, the first flow on a fresh bond with 1 % loss on each link,
# no warm-up omitted; upload then download, each in its own fresh lab. Run in a worktree: bash /tmp/fec-fresh.sh <tag>
set -u
tag=$1
echo '{"links":[{"rate":"20mbit","delay":"10ms","loss":"1%"},{"rate":"20mbit","delay":"10ms","loss":"1%"}]}' > /tmp/fec-lossy-scn.json
for dir in up down; do
  lab=fecfr$tag
  bin/mpctl lab up -n $lab -s /tmp/fec-lossy-scn.json > /tmp/fec-fresh-$tag-$dir.up.log 2>&1 || { echo "lab up failed"; cat /tmp/fec-fresh-$tag-$dir.up.log | tail -5; }
  ip netns exec mp-$lab-server iperf3 -s -1 -D
  sleep 0.5
  R=""; [ $dir = down ] && R="-R"
  ip netns exec mp-$lab-client iperf3 -c 203.0.113.2 -u -b 18740000 -l 1400 -t 10 $R --json > /tmp/fec-fresh-$tag-$dir.json 2>/dev/null
  python3 -c "
import json,sys;d=json.load(open('/tmp/fec-fresh-$tag-$dir.json'));s=d['end']['sum']
print('$tag $dir lost %d of %d = %.3f %%' % (s['lost_packets'], s['packets'], s['lost_percent']))
" 2>&1 | tee -a /tmp/fec-fresh-results.txt
  ip netns exec mp-$lab-lp bin/mpctl status --instance $lab-lp --json > /tmp/fec-fresh-$tag-$dir.lp.json 2>/dev/null
  ip netns exec mp-$lab-rp bin/mpctl status --instance $lab-rp --json > /tmp/fec-fresh-$tag-$dir.rp.json 2>/dev/null
  bin/mpctl lab down --name $lab > /dev/null 2>&1
done
