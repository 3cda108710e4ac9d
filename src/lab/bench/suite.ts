// The bonding benchmark suite (README "Benchmarks"): `mpctl lab bench <scenario>`. Each scenario
// brings up its own bonded lab and runs one iperf3 TCP flow client → server and server → client,
// with a CUBIC sender first, then BBR, repeating until the runs agree. Then the same flows over
// the best link alone with plain routing (a bare lab holding only that link: no bond, no tunnel
// headers), so every report holds the bond's ratio to what unplugging the other links would
// give, measured in the same invocation. A figure whose runs spread more than 10 points
// (percent of its median for Mbit/s and ms) is flagged unstable. Plots show throughput over
// time per link and total (the receiving portal's per-link counters, sample.ts).
// bench.ts writes bench-results/<scenario>.json and .svg.
//
//   scenario          links (rate/one-way delay; ↓ = server → client)      what is measured
//   2x20              2 × 20 Mbit/10 ms                                    % of sum ≥ 90, ratio to the best link
//   20+5              20 + 5 Mbit/10 ms                                    % of sum ≥ 88, ratio
//   2x10 3x10 4x10    N × 10 Mbit/10 ms                                    % of sum ≥ 88 each, 4 > 3 > 2, ratio
//   mismatch          20 Mbit/10 ms + 20 Mbit/60 ms                        % of sum ≥ 85, ratio
//   300+80            300 Mbit/10 ms + 80 Mbit/30 ms                       % of sum ≥ 85, ratio
//   lossy             20 Mbit/10 ms + 20 Mbit/10 ms with 2 % loss          ratio ≥ 0.97
//   discover          30/4 ms + 10/22 ms + 4/150 ms, no rates in the config ratio ≥ 0.97
//   discover-demo     the demo's 20/10 + 10/25 ±2 + 30/40 ±1 ms, no rates  % of sum ≥ 88, ratio
//   sat               50 Mbit/6 ms + 5 Mbit/275 ms with 0.5 % loss         ratio ≥ 0.97
//   lte               40↓/10↑ Mbit 8 ms + 25↓/5↑ Mbit 30 ms ±10 ms, 0.5 %  ratio ≥ 0.97
//   lossy2            2 × 20 Mbit/10 ms, 1 % loss on one                   ratio ≥ 0.97
//   cellular          20 Mbit/10 ms DSL + LTE trace (lte-down/up) 30 ms    ratio ≥ 0.97
//   starlink          20 Mbit/10 ms DSL + 30 Mbit whose delay and rate     ratio ≥ 0.97
//                     jump every 15 s (a schedule)
//   flap              2 × 20 Mbit/10 ms, isp2 down 1 s / up 3 s            no second below 90 % of one link
//   udp90             2 × 20 Mbit/10 ms, UDP at 90 % of the sum            loss < 1 %, jitter
//   lossyudp          2 × 20 Mbit/10 ms, 1 % loss on each, UDP at 50 %      loss ≤ 0.1 % (loss recovery), jitter
//   step              2 × 20 Mbit/10 ms, isp2 20 → 5 → 20 mid-flow          time for the total to follow, ≤ 2 s
//   cut               2 × 20 Mbit/10 ms, isp2 cut for 10 s mid-flow         the dip after the cut; longest stall;
//                                                                         back to 90 % ≤ 3 s after the return
//   idle-death        2 × 20 Mbit/10 ms, isp2 cut while idle               data bytes the next burst puts on it: 0
//
// Throughput-over-time figures use outer IP bytes delivered per link, against the links' rates
// scaled by 1500/1514 (tbf counts Ethernet frames; a full-size packet's outer IP bytes are
// 1500 of its 1514). Goodput figures are iperf3's receiver intervals after a 2 s warm-up.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../../errors.js';
import { packagePath } from '../../paths.js';
import { portalInstance, type BondOptions } from '../bond.js';
import { bins, LinkSampler, type Reading } from './sample.js';
import type { PlotPanel } from './plot.js';
import * as emu from '../emulator.js';
import { labDown, labSet, labUp } from '../lab.js';
import { iperf, type IperfResult } from '../measure.js';
import { FRAME_BYTES, nominalBps, traceWindowBps, type LinkSettings } from '../params.js';
import { readFileSync } from 'node:fs';
import { DEFAULT_SCENARIO_RAW, parseScenario, type DirPatch, type Scenario } from '../scenario.js';
import { timeline } from '../timeline.js';
import { nsName } from '../topology.js';
import { redundantBench } from './redundant.js';
import { cpuPressure, pressureShare } from '../pressure.js';
import { armKeep, dropsDelta, keepFlow, keepLabLogs, linkLoss, portalCounts } from './keep.js';

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
  /** the TCP sender's congestion control */
  cc?: string;
  /** spread of the runs in points: max − min for % figures, else as % of the median */
  spread?: number;
  /** spread > 10 points */
  unstable?: boolean;
  /** per run: the share of its time (%) during which some task on the machine waited for a CPU
   * (src/lab/pressure.ts). The lab's veths and emulators share the CPUs with the portals and
   * the end hosts: a contended run's delays and rates are partly the machine's */
  cpuPressurePct?: number[];
}

export interface SuiteResult {
  figures: SuiteFigure[];
  plot: { title: string; panels: PlotPanel[] };
}

export interface SuiteOptions {
  runs: number;
  /** measured seconds of each flow instead of the scenario's (short validation runs) */
  seconds?: number;
}

type Dir = 'up' | 'down';
const DIRS: readonly Dir[] = ['up', 'down'];
const DIR_NAME: Record<Dir, string> = { up: 'client → server', down: 'server → client' };
/** Every TCP scenario runs a CUBIC sender first (most users' hosts), then BBR. */
export const CCS = ['cubic', 'bbr'] as const;
export type Cc = (typeof CCS)[number];
/** The bond against the best link alone: what one flow may lose to the tunnel's headers. */
export const BEST_LINK_TARGET = 0.97;
export const UNSTABLE_POINTS = 10;

