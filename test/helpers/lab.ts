// Test-side lab helpers: a unique lab per test run (or one shared by a describe()'s tests),
// always torn down (even when the test throws), and reaping of labs left by crashed earlier runs
// (their owner process is gone); and what the bond tests share: `must`, the two-link scenario,
// a portal's `status --json`, kill and restart.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { readFile, stat } from 'node:fs/promises';
import { labDown, labUp, mpctlPath } from '../../src/lab/lab.js';
import { portalInstance } from '../../src/lab/bond.js';
import { run, spawnDetached, waitForLog } from '../../src/lab/namespaces.js';
import { isAlive } from '../../src/proc.js';
import { parseScenario, type Scenario } from '../../src/lab/scenario.js';
import { labDir, listLabs, readState } from '../../src/lab/state.js';
import { nsName } from '../../src/lab/topology.js';
import { getState as getEmulatorState } from '../../src/lab/emulator.js';
import type { BondOptions } from '../../src/lab/bond.js';
import { serial } from './serial.js';

// a file that runs a lab runs alone among such files (serial.ts)
await serial();

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
  ipCarrier?: boolean | readonly number[];
  /** start the scenario's schedules (default true, as `lab up`) */
  schedules?: boolean;
  /** LP config extras (bond.ts BondOptions.lp) */
  lp?: BondOptions['lp'];
  /** whole-LAN mode: LAN switch, host1 and host2, the LP translating them (topology.ts LAN) */
  lan?: boolean;
  /** both portals shape their links (`shape = true`; absent: as routedHosts, lab.ts UpOptions.shape) */
  shape?: boolean;
  /** routed-hosts mode: a router in front of each end host's side (topology.ts ROUTERS; absent: on) */
  routedHosts?: boolean;
}

async function bringUp(name: string, scenario: Scenario, o: LabOptions): Promise<void> {
  const up = await labUp({ name, scenario, bond: o.bond ?? false, singleInterface: o.singleInterface ?? false, ipv6Underlay: o.ipv6Underlay ?? false, ipCarrier: o.ipCarrier ?? false, schedules: o.schedules ?? true, ...(o.lp ? { lp: o.lp } : {}), ...(o.lan ? { lan: true } : {}), ...(o.shape !== undefined ? { shape: o.shape } : {}), ...(o.routedHosts !== undefined ? { routedHosts: o.routedHosts } : {}) });
  if (up.isErr()) throw new Error(`lab up failed: ${JSON.stringify(up.error)}`);
}

async function takeDown(name: string): Promise<void> {
  const d = await labDown(name);
  if (d.isErr()) throw new Error(`lab down failed: ${JSON.stringify(d.error)}`);
}

export async function withLab<T>(scenario: Scenario, fn: (name: string) => Promise<T>, o: LabOptions = {}): Promise<T> {
  await reapStaleTestLabs();
  const name = uniqueLabName();
  try {
    await bringUp(name, scenario, o);
    return await fn(name);
  } finally {
    await takeDown(name);
  }
}

/** One lab for all the tests of the enclosing describe(): up in its before hook, down in its
 *  after hook (which runs even when a test or the bring-up failed). Returns the lab's name
 *  (read it inside the tests: it is set once the before hook ran). */
export function sharedLab(scenario: Scenario, o: LabOptions = {}): () => string {
  let name = '';
  before(async () => {
    await reapStaleTestLabs();
    name = uniqueLabName();
    await bringUp(name, scenario, o);
  });
  after(async () => {
    if (name) await takeDown(name);
  });
  return () => name;
}

