// mismatch lab from WT with a routed hop before the client (c2 ns behind the client ns, NAT) so
// the LP's qdiscs do not hold the sender's socket (TSQ); CUBIC flows alternating none / tbf on LP wans
import { execFileSync } from 'node:child_process';
const WT = process.argv[2]!;
const dir = process.argv[3] ?? 'up';
const rate = process.argv[4] ?? '19.6mbit';
const limitMs = Number(process.argv[5] ?? 150);
const n = Number(process.argv[6] ?? 3);
const cc = process.env.CC ?? 'cubic';
const { labUp, labDown } = await import(`${WT}/src/lab/lab.ts`);
const { parseScenario } = await import(`${WT}/src/lab/scenario.ts`);
const { portalInstance } = await import(`${WT}/src/lab/bond.ts`);
const lab = 'tby';
const ns = (x: string) => `mp-${lab}-${x}`;
const sh = (cmd: string[], quiet = false) => { try { return execFileSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', quiet ? 'ignore' : 'pipe'] }).toString(); } catch (e) { return quiet ? '' : String(e); } };
const inNs = (x: string, ...cmd: string[]) => sh(['ip', 'netns', 'exec', ns(x), ...cmd]);
const sc = parseScenario({ links: [{ rate: '20mbit', delay: '10ms', queue: '60ms' }, { rate: '20mbit', delay: '60ms', queue: '60ms' }] }, 'bench', {})._unsafeUnwrap();
await labDown(lab);
sh(['ip', 'netns', 'del', ns('c2')], true);
const up = await labUp({ name: lab, scenario: sc, bond: true, schedules: false });
if (up.isErr()) { console.error(up.error); process.exit(1); }
const bytes = Math.round((parseFloat(rate) * 1e6 / 8) * limitMs / 1000);
try {
  sh(['ip', 'netns', 'add', ns('c2')]);
  sh(['ip', 'link', 'add', 'c2a', 'netns', ns('client'), 'type', 'veth', 'peer', 'name', 'c2b', 'netns', ns('c2')]);
  inNs('client', 'ip', 'addr', 'add', '10.98.0.1/24', 'dev', 'c2a');
  inNs('client', 'ip', 'link', 'set', 'c2a', 'up');
  inNs('c2', 'ip', 'addr', 'add', '10.98.0.2/24', 'dev', 'c2b');
  inNs('c2', 'ip', 'link', 'set', 'c2b', 'up');
  inNs('c2', 'ip', 'link', 'set', 'lo', 'up');
  inNs('c2', 'ip', 'route', 'add', 'default', 'via', '10.98.0.1');
  inNs('client', 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  inNs('client', 'nft', 'add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; add rule ip nat post oifname "eth0" masquerade');
  await new Promise((r) => setTimeout(r, 1000));
  console.log('ping', inNs('c2', 'ping', '-c', '2', '-i', '0.3', '203.0.113.2').split('\n').slice(-2).join(' '));
  const res: Record<string, string[]> = { none: [], tbf: [] };
  let port = 5301;
  for (let i = 0; i < n; i++) for (const mode of ['none', 'tbf']) {
    for (const d of ['wan1', 'wan2']) mode === 'tbf' ? inNs('lp', 'tc', 'qdisc', 'replace', 'dev', d, 'root', 'tbf', 'rate', rate, 'burst', '4500', 'limit', String(bytes)) : sh(['ip', 'netns', 'exec', ns('lp'), 'tc', 'qdisc', 'del', 'dev', d, 'root'], true);
    port++;
    const srv = execFileSync('bash', ['-c', `ip netns exec ${ns('server')} iperf3 -s -1 -B 203.0.113.2 -p ${port} > /dev/null 2>&1 & echo $!`]).toString();
    await new Promise((r) => setTimeout(r, 300));
    const st = (async () => { await new Promise((r) => setTimeout(r, 6000)); return process.env.STATUS ? inNs('lp', `${WT}/bin/mpctl`, 'status', '--instance', portalInstance(lab, 'lp')) : ''; })();
    const out = inNs('c2', 'iperf3', '-c', '203.0.113.2', '-p', String(port), '-t', '10', '-O', '2', '-C', cc, '-J', ...(dir === 'down' ? ['-R'] : []));
    let mbit = 'ERR';
    try { mbit = (JSON.parse(out).end.sum_received.bits_per_second / 1e6).toFixed(1); } catch { console.log(out.slice(0, 300)); }
    res[mode]!.push(mbit);
    const s = await st;
    if (s) console.log(s);
    console.log(mode, mbit, mode === 'tbf' ? inNs('lp', 'tc', '-s', 'qdisc', 'show', 'dev', 'wan1').split('\n').slice(0, 2).join(' | ') + ' || ' + inNs('lp', 'tc', '-s', 'qdisc', 'show', 'dev', 'wan2').split('\n').slice(1, 2).join('') : '');
  }
  console.log(JSON.stringify(res));
} finally {
  sh(['ip', 'netns', 'del', ns('c2')], true);
  await labDown(lab);
}
