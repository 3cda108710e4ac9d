// Routed-hosts mode end to end (`mpctl lab up`, the default; topology.ts ROUTERS): a bonded lab
// with a router (cgw, sgw) one IP hop in front of each end host, every address as without it.
//
//   client ── cgw ── lp ═╦═ isp1 ═╦═ inet ── rp ── sgw ── server
//                        ╚═ isp2 ═╝
//
// What shows the hop is routed, not bridged: each portal's echo reply arrives at its end host
// with its TTL (IPv6: hop limit) one lower than the portal sent it with (its namespace's default),
// and each portal resolves its end host to the router's MAC. The bond carries both families and TCP at a
// sane rate both ways through it, and `down` leaves nothing. The routed lab's portals shape
// their links (the default with routed hosts: `shape = true`, the mode routed hosts exist for: run/shaper.ts): each link's data
// leaves through its own htb class on both portals, the probes and feedback around them; the
// class of the 10 ms link shapes (the scheduler keeps it ahead of the 30 ms one), the 30 ms
// link's stays open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iperf, ping } from '../src/lab/measure.js';
import { listNamespaces, run } from '../src/lab/namespaces.js';
import { nsName, nsPrefix } from '../src/lab/topology.js';
import { parseScenario, type Scenario } from '../src/lab/scenario.js';
import { must, withLab } from './helpers/lab.js';
import { depthTrainsOver, labStatus as portalStatus } from './helpers/wait.js';

/** [from node, to address, the portal that answers]: each end host to its portal, across one router. */
const PATHS = [
  ['client', '10.10.0.1', 'lp'],
  ['client', 'fd00:10::1', 'lp'],
  ['server', '203.0.113.1', 'rp'],
  ['server', '2001:db8:113::1', 'rp'],
] as const;

/** The TTL (IPv6: hop limit) of the reply to one echo, after an unasserted first echo that
 * resolves the neighbours along the path (once in many runs the very first IPv6 echo is lost). */
async function replyTtl(lab: string, node: string, dst: string): Promise<number> {
  const echo = ['netns', 'exec', nsName(lab, node), 'ping', '-n', '-c', '1', '-W', '2', dst];
  await run('ip', echo, 5000);
  const out = must(await run('ip', echo, 5000), `ping ${node} → ${dst}`);
  const ttl = /ttl=(\d+)/.exec(out);
  assert.ok(ttl, `no ttl in ${out}`);
  return Number(ttl[1]);
}

/** The TTL (IPv6: hop limit) node `node` sends its own packets with. */
async function defaultTtl(lab: string, node: string, v6: boolean): Promise<number> {
  const key = v6 ? 'net.ipv6.conf.all.hop_limit' : 'net.ipv4.ip_default_ttl';
  return Number(must(await run('ip', ['netns', 'exec', nsName(lab, node), 'sysctl', '-n', key]), `sysctl ${key}`).trim());
}

/** The MAC of an interface in a lab node. */
async function macOf(lab: string, node: string, ifname: string): Promise<string> {
  const out = must(await run('ip', ['netns', 'exec', nsName(lab, node), 'ip', '-j', 'link', 'show', 'dev', ifname]), `ip link ${node}:${ifname}`);
  return (JSON.parse(out) as { address: string }[])[0]!.address;
}

/** The MAC a node has resolved `address` to on `ifname` (null: not resolved). */
async function neighbourMac(lab: string, node: string, ifname: string, address: string): Promise<string | null> {
  const out = must(await run('ip', ['netns', 'exec', nsName(lab, node), 'ip', '-j', 'neigh', 'show', address, 'dev', ifname]), `ip neigh ${node}`);
  return (JSON.parse(out) as { lladdr?: string }[])[0]?.lladdr ?? null;
}

/** 2 × 20 Mbit/s of 10 and 30 ms: the 10 ms link plans an equalising queue, the 30 ms one none. */
const linksOfTwoDelays: Scenario = parseScenario(
  { links: [{ label: 'l1', rate: '20mbit', delay: '10ms', queue: '60ms' }, { label: 'l2', rate: '20mbit', delay: '30ms', queue: '60ms' }] },
  't',
)._unsafeUnwrap();

