// Capacity trains (bpf/mp.h "Capacity trains"): every link is measured before it carries a
// flow, instead of being found by the flow's own packets; a link whose rate nobody configured
// starts from the measurement, one with a configured rate only when that is far off (HINT_OFF).
//
// Once a link is up, its sender sends TRAIN_LEN probe requests back to back, padded to a
// size the path carries (its confirmed path MTU, else TRAIN_OUTER_BYTES), with MP_PROBE_F_TRAIN.
// The link's bottleneck spaces them out at its rate; the peer's data path answers each one the
// moment it arrives and stamps the reply with its own clock (mp_hdr.ts_us, bpf/probe.h). The
// spacing of those stamps is the rate: (replies − 1) × size over the span from the first stamp
// to the last (packet-train dispersion). Losses do not bias it (a full buffer drops the train's
// tail, the packets that got through left at the bottleneck's rate), nor do the clocks (only
// differences of the peer's own clock count), nor the way back (the replies' own spacing is not
// used). A sender that cannot send faster than the link (a fast, unshaped link; not measured
// here) measures its own rate: a lower bound, which the controller's startup grows from.
//
// The result is the link's controller's starting estimate (cc/loop.ts seedRate) as a configured
// rate would be (or instead of one more than HINT_OFF times off): the scheduler plans the link
// at it from the first packet of the first flow.
// Lab, the demo's links (20/10 + 10/25 ±2 + 30/40 ±1 ms) with no rate configured: every link
// started at the 10 Mbit/s default, the first flow's scheduler spread it as if the links were
// equal and the controllers' startups found the truth in the middle of the flow (README
// "discover-demo").
//
// One train per link while it measures nothing; a failed one (too few replies: the link was
// lost, or the size too large for the path) is tried again TRAIN_RETRY_MS later, at most
// TRAIN_TRIES times.
//
// Re-trains: a link can get faster while it carries a flow (a 5 Mbit/s step back up to 20, a
// satellite's next slot, a radio's better cell), and its controller does not probe a link the
// flows load at its estimate (cc/controller.ts loadedAtEstimate, saturated: the probe would
// only run the scheduler's model ahead of the link). So where the controller suspects room (it
// loads the link at its estimate and no queue stands there: cc roomSuspected) a shorter train
// (retrainShape: ~10 ms of the link at its estimate) measures it again, at most every
// RETRAIN_MIN_MS, the spacing doubling up to RETRAIN_MAX_MS while re-trains find nothing new
// and starting over when the estimate falls (what got slower may come back: 20 → 5 → 20
// Mbit/s). The flow's own packets share the bottleneck with the train: each reply carries the
// data bytes the peer had received on the link by then (bpf/probe.h, mp_rx.bytes), and those
// that arrived between the train's first and last packet count with it (the bottleneck served
// them in that span too; a FIFO bottleneck takes a burst whole, so this is mostly 0, but a
// train the sender paces slower than the flow, or a bottleneck that interleaves flows, would
// read low without it). A re-train more than RAISE_OFF times the estimate raises it (cc
// raiseFromTrain); the controller's queue rule corrects an overshoot within a round. Lab,
// `step` (2 × 20 Mbit/s, one link 20 → 5 → 20 under a flow): README "step".
//
// No clock, no I/O: the runtime sends, and passes times and replies in.

/** Requests in a train: 24 × 1280 B ≈ 31 KB, 25 ms of a 10 Mbit/s link. */
export const TRAIN_LEN = 24;
/** Requests in a re-train (a link that carries a flow: its burst queues in front of the flow's
 * packets), at most and at least (retrainShape). */
export const RETRAIN_LEN = 16;
export const RETRAIN_MIN_LEN = 10;
/** A re-train's burst lasts about this long at the link's estimate (retrainShape)... */
export const RETRAIN_BURST_MS = 10;
/** ... its requests no smaller than this (outer IP bytes). */
export const RETRAIN_MIN_BYTES = 400;

