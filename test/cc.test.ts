// Congestion control (README "Running a bond") without root: the feedback wire format and how the
// receiver builds it from its counters, the filters, and the per-link controller driven by a
// discrete-event link simulator (test/helpers/linksim.ts):
//
//   sender ─▶ earliest-arrival scheduler ─▶ [FIFO]─rate─▶ delay ─▶ receiver ─┐ every 20 ms
//     ▲                                                                     │ mp_rx → feedback
//     └──────────────────────── feedback, after the reverse delay ◀─────────┘
//
//   node --import tsx --test test/cc.test.ts

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeHdr, MP_HDR_LEN, MP_T_FEEDBACK, MP_T_PROBE } from '../src/datapath/abi.js';
import * as cc from '../src/cc/controller.js';
import {
  decodeFeedback,
  decodeFeedbackPacket,
  encodeFeedback,
  encodeFeedbackPacket,
  FB_HDR_LEN,
  FB_MAX_LEN,
  FB_RECORD_LEN,
  feedbackFromCounters,
  seqNewer,
  snapshotAt,
  type FeedbackMsg,
  type LinkFeedback,
  type RxSnapshot,
} from '../src/cc/feedback.js';
import { winBest, winMax, winMin, winReset } from '../src/cc/filter.js';
import { goodputBps, meanEstimate, queueDelay, queueOf, settleTime, simulate, utilisation, type SimResult } from './helpers/linksim.js';

const M = 1e6;
const S = 1e6; // µs per second

/** Prints a scenario's figures (the report quotes them) and returns them. */
function report(name: string, figures: Record<string, number>): Record<string, number> {
  const fmt = (k: string, v: number) => (k.endsWith('Ms') ? `${k}=${v.toFixed(1)}` : k.endsWith('Mbit') ? `${k}=${v.toFixed(2)}` : k.endsWith('Count') ? `${k}=${v}` : `${k}=${(v * 100).toFixed(1)}%`);
  console.log(`# ${name}: ${Object.entries(figures).map(([k, v]) => fmt(k, v)).join(' ')}`);
  return figures;
}

// ---- feedback: wire format --------------------------------------------------------------------

const rec = (r: Partial<LinkFeedback> = {}): LinkFeedback => ({
  linkId: 0,
  intervalUs: 20_000,
  bytes: 50_000,
  packets: 34,
  maxLinkSeq: 1234,
  owdMinUs: 4_294_000_000,
  owdMaxUs: 4_294_003_000,
  lost: 1,
  echoTsUs: 777,
  echoDelayUs: 5_000,
  ...r,
});

describe('feedback encoding', () => {
  const msg: FeedbackMsg = {
    seq: 0xffff_fffe,
    records: [
      rec(),
      rec({ linkId: 3, bytes: 2 ** 40, maxLinkSeq: 0xffff_ffff, lost: 0 }),
      rec({ linkId: 15, packets: 0, bytes: 0, owdMinUs: null, owdMaxUs: null, echoTsUs: null, echoDelayUs: null }),
    ],
  };

  it('round-trips a message, and sizes it 8 + 44 per link after the 24-byte header', () => {
    const body = encodeFeedback(msg);
    assert.equal(body.length, FB_HDR_LEN + 3 * FB_RECORD_LEN);
    assert.equal(FB_RECORD_LEN, 44);
    assert.equal(FB_MAX_LEN, 24 + 8 + 16 * 44);
    assert.deepEqual(decodeFeedback(body)._unsafeUnwrap(), msg);
    assert.deepEqual(decodeFeedback(encodeFeedback({ seq: 1, records: [] }))._unsafeUnwrap(), { seq: 1, records: [] });
  });

  it('round-trips a whole control packet: mp_hdr of type MP_T_FEEDBACK, then the body', () => {
    const pkt = encodeFeedbackPacket(msg, 2, 123_456);
    assert.equal(pkt.length, MP_HDR_LEN + FB_HDR_LEN + 3 * FB_RECORD_LEN);
    assert.equal(pkt.readUInt8(0) & 0xf, MP_T_FEEDBACK);
    assert.deepEqual(decodeFeedbackPacket(pkt)._unsafeUnwrap(), { linkId: 2, msg });
  });

  it('is big-endian at fixed offsets', () => {
    const b = encodeFeedback({ seq: 0x01020304, records: [rec({ linkId: 7, intervalUs: 0x0a0b0c0d, lost: 9 })] });
    assert.equal(b.toString('hex', 0, 8), '0102030401000000');
    assert.equal(b.readUInt8(8), 7);
    assert.equal(b.readUInt8(9), 0b11); // OWD and echo present
    assert.equal(b.toString('hex', 12, 16), '0a0b0c0d');
    assert.equal(b.readUInt32BE(8 + 32), 9);
  });

  it('rejects what it cannot trust', () => {
    const good = encodeFeedback(msg);
    const bad = (b: Buffer) => decodeFeedback(b)._unsafeUnwrapErr().kind;
    assert.equal(bad(good.subarray(0, 5)), 'BadFeedback'); // shorter than the header
    assert.equal(bad(good.subarray(0, good.length - 1)), 'BadFeedback'); // truncated record
    const more = Buffer.from(good);
    more.writeUInt8(17, 4);
    assert.equal(bad(more), 'BadFeedback'); // more than 16 records
    const dup = encodeFeedback({ seq: 1, records: [rec({ linkId: 1 }), rec({ linkId: 2 })] });
    dup.writeUInt8(1, FB_HDR_LEN + FB_RECORD_LEN);
    assert.match(decodeFeedback(dup)._unsafeUnwrapErr().reason, /twice/);
    const id = Buffer.from(good);
    id.writeUInt8(16, FB_HDR_LEN);
    assert.match(decodeFeedback(id)._unsafeUnwrapErr().reason, /link id 16/);
    const flags = Buffer.from(good);
    flags.writeUInt8(0x80, FB_HDR_LEN + 1);
    assert.match(decodeFeedback(flags)._unsafeUnwrapErr().reason, /flags/);
    const probe = Buffer.concat([encodeHdr({ type: MP_T_PROBE }), good]);
    assert.equal(decodeFeedbackPacket(probe).isErr(), true);
    assert.throws(() => encodeFeedback({ seq: 0, records: Array.from({ length: 17 }, (_, i) => rec({ linkId: i % 16 })) }));
  });

  it('orders message numbers across the u32 wrap', () => {
    assert.equal(seqNewer(5, 3), true);
    assert.equal(seqNewer(3, 5), false);
    assert.equal(seqNewer(2, 0xffff_fff0), true);
    assert.equal(seqNewer(0xffff_fff0, 2), false);
    assert.equal(seqNewer(7, 7), false);
  });
});

// ---- feedback: from the receiver's counters ---------------------------------------------------------

describe('feedbackFromCounters', () => {
  const snap = (r: Partial<RxSnapshot>): RxSnapshot => ({ linkId: 1, atUs: 0, lastRxNs: 0n, maxLinkSeq: 0, lastOwdUs: 0, packets: 0n, bytes: 0n, ...r });

  it('turns two readings into the interval between them', () => {
    const prev = snap({ atUs: 1_000_000, maxLinkSeq: 100, packets: 90n, bytes: 135_000n, lastOwdUs: 500 });
    const cur = snap({ maxLinkSeq: 140, packets: 128n, bytes: 192_000n, lastOwdUs: 700, lastRxNs: 1_019_000_000n });
    assert.deepEqual(feedbackFromCounters(prev, cur, 1_020_000), {
      linkId: 1,
      intervalUs: 20_000,
      bytes: 57_000,
      packets: 38,
      maxLinkSeq: 140,
      owdMinUs: 700, // only the last sample: it stands for the interval's min and max
      owdMaxUs: 700,
      lost: 2, // 40 sequence numbers, 38 packets
      echoTsUs: 1_019_000 - 700, // the last packet's sender timestamp
      echoDelayUs: 1_000, // held 1 ms before this record
    });
  });

  it('counts losses across the u32 wrap of the per-link sequence', () => {
    const prev = snap({ maxLinkSeq: 0xffff_fff0, packets: 1000n, bytes: 1_500_000n });
    const cur = snap({ maxLinkSeq: 0x10, packets: 1030n, bytes: 1_545_000n, lastOwdUs: 0xffff_ff00, lastRxNs: 5_000n });
    const fb = feedbackFromCounters(prev, cur, 20_000);
    assert.equal(fb.lost, 2); // 0x20 sequence numbers, 30 packets
    assert.equal(fb.maxLinkSeq, 0x10);
    assert.equal(fb.echoTsUs, (5 - 0xffff_ff00 + 2 ** 32) % 2 ** 32); // wraps too
  });

  it('no packet: no delay sample, no echo, no loss; reordering is not loss', () => {
    const prev = snap({ maxLinkSeq: 50, packets: 50n, bytes: 75_000n, lastOwdUs: 9 });
    const idle = feedbackFromCounters(prev, { ...prev }, 20_000);
    assert.deepEqual([idle.packets, idle.owdMinUs, idle.owdMaxUs, idle.echoTsUs, idle.lost], [0, null, null, null, 0]);
    const reordered = feedbackFromCounters(prev, snap({ maxLinkSeq: 52, packets: 55n, bytes: 82_500n }), 20_000);
    assert.equal(reordered.lost, 0);
  });

  it('the first packets have no baseline (no loss); a counter reset counts from zero', () => {
    const first = feedbackFromCounters(snap({}), snap({ maxLinkSeq: 4_000_000, packets: 10n, bytes: 15_000n }), 20_000);
    assert.deepEqual([first.packets, first.lost], [10, 0]);
    const reset = feedbackFromCounters(snap({ maxLinkSeq: 900, packets: 900n, bytes: 1_350_000n }), snap({ maxLinkSeq: 12, packets: 12n, bytes: 18_000n }), 20_000);
    assert.deepEqual([reset.packets, reset.bytes, reset.lost], [12, 18_000, 0]);
  });

  it('uses the interval min/max when the data path tracks them', () => {
    const fb = feedbackFromCounters(snap({}), snap({ packets: 3n, bytes: 4500n, lastOwdUs: 20, owdMinUs: 10, owdMaxUs: 30 }), 20_000);
    assert.deepEqual([fb.owdMinUs, fb.owdMaxUs], [10, 30]);
    const next = snapshotAt({ linkId: 1, lastRxNs: 0n, maxLinkSeq: 3, lastOwdUs: 20, packets: 3n, bytes: 4500n }, 20_000);
    assert.equal(next.atUs, 20_000);
  });
});

