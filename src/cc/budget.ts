// Byte budgets for metered links: pure accounting that says when a link must be taken out of
// the schedule and when it may come back. The portal feeds it the link's data-path counters
// (mp_link_stats, summed over CPUs) on a timer and writes the link's state when `change` says
// so; enforcement (the scheduler skipping the link) is the data path's.
//
//   initialBudget(params, now, saved?)   a link with a budget (saved: what a previous run used)
//   onCounters(state, counters, now, rateBps) → { state, change }
//   budgetStatus(state, now)             used / remaining / renewal, for status and the TUI
//
// A link is taken out *before* the budget is spent: when what is left would last less than
// `marginMs` at the link's current rate (the time the next reading and the map write take),
// so the allowance is not overrun between two readings. It comes back when the period renews
// or the limit is raised. Periods renew at midnight UTC (daily) or on a day of the month.
// Times are ms since the epoch (Date.now()): a budget period is calendar time.
//
// The peer's direction: the LP meters both directions, so it tells the RP in every probe on a
// metered link how much the RP may still send on it (its remaining allowance; probe.ts), and
// the RP turns that into its own scheduler's line (remoteLine below):
//
//   line = sent_bytes[id] as of when the LP's count was taken + allowance
//
// The LP's count lags what the RP has sent by about a round trip plus the queue in front of
// the LP plus a timer tick (bytes in flight are sent but not counted yet), so the RP looks that
// far back in its own sending history; looking further back only stops it earlier, and what it
// left unused comes back in the next advertisements.

export type BudgetPeriod = { kind: 'none' } | { kind: 'daily' } | { kind: 'monthly'; day: number };

export interface BudgetParams {
  /** Bytes allowed per period; 0: unlimited. */
  limitBytes: number;
  period: BudgetPeriod;
  /** What the ISP meters: both directions (usual for mobile data) or one. */
  count: 'both' | 'tx' | 'rx';
  /** Bytes the ISP counts per packet beyond the outer IP packet (link-layer headers). */
  perPacketOverhead: number;
  /** Take the link out when what is left lasts less than this at its current rate. */
  marginMs: number;
  /** Status 'low' from this fraction used. */
  warnFraction: number;
}

export const DEFAULT_BUDGET: Omit<BudgetParams, 'limitBytes'> = Object.freeze({
  period: Object.freeze({ kind: 'monthly', day: 1 }) as BudgetPeriod,
  count: 'both',
  perPacketOverhead: 0,
  marginMs: 2000,
  warnFraction: 0.9,
});

/** A link's data-path counters (abi.MpLinkStats): cumulative, reset when the data path is
 * reloaded. */
export interface LinkCounters {
  txPackets: bigint;
  txBytes: bigint;
  rxPackets: bigint;
  rxBytes: bigint;
}

export type BudgetStatus = 'ok' | 'low' | 'exhausted';

export interface BudgetState {
  readonly params: BudgetParams;
  readonly periodStartMs: number;
  /** null: the period never renews. */
  readonly periodEndMs: number | null;
  readonly usedBytes: number;
  readonly last: LinkCounters | null;
  readonly status: BudgetStatus;
}

/** What a previous run recorded, to carry a period's usage across restarts. */
export interface SavedBudget {
  periodStartMs: number;
  usedBytes: number;
}

// ---- periods ----------------------------------------------------------------------------------

const DAY_MS = 86_400_000;

/** The period that contains `nowMs`: [start, end). */
export function periodAt(period: BudgetPeriod, nowMs: number): { startMs: number; endMs: number | null } {
  switch (period.kind) {
    case 'none':
      return { startMs: 0, endMs: null };
    case 'daily': {
      const startMs = Math.floor(nowMs / DAY_MS) * DAY_MS;
      return { startMs, endMs: startMs + DAY_MS };
    }
    case 'monthly': {
      // days past the end of a short month renew on its last day
      const at = (y: number, m: number) => Date.UTC(y, m, Math.min(period.day, new Date(Date.UTC(y, m + 1, 0)).getUTCDate()));
      const d = new Date(nowMs);
      let y = d.getUTCFullYear();
      let m = d.getUTCMonth();
      if (at(y, m) > nowMs) [y, m] = m === 0 ? [y - 1, 11] : [y, m - 1];
      return { startMs: at(y, m), endMs: m === 11 ? at(y + 1, 0) : at(y, m + 1) };
    }
  }
}

// ---- accounting -------------------------------------------------------------------------------

export function initialBudget(params: Partial<BudgetParams> & Pick<BudgetParams, 'limitBytes'>, nowMs: number, saved?: SavedBudget): BudgetState {
  const p: BudgetParams = { ...DEFAULT_BUDGET, ...params };
  if (p.period.kind === 'monthly' && !(Number.isInteger(p.period.day) && p.period.day >= 1 && p.period.day <= 31)) {
    throw new Error(`budget renewal day ${p.period.day} is not 1..31`);
  }
  const { startMs, endMs } = periodAt(p.period, nowMs);
  const usedBytes = saved && saved.periodStartMs === startMs ? saved.usedBytes : 0;
  const s: BudgetState = { params: p, periodStartMs: startMs, periodEndMs: endMs, usedBytes, last: null, status: 'ok' };
  return { ...s, status: statusOf(s, 0) };
}

/**
 * A new reading of the link's counters. `rateBps` is what the link may carry until the next
 * reading (its current rate), which sets how early the link is taken out. `change` is the new
 * status when it changed: 'exhausted' → take the link out; 'ok'/'low' after 'exhausted' → put
 * it back.
 */
