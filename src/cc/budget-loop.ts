// Byte budgets of metered links in a running portal: the accounting of cc/budget.ts (what the
// ISP counts, both directions, per calendar period) turned into the data path's hard cap, in
// both directions.
//
// LP (BudgetKeeper): on every tick, for each link with a budget, read its counters
// (mp_link_stats), account them, and write mp_links[id].budget_bytes = what the scheduler has
// sent on it (mp_sched.sent_bytes) + what is left of the period's allowance. The scheduler
// (bpf/schedule.h) stops using the link the moment its own sending reaches that line; a new
// period (or a raised limit) moves the line up and the link comes back. What is left is also
// what the RP may still send on the link: every probe on it says so (probe.ts).
//
// RP (PeerAllowances): each probe's allowance becomes the RP's own line, remoteLine() of
// cc/budget.ts (its sending as the LP has counted it + the allowance), written with the link
// it learns from the same probe, so a link is never usable on the RP without its line. When
// the LP stops advertising:
//   - probes without the budget flag (the LP has no budget on the link, or is older than
//     budget advertisements): no cap, budget_bytes 0;
//   - no probes (lost, LP gone): the last line stays, so the RP sends at most the last
//     allowance, and liveness takes the link down after three probe intervals anyway;
//   - a probe older than one already applied (reordered): ignored, the newer line stays;
//   - RP restart: nothing is capped until the first probe, which is also what makes the link
//     usable, so no byte goes out uncapped.
//
// The LP's usage survives restarts (budget-store.ts): `saved()` here, `addLink(…, saved)`.
import type { Result } from 'neverthrow';
import { budgetStatus, initialBudget, onCounters, recordSent, remoteLine, type BudgetParams, type BudgetState, type BudgetStatus, type LinkCounters, type SavedBudget, type SentSample } from './budget.js';
import { seqNewer } from './feedback.js';
import type { MpSched } from '../datapath/abi.js';
import type { MpError } from '../errors.js';

export interface BudgetDatapath {
  counters(linkId: number): Result<LinkCounters | null, MpError>;
  sched(): Result<MpSched | null, MpError>;
  /** mp_links[id].budget_bytes (read-modify-write; 0 = no budget) */
  setBudget(linkId: number, bytes: bigint): Result<void, MpError>;
}

type Log = (msg: string, fields?: Record<string, unknown>) => void;

export interface LinkBudget {
  limitBytes: number;
  period: BudgetParams['period'];
  /** what a previous run used (budget-store.ts), counted if of the current period */
  saved?: SavedBudget;
}

/** Outer IP bytes of a control message (probe, feedback, handshake) of `udpPayload` bytes. */
export const controlWireBytes = (udpPayload: number, family: 4 | 6): number => udpPayload + 8 + (family === 6 ? 40 : 20);

export class BudgetKeeper {
  private readonly states = new Map<number, BudgetState>();
  private readonly written = new Map<number, bigint>();
  /** control messages this process sent / received on each link: the ISP counts them, the data
   * path's counters do not (they go through the portal's sockets, not encap/decap) */
  private readonly control = new Map<number, { tx: bigint; rx: bigint }>();
  private failures = 0;

  constructor(
    private readonly dp: BudgetDatapath,
    private readonly log: Log,
  ) {}

  /** A link with a budget (limitBytes 0: none, ignored); `b.saved`: what a previous run used
   * (counts only if it is of the current period). */
  addLink(id: number, b: LinkBudget, nowMs = Date.now()): void {
    if (b.limitBytes > 0 && !this.states.has(id)) this.states.set(id, initialBudget({ limitBytes: b.limitBytes, period: b.period, count: 'both', marginMs: 0 }, nowMs, b.saved));
  }

  /** What the peer may still send on link `id` this period (what is left of the budget, both
   * directions counted); null: the link has no budget. */
  allowance(id: number): number | null {
    const s = this.states.get(id);
    return s ? Math.max(0, Math.floor(s.params.limitBytes - s.usedBytes)) : null;
  }

  /** Each budgeted link's period and usage so far, to persist. */
  saved(): Map<number, SavedBudget> {
    return new Map([...this.states].map(([id, s]) => [id, { periodStartMs: s.periodStartMs, usedBytes: s.usedBytes }]));
  }

  has(id: number): boolean {
    return this.states.has(id);
  }

  /** A control message of `wireBytes` outer IP bytes went out on / came in on link `id`. */
  countControl(id: number, dir: 'tx' | 'rx', wireBytes: number): void {
    if (!this.states.has(id)) return;
    const c = this.control.get(id) ?? { tx: 0n, rx: 0n };
    c[dir] += BigInt(wireBytes);
    this.control.set(id, c);
  }

