// The congestion-control loop of a running portal (src/cc/loop.ts) and its byte-budget
// keeper (src/cc/budget-loop.ts) against a recording fake of the data path: what is written
// into mp_links and when. No root, no kernel.
//   node --import tsx --test test/cc-portal.test.ts

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ok } from 'neverthrow';
import type { LinkCounters } from '../src/cc/budget.js';
import { decodeFeedbackPacket, encodeFeedbackPacket, type LinkFeedback } from '../src/cc/feedback.js';
import { MP_LINK_F_FEC, MP_LINK_F_HELD, MP_LINK_UP, MP_MAX_LINKS, NO_ADDR, type MpLink, type MpRx, type MpSched } from '../src/datapath/abi.js';
import { learnedLink } from '../src/apply/datapath.js';
import { BudgetKeeper, controlWireBytes } from '../src/cc/budget-loop.js';
import { BUSY_HOLD_MS, CcLoop, FEEDBACK_INTERVAL_MS, FEEDBACK_QUIET_MS, HOLD_SHARE, monoUs, QUIET_STALE_MS, SILENCE_REPORT_MS, type CcDatapath, type Hold } from '../src/cc/loop.js';

/** A data path in memory: counters and mp_sched set by the test, writes recorded. */
function fakeDp() {
  const counters = new Map<number, LinkCounters>();
  const sched: MpSched = {
    seq: 0,
    busyUntilNs: Array(MP_MAX_LINKS).fill(0n),
    linkSeq: Array(MP_MAX_LINKS).fill(0),
    sentBytes: Array(MP_MAX_LINKS).fill(0n),
  };
  const estimates: { id: number; rateBps: bigint; owdUs: number; noAcks?: boolean; fec?: boolean; hold?: Hold; planCapMs?: number }[] = [];
  const budgets: { id: number; bytes: bigint }[] = [];
  const dp: CcDatapath = {
    readRx: () => ok(null as MpRx | null),
    txBytes: (id) => ok(counters.get(id)?.txBytes ?? 0n),
    owdUs: () => ok(10_000),
    setEstimate: (id, rateBps, owdUs, noAcks, fec, hold, planCapMs) => {
      estimates.push({ id, rateBps, owdUs, ...(noAcks ? { noAcks } : {}), ...(fec ? { fec } : {}), ...(hold ? { hold } : {}), ...(planCapMs ? { planCapMs } : {}) });
      return ok(undefined);
    },
    sched: () => ok(sched),
    counters: (id) => ok(counters.get(id) ?? null),
    setBudget: (id, bytes) => {
      budgets.push({ id, bytes });
      return ok(undefined);
    },
  };
  return { dp, counters, sched, estimates, budgets };
}

const c = (tx: number, rx: number): LinkCounters => ({ txBytes: BigInt(tx), rxBytes: BigInt(rx), txPackets: 0n, rxPackets: 0n });
const MB = 1_000_000;
const noLog = () => {};

