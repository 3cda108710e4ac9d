# session 26: README rows, the rerun reports (lab defaults: routed hosts, shaping) against main's
import json,sys,re
def load(p):
    try: return json.load(open(p))
    except Exception: return None
def figs(d):
    out={}
    for f in d['figures']:
        n=f['name']; cc=f.get('cc') or ('cubic' if '(cubic)' in n else 'bbr' if '(bbr)' in n else None)
        dr='up' if 'client → server' in n else 'down' if 'server → client' in n else None
        kind='pct' if '1 TCP flow' in n and f['unit'].startswith('%') else 'ratio' if 'bond / best' in n else 'alone' if 'best link alone' in n else 'worst' if 'worst second' in n else None
        if kind and cc and dr: out[(kind,cc,dr)]=f
    return out
def fmt(x): return f"{x:.3f}" if isinstance(x,float) and x<3 else f"{x}"
for n in sys.argv[1:]:
    new=load(f'/work/wt-shdef/bench-results/{n}.json'); old=load(f'/work/main/bench-results/{n}.json')
    F=figs(new); O=figs(old) if old else {}
    for cc in ['cubic','bbr']:
        g=lambda k,dr,X=F: X.get((k,cc,dr))
        if not g('pct','up'): continue
        pct=f"{g('pct','up')['median']:.1f} / {g('pct','down')['median']:.1f}"
        rat=" / ".join(("**%s**" % fmt(g('ratio',d)['median'])) if g('ratio',d)['median']<0.97 else fmt(g('ratio',d)['median']) for d in ['up','down'])
        alone=f"{g('alone','up')['median']} / {g('alone','down')['median']}"
        runs=f"{len(g('pct','up')['runs'])} / {len(g('pct','down')['runs'])}"
        lo=" / ".join(f"{min(g('pct',d)['runs'])}" for d in ['up','down'])
        wst=f"; worst second {g('worst','up')['median']} / {g('worst','down')['median']}" if g('worst','up') else ""
        prev=""
        if O.get(('pct',cc,'up')):
            prev=f"{O[('pct',cc,'up')]['median']:.1f} / {O[('pct',cc,'down')]['median']:.1f}, {fmt(O[('ratio',cc,'up')]['median'])} / {fmt(O[('ratio',cc,'down')]['median'])}"
            if O.get(('worst',cc,'up')): prev+=f"; worst second {O[('worst',cc,'up')]['median']} / {O[('worst',cc,'down')]['median']}"
            prev+=f" ({old['git']['commit'][:7]})"
        uns=[f['name'] for f in new['figures'] if f.get('unstable') and f.get('cc')==cc]
        un=", ".join(sorted(set(("%" if "1 TCP flow" in u else "ratio" if "bond / best" in u else "worst" if "worst" in u else "?")+(" ↑" if "client → server" in u else " ↓") for u in uns))) or "–"
        print(f"| {'`'+n+'`' if cc=='cubic' else ''} | {cc.upper()} | {pct}{wst} | {alone} | {rat} | {lo} | {runs} | {un} | {prev} |")
