// Session 20, by hand (tc, nft: an experiment, not the product): a `mismatch` lab from the build
// at argv[2] with the end hosts one routed hop behind the client and server namespaces (c2 behind
// client with NAT, s2 behind server), so a portal's qdisc does not hold the sending socket's skbs
// (TCP small queues). iperf3 flows (argv[3] up | down; CC env, default cubic) alternate between no
// shaper and one per link in the sending portal at argv[4] (tbf on the LP's wan1/wan2 for uploads,
// an htb class per LP link address on the RP's wan for downloads), limit argv[5] ms of the rate;
// argv[6] pairs. Results: results.txt.
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
const lab = 'tbz';
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
  /** an end host `host` one routed hop behind lab node `router`, on 10.`net`.0.0/24 */
  const hop = (router: string, host: string, net: number) => {
    sh(['ip', 'netns', 'add', ns(host)]);
    sh(['ip', 'link', 'add', `${host}a`, 'netns', ns(router), 'type', 'veth', 'peer', 'name', `${host}b`, 'netns', ns(host)]);
    for (const [n, dev, a] of [[router, `${host}a`, 1], [host, `${host}b`, 2]] as const) {
      inNs(n, 'ip', 'addr', 'add', `10.${net}.0.${a}/24`, 'dev', dev);
      inNs(n, 'ip', 'link', 'set', dev, 'up');
    }
    inNs(host, 'ip', 'link', 'set', 'lo', 'up');
    inNs(host, 'ip', 'route', 'add', 'default', 'via', `10.${net}.0.1`);
    inNs(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  };
  hop('client', 'c2', 98);
  hop('server', 's2', 97);
  inNs('rp', 'ip', 'route', 'add', '10.97.0.0/24', 'via', '203.0.113.2');
  inNs('client', 'nft', 'add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; add rule ip nat post oifname "eth0" masquerade');
  await new Promise((r) => setTimeout(r, 1000));
  console.log('ping', inNs('c2', 'ping', '-c', '2', '-i', '0.3', '10.97.0.2').split('\n').slice(-2).join(' '));
  const res: Record<string, string[]> = { none: [], tbf: [] };
  let port = 5301;
  for (let i = 0; i < n; i++) for (const mode of ['none', 'tbf']) {
    if (dir === 'up') for (const d of ['wan1', 'wan2']) mode === 'tbf' ? inNs('lp', 'tc', 'qdisc', 'replace', 'dev', d, 'root', 'tbf', 'rate', rate, 'burst', '4500', 'limit', String(bytes)) : sh(['ip', 'netns', 'exec', ns('lp'), 'tc', 'qdisc', 'del', 'dev', d, 'root'], true);
    else if (mode === 'tbf') {
      inNs('rp', 'tc', 'qdisc', 'replace', 'dev', 'wan', 'root', 'handle', '1:', 'htb', 'default', '0');
      for (const k of [1, 2]) {
        inNs('rp', 'tc', 'class', 'add', 'dev', 'wan', 'parent', '1:', 'classid', `1:${k}`, 'htb', 'rate', rate, 'ceil', rate, 'burst', '4500', 'cburst', '4500');
        inNs('rp', 'tc', 'qdisc', 'add', 'dev', 'wan', 'parent', `1:${k}`, 'bfifo', 'limit', String(bytes));
        inNs('rp', 'tc', 'filter', 'add', 'dev', 'wan', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'dst', `100.64.${k}.1/32`, 'flowid', `1:${k}`);
      }
    } else sh(['ip', 'netns', 'exec', ns('rp'), 'tc', 'qdisc', 'del', 'dev', 'wan', 'root'], true);
    port++;
    const srv = execFileSync('bash', ['-c', `ip netns exec ${ns('s2')} iperf3 -s -1 -B 10.97.0.2 -p ${port} > /dev/null 2>&1 & echo $!`]).toString();
    await new Promise((r) => setTimeout(r, 300));
    const st = (async () => { await new Promise((r) => setTimeout(r, 6000)); return process.env.STATUS ? inNs('lp', `${WT}/bin/mpctl`, 'status', '--instance', portalInstance(lab, 'lp')) : ''; })();
    const out = inNs('c2', 'iperf3', '-c', '10.97.0.2', '-p', String(port), '-t', '10', '-O', '2', '-C', cc, '-J', ...(dir === 'down' ? ['-R'] : []));
    let mbit = 'ERR';
    try { mbit = (JSON.parse(out).end.sum_received.bits_per_second / 1e6).toFixed(1); } catch { console.log(out.slice(0, 300)); }
    res[mode]!.push(mbit);
    const s = await st;
    if (s) console.log(s);
    console.log(mode, mbit, mode !== 'tbf' ? '' : dir === 'up' ? ['wan1', 'wan2'].map((d) => inNs('lp', 'tc', '-s', 'qdisc', 'show', 'dev', d).split('\n')[1]).join(' | ') : inNs('rp', 'tc', '-s', 'class', 'show', 'dev', 'wan').split('\n').filter((x) => x.includes('Sent')).join(' | '));
  }
  console.log(JSON.stringify(res));
} finally {
  sh(['ip', 'netns', 'del', ns('c2')], true);
  sh(['ip', 'netns', 'del', ns('s2')], true);
  await labDown(lab);
}