/** One full-size inner TCP segment (1448 B inner MTU on 52 B of IPv4/UDP/mpctl headers, TCP
 * timestamps) per 1514 B frame: what one TCP flow through the bond can reach of tbf's rate. */
export const BOND_TCP_CEILING_PCT = ((1500 - 52 - 20 - 20 - 12) / FRAME_BYTES) * 100;
/** Outer IP bytes of a full-size frame: the ceiling of the per-link counters against tbf. */
const OUTER_RATIO = 1500 / FRAME_BYTES;
/** UDP datagrams of 1400 B payload: frame = 1400 + 8 + 20 + 52 + 14. */
const UDP_PAYLOAD = 1400;
const UDP_FRAME = UDP_PAYLOAD + 8 + 20 + 52 + 14;
/** The lab's generated cellular traces (scripts/gen-traces.ts). */
const TRACES = packagePath('test', 'fixtures', 'traces');

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export const sleep = (ms: number): Promise<unknown> => new Promise((r) => setTimeout(r, ms));
export const round1 = (x: number): number => Math.round(x * 10) / 10;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

// ---- bookkeeping (unit-tested without a lab) ---------------------------------------------------

/** Spread of a figure's runs in points: max − min where the unit is a percentage, else relative
 * to the median (a 10 % wide spread of Mbit/s or ms is 10 points). */
export function spreadPoints(f: Pick<SuiteFigure, 'unit' | 'runs' | 'median'>): number {
  const xs = f.runs.filter(Number.isFinite);
  if (xs.length < 2) return 0;
  const w = Math.max(...xs) - Math.min(...xs);
  if (f.unit.startsWith('%')) return w;
  if (f.unit === 'ratio') return w * 100;
  return f.median ? (w / Math.abs(f.median)) * 100 : w === 0 ? 0 : Infinity;
}

/** Adds spread and the unstable flag to every figure that has several runs. */
export function markStability(figs: SuiteFigure[]): SuiteFigure[] {
  return figs.map((f) => {
    if (f.runs.length < 2) return f;
    const spread = round1(spreadPoints(f));
    return { ...f, spread, unstable: spread > UNSTABLE_POINTS };
  });
}

/** The bond against the best link alone, run by run: each bond run over the best link's median. */
export function ratioFigure(name: string, bondMbit: readonly number[], bestMbit: number, cc: string, note: string): SuiteFigure {
  const rs = bondMbit.map((x) => x / bestMbit);
  const m = median(rs);
  return { name, unit: 'ratio', runs: rs.map(round3), median: round3(m), target: `≥ ${BEST_LINK_TARGET}`, met: m >= BEST_LINK_TARGET, cc, note };
}

/** The best of the links measured alone for one direction and CC: highest median goodput. */
export function bestOf(alone: readonly { link: string; mbit: number[] }[]): { link: string; mbit: number[]; median: number } | null {
  let best: { link: string; mbit: number[]; median: number } | null = null;
  for (const a of alone) {
    const m = median(a.mbit);
    if (!best || m > best.median) best = { ...a, median: m };
  }
  return best;
}

/** Links worth measuring alone: within half the fastest's nominal rate in that direction, not
 * going down on a schedule, and one of each set of identical links. */
export function aloneCandidates(links: readonly LinkSettings[], dir: Dir): number[] {
  const rate = (l: LinkSettings) => nominalBps(l[dir]) ?? Infinity;
  const max = Math.max(...links.map(rate));
  const flaps = (l: LinkSettings) => [...l.up.schedule, ...l.down.schedule].some((s) => s.patch.down === true);
  const seen = new Set<string>();
  const out: number[] = [];
  links.forEach((l, i) => {
    const same = JSON.stringify({ up: l.up, down: l.down });
    if (rate(l) < max / 2 || flaps(l) || seen.has(same)) return;
    seen.add(same);
    out.push(i);
  });
  return out;
}

// ---- labs and flows ---------------------------------------------------------------------------

/** A link as a scenario file gives it (rate, delay, loss, trace, schedule, up/down tables). */
type LinkSpec = Record<string, unknown>;

function scenarioOf(links: readonly LinkSpec[]): Scenario {
  return parseScenario({ links: links.map((l) => ({ queue: '60ms', ...l })) }, 'bench', TRACES)._unsafeUnwrap();
}

/** The sum of the links' rates in a direction, Mbit/s; a trace counts with what it delivers in
 * the measured part of a flow (flows start their traces over: flowEvents). */
function sumMbitOf(sc: Scenario, dir: Dir, seconds?: number): number {
  const rate = (l: LinkSettings): number => {
    const d = l[dir];
    if (!d.trace || seconds === undefined) return nominalBps(d) ?? 0;
    const ms = readFileSync(d.trace.file, 'utf8').split('\n').filter((x) => x.trim() !== '').map(Number);
    const t = traceWindowBps(ms, WARM_S * 1000, (WARM_S + seconds) * 1000);
    return d.rateBps === null ? t : Math.min(t, d.rateBps);
  };
  return sc.links.reduce((a, l) => a + rate(l), 0) / 1e6;
}

/** The lab modes of the bonding scenarios (lab.ts UpOptions): routed hosts and shaping portals,
 * the lab's defaults; MPCTL_LAB_ROUTED_HOSTS=0 in the environment attaches the end hosts straight
 * to the portals (and then nothing shapes), MPCTL_LAB_SHAPE=0 keeps the hosts routed but the
 * portals unshaped (`shape = false`), for side-by-side runs. */
export function suiteLabModes(env: NodeJS.ProcessEnv = process.env): { routedHosts: boolean; shape: boolean } {
  const routedHosts = env.MPCTL_LAB_ROUTED_HOSTS !== '0';
  return { routedHosts, shape: routedHosts && env.MPCTL_LAB_SHAPE !== '0' };
}

