// Network namespaces of the lab and the processes inside them. Creating and deleting a named
// namespace is `ip netns add/del` (a mount under /run/netns, not an rtnetlink operation); all
// configuration inside them goes through the netlink port. Processes in a namespace are found by
// comparing /proc/<pid>/ns/net with the namespace file, so teardown kills exactly what runs there.
import { execFile, spawn } from 'node:child_process';
import { promises as fs, statSync, readdirSync, readlinkSync, existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { isAlive } from '../proc.js';

const execFileP = promisify(execFile);
export const NETNS_DIR = '/run/netns';
export const NETNS_ETC = '/etc/netns';

export async function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<Result<string, MpError>> {
  try {
    const { stdout } = await execFileP(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return ok(stdout);
  } catch (e) {
    const x = e as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (x.code === 'ENOENT') return err({ kind: 'CommandFailed', cmd, code: null, stderr: `${cmd} is not installed` });
    return err({
      kind: 'CommandFailed',
      cmd: [cmd, ...args].join(' '),
      code: typeof x.code === 'number' ? x.code : null,
      stderr: x.stderr ?? x.message,
      // what it printed before it failed (iperf3 -J: the JSON that says why)
      ...(x.stdout ? { stdout: x.stdout } : {}),
    });
  }
}

export const nsExists = (ns: string): boolean => existsSync(`${NETNS_DIR}/${ns}`);

export async function listNamespaces(prefix: string): Promise<string[]> {
  try {
    return (await fs.readdir(NETNS_DIR)).filter((n) => n.startsWith(prefix)).sort();
  } catch {
    return [];
  }
}

export async function createNamespace(ns: string, hosts: string | null): Promise<Result<void, MpError>> {
  if (!nsExists(ns)) {
    const r = await run('ip', ['netns', 'add', ns]);
    if (r.isErr()) return err(r.error);
  }
  if (hosts !== null) {
    await fs.mkdir(`${NETNS_ETC}/${ns}`, { recursive: true });
    await fs.writeFile(`${NETNS_ETC}/${ns}/hosts`, hosts);
  }
  return ok(undefined);
}

function nsInode(ns: string): number | null {
  try {
    return statSync(`${NETNS_DIR}/${ns}`).ino;
  } catch {
    return null;
  }
}

/** PIDs of every process whose network namespace is `ns`. */
export function pidsInNamespace(ns: string): number[] {
  const ino = nsInode(ns);
  if (ino === null) return [];
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${d}/ns/net`) === `net:[${ino}]`) out.push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** SIGTERM everything in the namespace, SIGKILL what is left after `graceMs`. */
export async function killNamespaceProcesses(ns: string, graceMs = 1000): Promise<void> {
  let pids = pidsInNamespace(ns);
  for (const p of pids) signal(p, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (pids.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
    pids = pids.filter(isAlive);
  }
  for (const p of pidsInNamespace(ns)) signal(p, 'SIGKILL');
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** Kills the namespace's processes, deletes it (its veth ends go with it) and its /etc/netns dir. */
export async function deleteNamespace(ns: string): Promise<Result<void, MpError>> {
  await killNamespaceProcesses(ns);
  if (nsExists(ns)) {
    const r = await run('ip', ['netns', 'del', ns]);
    if (r.isErr() && nsExists(ns)) return err(r.error);
  }
  await fs.rm(`${NETNS_ETC}/${ns}`, { recursive: true, force: true });
  return ok(undefined);
}

/** Starts a long-running process inside `ns`, detached, output appended to `logFile`. */
export async function spawnDetached(ns: string, argv: string[], logFile: string): Promise<Result<number, MpError>> {
  const fh = await fs.open(logFile, 'a');
  try {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { detached: true, stdio: ['ignore', fh.fd, fh.fd] });
    const pid = await new Promise<number | Error>((resolve) => {
      child.once('error', (e) => resolve(e));
      child.once('spawn', () => resolve(child.pid ?? new Error('no pid')));
    });
    if (pid instanceof Error) return err({ kind: 'CommandFailed', cmd: argv.join(' '), code: null, stderr: pid.message });
    child.unref();
    return ok(pid);
  } finally {
    await fh.close();
  }
}

/** Waits until `logFile` contains `marker` (the process said it is ready) or the process died.
 * `fromByte`: only what was written from there on counts (a log appended to by earlier runs). */
export async function waitForLog(logFile: string, marker: string, pid: number, timeoutMs = 5000, fromByte = 0): Promise<Result<void, MpError>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const text = (await fs.readFile(logFile).catch(() => Buffer.alloc(0))).subarray(fromByte).toString('utf8');
    if (text.includes(marker)) return ok(undefined);
    if (!isAlive(pid)) return err({ kind: 'CommandFailed', cmd: `process ${pid}`, code: null, stderr: text });
    if (Date.now() > until) return err({ kind: 'Timeout', what: logFile, message: `timed out waiting for "${marker}" in ${logFile}` });
    await new Promise((r) => setTimeout(r, 20));
  }
}