/** A re-train's length and request size: about RETRAIN_BURST_MS of the link at its estimate
 * (the delay its burst adds to the flow's packets behind it where the estimate is right), in
 * RETRAIN_MIN_LEN to RETRAIN_LEN requests of RETRAIN_MIN_BYTES to `maxOuter` bytes. 20 Mbit/s:
 * 16 × 1500 B (9.6 ms); 5 Mbit/s: 10 × 625 B (10 ms); 2 Mbit/s: 10 × 400 B (16 ms). */
export function retrainShape(estimateBps: number, maxOuter: number): { len: number; outerBytes: number } {
  const bytes = (Math.max(0, estimateBps) * RETRAIN_BURST_MS) / 8000;
  const outerBytes = Math.max(Math.min(RETRAIN_MIN_BYTES, maxOuter), Math.min(maxOuter, Math.round(bytes / RETRAIN_MIN_LEN)));
  return { len: Math.max(RETRAIN_MIN_LEN, Math.min(RETRAIN_LEN, Math.round(bytes / outerBytes))), outerBytes };
}
/** A re-train at most this often per link, the spacing doubling up to RETRAIN_MAX_MS while they
 * find no more than the estimate (back to the minimum when one raised it). */
export const RETRAIN_MIN_MS = 2000;
export const RETRAIN_MAX_MS = 8000;
/** A re-train raises the link's estimate when it measured more than this many times it. */
export const RAISE_OFF = 1.5;
/** Outer IP bytes of a train's request while the link's path MTU is not confirmed yet (IPv6's
 * minimum MTU: every path mpctl runs on carries it). */
export const TRAIN_OUTER_BYTES = 1280;
/** How long after it left a train's replies are waited for. */
export const TRAIN_WAIT_MS = 1500;
/** Fewer replies than this: no measurement (tried again). */
export const TRAIN_MIN_REPLIES = 8;
export const TRAIN_RETRY_MS = 5000;
export const TRAIN_TRIES = 3;
/** A span this short is no measurement (a clock tick of the peer's µs stamps). */
const MIN_SPAN_US = 20;

/** A configured rate (a hint) stays the link's start unless a train measured more than this
 * many times more or less: a rate 10× off (an ISP's advertised rate, a typo, the upstream rate of
 * an asymmetric line taken for its downstream) is replaced, one a few per cent off is not (the
 * operator may know a token bucket's sustained rate that a short train overshoots). */
export const HINT_OFF = 3;

/** Does a link start from the train's measurement (true) or its configured rate? `hintBps`:
 * the configured rate (null: none). */
export function startFromTrain(measuredBps: number, hintBps: number | null): boolean {
  return hintBps === null || !(hintBps > 0) || measuredBps > HINT_OFF * hintBps || measuredBps < hintBps / HINT_OFF;
}

/** probe_seq of a train's request: TRAIN_SEQ_BASE | train number (22 bits) << 8 | index. */
const TRAIN_SEQ_BASE = 0x8000_0000;

export interface TrainResult {
  /** the measured rate, bit/s of outer IP bytes (null: no measurement) */
  bps: number | null;
  replies: number;
  sent: number;
  /** from the first reply's stamp to the last, µs of the peer's clock */
  spanUs: number;
  outerBytes: number;
  /** outer bytes of data the link delivered between the first and the last reply's request
   * (counted with the train's own) */
  dataBytes: number;
  /** a re-train (the link carried flows), not the link's first measurement */
  retrain: boolean;
}

/** One reply: the peer's stamp (u32 µs) and its count of the link's data bytes then (null: the
 * peer does not say). */
export interface TrainReply {
  tsUs: number;
  rxBytes: bigint | null;
}

interface Running {
  no: number;
  atMs: number;
  outerBytes: number;
  len: number;
  retrain: boolean;
  /** index → the reply */
  replies: Map<number, TrainReply>;
}

interface LinkTrains {
  running: Running | null;
  tries: number;
  lastMs: number;
  /** the latest measurement, once a train gave one (finish() keeps only those) */
  done: TrainResult | null;
  /** the next re-train's earliest time, the spacing after it, and the estimate when the last
   * re-train found nothing new (a link that got slower since starts the spacing over) */
  retrainAtMs: number;
  retrainGapMs: number;
  retrainBps: number;
  /** what the last re-train raised the estimate to (0: it raised nothing) */
  raisedBps: number;
}

