// Number formatting for the console and `status --watch`: rates in bit/s with SI prefixes,
// durations, and the sparkline. Pure and width-stable (each helper pads to a fixed width).

/** 18.2 Mb/s, 950 kb/s, 1.20 Gb/s; "-" for null. */
export function fmtBps(bps: number | null): string {
  if (bps === null || !Number.isFinite(bps)) return '-';
  const units: [number, string][] = [
    [1e9, 'Gb/s'],
    [1e6, 'Mb/s'],
    [1e3, 'kb/s'],
  ];
  for (const [k, u] of units) if (bps >= k) return `${(bps / k).toFixed(bps / k >= 100 ? 0 : bps / k >= 10 ? 1 : 2)} ${u}`;
  return `${Math.round(bps)} b/s`;
}

export function fmtMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

export function fmtPct(p: number | null): string {
  return p === null || !Number.isFinite(p) ? '-' : `${p.toFixed(p >= 10 ? 0 : 1)} %`;
}

/** 42 s, 5m12s, 3h04m, 2d03h */
export function fmtAge(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function fmtCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

const BARS = '▁▂▃▄▅▆▇█';

/** The last `width` samples as bars scaled to `max` (default: the largest sample); blanks pad the
 *  left so the newest sample is always at the right edge. */
export function sparkline(samples: readonly number[], width: number, max?: number): string {
  const s = samples.slice(-width);
  const top = max ?? Math.max(0, ...s);
  const bars = s.map((v) => (top <= 0 || v <= 0 ? ' ' : BARS[Math.min(BARS.length - 1, Math.max(0, Math.ceil((v / top) * BARS.length) - 1))]!));
  return ' '.repeat(width - s.length) + bars.join('');
}

/** Pads or cuts `s` to exactly `w` columns (the console draws fixed-width columns). */
export function cell(s: string, w: number, align: 'left' | 'right' = 'left'): string {
  if (s.length > w) return w <= 1 ? s.slice(0, w) : `${s.slice(0, w - 1)}…`;
  return align === 'left' ? s.padEnd(w) : s.padStart(w);
}
