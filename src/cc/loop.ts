// Congestion control in a running portal (README "Running a bond"): both halves, for whichever role.
//
//   receiver  every feedback interval (20 ms): read mp_rx of every known link, turn two
//             readings into one record per link (cc/feedback.ts) and send ONE feedback message,
//             carrying all links' records, on the two up links with the lowest one-way delay in
//             our sending direction (the runtime owns the sockets: `send`).
//   sender    on a feedback message from the peer: validate, drop duplicates (seq), run each
//             link's controller (cc/controller.ts) with what the link sent since its previous
//             feedback (mp_link_stats tx_bytes delta), then write every link's rate and delay
//             (outputs(): one frame for all links of the direction) into mp_links. On the same
//             timer, a link without feedback for a while is marked stale (onSilence).
//             Each controller is also told the backlog the scheduler planned on the link when
//             the interval's packets were sent (mp_sched.busy_until − now, sampled on every
//             tick and feedback, taken one round trip back): that queue is not congestion.
//             The same samples (with each link's sequence number) and each feedback message
//             feed the fast failure detector (fast-down.ts): a busy link whose packets stop
//             showing in feedback while the other links' do is reported (onLinkDead) well
//             before the probes' timeout.
//
// With `congestion_control = false` the controllers still run (status shows them) but nothing
// is written: each link keeps its configured rate and delay (static weights). Links with a byte
// budget are capped in the data path on the same timer (budget.ts): the LP's own budgets, and on
// the RP the allowances the LP advertises in its probes (`peer`).
//
// Times are µs of the monotonic clock that the data path stamps ts_us with (bpf_ktime_get_ns;
// process.hrtime in Node on Linux), so the feedback's echo gives round trips.
import * as cc from './controller.js';
import { decodeFeedbackPacket, encodeFeedbackPacket, feedbackFromCounters, seqNewer, snapshotAt, type LinkFeedback, type RxSnapshot } from './feedback.js';
import { decodeHdr, type MpRx, type MpSched } from '../datapath/abi.js';
import type { MpError } from '../errors.js';
import type { Result } from 'neverthrow';
import { BudgetKeeper, PeerAllowances, type BudgetDatapath, type LinkBudget } from './budget-loop.js';
import { FastDown } from '../run/fast-down.js';
import { createWriteStream, type WriteStream } from 'node:fs';

/** What the loop reads and writes in the data path (datapath.ts implements it). */
export interface CcDatapath extends BudgetDatapath {
  readRx(linkId: number): Result<MpRx | null, MpError>;
  txBytes(linkId: number): Result<bigint, MpError>;
  /** The link's current one-way-delay estimate in our sending direction (null: no link). */
  owdUs(linkId: number): Result<number | null, MpError>;
  /** The controller's rate and delay for our sending direction on link `linkId`
   * (read-modify-write: ifindex, state and the rest stay). noAcks: pure TCP ACKs avoid the link
   * (mp_link MP_LINK_F_NO_ACKS, cc.ackAvoid); fec: loss recovery (MP_LINK_F_FEC); hold: what
   * the data path plans the link at when the estimate is not live (hold_kbps, MP_LINK_F_HELD);
   * planCapMs: the most backlog the scheduler plans on the link (plan_cap_ms, cc.planCapUs; 0: none). */
  setEstimate(linkId: number, rateBps: bigint, owdUs: number, noAcks: boolean, fec?: boolean, hold?: Hold, planCapMs?: number): Result<void, MpError>;
  /** The scheduler's state (busy_until per link); null: not there. */
  sched(): Result<MpSched | null, MpError>;
  /** Runs `f` with the data path's reads (sched, txBytes, readRx, counters) taken from the last
   * snapshot however old it is, when there is one: no native read (the caller knows nothing
   * moved since). Absent: reads are as ever. */
  lastSnapshot?<T>(f: () => T): T;
}

