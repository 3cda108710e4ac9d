// Client for the lab's link emulator (native/linkem.c, protocol in native/linkem.md). One linkem
// runs in every isp namespace, bridging its veth ends `a` (toward the LP: direction `up` is a→b)
// and `b` (toward the Internet: direction `down` is b→a) with delay, jitter, loss and outage.
// Its control socket is an abstract UNIX datagram socket, which exists per network namespace and
// which Node cannot open, so every request runs `ip netns exec <ns> linkem --ctl-send ...`.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { packagePath } from '../paths.js';
import { err, ok, type Result } from 'neverthrow';
import { bug, configInvalid, type MpError } from '../errors.js';

const execFileP = promisify(execFile);

/** The emulator's default control socket name (abstract, so unique per namespace). */
export const CTL_NAME = 'mpctl-linkem';
/** Limits enforced by linkem itself (see native/linkem.md). */
export const MAX_DELAY_US = 60_000_000;
export const MAX_LOSS_PPM = 1_000_000;
export const MAX_LIMIT = 65_536;
export const MAX_QLIMIT = 2 ** 32;
const REQUEST_TIMEOUT_MS = 3_000;

export interface DirParams {
  delayUs: number;
  jitterUs: number;
  lossPpm: number;
  down: boolean;
  limit?: number;
  /** absolute path of a Mahimahi trace played by linkem's rate queue; null: none. Setting it
   * (again) starts the trace over. */
  trace?: string | null;
  /** the rate queue's tail-drop limit in bytes of IP packet (0: none) */
  qlimit?: number;
  /** IP packets longer than this are dropped silently (0: off) */
  mtu?: number;
}

export interface DirStats {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  droppedLoss: number;
  droppedDown: number;
  droppedQueue: number;
  droppedOverflow: number;
  droppedOversize: number;
  gso: number;
  queued: number;
  /** frames and IP bytes waiting in the rate queue (trace mode) */
  rqQueued: number;
  rqBytes: number;
  /** the emulator's own health: packets dropped by its receive socket (it did not read them in
   * time), frames it released more than 2 ms after their due time, and the worst lateness (µs).
   * Non-zero means a starved emulator: the link was worse than configured (the lab, not the
   * bond, limited what crossed it). */
  droppedSocket: number;
  latePackets: number;
  lateMaxUs: number;
}

export interface EmulatorState {
  pid: number;
  up: DirParams & { stats: DirStats };
  down: DirParams & { stats: DirStats };
}

export type Direction = 'up' | 'down';

/** Absolute path of the emulator binary: `$MPCTL_LINKEM`, else `<package root>/build/native/linkem`. */
export function linkemPath(): string {
  return process.env.MPCTL_LINKEM ?? packagePath('build', 'native', 'linkem');
}

/**
 * Arguments for starting an emulator between interfaces `a` and `b` (program path not included:
 * run `[linkemPath(), ...spawnArgs(a, b, seed)]` inside the isp namespace). It prints
 * `linkem ready` once it forwards frames and answers on its control socket.
 */
export function spawnArgs(a: string, b: string, seed?: number, rtPrio = 0): string[] {
  return ['--a', a, '--b', b, ...(seed === undefined ? [] : ['--seed', String(seed)]), ...(rtPrio > 0 ? ['--rt-prio', String(rtPrio)] : [])];
}

/**
 * The SCHED_FIFO priority the lab's emulators run at: `$MPCTL_LINKEM_RT_PRIO` (0 = normal
 * priority), else 10. A delay line that is not scheduled releases frames late: on the loaded
 * 2-CPU machine at normal priority, p99 26 ms late on a 20 ms link, worst 11-58 ms (native/linkem.md),
 * enough to cut a lab link's TCP rate for minutes; at priority 10, p99 ~0.4 ms.
 */
export function labRtPrio(env: NodeJS.ProcessEnv = process.env): Result<number, MpError> {
  const v = env.MPCTL_LINKEM_RT_PRIO;
  if (v === undefined || v === '') return ok(10);
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 99
    ? ok(n)
    : err(configInvalid('MPCTL_LINKEM_RT_PRIO', v, 'is not a priority 0-99 (0: normal priority)'));
}

/** Sends one request to the emulator in `ns` and returns its reply line. */
async function request(ns: string, req: string): Promise<Result<string, MpError>> {
  const args = ['netns', 'exec', ns, linkemPath(), '--ctl-send', CTL_NAME, req];
  const cmd = `ip netns exec ${ns} linkem --ctl-send ${CTL_NAME} '${req}'`;
  try {
    const { stdout } = await execFileP('ip', args, { timeout: REQUEST_TIMEOUT_MS, maxBuffer: 1024 * 1024 });
    return ok(stdout.trim());
  } catch (e) {
    const x = e as { code?: number | string; killed?: boolean; signal?: string | null; stdout?: string; stderr?: string; message: string };
    if (x.code === 3 || x.killed === true)
      return err({ kind: 'Timeout', what: `link emulator in ${ns}`, message: `the link emulator in ${ns} did not answer "${req}"` });
    if (x.code === 'ENOENT') return err({ kind: 'CommandFailed', cmd: 'ip', code: null, stderr: 'ip (iproute2) is not installed' });
    const reply = (x.stdout ?? '').trim();
    return err({
      kind: 'CommandFailed',
      cmd,
      code: typeof x.code === 'number' ? x.code : null,
      stderr: reply.startsWith('error') ? reply : (x.stderr ?? x.message),
    });
  }
}

