// Link-emulation parameters: parsing of the human units used on the CLI and in scenario files,
// and the typed per-direction settings. Every parser returns null on bad input; the caller
// turns that into a ConfigInvalid error naming the key. Rates and durations are src/units.ts's.
import { formatDuration, parseDuration } from '../units.js';

export { formatDuration, formatRate, parseDuration, parseRate, rateProblem } from '../units.js';

export type QueueSpec = { kind: 'bytes'; n: number } | { kind: 'packets'; n: number } | { kind: 'time'; us: number };

/** A Mahimahi delivery-opportunity trace (one line per 1500-byte opportunity, ms timestamps,
 * looping with the last timestamp as the period), as linkem plays it. */
export interface TraceInfo {
  /** absolute path (linkem reads it) */
  file: string;
  lines: number;
  periodMs: number;
  /** mean rate of the opportunities, bit/s of IP packets */
  meanBps: number;
}

/** One timed change of a direction's settings; `atUs` from the start of the schedule. */
export interface ScheduleStep {
  atUs: number;
  patch: Partial<Omit<DirSettings, 'schedule' | 'repeatUs'>>;
}

export interface DirSettings {
  /** bits/s, null = unshaped (tbf) */
  rateBps: number | null;
  /** delivery opportunities from a trace (linkem's rate queue); null: none. With `rateBps`
   * too, the tbf caps what the trace delivers. */
  trace: TraceInfo | null;
  /** timed changes applied while the lab runs (lab.ts: who runs them) */
  schedule: ScheduleStep[];
  /** the schedule starts over every `repeatUs` (null: it runs once) */
  repeatUs: number | null;
  delayUs: number;
  jitterUs: number;
  /** loss probability in parts per million */
  lossPpm: number;
  /** outage: drops everything */
  down: boolean;
  queue: QueueSpec;
  /** a smaller MTU inside the ISP in this direction (null: none): an IP packet longer than this
   * does not get through; with mtuIcmp the ISP's router answers it with ICMP "fragmentation
   * needed" / "packet too big" (inet, policy routes with that MTU), else it vanishes (linkem) */
  mtu: number | null;
  mtuIcmp: boolean;
  /** the interface MTU of the link (lp wanK, the isp node's a/b, inet ispK; null: 1500) */
  ifMtu: number | null;
}

export interface LinkSettings {
  /** node name, `isp1`.. */
  node: string;
  /** free-form label for people (`dsl`, `4g`) */
  label: string;
  up: DirSettings;
  down: DirSettings;
}

/** Ethernet frame of a full-size IP packet: the unit of `Npkt` queue sizes. */
export const FRAME_BYTES = 1514;

export const DEFAULT_DIR: DirSettings = {
  rateBps: null,
  trace: null,
  schedule: [],
  repeatUs: null,
  delayUs: 0,
  jitterUs: 0,
  lossPpm: 0,
  down: false,
  queue: { kind: 'time', us: 50_000 },
  mtu: null,
  mtuIcmp: true,
  ifMtu: null,
};

/** An MTU: 576 (IPv4's minimum) to 9000, or `none`/0 for no limit. */
export function parseMtu(s: string | number): number | null | undefined {
  const t = typeof s === 'number' ? String(s) : s.trim().toLowerCase();
  if (t === 'none' || t === '0') return null;
  if (!/^\d+$/.test(t)) return undefined;
  const v = Number(t);
  return v >= 576 && v <= 9000 ? v : undefined;
}

/** A point or span of a schedule: `15s`, `1.5s`, `500ms`, `2min`, `0`; microseconds, at most a day. */
export function parseSpan(s: string | number): number | undefined {
  if (typeof s === 'number') return s === 0 ? 0 : undefined;
  const t = s.trim().toLowerCase();
  if (t === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)\s*(us|ms|s|min|h)$/.exec(t);
  if (!m) return undefined;
  const v = Math.round(Number(m[1]) * ({ us: 1, ms: 1e3, s: 1e6, min: 60e6, h: 3600e6 }[m[2]!] ?? NaN));
  return Number.isFinite(v) && v <= 86_400e6 ? v : undefined;
}