/** The rate a train's replies (in sending order) say: the train's bytes after its first reply,
 * plus the data bytes the link delivered in between, over the span of the peer's stamps. */
export function dispersion(replies: readonly TrainReply[], outerBytes: number, sent: number, retrain = false): TrainResult {
  const n = replies.length;
  if (n < 2) return { bps: null, replies: n, sent, spanUs: 0, outerBytes, dataBytes: 0, retrain };
  const t0 = replies[0]!.tsUs;
  let first = replies[0]!;
  let last = first;
  let lo = 0;
  let hi = 0;
  for (const r of replies) {
    const d = (r.tsUs - t0) | 0; // u32 µs, wraps every 71 minutes
    if (d < lo) [lo, first] = [d, r];
    if (d > hi) [hi, last] = [d, r];
  }
  const spanUs = hi - lo;
  const between = first.rxBytes !== null && last.rxBytes !== null ? BigInt.asUintN(64, last.rxBytes - first.rxBytes) : 0n;
  // a count that went back (a peer that restarted) or jumped past any link's rate: none
  const dataBytes = between < BigInt(Number.MAX_SAFE_INTEGER) && Number(between) * 8 * 1e6 <= MAX_DATA_BPS * Math.max(spanUs, 1) ? Number(between) : 0;
  const bits = ((n - 1) * outerBytes + dataBytes) * 8;
  const bps = n >= TRAIN_MIN_REPLIES && spanUs >= MIN_SPAN_US ? (bits * 1e6) / spanUs : null;
  return { bps, replies: n, sent, spanUs, outerBytes, dataBytes, retrain };
}
/** Has the estimate fallen more than RAISE_OFF times below the last re-train's that raised nothing? */
const fellSince = (l: LinkTrains, estimateBps: number): boolean => estimateBps * RAISE_OFF < l.retrainBps;

/** Data counted between a train's packets at more than this rate is a counter gone wrong. */
const MAX_DATA_BPS = 1e12;

export class Trains {
  private readonly links = new Map<number, LinkTrains>();
  private no = 0;

  private link(id: number): LinkTrains {
    let l = this.links.get(id);
    if (!l) {
      l = { running: null, tries: 0, lastMs: -Infinity, done: null, retrainAtMs: -Infinity, retrainGapMs: RETRAIN_MIN_MS, retrainBps: 0, raisedBps: 0 };
      this.links.set(id, l);
    }
    return l;
  }

  /** Is a train due on link `id` (never measured, none in flight, tries left and spaced)? */
  due(id: number, nowMs: number): boolean {
    const l = this.link(id);
    return l.done === null && l.running === null && l.tries < TRAIN_TRIES && nowMs - l.lastMs >= TRAIN_RETRY_MS;
  }

  /** Is link `id`'s first train over: measured, or out of tries, and none in flight (a depth
   * train goes after it: depth.ts)? */
  settled(id: number): boolean {
    const l = this.link(id);
    return l.running === null && (l.done !== null || l.tries >= TRAIN_TRIES);
  }

  /** Is a re-train due on link `id`: measured once, none in flight, its controller suspects
   * room (`suspect`: cc roomSuspected), and the spacing has passed (`estimateBps`: the link's
   * estimate now; one more than RAISE_OFF times below the last re-train's starts it over)? */
  retrainDue(id: number, nowMs: number, suspect: boolean, estimateBps: number): boolean {
    const l = this.link(id);
    const at = fellSince(l, estimateBps) ? l.lastMs + RETRAIN_MIN_MS : l.retrainAtMs;
    return suspect && l.done !== null && l.running === null && nowMs >= at && nowMs - l.lastMs >= RETRAIN_MIN_MS;
  }

  /** The train due on link `id` now: its first ('first': due), a re-train (retrainDue; the
   * estimate it is shaped to: retrainShape), or none (null). */
  next(id: number, nowMs: number, suspect: () => boolean, estimateBps: () => number): 'first' | { retrain: number } | null {
    if (this.due(id, nowMs)) return 'first';
    const est = estimateBps();
    return this.retrainDue(id, nowMs, suspect(), est) ? { retrain: est } : null;
  }

