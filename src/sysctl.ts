// sysctls through /proc/sys, inside a namespace: files under /proc/sys/net resolve against the
// network namespace of the thread that opens them, so reads and writes run inside withNetns.
import { readFileSync, writeFileSync } from 'node:fs';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from './errors.js';
import { withNetns } from './native/netns.js';

// sysctl(8) convention: dots separate levels, a `/` stands for a dot inside a name (eth0/100)
const path = (key: string): string => `/proc/sys/${key.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'))}`;

function fsError(op: string, key: string, e: unknown): MpError {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT') return { kind: 'NotFound', what: 'sysctl', message: `no sysctl ${key}` };
  if (code === 'EACCES' || code === 'EPERM') return { kind: 'PermissionDenied', message: `${op} ${key}: permission denied (run as root)` };
  return { kind: 'NativeFailed', op: `${op} ${key}`, errno: 0, message: String((e as Error).message ?? e) };
}

/** `key` in dotted form (`net.ipv4.ip_forward`; `net.ipv4.conf.eth0/100.forwarding` for eth0.100). */
export function sysctlGet(ns: string | null, key: string): Result<string, MpError> {
  const r = withNetns(ns, () => {
    try {
      return ok(readFileSync(path(key), 'utf8').trim());
    } catch (e) {
      return err(fsError('read', key, e));
    }
  });
  return r.andThen((x) => x);
}

export function sysctlSet(ns: string | null, key: string, value: string | number): Result<void, MpError> {
  const r = withNetns(ns, () => {
    try {
      writeFileSync(path(key), String(value));
      return ok(undefined);
    } catch (e) {
      return err(fsError('write', key, e));
    }
  });
  return r.andThen((x) => x);
}
