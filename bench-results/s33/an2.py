import json, glob, statistics
for n in range(1, 5):
    f = glob.glob(f'/tmp/dips/f{n}-*.json')[0]; d = f.split('-')[-1][:-5]
    j = json.load(open(f))
    iv = [x['sum']['bits_per_second'] / 1e6 for x in j['intervals']]
    zero = sum(1 for v in iv[20:] if v < 1)
    print(f'flow {n} {d}: {j["end"]["sum_received"]["bits_per_second"]/1e6:.1f} Mbit/s, retr {j["end"]["sum_sent"].get("retransmits")}, zero 0.1 s intervals {zero}')
    for r in ['lp', 'rp']:
        a = json.load(open(f'/tmp/dips/st-{n}-{r}-a.json')); b = json.load(open(f'/tmp/dips/st-{n}-{r}-b.json'))
        dd = {k: b['drops'][k] - a['drops'].get(k, 0) for k in b['drops'] if b['drops'][k] - a['drops'].get(k, 0)}
        links = []
        for la, lb in zip(a['links'], b['links']):
            sq = (lb.get('shapeQueue') or {}).get('drops', 0) - (la.get('shapeQueue') or {}).get('drops', 0)
            links.append(f"L{lb['id']} shapeq {sq}")
        print(f'   {r} drops {dd}; {", ".join(links)}')
print('link loss per flow (sender tx - receiver rx, packets; includes control):')
for n in range(1, 5):
    f = glob.glob(f'/tmp/dips/f{n}-*.json')[0]; d = f.split('-')[-1][:-5]
    snd, rcv = ('rp', 'lp') if d == 'down' else ('lp', 'rp')
    S = [json.load(open(f'/tmp/dips/st-{n}-{snd}-{x}.json')) for x in 'ab']
    R = [json.load(open(f'/tmp/dips/st-{n}-{rcv}-{x}.json')) for x in 'ab']
    out = []
    for i in range(len(S[1]['links'])):
        tx = S[1]['links'][i]['tx']['packets'] - S[0]['links'][i]['tx']['packets']
        rx = R[1]['links'][i]['rx']['packets'] - R[0]['links'][i]['rx']['packets']
        out.append(f'L{i} tx {tx} rx {rx} lost {tx - rx}')
    print(f'  flow {n} {d}: ' + '; '.join(out))
