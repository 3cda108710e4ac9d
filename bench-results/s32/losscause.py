#!/usr/bin/env python3
"""Per flow of a MPCTL_BENCH_KEEP dir: the link losses both portals' controllers saw while it
ran, split by when they were reported: during or within 150 ms after the link's probe-up phase
(p0) ended ("probe"), or otherwise ("other"). Usage: losscause.py <keep dir>"""
import json, glob, sys, collections

keep = sys.argv[1]
flows = [json.loads(l) for l in open(f'{keep}/flows.jsonl')]
per = collections.defaultdict(lambda: collections.Counter())
for f in sorted(glob.glob(f'{keep}/cc.*.jsonl')):
    lines = [json.loads(l) for l in open(f)]
    w0 = lines[0]['wallMs']
    role = 'rp' if 'remote' in lines[0]['argv'] else 'lp'
    p0end = {}
    prev = {}
    for r in lines[1:]:
        if 'l' not in r:
            continue
        l = r['l']
        if prev.get(l) == 'p0' and r['ph'] != 'p0':
            p0end[l] = r['t']
        prev[l] = r['ph']
        if r['lost'] == 0:
            continue
        w = w0 + r['t']
        i = next((i for i, x in enumerate(flows) if x['startMs'] <= w <= x['endMs'] + 200), None)
        if i is None:
            continue
        cause = 'probe' if r['ph'] == 'p0' or (l in p0end and r['t'] - p0end[l] <= 150) else 'other'
        per[i][f'{role} L{l} {cause}'] += r['lost']
tot = collections.Counter()
for i, x in enumerate(flows):
    if x.get('drops') is None:
        continue
    c = per.get(i, {})
    for k, v in c.items():
        tot[f"{x['cc']} {k}"] += v
    print(f"{i:2d} {x['cc']:5s} {x['dir']:4s} {x['mbit']:5.1f} Mbit/s retr {x['retransmits']:4d}  {dict(c)}")
print('total', dict(sorted(tot.items())))
