// Session 20: one shaped `mismatch` lab (main), a BBR then a CUBIC download of 10 s; the RP's htb classes and its links' planned rate, bandwidth estimate and queue every 1.5 s (README "Per-link shaping").
import { execFileSync } from 'node:child_process';
const WT = '/work/main';
const { labUp, labDown } = await import(`${WT}/src/lab/lab.ts`);
const { parseScenario } = await import(`${WT}/src/lab/scenario.ts`);
const { iperf } = await import(`${WT}/src/lab/measure.ts`);
const lab = 'bbrt';
const sh = (c: string[]) => { try { return execFileSync(c[0]!, c.slice(1)).toString(); } catch (e) { return String(e); } };
const sc = parseScenario({ links: [{ rate: '20mbit', delay: '10ms', queue: '60ms' }, { rate: '20mbit', delay: '60ms', queue: '60ms' }] }, 'bench', {})._unsafeUnwrap();
await labDown(lab);
const up = await labUp({ name: lab, scenario: sc, bond: true, schedules: false, shape: true });
if (up.isErr()) { console.error(up.error); process.exit(1); }
try {
  await new Promise((r) => setTimeout(r, 1000));
  for (const cc of ['bbr', 'cubic']) {
    const t0 = Date.now();
    const samples: string[] = [];
    const timer = setInterval(() => {
      const cls = sh(['ip', 'netns', 'exec', `mp-${lab}-rp`, 'tc', '-s', 'class', 'show', 'dev', 'wan']);
      const rates = [...cls.matchAll(/class htb (6d70:\d) .*?rate (\S+) .*?\n\s*Sent (\d+) bytes .*?dropped (\d+)/gs)].map((m) => `${m[1]} ${m[2]} d${m[4]}`);
      const st = JSON.parse(sh(['ip', 'netns', 'exec', `mp-${lab}-rp`, `${WT}/bin/mpctl`, 'status', '--instance', `${lab}-rp`, '--json'])) as { links: { id: number; rateBps: number; cc: { bwBps: number; phase: string; queueMs: number } | null }[] };
      samples.push(`${((Date.now() - t0) / 1000).toFixed(0)}s ${rates.join(' ')} | ${st.links.map((l) => `L${l.id} plan ${(l.rateBps / 1e6).toFixed(1)} bw ${((l.cc?.bwBps ?? 0) / 1e6).toFixed(1)} q ${l.cc?.queueMs.toFixed(0)}`).join(' ')}`);
    }, 1500);
    const r = await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 10, omitS: 2, reverse: true, congestion: cc });
    clearInterval(timer);
    console.log(cc, r.isOk() ? (r.value.bps / 1e6).toFixed(1) : JSON.stringify(r.error));
    for (const s of samples) console.log('  ', s);
  }
} finally { await labDown(lab); }
