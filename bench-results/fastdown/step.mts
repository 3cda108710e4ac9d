// delay steps: 2 x 20 Mbit/10 ms, link 2's delay 10 -> 10+STEP ms and back every 2 s; one 20 s CUBIC flow each way; fast-down verdicts and revivals in both portals' logs
import { readFileSync } from 'node:fs';
const WT = process.env.WT!;
const STEP = Number(process.argv[2] ?? 50);
const { labUp, labDown } = await import(`${WT}/src/lab/lab.ts`);
const { parseScenario } = await import(`${WT}/src/lab/scenario.ts`);
const { iperf } = await import(`${WT}/src/lab/measure.ts`);
const { labDir } = await import(`${WT}/src/lab/state.ts`);
const lab = 'stp';
const sc = parseScenario({ links: [{ rate: '20mbit', delay: '10ms' }, { rate: '20mbit', delay: '10ms', schedule: [{ at: '0s', delay: '10ms' }, { at: '2s', delay: `${10 + STEP}ms` }], repeat: '4s' }] }, 'bench', {})._unsafeUnwrap();
await labDown(lab);
const up = await labUp({ name: lab, scenario: sc, bond: true, schedules: true });
if (up.isErr()) { console.error(up.error); process.exit(1); }
try {
  await new Promise((r) => setTimeout(r, 1000));
  for (const reverse of [false, true]) {
    const r = await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 20, omitS: 2, reverse, congestion: 'cubic' });
    console.log(WT, `+${STEP} ms`, reverse ? 'down' : 'up', r.isOk() ? `${(r.value.bps / 1e6).toFixed(1)} Mbit/s worst ${(Math.min(...r.value.intervals.slice(2)) / 1e6).toFixed(1)}` : JSON.stringify(r.error));
  }
  for (const role of ['lp', 'rp']) {
    const log = readFileSync(`${labDir(lab)}/${role}.log`, 'utf8');
    console.log(`  ${role}: verdicts ${(log.match(/data stopped arriving/g) ?? []).length}, revived ${(log.match(/arrived after all/g) ?? []).length}`);
  }
} finally { await labDown(lab); }
