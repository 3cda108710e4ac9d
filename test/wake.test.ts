// The run loop's one timer (src/run/wake.ts): when probes and feedback are due (Cadence, on a
// clock the test sets), and that the timer runs the loop when it asks to and sooner when told.
//   node --import tsx --test test/wake.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Cadence, Wake } from '../src/run/wake.js';

/** Runs a Cadence as the run loop does, waking at next() (+ `lateMs`) until `untilMs`: which
 * wakes did probes, which did feedback. `busy(t)`: packets moved at t. */
function play(c: Cadence, untilMs: number, busy: (t: number) => boolean, lateMs = 0) {
  const wakes: { t: number; probe: boolean; fb: boolean }[] = [];
  let t = 1000;
  while (t < untilMs) {
    const probe = c.probeDue(t);
    const fb = c.feedbackDue(t);
    if (fb) c.fed(t, busy(t));
    wakes.push({ t, probe, fb });
    t = Math.max(t, c.next()) + lateMs;
  }
  return wakes;
}

test('idle: one wake per probe interval, feedback with the probes', () => {
  const w = play(new Cadence(100, 20), 3000, () => false, 1);
  assert.ok(w.length >= 19 && w.length <= 21, `${w.length} wakes in 2 s`);
  assert.ok(w.every((x) => x.probe && x.fb), 'every wake does both');
  // on the grid: a timer that fires 1 ms late each time does not drift
  assert.equal(w.at(-1)!.t, 1000 + (w.length - 1) * 100 + 1);
});

test('busy: feedback every 20 ms in phase with the probes (a 100 ms interval: 5 wakes, not 6)', () => {
  const w = play(new Cadence(100, 20), 3000, () => true, 1);
  assert.ok(w.length >= 98 && w.length <= 101, `${w.length} wakes in 2 s`);
  assert.ok(w.every((x) => x.fb), 'every wake builds feedback');
  assert.equal(w.filter((x) => x.probe).length, 20, 'probes every 5th');
  const gaps = w.slice(1).map((x, i) => x.t - w[i]!.t);
  assert.ok(gaps.every((g) => g >= 19 && g <= 21), `gaps ${[...new Set(gaps)].join(', ')}`);
});

test('an interval that 20 ms does not divide: feedback keeps its own interval, never closer than 20 ms', () => {
  const w = play(new Cadence(30, 20), 3000, () => true);
  const fb = w.filter((x) => x.fb).map((x) => x.t);
  const gaps = fb.slice(1).map((t, i) => t - fb[i]!);
  assert.ok(gaps.every((g) => g >= 20 && g <= 21), `gaps ${[...new Set(gaps)].join(', ')}`);
  assert.equal(w.filter((x) => x.probe).length, Math.ceil(2000 / 30), "probes on their own grid");
});

test('from idle to busy: hurry() brings feedback to the next slot, then every 20 ms', () => {
  const c = new Cadence(100, 20);
  assert.ok(c.probeDue(1000) && c.feedbackDue(1000));
  c.fed(1000, false);
  assert.equal(c.next(), 1100, 'idle: the next wake is the next probe round');
  // the peer's feedback at 1033 shows our packets arriving
  assert.equal(c.hurry(1033), 1040, 'the next slot in phase with the probes');
  assert.ok(!c.probeDue(1040) && c.feedbackDue(1040));
  c.fed(1040, true);
  assert.equal(c.next(), 1060);
  assert.equal(c.hurry(1045), 1060, 'already hurried: unchanged');
  c.fed(1060, false);
  assert.equal(c.next(), 1100, 'nothing moves any more: back with the probes');
});

test('Wake: runs when the loop asks, sooner when told, never after stop', async () => {
  const runs: number[] = [];
  let ask = 40;
  const w = new Wake((late) => {
    runs.push(late);
    return performance.now() + ask;
  });
  w.start();
  assert.equal(runs.length, 1, 'the first run at once');
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(runs.length >= 2 && runs.length <= 3, `${runs.length} runs in 100 ms at 40 ms`);
  assert.ok(runs.slice(1).every((l) => l >= 0 && l < 30), `lateness ${runs.join(', ')}`);
  ask = 10_000;
  await new Promise((r) => setTimeout(r, 50)); // the run that asks for 10 s
  const n = runs.length;
  w.soon(performance.now() + 5);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(runs.length, n + 1, 'soon() brought the next run forward');
  w.stop();
  w.soon(performance.now());
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(runs.length, n + 1, 'stopped');
});
