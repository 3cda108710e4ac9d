// Whole-LAN mode end to end (issue 13 part 1): the LP translates its LAN to the client address
// in its data path (bpf/nat.h), through the same `mpctl up` path a user deploys.
//
//   host1 192.168.1.10 ─┐                                  ╔═ isp1 ═╗
//   host2 192.168.1.11 ─┤ lansw ── lp (lan 192.168.1.1) ═══╣        ╠═ inet ── rp ── server 203.0.113.2
//   client (unused)    ─┘          lan_prefixes = [...]    ╚═ isp2 ═╝
//   The server sees both hosts as the client address 198.51.100.10 / 2001:db8:100::10.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { iperf, ping } from '../src/lab/measure.js';
import { parseScenario } from '../src/lab/scenario.js';
import { LAN, nsName } from '../src/lab/topology.js';
import { BOND, portalInstance } from '../src/lab/bond.js';
import { labSet, mpctlPath } from '../src/lab/lab.js';
import { run } from '../src/lab/namespaces.js';
import { pinDir } from '../src/plan/pins.js';
import { bondLocalDevices } from '../src/plan/plan.js';
import { killAndRestart, must, withLab } from './helpers/lab.js';
import { depthTrainsOver, labStatus } from './helpers/wait.js';

const SERVER = { v4: '203.0.113.2', v6: '2001:db8:113::2' } as const;
const FORWARD_PORT = 5999;
const links = parseScenario(
  { links: [{ label: 'l1', rate: '20mbit', delay: '10ms', queue: '60ms' }, { label: 'l2', rate: '20mbit', delay: '15ms', queue: '60ms' }] },
  't',
)._unsafeUnwrap();

