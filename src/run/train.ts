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
// TRAIN_TRIES times. No clock, no I/O: the runtime sends, and passes times and replies in.

/** Requests in a train: 24 × 1280 B ≈ 31 KB, 25 ms of a 10 Mbit/s link. */
export const TRAIN_LEN = 24;
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

/** probe_seq of a train's request: TRAIN_SEQ_BASE | train number << 8 | index. */
const TRAIN_SEQ_BASE = 0x8000_0000;

export interface TrainResult {
  /** the measured rate, bit/s of outer IP bytes (null: no measurement) */
  bps: number | null;
  replies: number;
  sent: number;
  /** from the first reply's stamp to the last, µs of the peer's clock */
  spanUs: number;
  outerBytes: number;
}

interface Running {
  no: number;
  atMs: number;
  outerBytes: number;
  /** index → the peer's stamp (u32 µs) */
  stamps: Map<number, number>;
}

interface LinkTrains {
  running: Running | null;
  tries: number;
  lastMs: number;
  /** the measurement, once a train gave one (finish() keeps only those) */
  done: TrainResult | null;
}

/** The rate a train's replies say: (replies − 1) × size over the span of the peer's stamps. */
export function dispersion(stamps: readonly number[], outerBytes: number, sent: number): TrainResult {
  const replies = stamps.length;
  if (replies < 2) return { bps: null, replies, sent, spanUs: 0, outerBytes };
  const t0 = stamps[0]!;
  let lo = 0;
  let hi = 0;
  for (const s of stamps) {
    const d = (s - t0) | 0; // u32 µs, wraps every 71 minutes
    lo = Math.min(lo, d);
    hi = Math.max(hi, d);
  }
  const spanUs = hi - lo;
  const bps = replies >= TRAIN_MIN_REPLIES && spanUs >= MIN_SPAN_US ? ((replies - 1) * outerBytes * 8 * 1e6) / spanUs : null;
  return { bps, replies, sent, spanUs, outerBytes };
}

export class Trains {
  private readonly links = new Map<number, LinkTrains>();
  private no = 0;

  private link(id: number): LinkTrains {
    let l = this.links.get(id);
    if (!l) {
      l = { running: null, tries: 0, lastMs: -Infinity, done: null };
      this.links.set(id, l);
    }
    return l;
  }

  /** Is a train due on link `id` (never measured, none in flight, tries left and spaced)? */
  due(id: number, nowMs: number): boolean {
    const l = this.link(id);
    return l.done === null && l.running === null && l.tries < TRAIN_TRIES && nowMs - l.lastMs >= TRAIN_RETRY_MS;
  }

  /** A train leaves on link `id` now, each request padded to `outerBytes`: the probe_seq of
   * each of its requests, in sending order. */
  start(id: number, nowMs: number, outerBytes: number): number[] {
    const l = this.link(id);
    this.no = (this.no + 1) & 0x7f_ffff;
    l.running = { no: this.no, atMs: nowMs, outerBytes, stamps: new Map() };
    l.tries++;
    l.lastMs = nowMs;
    return Array.from({ length: TRAIN_LEN }, (_, i) => (TRAIN_SEQ_BASE | (this.no << 8) | i) >>> 0);
  }

  /** The peer's reply to one request: its probe_seq and stamp. false: not of a train in flight. */
  reply(id: number, probeSeq: number, tsUs: number): boolean {
    const r = this.links.get(id)?.running;
    if (!r || ((probeSeq >>> 0) & ~0xff) >>> 0 !== (TRAIN_SEQ_BASE | (r.no << 8)) >>> 0) return false;
    const i = probeSeq & 0xff;
    if (i >= TRAIN_LEN || r.stamps.has(i)) return false;
    r.stamps.set(i, tsUs >>> 0);
    return true;
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
      if (!r || (r.stamps.size < TRAIN_LEN && nowMs - r.atMs < TRAIN_WAIT_MS)) continue;
      const stamps = [...r.stamps].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
      const result = dispersion(stamps, r.outerBytes, TRAIN_LEN);
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
