// Rates and durations as people write them, for portal configs (config/parse.ts) and lab
// scenarios (lab/params.ts) alike. Every parser returns undefined on bad input; the caller turns
// that into a ConfigInvalid error naming the key (with rateProblem's message for rates).

const RATE_UNITS: Record<string, number> = {
  '': 1,
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
};

/** tc's bytes-per-second spellings (`mbps` = megabytes/s): refused, since nobody means them. */
const BYTE_RATE = /^(\d+(?:\.\d+)?)\s*([kmg]?)bps$/;

/** `20mbit`, `500kbit`, `1gbit`, a bare number of bit/s; `none`/`0` = unshaped (null). */
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

/** Why `s` is not a rate, for the ConfigInvalid message: `mbps` gets what to write instead. */
export function rateProblem(s: unknown, examples = '"20mbit"'): string {
  const m = typeof s === 'string' ? BYTE_RATE.exec(s.trim().toLowerCase()) : null;
  if (!m) return `is not a rate between 8kbit and 100gbit (e.g. ${examples})`;
  const [, n, p] = m as unknown as [string, string, string];
  const prefix = { '': '', k: 'kilo', m: 'mega', g: 'giga' }[p];
  return `is in ${p}bps, tc's spelling of ${prefix}bytes per second: write "${n}${p}bit" for ${n} ${p}bit/s (or "${+(Number(n) * 8).toFixed(3)}${p}bit" if you meant bytes)`;
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

export function formatRate(bps: number | null): string {
  if (bps === null) return 'unshaped';
  if (bps >= 1e9 && bps % 1e7 === 0) return `${bps / 1e9}gbit`;
  if (bps >= 1e6 && bps % 1e4 === 0) return `${bps / 1e6}mbit`;
  if (bps >= 1e3) return `${+(bps / 1e3).toFixed(3)}kbit`;
  return `${bps}bit`;
}

export const formatDuration = (us: number): string =>
  us === 0 ? '0ms' : us % 1000 === 0 ? `${us / 1000}ms` : `${+(us / 1000).toFixed(3)}ms`;
