// `mpctl lab bench cpu`: what the portals' processes cost (README "Benchmarks"): user + system time of
// each portal process (/proc/<pid>/stat utime + stime) over a window, as % of one core, idle
// (3 and 16 links) and under a constant UDP load of 20, 100 and 400 Mbit/s through 2 unshaped
// links; and the machine's softirq time (/proc/stat, % of one core: the kernel's packet work, the
// data path included) against plain routing of the same traffic in the bare lab.
//
// Targets: idle <= 1 % of one core per portal with 3 links, <= 3 % with 16 links, <= 3 % per
// portal at 100 Mbit/s through 2 links. The machine runs other work too (`host.load1` in the
// report): figures are medians of `runs` windows. Each part (CPU_PARTS: idle with 3 or 16 links,
// each rate through the bond or plainly routed) runs in a lab of its own, so `--only` can split
// the benchmark into runs of a few minutes each.
import { readFile } from 'node:fs/promises';
import { CPU_PARTS } from './names.js';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../../errors.js';
import { readPortalState } from '../../apply/state.js';
import { portalInstance, startBond, stopBond } from '../bond.js';
import { labDown, labUp, mpctlPath } from '../lab.js';
import { iperf } from '../measure.js';
import { parseScenario, type Scenario } from '../scenario.js';
import { readState } from '../state.js';
import { median, round1, sleep, type SuiteFigure } from './suite.js';

const IDLE_S = 60;
const LOAD_S = 20;
/** A portal's first minutes are not idle: its handshake, each link's path MTU search and V8
 * compiling the loop's functions as they get hot, which for functions run 10-50 times a second
 * takes minutes (lab, 3 links, 60 s windows from `up`, main ca8cd63: the LP at 1.51, 1.46, then
 * 1.26, 1.26, 1.40 % of a core from the fourth minute on; the RP 1.30, 1.25, then 1.10, 1.00,
 * 1.11). A router idles for days: the target windows start IDLE_SETTLE_S after both portals are
 * up, and the second minute (IDLE_EARLY_S on) is reported beside them. */
const IDLE_SETTLE_S = 180;
const IDLE_EARLY_S = 60;
/** Likewise the first flow of a process compiles the busy loop's functions (feedback every
 * 20 ms, the controllers, fast-down): UDP 100 Mbit/s through 2 links, 15 s windows, LP 5.26,
 * 4.53, 3.40 % in the first flow, 3.20, 2.93, 2.80 in a second one after 30 s idle (RP 3.86,
 * 3.20, 2.26, then 2.93, 2.20, 2.40). Each load part runs one flow of LOAD_S at its rate first,
 * reported as the process's first flow, then `runs` measured ones. */
const LOAD_SETTLE_S = 30;
const HZ = 100; // USER_HZ: the unit of /proc/<pid>/stat and /proc/stat on Linux

/** utime + stime of a process, ticks. */
async function procTicks(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  return Number(f[11]) + Number(f[12]); // utime (14), stime (15)
}

/** The machine's softirq ticks (all CPUs). */
async function softirqTicks(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n').find((l) => l.startsWith('cpu '))!;
  return Number(line.trim().split(/\s+/)[7]);
}

interface Window {
  lp: number;
  rp: number;
  softirq: number;
}

/** CPU over `seconds` (% of one core): both portals (null pids: the bare lab) and softirq. */
async function measure(pids: { lp: number; rp: number } | null, seconds: number): Promise<Window> {
  const t0 = process.hrtime.bigint();
  const a = pids ? [await procTicks(pids.lp), await procTicks(pids.rp)] : [0, 0];
  const s0 = await softirqTicks();
  await sleep(seconds * 1000);
  const b = pids ? [await procTicks(pids.lp), await procTicks(pids.rp)] : [0, 0];
  const s1 = await softirqTicks();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const pct = (ticks: number) => Math.round(((ticks / HZ / wall) * 100) * 100) / 100;
  return { lp: pct(b[0]! - a[0]!), rp: pct(b[1]! - a[1]!), softirq: pct(s1 - s0) };
}

async function portalPids(lab: string): Promise<Result<{ lp: number; rp: number }, MpError>> {
  const lp = await readPortalState(portalInstance(lab, 'lp'));
  const rp = await readPortalState(portalInstance(lab, 'rp'));
  if (lp.isErr()) return err(lp.error);
  if (rp.isErr()) return err(rp.error);
  return ok({ lp: lp.value.pid, rp: rp.value.pid });
}

async function inLab<T>(name: string, sc: Scenario, bond: boolean, f: (lab: string) => Promise<Result<T, MpError>>): Promise<Result<T, MpError>> {
  await labDown(name);
  const up = await labUp({ name, scenario: sc, bond: false, routedHosts: false });
  if (up.isErr()) return err(up.error);
  try {
    if (bond) {
      const st = await readState(name);
      if (st.isErr()) return err(st.error);
      const b = await startBond(name, st.value.links, { singleInterface: false }, mpctlPath());
      if (b.isErr()) return err(b.error);
    }
    const r = await f(name);
    if (bond) await stopBond(name, mpctlPath());
    return r;
  } finally {
    await labDown(name);
  }
}

