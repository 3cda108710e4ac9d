#!/usr/bin/env python3
# session 31: the controller traces of the flows a MPCTL_BENCH_KEEP directory holds, cut to each
# flow's own seconds: per portal, per link, B ms buckets (packets, lost, max queue, max planned
# backlog, plan cap, pacing rate, phase). Usage: flowtrace.py <keep dir> [max Mbit/s] [B ms]
import glob, json, sys
d = sys.argv[1]
lim = float(sys.argv[2]) if len(sys.argv) > 2 else 1e9
B = int(sys.argv[3]) if len(sys.argv) > 3 else 500
traces = []
for fn in glob.glob(f'{d}/cc.*.jsonl'):
    lines = [json.loads(l) for l in open(fn) if l.strip()]
    if not lines or 'wallMs' not in lines[0]: continue
    h = lines[0]
    role = 'rp' if h['argv'].startswith('up remote') else 'lp'
    traces.append((role, h['wallMs'] - h['t'], lines[1:], fn))
for l in open(f'{d}/flows.jsonl'):
    f = json.loads(l)
    if f['mbit'] > lim: continue
    print(f"== {f['lab']} {f['cc']} {f['dir']} {f['mbit']} Mbit/s, {f['retransmits']} retransmits, drops {f.get('drops')}")
    print('   intervals', f['intervals'])
    for role, w0, rows, fn in traces:
        b = {}
        for r in rows:
            w = w0 + r['t']
            if w < f['startMs'] or w > f['endMs']: continue
            k = ((w - f['startMs']) // B, r['l'])
            x = b.setdefault(k, {'pk': 0, 'lost': 0, 'q': 0, 'cap': 0, 'rate': 0, 'pl': 0, 'ph': '', 'dlv': 0})
            x['pk'] += r['pk']; x['lost'] += r['lost']; x['q'] = max(x['q'], r['q']); x['cap'] = r['cap']; x['rate'] = r['rate']; x['pl'] = max(x['pl'], r['pl']); x['ph'] = r['ph']; x['dlv'] = max(x['dlv'], r['dlv'])
        if not b: continue
        print(f'  {role} ({fn.split("/")[-1]})')
        for t in sorted(set(k[0] for k in b)):
            line = []
            for ln in range(16):
                x = b.get((t, ln))
                if x: line.append(f"L{ln} pk {x['pk']:4d} lost {x['lost']:3d} q {x['q']:5.1f} pl {x['pl']:5.1f} cap {x['cap']:4.1f} r {x['rate']:5.1f} d {x['dlv']:5.1f} {x['ph']}")
            print(f"   {t * B / 1000:5.1f}", ' | '.join(line))