// ---- filters ------------------------------------------------------------------------------------

describe('windowed filters', () => {
  it('keep the best sample of the window and fall back to the next best as it ages', () => {
    let f = winReset(0, 10);
    f = winMax(f, 100, 10, 5);
    f = winMax(f, 100, 60, 7);
    assert.equal(winBest(f), 10);
    f = winMax(f, 100, 105, 4); // 10 aged out: the best of the rest
    assert.equal(winBest(f), 7);
    f = winMax(f, 100, 300, 3); // nothing left in the window
    assert.equal(winBest(f), 3);
    let g = winReset(0, 5);
    g = winMin(g, 100, 50, 8);
    assert.equal(winBest(g), 5);
    assert.equal(winBest(winMin(g, 100, 120, 9)), 8);
  });
});

// ---- the controller, direct -----------------------------------------------------------------------

/** Feeds a synthetic trace: `n` intervals of 20 ms; `f(i)` gives each record. */
/** `planned`: the scheduler's modelled backlog for the interval (µs). `each` sees every state. */
function drive(
  s: cc.State,
  n: number,
  f: (i: number) => Partial<LinkFeedback> & { sent?: number; planned?: number },
  t0: number,
  each?: (s: cc.State) => void,
): { s: cc.State; t: number } {
  let t = t0;
  for (let i = 0; i < n; i++) {
    t += 20_000;
    const { sent, planned, ...r } = f(i);
    s = cc.onFeedback(s, rec({ echoTsUs: null, echoDelayUs: null, lost: 0, ...r }), sent ?? (s.rateBps / 8) * 0.02, t, planned ?? 0);
    each?.(s);
  }
  return { s, t };
}

/** A controller that has found a 20 Mbit/s link (from the simulator) and its clock. */
function converged(): { s: cc.State; t: number } {
  const r = simulate({ links: [{ rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(100, 20 * M) }], durationUs: 3 * S });
  return { s: r.states[0]!, t: 3 * S };
}