/** What a suite lab is brought up with besides its links: LP config extras, and routed-hosts mode
 * (lab.ts UpOptions.routedHosts; unset: suiteLabModes). */
interface InLabOptions {
  lp?: BondOptions['lp'];
  routedHosts?: boolean;
}

/** A lab for the duration of `f`, always torn down. Schedules are not started: the flows play
 * them (flowEvents). */
async function inLab<T>(lab: string, sc: Scenario, bond: boolean, f: (lab: string) => Promise<Result<T, MpError>>, o: InLabOptions = {}): Promise<Result<T, MpError>> {
  await labDown(lab);
  const armed = await armKeep();
  if (armed.isErr()) return err(armed.error);
  // the best-link-alone labs have the bond's routed hosts too
  const modes = suiteLabModes();
  const routedHosts = o.routedHosts ?? modes.routedHosts;
  const up = await labUp({ name: lab, scenario: sc, bond, schedules: false, routedHosts, shape: routedHosts && modes.shape, ...(o.lp ? { lp: o.lp } : {}) });
  if (up.isErr()) return err(up.error);
  try {
    // probes answered, first feedback in, and each link measured before the first flow, as a
    // portal that was up before its users' flows has: capacity trains, then the LP's depth
    // trains, then the RP's (run/depth.ts: ~0.3 s, ~1.3 s; one that a flow beats is skipped)
    await sleep(2500);
    const r = await f(lab);
    const kept = await keepLabLogs(lab);
    return r.isOk() && kept.isErr() ? err(kept.error) : r;
  } finally {
    await labDown(lab);
  }
}

const inBond = <T>(lab: string, links: readonly LinkSpec[], f: (lab: string) => Promise<Result<T, MpError>>) => inLab(lab, scenarioOf(links), true, f);

interface FlowEvent {
  atS: number;
  label: string;
  act: () => Promise<Result<unknown, MpError>>;
}

interface FlowRun {
  iperf: IperfResult;
  /** receiving and sending portal counters, one time line (ms since the flow was launched);
   * empty in a bare lab */
  rx: Reading[];
  tx: Reading[];
  /** tMs: when the change had acted (its request returned) */
  events: { tMs: number; label: string }[];
  /** % of the flow's time some task waited for a CPU (null: no PSI) */
  cpuPressurePct: number | null;
}

interface FlowOptions {
  seconds: number;
  omitS: number;
  /** the TCP sender's congestion control (default: the lab's, i.e. the host's default) */
  congestion?: string;
  udpBps?: number;
  events?: FlowEvent[];
  /** a bare lab: no portals to sample */
  bare?: boolean;
}

/** One iperf3 flow client → server ('up') or back, sampling both portals' per-link counters. */
async function flow(lab: string, nLinks: number, dir: Dir, o: FlowOptions): Promise<Result<FlowRun, MpError>> {
  const [rxRole, txRole] = dir === 'up' ? (['rp', 'lp'] as const) : (['lp', 'rp'] as const);
  const origin = performance.now();
  const open = async (role: 'lp' | 'rp') => (o.bare ? ok(null) : LinkSampler.open(portalInstance(lab, role), nLinks, origin));
  const rxs = await open(rxRole);
  if (rxs.isErr()) return err(rxs.error);
  const txs = await open(txRole);
  if (txs.isErr()) {
    rxs.value?.close();
    return err(txs.error);
  }
  const now = () => performance.now() - origin;
  const events: FlowRun['events'] = [];
  try {
    rxs.value?.start(50);
    txs.value?.start(50);
    const d0 = await portalCounts(lab, o.bare ?? false);
    if (d0.isErr()) return err(d0.error);
    const startMs = Date.now();
    const t0 = now();
    const p0 = cpuPressure();
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
      const wait = t0 + e.atS * 1000 - now();
      if (wait > 0) await sleep(wait);
      const r = await e.act();
      if (r.isErr()) return err(r.error);
      events.push({ tMs: now() - t0, label: e.label });
    }
    const res = await run;
    if (res.isErr()) return err(res.error);
    const share = pressureShare(p0, cpuPressure());
    const endMs = Date.now();
    rxs.value?.stop();
    txs.value?.stop();
    const d1 = await portalCounts(lab, o.bare ?? false);
    if (d1.isErr()) return err(d1.error);
    const kept = await keepFlow({
      lab,
      cc: o.congestion ?? 'default',
      dir,
      startMs,
      endMs,
      mbit: round3(res.value.bps / 1e6),
      retransmits: res.value.retransmits,
      intervals: res.value.intervals.map((b) => round3(b / 1e6)),
      ...(d0.value && d1.value ? { drops: { lp: dropsDelta(d0.value.lp.drops, d1.value.lp.drops), rp: dropsDelta(d0.value.rp.drops, d1.value.rp.drops) }, linkLoss: linkLoss(d0.value, d1.value) } : {}),
    });
    if (kept.isErr()) return err(kept.error);
    const shift = (rs: Reading[]) => rs.map((r) => ({ ...r, tMs: r.tMs - t0 }));
    return ok({ iperf: res.value, rx: shift(rxs.value?.readings ?? []), tx: shift(txs.value?.readings ?? []), events, cpuPressurePct: share === null ? null : round1(share * 100) });
  } finally {
    rxs.value?.close();
    txs.value?.close();
  }
}

const describePatch = (p: DirPatch): string =>
  [
    p.rateBps !== undefined ? `${p.rateBps === null ? 'unshaped' : `${p.rateBps / 1e6} Mbit`}` : '',
    p.delayUs !== undefined ? `${p.delayUs / 1000} ms` : '',
    p.down === true ? 'down' : p.down === false ? 'up' : '',
    p.lossPpm !== undefined ? `${p.lossPpm / 1e4} % loss` : '',
  ]
    .filter(Boolean)
    .join(' ');

