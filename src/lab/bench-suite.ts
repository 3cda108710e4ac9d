// The bonding benchmark suite (README "Benchmarks"): `mpctl lab bench <scenario>`. Each scenario brings up
// its own bonded lab, runs single-flow iperf3 client → server and server → client, repeats
// until the runs agree, and returns its figures (with the ceiling and the target next to each)
// and a plot of throughput over time per link and total (from the receiving portal's per-link
// counters, bench-sample.ts). bench.ts writes bench-results/<scenario>.json and .svg.
//
//   scenario          links (rate/one-way delay, both directions)     what is measured
//   2x20              2 × 20 Mbit/10 ms                                % of sum, ≥ 90
//   20+5              20 + 5 Mbit/10 ms                                % of sum, ≥ 88
//   2x10 3x10 4x10    N × 10 Mbit/10 ms                                % of sum, ≥ 88 each, 4 > 3 > 2 (Mbit/s)
//   mismatch          20 Mbit/10 ms + 20 Mbit/60 ms                    % of sum, ≥ 85
//   300+80            300 Mbit/10 ms + 80 Mbit/30 ms                   % of sum, ≥ 85
//   udp90             2 × 20 Mbit/10 ms, UDP at 90 % of the sum        loss < 1 %, jitter
//   step              2 × 20 Mbit/10 ms, isp2 20 → 5 → 20 mid-flow      time for the total to follow, ≤ 2 s
//   cut               2 × 20 Mbit/10 ms, isp2 cut for 10 s mid-flow     longest stall; ≥ 90 % of the survivor
//                                                                      ≤ 300 ms after the cut; ≥ 90 % of the
//                                                                      previous total ≤ 3 s after the return
//   idle-death        2 × 20 Mbit/10 ms, isp2 cut while idle           data bytes the next burst puts on it: 0
//   lossy             20 Mbit/10 ms + 20 Mbit/10 ms with 2 % loss       pair vs the clean link alone: ≥
//
// Throughput-over-time figures use outer IP bytes delivered per link, against the links' rates
// scaled by 1500/1514 (tbf counts Ethernet frames; a full-size packet's outer IP bytes are
// 1500 of its 1514). Goodput figures are iperf3's receiver intervals after a 2 s warm-up.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { portalInstance } from './bond.js';
import { bins, LinkSampler, type Reading } from './bench-sample.js';
import type { PlotPanel } from './bench-plot.js';
import { labDown, labSet, labUp } from './lab.js';
import { iperf, type IperfResult } from './measure.js';
import { FRAME_BYTES } from './params.js';
import { parseScenario, type Scenario } from './scenario.js';

export interface SuiteFigure {
  name: string;
  unit: string;
  runs: number[];
  median: number;
  /** what the figure cannot exceed (same unit), when there is such a bound */
  ceiling?: number;
  target?: string;
  met?: boolean;
  note?: string;
}

export interface SuiteResult {
  figures: SuiteFigure[];
  plot: { title: string; panels: PlotPanel[] };
}

type Dir = 'up' | 'down';
const DIRS: readonly Dir[] = ['up', 'down'];
const DIR_NAME: Record<Dir, string> = { up: 'client → server', down: 'server → client' };

/** One full-size inner TCP segment (1448 B inner MTU on 52 B of IPv4/UDP/mpctl headers, TCP
 * timestamps) per 1514 B frame: what one TCP flow through the bond can reach of tbf's rate. */
export const BOND_TCP_CEILING_PCT = ((1500 - 52 - 20 - 20 - 12) / FRAME_BYTES) * 100;
/** Outer IP bytes of a full-size frame: the ceiling of the per-link counters against tbf. */
const OUTER_RATIO = 1500 / FRAME_BYTES;
/** UDP datagrams of 1400 B payload: frame = 1400 + 8 + 20 + 52 + 14. */
const UDP_PAYLOAD = 1400;
const UDP_FRAME = UDP_PAYLOAD + 8 + 20 + 52 + 14;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round1 = (x: number) => Math.round(x * 10) / 10;