describe('budget keeper', () => {
  it('writes budget_bytes = what the scheduler sent + what is left of the allowance', () => {
    const f = fakeDp();
    const b = new BudgetKeeper(f.dp, noLog);
    const t0 = Date.UTC(2026, 0, 10);
    b.addLink(1, { limitBytes: 10 * MB, period: { kind: 'monthly', day: 1 } }, t0);
    b.addLink(2, { limitBytes: 0, period: { kind: 'none' } }, t0); // no budget: never written
    f.counters.set(1, c(0, 0));
    b.tick(t0);
    assert.deepEqual(f.budgets, [{ id: 1, bytes: BigInt(10 * MB) }]);
    // 3 MB sent and 1 MB received: 6 MB left, on top of the 3 MB the scheduler counted
    f.counters.set(1, c(3 * MB, 1 * MB));
    f.sched.sentBytes[1] = BigInt(3 * MB);
    b.tick(t0 + 1000);
    assert.deepEqual(f.budgets.at(-1), { id: 1, bytes: BigInt(9 * MB) });
    b.tick(t0 + 1020);
    assert.equal(f.budgets.length, 2, 'unchanged: not written again');
    assert.equal(b.has(2), false);
  });

  it('a spent link gets a line at what it sent (nothing more); the next period raises it', () => {
    const f = fakeDp();
    const logs: string[] = [];
    const b = new BudgetKeeper(f.dp, (m) => logs.push(m));
    const t0 = Date.UTC(2026, 0, 31, 23, 0);
    b.addLink(0, { limitBytes: 5 * MB, period: { kind: 'daily' } }, t0);
    f.counters.set(0, c(0, 0));
    b.tick(t0);
    f.counters.set(0, c(4 * MB, 2 * MB));
    f.sched.sentBytes[0] = BigInt(4 * MB);
    b.tick(t0 + 60_000);
    assert.deepEqual(f.budgets.at(-1), { id: 0, bytes: BigInt(4 * MB) });
    assert.ok(logs.includes('link 0 budget exhausted'), logs.join('; '));
    assert.equal(b.status(0, t0 + 60_000)?.remainingBytes, 0);
    // midnight UTC: a new day's 5 MB
    b.tick(t0 + 3_600_000);
    assert.deepEqual(f.budgets.at(-1), { id: 0, bytes: BigInt(9 * MB) });
    assert.ok(logs.includes('link 0 budget ok'), logs.join('; '));
  });

  it('control messages (probes, feedback, handshakes: through the sockets, not the data path) count too', () => {
    const f = fakeDp();
    const b = new BudgetKeeper(f.dp, noLog);
    b.addLink(0, { limitBytes: 10_000, period: { kind: 'none' } });
    f.counters.set(0, c(1000, 1000));
    b.tick();
    // 10 probes of 56 B out and 10 replies in, over IPv4/UDP (84 B each on the wire)
    for (let i = 0; i < 10; i++) {
      b.countControl(0, 'tx', controlWireBytes(56, 4));
      b.countControl(0, 'rx', controlWireBytes(56, 4));
    }
    b.countControl(1, 'tx', 1e6); // a link without a budget: ignored
    b.tick();
    assert.equal(b.status(0)?.usedBytes, 20 * 84, 'counted from the first tick on, like the data path counters');
    assert.equal(controlWireBytes(56, 6), 104);
  });

  it('a spent link that never sent gets a 1-byte line, never 0 (which would mean no budget)', () => {
    const f = fakeDp();
    const b = new BudgetKeeper(f.dp, noLog);
    b.addLink(3, { limitBytes: 1000, period: { kind: 'none' } });
    f.counters.set(3, c(0, 0));
    b.tick();
    f.counters.set(3, c(0, 5000)); // the peer spent it
    b.tick();
    assert.deepEqual(f.budgets.at(-1), { id: 3, bytes: 1n });
  });
});

