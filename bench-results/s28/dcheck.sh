#!/bin/bash
L=${L:-s28d}; cd ${TREE:-/work/main}
bin/mpctl lab down --name $L >/dev/null 2>&1
bin/mpctl lab up --name $L --scenario ${SCN:-/tmp/s27-mm.toml} > /dev/null || exit 1
sleep ${WAIT:-8}
ls /run/mpctl/lab/$L/
grep -h "depth train\|capacity train" /run/mpctl/lab/$L/*.log 2>/dev/null | cut -c1-300
for r in lp rp; do bin/mpctl status -i $L-$r --json | python3 -c "
import json,sys; s=json.load(sys.stdin)
print('$r depth', [ (l.get('cc') or {}).get('depthMs') for l in s['links']], 'state', [l.get('state') for l in s['links']])"; done
[ -n "$KEEP" ] || bin/mpctl lab down --name $L > /dev/null
