// Packets the tunnel cannot carry whole, end to end: the segmentation loop (bpf/loop.h) and the
// ICMP answers, through the same `mpctl up` path a user deploys.
//
//   client 198.51.100.10 ── lan [ lp ] ═╦═ isp1 ═╦═ inet ── wan [ rp ] srv ── server 203.0.113.2
//   eth0 MTU 1500          mpf…a ⇄ mpf…b ╚═ isp2 ═╝      mpf…a ⇄ mpf…b
//
//   inner MTU: LP 1448 (1500 − IPv4 − UDP − mp_hdr), RP 1428 (it assumes the IPv6 underlay)
//
// (a) IPv4 without DF, 1488 bytes: the LP fragments it in its loop, the server's 1488-byte reply
//     (no DF either) is fragmented in the RP's loop. (b) the same with DF: ICMP "fragmentation
//     needed" from the LP. (c) IPv6, 1488 bytes: ICMPv6 "packet too big". (d) TCP: MSS clamped,
//     nothing too big. (e) GRO forced on where encap runs: super-packets go round the loop, the
//     flow carries on, no GSO drops. (f) a single-interface RP fragments the replies too: the
//     client has the RP's own address, so they enter its loop addressed to a stand-in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { iperf } from '../src/lab/measure.js';
import { parseScenario } from '../src/lab/scenario.js';
import { nsName } from '../src/lab/topology.js';
import { must, withLab } from './helpers/lab.js';
import { labStatus } from './helpers/wait.js';
import type { PortalStatus } from '../src/run/status.js';

const SERVER = { v4: '203.0.113.2', v6: '2001:db8:113::2' };
const LP_INNER_MTU = 1500 - 20 - 8 - 24;

const links = (n: number, rate: string, delay: string) =>
  parseScenario({ links: Array.from({ length: n }, (_, i) => ({ label: `l${i + 1}`, rate, delay, queue: '60ms' })) }, 't')._unsafeUnwrap();

/** A portal's drops by reason and loop counters, read in this process as `mpctl status --json`
 * prints them. */
type Status = Pick<PortalStatus, 'drops' | 'loop'>;
const status = labStatus;

/** Counter increases between two status readings (drops by reason, loop counters). */
function delta(a: Status, b: Status): { drops: Record<string, number>; loop: Status['loop'] } {
  const drops: Record<string, number> = {};
  // fec_spare: a loss-recovery parity with nothing to rebuild, no packet of a flow (a fresh
  // link sends parity until its loss is known: README "Loss recovery"); fec_late: the original
  // of a packet a parity rebuilt first (its link reordered them), delivered once
  const notLoss = new Set(['fec_spare', 'fec_late']);
  for (const [k, v] of Object.entries(b.drops)) if (!notLoss.has(k) && v !== (a.drops[k] ?? 0)) drops[k] = v - (a.drops[k] ?? 0);
  return { drops, loop: { gso: b.loop.gso - a.loop.gso, frag: b.loop.frag - a.loop.frag, back: b.loop.back - a.loop.back } };
}

