# poll a portal's mp_rx (bpftool) during a flow: per link, the sum of max(0, seq advance - packets)
# over successive readings (what feedbackFromCounters reports as lost) against the whole flow's
import json, subprocess, sys, time
pin, dur = sys.argv[1], float(sys.argv[2])
def read():
    d = json.loads(subprocess.check_output(['bpftool', 'map', 'dump', 'pinned', pin + '/mp_rx', '-j']))
    return {e['formatted']['key']: e['formatted']['value'] for e in d if e['formatted']['value']['packets']}
first = prev = read(); summed = {k: 0 for k in first}; reads = 0; neg = {k: 0 for k in first}
t0 = time.time()
while time.time() - t0 < dur:
    cur = read(); reads += 1
    for k, v in cur.items():
        if k not in prev: continue
        adv = (v['max_link_seq'] - prev[k]['max_link_seq']) & 0xffffffff
        if adv >= 1 << 31: adv -= 1 << 32
        pk = v['packets'] - prev[k]['packets']
        if pk > 0:
            summed[k] = summed.get(k, 0) + max(0, adv - pk)
            neg[k] = neg.get(k, 0) + max(0, pk - adv)
    prev = cur
for k in sorted(prev):
    if k not in first: continue
    adv = (prev[k]['max_link_seq'] - first[k]['max_link_seq']) & 0xffffffff
    pk = prev[k]['packets'] - first[k]['packets']
    print(f'link {k}: reads {reads} packets {pk} true lost {adv - pk} summed lost {summed[k]} late fills {neg[k]}')
