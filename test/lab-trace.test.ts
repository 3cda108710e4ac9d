// The lab's trace-driven links and schedules, measured through the lab with iperf3 and ping.
//
//   lp wan1 ══ isp1 [linkem: const-12mbit.trace both ways, 10 ms each way] ══ inet
//   lp wan2 ══ isp2 [linkem: lte-short.trace (2-40 Mbit/s, 5 s period) up, 5 ms] ══ inet
//
//   schedule lab: isp1 10 ms each way; at 2 s 40 ms (lab up's `mpctl lab schedule` applies it)
//
// A trace line is one 1500-byte delivery opportunity (IP bytes): a constant trace of one line
// a millisecond is 12 Mbit/s of IP packets, i.e. 12 × 1448/1500 Mbit/s of TCP goodput.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labSet, labStatus } from '../src/lab/lab.js';
import { iperf, linkAddrs, ping } from '../src/lab/measure.js';
import { parseScenario } from '../src/lab/scenario.js';
import { labDir } from '../src/lab/state.js';
import { withLab } from './helpers/lab.js';

const TRACES = join(import.meta.dirname, 'fixtures', 'traces');
const TCP_PER_OPP = (1500 - 20 - 20 - 12) / 1500;
const UDP_PER_OPP = 1400 / (1400 + 8 + 20);

const ok = <T>(r: { isOk(): boolean; _unsafeUnwrap(): T; isErr(): boolean }, what: string): T => {
  assert.ok(r.isOk(), `${what}: ${r.isErr() ? JSON.stringify((r as unknown as { error: unknown }).error) : ''}`);
  return r._unsafeUnwrap();
};

const scenario = parseScenario(
  {
    links: [
      { label: 'const', trace: 'const-12mbit.trace', delay: '10ms', queue: '60ms' },
      { label: 'lte', delay: '5ms', queue: '100ms', up: { trace: 'lte-short.trace' } },
    ],
  },
  'test',
  TRACES,
)._unsafeUnwrap();

test('trace-driven links: goodput follows the trace, lab set works on top', { timeout: 240_000 }, async (t) => {
  await withLab(scenario, async (lab) => {
    await t.test('a constant 12 Mbit/s trace delivers 12 Mbit/s of IP packets (TCP, both directions)', async () => {
      const a = linkAddrs(1);
      for (const reverse of [false, true]) {
        const r = ok(await iperf(lab, { server: { node: 'inet', addr: a.gw }, client: { node: 'lp', addr: a.lp }, seconds: 4, omitS: 1, reverse }), 'iperf3');
        const want = 12e6 * TCP_PER_OPP;
        t.diagnostic(`isp1 ${reverse ? 'down' : 'up'}: ${(r.bps / 1e6).toFixed(2)} Mbit/s goodput = ${((r.bps / want) * 100).toFixed(1)} % of ${(want / 1e6).toFixed(2)}`);
        assert.ok(Math.abs(r.bps / want - 1) < 0.05, `ratio ${r.bps / want}`);
      }
    });

    await t.test("a varying LTE trace delivers its mean over a whole period (UDP above its peak)", async () => {
      const a = linkAddrs(2);
      const mean = scenario.links[1]!.up.trace!.meanBps;
      // 5 s measured = exactly one period of the trace, whatever its phase
      const r = ok(await iperf(lab, { server: { node: 'inet', addr: a.gw }, client: { node: 'lp', addr: a.lp }, seconds: 5, omitS: 1, udpBps: 50e6 }), 'iperf3 -u');
      const want = mean * UDP_PER_OPP;
      const got = r.receivedBps!;
      t.diagnostic(`isp2 up (lte-short, mean ${(mean / 1e6).toFixed(2)} Mbit/s): received ${(got / 1e6).toFixed(2)} Mbit/s of UDP payload = ${((got / want) * 100).toFixed(1)} % of ${(want / 1e6).toFixed(2)}`);
      assert.ok(Math.abs(got / want - 1) < 0.04, `ratio ${got / want}`);
      const st = ok(await labStatus(lab), 'status');
      const live = st.links[1]!.up.live!;
      assert.equal(live.trace, scenario.links[1]!.up.trace!.file);
      assert.ok(live.stats.droppedQueue > 0, 'the rate queue tail-dropped what the trace could not carry');
      assert.equal(st.links[1]!.down.live!.trace, null);
    });

    await t.test('lab set changes the delay of a trace-driven link without restarting its trace', async () => {
      const a = linkAddrs(1);
      ok(await labSet({ name: lab, node: 'isp1', dirs: ['up', 'down'], patch: { delayUs: 30_000 } }), 'set delay');
      ok(await ping(lab, 'lp', a.gw, { count: 1, intervalS: 0.01, from: a.lp }), 'warm-up');
      const p = ok(await ping(lab, 'lp', a.gw, { count: 50, intervalS: 0.02, from: a.lp }), 'ping');
      t.diagnostic(`isp1 rtt avg ${p.avgMs} ms (60 ms of delay + up to 1 ms a way waiting for an opportunity)`);
      assert.ok(p.avgMs >= 60 && p.avgMs < 63, `avg ${p.avgMs}`);
      const st = ok(await labStatus(lab), 'status');
      assert.equal(st.links[0]!.up.live!.trace, scenario.links[0]!.up.trace!.file);
      const r = ok(await iperf(lab, { server: { node: 'inet', addr: a.gw }, client: { node: 'lp', addr: a.lp }, seconds: 3, omitS: 2 }), 'iperf3');
      t.diagnostic(`isp1 up after the change: ${(r.bps / 1e6).toFixed(2)} Mbit/s`);
      assert.ok(Math.abs(r.bps / (12e6 * TCP_PER_OPP) - 1) < 0.05, `goodput ${r.bps}`);
    });
  });
});

