# self time by function (and by file) of a .cpuprofile, samples after `skip` seconds only
import json, sys, collections
p = json.load(open(sys.argv[1])); skip = float(sys.argv[2]) if len(sys.argv) > 2 else 0
nodes = {n['id']: n for n in p['nodes']}
t = p['startTime']; selfc = collections.Counter(); files = collections.Counter(); total = 0
parent = {}
for n in p['nodes']:
    for c in n.get('children', []): parent[c] = n['id']
incl = collections.Counter()
for s, dt in zip(p['samples'], p['timeDeltas']):
    t += dt
    if (t - p['startTime']) / 1e6 < skip: continue
    n = nodes[s]; cf = n['callFrame']
    key = f"{cf['functionName'] or '(anon)'} {cf['url'].split('/')[-1]}:{cf['lineNumber']}"
    selfc[key] += dt; files[cf['url'].split('/dist/')[-1] if cf['url'] else cf['functionName']] += dt; total += dt
    seen = set(); x = s
    while x in nodes:
        cf = nodes[x]['callFrame']; k = f"{cf['functionName'] or '(anon)'} {cf['url'].split('/')[-1]}:{cf['lineNumber']}"
        if k not in seen: incl[k] += dt; seen.add(k)
        x = parent.get(x, None)
        if x is None: break
dur = (t - p['startTime']) / 1e6 - skip
print(f'window {dur:.0f} s, sampled {total/1e6:.2f} s')
idle = sum(v for k, v in selfc.items() if k.startswith('(idle)'))
print(f'non-idle {(total-idle)/1e6:.2f} s = {(total-idle)/1e6/dur*100:.2f} % of a core')
print('-- self'); [print(f'{v/1e3:8.0f} ms {k}') for k, v in selfc.most_common(25)]
print('-- files'); [print(f'{v/1e3:8.0f} ms {k}') for k, v in files.most_common(15)]
print('-- inclusive'); [print(f'{v/1e3:8.0f} ms {k}') for k, v in incl.most_common(40)]
