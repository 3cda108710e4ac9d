import json,sys
f=sys.argv[1]; t0=float(sys.argv[2])/1000 if len(sys.argv)>2 else None
rows={}
for line in open(f):
    try: d=json.loads(line)
    except Exception: continue
    if d['v'] is None: continue
    key=(round(d['t'],1),d['i'][-2:])
    r=rows.setdefault(key,{})
    m=d['m']
    if m=='mp_links':
        r['links']=[(e['formatted']['value']['flags'],e['formatted']['value']['owd_us'],e['formatted']['value']['rate_bps']//100000/10,e['formatted']['value']['hold_kbps']) for e in d['v'][:2]]
    elif m=='mp_fec_stats':
        e=d['v'][0]['formatted']['values']
        r['fec']=tuple(sum(x['value'][k] for x in e) for k in ('parity_tx','parity_rx','rebuilt'))
    elif m=='mp_link_stats':
        tot=[]
        for e in d['v'][:2]:
            vs=e['formatted']['values']; tot.append(sum(x['value']['tx_packets'] for x in vs))
        r['tx']=tot
    elif m=='mp_drops':
        dd={}
        for e in d['v']:
            s=sum(x['value'] for x in e['formatted']['values'])
            if s: dd[e['formatted']['key']]=s
        r['drops']=dd
prev={}
start=t0 or min(k[0] for k in rows)
for (t,i),r in sorted(rows.items()):
    p=prev.get(i)
    dfec = tuple(a-b for a,b in zip(r.get('fec',(0,0,0)),p.get('fec',(0,0,0)))) if p else None
    dtx = [a-b for a,b in zip(r.get('tx',[0,0]),p.get('tx',[0,0]))] if p else None
    ddrops = {k:v-p.get('drops',{}).get(k,0) for k,v in r.get('drops',{}).items() if v-p.get('drops',{}).get(k,0)} if p else r.get('drops')
    print(f"{t-start:7.1f} {i} links={r.get('links')} dfec={dfec} dtx={dtx} ddrops={ddrops}")
    prev[i]=r
