import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
const WT = '/work/main';
const { labUp, labDown } = await import(`${WT}/src/lab/lab.ts`);
const { DEFAULT_SCENARIO_RAW, parseScenario } = await import(`${WT}/src/lab/scenario.ts`);
const { iperf } = await import(`${WT}/src/lab/measure.ts`);
const lab = 'hyt';
const which = process.argv[2] ?? 'demo';
const raw = which === 'demo' ? DEFAULT_SCENARIO_RAW : { links: [{ rate: '20mbit', delay: '10ms', queue: '60ms' }, { rate: '20mbit', delay: '60ms', queue: '60ms' }] };
const sc = parseScenario(raw, 'bench', {})._unsafeUnwrap();
const HY = '/sys/module/tcp_cubic/parameters/hystart';
const sh = (c: string[]) => { try { return execFileSync(c[0]!, c.slice(1)).toString(); } catch (e) { return ''; } };
await labDown(lab);
const up = await labUp({ name: lab, scenario: sc, bond: true, schedules: false, ...(which === 'demo' ? { lp: { omitRates: true } } : {}) });
if (up.isErr()) { console.error(up.error); process.exit(1); }
try {
  await new Promise((r) => setTimeout(r, 1000));
  for (let n = 0; n < Number(process.argv[3] ?? 6); n++) {
    const hy = n % 2 === 0 ? '1' : '0';
    writeFileSync(HY, hy);
    const seen: string[] = [];
    const timer = setInterval(() => {
      const o = sh(['ip', 'netns', 'exec', `mp-${lab}-client`, 'ss', '-tin', 'dst', '203.0.113.2']);
      const m = /cwnd:(\d+)(?: ssthresh:(\d+))?.*?(?:retrans:\d+\/(\d+))?/s.exec(o.split('\n').slice(-3).join(' '));
      const rtt = /rtt:([\d.]+)/.exec(o);
      if (m) seen.push(`${m[1]}/${m[2] ?? '-'}/${m[3] ?? 0}/${rtt?.[1] ?? ''}`);
    }, 250);
    const r = await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 8, omitS: 2, congestion: 'cubic' });
    clearInterval(timer);
    console.log(`hystart ${hy}: ${r.isOk() ? (r.value.bps / 1e6).toFixed(1) : 'ERR'} Mbit/s  cwnd/ssthresh/retrans/rtt: ${seen.slice(0, 16).join(' ')}`);
  }
} finally { writeFileSync(HY, '1'); await labDown(lab); }
