// `mpctl lab bench <name>`: benchmarks that run in their own lab and write JSON.
// Figures are medians of several runs, measured side by side in one invocation.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { labDown, labUp } from './lab.js';
import { iperf, linkAddrs, type IperfResult } from './measure.js';
import { parseScenario, type Scenario } from './scenario.js';

export interface BenchFigure {
  name: string;
  unit: string;
  runs: number[];
  median: number;
  note?: string;
}

export interface BenchReport {
  bench: string;
  startedAt: string;
  host: { cpus: number; kernel: string };
  figures: BenchFigure[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function inLab<T>(name: string, sc: Scenario, f: (lab: string) => Promise<Result<T, MpError>>): Promise<Result<T, MpError>> {
  await labDown(name);
  const up = await labUp({ name, scenario: sc, bond: false });
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

export const BENCHES: Record<string, (runs: number) => Promise<Result<BenchFigure[], MpError>>> = {
  emulator: emulatorBench,
};

export async function runBench(name: string, runs: number, outDir: string): Promise<Result<{ file: string; report: BenchReport }, MpError>> {
  const f = BENCHES[name];
  if (!f)
    return err({ kind: 'NotFound', what: 'benchmark', message: `no benchmark ${name} (have: ${Object.keys(BENCHES).join(', ')})` });
  const { cpus, release } = await import('node:os').then((os) => ({ cpus: os.cpus().length, release: os.release() }));
  const startedAt = new Date().toISOString();
  const figs = await f(runs);
  if (figs.isErr()) return err(figs.error);
  const report: BenchReport = { bench: name, startedAt, host: { cpus, kernel: release }, figures: figs.value };
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, `${name}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  return ok({ file, report });
}

export function renderBench(r: BenchReport): string {
  return [
    `${r.bench} (${r.startedAt}, ${r.host.cpus} CPUs, Linux ${r.host.kernel})`,
    ...r.figures.map((f) => `  ${f.name.padEnd(40)} ${f.median.toFixed(1).padStart(9)} ${f.unit}   runs: ${f.runs.map((x) => x.toFixed(1)).join(', ')}`),
  ].join('\n');
}
