# session 27: each figure of a report rerun with the lab's defaults (wt-bench) against main's committed one
import json, sys
for n in sys.argv[1:]:
    new = json.load(open(f'/work/wt-bench/bench-results/{n}.json')); old = json.load(open(f'/work/main/bench-results/{n}.json'))
    O = {f['name']: f for f in old['figures']}
    print(f"== {n}: {new['git']['commit'][:7]}{'+dirty' if new['git']['dirty'] else ''} {new.get('modes')} load1 {new['host']['load1']} {new['durationS']} s; was {(old.get('git') or {}).get('commit','?')[:7]} {old.get('modes')}")
    for f in new['figures']:
        o = O.get(f['name'])
        met = '' if f.get('met') is None else (' met' if f['met'] else ' MISSED')
        om = '' if not o or o.get('met') is None else (' met' if o['met'] else ' MISSED')
        print(f"  {f['name'][:110]}: {f.get('median')} {f.get('unit','')} {f.get('runs')}{met}{' UNSTABLE' if f.get('unstable') else ''} | was {o.get('median') if o else '-'} {o.get('runs') if o else ''}{om}")