/** A command in a lab node: exit code and everything it printed (ping reports ICMP errors on stdout and exits 1). */
function inNode(lab: string, node: string, ...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', nsName(lab, node), ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const received = (out: string) => Number(/(\d+) received/.exec(out)?.[1] ?? -1);

/** Five 1460-byte pings without DF, client → server: all answered; the portals' counter deltas. */
async function pingNoDf(lab: string): Promise<{ lp: ReturnType<typeof delta>; rp: ReturnType<typeof delta> }> {
  const lp0 = await status(lab, 'lp');
  const rp0 = await status(lab, 'rp');
  const p = inNode(lab, 'client', 'ping', '-n', '-c', '5', '-i', '0.1', '-W', '2', '-M', 'dont', '-s', '1460', SERVER.v4);
  assert.equal(received(p.out), 5, p.out);
  assert.match(p.out, /1468 bytes from 203\.0\.113\.2/, 'whole 1460-byte replies (the client reassembled them)');
  return { lp: delta(lp0, await status(lab, 'lp')), rp: delta(rp0, await status(lab, 'rp')) };
}

test('bond MTU: too big is fragmented, answered or segmented, never silently dropped', { timeout: 180_000 }, async (t) => {
  await withLab(
    links(2, '20mbit', '5ms'),
    async (lab) => {
      await t.test('(a) IPv4 without DF above the inner MTU: fragmented in both loops, every reply back', async () => {
        const { lp, rp } = await pingNoDf(lab);
        t.diagnostic(`LP: ${JSON.stringify(lp)}  RP: ${JSON.stringify(rp)}`);
        assert.deepEqual(lp.drops, {}, 'the LP dropped nothing (no too_big)');
        assert.deepEqual(lp.loop, { gso: 0, frag: 5, back: 10 }, 'LP: 5 requests round the loop, 2 fragments each carried');
        assert.deepEqual(rp.drops, {}, 'the RP dropped nothing');
        assert.deepEqual(rp.loop, { gso: 0, frag: 5, back: 10 }, 'RP: the 5 replies (no DF) fragmented likewise');
      });

      await t.test('(b) IPv4 with DF above the inner MTU: "fragmentation needed" from the LP', async () => {
        const lp0 = await status(lab, 'lp');
        const p = inNode(lab, 'client', 'ping', '-n', '-c', '2', '-i', '0.2', '-W', '1', '-M', 'do', '-s', '1460', SERVER.v4);
        assert.match(p.out, new RegExp(`Frag needed and DF set \\(mtu = ${LP_INNER_MTU}\\)|message too long, mtu=${LP_INNER_MTU}`), p.out);
        const lp = delta(lp0, await status(lab, 'lp'));
        assert.ok((lp.drops['too_big'] ?? 0) >= 1, 'answered (counted as too_big)');
        assert.equal(lp.loop.frag, 0, 'DF: never fragmented');
      });

      await t.test('(c) IPv6 above the inner MTU: "packet too big" from the LP', async () => {
        const p = inNode(lab, 'client', 'ping', '-6', '-n', '-c', '3', '-i', '0.2', '-W', '1', '-s', '1440', SERVER.v6);
        assert.match(p.out, new RegExp(`Packet too big: mtu=${LP_INNER_MTU}`), p.out);
      });

      await t.test('(d) TCP through the bond: the MSS is clamped, nothing is too big, no stall', async () => {
        const lp0 = await status(lab, 'lp');
        const r = must(await iperf(lab, { server: { node: 'server', addr: SERVER.v4 }, client: { node: 'client' }, seconds: 2, omitS: 1 }), 'iperf3');
        t.diagnostic(`2×20 Mbit: ${(r.bps / 1e6).toFixed(2)} Mbit/s, per second ${r.intervals.map((x) => (x / 1e6).toFixed(1)).join(' ')}`);
        assert.ok(r.intervals.every((x) => x > 10e6), 'every second carried data');
        const lp = delta(lp0, await status(lab, 'lp'));
        assert.deepEqual(lp.drops, {}, 'no drops at the LP');
        assert.deepEqual(lp.loop, { gso: 0, frag: 0, back: 0 }, 'nothing needed the loop');
      });

      await t.test('(e) GRO forced on where encap runs: super-packets go round the loop, the flow carries on', async () => {
        for (const [role, dev] of [['lp', 'lan'], ['rp', 'srv']] as const) {
          const on = inNode(lab, role, 'ethtool', '-K', dev, 'gro', 'on');
          assert.equal(on.code, 0, on.out);
        }
        try {
          for (const reverse of [false, true]) {
            const role = reverse ? 'rp' : 'lp';
            const s0 = await status(lab, role);
            const r = must(
              await iperf(lab, { server: { node: 'server', addr: SERVER.v4 }, client: { node: 'client' }, seconds: 2, omitS: 1, reverse }),
              'iperf3',
            );
            const d = delta(s0, await status(lab, role));
            t.diagnostic(
              `GRO on at the ${role.toUpperCase()}: ${(r.bps / 1e6).toFixed(2)} Mbit/s (${r.intervals.map((x) => (x / 1e6).toFixed(1)).join(' ')}), ` +
                `loop ${JSON.stringify(d.loop)}, drops ${JSON.stringify(d.drops)}`,
            );
            assert.ok(r.intervals.every((x) => x > 10e6), 'every second carried data');
            assert.ok(d.loop.gso > 0, 'GRO super-packets reached encap and went round the loop');
            assert.ok(d.loop.back > d.loop.gso, 'they came back in segments');
            assert.equal(d.drops['gso'] ?? 0, 0, 'no GSO drops');
            assert.equal(d.drops['loop'] ?? 0, 0, 'no segment came back too big');
          }
        } finally {
          inNode(lab, 'lp', 'ethtool', '-K', 'lan', 'gro', 'off');
          inNode(lab, 'rp', 'ethtool', '-K', 'srv', 'gro', 'off');
        }
      });
    },
    { bond: true },
  );
});

test('single-interface RP: IPv4 without DF too big for the tunnel is fragmented too, not dropped', { timeout: 120_000 }, async (t) => {
  await withLab(
    links(2, '20mbit', '5ms'),
    async (lab) => {
      // the client has the RP's own address: the server's 1488-byte replies (no DF) go to an
      // address local to the RP, so they enter the loop addressed to 192.0.0.8 (bpf/loop.h)
      const { lp, rp } = await pingNoDf(lab);
      t.diagnostic(`LP: ${JSON.stringify(lp)}  RP: ${JSON.stringify(rp)}`);
      assert.deepEqual(rp.drops, {}, 'the RP dropped nothing (no too_big)');
      assert.deepEqual(rp.loop, { gso: 0, frag: 5, back: 10 }, 'RP: the 5 replies went round its loop, 2 fragments each carried');
      assert.deepEqual(lp.drops, {}, 'the LP dropped nothing');
    },
    { bond: true, singleInterface: true },
  );
});
