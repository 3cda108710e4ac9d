import json, sys
# per-link 500 ms buckets of an MPCTL_CC_TRACE file: packets, lost, max queue, max planned, cap, rate
rows = [json.loads(l) for l in open(sys.argv[1])]
B = int(sys.argv[2]) if len(sys.argv) > 2 else 500
b = {}
for r in rows:
    k = (r['t'] // B, r['l'])
    x = b.setdefault(k, {'pk': 0, 'lost': 0, 'q': 0, 'cap': 0, 'rate': 0, 'pl': 0, 'ph': ''})
    x['pk'] += r['pk']; x['lost'] += r['lost']; x['q'] = max(x['q'], r['q']); x['cap'] = r['cap']; x['rate'] = r['rate']; x['pl'] = max(x['pl'], r['pl']); x['ph'] = r['ph']
for t in sorted(set(k[0] for k in b)):
    line = []
    for l in range(16):
        x = b.get((t, l))
        if x and x['pk'] > 20: line.append(f"L{l} pk {x['pk']:4d} lost {x['lost']:3d} q {x['q']:5.1f} pl {x['pl']:5.1f} cap {x['cap']:4.1f} r {x['rate']:4.1f} {x['ph']}")
    if line: print(f"{t * B / 1000:6.1f}", ' | '.join(line))
