// One congestion controller per link, on the sender: receiver feedback in, the link's pacing
// rate and one-way-delay estimate out (what the scheduler reads from mp_links). Pure functions
// of plain data; the portal owns the clock, the timers and the map writes.
//
//   initial(params, now)                   a new link: sends at params.initialRateBps
//   onFeedback(state, fb, sentBytes, now, plannedQueueUs)
//                                          one receiver interval (feedback.ts)
//   onSilence(state, now)                  on a timer: no feedback for a while → stale
//   onRtt(state, rttUs, now)               optional: a probe's round trip
//   output(state) / outputs(states)        { rateBps, owdUs } for mp_links
//
// `now` is µs of the sender's monotonic clock, the one the data path stamps ts_us with
// (bpf_ktime_get_ns() / 1000; process.hrtime in Node), so feedback echoes give round trips.
//
// The model, in the spirit of BBR, with explicit queue control:
//
// - Bandwidth: the receiver's delivery rate (bytes over the last ~60 ms of intervals) through
//   a windowed max filter (10 rounds). Samples from intervals where the sender had less to
//   send than its rate allowed (application-limited) only count when they raise the estimate.
// - Delays: a windowed min (10 s) of the one-way-delay samples. The clocks are not
//   synchronised, so OWD only means something relative to that minimum: the queueing delay is
//   `owd − min owd`, taken as the min over the last 40 ms (a standing queue, not jitter).
//   Round trips come from the feedback's echo (or probes): their min sizes a *round* (RTT +
//   two feedback intervals: how long a change of rate takes to show) and the queue target.
// - STARTUP sends at 2× the estimate, so it doubles every round while the link has room; it
//   ends when the queue passes the target, when loss says the buffer overflowed, or when the
//   estimate grew less than 25 % in 3 rounds. DRAIN then empties the queue it built.
// - PROBE_BW cycles pacing gains 1.25 (up), 0.75 (down), 1, 1, 1, 1 (cruise, a round each).
//   Up lasts until the queue passes the target or loss appears (the limit is found: down
//   drains what the probe queued, and ends as soon as the queue is gone), or until the
//   delivery rate has grown 15 %: then the link has grown and STARTUP finds how much, in a
//   few rounds instead of +25 % per cycle.
// - Planned queue: the scheduler itself keeps a backlog on a link on purpose (busy_until: on
//   links of different delay, the fast one is kept as far ahead as the slow one is behind,
//   so packets arrive in order). The sender tells each feedback what the scheduler modelled
//   for the interval's packets (plannedQueueUs); only the queue beyond that is news. Counting
//   the planned backlog as congestion would cut the rate and inflate the delay the scheduler
//   sees, so its model runs ahead of the real link and the packets it puts on the slow link
//   arrive late: reordering (20/10 ms + 20/60 ms: a 50 ms model backlog against ~5 ms real).
//   While a link is queued as planned, the min-OWD window is also held (minWindowQueuedUs):
//   a link that carried a full queue for 10 s (its peer cut) must not take that queue for
//   its propagation delay.
// - Delay steps: a path can get longer at once (a satellite hand-over, an ISP's re-route). A
//   queue of ours grows while the link is given more than it delivers and drains while given
//   less; a "queue" that stands flat round after round while the link delivers what it is
//   given is path: the min delay is re-based on it (stepTest). Neither the busy rule nor the
//   over-estimate proof cuts the estimate on a delay alone: both need the link to deliver less
//   than it is given (or, busy, more: a queue draining).
// - Queue control, always: the rate is scaled by 1 − queue / 100 ms (at least 0.35), so a
//   queue drains instead of standing; and while the queue is above the target (¼ of the min
//   RTT, within 5-10 ms) the bottleneck is busy, so the delivery rate *is* its capacity: the
//   estimate is reset to it. A drop in capacity is followed within a round or two, and a
//   bufferbloated modem never fills.
// - Loss: random loss is not congestion (a lossy radio link must keep its rate). The link's own
//   loss rate is learned while the link has no queue (planned or not, under half the target)
//   and had none the interval before (a buffer that dropped its queue), in any phase, and
//   only loss above it by more than
//   2 % (and at least 3 packets) counts, and only with a queue (over half the target) or when
//   massive (> 8 %: a shallow buffer overflowing). In cruise that cuts the rate to 0.85 × the
//   delivery rate (once per round) until the next up phase probes again; during a probe it
//   only ends the probe, as the probe caused it.
// - Buffer depth: the scheduler's planned backlog sits in the link's own buffer, and a buffer
//   holds only so much. Loss beyond the random loss while the link held a real queue (OWD
//   over its min) of at least depthMinUs bounds the buffer: its depth is taken as the largest
//   queue the link showed over the queue window around the loss, and a later queue above
//   that for depthRaiseUs (100 ms) proves it deeper. The scheduler plans at most the depth
//   less a margin on the link (planCapUs → mp_link.plan_cap_ms, bpf/schedule.h): 20/10 +
//   20/60 ms, the fast link holds ~50 ms of planned backlog in its 60 ms buffer, so it
//   overflowed as soon as the slow link queued at all and one CUBIC flow lost a packet the
//   moment it filled the bond (cwnd ~400 at 120 ms), cut to 0.7× and ran at 18-27 Mbit/s
//   (README "mismatch").
// - Output: rate = estimate × gain × queue factor, within the loss cap, the optional ceiling
//   and a floor; owd = propagation delay + the queue beyond the target (see owdQueueUs).
//
// Rates are bit/s of outer IP bytes (the unit of mp_links.rate_bps).

import { winBest, winMax, winMin, winReset, type WinFilter } from './filter.js';
import type { LinkFeedback } from './feedback.js';

export interface CcParams {
  /** Rate before any feedback, and the startup's first estimate. */
  initialRateBps: number;
  /** Never below this (mp_links.rate_bps 0 would mean "unknown"). */
  minRateBps: number;
  /** Optional configured ceiling for the link (null: none). */
  ceilingBps: number | null;
  /** How often the receiver reports. */
  feedbackIntervalUs: number;
  /** Round trip assumed until one is measured. */
  rttUs: number;
  /** One-way delay assumed until a round trip is measured (e.g. the configured delay). */
  owdUs: number;
  /** Queueing-delay target: this fraction of the min RTT, kept within [min, max]. */
  queueTargetRttFraction: number;
  queueTargetMinUs: number;
  queueTargetMaxUs: number;
  /** the queue target is at least this many times the link's jitter (State.jitterUs) ... */
  jitterTargetFactor: number;
  /** ... up to this, µs */
  jitterTargetMaxUs: number;
  /** Queue factor: the rate is scaled by 1 − queue / drainTimeUs, at least drainMinGain. */
  drainTimeUs: number;
  drainMinGain: number;
  startupGain: number;
  /** PROBE_BW pacing gains: [up, down, cruise…]. */
  cycleGains: readonly number[];
  /** Startup ends when the estimate grew less than this factor for `startupFullRounds`. */
  startupGrowth: number;
  startupFullRounds: number;
  /** An up phase whose delivery rate grows by this factor restarts STARTUP. */
  probeRestartGrowth: number;
  /** An up phase that finds nothing ends after this many rounds. */
  probeMaxRounds: number;
  /** Loss beyond the link's random loss that may mean congestion, the cut it causes, the
   * fewest lost packets that count, and how many packets a loss rate is measured over. */
  lossThreshold: number;
  lossDecrease: number;
  lossMinPackets: number;
  lossWindowPackets: number;
  /** Packets the link must have reported before its random-loss rate counts as known (parity
   * until then: fecLinks); the first of them are averaged as if there were this many. */
  lossBasePackets: number;
  /** Packets over which the link's random-loss rate is averaged once learned (State.lossBase):
   * a running mean up to this many, then an exponential average over this many. */
  lossMemoryPackets: number;
  /** Delivery-rate sample length; standing-queue window; longest loss window. */
  rateWindowUs: number;
  queueWindowUs: number;
  lossWindowUs: number;
  /** Bandwidth max-filter length in rounds; OWD and RTT min-filter length. */
  bwWindowRounds: number;
  minWindowUs: number;
  /** A modelled backlog at least this long through the rate window: the link is saturated
   * (no probing gain; see saturated()). */
  saturatedBacklogUs: number;
  /** The min-OWD window while the link has a queue (planned or not): a standing queue must
   * not become the propagation delay. */
  minWindowQueuedUs: number;
  /** No feedback for this long: the estimate is stale. */
  staleAfterUs: number;
  /** The hold rate's delivery samples (holdBps): each over at least holdSpanUs of feedback,
   * kept for holdWindowUs. */
  holdSpanUs: number;
  holdWindowUs: number;
  /** The sender put at least this share of the estimate on the link through the rate window:
   * the flow loads it, no probing gain (see loadedAtEstimate()). */
  loadedShare: number;
  /** A link with a standing queue that delivers less than this fraction of the estimate is
   * over-estimated (even when the sender looks application-limited against the estimate)... */
  overEstimate: number;
  /** A queue of ours that grew through growSpanUs (growing()) while the link delivered less
   * than growShare of the estimate proves the link slower than it is given, whatever the
   * sender's rate said: the estimate falls to the delivery rate. */
  growSpanUs: number;
  growShare: number;
  /** Loss under a real queue of at least this much bounds the link's buffer (depthUs). */
  depthMinUs: number;
  /** A real queue above the learned depth raises it once it stood this long (stoodQueue). */
  depthRaiseUs: number;
  /** The scheduler plans at most the depth less this share of it, and at least this much less. */
  depthMarginShare: number;
  depthMarginMinUs: number;
  /** ...provided it also delivers less than it is given: the sender put at least this
   * multiple of what the link delivered on it over the loss window (or lost packets to
   * congestion). A link that delivers within this factor of what it is given either way
   * carries it: no queue of ours grows or drains there (see carried()). */
  overloadFactor: number;
  /** A delay step: the queue stood above the target, flat within max(stepFlatUs, stepFlatShare
   * of itself) from one round to the next, while the link carried what it was given and lost
   * nothing to congestion, for stepRounds rounds in a row: it is propagation, and the min delay
   * is re-based (see onFeedback, step 7). */
  stepRounds: number;
  stepFlatUs: number;
  stepFlatShare: number;
  /** A shaped link (run/shaper.ts): its class passes this share of the larger of its pacing
   * rate and its estimate (0: not shaped). A delivery sample at least classLimited of that is
   * what the class let through, not what the link can carry: it may raise the estimate, never
   * lower it (as application-limited samples). */
  shapeGain: number;
  classLimited: number;
}

