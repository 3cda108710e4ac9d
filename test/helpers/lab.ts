// Test-side lab helpers: a unique lab per test run, always torn down (even when the test throws),
// and reaping of labs left by crashed earlier runs (their owner process is gone).
import { labDown, labUp } from '../../src/lab/lab.js';
import { isAlive } from '../../src/proc.js';
import type { Scenario } from '../../src/lab/scenario.js';
import type { BondOptions } from '../../src/lab/bond.js';
import { listLabs, readState } from '../../src/lab/state.js';

let seq = 0;
/** `t<pid><seq><rand>`: unique across parallel runs and leftovers. */
export function uniqueLabName(): string {
  return `t${process.pid}${seq++}${Math.random().toString(36).slice(2, 6)}`;
}

/** Removes test labs (`t…`) whose creating process no longer exists. */
export async function reapStaleTestLabs(): Promise<void> {
  for (const name of await listLabs()) {
    if (!name.startsWith('t')) continue;
    const st = await readState(name);
    if (st.isOk() && isAlive(st.value.ownerPid)) continue;
    await labDown(name);
  }
}

export interface LabOptions {
  /** run both portals (default false: the bare lab) */
  bond?: boolean;
  singleInterface?: boolean;
  ipv6Underlay?: boolean;
  ipCarrier?: boolean;
  /** start the scenario's schedules (default true, as `lab up`) */
  schedules?: boolean;
  /** LP config extras (bond.ts BondOptions.lp) */
  lp?: BondOptions['lp'];
}

export async function withLab<T>(scenario: Scenario, fn: (name: string) => Promise<T>, o: LabOptions = {}): Promise<T> {
  await reapStaleTestLabs();
  const name = uniqueLabName();
  try {
    const up = await labUp({ name, scenario, bond: o.bond ?? false, singleInterface: o.singleInterface ?? false, ipv6Underlay: o.ipv6Underlay ?? false, ipCarrier: o.ipCarrier ?? false, schedules: o.schedules ?? true, ...(o.lp ? { lp: o.lp } : {}) });
    if (up.isErr()) throw new Error(`lab up failed: ${JSON.stringify(up.error)}`);
    return await fn(name);
  } finally {
    const d = await labDown(name);
    if (d.isErr()) throw new Error(`lab down failed: ${JSON.stringify(d.error)}`);
  }
}