describe('controller', () => {
  it('starts conservative, at 1 Mbit/s and the configured delay', () => {
    const s = cc.initial({ owdUs: 12_000 });
    assert.deepEqual(cc.output(s), { rateBps: 1_000_000n, owdUs: 12_000 });
    assert.equal(cc.estimate(s).phase, 'startup');
    assert.deepEqual(cc.output(cc.initial({ ceilingBps: 500_000 })).rateBps, 500_000n);
  });

  it('silence keeps the rate and marks the estimate stale; feedback clears it', () => {
    const { s, t } = converged();
    const before = cc.output(s);
    assert.equal(cc.onSilence(s, t + 100_000).stale, false);
    const silent = cc.onSilence(cc.onSilence(s, t + 150_000), t + 300_000);
    assert.equal(silent.stale, true);
    assert.deepEqual(cc.output(silent), before);
    const back = drive(silent, 1, () => ({ bytes: 50_000, owdMinUs: s.owd!.lastRaw, owdMaxUs: s.owd!.lastRaw }), t + 300_000).s;
    assert.equal(back.stale, false);
    assert.ok(Math.abs(cc.bwBps(back) - 20 * M) < 2 * M);
  });

  it("a held link's rate is what the link delivered, not one bunched feedback's peak (survive.test)", () => {
    // 1 s at 20 Mbit/s, then one interval that counted 35.6 (25.2 over the 60 ms rate window: a receiver that stalled and
    // read two intervals' packets into one: lab, the last feedback before the LP was killed)
    const { s, t } = converged();
    const raw = s.owd!.lastRaw;
    const steady = drive(s, 50, () => ({ bytes: 50_000, packets: 34, owdMinUs: raw, owdMaxUs: raw }), t);
    const spiked = drive(steady.s, 1, () => ({ bytes: 89_000, packets: 60, owdMinUs: raw, owdMaxUs: raw }), steady.t).s;
    assert.ok(cc.bwBps(spiked) > 24.5 * M, `the estimate takes the peak: ${cc.bwBps(spiked)}`);
    const hold = cc.holdBps(spiked);
    assert.ok(hold >= 19.5 * M && hold <= 20.3 * M, `hold rate ${hold}`);
    // and never above the estimate (a link that got slower: the estimate falls at once)
    assert.ok(cc.holdBps(steady.s) <= cc.bwBps(steady.s));
    // before a second of loaded delivery (under 3 samples) the estimate is all there is
    assert.equal(cc.holdBps(cc.initial({ initialRateBps: 5 * M })), 5 * M);
    // an application-limited trickle is no sample: its hold rate stays the estimate
    const trickle = drive(steady.s, 100, () => ({ bytes: 2_500, packets: 2, owdMinUs: raw, owdMaxUs: raw, sent: 2_500 }), steady.t).s;
    assert.ok(cc.holdBps(trickle) > 18 * M, `hold after a trickle ${cc.holdBps(trickle)}`);
  });

  it("a stale link's delay is its propagation delay: the last feedback's queue is not frozen into it", () => {
    const { s, t } = converged();
    const raw = s.owd!.lastRaw;
    const prop = cc.output(s).owdUs;
    // 20 ms of queue beyond the plan, then silence
    const queued = drive(s, 5, () => ({ bytes: 50_000, packets: 34, owdMinUs: raw + 20_000, owdMaxUs: raw + 21_000 }), t);
    assert.ok(cc.output(queued.s).owdUs > prop + 5_000, `live: the queue counts (${cc.output(queued.s).owdUs} vs ${prop})`);
    const silent = cc.onSilence(queued.s, queued.t + 300_000);
    assert.equal(silent.stale, true);
    assert.equal(cc.output(silent).owdUs, prop);
    assert.equal(cc.outputs(new Map([[0, silent]])).get(0)!.owdUs, prop);
  });

  it('an application-limited link keeps its estimate', () => {
    const { s, t } = converged();
    const raw = s.owd!.lastRaw;
    // 2 s of a trickle (1 Mbit/s offered, all delivered, no queue)
    const idle = drive(s, 100, () => ({ bytes: 2_500, packets: 2, owdMinUs: raw, owdMaxUs: raw, sent: 2_500 }), t).s;
    assert.ok(cc.bwBps(idle) > 18 * M, `estimate ${cc.bwBps(idle)}`);
  });

  it("a shaped link's estimate holds under its own class; a real drop still lowers it", () => {
    // run/shaper.ts: the class passes 98 % of the estimate in cruise, the scheduler plans the link
    // at that much, so every delivery sample is 98 % of the estimate; the max filter must not
    // take that for the link (lab, mismatch shaped: 19.9 -> 18.2 Mbit/s in 13 s of one flow)
    const { s: s0, t } = converged();
    const raw = s0.owd!.lastRaw;
    const bw0 = cc.bwBps(s0);
    const under = (s: cc.State, share: number, n: number) =>
      drive(s, n, () => ({ bytes: Math.round((share * bw0 * 0.02) / 8), packets: 30, owdMinUs: raw, owdMaxUs: raw, sent: (share * bw0 * 0.02) / 8 }), t).s;
    const shaped = { ...s0, params: { ...s0.params, shapeGain: 0.98 } };
    const held = under(shaped, 0.98, 500);
    const unshaped = under(s0, 0.98, 500);
    report('shaped cruise 10 s', { heldMbit: cc.bwBps(held) / M, unshapedMbit: cc.bwBps(unshaped) / M, startMbit: bw0 / M });
    assert.ok(cc.bwBps(held) >= 0.995 * bw0, `shaped: ${cc.bwBps(held)} of ${bw0}`);
    assert.ok(cc.bwBps(unshaped) < 0.99 * bw0, `unshaped, the same samples lower it: ${cc.bwBps(unshaped)} of ${bw0}`);
    // the link itself got slower (70 % of the estimate delivered while the class passed more)
    const dropped = drive(shaped, 100, () => ({ bytes: Math.round((0.7 * bw0 * 0.02) / 8), packets: 24, owdMinUs: raw, owdMaxUs: raw, sent: (0.98 * bw0 * 0.02) / 8 }), t).s;
    assert.ok(cc.bwBps(dropped) < 0.8 * bw0, `a real drop: ${cc.bwBps(dropped)} of ${bw0}`);
  });

  it("a shaped link whose estimate fell under the link finds it again: its class probes (classProbeBps)", () => {
    // run/shaper.ts: the class passes 98 % of max(pacing, estimate, classProbeBps); the link is
    // 20 Mbit/s, the estimate restarted at 14 (a max-filter window that passed in an idle gap);
    // the sender keeps a 50 ms planned backlog on it (saturated: the scheduler never probes)
    const { s: c, t: t0 } = converged();
    const raw = c.owd!.lastRaw;
    const link = 20 * M;
    const run = (probe: boolean) => {
      let s: cc.State = { ...c, bw: winReset(t0, 14 * M), rateBps: 14 * M, params: { ...c.params, shapeGain: 0.98 } };
      let t = t0;
      let ispQ = 0; // bits queued at the ISP
      for (let i = 0; i < 500; i++) {
        t += 20_000;
        const cls = 0.98 * Math.max(s.rateBps, cc.bwBps(s), probe ? cc.classProbeBps(s) : 0);
        const offered = cls * 0.02 + ispQ;
        const out = Math.min(offered, link * 0.02);
        ispQ = offered - out;
        const owd = raw + Math.round((ispQ / link) * 1e6);
        s = cc.onFeedback(s, rec({ echoTsUs: null, echoDelayUs: null, lost: 0, bytes: Math.round(out / 8), packets: Math.round(out / 8 / 1500), owdMinUs: owd, owdMaxUs: owd }), (0.98 * s.rateBps * 0.02) / 8, t, 50_000);
      }
      return cc.bwBps(s);
    };
    const withProbe = run(true);
    const without = run(false);
    report('shaped, estimate 14 of 20 Mbit/s, 10 s saturated', { probedMbit: withProbe / M, notProbedMbit: without / M });
    assert.ok(withProbe >= 19 * M, `class probes: ${withProbe}`);
    assert.ok(withProbe <= 20.5 * M, `not above the link: ${withProbe}`);
    assert.ok(without < 18.5 * M, `without, the estimate stays under the link: ${without}`);
  });

  it('shaping only where the scheduler plans an equalising queue (cc.equalising)', () => {
    const { s } = converged();
    const st = (ids: number[], stale: number[], jittery: number[]) => new Map(ids.map((id) => [id, { ...s, stale: stale.includes(id), jitterAvg: { ...s.jitterAvg, jittery: jittery.includes(id) } }]));
    const out = (owdsMs: number[]) => new Map(owdsMs.map((ms, id) => [id, { rateBps: 20_000_000n, owdUs: ms * 1000 }]));
    const eq = (owdsMs: number[], prev: number[] = [], stale: number[] = [], jittery: number[] = []) => [...cc.equalising(st(owdsMs.map((_, i) => i), stale, jittery), out(owdsMs), new Set(prev))].sort();
    assert.deepEqual(eq([10, 60]), [0], 'mismatch: the fast link, not the slowest');
    assert.deepEqual(eq([10, 25, 40]), [0, 1], 'the demo: all but the slowest');
    assert.deepEqual(eq([10, 10]), [], '2x20: equal delays plan no queue');
    assert.deepEqual(eq([6, 275]), [], 'sat: more than the class can hold, and the scheduler sends there next to nothing');
    assert.deepEqual(eq([10, 14]), [], 'under EQ_ON_US');
    assert.deepEqual(eq([10, 14], [0]), [0], 'once on, it stays down to EQ_OFF_US (jitter)');
    assert.deepEqual(eq([10, 12], [0]), [], 'and goes below it');
    assert.deepEqual(eq([10, 60], [], [1]), [], 'a stale link counts for none');
    assert.deepEqual(eq([10, 60], [], [0]), [], 'nor is shaped');
    // a jittery link (State.jitterAvg) is none to equalise against (lab lte: the cable link
    // beside the ±10 ms LTE one); the demo's: the 10 ms link still has the 40 ms one
    assert.deepEqual(eq([8, 20], [], [], [1]), [], 'lte: not beside the jittery LTE link');
    assert.deepEqual(eq([10, 25, 40], [], [], [1]), [0, 1], 'the demo with its 25 ms link jittery: both still equalise against the 40 ms one');
    assert.deepEqual(eq([10, 60], [], [], [0]), [0], 'a jittery link itself may shape');
  });

  it('a link whose delay varies at random is jittery (State.jitterAvg) within 20 s, a clean one or one of ±2 ms never', () => {
    const cases = [
      ['lte-like: 20 ms of jitter, 0.5 % loss', 20_000, 0.005, true],
      ['the demo\'s 4g: 4 ms of jitter', 4_000, 0, false],
      ['clean', 0, 0, false],
    ] as const;
    for (const [name, jitterUs, loss, jittery] of cases) {
      const r = simulate({ links: [{ rateBps: 25 * M, propUs: 20_000, jitterUs, loss, queueBytes: queueOf(60, 25 * M) }], durationUs: 20 * S, seed: 2, offeredBps: 100 * M, planned: true });
      const st = r.states[0]!;
      report(`jitter average: ${name}`, { jitterAvgMs: st.jitterAvg.us / 1000, jittery: st.jitterAvg.jittery ? 1 : 0 });
      assert.equal(st.jitterAvg.jittery, jittery, `${name}: average ${st.jitterAvg.us} µs`);
    }
    // hysteresis: a jittery link stays so while its average is above JITTERY_OFF_US (a dense
    // stream on it shows ~1 ms), and stops below
    const { s, t } = converged();
    const raw = s.owd!.lastRaw;
    // consecutive samples 0 and 3 ms apart: jitterUs 3 ms
    const wobble = (ms: number) => (i: number) => ({ bytes: 50_000, packets: 34, owdMinUs: raw + (i % 2) * ms * 1000, owdMaxUs: raw + (i % 2) * ms * 1000 });
    let x = drive(s, 1000, wobble(3), t);
    assert.ok(x.s.jitterAvg.jittery, `3 ms steps for 20 s: average ${x.s.jitterAvg.us}`);
    x = drive(x.s, 2000, wobble(1), x.t);
    assert.ok(x.s.jitterAvg.jittery && x.s.jitterAvg.us < cc.JITTERY_ON_US, `1 ms steps: still jittery at ${x.s.jitterAvg.us}`);
    x = drive(x.s, 2000, wobble(0), x.t);
    assert.ok(!x.s.jitterAvg.jittery, `steady: ${x.s.jitterAvg.us}`);
  });

  it('a backlog the scheduler planned is not congestion: rate and delay stay, no probing', () => {
    // 20/10 ms + 20/60 ms: the scheduler keeps the fast link 50 ms ahead so packets arrive in
    // order; the receiver sees that 50 ms queue on every packet
    const { s, t } = converged();
    const raw = s.owd!.lastRaw;
    const prop = cc.output(s).owdUs;
    const bw = cc.bwBps(s);
    const queued = (planned: number) => () => ({ bytes: 50_000, packets: 34, owdMinUs: raw + 50_000, owdMaxUs: raw + 52_000, planned });
    let maxRate = 0;
    const planned = drive(s, 100, queued(50_000), t, (x) => (maxRate = Math.max(maxRate, x.rateBps))).s;
    report('planned 50 ms backlog', { rateMbit: planned.rateBps / M, owdMs: cc.output(planned).owdUs / 1000, maxRateMbit: maxRate / M });
    assert.ok(planned.rateBps > 0.95 * bw, `rate ${planned.rateBps} of ${bw}`);
    assert.ok(Math.abs(cc.output(planned).owdUs - prop) < 1000, `owd ${cc.output(planned).owdUs} vs propagation ${prop}`);
    assert.ok(maxRate < 1.05 * bw, `a saturated link was probed at ${maxRate}`);
    assert.ok(cc.saturated(planned));
    // the same queue unplanned (cross traffic, a capacity drop): the rate drains it, the
    // scheduler is told the delay
    const news = drive(s, 100, queued(0), t).s;
    assert.ok(news.rateBps < 0.7 * bw, `rate ${news.rateBps}`);
    assert.ok(cc.output(news).owdUs > prop + 30_000, `owd ${cc.output(news).owdUs}`);
    assert.equal(cc.saturated(news), false);
  });

  it('a link the flow loads at its estimate does not probe while other links carry the flow too', () => {
    // a startup at 10 Mbit/s; the sender puts 10 Mbit/s on the link, all of it delivered
    const run = (othersCarry: boolean) => {
      let s = cc.initial({ initialRateBps: 10 * M, owdUs: 10_000, rttUs: 20_000 });
      for (let i = 0; i < 4; i++)
        s = cc.onFeedback(s, rec({ bytes: 25_000, packets: 17, lost: 0, owdMinUs: 1_000_000, owdMaxUs: 1_000_000, echoTsUs: null, echoDelayUs: null }), 25_000, (i + 1) * 20_000, 0, othersCarry);
      return s;
    };
    // alone on the link (others idle): the startup's gain, 2x
    const alone = run(false);
    assert.equal(alone.phase, 'startup');
    assert.ok(alone.rateBps > 1.9 * cc.bwBps(alone), `alone: rate ${alone.rateBps} of ${cc.bwBps(alone)}`);
    // with other links carrying the flow: no gain above 1 (the model would drain the link at 2x)
    const shared = run(true);
    assert.equal(shared.phase, 'startup');
    assert.ok(cc.loadedAtEstimate(shared));
    assert.ok(shared.rateBps <= 1.01 * cc.bwBps(shared), `shared: rate ${shared.rateBps} of ${cc.bwBps(shared)}`);
    // the sender put less than the estimate on it: application-limited, it probes
    let idle = cc.initial({ initialRateBps: 10 * M, owdUs: 10_000, rttUs: 20_000 });
    for (let i = 0; i < 4; i++) idle = cc.onFeedback(idle, rec({ bytes: 5_000, packets: 4, lost: 0, owdMinUs: 1_000_000, owdMaxUs: 1_000_000, echoTsUs: null, echoDelayUs: null }), 5_000, (i + 1) * 20_000, 0, true);
    assert.equal(cc.loadedAtEstimate(idle), false);
    assert.ok(idle.rateBps > 1.9 * cc.bwBps(idle));
  });

  it("a delay hint is replaced until the link has measured a round trip (the LP's probes carry it)", () => {
    const s = cc.initial({ owdUs: 10_000, rttUs: 20_000 });
    assert.equal(cc.measuredOwdUs(s), null);
    const hinted = cc.withOwdHint(s, 40_000);
    assert.equal(cc.output(hinted).owdUs, 40_000);
    assert.equal(cc.estimate(hinted).rttUs, 80_000);
    const measured = cc.onRtt(s, 50_000, 1);
    assert.equal(cc.measuredOwdUs(measured), 25_000);
    assert.equal(cc.withOwdHint(measured, 40_000), measured);
    assert.equal(cc.output(cc.withOwdHint(measured, 40_000)).owdUs, 25_000);
  });

  it('a link whose estimate collapsed to the floor probes its way back up despite its planned backlog', () => {
    const { s, t } = converged();
    const raw = s.owd!.lastRaw;
    // queued and nothing delivered: the delivery-rate estimate resets to the floor
    const low = drive(s, 10, () => ({ bytes: 0, packets: 0, owdMinUs: raw + 40_000, owdMaxUs: raw + 40_000 }), t);
    const floor = low.s.params.minRateBps;
    assert.ok(cc.bwBps(low.s) <= 2 * floor, `bw ${cc.bwBps(low.s)}`);
    // the link is fine again (20 Mbit/s, no queue) and delivers all it is given; at this rate
    // every packet is a long planned backlog for the scheduler
    let x = low.s;
    let tt = low.t;
    for (let i = 0; i < 250; i++) {
      const sent = (x.rateBps / 8) * 0.02;
      ({ s: x, t: tt } = drive(x, 1, () => ({ bytes: sent, packets: Math.max(1, Math.round(sent / 1500)), owdMinUs: raw, owdMaxUs: raw, sent, planned: 120_000 }), tt));
    }
    report('recovery from the floor', { rateMbit: x.rateBps / M });
    assert.ok(x.rateBps > 8 * floor, `stuck at ${x.rateBps} bit/s after 5 s`);
  });

  it('an estimate raised above the link (a re-train read it 2x) falls to its delivery once a queue of ours grows, though the sender looks application-limited; a delay step does not', () => {
    // lab, mismatch, CUBIC uploads 2 s apart (bench-results/s31/): at a flow's start the 60 ms
    // link's (20 Mbit/s) estimate rose to 38.3 (a re-train's raise); the scheduler gave it the flow's excess, ~20
    // Mbit/s (application-limited against 38), and a queue the plan did not know grew 0.6 -> 45
    // ms over 1.2 s until the buffer overflowed, nothing proving the estimate wrong
    const { s: s0, t: t0 } = converged();
    const base = s0.owd!.lastRaw;
    const raised = cc.raiseFromTrain(s0, 38.3 * M, t0, 1.5);
    assert.ok(cc.bwBps(raised) > 38 * M, 'the raise took');
    // the link delivers 19.8 Mbit/s of the 20.1 it is given: the queue grows 0.3 ms a round trip of 20 ms
    const grows = (i: number) => ({ bytes: 49_500, packets: 33, owdMinUs: (base + 300 * i) >>> 0, owdMaxUs: (base + 300 * i + 500) >>> 0, sent: 50_250 });
    const fellAt = (s: cc.State, f: (i: number) => Partial<LinkFeedback> & { sent?: number }): number | null => {
      let at: number | null = null;
      drive(s, 100, f, t0, (x) => {
        if (at === null && cc.bwBps(x) < 22 * M) at = x.lastFeedbackUs - t0;
      });
      return at;
    };
    const at = fellAt(raised, grows);
    const off = fellAt({ ...raised, params: { ...raised.params, growSpanUs: Infinity } }, grows);
    report('raised estimate under a growing queue', { fellAfterMs: at === null ? Infinity : at / 1000, withoutTheRuleMs: off === null ? Infinity : off / 1000 });
    assert.equal(off, null, 'without the rule the estimate stays up for 2 s (the test shows something)');
    assert.ok(at !== null && at <= 1_200_000, `fell after ${at} µs`);
    // a delay step of 20 ms at once under a link that carries only ACKs (3 Mbit/s of its 38)
    // stands: not a growing queue
    const step = (i: number) => ({ bytes: 7_500, packets: 60, owdMinUs: (base + (i >= 10 ? 20_000 : 0)) >>> 0, owdMaxUs: (base + (i >= 10 ? 20_300 : 300)) >>> 0, sent: 7_500 });
    assert.equal(fellAt(raised, step), null, 'a delay step is not a growing queue');
    // nor does a queue that grows while the link delivers its estimate (a probe) cut it
    const atEstimate = (i: number) => ({ bytes: 95_000, packets: 63, owdMinUs: (base + 300 * i) >>> 0, owdMaxUs: (base + 300 * i + 500) >>> 0, sent: 96_000 });
    let lowest = Infinity;
    drive(raised, 100, atEstimate, t0, (x) => (lowest = Math.min(lowest, cc.bwBps(x))));
    assert.ok(lowest > 30 * M, `a link delivering its 38 Mbit/s estimate under a growing queue kept ${lowest}`);
    // the rule itself: four quarters, each at least the last, rising by half the target, no one step making most of it
    const iv = (ms: number, q: number) => ({ atUs: ms * 1000, intervalUs: 20_000, bytes: 1, packets: 1, lost: 0, owd: 1000 + q, plannedUs: 0, appLimited: true, sentBps: 0, sentBits: 0 });
    const ramp = Array.from({ length: 20 }, (_, i) => iv(20 * (i + 1), 500 * i));
    assert.equal(cc.growing(ramp, 400_000, 1000, 10_000, raised.params), true, 'a ramp');
    assert.equal(cc.growing(ramp.map((r, i) => ({ ...r, owd: 1000 + (i >= 10 ? 6_000 : 0) })), 400_000, 1000, 10_000, raised.params), false, 'a step');
    assert.equal(cc.growing(ramp.slice(8), 400_000, 1000, 10_000, raised.params), false, 'too short a span');
    assert.equal(cc.growing(ramp.map((r, i) => ({ ...r, owd: 1000 + 500 * i - (i === 12 ? 4_000 : 0) })), 400_000, 1000, 10_000, raised.params), false, 'a quarter that fell');
  });

  it('a queue held for 15 s (the other link cut) does not become the propagation delay', () => {
    const { s, t } = converged();
    const raw = s.owd!.lastRaw;
    const long = drive(s, 750, () => ({ bytes: 50_000, packets: 34, owdMinUs: raw + 40_000, owdMaxUs: raw + 42_000, planned: 40_000 }), t);
    // the other link is back: the scheduler plans no backlog here, and 40 ms of queue is news
    const after = drive(long.s, 3, () => ({ bytes: 50_000, packets: 34, owdMinUs: raw + 40_000, owdMaxUs: raw + 40_000 }), long.t).s;
    assert.ok(after.queueUs > 35_000, `queue ${after.queueUs}: the 15 s queue was taken for propagation`);
    // without a queue the normal 10 s window applies: a longer path is learned
    const moved = drive(s, 600, () => ({ bytes: 50_000, packets: 34, owdMinUs: raw + 3_000, owdMaxUs: raw + 3_000 }), t).s;
    assert.ok(moved.queueUs < 1000, `queue ${moved.queueUs} after 12 s on a 3 ms longer path`);
  });

  it('random loss without a queue is not congestion; the same loss with a queue is', () => {
    const { s, t } = converged();
    const raw = s.owd!.lastRaw;
    const base = drive(s, 25, () => ({ bytes: 50_000, packets: 33, lost: 0, owdMinUs: raw, owdMaxUs: raw }), t);
    // 5 % loss at full rate, no queue: the rate stays
    const lossy = drive(base.s, 50, () => ({ bytes: 47_500, packets: 32, lost: 2, owdMinUs: raw, owdMaxUs: raw }), base.t).s;
    assert.ok(cc.bwBps(lossy) > 18 * M && lossy.lossCapBps === null, `random loss cut the rate to ${lossy.rateBps}`);
    // 5 % loss with a 6 ms standing queue, while cruising: multiplicative decrease
    let q = base;
    let cut = false;
    for (let i = 0; i < 50 && !cut; i++) {
      q = drive(q.s, 1, () => ({ bytes: 47_500, packets: 32, lost: 2, owdMinUs: raw + 6_000, owdMaxUs: raw + 6_000 }), q.t);
      cut = q.s.lossCapBps !== null;
    }
    assert.ok(cut, 'loss with a queue never cut the rate');
    assert.ok(q.s.rateBps <= 0.86 * base.s.rateBps, `rate ${q.s.rateBps} after ${base.s.rateBps}`);
  });

  it('a queue its buffer drops at once is congestion, not random loss (lab, step: 107 packets lost behind 209 ms of queue)', () => {
    // lab, 2x20 with isp2 stepped 20 -> 5 Mbit/s under a CUBIC upload: the queue grew to 209 ms,
    // an interval delivered nothing, the next one reported 107 packets lost and 5 through with no
    // queue; taken for random loss (no queue in that interval), the link learned 10.7 %, was
    // held to the share such a link may carry (1.3 %) and, carrying next to nothing, never
    // unlearned it: every flow after it ran on the other link alone (18 of 36 Mbit/s)
    const { s, t } = converged();
    const raw = s.owd!.lastRaw;
    const q = drive(s, 10, (i) => ({ bytes: 12_000, packets: 8, owdMinUs: raw + 20_000 * (i + 1), owdMaxUs: raw + 20_000 * (i + 1) }), t);
    assert.ok(q.s.queueUs > 150_000, `queue ${q.s.queueUs}`);
    const gap = drive(q.s, 1, () => ({ bytes: 0, packets: 0, owdMinUs: null, owdMaxUs: null }), q.t);
    const after = drive(gap.s, 1, () => ({ bytes: 7_500, packets: 5, lost: 107, owdMinUs: raw + 500, owdMaxUs: raw + 800 }), gap.t).s;
    assert.ok(after.lossBase < 0.001, `learned ${after.lossBase} random loss from a buffer's drop`);
    // the same loss without a queue before it is the link's own (its 112 packets weighed
    // against the lossMemoryPackets it was averaged over: 95.5 % of 112 / 3,000-5,000)
    const clean = drive(s, 1, () => ({ bytes: 7_500, packets: 5, lost: 107, owdMinUs: raw + 500, owdMaxUs: raw + 800 }), t).s;
    assert.ok(clean.lossBase > (0.955 * 112) / s.params.lossMemoryPackets, `learned ${clean.lossBase} without a queue`);
  });

  it('puts every link of a direction in one delay frame, across the u32 wrap', () => {
    // two links whose receiver clock is 2^32 − 3 ms ahead: raw OWDs wrap between them
    const a = drive(cc.initial({ owdUs: 10_000 }), 5, () => ({ owdMinUs: 0xffff_ffff - 2_000, owdMaxUs: 0xffff_ffff - 2_000 }), 0).s;
    const b = drive(cc.initial({ owdUs: 10_000 }), 5, () => ({ owdMinUs: 25_000, owdMaxUs: 25_000 }), 0).s;
    const out = cc.outputs(new Map([[0, a], [1, b]]));
    // link 0 anchored at its own estimate; link 1 is 2001 + 25000 µs later
    assert.equal(out.get(0)!.owdUs, 10_000);
    assert.equal(out.get(1)!.owdUs, 10_000 + 27_001);
    // a link without samples keeps its own estimate
    assert.equal(cc.outputs(new Map([[0, a], [2, cc.initial({ owdUs: 40_000 })]])).get(2)!.owdUs, 40_000);
  });

  it('learns round trips from the feedback echo', () => {
    // the sender stamped 1_000_000; the receiver held the packet 3 ms; now is 1_031_000
    const s = cc.onFeedback(cc.initial(), rec({ echoTsUs: 1_000_000, echoDelayUs: 3_000 }), 2_500, 1_031_000);
    assert.equal(cc.estimate(s).rttUs, 28_000);
    assert.equal(cc.roundUs(s), 28_000 + 40_000);
    assert.equal(cc.queueTargetUs(s), 7_000); // a quarter of the RTT, within 5-10 ms
  });
});