export const DEFAULT_CC: CcParams = Object.freeze({
  initialRateBps: 1_000_000,
  minRateBps: 100_000,
  ceilingBps: null,
  feedbackIntervalUs: 20_000,
  rttUs: 50_000,
  owdUs: 20_000,
  queueTargetRttFraction: 0.25,
  queueTargetMinUs: 5_000,
  queueTargetMaxUs: 10_000,
  jitterTargetFactor: 8,
  jitterTargetMaxUs: 40_000,
  drainTimeUs: 100_000,
  drainMinGain: 0.35,
  startupGain: 2,
  cycleGains: Object.freeze([1.25, 0.75, 1, 1, 1, 1]),
  startupGrowth: 1.25,
  startupFullRounds: 3,
  probeRestartGrowth: 1.15,
  probeMaxRounds: 3,
  lossThreshold: 0.02,
  lossDecrease: 0.85,
  lossMinPackets: 3,
  lossWindowPackets: 100,
  lossBasePackets: 1000,
  lossMemoryPackets: 5000,
  rateWindowUs: 60_000,
  queueWindowUs: 40_000,
  lossWindowUs: 200_000,
  bwWindowRounds: 10,
  minWindowUs: 10_000_000,
  minWindowQueuedUs: 60_000_000,
  saturatedBacklogUs: 2_000,
  staleAfterUs: 200_000,
  holdSpanUs: 100_000,
  holdWindowUs: 1_000_000,
  loadedShare: 0.9,
  overEstimate: 0.5,
  growSpanUs: 400_000,
  growShare: 0.7,
  depthMinUs: 10_000,
  depthRaiseUs: 100_000,
  depthMarginShare: 0.1,
  depthMarginMinUs: 3_000,
  overloadFactor: 1.15,
  stepRounds: 3,
  stepFlatUs: 3_000,
  stepFlatShare: 0.15,
  shapeGain: 0,
  classLimited: 0.95,
});

export type Phase = 'startup' | 'drain' | 'probe_bw';

/** One feedback interval as the controller keeps it. */
interface Interval {
  readonly atUs: number;
  readonly intervalUs: number;
  readonly bytes: number;
  readonly packets: number;
  readonly lost: number;
  /** The interval's smallest OWD on the unwrapped line (null: no sample). */
  readonly owd: number | null;
  /** The scheduler's modelled backlog for the interval's packets (µs). */
  readonly plannedUs: number;
  readonly appLimited: boolean;
  /** What the sender put on the link over the interval, bit/s, and in bits. */
  readonly sentBps: number;
  readonly sentBits: number;
}

/** Raw u32 OWD samples unwrapped onto a continuous line (each step taken modulo 2^32). */
interface OwdLine {
  readonly lastRaw: number;
  readonly last: number;
  /** Windowed min on the line. */
  readonly min: WinFilter;
}

export interface State {
  readonly params: CcParams;
  readonly phase: Phase;
  /** When the current phase (PROBE_BW: gain-cycle step) began. */
  readonly phaseStartUs: number;
  /** PROBE_BW: index into cycleGains. */
  readonly cycleIndex: number;
  readonly roundStartUs: number;
  /** STARTUP plateau detector: the estimate at the last growth, rounds without growth. */
  readonly fullBwBps: number;
  readonly fullBwRounds: number;
  /** The estimate when the current up phase began. */
  readonly probeBaseBps: number;
  /** When cruising began (PROBE_BW past the down phase): loss before then is our own. */
  readonly cruiseSinceUs: number;
  /** Bandwidth max filter. */
  readonly bw: WinFilter;
  /** Loss-based cap on the rate until the next up phase (null: none). */
  readonly lossCapBps: number | null;
  readonly lastCongestionUs: number | null;
  /** The link's random loss rate (what it loses without a queue), and how many packets it was
   * learned from (up to lossMemoryPackets: see onFeedback, step 6). */
  readonly lossBase: number;
  readonly lossBaseOf: number;
  /** The link's buffer depth, µs of queue at its rate: learned from loss under a queue (null:
   * not found yet, no cap). */
  readonly depthUs: number | null;
  /** Packets the link's feedback has reported (received + lost) since the controller began:
   * below lossBasePackets its random loss is not known yet (fecLinks). */
  readonly packetsSeen: number;
  /** Min round trip (null: none measured yet). */
  readonly rttMin: WinFilter | null;
  readonly owd: OwdLine | null;
  readonly recent: readonly Interval[];
  /** Signals of the last feedback. */
  readonly deliveryBps: number;
  readonly queueUs: number;
  /** The link's delay variation that is not our queue, µs (jitterOf, over `recent`; kept here
   * because queueTargetUs, which reads it, runs many times per feedback). A link that holds
   * packets back at random without reordering them (cellular scheduling, retransmission in the
   * radio layer; the lab's jitter) shows its variation as a queue behind the delayed packet:
   * queueTargetUs sits above it, so it is not taken for congestion. */
  readonly jitterUs: number;
  /** jitterUs averaged over time (JITTER_AVG_US, intervals with packets only; `atUs`: the last
   * such interval), and whether that marks the link as jittery (JITTERY_ON_US, hysteresis to
   * JITTERY_OFF_US): a link the others do not equalise against when they shape (equalising). */
  readonly jitterAvg: { readonly us: number; readonly atUs: number; readonly jittery: boolean };
  readonly lossRate: number;
  /** The pacing rate in force. */
  readonly rateBps: number;
  readonly lastFeedbackUs: number;
  readonly stale: boolean;
  /** Other links of the direction carry the flows too (onFeedback's othersCarry): a link the
   * flows load at its estimate does not probe (loadedAtEstimate). */
  readonly othersCarry: boolean;
  /** What the link delivered over spans of at least holdSpanUs the sender kept it loaded
   * (holdBps), the last holdWindowUs of them. */
  readonly holdSamples: readonly { readonly atUs: number; readonly bps: number }[];
  /** The delay-step test (onFeedback step 3): rounds in a row the queue stood flat above the
   * target while the link carried what it was given, the queue at the last round's end, and
   * what was sent, delivered and lost since those rounds began. */
  readonly step: StepTest;
  /** When the estimate was last shown to be the link's capacity, not just what it was given: a
   * sample of a sender that used its rate, or a cut on a busy or lossy link (null: never).
   * ackAvoid's "far slower" counts only on a recent one. */
  readonly bwProvenUs: number | null;
}

interface StepTest {
  readonly rounds: number;
  readonly lastQueueUs: number;
  readonly sentBits: number;
  readonly deliveredBits: number;
  readonly packets: number;
  readonly lost: number;
}
const NO_STEP: StepTest = Object.freeze({ rounds: 0, lastQueueUs: 0, sentBits: 0, deliveredBits: 0, packets: 0, lost: 0 });

export interface Output {
  rateBps: bigint;
  owdUs: number;
}

/** What status and the TUI show about a link's controller. */
export interface Estimate {
  phase: Phase;
  bwBps: number;
  rateBps: number;
  deliveryBps: number;
  queueUs: number;
  rttUs: number;
  lossRate: number;
  stale: boolean;
}

// ---- derived quantities ---------------------------------------------------------------------

function rttOf(s: State): number {
  return s.rttMin ? winBest(s.rttMin) : s.params.rttUs;
}

/** How long a change of rate takes to show in feedback, and a bit: the unit of every phase. */
export function roundUs(s: State): number {
  return Math.max(rttOf(s), s.params.feedbackIntervalUs) + 2 * s.params.feedbackIntervalUs;
}

export function queueTargetUs(s: State): number {
  const p = s.params;
  const base = Math.min(p.queueTargetMaxUs, Math.max(p.queueTargetMinUs, p.queueTargetRttFraction * rttOf(s)));
  return Math.max(base, Math.min(p.jitterTargetMaxUs, p.jitterTargetFactor * s.jitterUs));
}

/**
 * State.jitterUs from the recent intervals: the median difference of consecutive OWD samples
 * less what the plan explains. A queue that builds or drains, or a delay that steps, moves a
 * few consecutive samples (one outlier of the median); a link that holds packets back at
 * random moves most of them. 0 with fewer than JITTER_MIN_PAIRS pairs.
 */
