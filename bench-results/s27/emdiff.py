import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
for la, lb in zip(a['links'], b['links']):
    out = []
    for d in ('up', 'down'):
        sa = la[d]['live']['stats']; sb = lb[d]['live']['stats']
        diff = {k: sb[k] - sa[k] for k in sb if k not in ('lateMaxUs', 'queued', 'rqQueued', 'rqBytes') and sb[k] != sa[k]}
        out.append(f"{d}: tx {diff.get('txPackets',0)} " + ' '.join(f'{k} {v}' for k, v in diff.items() if k.startswith('dropped') or k.startswith('late')) + f" lateMax {sb['lateMaxUs']}")
    print('  em', la['label'], ' | '.join(out))
