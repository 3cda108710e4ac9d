// The bond end to end, through the same `mpctl up` path a user deploys.
//
//   client 198.51.100.10 ── lp ═╦═ isp1 ═╦═ inet ── rp 198.51.100.2 ── srv ── server 203.0.113.2
//                               ╚═ isp2 ═╝
//   (client's default gateway 198.51.100.1 is answered by the LP; the RP delivers to the client)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSet } from '../src/lab/lab.js';
import { iperf, ping } from '../src/lab/measure.js';
import { parseScenario } from '../src/lab/scenario.js';
import type { PortalStatus } from '../src/run/status.js';
import { measuredAgain } from './helpers/again.js';
import { must, withLab } from './helpers/lab.js';
import { depthTrainsOver, labStatus, waitFor } from './helpers/wait.js';

const links = (n: number, rate: string, delays: string[]) =>
  parseScenario({ links: Array.from({ length: n }, (_, i) => ({ label: `l${i + 1}`, rate, delay: delays[i % delays.length], queue: '60ms' })) }, 't')._unsafeUnwrap();

/** A portal's status, read in this process as `mpctl status --json` prints it. */
const status = labStatus;

test('bond of 2 links: ping and TCP both ways, sum above the best link, survives a cut link', { timeout: 300_000 }, async (t) => {
  await withLab(
    links(2, '20mbit', ['10ms', '15ms']),
    async (lab) => {
      // not into the depth trains of the bond's start: each fills its link's buffer until it drops
      await depthTrainsOver(lab);
      await t.test('ping client ⇄ server, IPv4 and IPv6, with the client using the RP address', async () => {
        // One unasserted ping per destination first: once in many runs the very first IPv6 echo
        // went missing (neighbour discovery on a path that had never carried IPv6); what is
        // asserted is that the bonded path then carries every echo, both families, both ways.
        for (const [node, dst] of [['client', '203.0.113.2'], ['client', '2001:db8:113::2'], ['server', '198.51.100.10'], ['server', '2001:db8:100::10']] as const)
          must(await ping(lab, node, dst, { count: 1, intervalS: 0.05, waitS: 2 }), 'warm-up ping');
        for (const dst of ['203.0.113.2', '2001:db8:113::2']) {
          const p = must(await ping(lab, 'client', dst, { count: 5, intervalS: 0.05, waitS: 2 }), 'ping');
          assert.equal(p.received, 5, `client → ${dst}`);
        }
        for (const dst of ['198.51.100.10', '2001:db8:100::10']) {
          const p = must(await ping(lab, 'server', dst, { count: 5, intervalS: 0.05, waitS: 2 }), 'ping');
          assert.equal(p.received, 5, `server → ${dst}`);
        }
      });

      await t.test('one TCP flow gets more than the best single link, both directions', async () => {
        const best = 20e6 * ((1500 - 52) / 1514);
        for (const reverse of [false, true]) {
          const r = must(
            await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 3, omitS: 1, reverse }),
            'iperf3',
          );
          t.diagnostic(`2×20 Mbit ${reverse ? 'server → client' : 'client → server'}: ${(r.bps / 1e6).toFixed(2)} Mbit/s (${((r.bps / 40e6) * 100).toFixed(1)} % of the sum)`);
          assert.ok(r.bps > best * 1.2, `${r.bps} not above the best link ${best}`);
        }
        const lp = await status(lab, 'lp');
        assert.ok(lp.links.every((l) => l.state === 'up' && l.tx.packets > 100), 'both links carried data');
      });

      await t.test('UDP at 75 % of the sum: under 1 % loss', async () => {
        const r = must(
          await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 4, udpBps: 30e6 }),
          'iperf3 -u',
        );
        t.diagnostic(`UDP 30 Mbit/s over 2×20: ${(r.bps / 1e6).toFixed(2)} Mbit/s, loss ${r.lostPercent?.toFixed(3)} %, jitter ${r.jitterMs?.toFixed(3)} ms`);
        assert.ok((r.lostPercent ?? 100) < 1, `loss ${r.lostPercent}`);
      });

      await t.test('a link cut mid-flow (invisible to the LP) is dropped within 1 s and the flow continues', async () => {
        const before = await labStatus(lab, 'lp');
        const flow = iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 6 });
        // mid-flow: both links carry it (2 MB each) before the cut
        const sent = (s: PortalStatus, id: number) => (s.links.find((l) => l.id === id)?.tx.bytes ?? 0) - (before.links.find((l) => l.id === id)?.tx.bytes ?? 0);
        await waitFor('the flow on both links', () => labStatus(lab, 'lp'), (s) => sent(s, 0) > 2e6 && sent(s, 1) > 2e6, 6000);
        must(await labSet({ name: lab, node: 'isp1', dirs: ['up', 'down'], patch: { down: true } }), 'cut isp1');
        const down = await waitFor('the LP marks link 0 down', () => labStatus(lab, 'lp'), (s) => s.links.find((l) => l.id === 0)?.state === 'down', 1000);
        t.diagnostic(`link 0 down ${down.ms} ms after the cut`);
        const r = must(await flow, 'iperf3 across the cut');
        t.diagnostic(`per-second goodput across the cut: ${r.intervals.map((x) => (x / 1e6).toFixed(1)).join(' ')}`);
        assert.ok(r.intervals.slice(-3).every((x) => x > 10e6), 'the surviving link carries the flow');
        must(await labSet({ name: lab, node: 'isp1', dirs: ['up', 'down'], patch: { down: false } }), 'restore isp1');
        await waitFor('link 0 back up when probes return', () => labStatus(lab, 'lp'), (s) => s.links.find((l) => l.id === 0)?.state === 'up', 3000);
      });
    },
    { bond: true },
  );
});

