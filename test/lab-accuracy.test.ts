// The lab's own accuracy, measured through it with ping and iperf3.
//
//   lp wan1 ══ isp1 [linkem + tbf] ══ inet     20 Mbit both ways, 10 ms each way
//   lp wan2 ══ isp2 [linkem + tbf] ══ inet     up 8 Mbit / 5 ms, down 30 Mbit / 15 ms
//
// Rates are compared as TCP goodput against rate × 1448/1514 (tbf counts whole frames).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { getState, labRtPrio, linkemPath } from '../src/lab/emulator.js';
import { labSet, labStatus } from '../src/lab/lab.js';
import { nsName } from '../src/lab/topology.js';
import { iperf, linkAddrs, ping, TCP_GOODPUT_RATIO } from '../src/lab/measure.js';
import { parseScenario } from '../src/lab/scenario.js';
import { measuredAgain } from './helpers/again.js';
import { withLab } from './helpers/lab.js';

const scenario = parseScenario(
  {
    links: [
      { label: 'a', rate: '20mbit', delay: '10ms', queue: '60ms' },
      { label: 'b', up: { rate: '8mbit', delay: '5ms' }, down: { rate: '30mbit', delay: '15ms' }, queue: '60ms' },
    ],
  },
  'test',
)._unsafeUnwrap();

/** Ping replies ([time s, rtt ms]) against the RTT `want`: their median RTT, and the replies 2 ms
 * or more off it (a late wake-up of ping or of the emulator on this shared machine). */
function rttsAround(replies: readonly [number, number][], want: number): { median: number; off: [number, number][] } {
  const rtts = replies.map(([, rtt]) => rtt).sort((a, b) => a - b);
  return { median: rtts[Math.floor(rtts.length / 2)]!, off: replies.filter(([, rtt]) => Math.abs(rtt - want) >= 2) };
}

const ok = <T>(r: { isOk(): boolean; _unsafeUnwrap(): T; isErr(): boolean }, what: string): T => {
  assert.ok(r.isOk(), `${what}: ${r.isErr() ? JSON.stringify((r as unknown as { error: unknown }).error) : ''}`);
  return r._unsafeUnwrap();
};

