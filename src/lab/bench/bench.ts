// `mpctl lab bench <name>`: benchmarks that run in their own lab and write JSON.
// Figures are medians of several runs, measured side by side in one invocation.
// `emulator` and `datapath` are here; the bonding scenarios (2x20, mismatch, cut, …) are in
// suite.ts and also write a plot (<name>.svg).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { err, ok, type Result } from 'neverthrow';
import { describeError, type MpError } from '../../errors.js';
import { startBond, stopBond } from '../bond.js';
import { labDown, labUp, mpctlPath } from '../lab.js';
import { parseRate } from '../params.js';
import { readState } from '../state.js';
import { iperf, linkAddrs, type IperfResult } from '../measure.js';
import { parseScenario, type Scenario } from '../scenario.js';
import { CCS, markStability, median, round1, SUITE, suiteLabModes, type SuiteFigure } from './suite.js';
import { run as runCmd } from '../namespaces.js';
import { packagePath } from '../../paths.js';
import { renderPlot } from './plot.js';
import { cpuBench } from './cpu.js';

export type BenchFigure = SuiteFigure;

export interface BenchReport {
  bench: string;
  startedAt: string;
  /** wall-clock seconds the benchmark took (lab up and down included) */
  durationS: number;
  /** the tree measured: HEAD and whether the work tree differed from it */
  git: { commit: string; dirty: boolean };
  /** load1: other work on the machine while it ran; tcpCc: the host's default TCP congestion
   * control (the bonding scenarios set theirs per flow: `ccs`) */
  host: { cpus: number; kernel: string; load1: number; tcpCc: string };
  /** the senders' congestion controls, in the order they ran (bonding scenarios) */
  ccs?: string[];
  /** measured seconds per flow when overridden (`--seconds`: a short validation run) */
  seconds?: number;
  /** the bonding scenarios' lab modes (suite.ts suiteLabModes): "routed-hosts" (the end hosts
   * one routed hop away), "shape" (the portals shape their links); absent in reports from before
   * these modes existed or were the default: neither */
  modes?: string[];
  /** names of the figures whose runs spread more than 10 points */
  unstable: string[];
  figures: BenchFigure[];
}

/** The bonding scenarios' lab modes (suite.ts inLab), as the report names them. */
const labModes = (): string[] => {
  const m = suiteLabModes();
  return [...(m.shape ? ['shape'] : []), ...(m.routedHosts ? ['routed-hosts'] : [])];
};

async function inLab<T>(name: string, sc: Scenario, f: (lab: string) => Promise<Result<T, MpError>>): Promise<Result<T, MpError>> {
  await labDown(name);
  // the data path's and the emulator's costs: end hosts on the portals, as those reports ran
  const up = await labUp({ name, scenario: sc, bond: false, routedHosts: false });
  if (up.isErr()) return err(up.error);
  try {
    return await f(name);
  } finally {
    await labDown(name);
  }
}

/** TCP over links 1..n at once, lp → inet (or reverse); aggregate goodput in bit/s. */
async function parallelTcp(lab: string, n: number, seconds: number, reverse = false): Promise<Result<number, MpError>> {
  const runs = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const a = linkAddrs(i + 1);
      return iperf(lab, { server: { node: 'inet', addr: a.gw }, client: { node: 'lp', addr: a.lp }, seconds, omitS: 1, reverse });
    }),
  );
  let sum = 0;
  for (const r of runs) {
    if (r.isErr()) return err(r.error);
    sum += (r.value as IperfResult).bps;
  }
  return ok(sum);
}

/**
 * The link emulator's capacity: unshaped links (no tbf), so linkem's AF_PACKET delay line is the
 * only thing between lp and inet. One link and three links at once, with 0 and 10 ms delay.
 */