export interface CcOptions {
  /** false: keep the configured rate and delay (config `congestion_control = false`) */
  adaptive?: boolean;
  /** per-link shaping (`shape`, run/shaper.ts LinkShaper): the rate the scheduler plans a link
   * at, and each link's pacing rate and bandwidth estimate (bits/s) whenever they are written to
   * the data path; `gainOf`: the share of those its class passes (the controller's shapeGain; 0:
   * that link is not shaped); `equalising`: the link plans a queue behind a slower one
   * (cc.equalising), else its class stays open */
  shape?: { gainOf(linkId: number): number; planned(linkId: number, pacingBps: bigint, equalising: boolean): bigint; update(linkId: number, pacingBps: number, bwBps: number, equalising: boolean): void };
  /** RP: cap our sending by the allowances the LP advertises (PeerAllowances) */
  peerBudgets?: boolean;
  /** a link we send on whose data stopped arriving (fast-down.ts): the runtime marks it down */
  onLinkDead?: (linkId: number) => void;
  /** a link onLinkDead called dead whose data arrived after all (a stall, not a cut): the
   * runtime brings it back without waiting for a probe */
  onLinkAlive?: (linkId: number) => void;
  /** feedback without news (no packet on any link since the last one) while packets move goes
   * at most this often (ms; default and cap FEEDBACK_IDLE_MS): the probe rate, not 50 a second;
   * while nothing moves, every FEEDBACK_QUIET_MS */
  idleFeedbackMs?: number;
  /** the clock (µs, monotonic; default monoUs): a port, so unit tests set the time by hand */
  clock?: () => number;
}

/** The controller as `mpctl status` shows it. */
export interface CcStatus {
  phase: cc.Phase;
  /** pacing rate written to mp_links, bit/s */
  rateBps: number;
  /** bandwidth estimate, bit/s */
  bwBps: number;
  /** delivery rate of the last feedback, bit/s */
  deliveryBps: number;
  queueMs: number;
  rttMs: number;
  lossPct: number;
  /** the link's one-way delay jitter, averaged over ~10 s (State.jitterAvg), ms; absent in the
   * status of a portal from before it */
  jitterMs?: number;
  /** the average marks the link jittery: a shaping link does not equalise against it (cc.equalising) */
  jittery?: boolean;
  /** the link's buffer depth, ms of queue, learned from a loss under a standing queue
   * (State.depthUs; null: none yet, no plan cap); absent in the status of a portal from before it */
  depthMs?: number | null;
  /** the link's random loss (State.lossBase: what it loses without a queue), %; what parity
   * (FEC_LOSS), the lossy share cap and the ACK path follow; absent before it */
  randomLossPct?: number;
  stale: boolean;
  /** feedback records this link's controller has taken */
  feedback: number;
}

export interface CcCounters {
  fbSent: number;
  fbHeard: number;
  fbDup: number;
  fbBad: number;
}

type Log = (msg: string, fields?: Record<string, unknown>) => void;

/** A link's held rate (mp_link.hold_kbps) and whether it is held now (MP_LINK_F_HELD). */
export interface Hold {
  kbps: number;
  held: boolean;
}
export const NO_HOLD: Hold = { kbps: 0, held: false };
/** A held link is planned at this share of its bandwidth estimate (README "The data path
 * outlives its control plane"): under the link's real rate even where the estimate is a few per
 * cent high, so the scheduler's limited queue, not the link's, is the flow's bottleneck. */
export const HOLD_SHARE = 0.98;

export const FEEDBACK_INTERVAL_MS = 20;
/** Feedback without news while packets move (busy()), at most this often: under
 * controller.ts staleAfterUs, so a peer whose packets reach us, or whose feedback shows ours
 * arriving, keeps fresh estimates. */
export const FEEDBACK_IDLE_MS = 100;
/** Feedback without news while nothing moves at either end goes this often: the peer's control
 * plane hears that ours is alive and nothing more. At the probe rate it was a quarter to a third
 * of an idle portal's time (side by side, 3 links, medians: LP 1.28 -> 0.98 %, RP 1.17 -> 0.78 %;
 * README `cpu`). */
export const FEEDBACK_QUIET_MS = 500;
/** A peer's estimates go stale after this long without feedback while we are quiet, or busy for
 * less than FEEDBACK_QUIET_MS (the peer may still be at its quiet rate): two quiet messages
 * lost and a half. Busy for longer, controller.ts staleAfterUs. */
export const QUIET_STALE_MS = 2.5 * FEEDBACK_QUIET_MS;
/** The run loop keeps the feedback interval this long after packets last moved (busy()): a
 * flow's short pauses do not slow it down; an idle portal ticks at the probe rate. */
export const BUSY_HOLD_MS = 100;
/** After the peer's packets stop arriving while ours still go out, feedback keeps the busy rate
 * and its copies this long: the silence is what the peer's fast detector must hear. A download's
 * ACKs all on the link that died (`flap`): the RP's feedback fell to the idle rate, one copy, on
 * that same dead link, and the LP heard nothing for 190 ms while the server waited for ACKs. */
