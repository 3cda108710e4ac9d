// Per-link throughput over time during a benchmark: a timer reads a running portal's pinned
// per-link counters (mp_link_stats, summed over CPUs) every few tens of ms. The receiving
// portal's rx bytes say what each link delivered; the sending portal's tx bytes what the
// scheduler put on it. Bytes are outer IP packet bytes (what tbf shapes, less 14 B of Ethernet).
import { err, ok, type Result } from 'neverthrow';
import * as abi from '../../datapath/abi.js';
import type { MpError } from '../../errors.js';
import { closeFd, mapLookup, numPossibleCpus, objGet, type MapFd } from '../../native/libmpctl.js';
import { readPortalState } from '../../apply/state.js';

/** One reading: ms since the sampler started, cumulative bytes per link id. */
export interface Reading {
  tMs: number;
  rx: number[];
  tx: number[];
}

export class LinkSampler {
  readonly readings: Reading[] = [];
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly fd: MapFd,
    private readonly ncpu: number,
    readonly links: number,
    /** performance.now() of time 0: samplers given the same origin share a time line */
    readonly origin: number,
  ) {}

  /** Opens `instance`'s counters for link ids 0..links-1. */
  static async open(instance: string, links: number, origin = performance.now()): Promise<Result<LinkSampler, MpError>> {
    const st = await readPortalState(instance);
    if (st.isErr()) return err(st.error);
    const fd = objGet(`${st.value.pinDir}/mp_link_stats`);
    if (fd.isErr()) return err(fd.error);
    const n = numPossibleCpus();
    if (n.isErr()) {
      closeFd(fd.value);
      return err(n.error);
    }
    return ok(new LinkSampler(fd.value, n.value, links, origin));
  }

  /** ms since the sampler was opened (the time line of the readings). */
  now(): number {
    return performance.now() - this.origin;
  }

  read(): Reading | null {
    const r: Reading = { tMs: this.now(), rx: [], tx: [] };
    for (let id = 0; id < this.links; id++) {
      const v = mapLookup(this.fd, abi.mapKey(id), abi.percpuValueSize(abi.MP_LINK_STATS_SIZE, this.ncpu));
      if (v.isErr() || !v.value) return null;
      const s = abi.decodeLinkStats(v.value, this.ncpu);
      r.rx.push(Number(s.rxBytes));
      r.tx.push(Number(s.txBytes));
    }
    this.readings.push(r);
    return r;
  }

  start(everyMs = 50): void {
    this.read();
    this.timer = setInterval(() => this.read(), everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.read();
  }

  close(): void {
    this.stop();
    closeFd(this.fd);
  }
}

/** Throughput per link (Mbit/s) in bins of `binMs` from cumulative readings, with the bin's
 * start time in s from `fromMs`. */
export interface Bin {
  tS: number;
  perLink: number[];
  total: number;
}

export function bins(readings: readonly Reading[], which: 'rx' | 'tx', binMs: number, fromMs = 0, toMs = Infinity): Bin[] {
  const out: Bin[] = [];
  const rs = readings.filter((r) => r.tMs >= fromMs - binMs && r.tMs <= toMs + binMs);
  if (rs.length < 2) return out;
  // the cumulative counter at time t, linearly between readings
  const at = (t: number, link: number): number => {
    let i = 0;
    while (i + 1 < rs.length && rs[i + 1]!.tMs < t) i++;
    const a = rs[i]!;
    const b = rs[Math.min(i + 1, rs.length - 1)]!;
    if (b.tMs <= a.tMs || t <= a.tMs) return a[which][link]!;
    if (t >= b.tMs) return b[which][link]!;
    return a[which][link]! + ((b[which][link]! - a[which][link]!) * (t - a.tMs)) / (b.tMs - a.tMs);
  };
  const first = Math.max(fromMs, rs[0]!.tMs);
  const last = Math.min(toMs, rs[rs.length - 1]!.tMs);
  const links = rs[0]![which].length;
  for (let t = first; t + binMs <= last + 1e-9; t += binMs) {
    const perLink = Array.from({ length: links }, (_, l) => ((at(t + binMs, l) - at(t, l)) * 8) / (binMs * 1000));
    out.push({ tS: (t - fromMs) / 1000, perLink, total: perLink.reduce((x, y) => x + y, 0) });
  }
  return out;
}