test('lab accuracy: rate, delay, loss, outage, runtime change', { timeout: 240_000 }, async (t) => {
  await withLab(scenario, async (lab) => {
    // the links are measured at once (each has its own emulator and shaper), one direction at a
    // time. A link outside the bound is measured once more, alone: on this shared 2-CPU machine a
    // neighbour's burst can take a pair of concurrent iperf3s below 95 % (CI of 4ab558c: 94.6 %,
    // with the RTT test below 1.2 ms high in the same minute); an emulator that is really off
    // misses twice
    await t.test('rate within ±5 % of the setting, both directions (iperf3 TCP)', async () => {
      const want = (k: number, dir: 'up' | 'down') => scenario.links[k]![dir].rateBps! * TCP_GOODPUT_RATIO;
      const measure = async (k: number, dir: 'up' | 'down') => {
        const a = linkAddrs(k + 1);
        const r = ok(
          await iperf(lab, { server: { node: 'inet', addr: a.gw }, client: { node: 'lp', addr: a.lp }, seconds: 4, omitS: 1, reverse: dir === 'down' }),
          'iperf3',
        );
        return r.bps / want(k, dir);
      };
      const inBound = (ratio: number) => ratio > 0.95 && ratio < 1.05;
      for (const dir of ['up', 'down'] as const) {
        const ratios = await Promise.all(scenario.links.map((_, k) => measure(k, dir)));
        for (const [k, first] of ratios.entries()) {
          const link = scenario.links[k]!;
          const goodput = want(k, dir);
          t.diagnostic(`${link.node} ${dir}: ${((first * goodput) / 1e6).toFixed(2)} Mbit/s goodput = ${(first * 100).toFixed(1)} % of ${(goodput / 1e6).toFixed(2)}`);
          const ratio = await measuredAgain((l) => t.diagnostic(l), `${link.node} ${dir}`, () => measure(k, dir), inBound, (x) => `${(x * 100).toFixed(1)} %`, first);
          assert.ok(inBound(ratio), `${link.node} ${dir} ratio ${first}, then alone ${ratio}`);
        }
      }
    });

    // the delay is judged on the median RTT: the mean also carries scheduling hiccups of this
    // shared machine (a late wake-up of ping or of the emulator delays the 10 ms pings behind it),
    // which are bounded separately, as in the runtime-change test below
    await t.test('RTT within ±1 ms of the two one-way delays (ping, IPv4 and IPv6)', async () => {
      await Promise.all(
        scenario.links.map(async (link, k) => {
          const want = (link.up.delayUs + link.down.delayUs) / 1000;
          for (const [from, to] of [
            [linkAddrs(k + 1).lp, linkAddrs(k + 1).gw],
            [`fd00:64:${k + 1}::1`, `fd00:64:${k + 1}::fe`],
          ] as const) {
            ok(await ping(lab, 'lp', to, { count: 1, intervalS: 0.01, from }), 'warm-up (ARP/ND)');
            const p = ok(await ping(lab, 'lp', to, { count: 100, intervalS: 0.01, from, timestamps: true }), 'ping');
            const { median, off } = rttsAround(p.replies, want);
            t.diagnostic(`${link.node} ${to}: rtt median ${median} avg ${p.avgMs} ms mdev ${p.mdevMs}, ${off.length} more than 2 ms off (set ${want} ms)`);
            assert.equal(p.received, 100);
            assert.equal(p.replies.length, 100);
            assert.ok(Math.abs(median - want) <= 1, `median ${median} vs ${want}`);
            assert.ok(off.length <= 10, `off: ${JSON.stringify(off)}`);
          }
        }),
      );
    });

    await t.test('loss within a binomial bound of the setting', async () => {
      ok(await labSet({ name: lab, node: 'isp1', dirs: ['up'], patch: { lossPpm: 50_000 } }), 'set loss');
      const a = linkAddrs(1);
      // iperf3 UDP at 8 Mbit/s of 1400-byte datagrams for 3 s: ~2100 datagrams, loss counted at the receiver
      const r = ok(
        await iperf(lab, { server: { node: 'inet', addr: a.gw }, client: { node: 'lp', addr: a.lp }, seconds: 3, udpBps: 8e6 }),
        'iperf3 -u',
      );
      const n = r.packets!;
      const lost = r.lostPackets!;
      const mean = n * 0.05;
      const sd = Math.sqrt(n * 0.05 * 0.95);
      t.diagnostic(`5 % loss: lost ${lost} of ${n} datagrams (expected ${mean.toFixed(0)} ± ${(4 * sd).toFixed(1)})`);
      assert.ok(n > 1500, `sent ${n}`);
      assert.ok(Math.abs(lost - mean) <= 4 * sd, `lost ${lost}`);
      const st = ok(await labStatus(lab), 'status');
      const dropped = st.links[0]!.up.live!.stats.droppedLoss;
      // the emulator also dropped some of iperf3's TCP control segments: at least the datagrams
      assert.ok(dropped >= lost && dropped < lost + 50, `emulator counted ${dropped}`);
      ok(await labSet({ name: lab, node: 'isp1', dirs: ['up'], patch: { lossPpm: 0 } }), 'unset loss');
    });

    await t.test('an outage drops 100 % and recovery restores traffic', async () => {
      const a = linkAddrs(2);
      ok(await labSet({ name: lab, node: 'isp2', dirs: ['up', 'down'], patch: { down: true } }), 'cut');
      const cut = ok(await ping(lab, 'lp', a.gw, { count: 50, intervalS: 0.01, from: a.lp, waitS: 0.2 }), 'ping');
      assert.equal(cut.received, 0);
      const v6 = ok(await ping(lab, 'lp', 'fd00:64:2::fe', { count: 10, intervalS: 0.01, waitS: 0.2 }), 'ping6');
      assert.equal(v6.received, 0);
      ok(await labSet({ name: lab, node: 'isp2', dirs: ['up', 'down'], patch: { down: false } }), 'restore');
      const back = ok(await ping(lab, 'lp', a.gw, { count: 20, intervalS: 0.01, from: a.lp }), 'ping');
      assert.equal(back.received, 20);
    });

    await t.test('the emulators run at SCHED_FIFO priority 10 (frames leave on time on a loaded machine)', async () => {
      for (const node of ['isp1', 'isp2']) {
        const pid = ok(await getState(nsName(lab, node)), `state of ${node}`).pid;
        // /proc/<pid>/stat after the command's ")": field 40 rt_priority, 41 policy (1 = SCHED_FIFO)
        const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        assert.deepEqual([f[41 - 3], f[40 - 3]], ['1', '10'], `${node}'s linkem (pid ${pid}): policy, priority`);
      }
    });

    await t.test('a runtime change takes effect within 1 s, while traffic flows', async () => {
      const a = linkAddrs(1);
      const flow = ping(lab, 'lp', a.gw, { count: 300, intervalS: 0.01, from: a.lp, timestamps: true });
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = Date.now() / 1000;
      ok(await labSet({ name: lab, node: 'isp1', dirs: ['up', 'down'], patch: { delayUs: 40_000 } }), 'set delay');
      const p = ok(await flow, 'ping');
      // a reply's timestamp is when it arrived: the first one carrying the new 80 ms RTT
      const first = p.replies.find(([, rtt]) => rtt > 70);
      assert.ok(first, 'some reply saw the new delay');
      const sent = first[0] - first[1] / 1000;
      t.diagnostic(`new delay applied to a packet sent ${((sent - t0) * 1000).toFixed(0)} ms after the set command started`);
      assert.ok(sent - t0 < 1, `took ${sent - t0}s`);
      const after = p.replies.filter(([ts]) => ts > first[0] + 0.2);
      // the new delay sticks: the median is the new RTT, and only scheduling hiccups of this
      // shared 2-CPU machine (a late wake-up of ping or of the emulator) may stray from it. They
      // come in bursts (one late wake-up delays every 10 ms ping behind it): a fresh CI run with
      // unit tests running beside it had 13 of 217 replies 2-5 ms late, 8 of them within 0.5 s
      const { median, off } = rttsAround(after, 80);
      t.diagnostic(`after the change: median ${median} ms over ${after.length} replies, ${off.length} more than 2 ms off`);
      assert.ok(after.length > 100, `only ${after.length} replies after the change`);
      assert.ok(Math.abs(median - 80) < 1, `median ${median}`);
      assert.ok(off.length <= after.length * 0.1, `off: ${JSON.stringify(off.slice(0, 10))} of ${after.length}`);
    });
  });
});

test('the lab emulators\' priority: MPCTL_LINKEM_RT_PRIO, checked; linkem rejects a bad --rt-prio', () => {
  assert.equal(labRtPrio({})._unsafeUnwrap(), 10);
  assert.equal(labRtPrio({ MPCTL_LINKEM_RT_PRIO: '0' })._unsafeUnwrap(), 0);
  assert.equal(labRtPrio({ MPCTL_LINKEM_RT_PRIO: '42' })._unsafeUnwrap(), 42);
  for (const bad of ['-1', '100', 'high', '1.5']) {
    const e = labRtPrio({ MPCTL_LINKEM_RT_PRIO: bad });
    assert.ok(e.isErr() && e.error.kind === 'ConfigInvalid' && e.error.path === 'MPCTL_LINKEM_RT_PRIO' && e.error.value === bad, bad);
  }
  const r = spawnSync(linkemPath(), ['--a', 'x', '--b', 'y', '--rt-prio', '100'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--rt-prio: invalid value '100'/);
  assert.match(execFileSync(linkemPath(), ['--help'], { encoding: 'utf8' }), /--rt-prio/);
});