  /** A train leaves on link `id` now, each request padded to `outerBytes` (`retrain`: a
   * re-train, `len` long: retrainShape): the probe_seq of each of its requests, in sending order. */
  start(id: number, nowMs: number, outerBytes: number, retrain = false, len = retrain ? RETRAIN_LEN : TRAIN_LEN): number[] {
    const l = this.link(id);
    this.no = (this.no + 1) & 0x3f_ffff; // 0x8000_0000-0xbfff_ffff: depth trains use the rest (depth.ts)
    l.running = { no: this.no, atMs: nowMs, outerBytes, len, retrain, replies: new Map() };
    if (!retrain) l.tries++;
    l.lastMs = nowMs;
    return Array.from({ length: len }, (_, i) => (TRAIN_SEQ_BASE | (this.no << 8) | i) >>> 0);
  }

  /** The peer's reply to one request: its probe_seq, stamp and data count (null: none). false:
   * not of a train in flight. */
  reply(id: number, probeSeq: number, tsUs: number, rxBytes: bigint | null = null): boolean {
    const r = this.links.get(id)?.running;
    if (!r || ((probeSeq >>> 0) & ~0xff) >>> 0 !== (TRAIN_SEQ_BASE | (r.no << 8)) >>> 0) return false;
    const i = probeSeq & 0xff;
    if (i >= r.len || r.replies.has(i)) return false;
    r.replies.set(i, { tsUs: tsUs >>> 0, rxBytes });
    return true;
  }

  /** What a re-train did: raised the estimate to `raisedBps` (null: raised nothing) from
   * `estimateBps`. A raise that held starts the spacing over; one that raises again what the
   * last one raised and the link since took back (a token bucket's burst read as the rate:
   * the controller's queue rule cuts it within a round), or no raise, doubles it (from the
   * minimum where the estimate fell since the last: retrainDue). */
  retrained(id: number, nowMs: number, raisedBps: number | null, estimateBps: number): void {
    const l = this.link(id);
    const held = raisedBps !== null && !(l.raisedBps > 0 && estimateBps * RAISE_OFF < l.raisedBps);
    const gap = fellSince(l, estimateBps) ? RETRAIN_MIN_MS : l.retrainGapMs;
    l.retrainGapMs = held ? RETRAIN_MIN_MS : Math.min(RETRAIN_MAX_MS, 2 * gap);
    l.retrainAtMs = nowMs + l.retrainGapMs;
    l.retrainBps = raisedBps === null ? estimateBps : 0;
    l.raisedBps = raisedBps ?? 0;
  }

  /** A re-train's result on link `id` (`bps`: its measurement, null: inconclusive): `raise`
   * (cc raiseFromTrain) gets the measurement, and the spacing follows what it did (retrained;
   * `estimateBps`: the estimate before). true: the estimate was raised. */
  takeRetrain(id: number, nowMs: number, bps: number | null, estimateBps: number, raise: (bps: number) => boolean): boolean {
    const raised = bps !== null && raise(bps);
    this.retrained(id, nowMs, raised ? bps : null, estimateBps);
    return raised;
  }

  /** A request could not be sent (the socket said so): the train is void, tried again later. */
  failed(id: number): void {
    const l = this.links.get(id);
    if (l) l.running = null;
  }

  /** Trains that are over (every reply in, or waited TRAIN_WAIT_MS): their results. */
  finish(nowMs: number): { id: number; result: TrainResult }[] {
    const out: { id: number; result: TrainResult }[] = [];
    for (const [id, l] of this.links) {
      const r = l.running;
      if (!r || (r.replies.size < r.len && nowMs - r.atMs < TRAIN_WAIT_MS)) continue;
      const replies = [...r.replies].sort((a, b) => a[0] - b[0]).map(([, x]) => x);
      const result = dispersion(replies, r.outerBytes, r.len, r.retrain);
      l.running = null;
      if (result.bps !== null) l.done = result;
      out.push({ id, result });
    }
    return out;
  }

  /** The link's measurement (null: none yet). */
  result(id: number): TrainResult | null {
    return this.links.get(id)?.done ?? null;
  }
}