export const SILENCE_REPORT_MS = 1000;
/** Each feedback message goes out on this many links (the fastest up ones). */
export const FEEDBACK_COPIES = 2;
/** Without an accepted feedback message for this long, any seq is accepted (peer restarted). */
const SEQ_RESET_US = 1_000_000;

/** Did packets arrive, or go missing, on some link in these records? */
const hasNews = (records: readonly LinkFeedback[]): boolean => records.some((r) => r.packets !== 0 || r.lost !== 0);
const sameSet = (a: ReadonlySet<number>, b: ReadonlySet<number>): boolean => a.size === b.size && [...a].every((x) => b.has(x));

export const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * The plan cap written for a link planned at `plannedBps` (mp_link.plan_cap_ms; 0: none): the
 * scheduler counts its backlog at the rate it plans, so where that is above the link's estimate
 * (a startup's 2×, a probe's 1.25×) the same planned milliseconds are more real ones, and the
 * cap shrinks by as much: what really queues stays within the buffer. Lab, `mismatch` with the
 * depth known before the first flow (session 28): the 60 ms link in its startup was planned at
 * 36.4 Mbit/s with 43.8 ms of backlog under a 44 ms cap, the buffer (50 ms at 20 Mbit/s)
 * overflowed, the CUBIC upload halved its window, and the link carried next to nothing for 5 s
 * (the flow at 22.1 Mbit/s). Never 0 where there is a cap.
 */
export function planCapMs(s: cc.State, plannedBps: bigint): number {
  const capUs = cc.planCapUs(s);
  if (capUs <= 0) return 0;
  const planned = Number(plannedBps);
  const scale = planned > 0 ? Math.min(1, cc.bwBps(s) / planned) : 1;
  return Math.max(1, Math.ceil((capUs * scale) / 1000));
}

export class CcLoop {
  private readonly states = new Map<number, cc.State>();
  private readonly fbCount = new Map<number, number>();
  private readonly lastTx = new Map<number, bigint>();
  private readonly prevRx = new Map<number, RxSnapshot>();
  /** Per link: the scheduler's modelled backlog over the last second, oldest first. */
  private readonly backlog = new Map<number, { tUs: number; us: number }[]>();
  private seq = (Math.random() * 0x1_0000_0000) >>> 0;
  private lastSeq: number | null = null;
  private lastAcceptUs = 0;
  private lastBuiltUs = 0;
  /** when packets last moved (busy()), and each link's sequence at the last sample */
  private movedUs = -Infinity;
  /** when the current busy period began (moved() while not busy) */
  private busySinceUs = -Infinity;
  /** when our own packets last went out (a sample saw a link's sequence advance), and when the
   * peer's last arrived (a feedback record with packets) */
  private sentUs = -Infinity;
  private newsUs = -Infinity;
  private readonly txSeq = new Map<number, number>();
  readonly counters: CcCounters = { fbSent: 0, fbHeard: 0, fbDup: 0, fbBad: 0 };
  private failures = 0;
  readonly budgets: BudgetKeeper;
  /** RP: the LP's advertised allowances (null on the LP) */
  readonly peer: PeerAllowances | null;
  private readonly fastDown = new FastDown();
  /** links that came back up, and the scheduler's sequence number on them at that moment */
  private readonly restartSeq = new Map<number, number>();
  /** links pure ACKs avoid (cc.ackAvoid), as last written */
  private noAcks = new Set<number>();
  /** links that send loss-recovery parity (cc.fecLinks, mp_link MP_LINK_F_FEC), as last written */
  private fec = new Set<number>();
  /** shaped links that plan an equalising queue (cc.equalising): their classes shape */
  private eq = new Set<number>();
  /** links whose controller a capacity train started (seedRate): their output rules before feedback */
  private readonly seeded = new Set<number>();

  constructor(
    private readonly dp: CcDatapath,
    private readonly log: Log,
    private readonly opts: CcOptions = {},
  ) {
    this.budgets = new BudgetKeeper(dp, log);
    this.peer = opts.peerBudgets ? new PeerAllowances(log) : null;
    this.clock = opts.clock ?? monoUs;
    // the trace's first line: the wall clock at its time `t` (ms), and which portal process it is
    this.trace?.write(`${JSON.stringify({ t: Math.round((monoUs() - this.traceT0) / 1000), wallMs: Date.now(), pid: process.pid, argv: process.argv.slice(2).join(' ') })}\n`);
  }

