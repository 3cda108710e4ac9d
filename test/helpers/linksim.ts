// A small discrete-event link simulator for the congestion controller (src/cc/controller.ts).
//
//   sender ──▶ scheduler ──▶ [ FIFO, tail drop ]──rate──▶ propagation ─(loss)─▶ receiver
//      ▲      (earliest        bottleneck per link                               │ every 20 ms:
//      │       arrival)                                                          │ mp_rx counters
//      └──────────────────────── feedback, after the reverse delay ◀─────────────┘ → feedback
//
// One backlogged source sends fixed-size packets paced at the sum of the links' output rates;
// each packet goes to the link where it would arrive first, as bpf/schedule.h does
// (max(now, busy_until) + size/rate + owd), and is sent at once (busy_until is virtual). Each
// link is a bottleneck with a rate (which may change over time), a byte-limited FIFO, a
// propagation delay and optional random loss / jitter (never reordering). The receiver keeps
// mp_rx exactly like bpf/decap.c (highest per-link sequence, u32 arithmetic, the last
// one-way-delay sample from unsynchronised clocks with a large offset, so it wraps) and every
// feedback interval turns two readings into a record with feedbackFromCounters. The record
// reaches the sender after the reverse propagation delay; the sender runs one controller per
// link and rewrites the links' rate and delay (outputs()) after each.

import { feedbackFromCounters, snapshotAt, type LinkFeedback, type RxSnapshot } from '../../src/cc/feedback.js';
import * as cc from '../../src/cc/controller.js';
import { RAISE_OFF, Trains, type TrainResult } from '../../src/run/train.js';

export interface SimLink {
  /** Bottleneck rate, bit/s (of the packets' bytes), or a function of time (µs). */
  rateBps: number | ((tUs: number) => number);
  /** One-way propagation delay after the bottleneck, µs (feedback comes back after the same),
   * or a function of time (µs): a path whose delay steps (a satellite hand-over). */
  propUs: number | ((tUs: number) => number);
  /** FIFO size in bytes (tail drop). */
  queueBytes: number;
  /** Random loss on the wire, 0..1. */
  loss?: number;
  /** Uniform extra delay 0..jitterUs, without reordering. */
  jitterUs?: number;
  /** Controller parameters for this link. */
  cc?: Partial<cc.CcParams>;
}

export interface SimOptions {
  links: SimLink[];
  durationUs: number;
  packetBytes?: number;
  feedbackIntervalUs?: number;
  /** No feedback reaches the sender while from ≤ t < to. */
  silence?: { fromUs: number; toUs: number };
  /** Receiver clock − sender clock, µs (any value: OWD is only relative). */
  clockOffsetUs?: number;
  /** Per-interval min/max OWD from the data path (default: only the last sample, as mp_rx). */
  owdMinMax?: boolean;
  seed?: number;
  /** A TCP-like window-limited source instead of the backlogged one (see TcpSource). */
  tcp?: { beta?: number; maxWindowBytes?: number };
  /** Tell each feedback the scheduler's modelled backlog a round trip ago, as portal/cc.ts does
   * (the planned queue: not congestion). */
  planned?: boolean;
  /** TCP ACKs come back over the link of the largest delay (bpf/schedule.h, pure ACKs), not
   * the data packet's own. */
  acksSlowest?: boolean;
  /** The backlogged source offers at most this (bit/s, or a function of time): an
   * application-limited sender, e.g. the pure ACKs of a flow the other way. */
  offeredBps?: number | ((tUs: number) => number);
  /** Re-trains (src/run/train.ts, its Trains deciding when): after each feedback, a link whose
   * controller suspects room (cc.roomSuspected) sends a re-train, answered at once with the
   * stamps the link's true rate gives it (the bottleneck's own queue and the flow's packets
   * between are test/train.test.ts's), and cc.raiseFromTrain takes the result. Each link's
   * first train is taken at the start without seeding its controller (SimLink.cc does). */
  retrain?: boolean;
}

/** A link's propagation delay at time `tUs`. */
export function propAt(l: SimLink, tUs: number): number {
  return typeof l.propUs === 'function' ? l.propUs(tUs) : l.propUs;
}

/**
 * A window-limited source like an end host's TCP CUBIC: at most cwnd bytes in flight, a packet
 * acknowledged after it arrived plus its link's reverse delay, slow start to the first loss, then
 * CUBIC's window growth (RFC 9438: W(t) = C (t − K)³ + W_max) and × beta on a loss (once per
 * round trip). A loss (tail drop or random) is
 * noticed when the packet would have been acknowledged. It does not care about reordering.
 * What matters here: unlike the backlogged source it sends what its window allows, not what the
 * links' estimates say, so a link whose estimate is too high looks application-limited.
 */