// ---- labs and flows ---------------------------------------------------------------------------

interface LinkSpec {
  rate: string;
  delay: string;
  loss?: string;
}

function scenarioOf(links: readonly LinkSpec[]): Scenario {
  return parseScenario({ links: links.map((l) => ({ ...l, queue: '60ms' })) }, 'bench')._unsafeUnwrap();
}

const mbitOf = (rate: string): number => Number(/^([\d.]+)mbit$/.exec(rate)![1]);

/** A bonded lab for the duration of `f`, always torn down. */
async function inBond<T>(lab: string, links: readonly LinkSpec[], f: (lab: string) => Promise<Result<T, MpError>>): Promise<Result<T, MpError>> {
  await labDown(lab);
  const up = await labUp({ name: lab, scenario: scenarioOf(links), bond: true });
  if (up.isErr()) return err(up.error);
  try {
    await sleep(1000); // probes answered, first feedback in
    return await f(lab);
  } finally {
    await labDown(lab);
  }
}

interface FlowEvent {
  atS: number;
  label: string;
  act: () => Promise<Result<unknown, MpError>>;
}

interface FlowRun {
  iperf: IperfResult;
  /** receiving and sending portal counters, one time line (ms since the flow was launched) */
  rx: Reading[];
  tx: Reading[];
  events: { tMs: number; label: string }[];
}

interface FlowOptions {
  seconds: number;
  omitS: number;
  /** the TCP sender's congestion control (default: the lab's, i.e. the host's default) */
  congestion?: string;
  udpBps?: number;
  events?: FlowEvent[];
}

/** One iperf3 flow client → server ('up') or back, sampling both portals' per-link counters. */
async function flow(lab: string, nLinks: number, dir: Dir, o: FlowOptions): Promise<Result<FlowRun, MpError>> {
  const [rxRole, txRole] = dir === 'up' ? (['rp', 'lp'] as const) : (['lp', 'rp'] as const);
  const rxs = await LinkSampler.open(portalInstance(lab, rxRole), nLinks);
  if (rxs.isErr()) return err(rxs.error);
  const txs = await LinkSampler.open(portalInstance(lab, txRole), nLinks, rxs.value.origin);
  if (txs.isErr()) {
    rxs.value.close();
    return err(txs.error);
  }
  const events: FlowRun['events'] = [];
  try {
    rxs.value.start(50);
    txs.value.start(50);
    const t0 = rxs.value.now();
    const run = iperf(lab, {
      server: { node: 'server', addr: '203.0.113.2' },
      client: { node: 'client' },
      seconds: o.seconds,
      omitS: o.omitS,
      reverse: dir === 'down',
      ...(o.udpBps ? { udpBps: o.udpBps } : {}),
      ...(o.congestion ? { congestion: o.congestion } : {}),
    });
    for (const e of o.events ?? []) {
      const wait = t0 + e.atS * 1000 - rxs.value.now();
      if (wait > 0) await sleep(wait);
      const tMs = rxs.value.now();
      const r = await e.act();
      if (r.isErr()) return err(r.error);
      events.push({ tMs: tMs - t0, label: e.label });
    }
    const res = await run;
    if (res.isErr()) return err(res.error);
    rxs.value.stop();
    txs.value.stop();
    const shift = (rs: Reading[]) => rs.map((r) => ({ ...r, tMs: r.tMs - t0 }));
    return ok({ iperf: res.value, rx: shift(rxs.value.readings), tx: shift(txs.value.readings), events });
  } finally {
    rxs.value.close();
    txs.value.close();
  }
}

/** Runs `one` `runs` times, and more (up to twice as many) while the spread of the figure
 * exceeds `maxSpread` (same unit). Returns every run, in order. */