/**
 * The links' traces started over, then the scenario's schedules as flow events, from `offsetS` into the schedule (so that a change
 * falls inside a short flow) until the flow ends; `node` maps a link to its node in this lab.
 */
export function flowEvents(lab: string, links: readonly LinkSettings[], offsetS: number, seconds: number, node = (n: string) => n): FlowEvent[] {
  // every flow (through the bond or over a link alone) sees its traces from their start
  const out: FlowEvent[] = links.flatMap((l) =>
    DIRS.filter((dir) => l[dir].trace !== null).map((dir) => ({
      atS: 0,
      label: '',
      act: () => labSet({ name: lab, node: node(l.node), dirs: [dir], patch: { trace: l[dir].trace } }),
    })),
  );
  for (const c of timeline(links, (offsetS + seconds) * 1e6)) {
    // changes before the offset set the state the flow starts in (unlabelled, at once)
    const early = c.atUs < offsetS * 1e6;
    out.push({
      atS: early ? 0 : c.atUs / 1e6 - offsetS,
      label: early ? '' : `${node(c.node)} ${describePatch(c.patch)}`,
      act: () => labSet({ name: lab, node: node(c.node), dirs: c.dirs, patch: c.patch }),
    });
  }
  return out;
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
  return { title: `${DIR_NAME[dir]}${note}`, points, events: run.events.filter((e) => e.label).map((e) => ({ tS: round3(e.tMs / 1000), label: e.label })), sumMbit };
}

// ---- the best link alone ------------------------------------------------------------------------

type Alone = Map<string, { link: string; mbit: number[]; median: number }>;
const key = (cc: string, dir: Dir) => `${cc}|${dir}`;

/**
 * Each candidate link (aloneCandidates) alone with plain routing: a bare lab holding only that
 * link (it becomes isp1; its schedule plays from the same offset), one TCP flow each way per
 * CC. Returns the best per CC and direction.
 */
async function bestAlone(lab: string, sc: Scenario, o: { runs: number; seconds: number; offsetS: number; routedHosts?: boolean }): Promise<Result<Alone, MpError>> {
  const found = new Map<string, { link: string; mbit: number[] }[]>();
  const idx = [...new Set([...aloneCandidates(sc.links, 'up'), ...aloneCandidates(sc.links, 'down')])];
  for (const i of idx) {
    const l = sc.links[i]!;
    const single: Scenario = { links: [{ ...l, node: 'isp1' }] };
    const r = await inLab(`${lab}_a`, single, false, async (name) => {
      for (const cc of CCS)
        for (const dir of DIRS) {
          if (!aloneCandidates(sc.links, dir).includes(i)) continue;
          const mbit: number[] = [];
          for (let k = 0; k < o.runs; k++) {
            const f = await flow(name, 1, dir, { seconds: o.seconds, omitS: WARM_S, congestion: cc, bare: true, events: flowEvents(name, single.links, o.offsetS, o.seconds + WARM_S) });
            if (f.isErr()) return err(f.error);
            mbit.push(f.value.iperf.bps / 1e6);
          }
          found.set(key(cc, dir), [...(found.get(key(cc, dir)) ?? []), { link: `${l.node} (${l.label})`, mbit }]);
        }
      return ok(undefined);
    }, { routedHosts: o.routedHosts });
    if (r.isErr()) return err(r.error);
  }
  const out: Alone = new Map();
  for (const [k, v] of found) {
    const b = bestOf(v);
    if (b) out.set(k, b);
  }
  return ok(out);
}

// ---- scenario kinds ---------------------------------------------------------------------------

const FLOW_S = 8;
const WARM_S = 2;

interface TcpScenario {
  title: string;
  links: LinkSpec[];
  /** % of the sum of the nominal rates, where the scenario has such a target */
  targetPct?: number;
  /** measured seconds per flow (default FLOW_S) */
  seconds?: number;
  /** where in the schedules a flow starts, as a fraction of its length before the first change
   * (so that a change falls inside the flow) */
  offsetS?: (seconds: number) => number;
  /** the LP's config names neither rates nor delays (capacity discovery) */
  discover?: boolean;
  /** more figures from each CC and direction's bond runs and the best link alone */
  extra?: (cc: Cc, dir: Dir, runs: FlowRun[], bestMbit: number | null, seconds: number) => SuiteFigure[];
  /** routed-hosts mode for the bond's lab and the best link's (lab.ts UpOptions.routedHosts);
   * unset: suiteLabModes */
  routedHosts?: boolean;
}

/** One TCP flow each way per CC through the bond, then the best link alone: % of the sum and
 * the ratio to the best link. */