class TcpSource {
  cwnd: number;
  private ssthresh = Infinity;
  private lastCutUs = -Infinity;
  private srttUs = 0;
  /** CUBIC: the window before the last cut (packets) and K (s). */
  private wMax = 0;
  private kS = 0;
  inflight = 0;
  /** Acknowledgements (or loss notices) to come, in time order. */
  readonly acks: { atUs: number; bytes: number; lost: boolean; sentUs: number }[] = [];

  constructor(
    private readonly size: number,
    private readonly beta: number,
    private readonly maxWindow: number,
  ) {
    this.cwnd = 10 * size;
  }

  canSend(): boolean {
    return this.inflight + this.size <= this.cwnd;
  }

  sent(atUs: number, ackAtUs: number, lost: boolean): void {
    this.inflight += this.size;
    let k = this.acks.length;
    while (k > 0 && this.acks[k - 1]!.atUs > ackAtUs) k--;
    this.acks.splice(k, 0, { atUs: ackAtUs, bytes: this.size, lost, sentUs: atUs });
  }

  ack(): void {
    const a = this.acks.shift()!;
    this.inflight -= a.bytes;
    const rtt = a.atUs - a.sentUs;
    this.srttUs = this.srttUs === 0 ? rtt : 0.875 * this.srttUs + 0.125 * rtt;
    if (a.lost) {
      if (a.atUs - this.lastCutUs > this.srttUs) {
        this.wMax = this.cwnd / this.size;
        this.kS = Math.cbrt((this.wMax * (1 - this.beta)) / 0.4);
        this.cwnd = Math.max(2 * this.size, this.cwnd * this.beta);
        this.ssthresh = this.cwnd;
        this.lastCutUs = a.atUs;
      }
      return;
    }
    let grow: number;
    if (this.cwnd < this.ssthresh) grow = a.bytes;
    else {
      const t = (a.atUs - this.lastCutUs + this.srttUs) / 1e6;
      const target = (0.4 * (t - this.kS) ** 3 + this.wMax) * this.size;
      grow = Math.max((this.size * a.bytes) / this.cwnd / 2, target > this.cwnd ? ((target - this.cwnd) * a.bytes) / this.cwnd : 0);
    }
    this.cwnd = Math.min(this.maxWindow, this.cwnd + grow);
  }
}

/** One feedback interval of one link (receiver side, true values) and the sender's view. */
export interface Trace {
  tUs: number;
  link: number;
  /** Bytes delivered in the interval, and the true mean / max queueing delay they saw. */
  deliveredBytes: number;
  queueMeanUs: number;
  queueMaxUs: number;
  capacityBps: number;
  /** The sender's controller after the latest feedback it processed. */
  bwBps: number;
  rateBps: number;
  owdUs: number;
  /** The controller's queueing delay (beyond the planned backlog), µs. */
  ccQueueUs: number;
  phase: cc.Phase;
  stale: boolean;
  /** The controller's random-loss estimate (State.lossBase). */
  lossBase: number;
}

export interface SimResult {
  /** re-trains per link (SimOptions.retrain), and when each raised the estimate (µs) */
  retrains: number[];
  raisedAtUs: number[][];
  traces: Trace[];
  /** Bytes sent per link. */
  sentBytes: number[];
  drops: number[];
  states: cc.State[];
}

/** mulberry32: a small seeded PRNG, so every run is the same. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A queue of `ms` milliseconds at `rateBps`, in bytes. */
export function queueOf(ms: number, rateBps: number): number {
  return Math.round(((rateBps / 8) * ms) / 1000);
}

interface Arrival {
  atUs: number;
  bytes: number;
  linkSeq: number;
  tsUs: number; // sender timestamp (u32)
  queueUs: number; // true waiting time in the FIFO
}

class Bottleneck {
  private readonly inQueue: { depUs: number; bytes: number }[] = [];
  private queued = 0;
  private lastDepUs = 0;
  private lastArrUs = 0;
  drops = 0;
  readonly arrivals: Arrival[] = [];

  constructor(
    private readonly l: SimLink,
    private readonly rnd: () => number,
  ) {}

  rateAt(tUs: number): number {
    return typeof this.l.rateBps === 'function' ? this.l.rateBps(tUs) : this.l.rateBps;
  }