export function onCounters(s: BudgetState, c: LinkCounters, nowMs: number, rateBps = 0): { state: BudgetState; change: BudgetStatus | null } {
  const p = s.params;
  let next: BudgetState = s;
  let renewed = false;
  if (next.periodEndMs !== null && nowMs >= next.periodEndMs) {
    const { startMs, endMs } = periodAt(p.period, nowMs);
    next = { ...next, periodStartMs: startMs, periodEndMs: endMs, usedBytes: 0 };
    renewed = true;
  }
  const used = next.last === null ? 0 : metered(p, next.last, c);
  next = { ...next, usedBytes: next.usedBytes + used, last: c };
  // Once out, out until the period renews (or the limit is raised): a link taken out has no
  // rate, and must not come back because its margin shrank.
  next = { ...next, status: s.status === 'exhausted' && !renewed ? 'exhausted' : statusOf(next, rateBps) };
  return { state: next, change: next.status === s.status ? null : next.status };
}

/** New limits or period (a reloaded config); usage so far stays. */
export function reconfigure(s: BudgetState, params: Partial<BudgetParams>, nowMs: number, rateBps = 0): { state: BudgetState; change: BudgetStatus | null } {
  const p: BudgetParams = { ...s.params, ...params };
  const { startMs, endMs } = periodAt(p.period, nowMs);
  const samePeriod = startMs === s.periodStartMs;
  const next: BudgetState = { ...s, params: p, periodStartMs: startMs, periodEndMs: endMs, usedBytes: samePeriod ? s.usedBytes : 0 };
  const status = statusOf(next, rateBps);
  return { state: { ...next, status }, change: status === s.status ? null : status };
}

export function budgetStatus(s: BudgetState, nowMs: number): {
  status: BudgetStatus;
  usedBytes: number;
  /** null: unlimited. */
  remainingBytes: number | null;
  renewsInMs: number | null;
  saved: SavedBudget;
} {
  return {
    status: s.status,
    usedBytes: s.usedBytes,
    remainingBytes: s.params.limitBytes > 0 ? Math.max(0, s.params.limitBytes - s.usedBytes) : null,
    renewsInMs: s.periodEndMs === null ? null : Math.max(0, s.periodEndMs - nowMs),
    saved: { periodStartMs: s.periodStartMs, usedBytes: s.usedBytes },
  };
}

/** Bytes the ISP counted between two readings (a counter that went back was reset: all of it
 * is new). */
function metered(p: BudgetParams, a: LinkCounters, b: LinkCounters): number {
  const d = (x: bigint, y: bigint) => Number(y >= x ? y - x : y);
  const tx = d(a.txBytes, b.txBytes) + p.perPacketOverhead * d(a.txPackets, b.txPackets);
  const rx = d(a.rxBytes, b.rxBytes) + p.perPacketOverhead * d(a.rxPackets, b.rxPackets);
  return p.count === 'tx' ? tx : p.count === 'rx' ? rx : tx + rx;
}

function statusOf(s: BudgetState, rateBps: number): BudgetStatus {
  const limit = s.params.limitBytes;
  if (!(limit > 0)) return 'ok';
  const margin = (Math.max(0, rateBps) / 8) * (s.params.marginMs / 1000);
  if (s.usedBytes + margin >= limit) return 'exhausted';
  if (s.usedBytes >= s.params.warnFraction * limit) return 'low';
  return 'ok';
}

// ---- the RP's line from the LP's advertised allowance ------------------------------------------

/** The RP's bytes scheduled on a link (mp_sched.sent_bytes) at a time (µs, monotonic). */
export interface SentSample {
  tUs: number;
  sent: bigint;
}

/** How far back a sending history reaches: the longest lag remoteLine looks back. */
export const SENT_HISTORY_US = 2_000_000;

/** `x` appended to the history (in place, returned) and samples older than `spanUs` before it
 * dropped (one older sample is kept: it stands for the time just before the span). A sample
 * that says what the last one said is not kept (sentAt answers the same without it): an idle
 * link's history costs nothing, 50 times a second. */
export function recordSent(h: SentSample[], x: SentSample, spanUs = SENT_HISTORY_US): SentSample[] {
  if (h.length > 0 && h[h.length - 1]!.sent === x.sent) return h;
  h.push(x);
  let drop = 0;
  while (h.length - drop > 2 && h[drop + 1]!.tUs <= x.tUs - spanUs) drop++;
  if (drop > 0) h.splice(0, drop);
  return h;
}

/** What had been sent by `atUs`: the newest sample not after it; before the history began,
 * its oldest sample (0 without one). */
export function sentAt(h: readonly SentSample[], atUs: number): bigint {
  let v: bigint | null = null;
  for (const x of h) {
    if (x.tUs > atUs) break;
    v = x.sent;
  }
  return v ?? h[0]?.sent ?? 0n;
}

/**
 * The RP's budget line (mp_link.budget_bytes) for a link whose LP advertised `allowanceBytes`
 * at `nowUs`: what the RP had sent `lagUs` ago (the part of its sending the LP has counted) plus
 * the allowance. At least 1: 0 would mean "no budget".
 */
export function remoteLine(allowanceBytes: number, h: readonly SentSample[], nowUs: number, lagUs: number): bigint {
  const line = sentAt(h, nowUs - Math.max(0, lagUs)) + BigInt(Math.max(0, Math.floor(allowanceBytes)));
  return line > 0n ? line : 1n;
}
