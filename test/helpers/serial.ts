// The suite runs two test files at a time (scripts/run-tests.mjs, concurrency 2): the unit
// files, which neither run a lab nor measure time, side by side on the machine's two CPUs; a
// file that runs a lab or portals, or that measures time, holds this lock for its whole run
// (its process), so no two of them share the CPUs: a lab's link emulators and portals need a
// CPU on time, and its figures are the lab's, not another test's. run-tests.mjs runs those
// files after the others, and the holder waits, before it goes on, for the unit files still
// running beside it (its siblings: the runner's other children) to end: a CPU-heavy unit file
// (the decap fuzz) beside a lab's start delayed it past its own schedule (attack, a CI run).
//
// The lock is a directory (mkdir is atomic) holding its owner's pid; a holder that died without
// releasing it (killed by the runner's timeout) is found by its pid and the lock taken over.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAlive } from '../../src/proc.js';

const LOCK = `${tmpdir()}/mpctl-test-serial.lock`;
const POLL_MS = 200;
let held = false;

function owner(): number | null {
  try {
    const pid = Number(readFileSync(`${LOCK}/pid`, 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Does a test file take the lock (it imports this module, or the lab helpers that do)? Also
 * what scripts/run-tests.mjs orders the files by. */
const takesLock = new Map<string, boolean>();
export function serialFile(file: string): boolean {
  let v = takesLock.get(file);
  if (v === undefined) {
    try {
      v = /helpers\/(lab|serial)(\.js)?['"]/.test(readFileSync(file, 'utf8'));
    } catch {
      v = true; // gone: not a unit file to wait for
    }
    takesLock.set(file, v);
  }
  return v;
}

/** The runner's other children that run a unit file (one that does not take the lock). */
function unitSiblings(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== process.ppid) continue;
      const file = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').find((a) => a.endsWith('.test.ts'));
      if (file !== undefined && !serialFile(file)) out.push(Number(d));
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

/** Waits for the lock and holds it until this process exits; then waits for the unit files
 * that still run beside it to end. */
export async function serial(): Promise<void> {
  if (held) return;
  let ownerless = 0;
  while (!held) {
    try {
      mkdirSync(LOCK);
      writeFileSync(`${LOCK}/pid`, String(process.pid));
      held = true;
      process.on('exit', () => rmSync(LOCK, { recursive: true, force: true }));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = owner();
    // no pid yet: its owner is between mkdir and writing it, or died there (then, after 2 s)
    ownerless = pid === null ? ownerless + 1 : 0;
    if ((pid !== null && !isAlive(pid)) || ownerless * POLL_MS > 2000) {
      try {
        renameSync(LOCK, `${LOCK}.stale.${process.pid}`);
        rmSync(`${LOCK}.stale.${process.pid}`, { recursive: true, force: true });
      } catch {
        // another waiter took it over first
      }
      ownerless = 0;
      continue;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  while (unitSiblings().length > 0) await new Promise((r) => setTimeout(r, POLL_MS));
}