  /** When the packet arrives (null: dropped or lost). */
  send(tUs: number, bytes: number, linkSeq: number, tsUs: number): number | null {
    while (this.inQueue.length > 0 && this.inQueue[0]!.depUs <= tUs) this.queued -= this.inQueue.shift()!.bytes;
    if (this.queued + bytes > this.l.queueBytes) {
      this.drops++;
      return null;
    }
    const start = Math.max(tUs, this.lastDepUs);
    const dep = start + (bytes * 8 * 1e6) / this.rateAt(start);
    this.lastDepUs = dep;
    this.inQueue.push({ depUs: dep, bytes });
    this.queued += bytes;
    if (this.l.loss && this.rnd() < this.l.loss) return null; // lost on the wire, after the queue
    const arr = Math.max(dep + propAt(this.l, dep) + (this.l.jitterUs ? this.rnd() * this.l.jitterUs : 0), this.lastArrUs);
    this.lastArrUs = arr;
    this.arrivals.push({ atUs: arr, bytes, linkSeq, tsUs, queueUs: start - tUs });
    return arr;
  }
}

const U32 = 0x1_0000_0000;

/** Runs the scenario; returns per-interval traces of every link. */
export function simulate(o: SimOptions): SimResult {
  const size = o.packetBytes ?? 1500;
  const fbEvery = o.feedbackIntervalUs ?? 20_000;
  const offset = o.clockOffsetUs ?? 4_294_000_000; // close to 2^32: OWD samples wrap
  const rnd = prng(o.seed ?? 1);
  const n = o.links.length;
  const links = o.links.map((l) => new Bottleneck(l, rnd));
  let states = o.links.map((l) => cc.initial({ feedbackIntervalUs: fbEvery, ...l.cc }, 0));
  let out = cc.outputs(new Map(states.map((s, i) => [i, s])));

  // sender
  const busyUntil = new Array<number>(n).fill(0);
  const linkSeq = new Array<number>(n).fill(U32 - 500); // wraps early in the run
  const sentSinceFb = new Array<number>(n).fill(0);
  const sentBytes = new Array<number>(n).fill(0);
  // receiver: mp_rx per link, plus the true queueing delays of the interval
  const rx = o.links.map(() => ({ lastRxNs: 0n, maxLinkSeq: 0, lastOwdUs: 0, packets: 0n, bytes: 0n, owdMin: Infinity, owdMax: -Infinity }));
  const prev: RxSnapshot[] = o.links.map((_, i) => snapshotAt({ linkId: i, lastRxNs: 0n, maxLinkSeq: 0, lastOwdUs: 0, packets: 0n, bytes: 0n }, offset));
  const rxIdx = new Array<number>(n).fill(0);
  const interval = o.links.map(() => ({ bytes: 0, qSum: 0, qMax: 0, pkts: 0 }));
  // feedback in flight to the sender
  const inFlight: { atUs: number; fb: LinkFeedback }[] = [];
  const traces: Trace[] = [];
  const tcp = o.tcp ? new TcpSource(size, o.tcp.beta ?? 0.7, o.tcp.maxWindowBytes ?? 16_000_000) : null;

  // the scheduler's modelled backlog per link, sampled every tick (portal/cc.ts sampleBacklog)
  const backlog: { tUs: number; us: number }[][] = o.links.map(() => []);
  const plannedAt = (i: number, endUs: number, spanUs: number): number => {
    let best: number | null = null;
    let near = 0;
    for (const x of backlog[i]!) {
      if (x.tUs < endUs - spanUs) near = x.us;
      else if (x.tUs <= endUs) best = best === null ? x.us : Math.min(best, x.us);
    }
    return best ?? near;
  };
  const rate = (i: number) => Number(out.get(i)!.rateBps);
  // re-trains (SimOptions.retrain)
  const retrains = new Array<number>(n).fill(0);
  const raisedAtUs: number[][] = o.links.map(() => []);
  const trains = new Trains();
  /** a train on link i at time t, answered with the spacing the link's rate gives it */
  const train = (i: number, tUs: number, retrain: boolean): TrainResult => {
    const seqs = trains.start(i, tUs / 1000, size, retrain);
    const gapUs = (size * 8 * 1e6) / links[i]!.rateAt(tUs);
    seqs.forEach((q, k) => trains.reply(i, q, Math.round(k * gapUs) >>> 0));
    return trains.finish(tUs / 1000)[0]!.result;
  };
  if (o.retrain) for (let i = 0; i < n; i++) train(i, 0, false);
  let nextSend = 0;
  let nextTick = fbEvery;
  const outOf = (i: number) => out.get(i)!;

  while (true) {
    const nextFb = inFlight.length > 0 ? inFlight[0]!.atUs : Infinity;
    const nextAck = tcp && tcp.acks.length > 0 ? tcp.acks[0]!.atUs : Infinity;
    const t = Math.min(tcp && !tcp.canSend() ? Infinity : nextSend, nextTick, nextFb, nextAck);
    if (t >= o.durationUs) break;

    if (tcp && t === nextAck) {
      tcp.ack();
      nextSend = Math.max(nextSend, t);
      continue;
    }

    if (t === nextFb) {
      const { fb } = inFlight.shift()!;
      const i = fb.linkId;
      const planned = o.planned ? plannedAt(i, t - cc.estimate(states[i]!).rttUs, fb.intervalUs) : 0;
      const othersCarry = states.some((o, j) => j !== i && cc.carries(o));
      states[i] = cc.onFeedback(states[i]!, fb, sentSinceFb[i]!, t, planned, othersCarry);
      sentSinceFb[i] = 0;
      if (o.retrain && trains.retrainDue(i, t / 1000, cc.roomSuspected(states[i]!), cc.bwBps(states[i]!))) {
        retrains[i]!++;
        const r = train(i, t, true);
        const raise = (bps: number) => {
          const next = cc.raiseFromTrain(states[i]!, bps, t, RAISE_OFF);
          if (next === states[i]) return false;
          states[i] = next;
          return true;
        };
        if (trains.takeRetrain(i, t / 1000, r.bps, cc.bwBps(states[i]!), raise)) raisedAtUs[i]!.push(t);
      }
      out = cc.outputs(new Map(states.map((s, k) => [k, s])));
      continue;
    }

    if (t === nextTick) {
      nextTick += fbEvery;
      // the sender's silence timer
      states = states.map((s) => cc.onSilence(s, t));
      for (let i = 0; i < n; i++) {
        const h = backlog[i]!;
        h.push({ tUs: t, us: Math.max(0, busyUntil[i]! - t) });
        while (h.length > 0 && t - h[0]!.tUs > 1_000_000) h.shift();
      }
      for (let i = 0; i < n; i++) {
        const r = rx[i]!;
        const arrivals = links[i]!.arrivals;
        const iv = interval[i]!;
        while (rxIdx[i]! < arrivals.length && arrivals[rxIdx[i]!]!.atUs <= t) {
          const a = arrivals[rxIdx[i]!++]!;
          if (((a.linkSeq - r.maxLinkSeq) | 0) > 0 || r.packets === 0n) r.maxLinkSeq = a.linkSeq;
          const rxUs = Math.floor(a.atUs + offset); // the receiver's clock
          const owd = (rxUs - a.tsUs + U32) % U32; // u32, as decap computes it
          r.lastRxNs = BigInt(rxUs) * 1000n;
          r.lastOwdUs = owd;
          r.owdMin = Math.min(r.owdMin, owd);
          r.owdMax = Math.max(r.owdMax, owd);
          r.packets++;
          r.bytes += BigInt(a.bytes);
          iv.bytes += a.bytes;
          iv.pkts++;
          iv.qSum += a.queueUs;
          iv.qMax = Math.max(iv.qMax, a.queueUs);
        }
        const { lastRxNs, maxLinkSeq, lastOwdUs, packets, bytes } = r;
        const minMax = o.owdMinMax && r.owdMin !== Infinity ? { owdMinUs: r.owdMin, owdMaxUs: r.owdMax } : {};
        const cur = { linkId: i, lastRxNs, maxLinkSeq, lastOwdUs, packets, bytes, ...minMax };
        const fb = feedbackFromCounters(prev[i]!, cur, t + offset);
        prev[i] = snapshotAt(cur, t + offset);
        r.owdMin = Infinity;
        r.owdMax = -Infinity;
        const silent = o.silence && t >= o.silence.fromUs && t < o.silence.toUs;
        if (!silent) {
          const at = t + propAt(o.links[i]!, t);
          let k = inFlight.length;
          while (k > 0 && inFlight[k - 1]!.atUs > at) k--;
          inFlight.splice(k, 0, { atUs: at, fb });
        }
        const s = states[i]!;
        traces.push({
          tUs: t,
          link: i,
          deliveredBytes: iv.bytes,
          queueMeanUs: iv.pkts ? iv.qSum / iv.pkts : 0,
          queueMaxUs: iv.qMax,
          capacityBps: links[i]!.rateAt(t),
          bwBps: cc.bwBps(s),
          rateBps: s.rateBps,
          owdUs: outOf(i).owdUs,
          ccQueueUs: s.queueUs,
          phase: s.phase,
          stale: s.stale,
          lossBase: s.lossBase,
        });
        interval[i] = { bytes: 0, qSum: 0, qMax: 0, pkts: 0 };
      }
      continue;
    }

    // send one packet on the link where it arrives first (bpf/schedule.h), a link planned
    // beyond its buffer's depth (plan_cap_ms) only if every link is
    let best = 0;
    let bestArr = Infinity;
    let bestStart = 0;
    let bestTx = 0;
    for (let i = 0; i < n; i++) {
      const start = Math.max(t, busyUntil[i]!);
      const tx = (size * 8 * 1e6) / rate(i);
      const capUs = Math.ceil(cc.planCapUs(states[i]!) / 1000) * 1000;
      const arr = start + tx + outOf(i).owdUs + (capUs > 0 && busyUntil[i]! > t + capUs ? 10e6 : 0);
      if (arr < bestArr) [best, bestArr, bestStart, bestTx] = [i, arr, start, tx];
    }
    busyUntil[best] = bestStart + bestTx;
    linkSeq[best] = (linkSeq[best]! + 1) % U32;
    const arrival = links[best]!.send(t, size, linkSeq[best]!, Math.floor(t) % U32);
    sentSinceFb[best]! += size;
    sentBytes[best]! += size;
    if (tcp) {
      // acknowledged after the reverse delay; a loss noticed about a round trip after sending
      const back = o.acksSlowest ? Math.max(...o.links.map((l) => propAt(l, t))) : propAt(o.links[best]!, t);
      tcp.sent(t, arrival !== null ? arrival + back : t + 2 * back + (size * 8 * 1e6) / links[best]!.rateAt(t), arrival === null);
      nextSend = t + (size * 8) / 1000; // 1 Gbit/s host interface
      continue;
    }
    let total = 0;
    for (let i = 0; i < n; i++) total += rate(i);
    if (o.offeredBps !== undefined) total = Math.min(total, typeof o.offeredBps === 'function' ? o.offeredBps(t) : o.offeredBps);
    nextSend = t + (size * 8 * 1e6) / total;
  }
  return { traces, sentBytes, drops: links.map((l) => l.drops), states, retrains, raisedAtUs };
}

