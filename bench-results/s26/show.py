import json,sys
for n in sys.argv[1:]:
    d=json.load(open(f'/work/wt-shdef/bench-results/{n}.json'))
    print(n, d['git']['commit'][:7], d['git']['dirty'], d['durationS'], d.get('modes'), d['host']['load1'])
    for f in d['figures']:
        print(f"  {f['name'][-60:]:60} {f['median']} {f.get('unit','')} {'UNSTABLE' if f.get('unstable') else ''} runs {f['runs']}")
