// Per-link shaping at run time (`shape = true`; bpf/shape.h; the plan's `shaper` steps put the
// htb root on the link devices). Each link's htb class follows its controller, and the rate the
// scheduler plans the link at (what cc/loop.ts writes to the data path) is SHAPE_GAIN of the
// controller's, the same as the class's in cruise, so the queue the scheduler plans is the queue
// that really forms, here, in the class, while the ISP's buffer stays empty: the queue that
// equalises the links' delays (the fast link ~50 ms ahead of a slow one) no longer fills the
// buffer a TCP sender's overshoot needs. The class runs at SHAPE_GAIN of the larger of the
// link's pacing rate and its bandwidth estimate, in Ethernet frames (htb counts them: FRAME_RATIO):
//   - in cruise, 2 % under what the link delivered, so its queue forms here and not at the ISP
//     (a class 2 % over the link gave nothing, measured by hand: bench-results/shape/);
//   - a probe above the estimate (gain 1.25) passes, so the controller still finds more
//     capacity (the bandwidth estimate is the most the link delivered);
//   - a drain (gain < 1) does not lower the class: what it would freeze at if the control plane
//     died then is about the data path's own hold rate (98 % of the estimate, schedule.h).
// A class that followed the controller without the scheduler planning at the same rate ran
// its queue past the plan, which the controller took for congestion: a 20 Mbit/s link's class
// fell to 12.9 Mbit/s within a flow. Only links that plan an equalising queue (a link of a longer
// delay beside them: cc.equalising) shape; the others' classes stay open (openRate) and they are
// planned at their full rates, as without shaping. In a probe up the class passes the probe even
// where the scheduler does not probe (cc.classProbeBps), or the estimate could only fall. The
// class's leaf queue holds SHAPE_QUEUE_MS of its rate (at least MIN_LIMIT_BYTES). Changes under
// CHANGE of the class's rate are not written; writes go one at a time, the newest rate of each
// link winning over the ones not written yet.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { openRtnl, type LeafStats, type Rtnl } from '../netlink/rtnl.js';
import { SHAPE_HANDLE } from '../plan/plan.js';

type Log = (msg: string, fields?: Record<string, unknown>) => void;

export const SHAPE_GAIN = 0.98;
/** A full-size packet's Ethernet frame over its IP bytes: the controllers count IP bytes, htb frames. */
export const FRAME_RATIO = 1514 / 1500;
export const SHAPE_QUEUE_MS = 150;
export const MIN_LIMIT_BYTES = 30_000;
/** a relative change of the class rate smaller than this is not written */
export const CHANGE = 0.01;

/** The class rate of a link (bits/s of frames) from its controller's pacing rate and bandwidth
 * estimate (bits/s of IP). */
export function shapeRate(pacingBps: number, bwBps: number): number {
  return Math.round(SHAPE_GAIN * FRAME_RATIO * Math.max(pacingBps, bwBps));
}

/** An open class (a link that plans no equalising queue: cc.equalising): this many times the
 * larger of the pacing rate and the estimate, so it never holds the link back (a startup paces
 * at 2×) and the link's queue, if any, forms at the ISP as without shaping. */
export const OPEN_GAIN = 4;

/** The class rate of a link whose class is open (bits/s of frames). */
export function openRate(pacingBps: number, bwBps: number): number {
  return Math.round(OPEN_GAIN * FRAME_RATIO * Math.max(pacingBps, bwBps));
}

/** The rate the scheduler plans a shaped link at: SHAPE_GAIN of the controller's (bits/s). */
export function plannedRate(pacingBps: bigint): bigint {
  return (pacingBps * BigInt(Math.round(SHAPE_GAIN * 1000))) / 1000n;
}

/** The leaf queue of a class at `rateBps`, bytes. */
export function shapeLimitBytes(rateBps: number): number {
  return Math.max(MIN_LIMIT_BYTES, Math.round(((rateBps / 8) * SHAPE_QUEUE_MS) / 1000));
}

export class LinkShaper {
  /** the rate each link's class was last written with */
  private readonly written = new Map<number, number>();
  private readonly pending = new Map<number, number>();
  /** links whose class is open (update's `equalising` false) */
  private readonly open = new Set<number>();
  private writing: Promise<void> | null = null;
  /** each link's class queue as last read (refreshQueues), and the read under way */
  private leaves = new Map<number, LeafStats>();
  private reading: Promise<void> | null = null;
  /** failures logged, of the class writes and of the counter reads (5 each, then quiet: a
   * read failing every second must not use up what a failed write would say) */
  private failures = 0;
  private readFailures = 0;
  private closed = false;

  /** `devOf`: the device link `id`'s data leaves by (null: none known); `major`: the htb root's. */
  constructor(
    private readonly rt: Rtnl,
    private readonly devOf: (id: number) => string | null,
    private readonly major: number,
    private readonly log: Log,
  ) {}

  /** The share of its controller's rate link `id`'s class passes (CcParams.shapeGain; 0: the
   * link is not shaped, its device being none of ours). */
  gainOf(id: number): number {
    return this.devOf(id) === null ? 0 : SHAPE_GAIN;
  }

