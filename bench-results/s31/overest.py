#!/usr/bin/env python3
# session 31: per flow of a keep directory, per portal and link: how long (s) the controller's
# estimate stood above LIMIT Mbit/s (the links' real rate × 1.25), its highest value, and the
# largest unplanned queue meanwhile. Usage: overest.py <keep dir> [limit Mbit/s]
import glob, json, sys
d = sys.argv[1]; lim = float(sys.argv[2]) if len(sys.argv) > 2 else 25
traces = []
for fn in glob.glob(f'{d}/cc.*.jsonl'):
    ls = [json.loads(l) for l in open(fn) if l.strip()]
    if not ls or 'wallMs' not in ls[0]: continue
    traces.append(('rp' if ls[0]['argv'].startswith('up remote') else 'lp', ls[0]['wallMs'] - ls[0]['t'], ls[1:]))
for l in open(f'{d}/flows.jsonl'):
    f = json.loads(l)
    if f['lab'].endswith('_a'): continue
    out = []
    for role, w0, rows in traces:
        per = {}
        for r in rows:
            w = w0 + r['t']
            if not (f['startMs'] <= w <= f['endMs']) or r['bw'] <= lim: continue
            x = per.setdefault(r['l'], [0, 0, 0])
            x[0] += 1; x[1] = max(x[1], r['bw']); x[2] = max(x[2], r['q'])
        for ln, (n, bw, q) in sorted(per.items()):
            out.append(f"{role} L{ln} {n * 0.02:.1f} s at up to {bw} Mbit/s, queue up to {q} ms")
    print(f"{f['cc']} {f['dir']} {f['mbit']:6.2f} Mbit/s {f['retransmits']:4d} retr | {'; '.join(out)}")