/** Reads a Mahimahi trace: non-negative integer ms per line, non-decreasing, the last > 0. */
export function parseTrace(text: string): { lines: number; periodMs: number } | string {
  let n = 0;
  let prev = 0;
  for (const [i, raw] of text.split('\n').entries()) {
    const l = raw.trim();
    if (l === '') continue;
    if (!/^\d{1,10}$/.test(l)) return `line ${i + 1}: "${l.slice(0, 20)}" is not a millisecond timestamp`;
    const v = Number(l);
    if (v < prev) return `line ${i + 1}: ${v} is before the previous line's ${prev}`;
    prev = v;
    n++;
  }
  if (n === 0 || prev === 0) return 'no delivery opportunity after 0 ms (the last line is the period)';
  return { lines: n, periodMs: prev };
}

/** Bytes of IP packet one trace line delivers (Mahimahi's MTU-sized opportunity). */
export const TRACE_OPP_BYTES = 1500;

/** What a trace (its lines' ms, as parseTrace accepts them) delivers between `fromMs` and
 * `toMs` after it started, looping: bit/s of IP packets. */
export function traceWindowBps(ms: readonly number[], fromMs: number, toMs: number): number {
  const period = ms[ms.length - 1]!;
  let n = 0;
  for (let c = Math.floor(fromMs / period); c * period < toMs; c++)
    for (const t of ms) {
      const at = c * period + t;
      if (at > fromMs && at <= toMs) n++;
    }
  return (n * TRACE_OPP_BYTES * 8 * 1000) / (toMs - fromMs);
}

/** What a direction nominally carries: its rate, else its trace's mean; null: unshaped. */
export const nominalBps = (d: DirSettings): number | null => (d.rateBps !== null && d.trace !== null ? Math.min(d.rateBps, d.trace.meanBps) : d.rateBps ?? d.trace?.meanBps ?? null);

/** Loss in percent: `2%`, `0.5%`, `2` or a number (percent, as netem). Returns ppm. */
export function parseLoss(s: string | number): number | undefined {
  const t = typeof s === 'number' ? String(s) : s.trim().replace(/%$/, '');
  if (!/^\d+(?:\.\d+)?$/.test(t)) return undefined;
  const pct = Number(t);
  return pct <= 100 ? Math.round(pct * 10_000) : undefined;
}

/** Queue: `100pkt`/`100p`, `64kb` (1024-based, as tc), `150000b`, or `50ms` of the rate. */
export function parseQueue(s: string | number): QueueSpec | undefined {
  const t = typeof s === 'number' ? `${s}pkt` : s.trim().toLowerCase();
  const m = /^(\d+(?:\.\d+)?)\s*(p|pkt|packets|b|kb|mb|us|ms|s)$/.exec(t);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'p':
    case 'pkt':
    case 'packets':
      return n >= 1 && n <= 100_000 ? { kind: 'packets', n: Math.round(n) } : undefined;
    case 'b':
    case 'kb':
    case 'mb': {
      const bytes = Math.round(n * (m[2] === 'b' ? 1 : m[2] === 'kb' ? 1024 : 1024 * 1024));
      return bytes >= FRAME_BYTES && bytes <= 512 * 1024 * 1024 ? { kind: 'bytes', n: bytes } : undefined;
    }
    default: {
      const us = parseDuration(t);
      return us !== undefined && us >= 1000 ? { kind: 'time', us } : undefined;
    }
  }
}

/** The tbf limit in bytes for a queue spec at a rate (never below two full frames). */
export function queueBytes(q: QueueSpec, rateBps: number): number {
  const b =
    q.kind === 'bytes' ? q.n : q.kind === 'packets' ? q.n * FRAME_BYTES : Math.round((rateBps / 8) * (q.us / 1e6));
  return Math.max(b, 2 * FRAME_BYTES);
}

/** tbf bucket depth: about 1 ms of the rate, at least two frames (hrtimer-driven tbf is exact on average). */
export const burstBytes = (rateBps: number): number => Math.max(2 * FRAME_BYTES, Math.round(rateBps / 8 / 1000));

export const formatLoss = (ppm: number): string => `${+(ppm / 10_000).toFixed(4)}%`;

export function formatQueue(q: QueueSpec): string {
  switch (q.kind) {
    case 'bytes':
      return `${q.n}b`;
    case 'packets':
      return `${q.n}pkt`;
    case 'time':
      return formatDuration(q.us);
  }
}