async function tcpScenario(lab: string, s: TcpScenario, o: SuiteOptions): Promise<Result<SuiteResult, MpError>> {
  const sc = scenarioOf(s.links);
  const seconds = o.seconds ?? s.seconds ?? FLOW_S;
  const offsetS = s.offsetS?.(seconds) ?? 0;
  const bondRuns = new Map<string, FlowRun[]>();
  const panels: PlotPanel[] = [];
  const lp: BondOptions['lp'] | undefined = s.discover ? { omitRates: true } : undefined;
  const r = await inLab(
    lab,
    sc,
    true,
    async (name) => {
      for (const cc of CCS)
        for (const dir of DIRS) {
          const mbit = (x: FlowRun) => x.iperf.bps / 1e6;
          const rs = await untilStable(o.runs, (3 * sumMbitOf(sc, dir)) / 100, mbit, () =>
            flow(name, sc.links.length, dir, { seconds, omitS: WARM_S, congestion: cc, events: flowEvents(name, sc.links, offsetS, seconds + WARM_S) }),
          );
          if (rs.isErr()) return err(rs.error);
          bondRuns.set(key(cc, dir), rs.value);
          panels.push(panel(dir, medianRun(rs.value, mbit), sumMbitOf(sc, dir, seconds) * OUTER_RATIO, ` (${cc})`));
        }
      return ok(undefined);
    },
    { lp, routedHosts: s.routedHosts },
  );
  if (r.isErr()) {
    if (s.discover && r.error.kind === 'CommandFailed')
      return err({ ...r.error, stderr: `the LP's config without rate and delay (capacity discovery) was rejected: ${r.error.stderr}` });
    return err(r.error);
  }
  const alone = await bestAlone(lab, sc, { runs: o.runs, seconds, offsetS, routedHosts: s.routedHosts });
  if (alone.isErr()) return err(alone.error);
  const figures: SuiteFigure[] = [];
  for (const cc of CCS)
    for (const dir of DIRS) {
      const sum = sumMbitOf(sc, dir, seconds);
      const runs = bondRuns.get(key(cc, dir))!.map((x) => x.iperf.bps / 1e6);
      const pct = runs.map((x) => (x * 100) / sum);
      const best = alone.value.get(key(cc, dir));
      const m = median(pct);
      figures.push({
        name: `${s.title}, 1 TCP flow ${DIR_NAME[dir]} (${cc})`,
        unit: '% of sum',
        runs: pct.map(round1),
        median: round1(m),
        ceiling: round1(BOND_TCP_CEILING_PCT),
        ...(s.targetPct !== undefined ? { target: `≥ ${s.targetPct} %`, met: m >= s.targetPct } : {}),
        cc,
        note: `median ${round1(median(runs))} Mbit/s of ${round1(sum)} Mbit/s${best ? `; best link alone ${round1(best.median)} Mbit/s` : ''}`,
        ...pressureOf(bondRuns.get(key(cc, dir))!),
      });
      if (best) {
        figures.push(
          { name: `${s.title}, best link alone (plain routing), ${DIR_NAME[dir]} (${cc})`, unit: 'Mbit/s', runs: best.mbit.map(round1), median: round1(best.median), cc, note: `${best.link}, bare lab: no bond, no tunnel headers` },
          ratioFigure(`${s.title}, bond / best link alone, ${DIR_NAME[dir]} (${cc})`, runs, best.median, cc, `each bond run over the median of ${best.link} alone; target: the tunnel's header overhead at most`),
        );
      }
      figures.push(...(s.extra?.(cc, dir, bondRuns.get(key(cc, dir))!, best?.median ?? null, seconds) ?? []));
    }
  return ok({ figures, plot: { title: s.title, panels } });
}

/** The runs' CPU pressure, when the kernel has PSI. */
const pressureOf = (runs: readonly FlowRun[]): Pick<SuiteFigure, 'cpuPressurePct'> =>
  runs.every((r) => r.cpuPressurePct !== null) ? { cpuPressurePct: runs.map((r) => r.cpuPressurePct!) } : {};

const TWO_20: LinkSpec[] = [
  { rate: '20mbit', delay: '10ms' },
  { rate: '20mbit', delay: '10ms' },
];

/** The lowest one-second goodput of a flow after its warm-up (iperf3's receiver intervals). */
export const worstSecond = (intervalsBps: readonly number[], seconds: number): number => Math.min(...intervalsBps.slice(WARM_S, WARM_S + seconds)) / 1e6;

/** flap: no second of the flow below 90 % of the best link alone. */
const flapExtra: TcpScenario['extra'] = (cc, dir, runs, best, seconds) => {
  const worst = runs.map((r) => worstSecond(r.iperf.intervals, seconds));
  const m = median(worst);
  return [
    {
      name: `flap, worst second of the flow, ${DIR_NAME[dir]} (${cc})`,
      unit: 'Mbit/s',
      runs: worst.map(round1),
      median: round1(m),
      cc,
      ...(best !== null ? { target: `≥ 90 % of the best link alone (${round1(0.9 * best)} Mbit/s)`, met: Math.min(...worst) >= 0.9 * best } : {}),
      note: "the lowest of iperf3's one-second receiver intervals after the warm-up; met only if every run's worst second is",
    },
  ];
};

/** UDP at `share` of the sum on the wire over `links` (2 × 20 Mbit): loss (target: below
 * `maxLossPct`, or at most it with `atMost`) and jitter, after `omitS` seconds of the flow. */
