// Session 20 A/B: a mismatch lab from the build at argv[2], routed hosts, portals with/without `shape = true`
// (argv[3]: modes, e.g. off,on; argv[4]: rounds; env FLOWS, LINKS). Per lab by default: CUBIC up, down, up, down; BBR up, down.
import { execFileSync } from 'node:child_process';
const WT = process.argv[2]!;
const modes = (process.argv[3] ?? 'off,on').split(',');
const pairs = Number(process.argv[4] ?? 1);
const links = JSON.parse(process.env.LINKS ?? '[{"rate":"20mbit","delay":"10ms","queue":"60ms"},{"rate":"20mbit","delay":"60ms","queue":"60ms"}]');
const flows = (process.env.FLOWS ?? 'cubic:up,cubic:down,cubic:up,cubic:down,bbr:up,bbr:down').split(',');
const { labUp, labDown } = await import(`${WT}/src/lab/lab.ts`);
const { parseScenario } = await import(`${WT}/src/lab/scenario.ts`);
const { portalInstance } = await import(`${WT}/src/lab/bond.ts`);
const sh = (cmd: string[], quiet = false) => { try { return execFileSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', quiet ? 'ignore' : 'pipe'] }).toString(); } catch (e) { return quiet ? '' : String(e); } };
const sc = parseScenario({ links }, 'bench', {})._unsafeUnwrap();
for (let p = 0; p < pairs; p++) for (const mode of modes) {
  const lab = `sab${mode}`;
  const ns = (x: string) => `mp-${lab}-${x}`;
  const inNs = (x: string, ...cmd: string[]) => sh(['ip', 'netns', 'exec', ns(x), ...cmd]);
  await labDown(lab);
  const up = await labUp({ name: lab, scenario: sc, bond: true, schedules: false, routedHosts: true, ...(mode === 'on' ? { shape: true } : {}) });
  if (up.isErr()) { console.error(JSON.stringify(up.error)); process.exit(1); }
  const out: string[] = [];
  try {
    await new Promise((r) => setTimeout(r, 1000));
    let port = 5400;
    for (const f of flows) {
      const [cc, dir] = f.split(':');
      port++;
      execFileSync('bash', ['-c', `ip netns exec ${ns('server')} iperf3 -s -1 -B 203.0.113.2 -p ${port} > /dev/null 2>&1 &`]);
      await new Promise((r) => setTimeout(r, 300));
      const o = inNs('client', 'iperf3', '-c', '203.0.113.2', '-p', String(port), '-t', '10', '-O', '2', '-C', cc!, '-J', ...(dir === 'down' ? ['-R'] : []));
      let mbit = 'ERR';
      try { mbit = (JSON.parse(o).end.sum_received.bits_per_second / 1e6).toFixed(1); } catch { mbit = 'ERR:' + o.slice(0, 200); }
      out.push(`${cc}${dir === 'up' ? '↑' : '↓'} ${mbit}`);
    }
    if (mode === 'on') for (const r of ['lp', 'rp']) out.push(`${r}: ` + inNs(r, 'tc', '-s', 'class', 'show', 'dev', r === 'lp' ? 'wan1' : 'wan').split('\n').filter((l) => /class htb|Sent/.test(l)).map((l) => l.trim().replace(/ prio 0 rate/, ' rate').slice(0, 90)).join(' | '));
    console.log(`${mode}: ${out.join(', ')}`);
  } finally {
      await labDown(lab);
  }
}