function jitterOf(recent: readonly Interval[]): number {
  // runs on every feedback of every link (50 a second per busy link): the differences go into a
  // scratch array kept between calls and are sorted in place (a dozen or two: insertion sort)
  let n = 0;
  for (let i = 1; i < recent.length; i++) {
    const a = recent[i - 1]!;
    const b = recent[i]!;
    if (a.owd === null || b.owd === null) continue;
    if (n === jitterScratch.length) jitterScratch = growScratch(jitterScratch);
    const d = Math.abs(b.owd - b.plannedUs - (a.owd - a.plannedUs));
    let j = n++;
    for (; j > 0 && jitterScratch[j - 1]! > d; j--) jitterScratch[j] = jitterScratch[j - 1]!;
    jitterScratch[j] = d;
  }
  return n < JITTER_MIN_PAIRS ? 0 : jitterScratch[n >> 1]!;
}
let jitterScratch: Float64Array = new Float64Array(64);

/** State.jitterAvg's time constant, and the average from which a link counts as jittery (and
 * below which it stops: a dense stream on a link whose packets keep their order shows little
 * of its jitter, each waiting behind the one held before it, so jitterUs alone falls to ~1 ms
 * there). Lab traces, jitterUs so averaged (session 24, README "Per-link shaping"): `lte`'s
 * LTE link (±10 ms, order kept) 1.4-2.9 ms at its highest in every lab, jittery for 55-94 % of
 * a shaped lab's life, from 12-26 s on; the demo's links (±2 ms, ±1 ms) and `mismatch`'s at
 * most 0.8 ms. The simulator's links (linksim.ts, backlogged): 20 ms of jitter 2.3-2.4, 4 ms
 * 1.1-1.2, none 0.3. */
export const JITTER_AVG_US = 10_000_000;
export const JITTERY_ON_US = 1_400;
export const JITTERY_OFF_US = 700;

function nextJitterAvg(a: State['jitterAvg'], jitterUs: number, nowUs: number): State['jitterAvg'] {
  const us = a.us + (jitterUs - a.us) * (1 - Math.exp(-Math.max(0, nowUs - a.atUs) / JITTER_AVG_US));
  return { us, atUs: nowUs, jittery: us >= (a.jittery ? JITTERY_OFF_US : JITTERY_ON_US) };
}
const growScratch = (a: Float64Array): Float64Array => {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
};
const JITTER_MIN_PAIRS = 5;

/** The bandwidth estimate, bit/s. */
export function bwBps(s: State): number {
  const bw = winBest(s.bw);
  return s.params.ceilingBps === null ? bw : Math.min(bw, s.params.ceilingBps);
}

/**
 * The rate a held link is planned at (CcLoop.hold: HOLD_SHARE of it), the bandwidth estimate
 * or, if lower, the median of what the link delivered over spans of 100 ms that the sender
 * kept loaded, in the last second (at least 3 of them; fewer: the estimate). The estimate is a
 * max filter of 20 ms samples, and a hold rate is frozen for as long as the link is held: one
 * bunched sample (a receiver or an emulator that stalled, then counted two intervals' packets
 * in one) stays in it. test/survive.test.ts, LP killed: a 68-packet feedback on a 20 Mbit/s
 * link read 25.2 Mbit/s a few ms before the kill, the RP held the link at 24.7 Mbit/s, the
 * scheduler planned the flow onto it, and the flow ran at one link's worth (51 %) for the
 * remaining 60 s. A burst moves a median of ten 100 ms spans by nothing.
 */
export function holdBps(s: State): number {
  const bw = bwBps(s);
  const xs = s.holdSamples.map((x) => x.bps).sort((a, b) => a - b);
  if (xs.length < 3) return bw;
  return Math.min(bw, xs[Math.floor((xs.length - 1) / 2)]!);
}

/** holdSamples after a feedback: a new sample once the last is holdSpanUs old, over the newest
 * intervals that make up holdSpanUs, unless the sender left the link idle (application-limited)
 * for more than a quarter of it; the last holdWindowUs kept. */
function nextHoldSamples(s: State, recent: readonly Interval[], nowUs: number): State['holdSamples'] {
  const p = s.params;
  const kept = s.holdSamples.filter((x) => nowUs - x.atUs < p.holdWindowUs);
  const last = kept.at(-1);
  if (last && nowUs - last.atUs < p.holdSpanUs) return kept.length === s.holdSamples.length ? s.holdSamples : kept;
  let us = 0;
  let bytes = 0;
  let limitedUs = 0;
  for (let i = recent.length - 1; i >= 0 && us < p.holdSpanUs; i--) {
    const r = recent[i]!;
    us += r.intervalUs;
    bytes += r.bytes;
    if (r.appLimited) limitedUs += r.intervalUs;
  }
  if (us < p.holdSpanUs || limitedUs > us / 4) return kept.length === s.holdSamples.length ? s.holdSamples : kept;
  return [...kept, { atUs: nowUs, bps: (bytes * 8 * 1e6) / us }];
}

/** Propagation one-way delay: half the min RTT, or the configured hint. */
function propUs(s: State): number {
  return s.rttMin ? winBest(s.rttMin) / 2 : s.params.owdUs;
}

/**
 * The queue the scheduler must add to the link's delay: what exceeds the target. Up to the
 * target, the queue is the operating point and largely made by the scheduler's own bursts,
 * which its busy_until already models; counting it again makes the scheduler swing load
 * between links in bursts as the estimate moves. Beyond it, the queue is news (capacity
 * dropped, cross traffic) and packets must avoid the link until it drains.
 */
export function owdQueueUs(s: State): number {
  // A stale link (no feedback: held, see CcLoop.hold) has no queue news: the last one, frozen
  // into its delay, kept the scheduler off the link for as long as it was held (survive.test,
  // LP killed: a 10 ms queue of its last feedback froze a 10 ms link at 20.5 ms, behind the
  // 15 ms one, and the flow got one link's worth); the scheduler's own backlog model at the
  // hold rate is what it has.
  if (s.stale) return 0;
  return Math.max(0, s.queueUs - queueTargetUs(s));
}

export function estimate(s: State): Estimate {
  return {
    phase: s.phase,
    bwBps: bwBps(s),
    rateBps: s.rateBps,
    deliveryBps: s.deliveryBps,
    queueUs: s.queueUs,
    rttUs: rttOf(s),
    lossRate: s.lossRate,
    stale: s.stale,
  };
}

// ---- the controller -------------------------------------------------------------------------

export function initial(params: Partial<CcParams> = {}, nowUs = 0): State {
  const p: CcParams = { ...DEFAULT_CC, ...params };
  const start = p.ceilingBps === null ? p.initialRateBps : Math.min(p.initialRateBps, p.ceilingBps);
  return {
    params: p,
    phase: 'startup',
    phaseStartUs: nowUs,
    cycleIndex: 0,
    roundStartUs: nowUs,
    fullBwBps: 0,
    fullBwRounds: 0,
    probeBaseBps: start,
    cruiseSinceUs: nowUs,
    bw: winReset(nowUs, start),
    lossCapBps: null,
    lastCongestionUs: null,
    lossBase: 0,
    lossBaseOf: 0,
    depthUs: null,
    packetsSeen: 0,
    rttMin: null,
    owd: null,
    recent: [],
    deliveryBps: 0,
    queueUs: 0,
    jitterUs: 0,
    jitterAvg: { us: 0, atUs: nowUs, jittery: false },
    lossRate: 0,
    rateBps: start,
    lastFeedbackUs: nowUs,
    stale: false,
    othersCarry: false,
    holdSamples: [],
    step: NO_STEP,
    bwProvenUs: nowUs,
  };
}

/** A round trip measured on this link (a probe's, or a feedback echo's). */
export function onRtt(s: State, rttUs: number, nowUs: number): State {
  if (!(rttUs > 0 && rttUs < 10_000_000)) return s;
  return { ...s, rttMin: s.rttMin ? winMin(s.rttMin, s.params.minWindowUs, nowUs, rttUs) : winReset(nowUs, rttUs) };
}

/** The propagation one-way delay measured on this link (half its min round trip; null: none
 * measured yet, the link runs on its hint). */
export function measuredOwdUs(s: State): number | null {
  return s.rttMin ? Math.round(winBest(s.rttMin) / 2) : null;
}

/** A better delay hint for a link that has measured none (RP: the LP's probe carries the delay
 * the LP measured); a measured link keeps its own. */
export function withOwdHint(s: State, owdUs: number): State {
  if (s.rttMin || !(owdUs > 0) || owdUs === s.params.owdUs) return s;
  return { ...s, params: { ...s.params, owdUs, rttUs: Math.max(2 * owdUs, 1000) } };
}

/** Has no feedback shown a packet of ours on this link yet (its estimate is still its start)? */
export function unmeasured(s: State): boolean {
  return s.packetsSeen === 0;
}

/** A measured starting rate for a link that has carried nothing yet (a capacity train,
 * run/train.ts): the controller starts over from it as from a configured rate, keeping the round
 * trips its probes measured. */
export function withRateHint(s: State, rateBps: number, nowUs: number): State {
  if (!(rateBps > 0)) return s;
  return { ...initial({ ...s.params, initialRateBps: Math.max(rateBps, s.params.minRateBps) }, nowUs), rttMin: s.rttMin };
}