const unshaped = (n: number): Scenario => parseScenario({ links: Array.from({ length: n }, (_, i) => ({ label: `l${i + 1}` })) }, 'bench')._unsafeUnwrap();

interface Load extends Window {
  /** what the server received, Mbit/s */
  receivedMbit: number;
}

/** A UDP load of `mbit` through the lab (client → server) while `measure` runs. */
async function underLoad(lab: string, mbit: number, pids: { lp: number; rp: number } | null): Promise<Result<Load, MpError>> {
  const flow = iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: LOAD_S + 3, udpBps: mbit * 1e6 });
  await sleep(2000);
  const w = await measure(pids, LOAD_S);
  const r = await flow;
  if (r.isErr()) return err(r.error);
  return ok({ ...w, receivedMbit: (r.value.receivedBps ?? r.value.bps) / 1e6 });
}

/** The parts of the benchmark, each in its own lab: `--only` runs some of them (each part fits
 * in a few minutes; the report keeps the other parts' figures from the last run). */
export type CpuPart = (typeof CPU_PARTS)[number];

const load1 = async (): Promise<number> => Math.round((await import('node:os')).loadavg()[0]! * 100) / 100;

export async function cpuBench(runs: number, only: readonly string[] = CPU_PARTS): Promise<Result<SuiteFigure[], MpError>> {
  const unknown = only.filter((p) => !(CPU_PARTS as readonly string[]).includes(p));
  if (unknown.length) return err({ kind: 'ConfigInvalid', path: 'only', value: unknown.join(','), message: `no such part of the cpu benchmark (parts: ${CPU_PARTS.join(', ')})` });
  const figures: SuiteFigure[] = [];
  const both = (name: string, ws: Window[], target: number | null, note: string) => {
    for (const role of ['lp', 'rp'] as const) {
      const xs = ws.map((w) => w[role]);
      const m = median(xs);
      figures.push({
        name: `${name}: ${role.toUpperCase()} process`,
        unit: '% of one core',
        runs: xs,
        median: m,
        ...(target !== null ? { target: `≤ ${target} %`, met: m <= target } : {}),
        note,
      });
    }
  };
  for (const n of [3, 16]) {
    if (!only.includes(`idle${n}`)) continue;
    const r = await inLab('benchcpu', unshaped(n), true, async (lab) => {
      const pids = await portalPids(lab);
      if (pids.isErr()) return err(pids.error);
      await sleep(IDLE_EARLY_S * 1000);
      const early = await measure(pids.value, IDLE_S);
      await sleep((IDLE_SETTLE_S - IDLE_EARLY_S - IDLE_S) * 1000);
      const ws: Window[] = [];
      for (let i = 0; i < runs; i++) ws.push(await measure(pids.value, IDLE_S));
      return ok({ early, ws, load: await load1() });
    });
    if (r.isErr()) return err(r.error);
    both(`idle, ${n} links, ${IDLE_S} s`, r.value.ws, n === 3 ? 1 : 3, `utime + stime of the portal process, windows from ${IDLE_SETTLE_S / 60} minutes after up (machine load1 ${r.value.load})`);
    both(`idle, ${n} links, the second minute after up`, [r.value.early], null, 'utime + stime of the portal process while its code still compiles (not the target: see the steady windows)');
  }
  for (const mbit of [20, 100, 400]) {
    for (const bond of [true, false]) {
      if (!only.includes(`${bond ? 'bond' : 'plain'}${mbit}`)) continue;
      const r = await inLab('benchcpu', unshaped(2), bond, async (lab) => {
        const pids = bond ? await portalPids(lab) : ok(null);
        if (pids.isErr()) return err(pids.error);
        if (bond) await sleep(LOAD_SETTLE_S * 1000);
        const first = await underLoad(lab, mbit, pids.value);
        if (first.isErr()) return err(first.error);
        const ws: Load[] = [];
        for (let i = 0; i < runs; i++) {
          const w = await underLoad(lab, mbit, pids.value);
          if (w.isErr()) return err(w.error);
          ws.push(w.value);
        }
        return ok({ first: first.value, ws, load: await load1() });
      });
      if (r.isErr()) return err(r.error);
      const { first, ws, load } = r.value;
      const got = ws.map((w) => round1(w.receivedMbit));
      const what = `UDP ${mbit} Mbit/s client → server, ${LOAD_S} s`;
      if (bond) {
        both(`${what}, through the bond (2 unshaped links)`, ws, mbit === 100 ? 3 : null, `utime + stime of the portal process, flows after the first (received ${got.join(', ')} Mbit/s; machine load1 ${load})`);
        both(`${what}, through the bond (2 unshaped links), the process's first flow`, [first], null, `utime + stime of the portal process while the busy loop's code compiles (received ${round1(first.receivedMbit)} Mbit/s; not the target)`);
      }
      const sq = ws.map((w) => w.softirq);
      figures.push({
        name: `${what}: machine softirq, ${bond ? 'through the bond' : 'plain routing (bare lab, link 1)'}`,
        unit: '% of one core',
        runs: sq,
        median: median(sq),
        note: `all CPUs' softirq time from /proc/stat (received ${got.join(', ')} Mbit/s; machine load1 ${load})`,
      });
    }
  }
  return ok(figures);
}
