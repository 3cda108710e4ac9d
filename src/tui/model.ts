// The console's view-model: a pure function of the stream of status snapshots (what
// `mpctl status --json` prints, read 4 times a second) → what the screen shows. Throughput is
// the byte counters' difference between two snapshots over their time difference, so a
// recorded stream replays to the same frames (test/tui.test.tsx).
import type { LinkStatus, PortalStatus } from '../run/status.js';
import type { SecurityStatus } from '../security/security-status.js';

export type RowState = 'up' | 'backup' | 'spent' | 'down' | 'admin-down' | 'unused';

export interface LinkRow {
  id: number;
  /** the config's name (LP) or `link <id>` (RP) */
  label: string;
  interface: string | null;
  /** `backup`: up, but a link with a lower metric is up too, so the scheduler leaves it idle;
   *  `spent`: up, but its byte budget for this period is used up, so the scheduler skips it */
  state: RowState;
  /** bytes this portal may still send on a metered link this period (null: no budget) */
  budgetLeftBytes: number | null;
  metric: number;
  /** the link's estimated rate, bit/s: the congestion controller's bandwidth estimate, or the
   *  scheduler's rate while there is no controller (the pacing rate swings around the estimate) */
  rateBps: number;
  rttMs: number | null;
  lossPct: number | null;
  /** throughput since the previous snapshot, bit/s (null: no previous snapshot yet) */
  txBps: number | null;
  rxBps: number | null;
  /** recent tx+rx throughput samples, oldest first */
  history: number[];
  endpoint: string | null;
  ccPhase: string | null;
}

export interface View {
  instance: string;
  role: 'local' | 'remote';
  pid: number;
  running: boolean;
  /** when not running: the control plane's last sign of life (ms since the epoch) */
  lastSeenMs: number | null;
  /** the data path on its own: forwarding, and packets in the last second */
  forwarding: boolean;
  packetsLastSecond: number;
  uptimeMs: number;
  rows: LinkRow[];
  totals: {
    txBps: number | null;
    rxBps: number | null;
    /** sum of the rates of the links the scheduler uses now (up, lowest metric tier) */
    usableBps: number;
    /** sum of all configured links' rates, whatever their state */
    allBps: number;
  };
  session: SecurityStatus | null;
  /** non-zero drop counters, largest first; `delta`: since the previous snapshot */
  drops: { reason: string; count: number; delta: number }[];
  feedback: PortalStatus['feedback'];
  badControl: number;
  /** redundant classes, one line each: packets sent and copies, and where the peer's first
   * copies came in (link names where known) */
  redundant: string[];
}

export interface Model {
  prev: PortalStatus | null;
  history: ReadonlyMap<number, number[]>;
  view: View | null;
}

export const HISTORY = 60;
export const emptyModel: Model = { prev: null, history: new Map(), view: null };

/** bit/s between two counter readings; null when there is no earlier reading or it went back (restart) */
function throughput(now: number, then: number | undefined, dtMs: number): number | null {
  if (then === undefined || dtMs <= 0 || now < then) return null;
  return ((now - then) * 8 * 1000) / dtMs;
}

function rowState(l: LinkStatus, bestUpMetric: number | null): RowState {
  if (l.state === 'up' && l.budget?.exhausted) return 'spent';
  if (l.state === 'up' && bestUpMetric !== null && l.metric > bestUpMetric) return 'backup';
  return l.state;
}

export function step(m: Model, s: PortalStatus, historyLen = HISTORY): Model {
  const prev = m.prev;
  const dt = prev ? s.time - prev.time : 0;
  // the tier in use: the lowest metric among links that are up and not out of budget
  const ups = s.links.filter((l) => l.state === 'up' && !l.budget?.exhausted).map((l) => l.metric);
  const best = ups.length ? Math.min(...ups) : null;
  const history = new Map<number, number[]>();
  const rows: LinkRow[] = s.links.map((l) => {
    const p = prev?.links.find((x) => x.id === l.id);
    const txBps = throughput(l.tx.bytes, p?.tx.bytes, dt);
    const rxBps = throughput(l.rx.bytes, p?.rx.bytes, dt);
    const h = [...(m.history.get(l.id) ?? [])];
    if (txBps !== null || rxBps !== null) h.push((txBps ?? 0) + (rxBps ?? 0));
    history.set(l.id, h.slice(-historyLen));
    return {
      id: l.id,
      label: l.name ?? `link ${l.id}`,
      interface: l.interface,
      state: rowState(l, best),
      budgetLeftBytes: l.budget ? l.budget.leftBytes : null,
      metric: l.metric,
      rateBps: l.cc?.bwBps ?? l.rateBps,
      rttMs: l.rttMs,
      lossPct: l.cc ? l.cc.lossPct : null,
      txBps,
      rxBps,
      history: history.get(l.id)!,
      endpoint: l.endpoint,
      ccPhase: l.cc ? `${l.cc.phase}${l.cc.stale ? ' (stale)' : ''}` : null,
    };
  });
  const sum = (xs: (number | null)[]) => (xs.every((x) => x === null) ? null : xs.reduce<number>((a, x) => a + (x ?? 0), 0));
  const drops = Object.entries(s.drops)
    .filter(([, n]) => n > 0)
    .map(([reason, count]) => ({ reason, count, delta: prev ? count - (prev.drops[reason] ?? 0) : 0 }))
    .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
  const view: View = {
    instance: s.instance,
    role: s.role,
    pid: s.pid,
    running: s.running,
    lastSeenMs: s.controlPlane.lastSeenMs,
    forwarding: s.dataPath.forwarding,
    packetsLastSecond: s.dataPath.packetsLastSecond,
    uptimeMs: s.time - Date.parse(s.startedAt),
    rows,
    totals: {
      txBps: sum(rows.map((r) => r.txBps)),
      rxBps: sum(rows.map((r) => r.rxBps)),
      usableBps: rows.filter((r) => r.state === 'up').reduce((a, r) => a + r.rateBps, 0),
      allBps: rows.reduce((a, r) => a + r.rateBps, 0),
    },
    session: s.security,
    drops,
    feedback: s.feedback,
    badControl: s.badControl,
    redundant: (s.redundant ?? []).map((r) => {
      const link = (id: string) => s.links.find((l) => String(l.id) === id)?.name ?? `link ${id}`;
      const wins = Object.entries(r.wins).map(([l, n]) => `${link(l)} ${n}`).join(' ') || 'none yet';
      return `${r.name ?? `class ${r.id}`}: sent ${r.packets} + ${r.copies} copies${r.capped ? ` (${r.capped} capped)` : ''} · first in: ${wins} · ${r.duplicates} dup dropped`;
    }),
  };
  return { prev: s, history, view };
}

/** Replays a recorded stream: the model after every snapshot. */
export function replay(stream: readonly PortalStatus[], historyLen = HISTORY): Model {
  return stream.reduce((m, s) => step(m, s, historyLen), emptyModel);
}