  private readonly clock: () => number;
  /** MPCTL_CC_TRACE=<path prefix>: one JSON line per link and feedback record (diagnostics),
   * after a first line that ties its clock to the wall clock (lab bench's MPCTL_BENCH_KEEP) */
  private readonly trace: WriteStream | null = process.env.MPCTL_CC_TRACE ? createWriteStream(`${process.env.MPCTL_CC_TRACE}.${process.pid}.jsonl`) : null;
  private readonly traceT0 = monoUs();

  /** RP: the budget line for link `id` from a probe's allowance (PeerAllowances.onProbe), looking
   * back a round trip, the queue and two feedback intervals (the LP's reading is up to one old,
   * our samples one apart); 300 ms before the controller knows the link. `atUs`: when the probe
   * arrived (the data path recorded it: bpf/probe.h). */
  peerLine(id: number, probeSeq: number, allowanceBytes: number | null, atUs: number = this.clock()): bigint | null {
    if (!this.peer) return null;
    const st = this.status(id);
    const lagMs = st && st.feedback > 0 ? st.rttMs + st.queueMs + 2 * FEEDBACK_INTERVAL_MS : 300;
    return this.peer.onProbe(id, probeSeq, allowanceBytes, Math.min(2000, Math.max(40, lagMs)) * 1000, atUs);
  }

  /** A link we send on: its controller starts from this estimate (LP: the configured rate and
   * delay; RP: what the LP's probe said). Repeating it for a known link changes only its delay
   * hint, and only while the link has measured no round trip (the LP's probes carry the delay it
   * measured: measuredOwdUs). */
  addLink(id: number, init: { rateBps: number; owdUs: number; budget?: LinkBudget }): void {
    if (init.budget) this.budgets.addLink(id, init.budget);
    const owdUs = Math.max(init.owdUs, 100);
    const known = this.states.get(id);
    if (known) {
      // the delay only, and only while the link has measured none (cc.withOwdHint)
      this.setState(id, cc.withOwdHint(known, owdUs));
      return;
    }
    const now = this.clock();
    this.setState(id, cc.initial({ initialRateBps: Math.max(init.rateBps, cc.DEFAULT_CC.minRateBps), owdUs, rttUs: Math.max(2 * owdUs, 1000), shapeGain: this.opts.shape?.gainOf(id) ?? 0 }, now));
    const tx = this.dp.txBytes(id);
    if (tx.isOk()) this.lastTx.set(id, tx.value);
  }

  /**
   * A probe's round trip on link `id` (out and back on the link itself): the controller's
   * delay for a link that has not carried data yet. Without it, a link whose delay is neither
   * configured nor measured by feedback stays at the default hint (10 ms), and the scheduler
   * and the ACK rules (cc.ackAvoid, bpf/schedule.h) learn its real delay only once something
   * crossed it, in the middle of a flow: lab, 30/4 + 10/22 + 4/150 ms without rates or delays,
   * the LP of a BBR download moved its pure ACKs from the 22 ms link to the 150 ms one as soon as
   * that one's delay showed, and the flow's round trip jumped from 26 to 154 ms under BBR's 10 s
   * min-RTT filter (36 → 1.2 Mbit/s). Known from the first probe, every link's delay is in place
   * before the first flow.
   */
  onProbeRtt(id: number, rttUs: number): void {
    const s = this.states.get(id);
    if (s) this.setState(id, cc.onRtt(s, rttUs, this.clock()));
  }

  /** The one-way delay link `id` measured (half its min round trip, probes included; null: none
   * yet). The LP's probes carry it: the RP learns a link's delay from its own data's feedback
   * only, so without it the RP's first pure ACKs took every link at the same 10 ms hint (no delay
   * configured), some of them the 10 ms link of the demo's links, and the first CUBIC flow
   * through the bond kept a 20 ms min RTT against 50-80 ms under load: HyStart ended its slow
   * start at 49 packets (lab, discover-demo, 41 % of the sum). */
  measuredOwdUs(id: number): number | null {
    const s = this.states.get(id);
    return s ? cc.measuredOwdUs(s) : null;
  }

  /** Has this link's controller taken feedback (so its output, not a static estimate, rules)? */
  active(id: number): boolean {
    return (this.fbCount.get(id) ?? 0) > 0;
  }