  tick(nowMs = Date.now()): void {
    if (this.states.size === 0) return;
    const sched = this.dp.sched();
    if (sched.isErr() || !sched.value) return this.fail('mp_sched read failed', { error: sched.isErr() ? sched.error : 'absent' });
    for (const [id, s0] of this.states) {
      const c = this.dp.counters(id);
      if (c.isErr() || !c.value) {
        this.fail('link counters read failed', { link: id });
        continue;
      }
      const ctl = this.control.get(id);
      const counted = ctl ? { ...c.value, txBytes: c.value.txBytes + ctl.tx, rxBytes: c.value.rxBytes + ctl.rx } : c.value;
      const { state, change } = onCounters(s0, counted, nowMs);
      this.states.set(id, state);
      const left = BigInt(Math.max(0, Math.floor(state.params.limitBytes - state.usedBytes)));
      const sent = sched.value.sentBytes[id] ?? 0n;
      // 0 would mean "no budget": a link with nothing left and nothing sent gets a line of 1 byte
      const line = sent + left > 0n ? sent + left : 1n;
      if (this.written.get(id) !== line) {
        const w = this.dp.setBudget(id, line);
        if (w.isErr()) this.fail('budget write failed', { link: id, error: w.error });
        else this.written.set(id, line);
      }
      if (change) this.log(`link ${id} budget ${change}`, { link: id, status: change, usedBytes: state.usedBytes, limitBytes: state.params.limitBytes });
    }
  }

  status(id: number, nowMs = Date.now()): { status: BudgetStatus; usedBytes: number; remainingBytes: number | null; renewsInMs: number | null } | null {
    const s = this.states.get(id);
    if (!s) return null;
    const { status, usedBytes, remainingBytes, renewsInMs } = budgetStatus(s, nowMs);
    return { status, usedBytes, remainingBytes, renewsInMs };
  }

  private fail(msg: string, fields: Record<string, unknown>): void {
    if (this.failures++ < 5) this.log(msg, fields);
  }
}

/** Without an applied advertisement for this long, a probe of any seq counts (LP restarted). */
const ADVERT_SEQ_RESET_US = 1_000_000;

/** RP: the LP's advertised allowances → this portal's budget lines (see the top). */
export class PeerAllowances {
  private readonly history = new Map<number, SentSample[]>();
  private readonly last = new Map<number, { seq: number; atUs: number; allowance: number | null }>();

  constructor(private readonly log: Log) {}

  /** On every tick: the scheduler's bytes sent per link (mp_sched.sent_bytes). */
  sample(sent: readonly bigint[], nowUs: number): void {
    sent.forEach((v, id) => this.history.set(id, recordSent(this.history.get(id) ?? [], { tUs: nowUs, sent: v })));
  }

  /**
   * A probe on link `id` (its round `probeSeq`) advertised `allowanceBytes` (null: no budget).
   * Returns the line to write into mp_links[id].budget_bytes (0n: no budget), or null when the
   * probe is older than one already applied (the line stays). `lagUs`: how far back the LP's
   * count reaches in our sending (round trip + queue + a tick).
   */
  onProbe(id: number, probeSeq: number, allowanceBytes: number | null, lagUs: number, nowUs: number): bigint | null {
    const prev = this.last.get(id);
    if (prev && !seqNewer(probeSeq, prev.seq) && nowUs - prev.atUs < ADVERT_SEQ_RESET_US) return null;
    this.last.set(id, { seq: probeSeq, atUs: nowUs, allowance: allowanceBytes });
    const was = prev?.allowance;
    if (allowanceBytes === null) {
      if (was !== undefined && was !== null) this.log(`link ${id} budget: the LP no longer advertises one, not capped`, { link: id });
      return 0n;
    }
    if (allowanceBytes === 0 && was !== 0) this.log(`link ${id} budget spent: the LP allows no more bytes on it this period`, { link: id, status: 'exhausted' });
    else if (allowanceBytes > 0 && (was === undefined || was === null || was === 0))
      this.log(`link ${id} budget: the LP allows ${allowanceBytes} more bytes on it this period`, { link: id, status: 'ok', allowanceBytes });
    return remoteLine(allowanceBytes, this.history.get(id) ?? [], nowUs, lagUs);
  }

  /** The last allowance the LP advertised on link `id` (null: none, or no budget). */
  allowance(id: number): number | null {
    return this.last.get(id)?.allowance ?? null;
  }
}
