// The run loop's one timer (README "Running a bond", CPU): each portal wakes only when some part
// of its loop is due — probes and liveness every probe interval, feedback every 20 ms while
// packets move and at the probe rate while none do, a path MTU search round when it is due —
// and does everything that is due in that one wake, instead of one interval timer per part
// (each wake of Node costs tens of µs before any work; four timers woke it ~80 times a second).
//
// `run` does the work and returns when it wants to run next (ms of `performance.now()`, the
// timers' own clock: the loop's logic may run on a hand-driven clock in unit tests, the timer
// never does); `soon` lets an event (a message that starts a search round, feedback that shows
// our packets moving) bring the next wake forward. `late`: how far behind its time this wake
// runs (an event loop that stalled: path MTU discovery does not judge answers it has not read).
import { performance } from 'node:perf_hooks';

export class Wake {
  private timer: NodeJS.Timeout | null = null;
  /** when the armed timer fires (Infinity: none armed) */
  private at = Infinity;
  private stopped = false;

  constructor(private readonly run: (late: number) => number) {}

  /** Runs the loop now (the first time) and from then on when it asks to. */
  start(): void {
    this.fire();
  }

  /** Wake no later than `atMs` (performance.now() ms); an earlier wake already armed stays. */
  soon(atMs: number = performance.now()): void {
    if (this.stopped || atMs >= this.at) return;
    if (this.timer) clearTimeout(this.timer);
    this.at = atMs;
    this.timer = setTimeout(this.fire, Math.max(0, atMs - performance.now()));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private readonly fire = (): void => {
    const planned = this.at;
    this.timer = null;
    this.at = Infinity;
    const now = performance.now();
    const next = this.run(planned === Infinity ? 0 : Math.max(0, now - planned));
    this.soon(next);
  };
}

/** A wake may run this much before a part's time and still do it (a timer set on the event
 * loop's cached clock can fire a little before the time asked for). */
export const EARLY_MS = 2;

/**
 * When the probe and feedback parts are due. Probes go on a grid every `intervalMs`; feedback
 * every `feedbackMs` while packets move (busy), in phase with the probes when the interval is a
 * multiple of it (the default 100 ms holds five: no wake of its own for a probe round), and
 * with the probes while nothing moves.
 */
export class Cadence {
  private nextProbe = -Infinity;
  private nextFb = -Infinity;

  constructor(
    private readonly intervalMs: number,
    private readonly feedbackMs: number,
  ) {}

  /** Is a probe round due at `at`? If so it counts as done: the next is one interval on. */
  probeDue(at: number): boolean {
    if (at + EARLY_MS < this.nextProbe) return false;
    this.nextProbe += this.intervalMs;
    if (this.nextProbe <= at) this.nextProbe = at + this.intervalMs; // the first, or a stall
    return true;
  }

  feedbackDue(at: number): boolean {
    return at + EARLY_MS >= this.nextFb;
  }

  /** Feedback was built at `at`: the next one in an interval while busy, else with the probes. */
  fed(at: number, busy: boolean): void {
    this.nextFb = busy ? this.slot(at) : this.nextProbe;
  }

  /** Packets move (again): feedback from the next slot on. Returns when that is. */
  hurry(at: number): number {
    this.nextFb = Math.min(this.nextFb, this.slot(at));
    return this.nextFb;
  }

  next(): number {
    return Math.min(this.nextProbe, this.nextFb);
  }

  /** When the next probe round is due (-Infinity before the first). */
  probeAt(): number {
    return this.nextProbe;
  }

  /** The first feedback slot after `at` (one a wake run early could still count as now: the
   * one after it). */
  private slot(at: number): number {
    const after = at + EARLY_MS + 1;
    if (this.intervalMs % this.feedbackMs !== 0 || this.nextProbe <= after) return at + this.feedbackMs;
    return this.nextProbe - Math.floor((this.nextProbe - after) / this.feedbackMs) * this.feedbackMs;
  }
}
