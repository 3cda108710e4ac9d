// Session 20: one `mismatch` lab from the build at argv[2] (a worktree), 3 CUBIC then 3 BBR downloads (8 s after 2 s), re-train raises counted in the portals' logs. bash ab.sh N wtA wtB alternates builds.
// one mismatch lab from build WT, 3 CUBIC then 3 BBR downloads (8 s after 2 s omit); counts re-train raises
const WT = process.argv[2]!;
const tag = process.argv[3] ?? 'x';
const { labUp, labDown } = await import(`${WT}/src/lab/lab.ts`);
const { iperf } = await import(`${WT}/src/lab/measure.ts`);
const { parseScenario } = await import(`${WT}/src/lab/scenario.ts`);
const { labDir } = await import(`${WT}/src/lab/state.ts`);
const { readFileSync } = await import('node:fs');
const lab = `ab${tag}`;
const sc = parseScenario({ links: [{ rate: '20mbit', delay: '10ms', queue: '60ms' }, { rate: '20mbit', delay: '60ms', queue: '60ms' }] }, 'bench', {})._unsafeUnwrap();
await labDown(lab);
const up = await labUp({ name: lab, scenario: sc, bond: true, schedules: false });
if (up.isErr()) { console.error(up.error); process.exit(1); }
const out: string[] = [];
try {
  await new Promise((r) => setTimeout(r, 1000));
  for (const cc of ['cubic', 'cubic', 'cubic', 'bbr', 'bbr', 'bbr']) {
    const r = await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 8, omitS: 2, reverse: true, congestion: cc });
    if (r.isErr()) { console.error(r.error); break; }
    out.push(`${cc} ${(r.value.bps / 1e6).toFixed(1)}`);
  }
  const logs = ['lp', 'rp'].map((x) => { try { return readFileSync(`${labDir(lab)}/${x}.log`, 'utf8'); } catch { return ''; } });
  const raises = logs.map((l) => l.split('\n').filter((x) => x.includes('re-train')).length);
  console.log(`${tag} ${out.join(', ')} | raises lp ${raises[0]} rp ${raises[1]}`);
  for (const l of logs[1]!.split('\n').filter((x) => x.includes('re-train') || x.includes('capacity train'))) console.log('   rp:', l.slice(0, 200));
} finally {
  await labDown(lab);
}