const expectOk = (r: Result<string, MpError>, req: string): Result<void, MpError> =>
  r.andThen((reply) => (reply === 'ok' ? ok(undefined) : err(bug(`link emulator answered "${reply}" to "${req}"`))));

function checkInt(path: string, v: number | undefined, min: number, max: number): MpError | null {
  if (v === undefined) return null;
  return Number.isSafeInteger(v) && v >= min && v <= max ? null : configInvalid(path, v, `must be an integer in ${min}..${max}`);
}

/** Changes parameters of one or both directions; keys left out keep their current value. */
export async function setParams(ns: string, dir: Direction | 'both', p: Partial<DirParams>): Promise<Result<void, MpError>> {
  const bad =
    checkInt(`${ns}.${dir}.delayUs`, p.delayUs, 0, MAX_DELAY_US) ??
    checkInt(`${ns}.${dir}.jitterUs`, p.jitterUs, 0, MAX_DELAY_US) ??
    checkInt(`${ns}.${dir}.lossPpm`, p.lossPpm, 0, MAX_LOSS_PPM) ??
    checkInt(`${ns}.${dir}.limit`, p.limit, 1, MAX_LIMIT) ??
    checkInt(`${ns}.${dir}.qlimit`, p.qlimit, 0, MAX_QLIMIT);
  if (bad) return err(bad);
  if (p.trace && (!p.trace.startsWith('/') || /[\s,']/.test(p.trace)))
    return err(configInvalid(`${ns}.${dir}.trace`, p.trace, 'must be an absolute path without spaces, commas or quotes'));
  const kv: string[] = [];
  if (p.delayUs !== undefined) kv.push(`delay_us=${p.delayUs}`);
  if (p.jitterUs !== undefined) kv.push(`jitter_us=${p.jitterUs}`);
  if (p.lossPpm !== undefined) kv.push(`loss_ppm=${p.lossPpm}`);
  if (p.down !== undefined) kv.push(`down=${p.down ? 1 : 0}`);
  if (p.limit !== undefined) kv.push(`limit=${p.limit}`);
  if (p.qlimit !== undefined) kv.push(`qlimit=${p.qlimit}`);
  if (p.trace !== undefined) kv.push(`trace=${p.trace ?? 'none'}`);
  if (p.mtu !== undefined) kv.push(`mtu=${p.mtu}`);
  const req = ['set', dir, ...kv].join(' ');
  return expectOk(await request(ns, req), req);
}

export async function resetStats(ns: string): Promise<Result<void, MpError>> {
  return expectOk(await request(ns, 'reset-stats'), 'reset-stats');
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

class ShapeError extends Error {}
function num(o: Json, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ShapeError(`"${key}" is not a number`);
  return v;
}

function parseDir(v: unknown, name: string): DirParams & { stats: DirStats } {
  if (!isObj(v) || !isObj(v.stats)) throw new ShapeError(`"${name}" is not an object with "stats"`);
  const s = v.stats;
  if (typeof v.down !== 'boolean') throw new ShapeError(`"${name}.down" is not a boolean`);
  if (v.trace !== null && typeof v.trace !== 'string') throw new ShapeError(`"${name}.trace" is not a string or null`);
  return {
    delayUs: num(v, 'delay_us'),
    jitterUs: num(v, 'jitter_us'),
    lossPpm: num(v, 'loss_ppm'),
    down: v.down,
    limit: num(v, 'limit'),
    trace: v.trace,
    qlimit: num(v, 'qlimit'),
    mtu: typeof v.mtu === 'number' ? v.mtu : 0,
    stats: {
      rxPackets: num(s, 'rx_packets'),
      rxBytes: num(s, 'rx_bytes'),
      txPackets: num(s, 'tx_packets'),
      txBytes: num(s, 'tx_bytes'),
      droppedLoss: num(s, 'dropped_loss'),
      droppedDown: num(s, 'dropped_down'),
      droppedQueue: num(s, 'dropped_queue'),
      droppedOverflow: num(s, 'dropped_overflow'),
      droppedOversize: num(s, 'dropped_oversize'),
      gso: num(s, 'gso'),
      queued: num(s, 'queued'),
      rqQueued: num(s, 'rq_queued'),
      rqBytes: num(s, 'rq_bytes'),
      droppedSocket: num(s, 'dropped_socket'),
      latePackets: num(s, 'late_packets'),
      lateMaxUs: num(s, 'late_max_us'),
    },
  };
}

/** Parameters and counters of both directions (counters since start or the last resetStats). */
export async function getState(ns: string): Promise<Result<EmulatorState, MpError>> {
  const r = await request(ns, 'get');
  if (r.isErr()) return err(r.error);
  try {
    const j: unknown = JSON.parse(r.value);
    if (!isObj(j)) throw new ShapeError('not an object');
    return ok({ pid: num(j, 'pid'), up: parseDir(j.up, 'up'), down: parseDir(j.down, 'down') });
  } catch (e) {
    return err(bug(`link emulator in ${ns} sent an unexpected state: ${(e as Error).message}: ${r.value.slice(0, 200)}`, e));
  }
}
