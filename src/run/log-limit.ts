// Log lines that anyone on the Internet can cause (refused handshake messages, cookie replies)
// are rate-limited: per reason, the first line of a window is written as it comes, the rest of
// that window are only counted, and one summary line with the count follows when the window
// ends. A flood of 20,000 malformed messages a second thus writes two lines per reason per
// 10 s instead of 200,000.
type Log = (msg: string, fields?: Record<string, unknown>) => void;

export const LOG_WINDOW_MS = 10_000;

export class LogLimiter {
  private readonly windows = new Map<string, { since: number; suppressed: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: Log,
    readonly windowMs = LOG_WINDOW_MS,
    private readonly clock: () => number = Date.now,
  ) {
    this.timer = setInterval(() => this.flush(), windowMs);
    this.timer.unref();
  }

  /** Logs `msg` unless a line of `reason` was logged in the current window (then counts it). */
  line(reason: string, msg: string, fields?: Record<string, unknown>): void {
    const now = this.clock();
    const w = this.windows.get(reason);
    if (w && now - w.since < this.windowMs) {
      w.suppressed++;
      return;
    }
    if (w) this.summary(reason, w);
    this.windows.set(reason, { since: now, suppressed: 0 });
    this.log(msg, fields);
  }

  /** Writes the summary of every window that has ended (the timer calls it). */
  flush(): void {
    const now = this.clock();
    for (const [reason, w] of this.windows) {
      if (now - w.since < this.windowMs) continue;
      this.summary(reason, w);
      this.windows.delete(reason);
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.flush();
  }

  private summary(reason: string, w: { since: number; suppressed: number }): void {
    if (w.suppressed > 0) this.log(`${w.suppressed} more like this (${reason}) not logged in ${Math.round(this.windowMs / 1000)} s`, { reason, count: w.suppressed });
  }
}
