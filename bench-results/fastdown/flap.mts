import { execFileSync } from 'node:child_process';
const WT = '/work/main';
const { labUp, labDown } = await import(`${WT}/src/lab/lab.ts`);
const { parseScenario } = await import(`${WT}/src/lab/scenario.ts`);
const lab = 'flt';
const sc = parseScenario({ links: [{ rate: '20mbit', delay: '10ms' }, { rate: '20mbit', delay: '10ms', schedule: [{ at: '0s', outage: false }, { at: '3s', outage: true }], repeat: '4s' }] }, 'bench', {})._unsafeUnwrap();
await labDown(lab);
const up = await labUp({ name: lab, scenario: sc, bond: true, schedules: true });
if (up.isErr()) { console.error(up.error); process.exit(1); }
const sh = (c: string[]) => { try { return execFileSync(c[0]!, c.slice(1), { maxBuffer: 1e8 }).toString(); } catch (e) { return String((e as { stdout?: Buffer }).stdout ?? e); } };
try {
  await new Promise((r) => setTimeout(r, 1000));
  for (const cc of (process.argv[2] ?? 'cubic').split(',')) {
    const srv = execFileSync('ip', ['netns', 'exec', `mp-${lab}-server`, 'sh', '-c', 'iperf3 -s -1 -D -p 5301 -B 203.0.113.2']);
    await new Promise((r) => setTimeout(r, 300));
    const j = JSON.parse(sh(['ip', 'netns', 'exec', `mp-${lab}-client`, 'iperf3', '-J', '-c', '203.0.113.2', '-p', '5301', '-t', '12', '-i', '0.1', '-C', cc, ...(process.argv[3] === 'R' ? ['-R'] : [])]));
    const iv = j.intervals.map((i: { sum: { bits_per_second: number; retransmits?: number } }) => `${(i.sum.bits_per_second / 1e6).toFixed(0)}${i.sum.retransmits ? `r${i.sum.retransmits}` : ''}`);
    console.log(cc, (j.end.sum_received.bits_per_second / 1e6).toFixed(1));
    for (let k = 0; k < iv.length; k += 20) console.log(`  ${(k / 10).toFixed(0)}s`, iv.slice(k, k + 20).join(' '));
  }
  const st = JSON.parse(sh(['ip', 'netns', 'exec', `mp-${lab}-lp`, `${WT}/bin/mpctl`, 'status', '--instance', `${lab}-lp`, '--json']));
  console.log('lp drops', JSON.stringify(st.drops));
} finally { await labDown(lab); }
