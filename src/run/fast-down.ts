// Fast failure detection for busy links (README "Benchmarks", "link cut"). The probe rule (liveness.ts)
// needs ~3 silent probe intervals (300 ms) to call a link down; a link that carries data can be
// judged sooner from what the sender put on it against what the receiver's feedback (every
// 20 ms, cc/feedback.ts) says arrived. The sender samples the scheduler's per-link sequence
// (mp_sched.link_seq, with the backlog it modelled then) and, on each feedback message, calls
// link L dead when all of these hold:
//
//   1. the receiver's highest per-link sequence of L has not advanced for `stallUs` (sender
//      clock between feedback messages) — a queue, however long, still drains, and 2 % or 10 %
//      random loss still lets most packets through: either advances it;
//   2. at least `minDue` packets sent on L are due but not reported (or, once the stall has
//      lasted `fewStallUs`, at least `fewDue`: a link the scheduler gave only a trickle, whose
//      few packets and the end host's retransmissions of them were all lost, would otherwise
//      wait for the probes' 300 ms while every retransmission the scheduler puts there, on the
//      link that looks emptiest, is lost again: the sender's timeout doubles), sent before
//      now − (backlog modelled at the time + L's round trip + lag + `marginUs`), above both
//      the receiver's highest sequence and the sequence L had when it last came up. The lag is
//      how much longer than usual this very message took on its way back (its receiver
//      timestamp against its arrival, over the minimum of the link it came on: clocks are not
//      synchronised, only the variation counts): a feedback path that queues delays the
//      verdict instead of faking one;
//   3. the same message shows another link that is fine by the same measure: its highest
//      sequence advanced, or nothing we sent on it is due (we leave it idle: the ACKs of a
//      download all go on the link the scheduler finds fastest). If every other link is
//      overdue too, the trouble is not L's and nothing is decided. Without feedback at all (or
//      with one link) nothing is decided here either, and the probe rule applies.
//
// The portal then marks L down at once (as the probe timeout would) and holds it down until a
// probe heard after that moment brings it back (liveness.ts: heldUntil); a link that dies again
// soon after such a return is held a little longer each time (nextHoldMs), so a link that is
// dead one way only does not flap at the feedback rate.
//
// A stall looks like a cut until it ends: a radio link whose scheduler holds its queue for
// 50-100 ms (a hand-over, retransmissions at the radio layer) delivers nothing, then everything.
// So a verdict is also a claim that what was on the link is lost: when a later feedback shows the
// receiver's highest sequence of L past where it was at the verdict (packets sent before it
// arrived after all: the scheduler sends nothing on a link that is down), the verdict was wrong
// and L is revived at once (onFeedback's `revived`: the portal brings it back without waiting
// for a probe, and the wrong verdict does not count toward the next hold). A quicker rule (stall
// 25 ms, margin 15, 4 due: a verdict ~57 ms after a cut instead of ~77 in the synthetic trace of
// test/fast-down.test.ts) was measured with this and not kept (README, "flap").
//
// No clock, no I/O: times (µs of the sender's monotonic clock) and readings come in as
// arguments, so synthetic traces test it (test/fast-down.test.ts).

export interface FastDownParams {
  /** the receiver saw nothing new on the link for at least this long */
  stallUs: number;
  /** added to the link's round trip before a sent packet must show in feedback */
  marginUs: number;
  /** at least this many due packets missing */
  minDue: number;
  /** ... or this many once the stall has lasted fewStallUs */
  fewDue: number;
  fewStallUs: number;
  /** how far back the sender's samples are kept */
  historyUs: number;
}

export const DEFAULT_FAST_DOWN: FastDownParams = { stallUs: 50_000, marginUs: 40_000, minDue: 8, fewDue: 2, fewStallUs: 150_000, historyUs: 5_000_000 };

/** What the detector needs of one feedback record (cc/feedback.ts LinkFeedback). */
export interface RxReport {
  linkId: number;
  /** the receiver's highest per-link sequence so far (u32) */
  maxLinkSeq: number;
}

interface Sample {
  tUs: number;
  /** the scheduler's last per-link sequence number at tUs (u32) */
  seq: number;
  /** when that packet was expected to leave the sender's end of the link: tUs + modelled backlog */
  leaveUs: number;
}

/** The way back of feedback over one link: the smallest (arrival − receiver timestamp), u32 µs. */
interface BackPath {
  minOff: number;
  atUs: number;
}

/** How long a feedback path's minimum is kept before a newer sample replaces it. */
const BACK_MIN_WINDOW_US = 10_000_000;

interface Track {
  samples: Sample[];
  /** sequence when the link last (re)started: packets up to it never count as due */
  floorSeq: number | null;
  /** highest sequence the receiver reported, and when (sender clock) it last advanced */
  rxSeq: number | null;
  rxSinceUs: number;
}

/** s32 difference of two u32 sequence numbers: > 0 when a is ahead of b. */
const ahead = (a: number, b: number): number => (a - b) | 0;

/** What one feedback message decided: links dead by the rule, and links whose verdict it proved
 * wrong (their data arrives after all). */
export interface Verdicts {
  dead: number[];
  revived: number[];
}

export class FastDown {
  private readonly tracks = new Map<number, Track>();
  private readonly back = new Map<number, BackPath>();
  /** links called dead and not back since: the receiver's highest sequence at the verdict */
  private readonly verdicts = new Map<number, number>();

  constructor(private readonly p: FastDownParams = DEFAULT_FAST_DOWN) {}

