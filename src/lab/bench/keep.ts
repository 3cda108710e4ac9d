// What a bench keeps for a study of its runs (README "Benchmarks"). With MPCTL_BENCH_KEEP=<dir>
// in the environment:
//   - both portals trace their controllers: MPCTL_CC_TRACE=<dir>/cc, one file per portal
//     process (cc/loop.ts; its first line holds the wall clock of its time 0);
//   - every flow is a line of <dir>/flows.jsonl: when it ran (wall clock, ms), its lab, CC and
//     direction, goodput, retransmissions, iperf3's one-second intervals, what each portal
//     dropped during it, by reason, and what each link lost each way (real losses, against which
//     the retransmissions beyond them are spurious);
//   - each lab's logs (portals, emulators, iperf3) are copied to <dir>/<lab>-<n>/ before the lab
//     is taken down (the lab's own directory goes with it).
// A run below the best link alone can then be read in the traces and logs of its own seconds.
// Without the variable nothing is kept and nothing is read.
import { appendFile, copyFile, mkdir, readdir } from 'node:fs/promises';
import { err, ok, type Result } from 'neverthrow';
import { fileError, type MpError } from '../../errors.js';
import { portalStatus } from '../../run/status.js';
import { portalInstance } from '../bond.js';
import { labDir } from '../state.js';

export const KEEP_ENV = 'MPCTL_BENCH_KEEP';

/** The directory runs are kept in; null: none asked for. */
export const keepDir = (env: NodeJS.ProcessEnv = process.env): string | null => env[KEEP_ENV] || null;

/** Creates the directory and points the portals' controller traces into it (they inherit the
 * environment), unless a trace was asked for already. */
export async function armKeep(env: NodeJS.ProcessEnv = process.env): Promise<Result<void, MpError>> {
  const dir = keepDir(env);
  if (!dir) return ok(undefined);
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    return err(fileError(`create (${KEEP_ENV})`, dir, e));
  }
  env.MPCTL_CC_TRACE ||= `${dir}/cc`;
  return ok(undefined);
}

let kept = 0;

/** Copies the lab's logs to <dir>/<lab>-<n>/ (n counts the labs kept by this process). */
export async function keepLabLogs(lab: string, env: NodeJS.ProcessEnv = process.env): Promise<Result<void, MpError>> {
  const dir = keepDir(env);
  if (!dir) return ok(undefined);
  const to = `${dir}/${lab}-${++kept}`;
  try {
    await mkdir(to, { recursive: true });
    for (const f of await readdir(labDir(lab))) if (f.endsWith('.log')) await copyFile(`${labDir(lab)}/${f}`, `${to}/${f}`);
    return ok(undefined);
  } catch (e) {
    return err(fileError(`copy lab ${lab}'s logs (${KEEP_ENV}) to`, to, e));
  }
}

export type Drops = Record<string, number>;

/** A portal's counters a kept flow reads before and after it: drops by reason, and each link's
 * packets sent and received (data and control). */
export interface PortalCounts {
  drops: Drops;
  links: { id: number; tx: number; rx: number }[];
}

/** Both portals' counters (a bare lab has none: null). */
export async function portalCounts(lab: string, bare: boolean): Promise<Result<{ lp: PortalCounts; rp: PortalCounts } | null, MpError>> {
  if (bare || !keepDir()) return ok(null);
  const read = async (role: 'lp' | 'rp'): Promise<Result<PortalCounts, MpError>> => {
    const s = await portalStatus(portalInstance(lab, role));
    return s.map((v) => ({ drops: v.drops, links: v.links.map((l) => ({ id: l.id, tx: l.tx.packets, rx: l.rx.packets })) }));
  };
  const lp = await read('lp');
  if (lp.isErr()) return err(lp.error);
  const rp = await read('rp');
  if (rp.isErr()) return err(rp.error);
  return ok({ lp: lp.value, rp: rp.value });
}

/** Packets each link lost each way between two readings, by link id: what one portal sent on it
 * less what the other received (up: the LP's sent, the RP's received). Control messages count
 * too, and a packet in flight at the second reading counts as lost: a few. Set beside a flow's
 * retransmissions it tells real losses from spurious ones (the end hosts taking the bond's
 * reordering for loss). */
export function linkLoss(a: { lp: PortalCounts; rp: PortalCounts }, b: { lp: PortalCounts; rp: PortalCounts }): { up: Record<number, number>; down: Record<number, number> } {
  const delta = (x: PortalCounts, y: PortalCounts, id: number, k: 'tx' | 'rx') => (y.links.find((l) => l.id === id)?.[k] ?? 0) - (x.links.find((l) => l.id === id)?.[k] ?? 0);
  const up: Record<number, number> = {};
  const down: Record<number, number> = {};
  for (const { id } of b.lp.links) {
    up[id] = delta(a.lp, b.lp, id, 'tx') - delta(a.rp, b.rp, id, 'rx');
    down[id] = delta(a.rp, b.rp, id, 'tx') - delta(a.lp, b.lp, id, 'rx');
  }
  return { up, down };
}

/** What grew from `a` to `b`, reasons that did not left out. */
export function dropsDelta(a: Drops, b: Drops): Drops {
  const out: Drops = {};
  for (const [k, n] of Object.entries(b)) if (n - (a[k] ?? 0) > 0) out[k] = n - (a[k] ?? 0);
  return out;
}

export interface KeptFlow {
  lab: string;
  cc: string;
  dir: string;
  startMs: number;
  endMs: number;
  mbit: number;
  retransmits: number;
  /** iperf3's receiver intervals, Mbit/s */
  intervals: number[];
  drops?: { lp: Drops; rp: Drops };
  /** each link's lost packets each way during the flow (linkLoss), by link id */
  linkLoss?: { up: Record<number, number>; down: Record<number, number> };
}

/** Appends one flow to <dir>/flows.jsonl. */
export async function keepFlow(f: KeptFlow, env: NodeJS.ProcessEnv = process.env): Promise<Result<void, MpError>> {
  const dir = keepDir(env);
  if (!dir) return ok(undefined);
  try {
    await appendFile(`${dir}/flows.jsonl`, `${JSON.stringify(f)}\n`);
    return ok(undefined);
  } catch (e) {
    return err(fileError(`append (${KEEP_ENV}) to`, `${dir}/flows.jsonl`, e));
  }
}