  /** A capacity train's measurement of link `id` (run/train.ts), whose rate nobody configured
   * or configured far off (train.ts startFromTrain): its controller starts from it, and the data path plans the link at it from now on, before
   * any feedback (as it would a configured rate). A link whose feedback has shown packets of
   * ours delivered measures itself already: false, nothing changes (idle feedback, which comes
   * from the moment the peer hears us, does not count). */
  seedRate(id: number, rateBps: number): boolean {
    const s = this.states.get(id);
    if (!s || !cc.unmeasured(s)) return false;
    this.setState(id, cc.withRateHint(s, rateBps, this.clock()));
    this.seeded.add(id);
    this.write();
    return true;
  }
  /** A depth train's measurement of link `id`'s buffer, µs (run/depth.ts): the scheduler plans
   * at most that less a margin on it (plan_cap_ms) before any flow overflowed it. A depth
   * learned already stays: false. */
  seedDepth(id: number, depthUs: number): boolean {
    const s = this.states.get(id);
    if (!s) return false;
    const n = cc.withDepth(s, depthUs);
    if (n === s) return false;
    this.setState(id, n);
    this.write();
    return true;
  }
  /** Has link `id` carried packets of ours yet (its feedback showed some: cc.unmeasured)? */
  carried(id: number): boolean {
    const s = this.states.get(id);
    return s !== undefined && !cc.unmeasured(s);
  }
  /** Link `id`'s bandwidth estimate, bit/s (0: no controller). */
  estimateBps(id: number): number {
    const s = this.states.get(id);
    return s ? cc.bwBps(s) : 0;
  }

  /** Might link `id` carry more than its estimate (cc.roomSuspected: a re-train is worth it)? */
  roomSuspected(id: number): boolean {
    const s = this.states.get(id);
    return s !== undefined && this.active(id) && cc.roomSuspected(s);
  }

  /** A re-train measured link `id` at `rateBps` (run/train.ts): more than `off` times its
   * estimate raises it (cc.raiseFromTrain) and the data path plans the link at it at once.
   * Returns whether it did. */
  raiseFromTrain(id: number, rateBps: number, off: number): boolean {
    const s = this.states.get(id);
    if (!s || !this.active(id)) return false;
    const n = cc.raiseFromTrain(s, rateBps, this.clock(), off);
    if (n === s) return false;
    this.setState(id, n);
    this.write();
    return true;
  }

  private rules(id: number): boolean {
    return this.active(id) || this.seeded.has(id);
  }

  /** The controller's current output for a link that has taken feedback or a train's
   * measurement (null otherwise). */
  output(id: number): cc.Output | null {
    const s = this.states.get(id);
    if (!s || !this.rules(id)) return null;
    // the RP asks for every request it takes (each link every probe interval): all links'
    // outputs are worked out once per change of some state, not per request. With the links
    // that send parity, as write() tells the scheduler: without them (before), each LP request
    // had the RP write a link with parity at the share its raw loss allows (1 %: 5 %), until
    // the next feedback's write; downloads over 2x20 with 1 % loss on one got 66-77 % of the
    // sum, uploads 82-87 (README "Loss recovery").
    this.outputsCache ??= cc.outputs(this.states, this.fec);
    return this.outputsCache.get(id) ?? null;
  }
  private outputsCache: Map<number, cc.Output> | null = null;
  /** Every change of a controller's state goes through here (output's cache follows it). */
  private setState(id: number, s: cc.State): void {
    if (this.states.get(id) === s) return;
    this.states.set(id, s);
    this.outputsCache = null;
  }

  status(id: number): CcStatus | null {
    const s = this.states.get(id);
    if (!s) return null;
    const e = cc.estimate(s);
    return {
      phase: e.phase,
      rateBps: Math.round(e.rateBps),
      bwBps: Math.round(e.bwBps),
      deliveryBps: Math.round(e.deliveryBps),
      queueMs: e.queueUs / 1000,
      rttMs: e.rttUs / 1000,
      lossPct: e.lossRate * 100,
      jitterMs: s.jitterAvg.us / 1000,
      jittery: s.jitterAvg.jittery,
      depthMs: s.depthUs === null ? null : s.depthUs / 1000,
      randomLossPct: s.lossBase * 100,
      stale: e.stale,
      feedback: this.fbCount.get(id) ?? 0,
    };
  }

  // ---- receiver ----------------------------------------------------------------------------

  /** Feedback (50 messages a second) goes on metered links only when too few unmetered ones are
   *  up, and never on a spent one: the ISP counts it. 0 unmetered, 1 metered, 2 spent; the
   *  budget is the LP's own or, on the RP, the allowance the LP advertised. */
  private meteredCost(id: number): 0 | 1 | 2 {
    const left = this.budgets.has(id) ? this.budgets.allowance(id) : (this.peer?.allowance(id) ?? null);
    if (left === null) return 0;
    return left > 0 ? 1 : 2;
  }