  /** The rate the scheduler plans link `id` at: plannedRate (the class's in cruise) where its
   * class shapes (`equalising`: cc.equalising), the controller's elsewhere. */
  planned(id: number, pacingBps: bigint, equalising: boolean): bigint {
    return this.devOf(id) === null || !equalising ? pacingBps : plannedRate(pacingBps);
  }

  /** The controller's output for link `id` (bits/s): its class follows where it moved, at
   * shapeRate where the link plans an equalising queue, else open (openRate). */
  update(id: number, pacingBps: number, bwBps: number, equalising: boolean): void {
    if (this.closed) return;
    if (equalising) this.open.delete(id);
    else this.open.add(id);
    const rate = equalising ? shapeRate(pacingBps, bwBps) : openRate(pacingBps, bwBps);
    if (!(rate > 0)) return;
    const last = this.written.get(id);
    if (last !== undefined && Math.abs(rate - last) < CHANGE * last) {
      this.pending.delete(id);
      return;
    }
    this.pending.set(id, rate);
    this.writing ??= this.drain().finally(() => (this.writing = null));
  }

  /** Resolves when nothing is being written. */
  async idle(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** What each shaping link's class was last written with (bits/s; open classes left out). */
  rates(): Map<number, number> {
    return new Map([...this.written].filter(([id]) => !this.open.has(id)));
  }

  /** Each link's class queue (its bfifo leaf's counters: what it dropped because it was full,
   * what waits in it) as of the last refreshQueues that completed; links without a class left
   * out. The drops are the kernel's, since the class was made (a hand-over keeps counting). */
  queues(): Map<number, LeafStats> {
    return this.leaves;
  }

  /** Reads every class's queue counters again, one netlink dump for all devices, unless a read
   * is under way or no class was written; queues() has them once it completes. */
  refreshQueues(): void {
    if (this.closed || this.reading || this.written.size === 0) return;
    this.reading = this.readQueues().finally(() => (this.reading = null));
  }

  private async readQueues(): Promise<void> {
    const devs = new Map<number, string>();
    for (const id of this.written.keys()) {
      const dev = this.devOf(id);
      if (dev !== null) devs.set(id, dev);
    }
    const r = await this.rt.leafStats([...new Set(devs.values())], this.major);
    if (r.isErr()) {
      if (this.readFailures++ < 5) this.log('the shaping queues\' counters could not be read', { error: r.error });
      return;
    }
    const next = new Map<number, LeafStats>();
    for (const [id, dev] of devs) {
      const st = r.value.get(dev)?.get(id + 1);
      if (st) next.set(id, st);
    }
    this.leaves = next;
  }

  /** Writes what is pending, then stops taking updates; the classes stay (the plan's undo
   * removes the root with them on down; a hand-over leaves them to the next control plane). */
  async close(): Promise<void> {
    await this.idle();
    await this.reading;
    this.closed = true;
    this.rt.close();
  }

  private async drain(): Promise<void> {
    for (let next = this.pending.entries().next(); !next.done; next = this.pending.entries().next()) {
      const [id, rate] = next.value;
      this.pending.delete(id);
      const dev = this.devOf(id);
      if (dev === null) continue;
      const w = await this.rt.setHtbClass(dev, this.major, id + 1, { rateBps: rate, limitBytes: shapeLimitBytes(rate) });
      if (w.isOk()) this.written.set(id, rate);
      else if (this.failures++ < 5) this.log(`link ${id}: its shaping class on ${dev} could not be set`, { link: id, rateBps: rate, error: w.error });
    }
  }
}

/**
 * A shaper of its own netlink socket in the portal's namespace (closed by close()), for the
 * links whose device has the htb root `up` put there. With `shape = "auto"` a device whose root
 * qdisc is an operator's kept it (the plan's shaper step skipped it): its links go unshaped,
 * planned at their controllers' rates, and the log says so once per device. With `shape = true`
 * up failed on such a device, so every device is ours. `ns`: the namespace (null: the process's).
 */
export async function openShaper(devOf: (id: number) => string | null, devices: readonly string[], log: Log, ns: string | null = null): Promise<Result<LinkShaper, MpError>> {
  const rtR = openRtnl(ns);
  if (rtR.isErr()) return err(rtR.error);
  const rt = rtR.value;
  const ours = new Set<string>();
  for (const dev of new Set(devices)) {
    const root = await rt.rootQdisc(dev);
    if (root.isErr()) {
      rt.close();
      return err(root.error);
    }
    if (root.value?.kind === 'htb' && root.value.handle === SHAPE_HANDLE) ours.add(dev);
    else log(`${dev}: not shaped, its root qdisc is not mpctl's (${root.value ? `${root.value.kind} ${(root.value.handle >>> 16).toString(16)}:` : 'none'}); its links are planned at their full rates`, { dev });
  }
  return ok(
    new LinkShaper(
      rt,
      (id) => {
        const dev = devOf(id);
        return dev !== null && ours.has(dev) ? dev : null;
      },
      SHAPE_HANDLE >>> 16,
      log,
    ),
  );
}