async function emulatorBench(runs: number): Promise<Result<BenchFigure[], MpError>> {
  const figures: BenchFigure[] = [];
  for (const delay of ['0', '10ms']) {
    const sc = parseScenario({ links: [{ delay }, { delay }, { delay }] }, 'bench')._unsafeUnwrap();
    const r = await inLab('benchemu', sc, async (lab) => {
      const out: BenchFigure[] = [];
      for (const [n, reverse] of [
        [1, false],
        [3, false],
        [3, true],
      ] as const) {
        const xs: number[] = [];
        for (let i = 0; i < runs; i++) {
          const v = await parallelTcp(lab, n, 4, reverse);
          if (v.isErr()) return err(v.error);
          xs.push(v.value / 1e6);
        }
        out.push({
          name: `emulator ${n} link${n > 1 ? 's' : ''} ${reverse ? 'down' : 'up'}, delay ${delay}`,
          unit: 'Mbit/s',
          runs: xs,
          median: median(xs),
          note: 'iperf3 TCP goodput through linkem, no rate limit; target ≥ 400 Mbit/s aggregate',
        });
      }
      return ok(out);
    });
    if (r.isErr()) return err(r.error);
    figures.push(...r.value);
  }
  return ok(figures);
}

/** The unshaped cases: 1 and 4 TCP flows, client → server and server → client (reverse). */
const FLOW_CASES = [
  [1, false],
  [1, true],
  [4, false],
  [4, true],
] as const;

/** client → server (or reverse) through whatever the lab currently routes: bare or bonded. */
async function clientServer(lab: string, streams: number, reverse: boolean, seconds = 5): Promise<Result<number, MpError>> {
  return (await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds, omitS: 2, streams, reverse })).map(
    (r) => r.bps / 1e6,
  );
}

async function repeat(runs: number, f: () => Promise<Result<number, MpError>>): Promise<Result<number[], MpError>> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const v = await f();
    if (v.isErr()) return err(v.error);
    xs.push(v.value);
  }
  return ok(xs);
}

/**
 * The data path's cost and the bond's sum, side by side in one run:
 *  - one unshaped link: plain routing (bare lab) vs the same path through both portals,
 *    1 and 4 TCP flows, both directions (wire-size packets on both: the lab turns TSO/GSO/GRO off);
 *  - shaped links (2×20 Mbit, 20+5 Mbit, 10 ms): one TCP flow as % of the sum of the rates.
 */
async function datapathBench(runs: number): Promise<Result<BenchFigure[], MpError>> {
  const figures: BenchFigure[] = [];
  const one = parseScenario({ links: [{ label: 'veth' }] }, 'bench')._unsafeUnwrap();
  const r = await inLab('benchdp', one, async (lab) => {
    const out: BenchFigure[] = [];
    const plain = new Map<string, number>();
    for (const mode of ['plain', 'bond'] as const) {
      if (mode === 'bond') {
        const st = await readState(lab);
        if (st.isErr()) return err(st.error);
        const b = await startBond(lab, st.value.links, { singleInterface: false }, mpctlPath());
        if (b.isErr()) return err(b.error);
      }
      for (const [streams, reverse] of FLOW_CASES) {
        const xs = await repeat(runs, () => clientServer(lab, streams, reverse));
        if (xs.isErr()) return err(xs.error);
        const k = `${streams} flow${streams > 1 ? 's' : ''} ${reverse ? 'server → client' : 'client → server'}`;
        const m = median(xs.value);
        if (mode === 'plain') plain.set(k, m);
        out.push({
          name: `${mode === 'plain' ? 'plain routing' : 'through the bond'}, 1 unshaped link, ${k}`,
          unit: 'Mbit/s',
          runs: xs.value,
          median: m,
          ...(mode === 'bond' ? { note: `ratio to plain routing: ${(m / plain.get(k)!).toFixed(3)} (authenticated; the auth bench has the MAC's share)` } : {}),
        });
      }
    }
    await stopBond(lab, mpctlPath());
    return ok(out);
  });
  if (r.isErr()) return err(r.error);
  figures.push(...r.value);
  for (const [label, rates] of [
    ['2×20 Mbit', ['20mbit', '20mbit']],
    ['20+5 Mbit', ['20mbit', '5mbit']],
  ] as const) {
    const sc = parseScenario({ links: rates.map((rate) => ({ rate, delay: '10ms', queue: '60ms' })) }, 'bench')._unsafeUnwrap();
    const sum = rates.map((x) => parseRate(x) as number).reduce((a, b) => a + b, 0);
    const s = await inLab('benchsh', sc, async (lab) => {
      const st = await readState(lab);
      if (st.isErr()) return err(st.error);
      const b = await startBond(lab, st.value.links, { singleInterface: false }, mpctlPath());
      if (b.isErr()) return err(b.error);
      const out: BenchFigure[] = [];
      for (const reverse of [false, true]) {
        const xs = await repeat(runs, () => clientServer(lab, 1, reverse, 8));
        if (xs.isErr()) return err(xs.error);
        const pct = xs.value.map((x) => (x * 1e6 * 100) / sum);
        out.push({
          name: `${label}, 10 ms, 1 TCP flow ${reverse ? 'server → client' : 'client → server'}`,
          unit: '% of sum',
          runs: pct,
          median: median(pct),
          note: `per-link congestion control from the configured starting rates; ceiling with 52 B of outer headers ≈ ${(((1500 - 52 - 52) / 1514) * 100).toFixed(1)} %`,
        });
      }
      await stopBond(lab, mpctlPath());
      return ok(out);
    });
    if (s.isErr()) return err(s.error);
    figures.push(...s.value);
  }
  return ok(figures);
}

