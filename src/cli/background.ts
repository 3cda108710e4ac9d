// `mpctl up` on a terminal runs the portal as a background process and the console in the
// foreground, so the console can go away (`d`, detach) while the data path AND its run loop
// (probes, liveness, congestion control, rekeys) keep going — a portal whose loop stopped would
// lose every link within three probe intervals, so "leave the data path running" needs a live
// process. The background process is the same `mpctl up --no-tui` that systemd runs: its own
// session (no SIGHUP when the terminal closes), log lines in /run/mpctl/log/<instance>.log, its
// pid in the portal record, so `mpctl down`, `mpctl status` and `mpctl attach` find it.
//
//   terminal ── mpctl up local (console) ──spawn──▶ mpctl up local --no-tui --ready-fd 3
//                    │  reads pinned maps + status file      │ owns the kernel state and run loop
//                    └─ control socket (admin down/up) ─────▶│
import { spawn } from 'node:child_process';
import { copyFile, mkdir, open, readFile, readlink, rename, stat, truncate } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { logFile, RUN_DIR } from '../apply/state.js';

/** A log over this size is moved to <log>.1 (replacing the previous one) before a portal starts:
 *  /run is memory, and a portal restarted for months would otherwise grow it without end. */
export const LOG_ROTATE_BYTES = 4 * 1024 * 1024;

export async function rotateLog(log: string, maxBytes = LOG_ROTATE_BYTES): Promise<void> {
  const size = await stat(log).then((s) => s.size, () => 0);
  if (size > maxBytes) await rename(log, `${log}.1`).catch(() => {});
}

/** How often a running portal looks at the size of its own log. */
export const LOG_CHECK_MS = 10_000;

/** If `log` is over `maxBytes`: its content moves to <log>.1 (replacing the previous one) and
 *  `log` is truncated in place. Its writers opened it for appending, so they carry on at its new
 *  end; lines written between the copy and the truncation are lost. Returns whether it did. */
export async function rotateInPlace(log: string, maxBytes = LOG_ROTATE_BYTES): Promise<boolean> {
  const size = await stat(log).then((s) => s.size, () => 0);
  if (size <= maxBytes) return false;
  await copyFile(log, `${log}.1`);
  await truncate(log, 0);
  return true;
}

/** The portal process's stdout, when it is a regular file opened for appending (the background
 *  process's log, the lab's): rotated by size while the portal runs, checked every
 *  LOG_CHECK_MS, so that a flood of log lines cannot fill /run (memory). Returns the stop. */
export async function rotateOwnLog(maxBytes = LOG_ROTATE_BYTES, everyMs = LOG_CHECK_MS): Promise<() => void> {
  const none = () => {};
  const path = await readlink('/proc/self/fd/1').catch(() => null);
  const info = await readFile('/proc/self/fdinfo/1', 'utf8').catch(() => '');
  const flags = Number.parseInt(/^flags:\s*([0-7]+)/m.exec(info)?.[1] ?? '0', 8);
  const O_APPEND = 0o2000;
  if (!path?.startsWith('/') || !(flags & O_APPEND) || !(await stat(path).then((s) => s.isFile(), () => false))) return none;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void rotateInPlace(path, maxBytes)
      .catch(() => false)
      .finally(() => (busy = false));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

export type Started =
  /** `exited`: the portal process's exit code (0 after a clean teardown), once it ends */
  | { ok: true; pid: number; log: string; exited: Promise<number> }
  | { ok: false; code: number; log: string; output: string };

/** Starts `mpctl up <role> --config <file> --no-tui` detached and waits until it says it is up
 *  (a line on fd 3) or exits. `onInterrupt` lets Ctrl-C during start-up stop it cleanly. */
export async function startInBackground(role: string, configFile: string, instance: string, timeoutMs = 60_000): Promise<Started> {
  const log = logFile(instance);
  await mkdir(`${RUN_DIR}/log`, { recursive: true, mode: 0o700 });
  await rotateLog(log);
  const fh = await open(log, 'a', 0o600);
  const from = (await fh.stat()).size;
  const script = process.argv[1]!;
  const child = spawn(process.execPath, [...process.execArgv, script, 'up', role, '--config', resolvePath(configFile), '--no-tui', '--ready-fd', '3'], {
    detached: true,
    stdio: ['ignore', fh.fd, fh.fd, 'pipe'],
  });
  await fh.close();
  const output = async () => (await readFile(log, 'utf8').catch(() => '')).slice(from);
  const interrupt = () => child.kill('SIGTERM'); // the portal tears down what it made so far
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    const outcome = await new Promise<{ ready: true } | { ready: false; code: number }>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGTERM');
        resolve({ ready: false, code: 1 });
      }, timeoutMs);
      let buf = '';
      (child.stdio[3] as Readable).on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) {
          clearTimeout(timer);
          resolve({ ready: true });
        }
      });
      (child.stdio[3] as Readable).on('error', () => {});
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ ready: false, code: code ?? (signal ? 1 : 0) });
      });
      child.once('error', () => {
        clearTimeout(timer);
        resolve({ ready: false, code: 1 });
      });
    });
    if (!outcome.ready) return { ok: false, code: outcome.code, log, output: await output() };
    (child.stdio[3] as Readable).destroy();
    child.unref();
    const exited = new Promise<number>((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 1 : 0))));
    return { ok: true, pid: child.pid!, log, exited };
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
}
