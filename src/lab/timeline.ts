// The scenario's schedules (`schedule = [{ at = "15s", … }]`, `repeat`) as a time line of
// changes, and the loop that applies them through `labSet`, the same runtime change as
// `mpctl lab set` (linkem's control socket and the tbf), so a `lab set` by hand keeps working
// on top: a step changes only the keys it names.
//
// Who runs it: `mpctl lab up` starts `mpctl lab schedule` detached inside the lab's `inet`
// namespace when a link has a schedule (so `lab down` ends it with the namespace); the
// benchmarks bring their labs up without it and play the time line from each flow's start.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import type { Direction } from './emulator.js';
import type { LinkSettings } from './params.js';
import type { DirPatch } from './scenario.js';

export interface TimedChange {
  /** µs from the start of the schedules */
  atUs: number;
  node: string;
  dirs: Direction[];
  patch: DirPatch;
}

export const hasSchedule = (links: readonly LinkSettings[]): boolean => links.some((l) => l.up.schedule.length > 0 || l.down.schedule.length > 0);

/** Every change in time order, repeats unrolled, up to `untilUs` (inclusive; Infinity: forever).
 * The same change at the same time in both directions of a link is one change of both. */
export function* timeline(links: readonly LinkSettings[], untilUs = Infinity): Generator<TimedChange> {
  const cursors = links.flatMap((l) =>
    (['up', 'down'] as const)
      .filter((dir) => l[dir].schedule.length > 0)
      .map((dir) => ({ node: l.node, dir, steps: l[dir].schedule, repeatUs: l[dir].repeatUs, cycle: 0, i: 0 })),
  );
  const at = (c: (typeof cursors)[number]) => (c.i < c.steps.length ? c.cycle * (c.repeatUs ?? 0) + c.steps[c.i]!.atUs : Infinity);
  for (;;) {
    let t = Infinity;
    for (const c of cursors) t = Math.min(t, at(c));
    if (t === Infinity || t > untilUs) return;
    const due: TimedChange[] = [];
    for (const c of cursors) {
      if (at(c) !== t) continue;
      const patch = c.steps[c.i]!.patch;
      const same = due.find((d) => d.node === c.node && JSON.stringify(d.patch) === JSON.stringify(patch));
      if (same) same.dirs.push(c.dir);
      else due.push({ atUs: t, node: c.node, dirs: [c.dir], patch });
      if (++c.i === c.steps.length && c.repeatUs !== null) {
        c.i = 0;
        c.cycle++;
      }
    }
    yield* due;
  }
}

export interface RunOptions {
  /** apply a change (labSet in production) */
  apply: (c: TimedChange) => Promise<Result<unknown, MpError>>;
  untilUs?: number;
  signal?: AbortSignal;
  /** called after each change with how late it was applied (ms after its time) */
  onApplied?: (c: TimedChange, lateMs: number) => void;
}

/** Applies the time line from now; resolves with the number of changes when it ends (or the
 * first failure, e.g. the lab went away). */
export async function runTimeline(links: readonly LinkSettings[], o: RunOptions): Promise<Result<number, MpError>> {
  const t0 = performance.now();
  let n = 0;
  for (const c of timeline(links, o.untilUs)) {
    const wait = t0 + c.atUs / 1000 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (o.signal?.aborted) break;
    const r = await o.apply(c);
    if (r.isErr()) return err(r.error);
    o.onApplied?.(c, performance.now() - t0 - c.atUs / 1000);
    n++;
  }
  return ok(n);
}
