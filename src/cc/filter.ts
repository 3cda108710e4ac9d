// Windowed max / min of a time series in constant space: Kathleen Nichols' algorithm as in
// Linux lib/win_minmax.c (used by BBR). It keeps the best, second-best and third-best samples
// from successive sub-windows, so when the best one ages out of the window the next best takes
// its place without storing every sample. Pure: every update returns a new filter.

export interface Sample {
  readonly t: number;
  readonly v: number;
}

/** Three samples, best first. */
export type WinFilter = readonly [Sample, Sample, Sample];

export function winReset(t: number, v: number): WinFilter {
  const s = { t, v };
  return [s, s, s];
}

export function winBest(f: WinFilter): number {
  return f[0].v;
}

function update(f: WinFilter, win: number, t: number, v: number, better: (a: number, b: number) => boolean): WinFilter {
  const s = { t, v };
  if (!better(f[0].v, v) || t - f[2].t > win) return winReset(t, v); // a new best, or nothing recent
  let [a, b, c] = f;
  if (!better(b.v, v)) b = c = s;
  else if (!better(c.v, v)) c = s;
  const dt = t - a.t;
  if (dt > win) {
    // the best sample aged out: promote the next ones
    [a, b, c] = [b, c, s];
    if (t - a.t > win) [a, b, c] = [b, c, s];
  } else if (b.t === a.t && dt > win / 4) {
    // a quarter of the window passed without a second choice: take one from this quarter
    b = c = s;
  } else if (c.t === b.t && dt > win / 2) {
    c = s;
  }
  return [a, b, c];
}

/** Running max over the last `win` time units. */
export function winMax(f: WinFilter, win: number, t: number, v: number): WinFilter {
  return update(f, win, t, v, (x, y) => x > y);
}

/** Running min over the last `win` time units. */
export function winMin(f: WinFilter, win: number, t: number, v: number): WinFilter {
  return update(f, win, t, v, (x, y) => x < y);
}