/**
 * Might the link carry more than its estimate? The flows load it at its estimate, so the
 * controller does not probe it (saturated(), or loadedAtEstimate() while other links carry),
 * and yet no queue stands there: over the queue window its packets met less than the queue
 * target of delay (the raw OWD over its min, planned backlog included). A link whose estimate
 * is right holds a queue where it is loaded; one that got faster (20 → 5 → 20 Mbit/s under a
 * flow) delivers everything at once. Only a suspicion: a capacity train decides
 * (run/train.ts re-trains, raiseFromTrain).
 */
export function roomSuspected(s: State): boolean {
  if (s.stale || s.phase !== 'probe_bw' || !s.owd) return false;
  if (!(saturated(s) || (s.othersCarry && loadedAtEstimate(s)))) return false;
  const w = s.recent.filter((r) => s.lastFeedbackUs - r.atUs < s.params.queueWindowUs && r.owd !== null);
  if (w.length === 0) return false;
  const raw = Math.min(...w.map((r) => r.owd!)) - winBest(s.owd.min);
  return raw < queueTargetUs(s);
}

/** A re-train measured the link at `rateBps` (run/train.ts): more than `off` times the estimate
 * raises it there, cruising (the queue rule takes it down within a round if the train
 * overshot); less changes nothing (a lower capacity shows as a queue: onFeedback's rules). */
export function raiseFromTrain(s: State, rateBps: number, nowUs: number, off: number): State {
  if (!(rateBps > off * bwBps(s)) || s.stale) return s;
  const rate = s.params.ceilingBps === null ? rateBps : Math.min(rateBps, s.params.ceilingBps);
  if (!(rate > bwBps(s))) return s;
  const n = enter({ ...s, bw: winReset(nowUs, rate), bwProvenUs: nowUs, lossCapBps: null }, 'probe_bw', nowUs, 2);
  return { ...n, rateBps: pacingRate(n) };
}

/** On a timer: without feedback for staleAfterUs (or `afterUs`: the loop's longer limit while
 * the peer sends feedback at its quiet rate) the rate stays but the estimate is marked stale
 * (whether the link is dead is the liveness module's call, not ours). */
export function onSilence(s: State, nowUs: number, afterUs: number = s.params.staleAfterUs): State {
  if (s.stale || nowUs - s.lastFeedbackUs < afterUs) return s;
  return { ...s, stale: true };
}

/**
 * One receiver interval of this link. `sentBytes`: what the sender put on the link since the
 * previous feedback, to tell an application-limited interval from a saturated one.
 */
