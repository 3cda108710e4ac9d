// How contended the machine's CPUs were over a span, from the kernel's pressure stall
// information (/proc/pressure/cpu, "some": the time at least one runnable task waited for a
// CPU). The lab's veths hand every packet to a softirq; on a contended machine those run late
// (in ksoftirqd, which waits for a CPU like any task), and every one-way delay the portals
// measure grows by the wait. A test whose bar is a delay reads how contended the span was.
import { readFileSync } from 'node:fs';

export interface Pressure {
  /** cumulative µs with some task waiting for a CPU (null: no PSI in this kernel) */
  someUs: number | null;
  atMs: number;
}

export function cpuPressure(): Pressure {
  const atMs = Date.now();
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return { someUs: m ? Number(m[1]) : null, atMs };
  } catch {
    return { someUs: null, atMs };
  }
}

/** The share of the span from `a` to `b` during which some task waited for a CPU (0-1; null:
 * unknown). */
export function pressureShare(a: Pressure, b: Pressure): number | null {
  if (a.someUs === null || b.someUs === null || b.atMs <= a.atMs) return null;
  return Math.min(1, (b.someUs - a.someUs) / ((b.atMs - a.atMs) * 1000));
}