async function udp90(lab: string, o: SuiteOptions, links = TWO_20, share = 0.9, maxLossPct = 1, atMost = false, what = '', omitS = 0): Promise<Result<SuiteResult, MpError>> {
  const sumMbit = 40;
  const payloadBps = share * sumMbit * 1e6 * (UDP_PAYLOAD / UDP_FRAME);
  const pct = Math.round(share * 100);
  return inBond(lab, links, async (name) => {
    const figures: SuiteFigure[] = [];
    const panels: PlotPanel[] = [];
    for (const dir of DIRS) {
      const loss = (r: FlowRun) => r.iperf.lostPercent ?? 100;
      const rs = await untilStable(o.runs, 1, loss, () => flow(name, 2, dir, { seconds: o.seconds ?? FLOW_S, omitS, udpBps: payloadBps }));
      if (rs.isErr()) return err(rs.error);
      const xs = rs.value.map(loss);
      const js = rs.value.map((r) => r.iperf.jitterMs ?? NaN);
      figures.push(
        {
          name: `UDP ${round1(payloadBps / 1e6)} Mbit/s over 2×20 Mbit${what}, ${DIR_NAME[dir]}: loss`,
          unit: '%',
          runs: xs.map(round3),
          median: round3(median(xs)),
          target: `${atMost ? '≤' : '<'} ${maxLossPct} %`,
          met: atMost ? median(xs) <= maxLossPct : median(xs) < maxLossPct,
          note: `offered ${pct} % of the sum on the wire (${UDP_PAYLOAD} B datagrams, ${UDP_FRAME} B frames)${omitS ? `; after a ${omitS} s warm-up (the links' loss is learned first)` : ''}`,
        },
        { name: `UDP over 2×20 Mbit${what}, ${DIR_NAME[dir]}: jitter`, unit: 'ms', runs: js.map(round3), median: round3(median(js)), note: 'iperf3 (RFC 1889 smoothed)' },
      );
      panels.push(panel(dir, medianRun(rs.value, loss), sumMbit * OUTER_RATIO));
    }
    return ok({ figures, plot: { title: `UDP at ${pct} % of 2×20 Mbit${what}`, panels } });
  });
}

/** First time (ms, relative to `fromMs`) the `windowMs` moving average of the total reaches
 * `mbit`, looking until `toMs`; null: never. */
export function timeToReach(rx: readonly Reading[], fromMs: number, toMs: number, mbit: number, windowMs: number): number | null {
  const i = firstWindow(rx, fromMs, toMs, mbit, windowMs);
  return i === null ? null : i + windowMs;
}

/** Start (ms after `fromMs`) of the first `windowMs` window, on 50 ms bins, whose mean total
 * reaches `mbit`; null: none until `toMs`. */
function firstWindow(rx: readonly Reading[], fromMs: number, toMs: number, mbit: number, windowMs: number): number | null {
  const bs = bins(rx, 'rx', 50, fromMs, toMs);
  const k = Math.max(1, Math.round(windowMs / 50));
  for (let i = 0; i + k <= bs.length; i++) {
    let s = 0;
    for (let j = i; j < i + k; j++) s += bs[j]!.total;
    if (s / k >= mbit) return i * 50;
  }
  return null;
}

/**
 * The dip after a cut, from the moment it acted: how long until delivery is back at `mbit`
 * (the start of the first 200 ms window, on 50 ms bins, whose mean reaches it: 0 when the
 * total never fell below it), and the lowest 50 ms bin in the second after the cut.
 */
export function dip(rx: readonly Reading[], actedMs: number, toMs: number, mbit: number): { ms: number; lowestMbit: number } {
  const bs = bins(rx, 'rx', 50, actedMs, Math.min(toMs, actedMs + 1000));
  return { ms: firstWindow(rx, actedMs, toMs, mbit, 200) ?? Infinity, lowestMbit: bs.length ? Math.min(...bs.map((b) => b.total)) : NaN };
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
const changesIsp2 = (lab: string, dir: Dir, cc: Cc, seconds: number, ...changes: [number, string, Patch][]) => () =>
  flow(lab, 2, dir, { seconds, omitS: 0, congestion: cc, events: changes.map(([atS, label, patch]) => ({ atS, label, act: setLink(lab, 'isp2', patch) })) });

/** isp2 of 2×20 drops to 5 Mbit and comes back, mid-flow: how long the total takes to follow. */
async function step(lab: string, o: SuiteOptions): Promise<Result<SuiteResult, MpError>> {
  const T_DROP = 6;
  const T_BACK = 13;
  const SECONDS = 18;
  return inBond(lab, TWO_20, async (name) => {
    const figures: SuiteFigure[] = [];
    const panels: PlotPanel[] = [];
    for (const cc of CCS)
      for (const dir of DIRS) {
        const one = changesIsp2(name, dir, cc, SECONDS, [T_DROP, 'isp2 → 5 Mbit', { rateBps: 5e6 }], [T_BACK, 'isp2 → 20 Mbit', { rateBps: 20e6 }]);
        const follow = (r: FlowRun, i: number, capMbit: number, untilMs: number) => timeToReach(r.rx, r.events[i]!.tMs, untilMs, 0.9 * capMbit * OUTER_RATIO, 500);
        const down = (r: FlowRun) => follow(r, 0, 25, r.events[1]!.tMs) ?? Infinity;
        const up = (r: FlowRun) => follow(r, 1, 40, SECONDS * 1000) ?? Infinity;
        const rs = await untilStable(o.runs, 500, (r) => Math.max(down(r), up(r)), one);
        if (rs.isErr()) return err(rs.error);
        for (const [what, f] of [
          ['20 → 5 Mbit', down],
          ['5 → 20 Mbit', up],
        ] as const) {
          const xs = rs.value.map(f);
          figures.push({
            name: `step ${what} on isp2 of 2×20, ${DIR_NAME[dir]} (${cc}): time until the total is ≥ 90 % of the new sum`,
            unit: 'ms',
            runs: xs,
            median: median(xs),
            target: '≤ 2000 ms',
            met: median(xs) <= 2000,
            cc,
            note: 'from the change to the end of the first 500 ms window whose mean delivery (outer bytes, all links) reaches 90 % of the new sum; Infinity: never within the phase',
          });
        }
        const goodput = rs.value.map((r) => r.iperf.bps / 1e6);
        figures.push({ name: `step, ${DIR_NAME[dir]} (${cc}): goodput over the whole flow`, unit: 'Mbit/s', runs: goodput.map(round1), median: round1(median(goodput)), cc });
        panels.push(panel(dir, medianRun(rs.value, (r) => Math.max(down(r), up(r))), 40 * OUTER_RATIO, ` (${cc})`));
      }
    return ok({ figures, plot: { title: '2×20 Mbit/10 ms, isp2 steps 20 → 5 → 20 Mbit mid-flow', panels } });
  });
}

/** isp2 of 2×20 cut for 10 s mid-flow. The cut and the return go straight to the emulator (both
 * directions in one request), so the event's time is when the cut acted. */
async function cut(lab: string, o: SuiteOptions): Promise<Result<SuiteResult, MpError>> {
  const T_CUT = 6;
  const T_BACK = 16;
  const SECONDS = 22;
  const cable = (name: string, down: boolean) => () => emu.setParams(nsName(name, 'isp2'), 'both', { down });
  return inBond(lab, TWO_20, async (name) => {
    const figures: SuiteFigure[] = [];
    const panels: PlotPanel[] = [];
    for (const cc of CCS)
      for (const dir of DIRS) {
        const one = () =>
          flow(name, 2, dir, {
            seconds: SECONDS,
            omitS: 0,
            congestion: cc,
            events: [
              { atS: T_CUT, label: 'isp2 cut', act: cable(name, true) },
              { atS: T_BACK, label: 'isp2 back', act: cable(name, false) },
            ],
          });
        const cutMs = (r: FlowRun) => r.events[0]!.tMs;
        const backMs = (r: FlowRun) => r.events[1]!.tMs;
        const before = (r: FlowRun) => meanTotal(r.rx, cutMs(r) - 3000, cutMs(r));
        const survivor = 0.9 * 20 * OUTER_RATIO;
        const dipMs = (r: FlowRun) => dip(r.rx, cutMs(r), backMs(r), survivor).ms;
        const lowest = (r: FlowRun) => dip(r.rx, cutMs(r), backMs(r), survivor).lowestMbit;
        const back = (r: FlowRun) => timeToReach(r.rx, backMs(r), SECONDS * 1000, 0.9 * before(r), 500) ?? Infinity;
        const stall = (r: FlowRun) => longestStall(r.rx, 2000, SECONDS * 1000 - 500);
        const rs = await untilStable(o.runs, 300, dipMs, one);
        if (rs.isErr()) return err(rs.error);
        const fig = (what: string, unit: string, f: (r: FlowRun) => number, target: string | null, ok_: (m: number) => boolean, note: string): SuiteFigure => {
          const xs = rs.value.map(f).map(round1);
          const m = median(xs);
          return { name: `cut isp2 of 2×20 for 10 s, ${DIR_NAME[dir]} (${cc}): ${what}`, unit, runs: xs, median: m, ...(target ? { target, met: ok_(m) } : {}), cc, note };
        };
        figures.push(
          fig('longest stall', 'ms', stall, '< 300 ms (the flow never stops)', (m) => m < 300, 'longest run of 50 ms bins with nothing delivered on any link, from 2 s into the flow'),
          fig('the dip: time from the cut until delivery is back at 90 % of the survivor', 'ms', dipMs, '≤ 300 ms', (m) => m <= 300, 'from the moment the emulator had cut the link to the start of the first 200 ms window (50 ms bins) whose mean delivery reaches 90 % of 20 Mbit (outer bytes); 0: it never fell below'),
          fig('the dip: lowest 50 ms of delivery in the second after the cut', 'Mbit/s', lowest, null, () => true, 'all links, outer bytes'),
          fig('time to ≥ 90 % of the previous total after the return', 'ms', back, '≤ 3000 ms', (m) => m <= 3000, 'end of the first 500 ms window whose mean delivery reaches 90 % of the mean over the 3 s before the cut'),
        );
        panels.push(panel(dir, medianRun(rs.value, dipMs), 40 * OUTER_RATIO, ` (${cc})`));
      }
    return ok({ figures, plot: { title: '2×20 Mbit/10 ms, isp2 cut for 10 s mid-flow', panels } });
  });
}

/** isp2 of 2×20 dies while nothing flows; the next burst (0.5 s later) must not use it. */
async function idleDeath(lab: string, o: SuiteOptions): Promise<Result<SuiteResult, MpError>> {
  const GAP_MS = 500;
  return inBond(lab, TWO_20, async (name) => {
    const figures: SuiteFigure[] = [];
    const panels: PlotPanel[] = [];
    for (const cc of CCS)
      for (const dir of DIRS) {
        const one = async (): Promise<Result<{ run: FlowRun; deadBytes: number }, MpError>> => {
          const c = await setLink(name, 'isp2', { down: true })();
          if (c.isErr()) return err(c.error);
          await sleep(GAP_MS);
          const r = await flow(name, 2, dir, { seconds: 3, omitS: 0, congestion: cc });
          const back = await setLink(name, 'isp2', { down: false })();
          if (back.isErr()) return err(back.error);
          await sleep(1500); // probes bring it back before the next run
          if (r.isErr()) return err(r.error);
          const tx = r.value.tx;
          return ok({ run: r.value, deadBytes: tx[tx.length - 1]!.tx[1]! - tx[0]!.tx[1]! });
        };
        const rs = await untilStable(o.runs, 0, (x) => x.deadBytes, one);
        if (rs.isErr()) return err(rs.error);
        const xs = rs.value.map((x) => x.deadBytes);
        figures.push({
          name: `idle isp2 of 2×20 cut ${GAP_MS} ms before a 3 s burst, ${DIR_NAME[dir]} (${cc}): data bytes sent on it`,
          unit: 'bytes',
          runs: xs,
          median: median(xs),
          target: '0',
          met: xs.every((x) => x === 0),
          cc,
          note: "the sending portal's tx bytes on the dead link during the burst (probes are not data)",
        });
        const g = rs.value.map((x) => x.run.iperf.bps / 1e6);
        figures.push({ name: `idle-link death, ${DIR_NAME[dir]} (${cc}): burst goodput`, unit: 'Mbit/s', runs: g.map(round1), median: round1(median(g)), ceiling: round1((20 * BOND_TCP_CEILING_PCT) / 100), cc });
        panels.push(panel(dir, rs.value[0]!.run, 40 * OUTER_RATIO, ` (${cc}, isp2 dead before the burst)`));
      }
    return ok({ figures, plot: { title: '2×20 Mbit/10 ms, isp2 dies while idle', panels } });
  });
}

// ---- the registry -----------------------------------------------------------------------------

const tenMbit = (n: number): LinkSpec[] => Array.from({ length: n }, () => ({ rate: '10mbit', delay: '10ms' }));

/** Starlink-like: delay and rate jump at every satellite hand-over, every 15 s. */
const STARLINK: LinkSpec = {
  label: 'starlink',
  rate: '30mbit',
  delay: '25ms',
  schedule: [
    { at: '0s', rate: '30mbit', delay: '25ms' },
    { at: '15s', rate: '18mbit', delay: '45ms' },
    { at: '30s', rate: '35mbit', delay: '30ms' },
    { at: '45s', rate: '22mbit', delay: '55ms' },
  ],
  repeat: '60s',
};

const tcp = (lab: string, s: TcpScenario) => (o: SuiteOptions) => tcpScenario(lab, s, o);

/** Scenario name → runner. Lab names are short: namespaces carry them. */
export const SUITE: Record<string, (o: SuiteOptions) => Promise<Result<SuiteResult, MpError>>> = {
  '2x20': tcp('bs2x20', { title: '2×20 Mbit/10 ms', links: TWO_20, targetPct: 90 }),
  '20+5': tcp('bs20p5', { title: '20 + 5 Mbit/10 ms', links: [{ rate: '20mbit', delay: '10ms' }, { rate: '5mbit', delay: '10ms' }], targetPct: 88 }),
  '2x10': tcp('bs2x10', { title: '2×10 Mbit/10 ms', links: tenMbit(2), targetPct: 88 }),
  '3x10': tcp('bs3x10', { title: '3×10 Mbit/10 ms', links: tenMbit(3), targetPct: 88 }),
  '4x10': tcp('bs4x10', { title: '4×10 Mbit/10 ms', links: tenMbit(4), targetPct: 88 }),
  mismatch: tcp('bsmism', { title: '20 Mbit/10 ms + 20 Mbit/60 ms', links: [{ rate: '20mbit', delay: '10ms' }, { rate: '20mbit', delay: '60ms' }], targetPct: 85 }),
  '300+80': tcp('bs300', { title: '300 Mbit/10 ms + 80 Mbit/30 ms', links: [{ rate: '300mbit', delay: '10ms' }, { rate: '80mbit', delay: '30ms' }], targetPct: 85 }),
  lossy: tcp('bslossy', { title: '20 Mbit/10 ms + 20 Mbit/10 ms with 2 % loss', links: [{ rate: '20mbit', delay: '10ms' }, { rate: '20mbit', delay: '10ms', loss: '2%' }] }),
  discover: tcp('bsdisc', {
    title: '30 Mbit/4 ms + 10 Mbit/22 ms + 4 Mbit/150 ms, rates not configured',
    links: [
      { rate: '30mbit', delay: '4ms' },
      { rate: '10mbit', delay: '22ms' },
      { rate: '4mbit', delay: '150ms' },
    ],
    discover: true,
  }),
  'discover-demo': tcp('bsdemo', {
    title: 'the demo\'s links, 20 Mbit/10 ms + 10 Mbit/25 ms ±2 ms + 30 Mbit/40 ms ±1 ms, rates not configured',
    links: DEFAULT_SCENARIO_RAW.links,
    targetPct: 88,
    discover: true,
  }),
  sat: tcp('bssat', { title: '50 Mbit/6 ms + 5 Mbit/275 ms with 0.5 % loss (GEO satellite)', links: [{ label: 'fibre', rate: '50mbit', delay: '6ms' }, { label: 'geo', rate: '5mbit', delay: '275ms', loss: '0.5%' }] }),
  lte: tcp('bslte', {
    title: '40↓/10↑ Mbit 8 ms + 25↓/5↑ Mbit 30 ms ±10 ms with 0.5 % loss (cellular)',
    links: [
      { label: 'cable', delay: '8ms', up: { rate: '10mbit' }, down: { rate: '40mbit' } },
      { label: 'lte', delay: '30ms', jitter: '10ms', loss: '0.5%', up: { rate: '5mbit' }, down: { rate: '25mbit' } },
    ],
  }),
  lossy2: tcp('bslossy2', { title: '2×20 Mbit/10 ms, 1 % loss on one', links: [{ rate: '20mbit', delay: '10ms' }, { rate: '20mbit', delay: '10ms', loss: '1%' }] }),
  cellular: tcp('bscell', {
    title: '20 Mbit/10 ms DSL + LTE trace (2-40 Mbit/s) 30 ms',
    links: [
      { label: 'dsl', rate: '20mbit', delay: '10ms' },
      { label: 'lte', delay: '30ms', queue: '100ms', up: { trace: 'lte-up.trace' }, down: { trace: 'lte-down.trace' } },
    ],
  }),
  starlink: tcp('bsstar', {
    title: '20 Mbit/10 ms DSL + Starlink-like 18-35 Mbit, 25-55 ms, jumping every 15 s',
    links: [{ label: 'dsl', rate: '20mbit', delay: '10ms' }, STARLINK],
    seconds: 18,
    // a hand-over 40 % into the measured part of the flow
    offsetS: (seconds) => 15 - WARM_S - 0.4 * seconds,
  }),
  flap: tcp('bsflap', {
    title: '2×20 Mbit/10 ms, isp2 down 1 s / up 3 s',
    links: [{ rate: '20mbit', delay: '10ms' }, { rate: '20mbit', delay: '10ms', schedule: [{ at: '0s', outage: false }, { at: '3s', outage: true }], repeat: '4s' }],
    seconds: 30,
    extra: flapExtra,
  }),
  udp90: (o) => udp90('bsudp', o),
  lossyudp: (o) =>
    udp90('bslossudp', o, [{ rate: '20mbit', delay: '10ms', loss: '1%' }, { rate: '20mbit', delay: '10ms', loss: '1%' }], 0.5, 0.1, true, ' with 1 % loss on each', WARM_S),
  step: (o) => step('bsstep', o),
  cut: (o) => cut('bscut', o),
  'idle-death': (o) => idleDeath('bsidle', o),
  redundant: (o) => redundantBench('bsredundant', o),
};