// ---- measurements over traces -------------------------------------------------------------------

export interface Window {
  fromUs: number;
  toUs: number;
}

function inWindow(traces: Trace[], link: number, w: Window): Trace[] {
  return traces.filter((x) => x.link === link && x.tUs > w.fromUs && x.tUs <= w.toUs);
}

/** Delivered bytes / (capacity × time) over the window. */
export function utilisation(traces: Trace[], link: number, w: Window): number {
  const xs = inWindow(traces, link, w);
  let bits = 0;
  let cap = 0;
  for (let i = 1; i < xs.length; i++) {
    bits += xs[i]!.deliveredBytes * 8;
    cap += (xs[i]!.capacityBps * (xs[i]!.tUs - xs[i - 1]!.tUs)) / 1e6;
  }
  return bits / cap;
}

/** Goodput in bit/s over the window. */
export function goodputBps(traces: Trace[], link: number, w: Window): number {
  const xs = inWindow(traces, link, w);
  const bits = xs.reduce((a, x) => a + x.deliveredBytes * 8, 0);
  return (bits * 1e6) / (w.toUs - w.fromUs);
}

/** Packet-weighted mean of the true queueing delay, and its max, over the window (µs). */
export function queueDelay(traces: Trace[], link: number, w: Window): { meanUs: number; maxUs: number; p95Us: number } {
  const xs = inWindow(traces, link, w);
  let sum = 0;
  let bytes = 0;
  for (const x of xs) {
    sum += x.queueMeanUs * x.deliveredBytes;
    bytes += x.deliveredBytes;
  }
  const maxes = xs.map((x) => x.queueMaxUs).sort((a, b) => a - b);
  return { meanUs: bytes ? sum / bytes : 0, maxUs: maxes.at(-1) ?? 0, p95Us: maxes[Math.floor(0.95 * (maxes.length - 1))] ?? 0 };
}

/** Mean of the sender's bandwidth estimate over the window. */
export function meanEstimate(traces: Trace[], link: number, w: Window): number {
  const xs = inWindow(traces, link, w);
  return xs.reduce((a, x) => a + x.bwBps, 0) / xs.length;
}

/** First time ≥ fromUs after which the estimate stays within ±tol of target for holdUs. */
export function settleTime(traces: Trace[], link: number, fromUs: number, target: number, tol: number, holdUs = 500_000): number | null {
  const xs = traces.filter((x) => x.link === link && x.tUs >= fromUs);
  let since: number | null = null;
  for (const x of xs) {
    const inside = Math.abs(x.bwBps - target) <= tol * target;
    if (inside && since === null) since = x.tUs;
    if (!inside) since = null;
    if (since !== null && x.tUs - since >= holdUs) return since;
  }
  return null;
}
