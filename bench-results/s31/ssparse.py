#!/usr/bin/env python3
# session 31: the data connection's TCP state over a flow (ss.sh's ss-N.txt): every 250 ms,
# cwnd, ssthresh, retransmissions (total), lost, reordering (degree), reord_seen, dsack_dups,
# and throughput from bytes_acked. Usage: ssparse.py ss-N.txt [bucket ms]
import re, sys
B = int(sys.argv[2]) if len(sys.argv) > 2 else 250
rows = []; t = None
for line in open(sys.argv[1]):
    if line.startswith('T '): t = int(line.split()[1]); continue
    kv = dict(re.findall(r'(\w+):([\d./]+)', line))
    if 'bytes_acked' not in kv or 'cubic' in line and False: continue
    rows.append((t, kv))
# the data connection: the socket with the most bytes sent at each sample
best = {}
for t, kv in rows:
    if t not in best or int(kv.get('bytes_sent', 0)) > int(best[t].get('bytes_sent', 0)): best[t] = kv
ts = sorted(best)
t0 = ts[0]; last = None; prev = None
for t in ts:
    kv = best[t]
    k = (t - t0) // B
    if k == last: continue
    last = k
    acked = int(kv.get('bytes_acked', 0))
    mbit = '' if prev is None else f"{(acked - prev[1]) * 8 / ((t - prev[0]) * 1000):6.1f}"
    prev = (t, acked)
    rt = kv.get('retrans', '0/0').split('/')[-1]
    print(f"{(t - t0) / 1000:6.2f} cwnd {kv.get('cwnd', ''):>4} ssth {kv.get('ssthresh', '-'):>4} retr {rt:>4} lost {kv.get('lost', '0'):>3} reord {kv.get('reordering', '3'):>3} seen {kv.get('reord_seen', '0'):>4} dsack {kv.get('dsack_dups', '0'):>4} unacked {kv.get('unacked', ''):>4} {mbit} Mbit/s")