/** The value of an Ok Result, or fail the test naming `what` and the error. */
export const must = <T>(r: { isOk(): boolean; _unsafeUnwrap(): T }, what: string): T => {
  assert.ok(r.isOk(), `${what}: ${JSON.stringify((r as unknown as { error?: unknown }).error)}`);
  return r._unsafeUnwrap();
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Two 20 Mbit/s links of 10 and 15 ms, 60 ms of queue each. */
export const twoLinks: Scenario = parseScenario(
  { links: [{ label: 'l1', rate: '20mbit', delay: '10ms', queue: '60ms' }, { label: 'l2', rate: '20mbit', delay: '15ms', queue: '60ms' }] },
  't',
)._unsafeUnwrap();

/** What the lab tests read of `mpctl status --json` (docs/status-json.md). */
export interface PortalStatus {
  pid: number;
  running: boolean;
  controlPlane: { running: boolean; lastSeenMs: number | null };
  dataPath: { forwarding: boolean; packetsLastSecond: number };
  drops: Record<string, number>;
  links: { id: number; state: string; rateBps: number; owdUs: number; cc: { rateBps: number; bwBps: number; queueMs: number; phase: string; stale: boolean } | null }[];
}

/** `mpctl status` of a lab's portal, run in its namespace: the text, or with `--json` parsed. */
export async function portalStatusText(lab: string, role: 'lp' | 'rp', json = false): Promise<string> {
  const r = await run('ip', ['netns', 'exec', nsName(lab, role), mpctlPath(), 'status', '--instance', portalInstance(lab, role), ...(json ? ['--json'] : [])]);
  return must(r, 'mpctl status');
}

export async function portalStatus(lab: string, role: 'lp' | 'rp'): Promise<PortalStatus> {
  return JSON.parse(await portalStatusText(lab, role, true)) as PortalStatus;
}

/** SIGKILL a lab's portal (as the OOM killer would), or SIGUSR2 (it hands its data path over:
 * `systemctl reload`); resolves once it is gone. */
export async function killPortal(lab: string, role: 'lp' | 'rp', signal: 'SIGKILL' | 'SIGUSR2' = 'SIGKILL'): Promise<void> {
  const { pid } = await portalStatus(lab, role);
  assert.ok(pid > 0, `${role} runs`);
  process.kill(pid, signal);
  for (let i = 0; i < 250 && isAlive(pid); i++) await sleep(20); // reaped (or a zombie: 5 s at most)
}

/** `mpctl up` of a lab's portal with its config (as systemd's Restart= would); resolves with
 * its log from then on, once it says "portal up". */
export async function restartPortal(lab: string, role: 'lp' | 'rp'): Promise<string> {
  const log = `${labDir(lab)}/${role}.log`;
  const from = await stat(log).then((s) => s.size, () => 0);
  const p = must(await spawnDetached(nsName(lab, role), [mpctlPath(), 'up', role === 'lp' ? 'local' : 'remote', '--config', `${labDir(lab)}/${role}.toml`, '--no-tui'], log), 'restart');
  must(await waitForLog(log, 'portal up', p, 30_000, from), `${role} up again`);
  return (await readFile(log)).subarray(from).toString('utf8');
}

/** SIGKILL (or SIGUSR2) and `mpctl up` again (killPortal, restartPortal). */
export async function killAndRestart(lab: string, role: 'lp' | 'rp', signal: 'SIGKILL' | 'SIGUSR2' = 'SIGKILL'): Promise<string> {
  await killPortal(lab, role, signal);
  return restartPortal(lab, role);
}

/** One emulator direction's health counters (src/lab/emulator.ts DirStats). */
export interface EmulatorHealth {
  link: string;
  droppedSocket: number;
  latePackets: number;
  lateMaxUs: number;
}

/** Every link emulator's own health counters, both directions, cumulative since the lab came up. */
export async function emulatorHealth(lab: string): Promise<EmulatorHealth[]> {
  const st = await readState(lab);
  if (st.isErr()) return [];
  const out: EmulatorHealth[] = [];
  for (const l of st.value.links) {
    const s = await getEmulatorState(nsName(lab, l.node));
    if (s.isErr()) continue;
    for (const dir of ['up', 'down'] as const) {
      const d = s.value[dir].stats;
      out.push({ link: `${l.node} ${dir}`, droppedSocket: d.droppedSocket, latePackets: d.latePackets, lateMaxUs: d.lateMaxUs });
    }
  }
  return out;
}

/** Did some emulator run at least `lateUs` late between two snapshots (its worst lateness rose
 * to that or more)? Then its link stalled for as long: the lab's doing, not the bond's. */
export function emulatorStarved(a: EmulatorHealth[], b: EmulatorHealth[], lateUs: number): boolean {
  return b.some((x) => x.lateMaxUs >= lateUs && x.lateMaxUs > (a.find((y) => y.link === x.link)?.lateMaxUs ?? 0));
}

/** What the emulators did between two snapshots, as one line: a starved emulator (late frames,
 * socket drops) made its link worse than configured, which a throughput figure then shows. */
export function healthBetween(a: EmulatorHealth[], b: EmulatorHealth[]): string {
  return b
    .map((x) => {
      const y = a.find((z) => z.link === x.link);
      const late = x.latePackets - (y?.latePackets ?? 0);
      const sock = x.droppedSocket - (y?.droppedSocket ?? 0);
      return `${x.link}: ${late} late > 2 ms, ${sock} socket drops`;
    })
    .join('; ') + `; worst lateness so far ${(Math.max(0, ...b.map((x) => x.lateMaxUs)) / 1000).toFixed(1)} ms`;
}
