// Buffer-depth trains: each link's buffer depth measured once before it carries a flow, instead
// of learned from the first flow's losses.
//
// The scheduler plans backlog on a link that is faster than another (the equalising queue:
// 20 Mbit/10 ms + 20 Mbit/60 ms holds ~50 ms on the fast link) and at most the link's buffer
// depth less a margin (mp_link.plan_cap_ms, cc/controller.ts planCapUs). The controller learns
// the depth from a loss under a standing queue (learnDepth): until then nothing caps the plan,
// and the first flow over a fresh bond overflows the fast link's buffer to teach it. Lab,
// `mismatch` (session 27, `bench-results/s27/first.sh`): the caps were (0, 0) before the first
// CUBIC upload, (44, 0) ms after it, (44, 44) after the second; the first flows ran at 26-34
// Mbit/s, later ones at 35-36. Side by side in fresh labs (session 28, README "Benchmarks"), the
// first uploads with these trains: 34.5, 29.2, 34.8, 34.4 Mbit/s and 23-122 retransmissions,
// without: 29.6, 32.7, 35.8, 27.8 and 152-340 (flows of one link's worth come either way).
//
// Once a link is up and its rate known (configured, or its capacity train's: train.ts), its
// sender sends one burst of probe requests, MP_PROBE_F_TRAIN (not liveness), back to back,
// padded like a capacity train, long enough to queue DEPTH_SPAN_MS at the link's estimate. The
// link's buffer takes the burst until it is full and drops the rest but what drains meanwhile;
// the peer's data path answers each request that arrives, stamped with its own clock. A request
// waited in the buffer from when it left (our clock, taken as each one is sent) to its stamp
// (the peer's clock): the differences of those waits against the first request's are the
// queue each one met, and the last ones before the buffer began to drop met a full buffer: that
// is the depth. A buffer that took the whole burst is deeper than the plan ever needs
// (EQ_MAX_US, cc/controller.ts): no depth, as before. Random loss is not an overflow: the drop
// must last (DEPTH_RUN requests in a row lost, and at least half of those after them), and no
// request after it may have met more queue than those before it.
//
// Costs: one burst per link and direction per portal run, ~DEPTH_SPAN_MS of the link (about
// 500 KB at 20 Mbit/s), and the peer's small replies; metered links are never measured, nor a
// link that carried a flow already (its depth is learned from its losses, as before).
//
// No clock, no I/O: the runtime sends, and passes times and replies in.

/** A burst queues this much at the link's estimate: more than the most a plan equalises
 * (cc EQ_MAX_US, 150 ms). */
export const DEPTH_SPAN_MS = 200;
/** Requests in a burst, at least and at most (probe_seq holds 10 bits of index). */
export const DEPTH_MIN_LEN = 24;
export const DEPTH_MAX_LEN = 1023;
/** Lost requests in a row that begin an overflow (at 2 % random loss, 3 in a row come once in
 * ~125,000 requests). */
export const DEPTH_RUN = 3;
/** A burst that did not tell is tried again this much later, at most DEPTH_TRIES times. */
export const DEPTH_RETRY_MS = 2000;
export const DEPTH_TRIES = 3;
/** The depth is the median queue the last this many requests before the overflow met. */
const DEPTH_LAST = 3;
/** How long after it left a burst's replies are waited for (the burst's queue drains within
 * DEPTH_SPAN_MS; a round trip more). */
export const DEPTH_WAIT_MS = 1000;
/** The RP's burst on a link waits this long after its own capacity train is over, and
 * DEPTH_WAIT_MS after the last request of the LP's burst it saw: the LP's burst goes first
 * (right after its capacity train), and the two must not meet. Lab, both at once: the LP's burst
 * filled a link's up buffer while the RP's replies came up it, and the RP read a 50 ms buffer
 * as 35.9 and 43.7 ms from the lost replies. */
export const DEPTH_PEER_WAIT_MS = 1000;
/** A measured depth below this is none (the controller's own floor: depthMinUs). */
export const DEPTH_MIN_US = 10_000;

/** probe_seq of a depth train's request: DEPTH_SEQ_BASE | train number << 10 | index (capacity
 * trains use 0x8000_0000-0xbfff_ffff, train.ts). */
const DEPTH_SEQ_BASE = 0xc000_0000;
const INDEX_BITS = 10;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
const NO_MASK = 0xf_ffff;