  private track(id: number, tUs: number): Track {
    let t = this.tracks.get(id);
    if (!t) {
      t = { samples: [], floorSeq: null, rxSeq: null, rxSinceUs: tUs };
      this.tracks.set(id, t);
    }
    return t;
  }

  /** The scheduler's per-link sequence `seq` and its modelled backlog on the link at `tUs`. */
  sample(id: number, tUs: number, seq: number, backlogUs: number): void {
    const t = this.track(id, tUs);
    t.samples.push({ tUs, seq: seq >>> 0, leaveUs: tUs + Math.max(0, backlogUs) });
    // keep one sample older than the window: the due sequence of a long round trip
    while (t.samples.length > 1 && t.samples[1]!.tUs < tUs - this.p.historyUs) t.samples.shift();
  }

  /** The link came (back) up at `tUs` with the scheduler at `seq`: what it lost before does
   * not count, and its stall starts now. */
  restart(id: number, tUs: number, seq: number): void {
    const t = this.track(id, tUs);
    t.floorSeq = seq >>> 0;
    t.rxSinceUs = tUs;
    t.samples = [{ tUs, seq: seq >>> 0, leaveUs: tUs }];
    this.verdicts.delete(id);
  }

  /**
   * A feedback message taken at `tUs` (duplicates already dropped); `lagUs`: what backLag said
   * of it. `rttUs(id)`: the link's round trip (its forward delay plus the feedback's way
   * back). Returns the links that are dead by the rule above, in record order, and the links
   * called dead before whose data arrived after all.
   */
  onFeedback(tUs: number, records: readonly RxReport[], rttUs: (id: number) => number, lagUs: number): Verdicts {
    const lag = Math.max(0, lagUs);
    const advanced = new Set<number>();
    const revived: number[] = [];
    for (const r of records) {
      const t = this.track(r.linkId, tUs);
      const seq = r.maxLinkSeq >>> 0;
      if (t.rxSeq === null || ahead(seq, t.rxSeq) > 0) {
        if (t.rxSeq !== null) advanced.add(r.linkId);
        t.rxSeq = seq;
        t.rxSinceUs = Math.max(t.rxSinceUs, tUs);
      }
      const at = this.verdicts.get(r.linkId);
      if (at !== undefined && ahead(seq, at) > 0) {
        this.verdicts.delete(r.linkId);
        revived.push(r.linkId);
      }
    }
    // per link: fine (advanced, or nothing of ours due), or overdue and stalled
    const overdue = new Set<number>();
    const fine = new Set<number>();
    for (const r of records) {
      const t = this.tracks.get(r.linkId)!;
      const due = this.due(t, tUs, rttUs(r.linkId) + lag);
      if (advanced.has(r.linkId) || due === 0) fine.add(r.linkId);
      else {
        const stall = tUs - t.rxSinceUs;
        if ((stall >= this.p.stallUs && due >= this.p.minDue) || (stall >= this.p.fewStallUs && due >= this.p.fewDue)) overdue.add(r.linkId);
      }
    }
    const dead = [...overdue].filter((id) => [...fine].some((o) => o !== id));
    for (const id of dead) if (!this.verdicts.has(id)) this.verdicts.set(id, this.tracks.get(id)!.rxSeq!);
    return { dead, revived };
  }

  /** A feedback packet (duplicates too, so every path has its minimum) arrived at `tUs` over
   * link `via.linkId`, stamped `via.tsUs` (u32 µs) by the receiver: how much longer than that
   * path's minimum it took. */
  backLag(tUs: number, via: { linkId: number; tsUs: number }): number {
    const off = ((tUs >>> 0) - via.tsUs) >>> 0;
    const b = this.back.get(via.linkId);
    if (!b || ((off - b.minOff) | 0) <= 0 || tUs - b.atUs > BACK_MIN_WINDOW_US) {
      this.back.set(via.linkId, { minOff: off, atUs: tUs });
      return 0;
    }
    return (off - b.minOff) | 0;
  }

  /** Packets sent on the link that should have shown in feedback by `tUs` but have not. */
  private due(t: Track, tUs: number, rttUs: number): number {
    const by = tUs - Math.max(0, rttUs) - this.p.marginUs;
    let sent: number | null = null;
    for (const s of t.samples) if (s.leaveUs <= by && (sent === null || ahead(s.seq, sent) > 0)) sent = s.seq;
    if (sent === null || t.rxSeq === null) return 0;
    const base = t.floorSeq !== null && ahead(t.floorSeq, t.rxSeq) > 0 ? t.floorSeq : t.rxSeq;
    return Math.max(0, ahead(sent, base));
  }
}

export interface HoldParams {
  /** a fast-down within this long of the link's previous return doubles the hold */
  flapWindowMs: number;
  /** the first repeated hold, and the most any hold lasts */
  firstHoldMs: number;
  maxHoldMs: number;
}

export const DEFAULT_HOLD: HoldParams = { flapWindowMs: 2000, firstHoldMs: 200, maxHoldMs: 5000 };

/**
 * How long after a fast-down probes are ignored before they may bring the link back: 0 the
 * first time (the next probe heard does), doubling while the link keeps dying within
 * `flapWindowMs` of coming back. `sinceUpMs`: from the link's last return to this fast-down
 * (null: never returned from a fast-down).
 */
export function nextHoldMs(prevHoldMs: number, sinceUpMs: number | null, p: HoldParams = DEFAULT_HOLD): number {
  if (sinceUpMs === null || sinceUpMs > p.flapWindowMs) return 0;
  return Math.min(p.maxHoldMs, Math.max(p.firstHoldMs, 2 * prevHoldMs));
}
