// Link-emulation parameters: parsing of the human units used on the CLI and in scenario files,
// and the typed per-direction settings. Every parser returns null on bad input; the caller
// turns that into a ConfigInvalid error naming the key. Rates and durations are src/units.ts's.
import { formatDuration, parseDuration } from '../units.js';

export { formatDuration, formatRate, parseDuration, parseRate, rateProblem } from '../units.js';

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
};

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