/** How many requests of `outerBytes` queue DEPTH_SPAN_MS at `estimateBps`. */
export function depthLen(estimateBps: number, outerBytes: number): number {
  const n = Math.ceil((Math.max(0, estimateBps) * DEPTH_SPAN_MS) / 1000 / 8 / Math.max(1, outerBytes));
  return Math.max(DEPTH_MIN_LEN, Math.min(DEPTH_MAX_LEN, n + 1));
}

export interface DepthResult {
  /** the buffer's depth, µs of queue (null: none found: `none` says why) */
  depthUs: number | null;
  /** the most queue a request that arrived met, µs */
  maxQueueUs: number;
  replies: number;
  sent: number;
  /** the first request of the overflow (null: none) */
  overflowAt: number | null;
  /** why no depth: 'deep' (no overflow: the buffer took the burst), 'few' (fewer than
   * DEPTH_MIN_LEN / 2 replies to requests before the overflow), 'shallow' (under DEPTH_MIN_US),
   * 'mixed' (a request after the overflow met more queue) */
  none: 'deep' | 'few' | 'shallow' | 'mixed' | null;
}

/**
 * A burst's depth: `sentUs[i]` when request i left (our clock, µs), `stamps` the peer's stamp
 * of each request that arrived (index → u32 µs of its clock). The queue request i met is
 * (stamp_i − stamp_0) − (sent_i − sent_0), against the first request that arrived; the depth is
 * the most any request before the overflow met.
 */
export function depthOf(sentUs: readonly number[], stamps: ReadonlyMap<number, number>): DepthResult {
  const sent = sentUs.length;
  const idx = [...stamps.keys()].filter((i) => i < sent).sort((a, b) => a - b);
  let overflowAt: number | null = null;
  for (let i = 0, run = 0; i < sent && overflowAt === null; i++) {
    run = stamps.has(i) ? 0 : run + 1;
    if (run < DEPTH_RUN) continue;
    const from = i - DEPTH_RUN + 1;
    let lost = 0;
    for (let j = from; j < sent; j++) if (!stamps.has(j)) lost++;
    if (lost * 2 >= sent - from) overflowAt = from;
  }
  let maxQueueUs = 0;
  const last: number[] = []; // the queue the last DEPTH_LAST requests before the overflow met
  if (idx.length > 0) {
    const i0 = idx[0]!;
    const t0 = stamps.get(i0)!;
    for (const i of idx) {
      const q = ((stamps.get(i)! - t0) | 0) - (sentUs[i]! - sentUs[i0]!);
      maxQueueUs = Math.max(maxQueueUs, q);
      if (overflowAt !== null && i < overflowAt) last.push(q);
    }
  }
  // the buffer was full when the overflow began: the requests just before it met its depth (less
  // a packet or two); their median, not the most, so that one request sent later than its time
  // says (a send the socket or the qdisc held back) does not make the buffer deeper
  const before = last.length === 0 ? 0 : last.slice(-DEPTH_LAST).sort((a, b) => a - b)[Math.floor(Math.min(DEPTH_LAST, last.length) / 2)]!;
  // after the overflow what gets in meets a full buffer, no more: a later request that met more
  // means the losses were not the buffer's (replies lost on the way back, sends held up)
  // too few: the replies of the requests that got in before the overflow are what tell the
  // depth; those after it add nothing (lab, a 2 Mbit/s link's 50 ms buffer holds 8 requests: 8
  // to 10 replies came, or 12 when the sends were slow enough for 4 to drain, and those 12 read
  // 'mixed' from the 6 ms one request takes there)
  const none = overflowAt === null ? 'deep' : last.length < DEPTH_MIN_LEN / 2 ? 'few' : maxQueueUs > Math.max(0, ...last) * 1.1 + 2_000 ? 'mixed' : before < DEPTH_MIN_US ? 'shallow' : null;
  return { depthUs: none === null ? Math.round(before) : null, maxQueueUs: Math.round(maxQueueUs), replies: idx.length, sent, overflowAt, none };
}

/** What `mpctl status` shows of a link's depth train (docs/status-json.md `depthTrain`). */
export interface DepthStatus {
  depthMs: number | null;
  none: DepthResult['none'];
  replies: number;
  sent: number;
  maxQueueMs: number;
  tries: number;
  /** no more bursts: a depth found, none to find, or out of tries */
  over: boolean;
}

interface Running {
  no: number;
  atMs: number;
  outerBytes: number;
  sentUs: number[];
  /** our clock when the first request was timed (sent) */
  baseUs?: number;
  stamps: Map<number, number>;
}

