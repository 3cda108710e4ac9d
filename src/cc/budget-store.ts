// The LP's budget usage across restarts: per link name, the period it counts and the bytes
// used in it, in <state_dir>/<instance>/budget.json (config `state_dir`, default
// $MPCTL_STATE_DIR or /var/lib/mpctl). Accounting, like a log: `mpctl down` leaves it, `up`
// carries on from it when the period is the same.
//
//   {"version":1,"savedAt":"…","links":{"4g":{"periodStart":"2026-11-01T00:00:00.000Z",
//     "periodStartMs":1793491200000,"usedBytes":1234567}}}
//
// Written atomically (temporary file, mode 0600, then rename) every SAVE_INTERVAL_MS by the
// running portal and once more when it stops, so a crash loses at most that much of the count.
// A file that cannot be parsed, or a link whose saved period is not the current one, is
// replaced with a logged warning (usage of that link starts at 0), never an error: a lost count
// must not keep the portal down.
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { err, ok, type Result } from 'neverthrow';
import { periodAt, type BudgetPeriod, type SavedBudget } from './budget.js';
import type { MpError } from '../errors.js';

export const STATE_DIR = process.env.MPCTL_STATE_DIR ?? '/var/lib/mpctl';
export const SAVE_INTERVAL_MS = 5000;

export const budgetFile = (stateDir: string, instance: string): string => `${stateDir}/${instance}/budget.json`;

type Log = (msg: string, fields?: Record<string, unknown>) => void;

/** Parses a budget file; what is wrong with it otherwise. */
export function parseBudgetFile(text: string): Result<Map<string, SavedBudget>, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return err(`not JSON: ${(e as Error).message}`);
  }
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(raw)) return err('not an object');
  if (raw.version !== 1) return err(`version ${JSON.stringify(raw.version)}, expected 1`);
  if (!isObj(raw.links)) return err('no "links" object');
  const out = new Map<string, SavedBudget>();
  for (const [name, v] of Object.entries(raw.links)) {
    if (!isObj(v)) return err(`link "${name}" is not an object`);
    const { periodStartMs, usedBytes } = v;
    if (typeof periodStartMs !== 'number' || !Number.isSafeInteger(periodStartMs) || periodStartMs < 0) return err(`link "${name}": periodStartMs ${JSON.stringify(periodStartMs)}`);
    if (typeof usedBytes !== 'number' || !Number.isFinite(usedBytes) || usedBytes < 0) return err(`link "${name}": usedBytes ${JSON.stringify(usedBytes)}`);
    out.set(name, { periodStartMs, usedBytes });
  }
  return ok(out);
}

export function formatBudgetFile(links: ReadonlyMap<string, SavedBudget>, nowMs: number): string {
  const o = Object.fromEntries(
    [...links].map(([name, s]) => [name, { periodStart: new Date(s.periodStartMs).toISOString(), periodStartMs: s.periodStartMs, usedBytes: Math.round(s.usedBytes) }]),
  );
  return `${JSON.stringify({ version: 1, savedAt: new Date(nowMs).toISOString(), links: o }, null, 2)}\n`;
}

/**
 * What each budgeted link starts from: its saved usage when that is of the current period;
 * otherwise nothing, with the reason as a warning. Links without a budget take nothing.
 */
export function restoreUsage(
  links: readonly { name: string; budgetBytes: number; budgetPeriod: BudgetPeriod }[],
  saved: ReadonlyMap<string, SavedBudget>,
  nowMs: number,
): { usage: Map<string, SavedBudget>; warnings: string[] } {
  const usage = new Map<string, SavedBudget>();
  const warnings: string[] = [];
  for (const l of links) {
    const s = saved.get(l.name);
    if (!(l.budgetBytes > 0) || !s) continue;
    const { startMs } = periodAt(l.budgetPeriod, nowMs);
    if (s.periodStartMs === startMs) usage.set(l.name, s);
    else
      warnings.push(
        `link ${l.name}: saved budget usage (${s.usedBytes} bytes) is of the period from ${new Date(s.periodStartMs).toISOString()}, ` +
          `not the current one from ${new Date(startMs).toISOString()}: starting at 0`,
      );
  }
  return { usage, warnings };
}

/** Reads the file; a missing one is empty, an unreadable or corrupt one is empty with a
 * warning (it is replaced on the next save). */
export async function loadBudgetFile(file: string, log: Log): Promise<Map<string, SavedBudget>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log(`budget usage file ${file} unreadable, starting at 0: ${(e as Error).message}`, { file });
    return new Map();
  }
  const p = parseBudgetFile(text);
  if (p.isErr()) {
    log(`budget usage file ${file} is corrupt (${p.error}): starting at 0, it will be replaced`, { file });
    return new Map();
  }
  return p.value;
}

/** Writes the file atomically (mode 0600; its directory 0700). */
export async function saveBudgetFile(file: string, links: ReadonlyMap<string, SavedBudget>, nowMs = Date.now()): Promise<Result<void, MpError>> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await fs.mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await fs.writeFile(tmp, formatBudgetFile(links, nowMs), { mode: 0o600 });
    await fs.chmod(tmp, 0o600); // a leftover temporary file keeps its mode on write
    await fs.rename(tmp, file);
    return ok(undefined);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    return err({ kind: 'CommandFailed', cmd: `write ${file}`, code: null, stderr: (e as Error).message });
  }
}