export function onFeedback(s0: State, fb: LinkFeedback, sentBytes: number | bigint, nowUs: number, plannedQueueUs = 0, othersCarry = false): State {
  const p = s0.params;
  if (!(fb.intervalUs > 0)) return { ...s0, lastFeedbackUs: nowUs, stale: false, othersCarry };

  // Back from silence: what came before is history; resume cruising (or the startup).
  let s: State = s0.stale
    ? { ...s0, stale: false, recent: [], phase: s0.phase === 'startup' ? 'startup' : 'probe_bw', cycleIndex: 2, phaseStartUs: nowUs, roundStartUs: nowUs, cruiseSinceUs: nowUs }
    : s0;

  // 1. The echo's round trip; the OWD sample onto the unwrapped line and its windowed min.
  if (fb.echoTsUs !== null && fb.echoDelayUs !== null) s = onRtt(s, ((nowUs >>> 0) - fb.echoTsUs - fb.echoDelayUs) | 0, nowUs);
  let owd = s.owd;
  let owdSample: number | null = null;
  if (fb.owdMinUs !== null) {
    const raw = fb.owdMinUs >>> 0;
    const line = owd ? owd.last + ((raw - owd.lastRaw) | 0) : 0;
    const queued = owd !== null && line - winBest(owd.min) > queueTargetUs(s);
    owd = { lastRaw: raw, last: line, min: owd ? winMin(owd.min, queued ? p.minWindowQueuedUs : p.minWindowUs, nowUs, line) : winReset(nowUs, line) };
    owdSample = line;
  }

  // 2. Was the sender short of data? What it sent against what its rate allowed.
  const senderIntervalUs = Math.min(Math.max(nowUs - s.lastFeedbackUs, 0), 4 * fb.intervalUs) || fb.intervalUs;
  const appLimited = Number(sentBytes) * 8 < 0.8 * s.rateBps * (senderIntervalUs / 1e6);
  const plannedUs = Math.max(0, plannedQueueUs);
  const sentBps = (Number(sentBytes) * 8 * 1e6) / senderIntervalUs;
  const iv: Interval = { atUs: nowUs, intervalUs: fb.intervalUs, bytes: fb.bytes, packets: fb.packets, lost: fb.lost, owd: owdSample, plannedUs, appLimited, sentBps, sentBits: Number(sentBytes) * 8 };
  // (and what was sent a round trip before the loss window: see given())
  const keepUs = Math.max(p.rateWindowUs, p.queueWindowUs, p.lossWindowUs) + MAX_LAG_US;
  const recent = [...s.recent, iv].filter((r) => nowUs - r.atUs < keepUs);
  const jitterUs = jitterOf(recent);

  // 3. Signals over the recent intervals, newest first.
  const rate = sum(recent, (acc) => acc.us >= p.rateWindowUs);
  const deliveryBps = (rate.bytes * 8 * 1e6) / rate.us;
  const loss = sum(recent, (acc) => acc.packets + acc.lost >= p.lossWindowPackets, nowUs - p.lossWindowUs + 1);
  const lossRate = loss.packets + loss.lost > 0 ? loss.lost / (loss.packets + loss.lost) : 0;
  // The standing queue beyond the planned one: the smallest over the queue window. Without a sample
  // (nothing arrived) the queue drains at line rate. The latest sample alone says it sooner.
  const qw = sum(recent, (acc) => acc.us >= p.queueWindowUs);
  const queueBeforeUs = s.queueUs;
  let queueUs = Math.max(0, s.queueUs - fb.intervalUs);
  let queueNowUs = queueUs;
  if (owd) {
    const minOwd = winBest(owd.min);
    if (qw.minOwd !== null) queueUs = Math.max(0, qw.minOwd - minOwd);
    if (owdSample !== null) queueNowUs = Math.max(0, owdSample - plannedUs - minOwd);
  }
  const jitterAvg = fb.packets > 0 ? nextJitterAvg(s.jitterAvg, jitterUs, nowUs) : s.jitterAvg;
  s = { ...s, owd, recent, deliveryBps, lossRate, queueUs, jitterUs, jitterAvg, lastFeedbackUs: nowUs, othersCarry, holdSamples: nextHoldSamples(s, recent, nowUs) };

  // 4. Bandwidth estimate: a max filter of delivery samples, app-limited ones only upwards.
  const round = roundUs(s);
  let bw = s.bw;
  let bwProvenUs = s.bwProvenUs;
  // A shaped link's class passes shapeGain of the estimate in cruise: without this rule each
  // window's max would be that share of the last one (lab, mismatch shaped, one BBR download:
  // a 20 Mbit/s link's estimate 19.9 -> 18.2 Mbit/s over 13 s, bench-results/shape/).
  const classLimited = p.shapeGain > 0 && deliveryBps >= p.classLimited * p.shapeGain * Math.max(s0.rateBps, winBest(s0.bw));
  if ((!rate.appLimited && !classLimited) || deliveryBps > winBest(bw)) bw = winMax(bw, p.bwWindowRounds * round, nowUs, deliveryBps);
  if (!rate.appLimited) bwProvenUs = nowUs;

  // 5. Queue: above the target the bottleneck is busy, so what it delivers is its capacity.
  //    Unless we sent less than that on purpose (draining) or had less to send: then a queue
  //    sampled at the end of an interval may be gone, and only a delivery rate below what we
  //    sent proves the capacity lower.
  const target = queueTargetUs(s);
  let queueHigh = queueUs > target;
  const queueDeliveryBps = (qw.bytes * 8 * 1e6) / qw.us;
  // An estimate far above what a queued link delivers is wrong whatever we sent (a configured
  // rate 10× too high: the sender looks application-limited against it for good).
  const sentEnough = !qw.appLimited && (phaseGain(s) >= 1 || queueDeliveryBps < 0.9 * s.rateBps);
  // The over-estimate proof needs a link that delivers less than it is given (over the loss
  // window: by p.overloadFactor, or losing packets to congestion), not a delay alone. A link the
  // scheduler stopped sending on (its queue showed) delivers the rest of its queue and then
  // nothing, which is no capacity: lab, the demo's 30 Mbit/s link went 27 → 13.7 → 6.9 Mbit/s
  // in two intervals that way (sent 0, delivered 1.9 and 5.7, the last OWD samples 25-32 ms
  // queued) and one CUBIC flow fell under the best link alone. And a link that delivers all it
  // is given is not over-estimated however far below its estimate that is: lab, starlink, the
  // RP of a BBR upload sent ~3 Mbit/s of ACKs on a 30 Mbit/s link, all of them delivered; the
  // schedule's +20 ms delay step read as a 20 ms queue, and this rule (then: given at least what
  // it delivered) halved the estimate 30 → 15 → 7.5 → 3.8 → 1.9 Mbit/s in 0.3 s; ackAvoid then
  // took every ACK off the link, and the flows after it ran on the DSL link alone.
  // The deliveries of the loss window against what the sender put on the link a round trip
  // earlier, when those packets left (lab, the LP's ACKs of a BBR download, rising after the
  // step: 3.0 Mbit/s sent against 1.2 delivered within the same window, the estimate halved
  // 17.8 → 4.4 Mbit/s, and over the next two downloads to 0.4, the ACKs on DSL).
  const bal = sum(recent, (acc) => acc.us >= p.lossWindowUs);
  const givenBits = given(recent, nowUs - Math.min(rttOf(s) + queueUs, MAX_LAG_US), bal.us);
  const overloaded = (givenBits !== null && givenBits >= p.overloadFactor * bal.bytes * 8) || isLossy(loss, s.lossBase, queueUs, target, p);
  // Nor is a link busy that delivers just what it is given: a queue of ours grows (delivers
  // less) or drains (more). Sim, +20 ms on a 30 Mbit/s link carrying 16: the step read as a
  // 20 ms queue, the queue factor cut the rate, the link delivered the less it was given, and
  // each interval reset the estimate to that: 30 → 8.4 Mbit/s in 0.4 s.
  const busy = queueHigh && owdSample !== null && ((sentEnough && !carried(bal.sentBits, bal.bytes * 8, p)) || (overloaded && queueDeliveryBps < p.overEstimate * winBest(bw)));
  // Nor can a queue of ours grow, interval after interval, on a link that is faster than we
  // give it: one that did, through growSpanUs, delivering well under the estimate, shows the
  // estimate wrong even where the sender looks application-limited against it (growing()).
  // Lab, mismatch, CUBIC uploads 2 s apart: at a flow's start the 60 ms link's (20 Mbit/s)
  // estimate rose to 38.3 (a re-train's raise, by the phase it entered); the scheduler then
  // planned the link at that and gave it the flow's excess over the fast link, ~20 Mbit/s,
  // which looked application-limited against 38, and nothing proved the estimate wrong while a
  // queue the plan did not know grew 0.6 → 45 ms over 1.2 s: packets 45 ms out of order (the
  // sender saw reordering of 245 packets), then the buffer's overflow and two window cuts; the
  // flow ran at 31.0 Mbit/s against 34-36 (bench-results/s31/).
  const growingQueue = queueHigh && owdSample !== null && owd !== null && queueDeliveryBps < p.growShare * winBest(bw) && growing(recent, nowUs, winBest(owd.min), target, p);
  // At most halved per interval: an interval in which the scheduler itself sent little on the
  // link (its traffic moved to another link) must not read as a capacity collapse to the floor,
  // from where the earliest-arrival scheduler would never send on the link again.
  if ((busy || growingQueue) && queueDeliveryBps < winBest(bw)) {
    bw = winReset(nowUs, Math.max(queueDeliveryBps, p.minRateBps, winBest(bw) / 2));
    bwProvenUs = nowUs;
  }

  // 6. Loss, beyond the link's random loss (learned while cruising without a queue).
  const gain = phaseGain(s);
  let lossBase = s.lossBase;
  const n = fb.packets + fb.lost;
  // No queue means none at all: the planned backlog is a real queue too. The fast link of
  // 20/10 + 20/60 ms holds ~50 ms of it to keep packets in order, and its 60 ms buffer
  // overflows now and then with nothing beyond the plan: learned as random loss, those drops
  // made it "lossy" (capped to a small share) and one TCP flow fell to one link's worth.
  // Nor right after one: a buffer that drops its queue at once (tail drop of a full buffer, an
  // AQM dropping at the head) leaves the next packets through with no queue, in the very
  // interval that reports the losses. Lab, step (isp2 20 -> 5 Mbit/s under a CUBIC upload): 107
  // lost and 5 through after 209 ms of queue, learned as 10.7 % random loss; the link was then
  // held to a lossy link's share (1.3 %), carried too little to unlearn it, and every flow
  // after it ran on the other link alone.
  const noQueue = queueUs + qw.maxPlannedUs < target / 2 && queueNowUs + plannedUs < target / 2 && queueBeforeUs < target / 2;
  // Averaged over lossMemoryPackets: a loss rate is a count of rare events, and over the 1000
  // packets of lossBasePackets alone a 2 % link's estimate wandered by ±0.3 points (the Poisson
  // spread of ~20 losses). Lab, `lossy` (2 % on one of 2 × 20 Mbit/s): it read 2.06-2.84 % from
  // one CUBIC download to the next, and at 2.84 % the lossy share cap (then a step at LOSSY)
  // held the link to 3.9 Mbit/s: downloads of 21-25 Mbit/s, one link's worth. Over 5000, ±0.14.
  // The first lossBasePackets weigh as if there were that many (the estimate rises from 0, as
  // before: an early run of losses is not believed at once), then a running mean.
  let lossBaseOf = s.lossBaseOf;
  if (noQueue && n > 0) {
    lossBaseOf = Math.min(p.lossMemoryPackets, lossBaseOf + n);
    lossBase += (fb.lost / n - lossBase) * Math.min(1, n / Math.max(p.lossBasePackets, lossBaseOf));
  }
  const lossy = isLossy(loss, lossBase, queueUs, target, p);
  s = { ...s, bw, lossBase, lossBaseOf, depthUs: learnDepth(s, fb, n, lossBase), packetsSeen: s.packetsSeen + n, bwProvenUs };

  // 7. A delay step: a queue that neither grows nor drains, round after round, while the link
  //    delivers what it is given, is a longer path (a satellite hand-over, a re-routed ISP),
  //    not a queue. A queue of ours drains within a round or two (the queue factor sends less
  //    than the link delivers), and one that grows delivers less than it is given; this one
  //    only stands, so the min delay is re-based on it. Without this, the min-OWD window held
  //    the old delay for 60 s (minWindowQueuedUs): lab, starlink (+20 ms at a hand-over), both
  //    portals read the step as a 20 ms queue for the rest of the flow, the data sender's busy
  //    rule reset the estimate to a delivery rate that fell as the scheduler moved data away
  //    (18 → 0.4 Mbit/s in 8 s), and the flows after it ran on the DSL link alone. A queue
  //    another sender keeps full is taken for path too, as BBR does once its min-RTT filter
  //    expires: competing beats yielding the link to it for good.
  const roundDone = nowUs - s.roundStartUs >= round;
  s = stepTest(s, Number(sentBytes) * 8, fb, queueHigh, roundDone, nowUs);
  if (s.queueUs !== queueUs) {
    queueUs = s.queueUs;
    queueHigh = false;
  }

  // 8. Phases.
  const est = bwBps(s);
  if (roundDone) s = { ...s, roundStartUs: nowUs };
  const inPhase = nowUs - s.phaseStartUs;
  switch (s.phase) {
    case 'startup':
      if (queueHigh || queueNowUs > target || lossy) {
        s = enter(lossy ? resetBw(s, deliveryBps, nowUs) : s, 'drain', nowUs);
      } else if (roundDone && !rate.appLimited) {
        s = est >= s.fullBwBps * p.startupGrowth ? { ...s, fullBwBps: est, fullBwRounds: 0 } : { ...s, fullBwRounds: s.fullBwRounds + 1 };
        if (s.fullBwRounds >= p.startupFullRounds) s = enter(s, 'drain', nowUs);
      }
      break;
    case 'drain':
      if (queueUs <= target / 2) s = enter(s, 'probe_bw', nowUs, 2);
      break;
    case 'probe_bw':
      if (s.cycleIndex === 0) {
        // up: until the limit shows (queue, loss), the link proves bigger, or nothing happens
        if (queueHigh || lossy || inPhase >= p.probeMaxRounds * round) s = enter(s, 'probe_bw', nowUs, 1);
        else if (!rate.appLimited && queueUs < target / 2 && deliveryBps >= s.probeBaseBps * p.probeRestartGrowth) s = enter(s, 'startup', nowUs);
      } else if (s.cycleIndex === 1) {
        // down: until what the probe queued is gone
        if (inPhase >= round || (inPhase > 0 && queueUs <= target / 4)) s = enter(s, 'probe_bw', nowUs, 2);
      } else {
        // cruise: loss of packets sent while cruising (a round after it began) is congestion
        const calm = sum(recent, (acc) => acc.packets + acc.lost >= p.lossWindowPackets, Math.max(s.cruiseSinceUs + round, nowUs - p.lossWindowUs + 1));
        if (isLossy(calm, lossBase, queueUs, target, p) && (s.lastCongestionUs === null || nowUs - s.lastCongestionUs >= round)) {
          // (bounded like resetBw: a lossy interval may have carried next to nothing)
          const cap = p.lossDecrease * Math.max(deliveryBps, winBest(s.bw) / 2);
          s = { ...resetBw(s, deliveryBps, nowUs), lossCapBps: Math.max(p.minRateBps, cap), lastCongestionUs: nowUs };
        }
        if (inPhase >= round) s = enter(s, 'probe_bw', nowUs, (s.cycleIndex + 1) % p.cycleGains.length);
      }
      break;
  }
  return { ...s, rateBps: pacingRate(s) };
}

/**
 * The buffer depth after this interval (State.depthUs): a loss beyond the random loss under a
 * real queue of at least depthMinUs sets it to the largest real queue (OWD over its min) of the
 * queue window, this interval included (the lost packets would have waited about that long); a
 * real queue above the depth that stood depthRaiseUs (stoodQueue) without loss proves the
 * buffer deeper.
 */