interface LinkDepth {
  running: Running | null;
  /** over: a depth found, or none to find ('deep', 'shallow'), or out of tries */
  done: boolean;
  tries: number;
  /** the next try's earliest time */
  atMs: number;
  result: DepthResult | null;
}

export class DepthTrains {
  private readonly links = new Map<number, LinkDepth>();
  private no = 0;

  private link(id: number): LinkDepth {
    let l = this.links.get(id);
    if (!l) {
      l = { running: null, done: false, tries: 0, atMs: -Infinity, result: null };
      this.links.set(id, l);
    }
    return l;
  }

  /** Is link `id`'s burst due (not over, none in flight, spaced from the last try)? */
  due(id: number, nowMs: number): boolean {
    const l = this.link(id);
    return !l.done && l.running === null && nowMs >= l.atMs;
  }

  /** A burst of `len` requests padded to `outerBytes` leaves on link `id`: their probe_seq,
   * in sending order; sent() says when each one left. */
  start(id: number, nowMs: number, outerBytes: number, len: number): number[] {
    const l = this.link(id);
    this.no = (this.no + 1) & NO_MASK;
    const n = Math.max(1, Math.min(DEPTH_MAX_LEN, len));
    l.running = { no: this.no, atMs: nowMs, outerBytes, sentUs: new Array<number>(n).fill(0), stamps: new Map() };
    l.tries++;
    return Array.from({ length: n }, (_, i) => (DEPTH_SEQ_BASE | (this.no << INDEX_BITS) | i) >>> 0);
  }

  /** Request `i` of link `id`'s burst left at `atUs` (our clock, u32 µs: kept relative to the
   * first one timed). */
  sent(id: number, i: number, atUs: number): void {
    const r = this.links.get(id)?.running;
    if (!r || i < 0 || i >= r.sentUs.length) return;
    r.baseUs ??= atUs;
    r.sentUs[i] = (atUs - r.baseUs) | 0;
  }

  /** A request could not be sent (no session yet, a socket error): the burst is void and
   * tried again, not counted as a try. */
  failed(id: number): void {
    const l = this.links.get(id);
    if (l?.running) {
      l.running = null;
      l.tries--;
    }
  }

  /** Is `probeSeq` a depth train's (whatever link or train)? */
  static owns(probeSeq: number): boolean {
    return ((probeSeq >>> 0) & 0xc000_0000) >>> 0 === DEPTH_SEQ_BASE;
  }

  /** The peer's stamp of one request. false: not of a burst in flight on the link. */
  reply(id: number, probeSeq: number, tsUs: number): boolean {
    const r = this.links.get(id)?.running;
    if (!r || !DepthTrains.owns(probeSeq) || ((probeSeq >>> INDEX_BITS) & NO_MASK) !== r.no) return false;
    const i = probeSeq & INDEX_MASK;
    if (i >= r.sentUs.length || r.stamps.has(i)) return false;
    r.stamps.set(i, tsUs >>> 0);
    return true;
  }

  /** Bursts that are over (waited DEPTH_WAIT_MS): their results. */
  finish(nowMs: number): { id: number; result: DepthResult; outerBytes: number; again: boolean }[] {
    const out: { id: number; result: DepthResult; outerBytes: number; again: boolean }[] = [];
    for (const [id, l] of this.links) {
      const r = l.running;
      if (!r || nowMs - r.atMs < DEPTH_WAIT_MS) continue;
      l.running = null;
      l.result = depthOf(r.sentUs, r.stamps);
      // a burst whose replies did not tell (too few, or losses that were not the buffer's) is
      // tried again; a depth, or none to find (no overflow, a buffer too small), is the answer
      const again = (l.result.none === 'few' || l.result.none === 'mixed') && l.tries < DEPTH_TRIES;
      l.done = !again;
      l.atMs = nowMs + DEPTH_RETRY_MS;
      out.push({ id, result: l.result, outerBytes: r.outerBytes, again });
    }
    return out;
  }

  /** Link `id`'s latest result and whether the measuring is over (null: no burst over yet). */
  status(id: number): DepthStatus | null {
    const l = this.links.get(id);
    if (!l?.result) return null;
    const r = l.result;
    return { depthMs: r.depthUs === null ? null : r.depthUs / 1000, none: r.none, replies: r.replies, sent: r.sent, maxQueueMs: r.maxQueueUs / 1000, tries: l.tries, over: l.done };
  }
}