test('a schedule step is applied on time by lab up', { timeout: 120_000 }, async (t) => {
  const sc = parseScenario({ links: [{ label: 'sched', rate: '20mbit', delay: '10ms', schedule: [{ at: '3s', delay: '40ms', loss: '0%' }] }] }, 'test')._unsafeUnwrap();
  await withLab(sc, async (lab) => {
    const a = linkAddrs(1);
    const p = ok(await ping(lab, 'lp', a.gw, { count: 800, intervalS: 0.01, from: a.lp, timestamps: true }), 'ping');
    const log = await readFile(join(labDir(lab), 'schedule.log'), 'utf8');
    const started = /^(\S+) schedule of lab \S+ started$/m.exec(log);
    assert.ok(started, log);
    const t0 = Date.parse(started[1]!) / 1000;
    const late = /\(applied (\d+) ms late\)/.exec(log);
    assert.ok(late, log);
    // the first reply carrying the new 80 ms RTT: when was its request sent?
    const first = p.replies.find(([, rtt]) => rtt > 70);
    assert.ok(first, 'some reply saw the new delay');
    const sentAfter = first[0] - first[1] / 1000 - t0;
    t.diagnostic(`step at 3 s: applied ${late[1]} ms late (runner), first packet with the new delay sent ${(sentAfter * 1000).toFixed(0)} ms after the schedule started`);
    assert.ok(Number(late[1]) < 150, `runner: ${late[1]} ms late`);
    assert.ok(sentAfter > 2.9 && sentAfter < 3.2, `took effect at ${sentAfter} s`);
    const before = p.replies.filter(([ts, rtt]) => ts - rtt / 1000 - t0 < 2.9);
    // (the first request waits for ARP; a reply delayed by a busy CPU is not the new delay: only
    // the step's 80 ms round trip counts)
    const slow = before.slice(1).filter(([, rtt]) => rtt >= 70);
    assert.ok(before.length > 50 && slow.length === 0, `the old delay held until the step: ${before.length} replies, slow ${JSON.stringify(slow.slice(0, 5))}`);
    const st = ok(await labStatus(lab), 'status');
    assert.equal(st.links[0]!.up.delayUs, 40_000);
  });
});