function learnDepth(s: State, fb: LinkFeedback, n: number, lossBase: number): number | null {
  if (!s.owd) return s.depthUs;
  const minOwd = winBest(s.owd.min);
  const last = s.recent[s.recent.length - 1];
  let maxQ = -Infinity;
  for (let i = s.recent.length - 1; i >= 0 && s.recent[i]!.atUs > (last?.atUs ?? 0) - s.params.queueWindowUs; i--) {
    const o = s.recent[i]!.owd;
    if (o !== null) maxQ = Math.max(maxQ, o - minOwd);
  }
  if (fb.lost >= 1 && fb.lost - lossBase * n >= 1 && maxQ >= s.params.depthMinUs) return maxQ;
  if (s.depthUs === null) return null;
  const stood = stoodQueue(s.recent, minOwd, s.params.depthRaiseUs);
  return stood !== null && stood > s.depthUs ? stood : s.depthUs;
}

/**
 * The real queue (OWD over its min) that stood through the newest `spanUs` of feedback: the
 * least of those intervals' (null: they cover less, or one had no OWD sample). What raises a
 * learned depth: a single interval's queue above it did, and in the lab (`mismatch`, 50 ms
 * buffers, session 29) a flow's first 40-60 ms showed 63-75 ms of "queue" without loss where
 * depth trains and overflows both read 49-53 ms; the cap rose with it, the fast link was planned
 * past its buffer as soon as the slow one queued, and it overflowed 0.1-16 s later — a loss
 * event for the flow each time (CUBIC: ~7 s back to its window at the bond's 120 ms round trip).
 */
function stoodQueue(recent: readonly Interval[], minOwd: number, spanUs: number): number | null {
  let covered = 0;
  let least = Infinity;
  for (let i = recent.length - 1; i >= 0 && covered < spanUs; i--) {
    const r = recent[i]!;
    if (r.owd === null) return null;
    least = Math.min(least, r.owd - minOwd);
    covered += r.intervalUs;
  }
  return covered >= spanUs ? least : null;
}

/** A depth train's measurement of the link's buffer (run/depth.ts), µs of queue: the depth
 * until a loss teaches another (learnDepth), where none was learned yet; below depthMinUs none. */
export function withDepth(s: State, depthUs: number): State {
  if (s.depthUs !== null || !(depthUs >= s.params.depthMinUs)) return s;
  return { ...s, depthUs: Math.round(depthUs) };
}

/** The most backlog the scheduler may plan on the link, µs (mp_link.plan_cap_ms; 0: no cap):
 * its buffer's depth less a margin. */
export function planCapUs(s: State): number {
  if (s.depthUs === null) return 0;
  const p = s.params;
  return Math.max(1000, Math.round(s.depthUs - Math.max(p.depthMarginMinUs, p.depthMarginShare * s.depthUs)));
}

/** Sums the newest intervals (those received from `sinceUs` on) until `enough` says so. */
function sum(recent: readonly Interval[], enough: (acc: { us: number; packets: number; lost: number }) => boolean, sinceUs = -Infinity) {
  // minOwd: of the OWD less the planned queue (the unexpected part, on the OWD line)
  // maxPlannedUs: the largest planned backlog of those intervals
  const acc = { us: 0, bytes: 0, sentBits: 0, packets: 0, lost: 0, appLimited: false, minOwd: null as number | null, maxPlannedUs: 0 };
  for (let i = recent.length - 1; i >= 0 && !enough(acc) && recent[i]!.atUs >= sinceUs; i--) {
    const r = recent[i]!;
    acc.us += r.intervalUs;
    acc.bytes += r.bytes;
    acc.sentBits += (r.sentBps * r.intervalUs) / 1e6;
    acc.packets += r.packets;
    acc.lost += r.lost;
    acc.appLimited ||= r.appLimited;
    acc.maxPlannedUs = Math.max(acc.maxPlannedUs, r.plannedUs);
    if (r.owd !== null) acc.minOwd = acc.minOwd === null ? r.owd - r.plannedUs : Math.min(acc.minOwd, r.owd - r.plannedUs);
  }
  return acc;
}

/** Step 7 of onFeedback: one more interval of the delay-step test; at a round's end, the
 * round's verdict, and after p.stepRounds flat rounds in a row the re-base (the queue that
 * stood becomes part of the min OWD). `high`: the queue is above the target. */
function stepTest(s: State, sentBits: number, fb: LinkFeedback, high: boolean, roundDone: boolean, nowUs: number): State {
  const p = s.params;
  if (!high || !s.owd) return s.step === NO_STEP ? s : { ...s, step: NO_STEP };
  const st: StepTest = {
    ...s.step,
    sentBits: s.step.sentBits + sentBits,
    deliveredBits: s.step.deliveredBits + fb.bytes * 8,
    packets: s.step.packets + fb.packets,
    lost: s.step.lost + fb.lost,
  };
  if (!roundDone) return { ...s, step: st };
  const q = s.queueUs;
  const flat = st.lastQueueUs > 0 && Math.abs(q - st.lastQueueUs) <= Math.max(p.stepFlatUs, p.stepFlatShare * st.lastQueueUs);
  const clean = excessLoss(st, s.lossBase, p) === 0;
  if (!(flat && carried(st.sentBits, st.deliveredBits, p) && clean)) return { ...s, step: { ...NO_STEP, lastQueueUs: q } };
  if (st.rounds + 1 < p.stepRounds) return { ...s, step: { ...st, rounds: st.rounds + 1, lastQueueUs: q } };
  // The round trip grew by the step at least (one way; the way back may have too, which its
  // min filter learns in its window): the queue target, rounds, and this link's own delay
  // where it anchors the frame of outputs() follow.
  const rttMin = s.rttMin ? winReset(nowUs, winBest(s.rttMin) + q) : null;
  return { ...s, owd: { ...s.owd, min: winReset(nowUs, winBest(s.owd.min) + q) }, rttMin, queueUs: 0, step: NO_STEP };
}

/** Feedback shows a packet a round trip (and a queue) after it left: what the sender put on the
 * link over `spanUs` up to `endUs` (the intervals received in that span), the amount the
 * deliveries of the last `spanUs` came from; null where the history does not reach back. */
function given(recent: readonly Interval[], endUs: number, spanUs: number): number | null {
  if (recent.length === 0 || recent[0]!.atUs > endUs - spanUs) return null;
  let bits = 0;
  for (const r of recent) if (r.atUs > endUs - spanUs && r.atUs <= endUs) bits += r.sentBits;
  return bits;
}
/** The longest lag given() looks back for (and `recent` keeps beyond the windows). */
const MAX_LAG_US = 500_000;

/**
 * A queue of ours that grew through the last p.growSpanUs: the smallest unplanned queue (OWD
 * less the planned backlog, over the min) of each quarter of the span is at least the one before
 * it (less GROW_SLACK_US of noise), the last quarter's exceeds the first's by at least half the
 * queue target, and no one step of the four made most of that rise (a delay step jumps once and
 * stands: stepTest's case, not a queue). The span must be covered by samples.
 */
export function growing(recent: readonly Interval[], nowUs: number, minOwd: number, targetUs: number, p: CcParams): boolean {
  const span = p.growSpanUs;
  const q = [Infinity, Infinity, Infinity, Infinity];
  let oldest = nowUs;
  for (const r of recent) {
    if (r.owd === null || nowUs - r.atUs >= span) continue;
    const k = Math.min(3, Math.floor(((r.atUs - (nowUs - span)) * 4) / span));
    q[k] = Math.min(q[k]!, r.owd - r.plannedUs - minOwd);
    oldest = Math.min(oldest, r.atUs);
  }
  if (nowUs - oldest < 0.75 * span || q.some((x) => x === Infinity)) return false;
  const rise = q[3]! - q[0]!;
  if (rise < targetUs / 2) return false;
  for (let i = 1; i < 4; i++) if (q[i]! < q[i - 1]! - GROW_SLACK_US || q[i]! - q[i - 1]! > GROW_STEP_SHARE * rise) return false;
  return true;
}
/** growing(): noise a quarter's queue may fall by, and the most of the rise one step may make. */
const GROW_SLACK_US = 500;
const GROW_STEP_SHARE = 0.6;

/** The link delivered what it was given (within p.overloadFactor either way): no queue of ours
 * grew there (it would deliver less) or drained (more), whatever the delay says. */
function carried(sentBits: number, deliveredBits: number, p: CcParams): boolean {
  return sentBits > 0 && deliveredBits * p.overloadFactor >= sentBits && deliveredBits <= p.overloadFactor * sentBits;
}

/** The share of w's packets lost beyond the link's own random loss `base`, if that is more than
 * the threshold (and a few packets); else 0. */
function excessLoss(w: { packets: number; lost: number }, base: number, p: CcParams): number {
  const n = w.packets + w.lost;
  if (n === 0) return 0;
  const excess = w.lost - base * n;
  return excess >= p.lossMinPackets && excess / n > p.lossThreshold ? excess / n : 0;
}

/** Loss beyond the link's own random loss by more than the threshold (and a few packets),
 * with a queue or massive. */
function isLossy(w: { packets: number; lost: number }, base: number, queueUs: number, target: number, p: CcParams): boolean {
  const excess = excessLoss(w, base, p);
  return excess > 0 && (queueUs > target / 2 || excess > 4 * p.lossThreshold);
}

