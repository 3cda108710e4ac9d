// Run synchronous work inside a named network namespace (`ip netns` style, /run/netns/<name>)
// without moving the process there.
//
// Node cannot enter a namespace by itself, so this calls libc's open/setns/close through ffi-rs.
// setns(2) with CLONE_NEWNET switches only the *calling thread*; ffi-rs calls (without
// runInNewThread) and Node's synchronous APIs run on the main thread, so for the duration of
// `fn` everything the main thread creates lives in the target namespace. The useful part is
// that a socket keeps the namespace it was created in:
//
//     const nl = withNetns('lab-lp', () => createRtNetlink());   // configures lab-lp forever
//
// What does NOT follow the thread into the namespace:
//   - anything finished later, on the event loop: a Promise/async `fn` is rejected as a Bug;
//   - work libuv hands to its thread pool (async fs, dns.lookup, zlib): other threads stay put;
//   - node:net / node:dgram sockets whose socket(2) happens lazily after an async step.
// Synchronous child_process calls (spawnSync) fork from the main thread and do inherit it.

import { closeSync, openSync, constants as fsConstants, statSync } from 'node:fs';
import { DataType, load, open } from 'ffi-rs';
import { err, ok, type Result } from 'neverthrow';
import { bug, type MpError } from '../errors.js';
import { errnoName } from './libmpctl.js';

export const CLONE_NEWNET = 0x40000000;
const NETNS_DIR = '/run/netns';
const SELF_NS = '/proc/thread-self/ns/net';
const LIBC = 'mpctl-libc';

let libcOpened = false;

function libc(): void {
  if (!libcOpened) {
    open({ library: LIBC, path: 'libc.so.6' });
    libcOpened = true;
  }
}

/** setns(fd, CLONE_NEWNET) on the calling thread; returns 0 or the errno. */
function setns(fd: number): number {
  libc();
  const r = load({
    library: LIBC,
    funcName: 'setns',
    retType: DataType.I32,
    paramsType: [DataType.I32, DataType.I32],
    paramsValue: [fd, CLONE_NEWNET],
    errno: true as const,
  });
  return r.value === 0 ? 0 : r.errnoCode || 22;
}

/** Kernel thread id of the caller (equals process.pid on Node's main thread). */
export function gettid(): number {
  libc();
  return load({
    library: LIBC,
    funcName: 'gettid',
    retType: DataType.I32,
    paramsType: [],
    paramsValue: [],
  });
}

/** Inode of the calling thread's network namespace (compare with `ip netns identify`/stat). */
export function currentNetnsInode(): number {
  return statSync(SELF_NS).ino;
}

/** Inode of a named namespace, or null if /run/netns/<name> does not exist. */
export function netnsInode(nsName: string): number | null {
  try {
    return statSync(`${NETNS_DIR}/${nsName}`).ino;
  } catch {
    return null;
  }
}

function openNs(path: string, nsName: string): Result<number, MpError> {
  try {
    // libuv adds O_CLOEXEC to every open.
    return ok(openSync(path, fsConstants.O_RDONLY));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      return err({
        kind: 'NotFound',
        what: `netns ${nsName}`,
        message: `network namespace '${nsName}' does not exist (${path})`,
      });
    if (code === 'EACCES' || code === 'EPERM')
      return err({ kind: 'PermissionDenied', message: `cannot open ${path}: ${code} (run as root)` });
    return err({ kind: 'NativeFailed', op: 'open', errno: Math.abs((e as NodeJS.ErrnoException).errno ?? 0), message: `open ${path}: ${String(e)}` });
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}

/**
 * Run `fn` synchronously with the calling thread inside network namespace `nsName`
 * (`/run/netns/<nsName>`; null = stay where we are), then switch back.
 *
 * Errors: NotFound (no such namespace), PermissionDenied (not root), NativeFailed (setns into
 * the namespace failed), Bug (fn returned a Promise, or switching back failed — the thread is
 * then in the wrong namespace and the process should stop). If `fn` throws, the thread is
 * switched back and the exception propagates unchanged; to keep to Results, let `fn` return a
 * Result and flatten with `.andThen((r) => r)`.
 */
export function withNetns<T>(nsName: string | null, fn: () => T): Result<T, MpError> {
  if (nsName === null) return checkSync(fn());
  if (nsName === '' || nsName.includes('/'))
    return err(bug(`withNetns: invalid namespace name ${JSON.stringify(nsName)}`));

  const target = openNs(`${NETNS_DIR}/${nsName}`, nsName);
  if (target.isErr()) return err(target.error);
  const saved = openNs(SELF_NS, 'self');
  if (saved.isErr()) {
    closeSync(target.value);
    return err(saved.error);
  }

  try {
    const e = setns(target.value);
    if (e !== 0) {
      const message = `setns(${NETNS_DIR}/${nsName}, CLONE_NEWNET): ${errnoName(e)}`;
      return err(
        e === 1 || e === 13
          ? { kind: 'PermissionDenied', message: `${message} — run as root (CAP_SYS_ADMIN)` }
          : { kind: 'NativeFailed', op: 'setns', errno: e, message },
      );
    }
    let value: T;
    try {
      value = fn();
    } catch (e) {
      if (!restore(saved.value)) throw new Error(restoreBug(nsName).message, { cause: e });
      throw e;
    }
    if (!restore(saved.value)) return err(restoreBug(nsName));
    return checkSync(value);
  } finally {
    closeSync(target.value);
    closeSync(saved.value);
  }
}

function restore(savedFd: number): boolean {
  return setns(savedFd) === 0;
}

function restoreBug(nsName: string): MpError & { kind: 'Bug' } {
  return {
    kind: 'Bug',
    message: `withNetns(${nsName}): setns back to the original network namespace failed; the main thread is in the wrong namespace`,
  };
}

function checkSync<T>(value: T): Result<T, MpError> {
  if (isThenable(value)) {
    // The awaited part would run after we switched back: in the wrong namespace.
    Promise.resolve(value).catch(() => undefined);
    return err(
      bug(
        'withNetns callback returned a Promise: only synchronous work runs inside the namespace ' +
          '(create the socket inside, await its requests outside)',
      ),
    );
  }
  return ok(value);
}