async function untilStable<T>(runs: number, maxSpread: number, figure: (x: T) => number, one: () => Promise<Result<T, MpError>>): Promise<Result<T[], MpError>> {
  const out: T[] = [];
  while (out.length < runs || (out.length < 2 * runs && spread(out.map(figure)) > maxSpread)) {
    const r = await one();
    if (r.isErr()) return err(r.error);
    out.push(r.value);
  }
  return ok(out);
}

const spread = (xs: number[]): number => Math.max(...xs) - Math.min(...xs);

/** The run whose figure is the median (for the plot). */
function medianRun<T>(xs: readonly T[], figure: (x: T) => number): T {
  const m = median(xs.map(figure));
  return xs.reduce((best, x) => (Math.abs(figure(x) - m) < Math.abs(figure(best) - m) ? x : best));
}

function panel(dir: Dir, run: FlowRun, sumMbit: number, note = '', binMs = 100): PlotPanel {
  const points: PlotPanel['points'] = [];
  for (const b of bins(run.rx, 'rx', binMs)) {
    b.perLink.forEach((v, i) => points.push({ tS: round3(b.tS), series: `link ${i + 1}`, mbit: round3(v) }));
    points.push({ tS: round3(b.tS), series: 'total', mbit: round3(b.total) });
  }
  return { title: `${DIR_NAME[dir]}${note}`, points, events: run.events.map((e) => ({ tS: round3(e.tMs / 1000), label: e.label })), sumMbit };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

// ---- scenario kinds ---------------------------------------------------------------------------

const FLOW_S = 8;
const WARM_S = 2;

/** One TCP flow each way as % of the sum of the link rates; with `alsoCubic`, a second flow
 * each way whose sender uses CUBIC (the lab's default is the host's, BBR here). */
async function tcpShare(lab: string, title: string, links: readonly LinkSpec[], targetPct: number, runs: number, alsoCubic = false): Promise<Result<SuiteResult, MpError>> {
  const sumMbit = links.reduce((a, l) => a + mbitOf(l.rate), 0);
  return inBond(lab, links, async (name) => {
    const figures: SuiteFigure[] = [];
    const panels: PlotPanel[] = [];
    for (const [dir, congestion] of [...DIRS.map((d) => [d, undefined] as const), ...(alsoCubic ? DIRS.map((d) => [d, 'cubic'] as const) : [])]) {
      const pct = (r: FlowRun) => (r.iperf.bps * 100) / (sumMbit * 1e6);
      const rs = await untilStable(runs, 3, pct, () => flow(name, links.length, dir, { seconds: FLOW_S, omitS: WARM_S, ...(congestion ? { congestion } : {}) }));
      if (rs.isErr()) return err(rs.error);
      const xs = rs.value.map(pct);
      const m = median(xs);
      figures.push({
        name: `${title}, 1 TCP flow ${DIR_NAME[dir]}${congestion ? ` (${congestion})` : ''}`,
        unit: '% of sum',
        runs: xs.map(round1),
        median: round1(m),
        ceiling: round1(BOND_TCP_CEILING_PCT),
        target: `≥ ${targetPct} %`,
        met: m >= targetPct,
        note: `median ${round1((m * sumMbit) / 100)} Mbit/s of ${sumMbit} Mbit/s`,
      });
      panels.push(panel(dir, medianRun(rs.value, pct), sumMbit * OUTER_RATIO, congestion ? ` (${congestion})` : ''));
    }
    return ok({ figures, plot: { title, panels } });
  });
}

const TWO_20: LinkSpec[] = [
  { rate: '20mbit', delay: '10ms' },
  { rate: '20mbit', delay: '10ms' },
];

/** UDP at 90 % of the sum on the wire: loss and jitter. */
async function udp90(lab: string, runs: number): Promise<Result<SuiteResult, MpError>> {
  const sumMbit = 40;
  const payloadBps = 0.9 * sumMbit * 1e6 * (UDP_PAYLOAD / UDP_FRAME);
  return inBond(lab, TWO_20, async (name) => {
    const figures: SuiteFigure[] = [];
    const panels: PlotPanel[] = [];
    for (const dir of DIRS) {
      const loss = (r: FlowRun) => r.iperf.lostPercent ?? 100;
      const rs = await untilStable(runs, 1, loss, () => flow(name, 2, dir, { seconds: FLOW_S, omitS: 0, udpBps: payloadBps }));
      if (rs.isErr()) return err(rs.error);
      const xs = rs.value.map(loss);
      const js = rs.value.map((r) => r.iperf.jitterMs ?? NaN);
      figures.push(
        {
          name: `UDP ${round1(payloadBps / 1e6)} Mbit/s over 2×20 Mbit, ${DIR_NAME[dir]}: loss`,
          unit: '%',
          runs: xs.map((x) => Math.round(x * 1000) / 1000),
          median: Math.round(median(xs) * 1000) / 1000,
          target: '< 1 %',
          met: median(xs) < 1,
          note: `offered 90 % of the sum on the wire (${UDP_PAYLOAD} B datagrams, ${UDP_FRAME} B frames)`,
        },
        { name: `UDP over 2×20 Mbit, ${DIR_NAME[dir]}: jitter`, unit: 'ms', runs: js.map((x) => Math.round(x * 1000) / 1000), median: Math.round(median(js) * 1000) / 1000, note: 'iperf3 (RFC 1889 smoothed)' },
      );
      panels.push(panel(dir, medianRun(rs.value, loss), sumMbit * OUTER_RATIO));
    }
    return ok({ figures, plot: { title: 'UDP at 90 % of 2×20 Mbit', panels } });
  });
}

/** First time (ms, relative to `fromMs`) the `windowMs` moving average of the total reaches
 * `mbit`, looking until `toMs`; null: never. */
export function timeToReach(rx: readonly Reading[], fromMs: number, toMs: number, mbit: number, windowMs: number): number | null {
  const bs = bins(rx, 'rx', 50, fromMs, toMs);
  const k = Math.max(1, Math.round(windowMs / 50));
  for (let i = 0; i + k <= bs.length; i++) {
    let s = 0;
    for (let j = i; j < i + k; j++) s += bs[j]!.total;
    if (s / k >= mbit) return (i + k) * 50;
  }
  return null;
}

/** The longest run of 50 ms bins in which nothing was delivered, ms. */
export function longestStall(rx: readonly Reading[], fromMs: number, toMs: number): number {
  let best = 0;
  let cur = 0;
  for (const b of bins(rx, 'rx', 50, fromMs, toMs)) {
    cur = b.total < 0.05 ? cur + 50 : 0;
    best = Math.max(best, cur);
  }
  return best;
}

function meanTotal(rx: readonly Reading[], fromMs: number, toMs: number): number {
  const bs = bins(rx, 'rx', 50, fromMs, toMs);
  return bs.reduce((a, b) => a + b.total, 0) / Math.max(1, bs.length);
}

type Patch = Parameters<typeof labSet>[0]['patch'];
const setLink = (lab: string, node: string, patch: Patch) => () => labSet({ name: lab, node, dirs: ['up', 'down'], patch });

/** A flow on 2 links during which isp2 changes (both directions) at the given seconds. */
const changesIsp2 = (lab: string, dir: Dir, seconds: number, ...changes: [number, string, Patch][]) => () =>
  flow(lab, 2, dir, { seconds, omitS: 0, events: changes.map(([atS, label, patch]) => ({ atS, label, act: setLink(lab, 'isp2', patch) })) });

/** isp2 of 2×20 drops to 5 Mbit and comes back, mid-flow: how long the total takes to follow. */
async function step(lab: string, runs: number): Promise<Result<SuiteResult, MpError>> {
  const T_DROP = 6;
  const T_BACK = 13;
  const SECONDS = 18;
  return inBond(lab, TWO_20, async (name) => {
    const figures: SuiteFigure[] = [];
    const panels: PlotPanel[] = [];
    for (const dir of DIRS) {
      const one = changesIsp2(name, dir, SECONDS, [T_DROP, 'isp2 → 5 Mbit', { rateBps: 5e6 }], [T_BACK, 'isp2 → 20 Mbit', { rateBps: 20e6 }]);
      const follow = (r: FlowRun, i: number, capMbit: number, untilMs: number) => timeToReach(r.rx, r.events[i]!.tMs, untilMs, 0.9 * capMbit * OUTER_RATIO, 500);
      const down = (r: FlowRun) => follow(r, 0, 25, r.events[1]!.tMs) ?? Infinity;
      const up = (r: FlowRun) => follow(r, 1, 40, SECONDS * 1000) ?? Infinity;
      const rs = await untilStable(runs, 500, (r) => Math.max(down(r), up(r)), one);
      if (rs.isErr()) return err(rs.error);
      for (const [what, f] of [
        ['20 → 5 Mbit', down],
        ['5 → 20 Mbit', up],
      ] as const) {
        const xs = rs.value.map(f);
        figures.push({
          name: `step ${what} on isp2 of 2×20, ${DIR_NAME[dir]}: time until the total is ≥ 90 % of the new sum`,
          unit: 'ms',
          runs: xs,
          median: median(xs),
          target: '≤ 2000 ms',
          met: median(xs) <= 2000,
          note: 'from the change to the end of the first 500 ms window whose mean delivery (outer bytes, all links) reaches 90 % of the new sum; Infinity: never within the phase',
        });
      }
      const goodput = rs.value.map((r) => r.iperf.bps / 1e6);
      figures.push({ name: `step, ${DIR_NAME[dir]}: goodput over the whole flow`, unit: 'Mbit/s', runs: goodput.map(round1), median: round1(median(goodput)) });
      panels.push(panel(dir, medianRun(rs.value, (r) => Math.max(down(r), up(r))), 40 * OUTER_RATIO));
    }
    return ok({ figures, plot: { title: '2×20 Mbit/10 ms, isp2 steps 20 → 5 → 20 Mbit mid-flow', panels } });
  });
}

/** isp2 of 2×20 cut for 10 s mid-flow. */
async function cut(lab: string, runs: number): Promise<Result<SuiteResult, MpError>> {
  const T_CUT = 6;
  const T_BACK = 16;
  const SECONDS = 22;
  return inBond(lab, TWO_20, async (name) => {
    const figures: SuiteFigure[] = [];
    const panels: PlotPanel[] = [];
    for (const dir of DIRS) {
      const one = changesIsp2(name, dir, SECONDS, [T_CUT, 'isp2 cut', { down: true }], [T_BACK, 'isp2 back', { down: false }]);
      const cutMs = (r: FlowRun) => r.events[0]!.tMs;
      const backMs = (r: FlowRun) => r.events[1]!.tMs;
      const before = (r: FlowRun) => meanTotal(r.rx, cutMs(r) - 3000, cutMs(r));
      const survivor = (r: FlowRun) => timeToReach(r.rx, cutMs(r), backMs(r), 0.9 * 20 * OUTER_RATIO, 200) ?? Infinity;
      const back = (r: FlowRun) => timeToReach(r.rx, backMs(r), SECONDS * 1000, 0.9 * before(r), 500) ?? Infinity;
      const stall = (r: FlowRun) => longestStall(r.rx, 2000, SECONDS * 1000 - 500);
      const rs = await untilStable(runs, 300, survivor, one);
      if (rs.isErr()) return err(rs.error);
      const fig = (what: string, f: (r: FlowRun) => number, target: string, ok_: (m: number) => boolean, note: string): SuiteFigure => {
        const xs = rs.value.map(f);
        return { name: `cut isp2 of 2×20 for 10 s, ${DIR_NAME[dir]}: ${what}`, unit: 'ms', runs: xs, median: median(xs), target, met: ok_(median(xs)), note };
      };
      figures.push(
        fig('longest stall', stall, '< 300 ms (the flow never stops)', (m) => m < 300, 'longest run of 50 ms bins with nothing delivered on any link, from 2 s into the flow'),
        fig('time to ≥ 90 % of the survivor after the cut', survivor, '≤ 300 ms', (m) => m <= 300, 'end of the first 200 ms window whose mean delivery reaches 90 % of 20 Mbit (outer bytes)'),
        fig('time to ≥ 90 % of the previous total after the return', back, '≤ 3000 ms', (m) => m <= 3000, 'end of the first 500 ms window whose mean delivery reaches 90 % of the mean over the 3 s before the cut'),
      );
      panels.push(panel(dir, medianRun(rs.value, survivor), 40 * OUTER_RATIO));
    }
    return ok({ figures, plot: { title: '2×20 Mbit/10 ms, isp2 cut for 10 s mid-flow', panels } });
  });
}

/** isp2 of 2×20 dies while nothing flows; the next burst (0.5 s later) must not use it. */
async function idleDeath(lab: string, runs: number): Promise<Result<SuiteResult, MpError>> {
  const GAP_MS = 500;
  return inBond(lab, TWO_20, async (name) => {
    const figures: SuiteFigure[] = [];
    const panels: PlotPanel[] = [];
    for (const dir of DIRS) {
      const one = async (): Promise<Result<{ run: FlowRun; deadBytes: number }, MpError>> => {
        const c = await setLink(name, 'isp2', { down: true })();
        if (c.isErr()) return err(c.error);
        await sleep(GAP_MS);
        const r = await flow(name, 2, dir, { seconds: 3, omitS: 0 });
        const back = await setLink(name, 'isp2', { down: false })();
        if (back.isErr()) return err(back.error);
        await sleep(1500); // probes bring it back before the next run
        if (r.isErr()) return err(r.error);
        const tx = r.value.tx;
        return ok({ run: r.value, deadBytes: tx[tx.length - 1]!.tx[1]! - tx[0]!.tx[1]! });
      };
      const rs = await untilStable(runs, 0, (x) => x.deadBytes, one);
      if (rs.isErr()) return err(rs.error);
      const xs = rs.value.map((x) => x.deadBytes);
      figures.push({
        name: `idle isp2 of 2×20 cut ${GAP_MS} ms before a 3 s burst, ${DIR_NAME[dir]}: data bytes sent on it`,
        unit: 'bytes',
        runs: xs,
        median: median(xs),
        target: '0',
        met: xs.every((x) => x === 0),
        note: 'the sending portal\'s tx bytes on the dead link during the burst (probes are not data)',
      });
      const g = rs.value.map((x) => x.run.iperf.bps / 1e6);
      figures.push({ name: `idle-link death, ${DIR_NAME[dir]}: burst goodput`, unit: 'Mbit/s', runs: g.map(round1), median: round1(median(g)), ceiling: round1((20 * BOND_TCP_CEILING_PCT) / 100) });
      panels.push(panel(dir, rs.value[0]!.run, 40 * OUTER_RATIO, ' (isp2 dead before the burst)'));
    }
    return ok({ figures, plot: { title: '2×20 Mbit/10 ms, isp2 dies while idle', panels } });
  });
}

/** A clean 20 Mbit link paired with a 20 Mbit link losing 2 %, against the clean link alone. */
async function lossy(lab: string, runs: number): Promise<Result<SuiteResult, MpError>> {
  const links: LinkSpec[] = [
    { rate: '20mbit', delay: '10ms' },
    { rate: '20mbit', delay: '10ms', loss: '2%' },
  ];
  return inBond(lab, links, async (name) => {
    const figures: SuiteFigure[] = [];
    const panels: PlotPanel[] = [];
    const mbit = (r: FlowRun) => r.iperf.bps / 1e6;
    const pair = new Map<Dir, FlowRun[]>();
    for (const dir of DIRS) {
      const rs = await untilStable(runs, 1.5, mbit, () => flow(name, 2, dir, { seconds: FLOW_S, omitS: WARM_S }));
      if (rs.isErr()) return err(rs.error);
      pair.set(dir, rs.value);
      panels.push(panel(dir, medianRun(rs.value, mbit), 40 * OUTER_RATIO, ', clean + 2 % loss'));
    }
    const c = await setLink(name, 'isp2', { down: true })();
    if (c.isErr()) return err(c.error);
    await sleep(1500);
    for (const dir of DIRS) {
      const rs = await untilStable(runs, 1.5, mbit, () => flow(name, 2, dir, { seconds: FLOW_S, omitS: WARM_S }));
      if (rs.isErr()) return err(rs.error);
      const alone = rs.value.map(mbit);
      const both = pair.get(dir)!.map(mbit);
      figures.push(
        { name: `lossy pair (20 + 20 Mbit with 2 % loss), ${DIR_NAME[dir]}`, unit: 'Mbit/s', runs: both.map(round1), median: round1(median(both)), ceiling: round1((40 * BOND_TCP_CEILING_PCT) / 100), target: `≥ the clean link alone (${round1(median(alone))} Mbit/s)`, met: median(both) >= median(alone) },
        { name: `the clean 20 Mbit link alone through the bond, ${DIR_NAME[dir]}`, unit: 'Mbit/s', runs: alone.map(round1), median: round1(median(alone)), ceiling: round1((20 * BOND_TCP_CEILING_PCT) / 100), note: 'isp2 cut, so the portals carry everything on isp1' },
      );
    }
    return ok({ figures, plot: { title: '20 Mbit/10 ms + 20 Mbit/10 ms with 2 % random loss', panels } });
  });
}

// ---- the registry -----------------------------------------------------------------------------

const tenMbit = (n: number): LinkSpec[] => Array.from({ length: n }, () => ({ rate: '10mbit', delay: '10ms' }));

/** Scenario name → runner (lab name, runs per figure). Lab names are short: namespaces carry them. */
export const SUITE: Record<string, (runs: number) => Promise<Result<SuiteResult, MpError>>> = {
  '2x20': (n) => tcpShare('bs2x20', '2×20 Mbit/10 ms', TWO_20, 90, n),
  '20+5': (n) => tcpShare('bs20p5', '20 + 5 Mbit/10 ms', [{ rate: '20mbit', delay: '10ms' }, { rate: '5mbit', delay: '10ms' }], 88, n),
  '2x10': (n) => tcpShare('bs2x10', '2×10 Mbit/10 ms', tenMbit(2), 88, n),
  '3x10': (n) => tcpShare('bs3x10', '3×10 Mbit/10 ms', tenMbit(3), 88, n),
  '4x10': (n) => tcpShare('bs4x10', '4×10 Mbit/10 ms', tenMbit(4), 88, n),
  mismatch: (n) => tcpShare('bsmism', '20 Mbit/10 ms + 20 Mbit/60 ms', [{ rate: '20mbit', delay: '10ms' }, { rate: '20mbit', delay: '60ms' }], 85, n, true),
  '300+80': (n) => tcpShare('bs300', '300 Mbit/10 ms + 80 Mbit/30 ms', [{ rate: '300mbit', delay: '10ms' }, { rate: '80mbit', delay: '30ms' }], 85, n, true),
  udp90: (n) => udp90('bsudp', n),
  step: (n) => step('bsstep', n),
  cut: (n) => cut('bscut', n),
  'idle-death': (n) => idleDeath('bsidle', n),
  lossy: (n) => lossy('bslossy', n),
};