/**
 * What the per-packet MAC costs: unshaped TCP through the bond on one link, both portals with
 * `insecure_no_auth = true` (no MAC, no replay window: MP_CFG_NO_AUTH) against the same with
 * keys. The two alternate run by run (the portals restart in between), so that whatever else
 * the machine does falls on both alike. Target: authenticated ≥ 80 % of unauthenticated.
 */
async function authBench(runs: number): Promise<Result<BenchFigure[], MpError>> {
  const one = parseScenario({ links: [{ label: 'veth' }] }, 'bench')._unsafeUnwrap();
  return inLab('benchauth', one, async (lab) => {
    const st = await readState(lab);
    if (st.isErr()) return err(st.error);
    const xs = new Map<string, number[]>();
    for (let i = 0; i < runs; i++) {
      for (const insecureNoAuth of [true, false]) {
        const b = await startBond(lab, st.value.links, { singleInterface: false, insecureNoAuth }, mpctlPath());
        if (b.isErr()) return err(b.error);
        for (const [streams, reverse] of FLOW_CASES) {
          const v = await clientServer(lab, streams, reverse);
          if (v.isErr()) return err(v.error);
          const k = `${insecureNoAuth}|${streams}|${reverse}`;
          xs.set(k, [...(xs.get(k) ?? []), v.value]);
        }
        await stopBond(lab, mpctlPath());
      }
    }
    const out: BenchFigure[] = [];
    for (const [streams, reverse] of FLOW_CASES) {
      const flows = `${streams} flow${streams > 1 ? 's' : ''} ${reverse ? 'server → client' : 'client → server'}`;
      const off = xs.get(`true|${streams}|${reverse}`) ?? [];
      const on = xs.get(`false|${streams}|${reverse}`) ?? [];
      const ratio = median(on) / median(off);
      out.push(
        { name: `bond without authentication (insecure_no_auth), 1 unshaped link, ${flows}`, unit: 'Mbit/s', runs: off, median: median(off) },
        {
          name: `bond with per-packet MAC and replay window, 1 unshaped link, ${flows}`,
          unit: 'Mbit/s',
          runs: on,
          median: median(on),
          target: 'MAC costs ≤ 20 %',
          met: ratio >= 0.8,
          note: `ratio to insecure_no_auth: ${ratio.toFixed(3)}`,
        },
      );
    }
    return ok(out);
  });
}

/** Benchmarks without a plot. */
const PLAIN: Record<string, (runs: number, only?: readonly string[]) => Promise<Result<BenchFigure[], MpError>>> = {
  emulator: emulatorBench,
  datapath: datapathBench,
  auth: authBench,
  cpu: cpuBench,
};

/** Every benchmark, in the order `mpctl lab bench` (no names) runs them: the bonding suite first. */
export const BENCHES: readonly string[] = [...Object.keys(SUITE), ...Object.keys(PLAIN)];

/** `only`: some parts of a benchmark that has them (cpu: CPU_PARTS); the report keeps the
 * figures of the other parts from the file already there. */