/** A lower capacity seen: at most half the estimate per step (see step 5 of onFeedback). */
function resetBw(s: State, deliveryBps: number, nowUs: number): State {
  const best = winBest(s.bw);
  return deliveryBps < best ? { ...s, bw: winReset(nowUs, Math.max(deliveryBps, s.params.minRateBps, best / 2)), bwProvenUs: nowUs } : s;
}

function enter(s: State, phase: Phase, nowUs: number, cycleIndex = 0): State {
  const est = bwBps(s);
  const cruising = (x: { phase: Phase; cycleIndex: number }) => x.phase === 'probe_bw' && x.cycleIndex >= 2;
  const next: State = { ...s, phase, phaseStartUs: nowUs, cycleIndex, cruiseSinceUs: !cruising(s) && cruising({ phase, cycleIndex }) ? nowUs : s.cruiseSinceUs };
  if (phase === 'startup') return { ...next, fullBwBps: est, fullBwRounds: 0, roundStartUs: nowUs, lossCapBps: null };
  if (phase === 'probe_bw' && cycleIndex === 0) return { ...next, probeBaseBps: est, lossCapBps: null }; // probe up again
  return next;
}

function phaseGain(s: State): number {
  switch (s.phase) {
    case 'startup':
      return s.params.startupGain;
    case 'drain':
      return 0.9;
    case 'probe_bw':
      return s.params.cycleGains[s.cycleIndex] ?? 1;
  }
}

/** The scheduler kept a backlog on the link through the last rate window: the link is
 * saturated, its delivery rate is its capacity, and probing above it would only make the
 * scheduler's model of the link (busy_until) run behind the real queue. */
export function saturated(s: State): boolean {
  // Never near the floor: a link whose estimate collapsed (an interval that delivered nothing
  // while queued) gets so low a rate that every packet the scheduler gives it is a long planned
  // backlog. Without probing it would stay there for good (seen in the lab: 100 kbit/s on a
  // 5 Mbit/s link, for the rest of the flow).
  if (bwBps(s) < 8 * s.params.minRateBps) return false;
  const w = s.recent.filter((r) => s.lastFeedbackUs - r.atUs < s.params.rateWindowUs);
  return w.length > 0 && w.every((r) => r.plannedUs >= s.params.saturatedBacklogUs);
}

/**
 * What a shaped link's class passes in a probe up (bits/s of IP; 0: not in one): the probe's
 * gain over the estimate even where the scheduler does not probe (saturated(),
 * loadedAtEstimate()). A shaped link delivers what its class passes, and its class follows the
 * estimate (run/shaper.ts), so without this its estimate could only fall: the sender saturates
 * it at the class's rate, the rules above then never probe, and every time the max filter's
 * window passed (an idle gap, a flow's start) the estimate restarted from what the class had let
 * through. Lab, 20 Mbit/10 ms + 20 Mbit/60 ms shaped, a CUBIC download after a BBR upload: the
 * 10 ms link's estimate 19.8 -> 13.6 -> 18.2 Mbit/s at the flow's start, 17.8 for the rest of it.
 * Only the class opens: the scheduler still plans the link at its estimate, so the real queue
 * drains ahead of the model (at most the gain's excess for a round), never behind it, and a
 * link with room delivers more, which the max filter keeps.
 */
export function classProbeBps(s: State): number {
  if (s.stale || s.phase !== 'probe_bw' || s.cycleIndex !== 0) return 0;
  return bwBps(s) * (s.params.cycleGains[0] ?? 1);
}

/**
 * The flows already use the link at its estimate: over the rate window the sender put at least
 * `loadedShare` of the estimate on it. While other links carry them too (State.othersCarry),
 * probing above the estimate only runs the scheduler's model ahead of the link: the model drains the link at
 * the probing rate, the link at its capacity, so the real queue grows beyond the model by the
 * gain's excess until the feedback, a round later, shows it; the packets that wait there arrive
 * after later ones on other links (reordering, the end host's spurious retransmissions) and the
 * buffer overflows. Lab, the demo's links without rates (20/10 + 10/25 + 30/40 ms), one CUBIC
 * upload: probes at 1.25 on the 20 and 10 Mbit/s links and a startup at 2× on the 30 Mbit/s one,
 * while the flow ramped through all three, put 14-39 ms of unmodelled queue on them, all three
 * lost packets within 150 ms, and CUBIC left slow start at 128 packets with 151 DSACKs (44.6 % of
 * the sum, under the best link alone). Such a link needs no probe: the scheduler sends every
 * packet at once, so what a flow offers beyond the links' estimates becomes planned backlog on
 * every link and reaches each link as more than its estimate; a link with room delivers it and
 * its estimate follows (the max filter). A link the scheduler keeps a planned backlog on is
 * not probed anyway (saturated()).
 */
export function loadedAtEstimate(s: State): boolean {
  return sentShare(s) >= s.params.loadedShare;
}

/** What the sender put on the link through the rate window, as a share of the estimate (0:
 * no feedback in the window). */
function sentShare(s: State): number {
  const w = s.recent.filter((r) => s.lastFeedbackUs - r.atUs < s.params.rateWindowUs);
  const us = w.reduce((a, r) => a + r.intervalUs, 0);
  return us > 0 ? w.reduce((a, r) => a + r.sentBps * r.intervalUs, 0) / us / bwBps(s) : 0;
}

/** A link carries a flow: the sender put at least CARRYING_SHARE of its estimate on it through
 * the rate window (a download's pure ACKs do not count). See onFeedback's `othersCarry`. */
export function carries(s: State): boolean {
  return !s.stale && sentShare(s) >= CARRYING_SHARE;
}
const CARRYING_SHARE = 0.25;

function pacingRate(s: State): number {
  const p = s.params;
  const queueFactor = Math.max(p.drainMinGain, 1 - s.queueUs / p.drainTimeUs);
  const gain = phaseGain(s);
  let rate = bwBps(s) * (saturated(s) || (gain > 1 && s.othersCarry && loadedAtEstimate(s)) ? 1 : gain);
  if (s.phase !== 'startup') rate *= queueFactor;
  if (s.lossCapBps !== null) rate = Math.min(rate, s.lossCapBps);
  if (p.ceilingBps !== null) rate = Math.min(rate, p.ceilingBps);
  return Math.max(rate, p.minRateBps);
}

// ---- output -----------------------------------------------------------------------------------

/** The link alone: its rate, and propagation delay (RTT/2, or the hint) + excess queue. */
export function output(s: State): Output {
  return { rateBps: BigInt(Math.round(s.rateBps)), owdUs: Math.round(propUs(s) + owdQueueUs(s)) };
}

/**
 * Every link of one direction, their delays in one frame. The receiver's OWD samples on all
 * links share the same two clocks, so the difference of two links' min OWDs is the true
 * difference of their propagation delays (which RTT/2 cannot see on asymmetric paths). The
 * link with the smallest min OWD is anchored at its own propagation estimate and the others
 * placed relative to it; a link without an OWD sample yet keeps its own estimate.
 */
export function outputs(states: ReadonlyMap<number, State>, fec: ReadonlySet<number> = new Set()): Map<number, Output> {
  let ref: { raw: number; prop: number } | null = null;
  for (const s of states.values()) {
    const raw = minOwdRaw(s);
    if (raw !== null && (ref === null || ((raw - ref.raw) | 0) < 0)) ref = { raw, prop: propUs(s) };
  }
  let clean = 0;
  const seen = (id: number, s: State) => (fec.has(id) ? fecResidual(s.lossBase) : s.lossBase);
  for (const [id, s] of states) if (!s.stale && seen(id, s) <= LOSSY) clean += s.rateBps;
  const out = new Map<number, Output>();
  for (const [id, s] of states) {
    const raw = minOwdRaw(s);
    const rateBps = BigInt(Math.round(Math.min(s.rateBps, lossyShareCap(s, seen(id, s), clean))));
    if (ref === null || raw === null) out.set(id, { ...output(s), rateBps });
    else out.set(id, { rateBps, owdUs: Math.round(ref.prop + ((raw - ref.raw) | 0) + owdQueueUs(s)) });
  }
  return out;
}

/**
 * Shaping only where the scheduler plans a queue (run/shaper.ts): the links it keeps ahead of a
 * slower one, whose class holds that equalising queue in the portal. A link with no link of a
 * longer delay beside it (the slowest, or links of equal delay) plans no such queue: its class
 * stays open and it is planned at its full rate, as without shaping, which would otherwise cost
 * it SHAPE_GAIN's 2 % for nothing (lab: `sat`, where only the 6 ms link carries the flow, 0.951
 * of the best link alone shaped against 0.962; `2x20`). A longer delay counts from EQ_ON_US
 * over the link's (EQ_OFF_US to stay: jitter), and only up to EQ_MAX_US: the class's own queue
 * (SHAPE_QUEUE_MS) cannot hold more, and the scheduler sends a link that much slower next to
 * nothing (`sat`'s 275 ms link). Links without feedback for a while (stale) count for neither,
 * and a jittery link (State.jitterAvg) is none to equalise against: next to `lte`'s LTE link
 * (±10 ms) the cable link's 98 % class held CUBIC downloads to a median of 40.9-42.3 Mbit/s,
 * a third of them under the cable link alone, against 48.8 with the class at 100 % and 50.0
 * unshaped (lab, routed hosts, session 24: README "Per-link shaping"), while `mismatch` and the
 * demo's links need it.
 */