  /**
   * One feedback interval: records for `links` (the links we receive on) and the message to
   * send, one copy on each of the FEEDBACK_COPIES up links with the lowest one-way delay (the
   * sender keeps the first copy by seq): a link that dies does not take the feedback with it,
   * which is what tells the sender which link died (fast-down.ts). Empty when there is nothing
   * to send (no baseline reading yet, or no link up).
   */
  buildFeedback(links: readonly number[], isUp: (id: number) => boolean): { linkId: number; packet: Buffer }[] {
    const now = this.clock();
    const records: LinkFeedback[] = [];
    for (const id of links) {
      const r = this.dp.readRx(id);
      if (r.isErr()) {
        this.fail('mp_rx read failed', { link: id, error: r.error });
        continue;
      }
      if (!r.value) continue;
      const cur = { ...r.value, linkId: id };
      const prev = this.prevRx.get(id);
      if (prev) records.push(feedbackFromCounters(prev, cur, now));
      this.prevRx.set(id, snapshotAt(cur, now));
    }
    if (records.length === 0) return [];
    // nothing arrived anywhere since the last message: say so only at the idle rate while our
    // packets move, at the quiet rate while nothing does (less half an interval: the idle loop
    // wakes at the probe rate, a wake a little early still sends)
    const idleMs = this.busy() ? Math.min(this.opts.idleFeedbackMs ?? FEEDBACK_IDLE_MS, FEEDBACK_IDLE_MS) : FEEDBACK_QUIET_MS;
    const idleUs = 1000 * (idleMs - FEEDBACK_INTERVAL_MS / 2);
    const news = hasNews(records);
    // the peer's packets just stopped while ours go on: that is news to the peer (SILENCE_REPORT_MS)
    const silence = !news && now - this.sentUs < BUSY_HOLD_MS * 1000 && now - this.newsUs < SILENCE_REPORT_MS * 1000;
    if (news) {
      this.moved(now);
      this.newsUs = now;
    }
    else if (!silence && now - this.lastBuiltUs < idleUs) return [];
    this.lastBuiltUs = now;
    const usable: { id: number; owd: number; cost: number }[] = [];
    for (const id of links) {
      const cost = this.meteredCost(id);
      if (!isUp(id) || cost === 2) continue;
      const o = this.dp.owdUs(id);
      if (o.isOk() && o.value !== null) usable.push({ id, owd: o.value, cost });
    }
    if (usable.length === 0) return [];
    this.seq = (this.seq + 1) >>> 0;
    const msg = { seq: this.seq, records };
    return usable
      .sort((a, b) => a.cost - b.cost || a.owd - b.owd)
      .slice(0, news || silence ? FEEDBACK_COPIES : 1) // idle: no link's death shows in it, one copy
      .map(({ id }) => ({ linkId: id, packet: encodeFeedbackPacket(msg, id, now >>> 0) }));
  }

  /**
   * Did packets move on any link lately (within BUSY_HOLD_MS): our data sent (the scheduler's
   * per-link sequence advanced at a tick), data received (feedback records with packets), or
   * feedback from the peer that shows our packets arriving? The run loop ticks every
   * FEEDBACK_INTERVAL_MS while they do and at the probe rate while nothing moves.
   */
  busy(): boolean {
    return this.clock() - this.movedUs < BUSY_HOLD_MS * 1000;
  }

  private moved(nowUs: number): void {
    if (nowUs - this.movedUs >= BUSY_HOLD_MS * 1000) this.busySinceUs = nowUs;
    this.movedUs = nowUs;
  }

  /** A link came (back) up: the fast detector forgets what it lost before. */
  linkUp(id: number): void {
    const r = this.dp.sched();
    if (r.isErr() || !r.value) return;
    this.fastDown.restart(id, this.clock(), r.value.linkSeq[id] ?? 0);
    this.restartSeq.set(id, r.value.linkSeq[id] ?? 0);
  }

  /** The first record with packets after a link came back: the sequence numbers it skips up
   * to the restart are what was sent into the dead link before it was taken out, not loss of
   * this interval (counted as such, they cut the link's rate to a fraction of what it carried
   * just after the return, and the total took seconds to recover). */
  private sinceRestart(r: LinkFeedback): LinkFeedback {
    const floor = this.restartSeq.get(r.linkId);
    if (floor === undefined || r.packets === 0) return r;
    this.restartSeq.delete(r.linkId);
    return { ...r, lost: Math.max(0, Math.min(r.lost, ((r.maxLinkSeq - floor) | 0) - r.packets)) };
  }

  sent(): void {
    this.counters.fbSent++;
  }