export async function runBench(name: string, runs: number, outDir: string, seconds?: number, only?: readonly string[]): Promise<Result<{ file: string; plot: string | null; report: BenchReport }, MpError>> {
  const suite = SUITE[name];
  const plain = PLAIN[name];
  if (!suite && !plain)
    return err({ kind: 'NotFound', what: 'benchmark', message: `no benchmark ${name} (have: ${BENCHES.join(', ')})` });
  const os = await import('node:os');
  if (suite) {
    const cc = await ccsAvailable();
    if (cc.isErr()) return err(cc.error);
  }
  const git = await gitState(packagePath(), outDir);
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  let figures: BenchFigure[];
  let svg: string | null = null;
  if (suite) {
    const r = await suite({ runs, ...(seconds !== undefined ? { seconds } : {}) });
    if (r.isErr()) return err(r.error);
    figures = r.value.figures;
    const plot = await renderPlot(r.value.plot.title, r.value.plot.panels);
    if (plot.isOk()) svg = plot.value;
    else process.stderr.write(`mpctl: no plot for ${name}: ${describeError(plot.error)}\n`);
  } else {
    if (only && name !== 'cpu') return err({ kind: 'ConfigInvalid', path: 'only', value: only.join(','), message: `benchmark ${name} has no parts` });
    const r = await plain!(runs, ...(only ? [only] : []));
    if (r.isErr()) return err(r.error);
    figures = r.value;
  }
  const file = join(outDir, `${name}.json`);
  if (only) {
    // the other parts' figures stay as the last run measured them
    const prev = await readFile(file, 'utf8').then((t) => (JSON.parse(t) as BenchReport).figures, () => [] as BenchFigure[]);
    const fresh = new Set(figures.map((f) => f.name));
    figures = [...prev.filter((f) => !fresh.has(f.name)), ...figures];
  }
  figures = markStability(figures);
  const modes = labModes();
  const report: BenchReport = {
    bench: name,
    startedAt,
    durationS: Math.round((Date.now() - t0) / 1000),
    git,
    host: { cpus: os.cpus().length, kernel: os.release(), load1: Math.round(os.loadavg()[0]! * 100) / 100, tcpCc: await tcpCc() },
    ...(suite && figures.some((f) => f.cc) ? { ccs: [...CCS] } : {}),
    ...(seconds !== undefined ? { seconds } : {}),
    ...(suite && modes.length ? { modes } : {}),
    unstable: figures.filter((f) => f.unstable).map((f) => f.name),
    figures,
  };
  await mkdir(outDir, { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  let plot: string | null = null;
  if (svg !== null) {
    plot = join(outDir, `${name}.svg`);
    await writeFile(plot, svg);
  }
  return ok({ file, plot, report });
}

/** The commit measured and whether the work tree had changes (`git status --porcelain`).
 * `reports`: the directory the reports go to; changes there are other benches' reports, not
 * the code measured (a bench run right after another was "dirty" from the first one's JSON). */
export async function gitState(cwd = packagePath(), reports?: string): Promise<{ commit: string; dirty: boolean }> {
  const head = await runCmd('git', ['-C', cwd, 'rev-parse', 'HEAD']);
  const rel = reports === undefined ? '' : relative(cwd, resolve(reports));
  const only = rel && !rel.startsWith('..') && !isAbsolute(rel) ? ['--', '.', `:(exclude)${rel}`] : [];
  const st = await runCmd('git', ['-C', cwd, 'status', '--porcelain', '--untracked-files=no', ...only]);
  return { commit: head.isOk() ? head.value.trim() : 'unknown', dirty: st.isOk() ? st.value.trim() !== '' : true };
}

/** Both congestion controls the bonding scenarios use must be available to the lab's hosts
 * (the list is the kernel's, the same in every namespace). */
async function ccsAvailable(): Promise<Result<void, MpError>> {
  const avail = (await readFile('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8').catch(() => '')).trim().split(/\s+/);
  const missing = CCS.filter((c) => !avail.includes(c));
  return missing.length
    ? err({ kind: 'ConfigInvalid', path: 'net.ipv4.tcp_available_congestion_control', value: avail.join(' '), message: `lacks ${missing.join(', ')} (modprobe tcp_${missing[0]}): every bonding scenario runs ${CCS.join(' then ')}` })
    : ok(undefined);
}

async function tcpCc(): Promise<string> {
  return (await readFile('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').catch(() => '?')).trim();
}

const fmt = (x: number, unit = ''): string =>
  Number.isFinite(x) ? (unit === 'ratio' ? x.toFixed(3) : Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1)) : 'never';

/** How far an unstable figure's runs spread: in points, or (a median of 0, where points relative
 * to it are infinite; `null` once through JSON) the range itself. */
export function spreadText(f: Pick<SuiteFigure, 'spread' | 'runs' | 'unit'>): string {
  if (typeof f.spread === 'number' && Number.isFinite(f.spread)) return `spread ${fmt(f.spread)} points`;
  const xs = f.runs.filter(Number.isFinite);
  return `runs from ${fmt(Math.min(...xs), f.unit)} to ${fmt(Math.max(...xs), f.unit)} ${f.unit} around a median of 0`;
}

export function renderBench(r: BenchReport): string {
  return [
    `${r.bench} (${r.startedAt}, ${r.durationS} s, ${r.git ? `${r.git.commit.slice(0, 12)}${r.git.dirty ? '+dirty' : ''}, ` : ''}${r.host.cpus} CPUs, load ${r.host.load1}, Linux ${r.host.kernel}, host TCP ${r.host.tcpCc}${r.seconds !== undefined ? `, ${r.seconds} s flows` : ''}${r.modes ? `, ${r.modes.join(' + ')}` : ''})`,
    ...r.figures.map(
      (f) =>
        `  ${f.name}\n      ${fmt(f.median, f.unit)} ${f.unit}` +
        `${f.ceiling !== undefined ? ` (ceiling ${fmt(f.ceiling)})` : ''}` +
        `${f.target !== undefined ? `  target ${f.target}: ${f.met ? 'met' : 'MISSED'}` : ''}` +
        `   runs: ${f.runs.map((x) => fmt(x, f.unit)).join(', ')}${f.unstable ? `  UNSTABLE (${spreadText(f)})` : ''}` +
        `${f.cpuPressurePct ? `\n      cpu pressure (% of each run's time a task waited for a CPU): ${f.cpuPressurePct.join(', ')}` : ''}`,
    ),
  ].join('\n');
}

/** 2, 3 and 4 × 10 Mbit must rank 4 > 3 > 2 in goodput, for each CC and direction: checked
 * across their reports. */
export function tenMbitOrder(reports: ReadonlyMap<string, BenchReport>): BenchFigure | null {
  const mbit = (n: number, dir: string, cc: string) => {
    const f = reports.get(`${n}x10`)?.figures.find((x) => x.unit === '% of sum' && x.cc === cc && x.name.includes(`1 TCP flow ${dir}`));
    return f ? (f.median * n * 10) / 100 : null;
  };
  const out: number[] = [];
  let met = true;
  for (const cc of CCS)
    for (const dir of ['client → server', 'server → client']) {
      const xs = [2, 3, 4].map((n) => mbit(n, dir, cc));
      if (xs.some((x) => x === null)) return null;
      const [a, b, c] = xs as number[];
      out.push(a!, b!, c!);
      met &&= c! > b! && b! > a!;
    }
  return {
    name: `N × 10 Mbit goodput, 2/3/4 links, ${CCS.map((cc) => `${cc}: client → server then server → client`).join('; ')}`,
    unit: 'Mbit/s',
    runs: out.map(round1),
    median: NaN,
    target: '4 > 3 > 2',
    met,
  };
}

/**
 * bench-results/summary.json and summary.txt: every figure of every report in `outDir` (run now
 * or earlier), with its ceiling, target and whether it was met, plus the 4 > 3 > 2 check.
 */
export async function writeSummary(outDir: string): Promise<{ file: string; text: string }> {
  const reports = new Map<string, BenchReport>();
  for (const name of BENCHES) {
    try {
      reports.set(name, JSON.parse(await readFile(join(outDir, `${name}.json`), 'utf8')) as BenchReport);
    } catch {
      /* not run yet */
    }
  }
  const order = tenMbitOrder(reports);
  const summary = {
    generatedAt: new Date().toISOString(),
    benches: [...reports.values()].map((r) => ({ bench: r.bench, startedAt: r.startedAt, durationS: r.durationS, figures: r.figures })),
    ...(order ? { tenMbitOrder: order } : {}),
  };
  const file = join(outDir, 'summary.json');
  await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
  const text = [...reports.values()].map(renderBench).join('\n') + (order ? `\n${order.name}: ${order.runs.join(', ')} → ${order.met ? 'met' : 'MISSED'}` : '');
  await writeFile(join(outDir, 'summary.txt'), `${text}\n`);
  return { file, text };
}