// ---- the controller in the link simulator ------------------------------------------------------------

/** After `fromUs`, when the true queueing delay first peaked and when it was first back below
 * `belowUs` after that. */
function queueDrain(r: SimResult, link: number, fromUs: number, belowUs: number): { peakUs: number; drainedUs: number | null } {
  const xs = r.traces.filter((x) => x.link === link && x.tUs >= fromUs && x.tUs < fromUs + 2 * S);
  const peak = xs.reduce((a, x) => (x.queueMaxUs > a.queueMaxUs ? x : a), xs[0]!);
  const back = xs.find((x) => x.tUs > peak.tUs && x.queueMaxUs < belowUs);
  return { peakUs: peak.queueMaxUs, drainedUs: back ? back.tUs : null };
}

describe('controller on a simulated link', () => {
  it('finds a 20 Mbit/s link within 2 s, then keeps its queue short and the link busy', () => {
    const r = simulate({ links: [{ rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(100, 20 * M) }], durationUs: 10 * S });
    const settle = settleTime(r.traces, 0, 0, 20 * M, 0.1);
    const w = { fromUs: 2 * S, toUs: 10 * S };
    const q = queueDelay(r.traces, 0, w);
    const f = report('capacity discovery 20 Mbit/s, 10 ms, 100 ms buffer', {
      settleMs: (settle ?? Infinity) / 1e3,
      estimateMbit: meanEstimate(r.traces, 0, w) / M,
      utilisation: utilisation(r.traces, 0, w),
      queueMeanMs: q.meanUs / 1e3,
      queueP95Ms: q.p95Us / 1e3,
    });
    assert.ok(f.settleMs! <= 2000, `settled after ${f.settleMs} ms`);
    assert.ok(Math.abs(f.estimateMbit! - 20) <= 2, `estimate ${f.estimateMbit}`);
    assert.ok(f.queueMeanMs! < 15, `queue ${f.queueMeanMs} ms`);
    assert.ok(f.utilisation! >= 0.9, `utilisation ${f.utilisation}`);
  });

  it('also with the data path reporting each interval’s min/max delay, and jitter', () => {
    const r = simulate({ links: [{ rateBps: 20 * M, propUs: 10_000, jitterUs: 2_000, queueBytes: queueOf(100, 20 * M) }], durationUs: 8 * S, owdMinMax: true });
    const w = { fromUs: 2 * S, toUs: 8 * S };
    const f = report('discovery with 2 ms jitter, interval min/max OWD', {
      settleMs: (settleTime(r.traces, 0, 0, 20 * M, 0.1) ?? Infinity) / 1e3,
      utilisation: utilisation(r.traces, 0, w),
      queueMeanMs: queueDelay(r.traces, 0, w).meanUs / 1e3,
    });
    assert.ok(f.settleMs! <= 2000 && f.utilisation! >= 0.9 && f.queueMeanMs! < 15);
  });

  it('follows a step 20 → 5 Mbit/s and back within 2 s each way', () => {
    const cap = (t: number) => (t >= 4 * S && t < 8 * S ? 5 * M : 20 * M);
    const r = simulate({ links: [{ rateBps: cap, propUs: 10_000, queueBytes: queueOf(100, 20 * M) }], durationUs: 12 * S });
    const down = settleTime(r.traces, 0, 4 * S, 5 * M, 0.1);
    const up = settleTime(r.traces, 0, 8 * S, 20 * M, 0.1);
    const f = report('step 20 → 5 → 20 Mbit/s', {
      downMs: ((down ?? Infinity) - 4 * S) / 1e3,
      upMs: ((up ?? Infinity) - 8 * S) / 1e3,
      queuePeakMs: queueDrain(r, 0, 4 * S, 20_000).peakUs / 1e3,
      queueDrainedMs: ((queueDrain(r, 0, 4 * S, 20_000).drainedUs ?? Infinity) - 4 * S) / 1e3,
      utilisationAt5: utilisation(r.traces, 0, { fromUs: 5 * S, toUs: 8 * S }),
      utilisationAt20: utilisation(r.traces, 0, { fromUs: 9 * S, toUs: 12 * S }),
      queueMeanAt5Ms: queueDelay(r.traces, 0, { fromUs: 5 * S, toUs: 8 * S }).meanUs / 1e3,
    });
    assert.ok(f.downMs! <= 2000, `down after ${f.downMs} ms`);
    assert.ok(f.upMs! <= 2000, `up after ${f.upMs} ms`);
    assert.ok(f.queueDrainedMs! <= 1000, `queue drained after ${f.queueDrainedMs} ms`);
    assert.ok(f.utilisationAt5! >= 0.85 && f.utilisationAt20! >= 0.9);
    assert.ok(f.queueMeanAt5Ms! < 15);
  });

  it('a link that got faster under a flow the other links carry too is found by a re-train (2 x 20 Mbit/s, one 20 -> 5 -> 20)', () => {
    // lab, bench `step`: after the step back to 20 the flow keeps the link at its 5 Mbit/s
    // estimate (loaded at its estimate while the other carries too: no probing gain), so its
    // estimate only follows what the flow offers beyond the other link (5 -> 19.9 Mbit/s in ~5 s)
    const cap = (t: number) => (t >= 3 * S && t < 6 * S ? 5 * M : 20 * M);
    const links = [
      { rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(60, 20 * M), cc: { initialRateBps: 20 * M } },
      { rateBps: cap, propUs: 10_000, queueBytes: queueOf(60, 20 * M), cc: { initialRateBps: 20 * M } },
    ];
    for (const [what, load] of [['TCP', { tcp: {}, acksSlowest: true }], ['40 Mbit/s offered', { offeredBps: 40 * M }]] as const) {
      const figs = [false, true].map((retrain) => {
        const r = simulate({ links, durationUs: 12 * S, planned: true, retrain, ...load });
        const total = (fromUs: number, toUs: number) => (goodputBps(r.traces, 0, { fromUs, toUs }) + goodputBps(r.traces, 1, { fromUs, toUs })) / M;
        const up = settleTime(r.traces, 1, 6 * S, 20 * M, 0.1);
        return report(`step 20 -> 5 -> 20 on one of 2 x 20, ${what}, re-trains ${retrain ? 'on' : 'off'}`, {
          upMs: up === null ? Infinity : (up - 6 * S) / 1e3,
          totalAfterMbit: total(7 * S, 12 * S),
          totalAt5Mbit: total(4 * S, 6 * S),
          retrainCount: r.retrains[1]!,
          raisedCount: r.raisedAtUs[1]!.length,
        });
      });
      const [off, on] = figs as [Record<string, number>, Record<string, number>];
      assert.ok(off.upMs! > 3000, `${what}: without re-trains the estimate came back after ${off.upMs} ms (the test shows nothing)`);
      assert.ok(on.upMs! <= 2000, `${what}: with re-trains back after ${on.upMs} ms`);
      assert.ok(on.totalAfterMbit! >= 0.95 * 40, `${what}: ${on.totalAfterMbit} Mbit/s after the step`);
      assert.ok(on.totalAt5Mbit! >= 0.95 * off.totalAt5Mbit!, `${what}: the 5 Mbit/s phase ${on.totalAt5Mbit} against ${off.totalAt5Mbit}`);
      assert.ok(on.raisedCount! >= 1 && on.raisedCount! <= 2, `${what}: raised ${on.raisedCount} times`);
    }
  });

  it('re-trains raise nothing on links whose estimates are right (2 x 20 Mbit/s and 20/10 + 20/60 ms under TCP)', () => {
    for (const [what, props] of [['2 x 20', [10_000, 10_000]], ['mismatch', [10_000, 60_000]]] as const) {
      const links = props.map((propUs) => ({ rateBps: 20 * M, propUs, queueBytes: queueOf(60, 20 * M), cc: { initialRateBps: 20 * M } }));
      const r = simulate({ links, durationUs: 12 * S, planned: true, retrain: true, tcp: {}, acksSlowest: true });
      const f = report(`re-trains on right estimates, ${what}`, { raisedCount: r.raisedAtUs.flat().length, retrainCount: r.retrains.reduce((a, b) => a + b, 0) });
      assert.equal(f.raisedCount, 0, `${what}: raised at ${JSON.stringify(r.raisedAtUs)}`);
    }
  });

  it('a link that holds packets back at random (cellular-like: 20 ms of jitter, never reordered, 0.5 % loss) keeps its estimate at its capacity', () => {
    // non-reordering jitter delays the packets behind a held one too: read as a queue above the
    // 5-10 ms target, it drained the link and took its random loss for congestion (estimates
    // 15-21 of 25 Mbit/s; in the lab's lte download the RP's estimate of the LTE link sank from
    // 24.6 to 2.4 Mbit/s in 10 s and the link carried next to nothing). The target now sits
    // above the link's own variation (jitterTargetFactor × jitterUs)
    for (const seed of [1, 2, 3]) {
      const r = simulate({ links: [{ rateBps: 25 * M, propUs: 20_000, jitterUs: 20_000, loss: 0.005, queueBytes: queueOf(50, 25 * M) }], durationUs: 12 * S, seed, offeredBps: 100 * M, planned: true });
      const w = { fromUs: 2 * S, toUs: 12 * S };
      const f = report(`20 ms jitter, 0.5 % loss, 25 Mbit/s, seed ${seed}`, { estimateMbit: meanEstimate(r.traces, 0, w) / M, utilisation: utilisation(r.traces, 0, w) });
      assert.ok(f.estimateMbit! >= 22.5 && f.estimateMbit! <= 30, `estimate ${f.estimateMbit}`);
      assert.ok(f.utilisation! >= 0.85, `utilisation ${f.utilisation}`);
    }
    // a clean link's target is untouched; a queue that steps up 20 ms at once is one outlier of
    // the median and counts in full
    const { s, t } = converged();
    const base = (x: cc.State) => cc.queueTargetUs({ ...x, jitterUs: 0 });
    assert.ok(s.jitterUs < 1000 && cc.queueTargetUs(s) === base(s), `clean: jitter ${s.jitterUs}, target ${cc.queueTargetUs(s)}`);
    const raw = s.owd!.lastRaw;
    const stepped = drive(s, 3, () => ({ bytes: 50_000, packets: 34, owdMinUs: raw + 20_000, owdMaxUs: raw + 20_000 }), t).s;
    assert.equal(cc.queueTargetUs(stepped), base(stepped));
  });

  it('keeps its rate on a link with 2 % random loss', () => {
    const r = simulate({ links: [{ rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(100, 20 * M), loss: 0.02 }], durationUs: 10 * S, seed: 3 });
    const w = { fromUs: 2 * S, toUs: 10 * S };
    const xs = r.traces.filter((x) => x.tUs > w.fromUs);
    const f = report('2 % random loss, 20 Mbit/s', {
      meanRateMbit: xs.reduce((a, x) => a + x.rateBps, 0) / xs.length / M,
      minEstimateMbit: Math.min(...xs.map((x) => x.bwBps)) / M,
      goodputMbit: goodputBps(r.traces, 0, w) / M,
      utilisation: utilisation(r.traces, 0, w), // of the capacity: 98 % at most
      queueMeanMs: queueDelay(r.traces, 0, w).meanUs / 1e3,
    });
    assert.ok(f.meanRateMbit! >= 0.7 * 20 && f.minEstimateMbit! >= 0.7 * 20, `rate ${f.meanRateMbit}, lowest estimate ${f.minEstimateMbit}`);
    assert.ok(f.utilisation! >= 0.85);
  });

  it('does not fill a bufferbloated 500 ms modem queue', () => {
    const r = simulate({ links: [{ rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(500, 20 * M) }], durationUs: 10 * S });
    const all = queueDelay(r.traces, 0, { fromUs: 0, toUs: 10 * S });
    const after = queueDelay(r.traces, 0, { fromUs: 1 * S, toUs: 10 * S });
    const f = report('bufferbloat, 500 ms buffer at 20 Mbit/s', {
      queueMeanMs: after.meanUs / 1e3,
      queueP95Ms: after.p95Us / 1e3,
      queueMaxAfter1sMs: after.maxUs / 1e3,
      queueMaxStartupMs: all.maxUs / 1e3,
      utilisation: utilisation(r.traces, 0, { fromUs: 1 * S, toUs: 10 * S }),
    });
    assert.ok(f.queueMeanMs! < 30 && f.queueP95Ms! < 30 && f.queueMaxAfter1sMs! < 30, 'queueing delay above 30 ms');
    assert.ok(f.queueMaxStartupMs! < 100);
    assert.equal(r.drops[0], 0);
  });

  it('silence: 300 ms without feedback keeps the rate and marks the estimate stale', () => {
    const r = simulate({ links: [{ rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(100, 20 * M) }], durationUs: 5 * S, silence: { fromUs: 3 * S, toUs: 3.3 * S } });
    const at = (t: number) => r.traces.find((x) => x.tUs >= t)!;
    const before = at(3 * S);
    assert.equal(before.stale, false);
    assert.equal(at(3.1 * S).stale, false); // not yet: 200 ms
    const during = r.traces.filter((x) => x.tUs >= 3.25 * S && x.tUs < 3.3 * S);
    assert.ok(during.length > 0 && during.every((x) => x.stale && x.rateBps === during[0]!.rateBps && x.bwBps === before.bwBps));
    assert.equal(at(3.4 * S).stale, false);
    const after = { fromUs: 3.5 * S, toUs: 5 * S };
    const f = report('silence 300 ms', { utilisationAfter: utilisation(r.traces, 0, after), estimateAfterMbit: meanEstimate(r.traces, 0, after) / M });
    assert.ok(f.utilisationAfter! >= 0.9);
  });

  it('respects a configured ceiling', () => {
    const r = simulate({ links: [{ rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(100, 20 * M), cc: { ceilingBps: 8 * M } }], durationUs: 4 * S });
    assert.ok(r.traces.every((x) => x.rateBps <= 8 * M && x.bwBps <= 8 * M));
    assert.ok(goodputBps(r.traces, 0, { fromUs: 1 * S, toUs: 4 * S }) > 7.5 * M);
  });

  it('two links of 20 and 5 Mbit/s (10 and 30 ms) share one sender in proportion to their estimates', () => {
    const r = simulate({
      links: [
        { rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(100, 20 * M) },
        { rateBps: 5 * M, propUs: 30_000, queueBytes: queueOf(100, 5 * M) },
      ],
      durationUs: 10 * S,
    });
    const w = { fromUs: 3 * S, toUs: 10 * S };
    const e0 = meanEstimate(r.traces, 0, w);
    const e1 = meanEstimate(r.traces, 1, w);
    const g0 = goodputBps(r.traces, 0, w);
    const g1 = goodputBps(r.traces, 1, w);
    const f = report('two links 20 + 5 Mbit/s', {
      estimate0Mbit: e0 / M,
      estimate1Mbit: e1 / M,
      shareOfEstimates: e0 / (e0 + e1),
      shareOfTraffic: g0 / (g0 + g1),
      utilisationTotal: (g0 + g1) / (25 * M),
      queue0MeanMs: queueDelay(r.traces, 0, w).meanUs / 1e3,
      queue1MeanMs: queueDelay(r.traces, 1, w).meanUs / 1e3,
      settle0Ms: (settleTime(r.traces, 0, 0, 20 * M, 0.1) ?? Infinity) / 1e3,
      settle1Ms: (settleTime(r.traces, 1, 0, 5 * M, 0.1) ?? Infinity) / 1e3,
    });
    assert.ok(Math.abs(e0 - 20 * M) <= 2 * M && Math.abs(e1 - 5 * M) <= 0.5 * M, `estimates ${e0} ${e1}`);
    assert.ok(Math.abs(f.shareOfTraffic! - f.shareOfEstimates!) < 0.03, `traffic ${f.shareOfTraffic} vs estimates ${f.shareOfEstimates}`);
    assert.ok(f.utilisationTotal! >= 0.9);
    assert.ok(f.settle0Ms! <= 2000 && f.settle1Ms! <= 2000);
  });

  // Capacity discovery (README "Benchmarks", discover): a TCP-like sender (window-limited, CUBIC growth) instead of
  // the backlogged one, so a link whose estimate is too high looks application-limited: with a
  // configured rate 10× too high the scheduler put everything on that link, its queue stood at
  // the buffer's size and the estimate never came down (2×20: 67 % of the sum, 20+5: 75 %).
  for (const [name, ls] of [
    ['2 × 20 Mbit/s', [[20, 10], [20, 10]]],
    ['20 + 5 Mbit/s', [[20, 10], [5, 30]]],
  ] as const) {
    for (const [hint, of] of [['10× too high', (r: number) => 10 * r], ['10× too low', (r: number) => r / 10], ['not configured', () => 10]] as const) {
      it(`one TCP flow over ${name}, configured rates ${hint}: ≥ 88 % of the sum within 3 s`, () => {
        const sum = ls.reduce((a, [r]) => a + r, 0);
        const r = simulate({
          links: ls.map(([rate, d]) => ({ rateBps: rate * M, propUs: d * 1000, queueBytes: queueOf(50, rate * M), cc: { initialRateBps: of(rate) * M, owdUs: d * 1000, rttUs: 2 * d * 1000 } })),
          durationUs: 5 * S,
          tcp: {},
        });
        const g = (w: { fromUs: number; toUs: number }) => ls.reduce((a, _, i) => a + goodputBps(r.traces, i, w), 0) / (sum * M);
        const f = report(`discovery ${name}, rates ${hint}`, { shareAt2to3s: g({ fromUs: 2 * S, toUs: 3 * S }), shareAt3to5s: g({ fromUs: 3 * S, toUs: 5 * S }) });
        assert.ok(f.shareAt2to3s! >= 0.88 && f.shareAt3to5s! >= 0.88, `${f.shareAt2to3s} ${f.shareAt3to5s}`);
      });
    }
  }

  it('a buffer that overflows under the planned backlog is congestion, not random loss, and shows its depth (20/10 + 20/60 ms, one TCP flow)', () => {
    // The fast link holds a ~50 ms planned backlog so that packets arrive in order; its 60 ms
    // buffer overflows now and then. Learned as the link's random loss (the queue beyond the
    // planned one looked empty), those drops made it "lossy" (> 0.3 %): capped to a small
    // share, the flow fell to one link's worth (sim: 2.0 % learned, 55 % of the sum).
    const ls = [[20, 10], [20, 60]] as const;
    const r = simulate({
      links: ls.map(([rate, d]) => ({ rateBps: rate * M, propUs: d * 1000, queueBytes: queueOf(60, rate * M), cc: { initialRateBps: rate * M, owdUs: d * 1000, rttUs: 2 * d * 1000 } })),
      durationUs: 10 * S,
      tcp: {},
      planned: true,
      acksSlowest: true,
    });
    const w = { fromUs: 4 * S, toUs: 10 * S };
    const f = report('mismatch 20/10 + 20/60 ms, TCP, planned backlog', {
      share: (goodputBps(r.traces, 0, w) + goodputBps(r.traces, 1, w)) / (40 * M),
      lossBase0: r.states[0]!.lossBase,
      depth0Ms: r.states[0]!.depthUs! / 1000,
      depth1Ms: r.states[1]!.depthUs! / 1000,
    });
    assert.ok(f.lossBase0! < 0.003, `fast link learned ${f.lossBase0} random loss`);
    // both 60 ms buffers overflow under the flow: their depth (the plan cap, less 10 %) learned
    for (const k of ['depth0Ms', 'depth1Ms'] as const) assert.ok(f[k]! >= 55 && f[k]! <= 62, `${k} ${f[k]}`);
    assert.ok(f.share! >= 0.9, `share ${f.share}`);
  });

  it('learns the buffer depth from loss under a queue (the plan cap), not from random loss; a deeper queue that stood 100 ms raises it', () => {
    const { s, t } = converged();
    // the raw OWD of the link's min: a sample of base + q is a real queue of q
    const base = (s.owd!.lastRaw - (s.owd!.last - winBest(s.owd!.min))) >>> 0;
    const at = (q: number) => ({ owdMinUs: (base + q) >>> 0, owdMaxUs: (base + q) >>> 0 });
    assert.equal(s.depthUs, null);
    assert.equal(cc.planCapUs(s), 0, 'no depth: no cap');
    // random loss without a queue: nothing about the buffer
    let x = drive(s, 10, () => ({ bytes: 50_000, packets: 34, lost: 2, ...at(1_000) }), t);
    assert.equal(x.s.depthUs, null);
    // 20/10 + 20/60 ms: the fast link's planned 50 ms and 6 ms more, then 3 packets lost
    x = drive(x.s, 4, (i) => ({ bytes: 50_000, packets: 34, lost: i === 3 ? 3 : 0, planned: 50_000, ...at(52_000 + 1_000 * i) }), x.t);
    assert.ok(Math.abs(x.s.depthUs! - 55_000) <= 1_000, `depth ${x.s.depthUs}`);
    assert.ok(Math.abs(cc.planCapUs(x.s) - 49_500) <= 1_000, `cap ${cc.planCapUs(x.s)}`);
    // a loss under a shorter queue lowers it; a queue above it without loss proves it deeper
    x = drive(x.s, 3, (i) => ({ bytes: 50_000, packets: 34, lost: i === 2 ? 2 : 0, planned: 40_000, ...at(40_000) }), x.t);
    assert.ok(Math.abs(x.s.depthUs! - 40_000) <= 1_000, `depth ${x.s.depthUs}`);
    // ...once it stood 100 ms (depthRaiseUs): 80 ms of it (a flow's burst) is not proof
    x = drive(x.s, 4, () => ({ bytes: 50_000, packets: 34, planned: 40_000, ...at(70_000) }), x.t);
    assert.ok(Math.abs(x.s.depthUs! - 40_000) <= 1_000, `depth ${x.s.depthUs} after 80 ms`);
    x = drive(x.s, 2, () => ({ bytes: 50_000, packets: 34, planned: 40_000, ...at(40_000) }), x.t);
    assert.ok(Math.abs(x.s.depthUs! - 40_000) <= 1_000, `depth ${x.s.depthUs}`);
    // 100 ms at 66-74 ms: the least of them
    x = drive(x.s, 5, (i) => ({ bytes: 50_000, packets: 34, planned: 40_000, ...at(74_000 - 2_000 * i) }), x.t);
    assert.ok(Math.abs(x.s.depthUs! - 66_000) <= 1_000, `depth ${x.s.depthUs}`);
    x = drive(x.s, 5, () => ({ bytes: 50_000, packets: 34, planned: 40_000, ...at(70_000) }), x.t);
    assert.ok(Math.abs(x.s.depthUs! - 70_000) <= 1_000, `depth ${x.s.depthUs}`);
    assert.ok(Math.abs(cc.planCapUs(x.s) - 63_000) <= 1_000, `cap ${cc.planCapUs(x.s)}`);
  });

  it('a queued link that delivers far below its estimate is believed, application-limited or not', () => {
    const { s, t } = converged();
    const raw = s.owd!.lastRaw;
    // the estimate says 200 Mbit/s; the link delivers 20 with a 30 ms standing queue, and the
    // sender (a TCP flow) offers 25: application-limited against the estimate, and the link
    // delivers less than it is given (measured over the 200 ms loss window: 20 intervals)
    const high = { ...s, bw: winReset(t, 200 * M) };
    const after = drive(high, 20, () => ({ bytes: 50_000, packets: 34, owdMinUs: raw + 30_000, owdMaxUs: raw + 31_000, sent: 62_500 }), t).s;
    assert.ok(cc.bwBps(after) < 25 * M, `estimate ${cc.bwBps(after)}`);
  });

  it('pure ACKs avoid a link with 1 % random loss and one far slower than the best (MP_LINK_F_NO_ACKS), with hysteresis', () => {
    const r = simulate({
      links: [
        { rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(50, 20 * M) },
        { rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(50, 20 * M), loss: 0.01 },
        { rateBps: 15 * M, propUs: 25_000, queueBytes: queueOf(50, 15 * M) },
        { rateBps: 3 * M, propUs: 150_000, queueBytes: queueOf(50, 3 * M) },
      ],
      durationUs: 6 * S,
      seed: 5,
    });
    const states = new Map(r.states.map((s, i) => [i, s]));
    report('ACK avoidance', { lossBase0: r.states[0]!.lossBase, lossBase1: r.states[1]!.lossBase });
    assert.deepEqual([...cc.ackAvoid(states, new Set())].sort(), [1, 3]);
    // hysteresis: a link already avoided at 0.4 % loss or at a sixth of the best stays avoided
    const s0 = r.states[0]!;
    const near = new Map([[0, s0], [1, { ...s0, lossBase: 0.004 }], [2, { ...s0, bw: winReset(0, cc.bwBps(s0) / 5.5) }]]);
    assert.deepEqual([...cc.ackAvoid(near, new Set())], []);
    assert.deepEqual([...cc.ackAvoid(near, new Set([1, 2]))].sort(), [1, 2]);
  });

  it('pure ACKs avoid a link whose delay exceeds the shortest by 100 ms, even where no estimate was proven (hysteresis)', () => {
    // Lab, 30/4 + 10/22 + 4/150 ms without configured rates, BBR downloads: the LP sends only
    // ACKs, every link keeps its 10 Mbit/s hint, "far slower" sees nothing, and the ACKs took
    // the 150 ms link: BBR kept the 26 ms round trip of its first ACKs as its minimum, its window
    // stayed sized for it, and the download fell to 1.2 Mbit/s (36 before). The delays are the
    // probes' round trips (CcLoop.onProbeRtt): known before any data.
    const links = (rtts: number[]) => new Map(rtts.map((rtt, i) => [i, cc.onRtt(cc.initial({ initialRateBps: 10 * M }), rtt, 0)]));
    assert.deepEqual([...cc.ackAvoid(links([8_000, 44_000, 300_000]), new Set())], [2], 'discover: the 150 ms link');
    assert.deepEqual([...cc.ackAvoid(links([20_000, 120_000]), new Set())], [], 'mismatch (10 + 60 ms): ACKs must keep the slow link, or BBR never fills it');
    assert.deepEqual([...cc.ackAvoid(links([20_000, 50_000, 80_000]), new Set())], [], "the demo's links");
    // hysteresis: 90 ms farther stays avoided once avoided, and is not avoided before
    assert.deepEqual([...cc.ackAvoid(links([10_000, 190_000]), new Set())], []);
    assert.deepEqual([...cc.ackAvoid(links([10_000, 190_000]), new Set([1]))], [1]);
  });

  it('loss recovery: a link losing ≥ 0.3 % sends parity (hysteresis), and with parity its share is capped by the loss the parity leaves', () => {
    const r = simulate({
      links: [
        { rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(50, 20 * M) },
        { rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(50, 20 * M), loss: 0.01 },
      ],
      durationUs: 6 * S,
      seed: 5,
    });
    const states = new Map(r.states.map((s, i) => [i, s]));
    assert.deepEqual([...cc.fecLinks(states, new Set())], [1], `loss ${r.states[1]!.lossBase}`);
    const s0 = r.states[0]!;
    const near = new Map([[0, s0], [1, { ...s0, lossBase: 0.0025 }]]);
    assert.deepEqual([...cc.fecLinks(near, new Set())], [], 'below 0.3 %: none');
    assert.deepEqual([...cc.fecLinks(near, new Set([1]))], [1], 'on until 0.2 %');
    assert.ok(Math.abs(cc.fecResidual(0.01) - 0.000394) < 1e-6, `1 % leaves ${cc.fecResidual(0.01)} (groups of 4)`);
    // without parity the lossy link is held to LOSS_BUDGET's share; with it, not at all
    const rate = (fec: Set<number>) => Number(cc.outputs(states, fec).get(1)!.rateBps);
    assert.ok(rate(new Set()) < 0.1 * cc.bwBps(r.states[0]!), `capped: ${rate(new Set())}`);
    assert.equal(rate(new Set([1])), Math.round(r.states[1]!.rateBps), 'uncapped with parity');
  });

  it('a 2 % link: its random-loss estimate holds within ±0.5 points, and the lossy share cap has no step', () => {
    // lab, `lossy` (2 % on one of 2 × 20 Mbit/s): averaged over 1000 packets the estimate read
    // 2.06-2.84 % from one download to the next; at 2.84 % parity's residual (0.31 %) crossed
    // LOSSY, where the cap was a step, and the link fell from 20 to 3.9 Mbit/s
    const link = (loss: number) => ({ rateBps: 20 * M, propUs: 10_000, loss, queueBytes: queueOf(50, 20 * M), cc: { initialRateBps: 20 * M, owdUs: 10_000, rttUs: 20_000 } });
    const spread: number[] = [];
    for (const seed of [1, 2, 3]) {
      const r = simulate({ links: [link(0.02)], durationUs: 30 * S, seed });
      const xs = r.traces.filter((x) => x.tUs >= 8 * S).map((x) => x.lossBase);
      spread.push(Math.min(...xs), Math.max(...xs));
    }
    report('2 % link, backlogged, random-loss estimate (3 seeds, 8-30 s)', { lowestPct: Math.min(...spread) * 100, highestPct: Math.max(...spread) * 100 });
    assert.ok(Math.min(...spread) >= 0.015 && Math.max(...spread) <= 0.025, `estimate ${spread.map((x) => (x * 100).toFixed(2)).join(', ')} %`);
    // the cap falls from the link's own rate at LOSSY (0.3 %) to LOSS_BUDGET's share at twice it,
    // without a step: 0.01 points of loss move it by at most 5 % of the link (a step fell 80 %)
    const s = { ...cc.initial({ initialRateBps: 20 * M }), rateBps: 20 * M };
    let last = cc.lossyShareCap(s, 0.0029, 20 * M);
    assert.equal(last, Infinity);
    for (let k = 30; k <= 80; k++) {
      const loss = k / 10_000;
      const cap = Math.min(s.rateBps, cc.lossyShareCap(s, loss, 20 * M));
      assert.ok(cap <= Math.min(s.rateBps, last) && Math.min(s.rateBps, last) - cap <= 0.05 * s.rateBps, `at ${(loss * 100).toFixed(2)} %: ${cap} after ${last}`);
      last = cap;
    }
    assert.ok(last <= (20 * M * 0.0625) / 0.9375 + 1, `at 0.8 %: ${last}, LOSS_BUDGET's share`);
  });

  it('loss recovery: a link whose loss is not learned yet (fewer than lossBasePackets reported) sends parity; a clean one stops then', () => {
    // a fresh bond's first flow met its links' loss unprotected until ~360 packets had taught it
    const fresh = cc.initial({ initialRateBps: 20 * M });
    assert.deepEqual([...cc.fecLinks(new Map([[0, fresh]]), new Set())], [0], 'fresh: parity');
    assert.deepEqual([...cc.fecLinks(new Map([[0, { ...fresh, stale: true }]]), new Set())], [], 'stale: none');
    const n = fresh.params.lossBasePackets;
    assert.deepEqual([...cc.fecLinks(new Map([[0, { ...fresh, packetsSeen: n - 1 }]]), new Set([0]))], [0]);
    assert.deepEqual([...cc.fecLinks(new Map([[0, { ...fresh, packetsSeen: n }]]), new Set([0]))], [], `clean after ${n} packets`);
    // the controller counts what the feedback reports (received + lost): a clean 20 Mbit/s link
    // is past it within a second, and its parity stops
    const r = simulate({ links: [{ rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(50, 20 * M) }], durationUs: 1 * S, seed: 3 });
    assert.ok(r.states[0]!.packetsSeen >= n, `seen ${r.states[0]!.packetsSeen}`);
    assert.deepEqual([...cc.fecLinks(new Map([[0, r.states[0]!]]), new Set([0]))], []);
  });

  // A delay step (issue 10 item 2, bench `starlink`: the link's delay and rate jump every 15 s,
  // +20 ms at 25 → 45 ms). Lab (README, the BBR collapse): both portals read the step as a
  // standing queue for the rest of the flow (the min-OWD window held 60 s while "queued"); the
  // ACK sender's over-estimate rule halved the link 30 → 1.9 Mbit/s in 0.3 s and ackAvoid took
  // every ACK off it for good; the data sender's busy rule reset the estimate to a delivery rate
  // that fell with it, down to 0.4 Mbit/s. A queue that neither grows nor drains while the link
  // delivers what it is given is path: re-based within a few rounds, and nothing is cut on a
  // delay alone.
  const starlink = (rate: (t: number) => number) => ({ rateBps: rate, propUs: (t: number) => (t >= 5 * S ? 45_000 : 25_000), queueBytes: queueOf(60, 30 * M), cc: { initialRateBps: 30 * M, owdUs: 25_000, rttUs: 50_000 } });
  const dsl = { rateBps: 20 * M, propUs: 10_000, queueBytes: queueOf(60, 20 * M), cc: { initialRateBps: 20 * M, owdUs: 10_000, rttUs: 20_000 } };
  const rateStep = (after: number) => (t: number) => (t >= 5 * S ? after : 30) * M;

  it('a delay step under the ACKs of a flow the other way (3 Mbit/s on a 30 Mbit/s link) cuts nothing and is re-based within 1 s; ACKs keep the link', () => {
    for (const after of [30, 18]) {
      // main: 30 → 3.8 Mbit/s in 0.5 s, 0.2 by the end, the 20 ms "queue" to the end
      const r = simulate({ links: [starlink(rateStep(after))], durationUs: 10 * S, offeredBps: 3 * M, packetBytes: 120 });
      const xs = r.traces.filter((x) => x.tUs > 5 * S);
      const lowest = Math.min(...xs.map((x) => x.bwBps));
      // the controller's queue from a second after the step on: none (the step is path)
      const queued = Math.max(...xs.filter((x) => x.tUs >= 6 * S).map((x) => x.ccQueueUs));
      const f = report(`delay step +20 ms under ACKs, 30 → ${after} Mbit/s`, { lowestEstimateMbit: lowest / M, queueAfter1sMaxMs: queued / 1000 });
      assert.ok(lowest >= 0.9 * after * M, `estimate fell to ${lowest} (capacity ${after} Mbit/s)`);
      assert.ok(queued < cc.queueTargetUs(r.states[0]!), `a queue of ${queued} µs read from 1 s after the step`);
      // next to a 20 Mbit/s link the sender drives (proven now): not "far slower", ACKs stay
      const busy = { ...converged().s, lastFeedbackUs: 10 * S, bwProvenUs: 10 * S };
      assert.deepEqual([...cc.ackAvoid(new Map([[0, busy], [1, r.states[0]!]]), new Set(), 10 * S)], []);
    }
  });

  it('a delay step on a link that carries part of a flow keeps its estimate and the bond its throughput (36 Mbit/s over 20 + 30)', () => {
    for (const after of [30, 18]) {
      // main: the estimate 16 → 0.9 Mbit/s within 1.4 s, the bond 21 Mbit/s from then on
      const r = simulate({ links: [dsl, starlink(rateStep(after))], durationUs: 12 * S, planned: true, offeredBps: 36 * M });
      const total = (fromUs: number, toUs: number) => (goodputBps(r.traces, 0, { fromUs, toUs }) + goodputBps(r.traces, 1, { fromUs, toUs })) / M;
      const carried = goodputBps(r.traces, 1, { fromUs: 4 * S, toUs: 5 * S });
      const lowest = Math.min(...r.traces.filter((x) => x.link === 1 && x.tUs > 5 * S).map((x) => x.bwBps));
      const queued = Math.max(...r.traces.filter((x) => x.link === 1 && x.tUs >= 6 * S).map((x) => x.ccQueueUs));
      const f = report(`delay step +20 ms on a loaded link, 30 → ${after} Mbit/s`, { carriedBeforeMbit: carried / M, lowestEstimateMbit: lowest / M, totalStepSecondMbit: total(5 * S, 6 * S), totalAfterMbit: total(6 * S, 12 * S), queueAfter1sMaxMs: queued / 1000 });
      assert.ok(lowest >= 0.85 * carried, `estimate fell to ${lowest}, the link carried ${carried} before the step`);
      assert.ok(queued < cc.queueTargetUs(r.states[1]!), `a queue of ${queued} µs read from 1 s after the step`);
      assert.ok(f.totalStepSecondMbit! >= 0.9 * 36 && f.totalAfterMbit! >= 0.95 * 36, `bond ${f.totalStepSecondMbit} in the step's second, ${f.totalAfterMbit} after (36 offered)`);
    }
  });

  it('an ACK stream that rises after a delay step is not an overload: what arrives is set against what was sent a round trip before', () => {
    // lab (the LP of a BBR download, starlink): after the +20 ms step the download's ACKs rose
    // from 1.2 to 3 Mbit/s; the feedback of a window shows what left a round trip earlier, so
    // within one window 3.0 sent read against 1.2 delivered, and the estimate was halved
    // 17.8 → 4.4 Mbit/s, over two more downloads to 0.4, the ACKs on DSL
    let s = cc.initial({ initialRateBps: 18 * M, owdUs: 45_000, rttUs: 90_000 });
    const bytes = (mbit: number) => (mbit * M * 0.02) / 8;
    const rateAt = (i: number) => (i < 35 ? 1.2 : 3.5); // 25 intervals before the step, 10 after it
    let t = 0;
    for (let i = 0; i < 80; i++) {
      t += 20_000;
      const owd = 1_000_000 + (i >= 25 ? 20_000 : 0);
      const dlv = bytes(rateAt(Math.max(0, i - 5))); // what left ~110 ms (a round trip and the step) before
      s = cc.onFeedback(s, rec({ bytes: dlv, packets: Math.round(dlv / 100), lost: 0, owdMinUs: owd, owdMaxUs: owd, echoTsUs: null, echoDelayUs: null }), bytes(rateAt(i)), t);
    }
    report('rising ACKs after a delay step', { estimateMbit: cc.bwBps(s) / M });
    assert.ok(cc.bwBps(s) >= 17 * M, `estimate cut to ${cc.bwBps(s)}`);
  });

  it('"far slower" holds only on a recent proof: a link that carries nothing but the ACKs it is flagged off is re-probed (ackAvoid)', () => {
    const { s, t } = converged();
    const fast = { ...s, bwProvenUs: t + 10 * S };
    // proven 2 Mbit/s at t (a busy link's cut): far slower than 20, flagged
    const slow = { ...s, bw: winReset(t, 2 * M), bwProvenUs: t };
    const at = (now: number, prev: Set<number>) => [...cc.ackAvoid(new Map([[0, { ...fast, bwProvenUs: now }], [1, slow]]), prev, now)];
    assert.deepEqual(at(t + 1 * S, new Set()), [1]);
    assert.deepEqual(at(t + 4 * S, new Set([1])), [1]);
    // no proof since (no data on it, no ACKs): the ACKs come back and probe it
    assert.deepEqual(at(t + cc.ACK_AVOID_PROVEN_US + 1, new Set([1])), []);
    // a fresh proof (it could not carry what it was given) flags it again
    assert.deepEqual([...cc.ackAvoid(new Map([[0, fast], [1, { ...slow, bwProvenUs: t + 10 * S }]]), new Set(), t + 10 * S)], [1]);
  });

  it('do no harm: one TCP CUBIC flow over 20 + 20 Mbit/s with 1 % random loss on one gets at least the clean link alone', () => {
    // the lossy link carries only the share whose loss the flow can take (LOSS_BUDGET); with
    // half the flow's packets there (before), CUBIC got 11 Mbit/s
    const links = (loss: number[]) => loss.map((l) => ({ rateBps: 20 * M, propUs: 10_000, loss: l, queueBytes: queueOf(50, 20 * M), cc: { initialRateBps: 20 * M, owdUs: 10_000, rttUs: 20_000 } }));
    const w = { fromUs: 5 * S, toUs: 20 * S };
    const bond = simulate({ links: links([0, 0.01]), durationUs: 20 * S, tcp: {}, seed: 2 });
    const alone = simulate({ links: links([0]), durationUs: 20 * S, tcp: {}, seed: 2 });
    const f = report('lossy pair, TCP CUBIC', {
      bondMbit: (goodputBps(bond.traces, 0, w) + goodputBps(bond.traces, 1, w)) / M,
      lossyShare: goodputBps(bond.traces, 1, w) / (goodputBps(bond.traces, 0, w) + goodputBps(bond.traces, 1, w)),
      aloneMbit: goodputBps(alone.traces, 0, w) / M,
      learnedLoss: bond.states[1]!.lossBase,
    });
    assert.ok(f.bondMbit! >= f.aloneMbit!, `bond ${f.bondMbit} vs ${f.aloneMbit} alone`);
    assert.ok(f.learnedLoss! > 0.005, `loss rate learned ${f.learnedLoss}`);
  });
});
