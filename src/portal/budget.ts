// Byte budgets of metered links in a running portal: the accounting of cc/budget.ts (what the
// ISP counts, both directions, per calendar period) turned into the data path's hard cap.
//
// On every tick, for each link with a budget: read its counters (mp_link_stats), account them,
// and write mp_links[id].budget_bytes = what the scheduler has sent on it (mp_sched.sent_bytes)
// + what is left of the period's allowance. The scheduler (bpf/schedule.h) stops using the link
// the moment its own sending reaches that line, so the allowance is never overrun by more than
// the other direction's bytes between two ticks; a new period (or a raised limit) moves the
// line up and the link comes back. What the peer sends to us on the link is counted but only
// our direction is capped here (the peer portal has no budget config).
import type { Result } from 'neverthrow';
import { budgetStatus, initialBudget, onCounters, type BudgetParams, type BudgetState, type BudgetStatus, type LinkCounters } from '../cc/budget.js';
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
}

export class BudgetKeeper {
  private readonly states = new Map<number, BudgetState>();
  private readonly written = new Map<number, bigint>();
  private failures = 0;

  constructor(
    private readonly dp: BudgetDatapath,
    private readonly log: Log,
  ) {}

  /** A link with a budget (limitBytes 0: none, ignored). */
  addLink(id: number, b: LinkBudget, nowMs = Date.now()): void {
    if (b.limitBytes > 0 && !this.states.has(id)) this.states.set(id, initialBudget({ limitBytes: b.limitBytes, period: b.period, count: 'both', marginMs: 0 }, nowMs));
  }

  has(id: number): boolean {
    return this.states.has(id);
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
      const { state, change } = onCounters(s0, c.value, nowMs);
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