describe('congestion-control loop', () => {
  const record = (r: Partial<LinkFeedback> = {}): LinkFeedback => ({
    linkId: 0,
    intervalUs: 20_000,
    bytes: 50_000,
    packets: 34,
    maxLinkSeq: 100,
    owdMinUs: 5_000,
    owdMaxUs: 6_000,
    lost: 0,
    echoTsUs: null,
    echoDelayUs: null,
    ...r,
  });

  it('writes each link estimate on feedback; with congestion_control = false it writes nothing', () => {
    for (const adaptive of [true, false]) {
      const f = fakeDp();
      const loop = new CcLoop(f.dp, noLog, { adaptive });
      loop.addLink(0, { rateBps: 10e6, owdUs: 10_000 });
      for (let seq = 1; seq <= 3; seq++) assert.ok(loop.onFeedbackPacket(encodeFeedbackPacket({ seq, records: [record()] }, 0, 0)));
      assert.equal(loop.active(0), true);
      assert.equal(f.estimates.length > 0, adaptive, `adaptive ${adaptive}: ${f.estimates.length} writes`);
      assert.equal(loop.status(0)?.feedback, 3, 'the controller runs either way (status shows it)');
    }
  });

  it("takes the LP's measured delay for a link as its hint until the link measures a round trip", () => {
    // RP: every LP probe repeats addLink; its delay (the LP's measured one, runtime request())
    // replaces the hint only while our controller has measured nothing
    const loop = new CcLoop(fakeDp().dp, noLog);
    loop.addLink(0, { rateBps: 10e6, owdUs: 10_000 });
    assert.equal(loop.measuredOwdUs(0), null);
    loop.addLink(0, { rateBps: 10e6, owdUs: 40_000 });
    assert.equal(loop.status(0)!.rttMs, 80);
    loop.onProbeRtt(0, 50_000);
    assert.equal(loop.measuredOwdUs(0), 25_000);
    loop.addLink(0, { rateBps: 10e6, owdUs: 40_000 });
    assert.equal(loop.status(0)!.rttMs, 50);
  });

  it('a capacity train starts an idle link at its measurement, written at once (also after idle feedback); a link that carried data keeps its own', () => {
    const f = fakeDp();
    let nowUs = monoUs();
    const loop = new CcLoop(f.dp, noLog, { clock: () => nowUs });
    for (const id of [0, 1]) loop.addLink(id, { rateBps: 10e6, owdUs: 10_000 }); // no rate configured: the 10 Mbit/s start
    loop.onProbeRtt(0, 20_000);
    assert.equal(loop.output(0), null, 'before feedback: the static estimate rules');
    // idle feedback (the peer hears us, nothing of ours delivered) on link 0; data on link 1
    nowUs += 20_000;
    loop.onFeedbackPacket(encodeFeedbackPacket({ seq: 1, records: [record({ linkId: 0, bytes: 0, packets: 0, owdMinUs: null, owdMaxUs: null }), record({ linkId: 1 })] }, 0, 0));
    const writes = f.estimates.length;
    assert.equal(loop.seedRate(0, 30e6), true);
    assert.equal(loop.status(0)!.bwBps, 30e6, 'the controller starts from the measurement');
    assert.equal(loop.status(0)!.rttMs, 20, 'and keeps the round trip its probes measured');
    const w = f.estimates.slice(writes).filter((e) => e.id === 0);
    assert.equal(w.length, 1, 'written at once');
    assert.equal(w[0]!.rateBps, 30_000_000n);
    assert.equal(loop.output(0)!.rateBps, 30_000_000n, "the RP's learn writes it too (output)");
    assert.equal(loop.seedRate(1, 30e6), false, 'link 1 carried data: its feedback measures it');
    assert.notEqual(loop.status(1)!.bwBps, 30e6);
    assert.equal(loop.seedRate(5, 30e6), false, 'an unknown link');
  });

  it('writes a hold rate under the bandwidth estimate; a link without feedback is held, and released when feedback returns', () => {
    // README "The data path outlives its control plane": the data path plans a held link at
    // hold_kbps (bpf/schedule.h), not at the pacing rate of the moment (a probing gain, a drain)
    const f = fakeDp();
    let nowUs = monoUs();
    const loop = new CcLoop(f.dp, noLog, { clock: () => nowUs });
    loop.addLink(0, { rateBps: 20e6, owdUs: 10_000 });
    let seq = 0;
    const feed = (n: number) => {
      for (let i = 0; i < n; i++) {
        nowUs += 20_000;
        loop.tick();
        seq++;
        loop.onFeedbackPacket(encodeFeedbackPacket({ seq, records: [record({ maxLinkSeq: 100 + 34 * seq })] }, 0, 0));
      }
    };
    feed(50); // 50 kB per 20 ms: 20 Mbit/s delivered
    const live = f.estimates.at(-1)!;
    const bw = loop.status(0)!.bwBps;
    assert.ok(bw > 15e6, `bandwidth estimate ${bw}`);
    assert.deepEqual(live.hold, { kbps: (bw * HOLD_SHARE) / 1000, held: false }, 'live: a hold rate, not held');
    // the peer's control plane is gone mid-flow: no feedback while our packets go on; once the
    // estimate is stale the link is held
    const before = f.estimates.length;
    for (let i = 0; i < 20; i++) {
      nowUs += 20_000;
      f.sched.linkSeq[0] += 30;
      loop.tick();
    }
    assert.equal(loop.status(0)!.stale, true);
    assert.equal(f.estimates.length, before + 1, 'one write when the link goes stale');
    assert.equal(f.estimates.at(-1)!.hold?.held, true, 'held');
    feed(1);
    assert.equal(f.estimates.at(-1)!.hold?.held, false, 'released by the next feedback');
    // before any feedback there is no estimate to hold
    const g = fakeDp();
    const fresh = new CcLoop(g.dp, noLog, { clock: () => nowUs });
    fresh.addLink(0, { rateBps: 20e6, owdUs: 10_000 });
    for (let i = 0; i < 20; i++) {
      nowUs += 20_000;
      fresh.tick();
    }
    assert.ok(g.estimates.every((e) => !e.hold || e.hold.kbps === 0), JSON.stringify(g.estimates.map((e) => e.hold)));
  });

  it("the RP's learning a link from the LP's probe keeps what the controller wrote: its hold rate and flags", () => {
    // learn() runs at every request whose estimate changed (up to 10 a second per link); it
    // wrote hold_kbps 0 until the next feedback, and an RP killed then left the link unheld
    const held: MpLink = {
      ifindex: 7, state: MP_LINK_UP, carrier: 0, metric: 0, flags: MP_LINK_F_HELD | MP_LINK_F_FEC, mtu: 1500, owdUs: 10_400, rateBps: 19_800_000n,
      local: NO_ADDR, nexthop: NO_ADDR, localPort: 4500, holdKbps: 19_300, budgetBytes: 0n,
    };
    const own = { ifindex: 7, mtu: 1500, local: NO_ADDR, port: 4500 };
    const l = learnedLink(held, { rateBps: 24_700_000n, owdUs: 10_500, metric: 0, carrier: 0 }, own);
    assert.equal(l.holdKbps, 19_300);
    assert.equal(l.flags, MP_LINK_F_HELD | MP_LINK_F_FEC);
    assert.deepEqual([l.rateBps, l.owdUs], [24_700_000n, 10_500], "the request's estimate is written");
    assert.equal(learnedLink(null, { rateBps: 1_000_000n, owdUs: 10_000, metric: 0, carrier: 0 }, own).holdKbps, 0, 'a new link: no hold yet');
  });

  it("output() (the RP's estimate written with each LP request) is what write() gave the scheduler: a link with parity is not capped by its raw loss", () => {
    // lab, 2x20 with 1 % loss on one, before: each LP request had the RP write the lossy link at
    // the share its raw loss allows (5 %) until the next feedback; downloads got 66-77 % of the sum
    const f = fakeDp();
    let nowUs = monoUs();
    const loop = new CcLoop(f.dp, noLog, { clock: () => nowUs });
    loop.addLink(0, { rateBps: 20e6, owdUs: 10_000 });
    loop.addLink(1, { rateBps: 20e6, owdUs: 10_000 });
    for (let seq = 1; seq <= 150; seq++) {
      nowUs += 20_000;
      loop.tick();
      // 34 packets per record on each; link 1 loses one of every 100 (at random, no queue)
      const lost = seq % 3 === 0 ? 1 : 0;
      const records = [record({ linkId: 0, maxLinkSeq: 34 * seq }), record({ linkId: 1, maxLinkSeq: 34 * seq, packets: 34 - lost, lost })];
      assert.ok(loop.onFeedbackPacket(encodeFeedbackPacket({ seq, records }, 0, 0)));
    }
    const last = (id: number) => f.estimates.filter((e) => e.id === id).at(-1)!;
    assert.equal(last(1).fec, true, 'link 1 sends parity');
    assert.equal(last(0).fec, undefined, 'the clean link stopped after its first packets');
    assert.ok(last(1).rateBps > last(0).rateBps / 2n, `link 1 uncapped: ${last(1).rateBps} vs ${last(0).rateBps}`);
    assert.equal(loop.output(1)!.rateBps, last(1).rateBps, 'output() = the last write');
    assert.equal(loop.output(0)!.rateBps, last(0).rateBps);
    // status shows each link's random loss: 1 of 102 sequence numbers on link 1, none on link 0
    const rl = loop.status(1)!.randomLossPct!;
    assert.ok(rl > 0.5 && rl < 1.5, `link 1's random loss ${rl} %`);
    assert.equal(loop.status(0)!.randomLossPct, 0);
  });

  /** One link of 20 Mbit/s (34 packets per 20 ms record) with the loop's clock by hand: for
   * each record the scheduler's backlog is exactly `plannedMs` when sampled (busy_until), the
   * loop ticks, and the record arrives with the OWD and losses given for its seq. */
  function plannedLink(n: number, o: { plannedMs: number; owdUs: (seq: number) => number; lost?: (seq: number) => number; each?: (seq: number, f: ReturnType<typeof fakeDp>) => void }) {
    const f = fakeDp();
    let nowUs = monoUs();
    const loop = new CcLoop(f.dp, noLog, { clock: () => nowUs });
    loop.addLink(0, { rateBps: 20e6, owdUs: 10_000 });
    for (let seq = 1; seq <= n; seq++) {
      nowUs += 20_000;
      f.sched.busyUntilNs[0] = BigInt(nowUs + o.plannedMs * 1000) * 1000n;
      loop.tick();
      const owd = o.owdUs(seq);
      loop.onFeedbackPacket(encodeFeedbackPacket({ seq, records: [record({ owdMinUs: owd, owdMaxUs: owd, maxLinkSeq: 100 + 34 * seq, lost: o.lost?.(seq) ?? 0 })] }, 0, 0));
      o.each?.(seq, f);
    }
    return { f, loop };
  }

  it('tells the controller the backlog the scheduler planned: a planned queue is not congestion', () => {
    // 1 s of a 20 Mbit/s link whose every packet waited 40 ms; the scheduler's model says it
    // kept that 40 ms backlog on purpose (or not)
    const run = (plannedMs: number) => plannedLink(50, { plannedMs, owdUs: (seq) => (seq < 5 ? 5_000 : 45_000) }).loop.status(0)!;
    const planned = run(40);
    const unplanned = run(0);
    assert.ok(planned.queueMs < 5, `planned: queue ${planned.queueMs} ms`);
    assert.ok(unplanned.queueMs > 30, `unplanned: queue ${unplanned.queueMs} ms`);
  });

  it("status shows a link's jitter (its 10 s average) and whether that makes it jittery; a steady link's is 0", () => {
    // 12 s of records: one whose OWD steps at random by up to ±6 ms around 30 ms (a radio
    // link's), one steady at 10 ms
    let x = 1;
    const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 12_000 - 6_000;
    const jit = plannedLink(600, { plannedMs: 0, owdUs: () => Math.round(30_000 + rnd()) }).loop.status(0)!;
    const steady = plannedLink(600, { plannedMs: 0, owdUs: () => 10_000 }).loop.status(0)!;
    assert.ok(jit.jitterMs >= 1.4 && jit.jittery, `jittery link: ${jit.jitterMs} ms, jittery ${jit.jittery}`);
    assert.equal(steady.jitterMs, 0);
    assert.equal(steady.jittery, false);
  });

  it('writes the plan cap (plan_cap_ms) once a loss under a queue showed the buffer: its depth less 10 %', () => {
    // the fast link of 20/10 + 20/60 ms: 50 ms planned, 60 ms real; 3 packets lost at the end
    const { f, loop } = plannedLink(30, {
      plannedMs: 50,
      owdUs: (seq) => (seq < 5 ? 5_000 : 65_000),
      lost: (seq) => (seq === 30 ? 3 : 0),
      each: (seq, fd) => {
        if (seq === 29) assert.ok(fd.estimates.every((e) => e.planCapMs === undefined), 'no loss yet: no cap');
      },
    });
    assert.equal(f.estimates.at(-1)!.planCapMs, 54);
    assert.equal(loop.status(0)!.depthMs, 60, 'status shows the depth: the 60 ms queue the loss came under');
    assert.equal(plannedLink(5, { plannedMs: 0, owdUs: () => 5_000 }).loop.status(0)!.depthMs, null, 'none before a loss');
  });

  it("a link's probe round trip is its delay until its data shows one: the scheduler never sees the 10 ms hint on a 150 ms link", () => {
    // Lab (30/4 + 10/22 + 4/150 ms, no rate or delay configured, BBR downloads): the LP knew
    // the 150 ms link's delay only once a packet had crossed it, pure ACKs then moved there and
    // the download fell from 36 to 1.2 Mbit/s. The probes measure it from the start.
    const run = (probe: boolean) => {
      const f = fakeDp();
      let nowUs = monoUs();
      const loop = new CcLoop(f.dp, noLog, { clock: () => nowUs });
      for (const id of [0, 1, 2]) loop.addLink(id, { rateBps: 10e6, owdUs: 10_000 }); // the hints of a config without delays
      if (probe)
        for (const [id, rtt] of [[0, 8_000], [1, 44_000], [2, 300_000]] as const) loop.onProbeRtt(id, rtt);
      // feedback about links 0 and 1 only carrying data; link 2 has carried nothing
      for (let seq = 1; seq <= 5; seq++) {
        nowUs += 20_000;
        const idle = { bytes: 0, packets: 0, owdMinUs: null, owdMaxUs: null };
        const records = [record({ linkId: 0, owdMinUs: 1_000_000, owdMaxUs: 1_000_500 }), record({ linkId: 1, owdMinUs: 1_018_000, owdMaxUs: 1_018_500 }), record({ linkId: 2, ...idle })];
        loop.onFeedbackPacket(encodeFeedbackPacket({ seq, records }, 0, 0));
      }
      const last = (id: number) => f.estimates.filter((e) => e.id === id).at(-1)!.owdUs;
      return [last(0), last(1), last(2)];
    };
    const [fast, mid, slow] = run(true);
    assert.ok(Math.abs(fast! - 4_000) <= 500, `4 ms link at ${fast} µs`);
    assert.ok(Math.abs(mid! - 22_000) <= 1_000, `22 ms link at ${mid} µs (the OWD frame: 4 ms + 18 ms)`);
    assert.ok(Math.abs(slow! - 150_000) <= 1_000, `150 ms link at ${slow} µs`);
    const [, , hinted] = run(false);
    assert.ok(hinted! < 50_000, `without probes the idle link stays near its hint (${hinted} µs): the case this guards`);
  });

  it('sends each feedback message on the two fastest up links, the same seq on both', () => {
    const f = fakeDp();
    const owd = new Map([
      [0, 30_000],
      [1, 10_000],
      [2, 20_000],
      [3, 5_000],
    ]);
    f.dp.owdUs = (id) => ok(owd.get(id) ?? null);
    let packets = 7n; // every link receives between two readings
    f.dp.readRx = () => ok({ lastRxNs: 1_000_000n, maxLinkSeq: 7, lastOwdUs: 100, packets: packets++, bytes: 7000n, ptbMtu: 0, ptbCount: 0 });
    const loop = new CcLoop(f.dp, noLog);
    const links = [0, 1, 2, 3];
    assert.deepEqual(loop.buildFeedback(links, () => true), [], 'the first reading is only a baseline');
    const out = loop.buildFeedback(links, (id) => id !== 3); // 3 is down
    assert.deepEqual(out.map((x) => x.linkId), [1, 2]);
    const seqs = out.map((x) => decodeFeedbackPacket(x.packet)._unsafeUnwrap());
    assert.deepEqual(seqs.map((d) => d.linkId), [1, 2], 'each copy names the link it goes on');
    assert.equal(seqs[0]!.msg.seq, seqs[1]!.msg.seq);
    assert.equal(seqs[0]!.msg.records.length, 4);
    // nothing received: the idle message (at the idle rate) goes on the fastest link only
    const still = new CcLoop(f.dp, noLog);
    f.dp.readRx = () => ok({ lastRxNs: 1_000_000n, maxLinkSeq: 7, lastOwdUs: 100, packets: 7n, bytes: 7000n, ptbMtu: 0, ptbCount: 0 });
    still.buildFeedback(links, () => true);
    assert.deepEqual(still.buildFeedback(links, (id) => id !== 3).map((x) => x.linkId), [1], 'one copy without news');
    f.dp.readRx = () => ok({ lastRxNs: 1_000_000n, maxLinkSeq: 7, lastOwdUs: 100, packets: packets++, bytes: 7000n, ptbMtu: 0, ptbCount: 0 });

    // a metered link (a budget) only when too few unmetered ones are up; a spent one never
    const m = new CcLoop(f.dp, noLog);
    m.addLink(1, { rateBps: 20e6, owdUs: 10_000, budget: { limitBytes: 1e9, period: { kind: 'none' } } });
    m.addLink(2, { rateBps: 20e6, owdUs: 20_000, budget: { limitBytes: 1, period: { kind: 'none' } } });
    f.counters.set(2, c(0, 0));
    m.budgets.tick();
    f.counters.set(2, c(10, 0)); // 10 B against 1: spent
    m.budgets.tick();
    m.buildFeedback(links, () => true);
    assert.deepEqual(m.buildFeedback(links, (id) => id !== 3).map((x) => x.linkId), [0, 1], 'unmetered 0 first, then metered 1; spent 2 not');
    assert.deepEqual(m.buildFeedback(links, (id) => id === 2).map((x) => x.linkId), [], 'only the spent link up: none');
  });

  it('reports a busy link whose packets stop showing in feedback while the other link delivers', async () => {
    const f = fakeDp();
    const dead: number[] = [];
    const loop = new CcLoop(f.dp, noLog, { onLinkDead: (id) => dead.push(id) });
    for (const id of [0, 1]) {
      loop.addLink(id, { rateBps: 20e6, owdUs: 1_000 });
      loop.linkUp(id);
    }
    const t0 = monoUs();
    let cutSeq: number | null = null;
    let detectedUs: number | null = null;
    for (let seq = 1; monoUs() - t0 < 400_000; seq++) {
      await new Promise((r) => setTimeout(r, 10));
      const now = monoUs();
      f.sched.linkSeq[0] += 17;
      f.sched.linkSeq[1] += 17;
      loop.tick();
      if (now - t0 > 100_000) cutSeq ??= f.sched.linkSeq[1]!; // link 1 is cut: nothing more arrives
      const records = [record({ linkId: 0, maxLinkSeq: f.sched.linkSeq[0]! }), record({ linkId: 1, maxLinkSeq: cutSeq ?? f.sched.linkSeq[1]! })];
      loop.onFeedbackPacket(encodeFeedbackPacket({ seq, records }, 0, (monoUs() - 1_000) >>> 0));
      if (dead.length > 0) detectedUs ??= monoUs() - t0;
    }
    assert.ok(dead.length > 0 && dead.every((id) => id === 1), `reported ${dead.join(',')}`);
    assert.ok(detectedUs! > 100_000 && detectedUs! < 100_000 + 250_000, `${detectedUs} µs`);
  });

  it('after a link comes back, what was sent into it while it was dead is not loss', () => {
    const run = (restart: boolean) => {
      const f = fakeDp();
      const loop = new CcLoop(f.dp, noLog);
      loop.addLink(0, { rateBps: 20e6, owdUs: 10_000 });
      let seq = 1;
      for (; seq <= 10; seq++) loop.onFeedbackPacket(encodeFeedbackPacket({ seq, records: [record({ maxLinkSeq: 34 * seq })] }, 0, 0));
      // down: 200 packets sent into the dead link (seq 341..540), then back at 540
      f.sched.linkSeq[0] = 540;
      if (restart) loop.linkUp(0);
      loop.onFeedbackPacket(encodeFeedbackPacket({ seq: seq++, records: [record({ maxLinkSeq: 540 + 34, packets: 34, lost: 200 })] }, 0, 0));
      return loop.status(0)!.lossPct;
    };
    assert.equal(run(true), 0);
    assert.ok(run(false) > 50, 'without the restart the skipped numbers read as loss');
  });

  it('busy: packets sent, received or shown in the peer\'s feedback keep the loop at the feedback interval for BUSY_HOLD_MS; without news, feedback at the idle rate while ours move, at the quiet rate while nothing does', () => {
    const f = fakeDp();
    let nowUs = 1_000_000;
    let rx = { lastRxNs: 1n, maxLinkSeq: 7, lastOwdUs: 100, packets: 7n, bytes: 7000n, ptbMtu: 0, ptbCount: 0 };
    f.dp.readRx = () => ok(rx);
    const loop = new CcLoop(f.dp, noLog, { clock: () => nowUs, idleFeedbackMs: 100 });
    loop.addLink(0, { rateBps: 20e6, owdUs: 10_000 });
    const step = (ms: number) => {
      nowUs += ms * 1000;
      loop.tick();
      return loop.buildFeedback([0], () => true).length;
    };
    step(0); // the baseline reading
    step(BUSY_HOLD_MS + 1);
    assert.equal(loop.busy(), false, 'nothing moved');
    // sent: the scheduler's per-link sequence advanced
    f.sched.linkSeq[0] = 40;
    step(FEEDBACK_INTERVAL_MS);
    assert.equal(loop.busy(), true, 'our packets went out');
    step(BUSY_HOLD_MS - FEEDBACK_INTERVAL_MS);
    assert.equal(loop.busy(), true, 'held');
    step(FEEDBACK_INTERVAL_MS + 1);
    assert.equal(loop.busy(), false, 'past the hold');
    // received: the records have packets (and go at once)
    rx = { ...rx, packets: 9n, maxLinkSeq: 9 };
    assert.equal(step(FEEDBACK_INTERVAL_MS), 1, 'news goes out at once');
    assert.equal(loop.busy(), true, 'packets arrived');
    // nothing moves at either end: feedback without news at the quiet rate (a wake a few ms
    // early still sends)
    const quiet: number[] = [];
    for (let t = FEEDBACK_INTERVAL_MS; t <= 1600; t += FEEDBACK_INTERVAL_MS) if (step(FEEDBACK_INTERVAL_MS)) quiet.push(t);
    assert.deepEqual(quiet, [500, 1000, 1500]);
    // our packets go out (the peer receives them, its estimates want feedback), none arrive:
    // without news at most every idle interval (the last quiet message went 100 ms before)
    const sent: number[] = [];
    for (let t = FEEDBACK_INTERVAL_MS; t <= 400; t += FEEDBACK_INTERVAL_MS) {
      f.sched.linkSeq[0]! += 5;
      if (step(FEEDBACK_INTERVAL_MS)) sent.push(t);
    }
    assert.deepEqual(sent, [20, 120, 220, 320]);
    nowUs += BUSY_HOLD_MS * 1000;
    assert.equal(loop.busy(), false);
    // the peer's feedback shows our packets arriving
    assert.ok(loop.onFeedbackPacket(encodeFeedbackPacket({ seq: 1, records: [record({ packets: 0, lost: 0 })] }, 0, 0)));
    assert.equal(loop.busy(), false, 'a record without packets is no news');
    assert.ok(loop.onFeedbackPacket(encodeFeedbackPacket({ seq: 2, records: [record()] }, 0, 0)));
    assert.equal(loop.busy(), true, 'the peer received our packets');
  });

  it('a quiet peer\'s estimates go stale after QUIET_STALE_MS, and a busy period\'s first FEEDBACK_QUIET_MS keeps that limit (the peer\'s feedback may still be at its quiet rate)', () => {
    const f = fakeDp();
    let nowUs = 1_000_000;
    const loop = new CcLoop(f.dp, noLog, { clock: () => nowUs });
    loop.addLink(0, { rateBps: 20e6, owdUs: 10_000 });
    let seq = 0;
    const fb = () => assert.ok(loop.onFeedbackPacket(encodeFeedbackPacket({ seq: ++seq, records: [record({ packets: 0, lost: 0, bytes: 0 })] }, 0, 0)));
    const run = (ms: number, send: boolean) => {
      for (let t = 0; t < ms; t += 20) {
        nowUs += 20_000;
        if (send) f.sched.linkSeq[0]! += 10;
        loop.tick();
      }
    };
    fb();
    // quiet: feedback every FEEDBACK_QUIET_MS keeps the link fresh
    for (let i = 0; i < 4; i++) {
      run(FEEDBACK_QUIET_MS, false);
      fb();
    }
    assert.equal(loop.status(0)!.stale, false, 'fresh at the quiet rate');
    // our packets start 480 ms after the last quiet feedback: not stale at once
    run(FEEDBACK_QUIET_MS - 20, false);
    run(200, true);
    assert.equal(loop.status(0)!.stale, false, 'just busy: the peer may not have answered yet');
    fb(); // it did
    run(FEEDBACK_QUIET_MS, true);
    assert.equal(loop.status(0)!.stale, true, 'busy past FEEDBACK_QUIET_MS, no feedback for longer than staleAfterUs');
    fb();
    assert.equal(loop.status(0)!.stale, false);
    // quiet again and the peer goes silent: stale after QUIET_STALE_MS, not before
    run(QUIET_STALE_MS - 100, false);
    assert.equal(loop.status(0)!.stale, false);
    run(200, false);
    assert.equal(loop.status(0)!.stale, true, 'no quiet feedback for QUIET_STALE_MS');
  });

  it('when the peer\'s packets stop while ours go on, feedback keeps the busy rate and both copies for SILENCE_REPORT_MS (the peer learns its link died)', () => {
    const run = (weSend: boolean) => {
      const f = fakeDp();
      let nowUs = 1_000_000;
      let rxPackets = 0n;
      f.dp.readRx = () => ok({ lastRxNs: 1n, maxLinkSeq: Number(rxPackets), lastOwdUs: 100, packets: rxPackets, bytes: rxPackets * 1000n, ptbMtu: 0, ptbCount: 0 });
      const loop = new CcLoop(f.dp, noLog, { clock: () => nowUs, idleFeedbackMs: 100 });
      for (const id of [0, 1]) loop.addLink(id, { rateBps: 20e6, owdUs: 10_000 });
      const copies: number[] = []; // per interval: how many copies went out
      const step = (arriving: boolean) => {
        nowUs += FEEDBACK_INTERVAL_MS * 1000;
        if (arriving) rxPackets += 20n;
        if (weSend) f.sched.linkSeq[0] += 30;
        loop.tick();
        copies.push(loop.buildFeedback([0, 1], () => true).length);
      };
      step(true); // the baseline reading
      for (let i = 0; i < 10; i++) step(true); // the peer's ACKs arrive
      copies.length = 0;
      const n = (2 * SILENCE_REPORT_MS) / FEEDBACK_INTERVAL_MS;
      for (let i = 0; i < n; i++) step(false); // they stop (their link died)
      return copies;
    };
    const sending = run(true);
    const inSilence = SILENCE_REPORT_MS / FEEDBACK_INTERVAL_MS;
    assert.deepEqual(sending.slice(0, inSilence - 1), Array(inSilence - 1).fill(2), 'every interval, both copies');
    assert.ok(sending.slice(inSilence + 1).every((c) => c <= 1), 'then the idle rate, one copy');
    const idle = sending.slice(inSilence + 1).filter((c) => c === 1).length;
    assert.ok(idle >= 1 && idle <= ((SILENCE_REPORT_MS - FEEDBACK_INTERVAL_MS) / 100) + 1, `${idle} idle messages in ${JSON.stringify(sending)}`);
    // nothing of ours goes out: the silence is no one's loss, the idle rate as before
    const quiet = run(false);
    assert.ok(quiet.every((c) => c <= 1), JSON.stringify(quiet));
    assert.ok(quiet.filter((c) => c === 1).length <= (2 * SILENCE_REPORT_MS) / 100 + 1);
  });

  it("feedback without news while nothing moves is taken on the data path's last snapshot (no native read); news or a busy loop reads afresh", () => {
    const f = fakeDp();
    let nowUs = 1_000_000;
    let snapshots = 0;
    let inSnapshot = false;
    const reads: boolean[] = []; // per sched/txBytes read: inside lastSnapshot?
    const { sched, txBytes } = f.dp;
    f.dp.sched = () => (reads.push(inSnapshot), sched());
    f.dp.txBytes = (id) => (reads.push(inSnapshot), txBytes(id));
    f.dp.lastSnapshot = (fn) => {
      snapshots++;
      inSnapshot = true;
      try {
        return fn();
      } finally {
        inSnapshot = false;
      }
    };
    const loop = new CcLoop(f.dp, noLog, { clock: () => nowUs });
    loop.addLink(0, { rateBps: 20e6, owdUs: 10_000 });
    loop.tick(); // the baseline reading
    nowUs += (BUSY_HOLD_MS + 1) * 1000;
    loop.tick();
    assert.equal(loop.busy(), false);
    reads.length = 0;
    assert.ok(loop.onFeedbackPacket(encodeFeedbackPacket({ seq: 1, records: [record({ packets: 0, lost: 0, bytes: 0 })] }, 0, 0)));
    assert.equal(snapshots, 1);
    assert.ok(reads.length > 0 && reads.every((x) => x), 'every read of an idle message on the last snapshot');
    assert.equal(f.estimates.length > 0, true, 'the controller took it (its estimate written)');
    // news: read afresh
    reads.length = 0;
    assert.ok(loop.onFeedbackPacket(encodeFeedbackPacket({ seq: 2, records: [record()] }, 0, 0)));
    assert.equal(snapshots, 1);
    assert.ok(reads.length > 0 && reads.every((x) => !x));
    // busy (the message above moved it), even without news: afresh
    reads.length = 0;
    assert.ok(loop.onFeedbackPacket(encodeFeedbackPacket({ seq: 3, records: [record({ packets: 0, lost: 0, bytes: 0 })] }, 0, 0)));
    assert.equal(snapshots, 1);
    assert.ok(reads.every((x) => !x));
  });
});