test('bond of 4 links: one TCP flow adds up, both directions', { timeout: 180_000 }, async (t) => {
  await withLab(
    links(4, '10mbit', ['10ms']),
    async (lab) => {
      for (const reverse of [false, true]) {
        const dir = reverse ? 'server → client' : 'client → server';
        const enough = (bps: number) => bps > 10e6 * 2.5;
        const show = (bps: number) => `${(bps / 1e6).toFixed(2)} Mbit/s (${((bps / 40e6) * 100).toFixed(1)} % of the sum)`;
        // a 2 s figure: a miss is measured again (helpers/again.ts; one CI had a 61 % download)
        const r = await measuredAgain(
          (l) => t.diagnostic(l),
          `4×10 Mbit ${dir}`,
          async () => must(await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 3, omitS: 1, reverse }), 'iperf3'),
          (x) => enough(x.bps),
          (x) => show(x.bps),
        );
        t.diagnostic(`4×10 Mbit ${dir}: ${show(r.bps)}`);
        assert.ok(enough(r.bps), 'more than two and a half links');
      }
    },
    { bond: true },
  );
});

test('single-interface RP: the client shares the RP address; tunnel and reserved ports stay local', { timeout: 180_000 }, async () => {
  await withLab(
    links(2, '50mbit', ['5ms']),
    async (lab) => {
      // not into the depth trains of the bond's start: each fills its link's buffer until it drops
      await depthTrainsOver(lab);
      // the client now answers as 198.51.100.2 (the RP's own address)
      for (const dst of ['203.0.113.2', '2001:db8:113::2']) {
        const p = must(await ping(lab, 'client', dst, { count: 3, intervalS: 0.05, waitS: 2 }), 'ping');
        assert.equal(p.received, 3, `client → ${dst}`);
      }
      // from the Internet side (inet), a port that is not reserved reaches the client …
      const toClient = must(
        await iperf(lab, { server: { node: 'client', addr: '198.51.100.2' }, client: { node: 'inet' }, seconds: 2, port: 5999 }),
        'iperf3 inet → client via the RP address',
      );
      assert.ok(toClient.bps > 10e6, 'traffic to a non-reserved port is tunnelled to the client');
      // … while the reserved port 22 is served by the RP itself
      const toRp = must(await iperf(lab, { server: { node: 'rp', addr: '198.51.100.2' }, client: { node: 'inet' }, seconds: 1, port: 22 }), 'iperf3 inet → rp:22');
      assert.ok(toRp.bps > 10e6, 'the reserved port stays local');
      const rp = await status(lab, 'rp');
      assert.ok(rp.links.every((l) => l.state === 'up'), 'probes on the tunnel port still reach the RP');
    },
    { bond: true, singleInterface: true },
  );
});

// One lab with all four underlays (it was two labs of two, ~24 s each): IPv4/UDP, IPv6/UDP,
// IPv4 with the raw IP carrier, IPv6 with the raw IP carrier.
test('mixed underlays: links over IPv4 and IPv6, UDP and the raw IP carrier, inner IPv4 and IPv6 over all four', { timeout: 180_000 }, async (t) => {
  await withLab(
    links(4, '20mbit', ['5ms']),
    async (lab) => {
      // not into the depth trains of the bond's start: each fills its link's buffer until it drops
      await depthTrainsOver(lab);
      for (const dst of ['203.0.113.2', '2001:db8:113::2']) {
        const p = must(await ping(lab, 'client', dst, { count: 20, intervalS: 0.02, waitS: 2 }), 'ping');
        assert.equal(p.received, 20, `client → ${dst}`);
      }
      for (const addr of ['203.0.113.2', '2001:db8:113::2'])
        for (const reverse of [false, true]) {
          const r = must(await iperf(lab, { server: { node: 'server', addr }, client: { node: 'client' }, seconds: 3, omitS: 1, reverse }), 'iperf3');
          t.diagnostic(`inner ${addr.includes(':') ? 'IPv6' : 'IPv4'} ${reverse ? 'server → client' : 'client → server'}: ${(r.bps / 1e6).toFixed(2)} Mbit/s`);
          assert.ok(r.bps > 25e6, 'more than one link carries the flow');
        }
      const lp = await status(lab, 'lp');
      const names = ['IPv4/UDP', 'IPv6/UDP', 'IPv4/IP', 'IPv6/IP'];
      t.diagnostic(`endpoints: ${lp.links.map((l) => l.endpoint).join(', ')}`);
      lp.links.forEach((l, i) => {
        assert.ok(l.state === 'up' && l.tx.packets > 100 && l.rx.packets > 100, `${names[i]} used both ways: ${JSON.stringify({ state: l.state, tx: l.tx.packets, rx: l.rx.packets })}`);
        assert.equal(l.endpoint?.startsWith('['), i % 2 === 1, `${names[i]}: the RP's ${i % 2 === 1 ? 'IPv6' : 'IPv4'} address (${l.endpoint})`);
      });
      assert.equal(lp.links.length, 4);
    },
    { bond: true, ipv6Underlay: true, ipCarrier: [3, 4] },
  );
});