test('whole-LAN mode: two LAN hosts reach the server as the client address, IPv4 and IPv6, at once', { timeout: 300_000 }, async (t) => {
  await withLab(
    links,
    async (lab) => {
      // not into the depth trains of the bond's start: each fills its link's buffer until it drops
      await depthTrainsOver(lab);
      await t.test('ping from each host to the server, both families; the LAN itself is not tunnelled', async () => {
        for (const host of ['host1', 'host2'] as const)
          for (const dst of [SERVER.v4, SERVER.v6]) {
            must(await ping(lab, host, dst, { count: 1, intervalS: 0.05, waitS: 2 }), 'warm-up ping');
            const p = must(await ping(lab, host, dst, { count: 5, intervalS: 0.05, waitS: 2 }), 'ping');
            assert.equal(p.received, 5, `${host} → ${dst}`);
          }
        const gw = must(await ping(lab, 'host1', LAN.gateway.v4, { count: 3, intervalS: 0.05, waitS: 2 }), 'ping the LP on the LAN');
        assert.equal(gw.received, 3, 'host1 → the LP\'s LAN address (passes encap untouched)');
        const peer = must(await ping(lab, 'host1', LAN.hosts.host2.v6, { count: 3, intervalS: 0.05, waitS: 2 }), 'ping host2');
        assert.equal(peer.received, 3, 'host1 → host2 across the switch');
      });

      await t.test('the server sees the client address, IPv4 and IPv6', async () => {
        for (const [host, dst, want] of [
          ['host1', SERVER.v4, BOND.client.v4],
          ['host2', SERVER.v6, BOND.client.v6],
        ] as const) {
          const r = must(await iperf(lab, { server: { node: 'server', addr: dst }, client: { node: host }, seconds: 2 }), `iperf3 ${host} → ${dst}`);
          assert.equal(r.serverSaw, want, `${host}: the server's peer`);
          t.diagnostic(`${host} → ${dst}: ${(r.bps / 1e6).toFixed(2)} Mbit/s, seen as ${r.serverSaw}`);
        }
      });

      /** one TCP flow from each host at once to the server's address of one family: both seen as the
       * client address of that family; their sum above the best link (IPv6: 20 B more header) */
      const twoHosts = async (fam: 'v4' | 'v6', seconds: number) => {
        const best = 20e6 * ((1500 - 52) / 1514);
        const [a, b] = await Promise.all(
          (['host1', 'host2'] as const).map((host) => iperf(lab, { server: { node: 'server', addr: SERVER[fam] }, client: { node: host }, seconds, omitS: 1 })),
        );
        const ra = must(a!, `iperf3 host1 ${fam}`);
        const rb = must(b!, `iperf3 host2 ${fam}`);
        const sum = ra.bps + rb.bps;
        t.diagnostic(`${fam}: host1 ${(ra.bps / 1e6).toFixed(2)} + host2 ${(rb.bps / 1e6).toFixed(2)} = ${(sum / 1e6).toFixed(2)} Mbit/s (${((sum / 40e6) * 100).toFixed(1)} % of 2×20 Mbit)`);
        assert.equal(ra.serverSaw, BOND.client[fam]);
        assert.equal(rb.serverSaw, BOND.client[fam]);
        assert.ok(ra.bps > 3e6 && rb.bps > 3e6, 'each flow moves');
        assert.ok(sum > best * 1.2, `${sum} not above the best link ${best}`);
      };

      await t.test('a TCP flow from each host at once over IPv6 adds up to more than the best link', async () => {
        await twoHosts('v6', 4);
      });

      await t.test('a TCP flow from each host at once adds up to more than the best link', async () => {
        await twoHosts('v4', 5);
        const lp = await labStatus(lab, 'lp');
        assert.ok(lp.links.every((l) => l.state === 'up' && l.tx.packets > 100), 'both links carried data');
        const nat = Object.fromEntries(Object.entries(lp.drops).filter(([k]) => k.startsWith('nat_')));
        t.diagnostic(`LP NAT drops: ${JSON.stringify(nat)}`);
        assert.equal(lp.drops['nat_ports'] ?? 0, 0, 'no flow lacked a port');
        t.diagnostic(`LP NAT mappings (status): ${JSON.stringify(lp.nat)}`);
        assert.ok(lp.nat && lp.nat.tcp >= 4, 'status counts the flows\' mappings (iperf3: a control and a data connection each)');
        assert.equal(lp.nat.mappings, lp.nat.tcp + lp.nat.udp + lp.nat.icmp);
      });

      await t.test('a port forward reaches host1 from the Internet; nothing else does', async () => {
        const r = must(
          await iperf(lab, { server: { node: 'host1', addr: LAN.hosts.host1.v4, connect: BOND.client.v4 }, client: { node: 'server' }, seconds: 2, port: FORWARD_PORT }),
          'iperf3 server → client address:port → host1',
        );
        t.diagnostic(`server → ${BOND.client.v4}:${FORWARD_PORT} → host1: ${(r.bps / 1e6).toFixed(2)} Mbit/s, host1 saw ${r.serverSaw}`);
        assert.equal(r.serverSaw, SERVER.v4, 'a forward translates the destination only');
        assert.ok(r.bps > 10e6);
        const before = (await labStatus(lab, 'lp')).drops['nat_miss'] ?? 0;
        const p = must(await ping(lab, 'server', BOND.client.v4, { count: 3, intervalS: 0.05, waitS: 1 }), 'ping the client address');
        assert.equal(p.received, 0, 'nobody answers the client address');
        const after = (await labStatus(lab, 'lp')).drops['nat_miss'] ?? 0;
        assert.ok(after - before >= 3, `the LP dropped the echo requests as nat_miss (${after - before})`);
      });

      await t.test('a LAN flow keeps its mapping across a SIGKILL and `mpctl up` of the LP (the NAT maps are adopted)', async () => {
        const flow = iperf(lab, { server: { node: 'server', addr: SERVER.v4 }, client: { node: 'host1' }, seconds: 6 });
        await new Promise((r) => setTimeout(r, 2000));
        const before = (await labStatus(lab, 'lp')).nat;
        await killAndRestart(lab, 'lp');
        const after = (await labStatus(lab, 'lp')).nat;
        const r = must(await flow, 'iperf3 across the restart');
        t.diagnostic(`host1 per-second goodput across the LP's restart at 2 s: ${r.intervals.map((x) => (x / 1e6).toFixed(1)).join(' ')}; mappings ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
        assert.equal(r.serverSaw, BOND.client.v4);
        assert.ok(after && before && after.tcp >= before.tcp, 'the restarted LP counts the mappings it adopted');
        assert.ok(r.intervals.slice(-3).every((x) => x > 10e6), 'the same connection carries on through the new control plane');
      });

      await t.test('a flow keeps its mapping when its link is cut (not re-NATed on the surviving link)', async () => {
        const flow = iperf(lab, { server: { node: 'server', addr: SERVER.v4 }, client: { node: 'host2' }, seconds: 6 });
        await new Promise((r) => setTimeout(r, 2000));
        must(await labSet({ name: lab, node: 'isp1', dirs: ['up', 'down'], patch: { down: true } }), 'cut isp1');
        const r = must(await flow, 'iperf3 across the cut');
        must(await labSet({ name: lab, node: 'isp1', dirs: ['up', 'down'], patch: { down: false } }), 'restore isp1');
        t.diagnostic(`host2 per-second goodput across the cut of isp1 at 2 s: ${r.intervals.map((x) => (x / 1e6).toFixed(1)).join(' ')}`);
        assert.equal(r.serverSaw, BOND.client.v4);
        assert.ok(r.intervals.slice(-3).every((x) => x > 10e6), 'the same connection carries on over link 2');
      });

      await t.test('ICMP errors about a LAN flow reach its host: time exceeded from the RP, beyond the LP\'s translation', async () => {
        // hop 1 is the router in front of the LAN (the lab's routed hosts: cgw), hop 2 the RP (the
        // LP forwards into the tunnel without a hop of its own): the RP's error about the client
        // address comes back through the bond and the LP translates it to host1
        for (const [dst, rp] of [[SERVER.v4, BOND.rp.v4], [SERVER.v6, BOND.rp.v6]] as const) {
          const out = must(await run('ip', ['netns', 'exec', nsName(lab, 'host1'), 'sh', '-c', `ping -n -c 1 -t 2 -W 2 ${dst}; true`], 10_000), 'ping -t 2');
          t.diagnostic(`host1 ping -t 2 ${dst}: ${out.split('\n').find((l) => /exceeded/i.test(l)) ?? out.trim()}`);
          assert.match(out, /(Time to live|Hop limit|Time) exceeded/i, `host1 hears that its ping to ${dst} expired`);
          assert.ok(out.includes(`From ${rp} `), `from the RP (${rp}): ${out}`);
        }
      });

      await t.test('bond_local: the LP\'s own ping and TCP flow reach the server as the client address; its probes stay on the links', async () => {
        const before = await labStatus(lab, 'lp');
        for (const [dst, want] of [[SERVER.v4, BOND.client.v4], [SERVER.v6, BOND.client.v6]] as const) {
          const p = must(await ping(lab, 'lp', dst, { count: 3, intervalS: 0.05, waitS: 2 }), `ping lp → ${dst}`);
          assert.equal(p.received, 3, `lp → ${dst} through the bond`);
          const r = must(await iperf(lab, { server: { node: 'server', addr: dst }, client: { node: 'lp' }, seconds: 2 }), `iperf3 lp → ${dst}`);
          t.diagnostic(`lp → ${dst}: ${(r.bps / 1e6).toFixed(2)} Mbit/s, seen as ${r.serverSaw}`);
          assert.equal(r.serverSaw, want, 'the server sees the LP as the client address');
          assert.ok(r.bps > 10e6, 'the flow moves');
        }
        const after = await labStatus(lab, 'lp');
        for (const l of after.links) {
          const b = before.links.find((x) => x.id === l.id)!;
          t.diagnostic(`link ${l.id}: ${l.state}, probes heard ${b.probesHeard} → ${l.probesHeard}, tx ${b.tx.packets} → ${l.tx.packets}`);
          assert.equal(l.state, 'up', `link ${l.id} stays up`);
          assert.ok(l.probesHeard > b.probesHeard, `link ${l.id}: probes still answered on the link`);
        }
        // a link's own address still leaves by its link, not into the bond
        const direct = must(await ping(lab, 'lp', '100.64.1.254', { count: 2, intervalS: 0.05, waitS: 2 }), 'ping the link 1 gateway');
        assert.equal(direct.received, 2, 'the ISP gateway on link 1 answers directly');
      });

      await t.test('mpctl down removes the NAT with the pinned object, and bond_local\'s device and routes', async () => {
        const dir = pinDir(portalInstance(lab, 'lp'));
        for (const m of ['mp_nat_out', 'mp_nat_in', 'mp_nat_fwd', 'mp_nat_fwd_out']) assert.ok(existsSync(`${dir}/${m}`), `${m} pinned while up`);
        const inLp = (...a: string[]) => run('ip', ['netns', 'exec', nsName(lab, 'lp'), ...a], 15_000);
        const { dev } = bondLocalDevices(portalInstance(lab, 'lp'));
        const routes = async () => `${must(await inLp('ip', '-4', 'route', 'show', 'table', 'main'), 'routes')}${must(await inLp('ip', '-6', 'route', 'show', 'table', 'main'), 'routes')}`;
        assert.match(await routes(), new RegExp(`^0\\.0\\.0\\.0/1 dev ${dev} .*src 192\\.168\\.1\\.1`, 'm'), 'bond_local route while up');
        must(await inLp(mpctlPath(), 'down', '--instance', portalInstance(lab, 'lp')), 'mpctl down');
        assert.equal(existsSync(dir), false, `${dir} removed`);
        const left = await routes();
        assert.ok(!left.includes('mpl'), `no route into the bond device left:\n${left}`);
        assert.ok(!must(await inLp('ip', '-o', 'link', 'show'), 'links').includes('mpl'), 'the bond device is gone');
      });
    },
    { bond: true, lan: true, lp: { portForwards: [`tcp/${FORWARD_PORT} -> ${LAN.hosts.host1.v4}:${FORWARD_PORT}`] } },
  );
});