  // ---- sender ------------------------------------------------------------------------------

  /** A feedback packet from the peer (any link). false: malformed (the caller counts it). */
  onFeedbackPacket(b: Buffer): boolean {
    const d = decodeFeedbackPacket(b);
    if (d.isErr()) {
      this.counters.fbBad++;
      return false;
    }
    const { msg } = d.value;
    // nothing moved either way (the message has no news, our last tick saw nothing sent): the
    // data path's last snapshot (one tick old at most) reads as a fresh one would, without a
    // native read per message
    if (this.dp.lastSnapshot && !this.busy() && !hasNews(msg.records)) return this.dp.lastSnapshot(() => this.takeFeedback(b, d.value));
    return this.takeFeedback(b, d.value);
  }

  private takeFeedback(b: Buffer, d: { linkId: number; msg: { seq: number; records: LinkFeedback[] } }): boolean {
    const now = this.clock();
    this.sampleBacklog(now);
    const { msg } = d;
    const lag = this.fastDown.backLag(now, { linkId: d.linkId, tsUs: decodeHdr(b).tsUs });
    if (this.lastSeq !== null && !seqNewer(msg.seq, this.lastSeq) && now - this.lastAcceptUs < SEQ_RESET_US) {
      this.counters.fbDup++;
      return true;
    }
    this.lastSeq = msg.seq;
    this.lastAcceptUs = now;
    this.counters.fbHeard++;
    if (hasNews(msg.records)) this.moved(now);
    let changed = false;
    for (const r0 of msg.records) {
      const s = this.states.get(r0.linkId);
      if (!s) continue; // a link we do not send on (yet)
      const r = this.sinceRestart(r0);
      const tx = this.dp.txBytes(r.linkId);
      let sentBytes = 0n;
      if (tx.isOk()) {
        const prev = this.lastTx.get(r.linkId);
        sentBytes = prev !== undefined && tx.value >= prev ? tx.value - prev : 0n;
        this.lastTx.set(r.linkId, tx.value);
      }
      const planned = this.plannedUs(r.linkId, now - cc.estimate(s).rttUs, r.intervalUs);
      // another link carries the flows too: this one does not probe while they load it (cc.loadedAtEstimate)
      let othersCarry = false;
      for (const [id, o] of this.states) othersCarry ||= id !== r.linkId && cc.carries(o);
      const next = cc.onFeedback(s, r, sentBytes, now, planned, othersCarry);
      this.setState(r.linkId, next);
      this.trace?.write(`${JSON.stringify({ t: Math.round((now - this.traceT0) / 1000), l: r.linkId, ph: next.phase[0]! + next.cycleIndex, bw: Math.round(cc.bwBps(next) / 1e5) / 10, rate: Math.round(next.rateBps / 1e5) / 10, dlv: Math.round(next.deliveryBps / 1e5) / 10, q: Math.round(next.queueUs / 100) / 10, pl: Math.round(planned / 100) / 10, sent: Math.round((Number(sentBytes) * 8) / r.intervalUs * 10) / 10, pk: r.packets, lost: r.lost, rtt: Math.round(cc.estimate(next).rttUs / 100) / 10, oc: othersCarry ? 1 : 0, cap: Math.round(cc.planCapUs(next) / 100) / 10, lb: Math.round(next.lossBase * 1e4) / 100, j: Math.round(next.jitterUs / 100) / 10, ja: Math.round(next.jitterAvg.us / 100) / 10, jy: next.jitterAvg.jittery ? 1 : 0, ow: Math.round((cc.outputs(this.states, this.fec).get(r.linkId)?.owdUs ?? 0) / 100) / 10 })}\n`);
      this.fbCount.set(r.linkId, (this.fbCount.get(r.linkId) ?? 0) + 1);
      changed = true;
    }
    if (changed) this.write();
    const rtt = (id: number) => {
      const s = this.states.get(id);
      return s ? cc.estimate(s).rttUs : 0;
    };
    const v = this.fastDown.onFeedback(now, msg.records, rtt, lag);
    for (const id of v.revived) if (this.states.has(id)) this.opts.onLinkAlive?.(id);
    for (const id of v.dead) if (this.states.has(id)) this.opts.onLinkDead?.(id);
    return true;
  }

