// Session 21: shaped discover-demo labs (the demo's links, no rates in the LP's config): a BBR
// upload of 10 s as each lab's first flow, then a CUBIC one; the LP's links every 0.5 s
// (planned rate, estimate, class, phase, queue) and iperf3's receiver seconds.
// flock -o /tmp/mpctl-heavy.lock node --import tsx bench-results/shape/trace-dd.mts [labs]
import { execFileSync } from 'node:child_process';
const WT = process.env.WT ?? '/work/main';
const { labUp, labDown } = await import(`${WT}/src/lab/lab.ts`);
const { DEFAULT_SCENARIO_RAW, parseScenario } = await import(`${WT}/src/lab/scenario.ts`);
const { iperf } = await import(`${WT}/src/lab/measure.ts`);
const lab = 'ddt';
const sh = (c: string[]) => { try { return execFileSync(c[0]!, c.slice(1)).toString(); } catch (e) { return String(e); } };
const sc = parseScenario(DEFAULT_SCENARIO_RAW, 'bench', {})._unsafeUnwrap();
for (let n = 0; n < Number(process.argv[2] ?? 2); n++) {
  await labDown(lab);
  const up = await labUp({ name: lab, scenario: sc, bond: true, schedules: false, shape: true, lp: { omitRates: true } });
  if (up.isErr()) { console.error(up.error); process.exit(1); }
  try {
    await new Promise((r) => setTimeout(r, 1000));
    for (const cc of ['bbr', 'cubic']) {
      const t0 = Date.now();
      const samples: string[] = [];
      const timer = setInterval(() => {
        const st = JSON.parse(sh(['ip', 'netns', 'exec', `mp-${lab}-lp`, `${WT}/bin/mpctl`, 'status', '--instance', `${lab}-lp`, '--json'])) as { links: { id: number; rateBps: number; shapeBps?: number; cc: { bwBps: number; phase: string; queueMs: number; deliveryBps: number } | null }[] };
        samples.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${st.links.map((l) => `L${l.id} ${l.cc?.phase.slice(0, 5)} plan ${(l.rateBps / 1e6).toFixed(1)} bw ${((l.cc?.bwBps ?? 0) / 1e6).toFixed(1)} dlv ${((l.cc?.deliveryBps ?? 0) / 1e6).toFixed(1)} cls ${((l.shapeBps ?? 0) / 1e6).toFixed(1)} q ${l.cc?.queueMs.toFixed(0)}`).join(' | ')}`);
      }, 500);
      const r = await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 10, omitS: 2, congestion: cc });
      clearInterval(timer);
      console.log(`lab ${n} ${cc}`, r.isOk() ? `${(r.value.bps / 1e6).toFixed(1)} Mbit/s; seconds ${r.value.intervals.map((b: number) => (b / 1e6).toFixed(1)).join(' ')}` : JSON.stringify(r.error));
      for (const s of samples) console.log('  ', s);
    }
  } finally { await labDown(lab); }
}