export const EQ_ON_US = 5_000;
export const EQ_OFF_US = 3_000;
export const EQ_MAX_US = 150_000;
export function equalising(states: ReadonlyMap<number, State>, out: ReadonlyMap<number, Output>, prev: ReadonlySet<number>): Set<number> {
  const eq = new Set<number>();
  for (const [id, o] of out) {
    if (states.get(id)?.stale !== false) continue;
    const min = prev.has(id) ? EQ_OFF_US : EQ_ON_US;
    for (const [j, p] of out) {
      const other = states.get(j);
      if (j === id || other?.stale !== false || other.jitterAvg.jittery) continue;
      const d = p.owdUs - o.owdUs;
      if (d >= min && d <= EQ_MAX_US) {
        eq.add(id);
        break;
      }
    }
  }
  return eq;
}

/** The random loss a flow through the bond may inherit from its lossy links (their share of
 * its packets × their loss rate), and the loss rate from which a link counts as lossy. */
export const LOSS_BUDGET = 0.0005;
const LOSSY = 6 * LOSS_BUDGET; // 0.3 %: congestion loss mistaken for random stays below

/**
 * Do no harm: a link that loses packets at random carries only the share of the traffic whose
 * loss an end host's loss-based TCP (CUBIC: most hosts) can take, while clean links (total rate
 * `cleanBps`) are up. 1 % random loss on a link that carried half of a CUBIC flow held the flow
 * far below the clean link alone; at most LOSS_BUDGET / loss of the packets there (5 % at 1 %
 * loss) costs it little. From 0.3 % (LOSSY) on, as congestion losses that slip into the learned
 * rate stay below that, and in full from twice that: in between the cap falls from the link's
 * own rate to that share, so that an estimate wandering across LOSSY does not throw the link's
 * traffic off and back (lab, `lossy`: with a step at LOSSY, the 2 % link's parity residual
 * read 0.31 % at an estimate of 2.84 % and its rate fell from 20 to 3.9 Mbit/s). `loss` is what
 * the flows see of the link's loss: with loss recovery (fecLinks) only what its parity cannot
 * rebuild. Only what the scheduler is told is capped: the controller keeps the link's estimate
 * and its loss rate measured on what it carries. Without a clean link: no cap.
 */
export function lossyShareCap(s: State, loss: number, cleanBps: number): number {
  if (loss <= LOSSY || cleanBps <= 0) return Infinity;
  const share = LOSS_BUDGET / loss;
  const budget = Math.max(s.params.minRateBps, (cleanBps * share) / (1 - share));
  const x = Math.min(1, (loss - LOSSY) / LOSSY);
  return s.rateBps > budget ? s.rateBps - (s.rateBps - budget) * x : budget;
}

/** Loss recovery (bpf/fec.h, mp_link MP_LINK_F_FEC): a link that loses this share of its packets
 * at random (or more) sends one XOR parity per MP_FEC_K data packets; below the second value it
 * stops. The parity costs 1/(K+1) of the link, so only links that would otherwise be held to a
 * small share (LOSSY) pay it: from 0.3 %, where what a flow sees of the loss (fecResidual)
 * falls from 6 × LOSS_BUDGET to under 0.1 × (at 1 %: 0.039 %). Not lower: a busy link's own
 * queue overflows, taken for random loss at 0.1 % (README), would cost it a fifth for nothing. */
export const FEC_LOSS: readonly [number, number] = [LOSSY, (2 / 3) * LOSSY];
/** bpf/mp.h MP_FEC_K. 4, not 8 (README "Loss recovery"): at 1 % loss groups of 8 left 0.077 %,
 * a window cut every ~3,000 packets of a CUBIC flow over 2 × 20 Mbit (75-77 % of the sum), and a
 * rebuilt packet arrived up to 8 of the link's packets late, past a TCP receiver's reordering
 * allowance more often; 4 leave 0.039 % and are rebuilt half as late, for a fifth of the link
 * instead of a ninth. */
const FEC_K = 4;

/** The loss left on a link with parity: a packet is lost when it and another of its group of
 * K + 1 (K − 1 data packets and the parity) are. 1 % → 0.039 %. */
export function fecResidual(loss: number): number {
  return loss * (1 - (1 - loss) ** FEC_K);
}

/**
 * The links that send parity (hysteresis on `prev`, the last call's set): those whose learned
 * random loss is FEC_LOSS, and those that have not yet reported lossBasePackets packets (a fresh
 * bond or a new link: its loss is not known). Before, parity started only once the loss was
 * learned: at 1 % that took ~360 packets (0.4 s of UDP at 830 packets/s per link), whose losses
 * the first flow on a fresh bond met unprotected (0.13-0.16 % delivered loss over 8-10 s,
 * README). A clean link pays a fifth of its first 1000 packets (0.3-1 s at 20 Mbit/s).
 */
export function fecLinks(states: ReadonlyMap<number, State>, prev: ReadonlySet<number>): Set<number> {
  const out = new Set<number>();
  for (const [id, s] of states) {
    if (s.stale) continue;
    if (s.packetsSeen < s.params.lossBasePackets || s.lossBase > FEC_LOSS[prev.has(id) ? 1 : 0]) out.add(id);
  }
  return out;
}

/** A link loses this share of its packets at random (or more): pure ACKs avoid it; below the
 * second value they may take it again. */
export const ACK_AVOID_LOSS: readonly [number, number] = [0.005, 0.0025];
/** A link whose rate is below the best link's divided by this: pure ACKs avoid it; above the
 * best's divided by the second value they may take it again. */
export const ACK_AVOID_SLOWER: readonly [number, number] = [6, 5];
/** "Far slower" counts only on an estimate proven this recently (State.bwProvenUs). */
export const ACK_AVOID_PROVEN_US = 5_000_000;

/** A link whose one-way delay exceeds the shortest one's by this much: pure ACKs avoid it; below
 * the second value they may take it again. */
export const ACK_AVOID_FARTHER_US: readonly [number, number] = [100_000, 80_000];

/**
 * The links pure TCP ACKs should avoid (mp_link MP_LINK_F_NO_ACKS; bpf/schedule.h): those that
 * lose packets at random (an ACK lost there is a window cut for the end host, and its round trip
 * the slow link's), those far slower than the best link, which carry too little data for
 * their delay to matter to the flow, and those whose delay exceeds the shortest by more than
 * ACK_AVOID_FARTHER_US. The scheduler puts data on such a link only once the fast link holds
 * that much more queue than it (arrival order), beyond what ISP buffers hold (the lab's: 50-80
 * ms), so for a TCP flow the link carries next to nothing, and ACKs there only stretch its round
 * trip. "Far slower" cannot see it where its estimate was never proven: without configured
 * rates, the LP of a download sends only ACKs and every link keeps the same 10 Mbit/s hint (lab,
 * 30/4 + 10/22 + 4/150 ms: the download's ACKs took the 150 ms link, BBR kept the 26 ms round
 * trip of its first ACKs as its minimum and fell to 1.2 Mbit/s). The delays are known from the
 * links' probes before any data (CcLoop.onProbeRtt). `prev`: the set of the last call
 * (hysteresis). Whether a link of the tier remains for ACKs is the data path's business: with
 * none, ACKs go like data.
 *
 * "Far slower" holds only while the estimate is proven (State.bwProvenUs, within
 * ACK_AVOID_PROVEN_US of `nowUs`): a link that carries nothing in this direction but the ACKs
 * it is flagged off has no way to show its capacity again, so the flag would stay for good. Lab,
 * starlink: the RP's estimate of the link, cut to 1.9 Mbit/s by a delay step, took every ACK off
 * it through five more uploads. Once the proof is old the ACKs come back: the link re-probes
 * with them, and only a link that cannot carry them (overloaded: a fresh proof) is flagged again.
 */
export function ackAvoid(states: ReadonlyMap<number, State>, prev: ReadonlySet<number>, nowUs?: number): Set<number> {
  let now = nowUs ?? -Infinity;
  if (nowUs === undefined) for (const s of states.values()) now = Math.max(now, s.lastFeedbackUs);
  let best = 0;
  for (const s of states.values()) if (!s.stale) best = Math.max(best, bwBps(s));
  // delays in one frame (outputs()), less any queue: the links' propagation delays
  const owd = outputs(states);
  const prop = (id: number, s: State) => owd.get(id)!.owdUs - owdQueueUs(s);
  let nearest = Infinity;
  for (const [id, s] of states) if (!s.stale) nearest = Math.min(nearest, prop(id, s));
  const out = new Set<number>();
  for (const [id, s] of states) {
    const k = prev.has(id) ? 1 : 0;
    const lossy = s.lossBase > ACK_AVOID_LOSS[k];
    const proven = s.bwProvenUs !== null && now - s.bwProvenUs < ACK_AVOID_PROVEN_US;
    const slow = proven && bwBps(s) * ACK_AVOID_SLOWER[k] < best;
    const far = prop(id, s) - nearest > ACK_AVOID_FARTHER_US[k];
    if (lossy || slow || far) out.add(id);
  }
  return out;
}

/** The min OWD back in the receiver's raw u32 µs (null: no sample yet). */
function minOwdRaw(s: State): number | null {
  if (!s.owd) return null;
  return (s.owd.lastRaw + (winBest(s.owd.min) - s.owd.last)) >>> 0;
}