test('routed hosts: a router hop in front of each end host, same addresses, the bond through it', { timeout: 300_000 }, async (t) => {
  let name = '';
  await withLab(
    linksOfTwoDelays,
    async (lab) => {
      name = lab;
      await t.test("each portal's reply reaches its end host one TTL / hop limit lower: routed, not bridged", async () => {
        for (const [node, dst, portal] of PATHS) {
          const sent = await defaultTtl(lab, portal, dst.includes(':'));
          const got = await replyTtl(lab, node, dst);
          t.diagnostic(`${node} → ${dst}: reply TTL ${got}, sent with ${sent}`);
          assert.equal(got, sent - 1, `${node} → ${dst}`);
        }
      });

      // the depth trains at the bond's start fill each link's buffer until it drops: a ping
      // among them may be lost (src/run/depth.ts)
      await depthTrainsOver(lab);
      await t.test('ping client ⇄ server through the bond, IPv4 and IPv6', async () => {
        for (const [node, dst] of [['client', '203.0.113.2'], ['client', '2001:db8:113::2'], ['server', '198.51.100.10'], ['server', '2001:db8:100::10']] as const) {
          must(await ping(lab, node, dst, { count: 1, intervalS: 0.05, waitS: 2 }), 'warm-up ping');
          const p = must(await ping(lab, node, dst, { count: 5, intervalS: 0.05, waitS: 2 }), 'ping');
          assert.equal(p.received, 5, `${node} → ${dst}`);
        }
      });

      await t.test("each portal resolves its end host's addresses to its router's MAC (after the pings: the bond's client address is resolved by a reply)", async () => {
        const cgw = await macOf(lab, 'cgw', 'lp');
        const sgw = await macOf(lab, 'sgw', 'rp');
        // the bond's client addresses (bond.ts) and the lab's own
        for (const a of ['198.51.100.10', '2001:db8:100::10', '10.10.0.2', 'fd00:10::2']) assert.equal(await neighbourMac(lab, 'lp', 'lan', a), cgw, `lp: ${a}`);
        for (const a of ['203.0.113.2', '2001:db8:113::2']) assert.equal(await neighbourMac(lab, 'rp', 'srv', a), sgw, `rp: ${a}`);
      });

      await t.test('one TCP flow each way through the bond gets more than half of one link', async () => {
        const oneLink = 20e6 * ((1500 - 52) / 1514);
        const before = await portalStatus(lab, 'lp');
        for (const reverse of [false, true]) {
          const r = must(await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 3, omitS: 1, reverse }), 'iperf3');
          t.diagnostic(`2×20 Mbit, routed hosts, ${reverse ? 'server → client' : 'client → server'}: ${(r.bps / 1e6).toFixed(2)} Mbit/s`);
          assert.ok(r.bps > oneLink * 0.5, `${r.bps} bit/s not above half a link (${oneLink * 0.5})`);
          if (!reverse) assert.equal(r.serverSaw, '198.51.100.10', 'the server sees the bonded client address');
        }
        const after = await portalStatus(lab, 'lp');
        for (const l of after.links) {
          const tx = l.tx.packets - (before.links.find((b) => b.id === l.id)?.tx.packets ?? 0);
          assert.ok(tx > 100, `link ${l.id} carried ${tx} packets of the flows: they went through the bond`);
        }
      });

      await t.test('per-link shaping: the 10 ms link\'s data left through its htb class at a rate near the link\'s, the 30 ms link\'s through an open one, on both portals; probes and feedback unshaped', async () => {
        // [portal, device, class, shapes]: the LP's links leave by wan1 and wan2, the RP's both by
        // wan; only the link the scheduler keeps ahead of the slower one shapes (cc.equalising)
        for (const [role, dev, cls, shapes] of [['lp', 'wan1', '6d70:1', true], ['lp', 'wan2', '6d70:2', false], ['rp', 'wan', '6d70:1', true], ['rp', 'wan', '6d70:2', false]] as const) {
          const out = must(await run('ip', ['netns', 'exec', nsName(lab, role), 'tc', '-s', 'class', 'show', 'dev', dev, 'classid', cls]), 'tc class show');
          const rate = /rate ([\d.]+)([KM])bit/.exec(out);
          const sent = /Sent \d+ bytes (\d+) pkt/.exec(out);
          t.diagnostic(`${role} ${dev} ${cls}: ${out.replace(/\s+/g, ' ').slice(0, 160)}`);
          assert.ok(rate && sent, `${role}: no class ${cls} on ${dev}: ${out}`);
          const mbit = Number(rate[1]) / (rate[2] === 'K' ? 1000 : 1);
          if (shapes) assert.ok(mbit > 8 && mbit < 40, `${role} ${cls}: ${mbit} Mbit/s for a 20 Mbit/s link`);
          else assert.ok(mbit >= 40, `${role} ${cls}: ${mbit} Mbit/s, not open (the slowest link plans no equalising queue)`);
          assert.ok(Number(sent[1]) > 100, `${role} ${cls}: ${sent[1]} packets through the class`);
        }
        // and `mpctl status` says the shaping link's class rate, none for the open one
        for (const role of ['lp', 'rp'] as const) {
          const st = await portalStatus(lab, role);
          const [fast, slow] = [st.links.find((l) => l.id === 0), st.links.find((l) => l.id === 1)];
          assert.ok(fast?.shapeBps !== undefined && fast.shapeBps > 8e6 && fast.shapeBps < 40e6, `${role} link 0: status shapeBps ${fast?.shapeBps}`);
          assert.equal(slow?.shapeBps, undefined, `${role} link 1: open, not shaped`);
        }
        for (const [role, dev] of [['lp', 'wan1'], ['rp', 'wan']] as const) {
          const q = must(await run('ip', ['netns', 'exec', nsName(lab, role), 'tc', 'qdisc', 'show', 'dev', dev, 'root']), 'tc qdisc show');
          const direct = /direct_packets_stat (\d+)/.exec(q);
          assert.ok(direct && Number(direct[1]) > 0, `${role} ${dev}: probes and feedback leave unshaped (htb's direct queue): ${q}`);
        }
      });

      await t.test("no silent loss: what the shaping class's queue drops when a flood overfills it is in `status` (the link's shapeQueue, drops.shape_queue), as many as the kernel counted", async () => {
        const before = await portalStatus(lab, 'lp');
        // 80 Mbit/s of UDP into 2 × 20: the scheduler plans past both links, the 10 ms link's
        // class queue (150 ms) fills and drops
        must(await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 3, udpBps: 80e6 }), 'iperf3 -u');
        await new Promise((r) => setTimeout(r, 2500)); // the queue drains, the portal publishes again
        const st = await portalStatus(lab, 'lp');
        const out = must(await run('ip', ['netns', 'exec', nsName(lab, 'lp'), 'tc', '-s', 'qdisc', 'show', 'dev', 'wan1', 'parent', '6d70:1']), 'tc -s qdisc show');
        const kernel = /bfifo[\s\S]*?dropped (\d+)/.exec(out);
        assert.ok(kernel, `no bfifo leaf under 6d70:1 on wan1: ${out}`);
        const fast = st.links.find((l) => l.id === 0)?.shapeQueue;
        const was = before.links.find((l) => l.id === 0)?.shapeQueue?.drops ?? 0;
        t.diagnostic(`lp link 0 class queue: ${JSON.stringify(fast)} (before ${was}), kernel: dropped ${kernel[1]}; drops.shape_queue ${st.drops.shape_queue}`);
        assert.ok(fast, 'status has the shaping link\'s class queue');
        assert.equal(fast.drops, Number(kernel[1]), 'the same count as the kernel\'s');
        assert.ok(fast.drops - was > 100, `the flood overfilled the class: ${fast.drops - was} dropped`);
        assert.equal(st.drops.shape_queue, st.links.reduce((a, l) => a + (l.shapeQueue?.drops ?? 0), 0), 'drops.shape_queue sums the links');
      });
    },
    { bond: true }, // the lab's defaults: routed hosts, shaping portals
  );
  assert.ok(name);
  assert.deepEqual(await listNamespaces(nsPrefix(name)), [], 'down left no namespace of the lab, routers included');
});
