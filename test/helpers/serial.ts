// The suite runs two test files at a time (scripts/test.sh, `--test-concurrency=2`): the unit
// files, which neither run a lab nor measure time, side by side on the machine's two CPUs; a
// file that runs a lab or portals, or that measures time, holds this lock for its whole run
// (its process), so no two of them share the CPUs: a lab's link emulators and portals need a
// CPU on time, and its figures are the lab's, not another test's. scripts/test.sh lists those
// files after the others, so only the last unit files can overlap the first of them.
//
// The lock is a directory (mkdir is atomic) holding its owner's pid; a holder that died without
// releasing it (killed by the runner's timeout) is found by its pid and the lock taken over.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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

/** Waits for the lock and holds it until this process exits. */
export async function serial(): Promise<void> {
  if (held) return;
  let ownerless = 0;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(`${LOCK}/pid`, String(process.pid));
      held = true;
      process.on('exit', () => rmSync(LOCK, { recursive: true, force: true }));
      return;
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
}
