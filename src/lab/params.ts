// Link-emulation parameters: parsing of the human units used on the CLI and in scenario files,
// and the typed per-direction settings. Every parser returns null on bad input; the caller
// turns that into a ConfigInvalid error naming the key.

export type QueueSpec = { kind: 'bytes'; n: number } | { kind: 'packets'; n: number } | { kind: 'time'; us: number };

export interface DirSettings {
  /** bits/s, null = unshaped */
  rateBps: number | null;
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

const RATE_UNITS: Record<string, number> = {
  '': 1,
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  bps: 8,
  kbps: 8e3,
  mbps: 8e6,
  gbps: 8e9,
};

/** `20mbit`, `500kbit`, `1gbit`, `12.5mbps` (bytes/s, as tc), a bare number of bit/s; `none`/`0` = unshaped. */
export function parseRate(s: string | number): number | null | undefined {
  if (typeof s === 'number') return Number.isFinite(s) && s >= 0 ? (s === 0 ? null : s) : undefined;
  const t = s.trim().toLowerCase();
  if (t === 'none' || t === 'unlimited' || t === '0') return null;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(t);
  const unit = m ? RATE_UNITS[m[2] ?? ''] : undefined;
  if (!m || unit === undefined) return undefined;
  const v = Number(m[1]) * unit;
  return v >= 8000 && v <= 100e9 ? Math.round(v) : undefined;
}

const TIME_UNITS: Record<string, number> = { us: 1, ms: 1e3, s: 1e6 };

/** `40ms`, `1.5ms`, `250us`, `0`; microseconds. Max 10 s. */
export function parseDuration(s: string | number): number | undefined {
  if (typeof s === 'number') return s === 0 ? 0 : undefined;
  const t = s.trim().toLowerCase();
  if (t === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)\s*(us|ms|s)$/.exec(t);
  if (!m) return undefined;
  const v = Math.round(Number(m[1]) * (TIME_UNITS[m[2]!] ?? NaN));
  return Number.isFinite(v) && v <= 10_000_000 ? v : undefined;
}

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

export function formatRate(bps: number | null): string {
  if (bps === null) return 'unshaped';
  if (bps >= 1e9 && bps % 1e7 === 0) return `${bps / 1e9}gbit`;
  if (bps >= 1e6 && bps % 1e4 === 0) return `${bps / 1e6}mbit`;
  if (bps >= 1e3) return `${+(bps / 1e3).toFixed(3)}kbit`;
  return `${bps}bit`;
}

export const formatDuration = (us: number): string =>
  us === 0 ? '0ms' : us % 1000 === 0 ? `${us / 1000}ms` : `${+(us / 1000).toFixed(3)}ms`;

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