  /** On the feedback timer: links without feedback go stale. */
  tick(): void {
    const now = this.clock();
    this.sampleBacklog(now);
    // quiet, or just busy: the peer's feedback may still come at its quiet rate
    const quiet = !this.busy() || now - this.busySinceUs < FEEDBACK_QUIET_MS * 1000;
    let silenced = false;
    for (const [id, s] of this.states) {
      const next = quiet ? cc.onSilence(s, now, Math.max(QUIET_STALE_MS * 1000, s.params.staleAfterUs)) : cc.onSilence(s, now);
      silenced ||= next.stale && !s.stale;
      this.setState(id, next);
    }
    if (silenced) this.write(); // a link without feedback is held from now on (hold())
    this.budgets.tick();
  }

  /** Link `id`'s hold (mp_link.hold_kbps, MP_LINK_F_HELD): HOLD_SHARE of its hold rate (cc.holdBps: the bandwidth estimate, or the median loaded delivery of the last second if lower),
   * held while it gets no feedback (stale: the peer's control plane may be gone); none before
   * the controller has measured the link. */
  private hold(id: number, s: cc.State): Hold {
    const bw = cc.holdBps(s);
    if (!(bw > 0) || !this.fbCount.get(id)) return NO_HOLD;
    return { kbps: (bw * HOLD_SHARE) / 1000, held: s.stale };
  }

  private sampleBacklog(nowUs: number): void {
    const r = this.dp.sched();
    if (r.isErr() || !r.value) return;
    this.peer?.sample(r.value.sentBytes, nowUs);
    for (const id of this.states.keys()) {
      const seq = r.value.linkSeq[id] ?? 0;
      if (this.txSeq.get(id) !== seq) {
        this.txSeq.set(id, seq);
        this.moved(nowUs);
        this.sentUs = nowUs;
      }
      const until = Number(r.value.busyUntilNs[id] ?? 0n) / 1000;
      const h = this.backlog.get(id) ?? [];
      h.push({ tUs: nowUs, us: Math.max(0, until - nowUs) });
      this.fastDown.sample(id, nowUs, r.value.linkSeq[id] ?? 0, until - nowUs);
      while (h.length > 0 && nowUs - h[0]!.tUs > 1_000_000) h.shift();
      this.backlog.set(id, h);
    }
  }

  /** The smallest modelled backlog of link `id` over [endUs − spanUs, endUs] (the samples
   * around it when none falls inside); 0 without samples. */
  private plannedUs(id: number, endUs: number, spanUs: number): number {
    const h = this.backlog.get(id) ?? [];
    let best: number | null = null;
    let before: number | null = null;
    let after: number | null = null;
    for (const x of h) {
      if (x.tUs < endUs - spanUs) before = x.us;
      else if (x.tUs <= endUs) best = best === null ? x.us : Math.min(best, x.us);
      else if (after === null) after = x.us;
    }
    if (best !== null) return best;
    if (before !== null && after !== null) return Math.min(before, after);
    return before ?? after ?? 0;
  }

  private write(): void {
    if (this.opts.adaptive === false) return;
    this.noAcks = cc.ackAvoid(this.states, this.noAcks, this.clock());
    const fec = cc.fecLinks(this.states, this.fec);
    if (!sameSet(fec, this.fec)) this.outputsCache = null;
    this.fec = fec;
    const outs = cc.outputs(this.states, this.fec);
    if (this.opts.shape) this.eq = cc.equalising(this.states, outs, this.eq);
    for (const [id, o] of outs) {
      if (!this.rules(id)) continue; // keep the static estimate until feedback (or a train) arrives
      let s = this.states.get(id)!;
      const eq = this.eq.has(id);
      // a shaped link is planned at what its class passes (run/shaper.ts), and its controller
      // knows its deliveries are the class's (CcParams.shapeGain)
      const gain = this.opts.shape && eq ? this.opts.shape.gainOf(id) : 0;
      if (this.opts.shape && s.params.shapeGain !== gain) {
        s = { ...s, params: { ...s.params, shapeGain: gain } };
        this.setState(id, s);
      }
      const rate = this.opts.shape ? this.opts.shape.planned(id, o.rateBps, eq) : o.rateBps;
      const w = this.dp.setEstimate(id, rate, o.owdUs, this.noAcks.has(id), this.fec.has(id), this.hold(id, s), planCapMs(s, rate));
      if (w.isErr()) this.fail('link estimate write failed', { link: id, error: w.error });
      this.opts.shape?.update(id, Math.max(Number(o.rateBps), cc.classProbeBps(s)), cc.bwBps(s), eq);
    }
  }

  private fail(msg: string, fields: Record<string, unknown>): void {
    // a map that cannot be read or written is a bug or a torn-down portal: say it a few times
    if (this.failures++ < 5) this.log(msg, fields);
  }
}
