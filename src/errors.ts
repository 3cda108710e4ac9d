// One error taxonomy for the whole control plane. Every layer returns these inside a
// neverthrow Result; only the CLI edge (src/cli/exit.ts) turns them into messages and exit codes.

export type MpError =
  /** A config/scenario value is wrong. `path` names the key (e.g. `links[1].rate`). */
  | { kind: 'ConfigInvalid'; path: string; value: unknown; message: string }
  /** The kernel refused a netlink request. `errno` is symbolic (`EEXIST`). */
  | { kind: 'NetlinkRejected'; op: string; errno: string; detail?: string }
  /** A call into native/libmpctl.so (libbpf, ethtool, sockets) failed. */
  | { kind: 'NativeFailed'; op: string; errno: number; message: string }
  /** An external program (iperf3, ip netns, the link emulator) failed or could not start. */
  | { kind: 'CommandFailed'; cmd: string; code: number | null; stderr: string; stdout?: string }
  /** Something the user named does not exist (a lab, a node, a link, a file). */
  | { kind: 'NotFound'; what: string; message: string }
  /** Something already exists or is in use (a lab of that name, a pinned object). */
  | { kind: 'Conflict'; what: string; message: string }
  /** Needs root / CAP_NET_ADMIN / CAP_BPF. */
  | { kind: 'PermissionDenied'; message: string }
  /** The peer (link emulator control socket, portal) did not answer in time. */
  | { kind: 'Timeout'; what: string; message: string }
  /** `down` (or a failed `up`'s rollback) could not revert everything: `remaining` stays in the
   *  portal record for the next `down`; `cause` is the first failure, `after` the error that
   *  started a rollback. */
  | { kind: 'UndoIncomplete'; remaining: string[]; cause: MpError; after?: MpError }
  /** Our own bug: an invariant broke. Printed with a stack and "please report". */
  | { kind: 'Bug'; message: string; cause?: unknown };

export type MpErrorKind = MpError['kind'];

export const configInvalid = (path: string, value: unknown, message: string): MpError => ({
  kind: 'ConfigInvalid',
  path,
  value,
  message,
});

/** The error of a failed file operation on the record: EACCES/EPERM are PermissionDenied (a
 *  non-root shell), anything else is a runtime failure with the errno. */
export function fileError(op: string, file: string, e: unknown): MpError {
  const x = e as NodeJS.ErrnoException;
  if (x.code === 'EACCES' || x.code === 'EPERM')
    return { kind: 'PermissionDenied', message: `cannot ${op} ${file}: permission denied (portals run as root; run mpctl as root)` };
  return { kind: 'NativeFailed', op: `${op} ${file}`, errno: typeof x.errno === 'number' ? -x.errno : 0, message: x.code ?? String(e) };
}

export const bug = (message: string, cause?: unknown): MpError => ({ kind: 'Bug', message, cause });

/** Short one-line description used in logs and as the CLI's error message. */
export function describeError(e: MpError): string {
  switch (e.kind) {
    case 'ConfigInvalid':
      // an absent key has no value to quote
      return `${e.path}: ${e.message}${e.value === undefined || e.value === null ? '' : ` (got ${JSON.stringify(e.value)})`}`;
    case 'NetlinkRejected':
      return `netlink ${e.op} rejected: ${e.errno}${e.detail ? ` (${e.detail})` : ''}`;
    case 'NativeFailed':
      return `${e.op} failed: ${e.message}${e.errno ? ` (errno ${e.errno})` : ''}`;
    case 'CommandFailed':
      return `${e.cmd} failed${e.code === null ? '' : ` with exit code ${e.code}`}${
        e.stderr.trim() ? `: ${e.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''
      }`;
    case 'NotFound':
    case 'Conflict':
    case 'Timeout':
      return e.message;
    case 'PermissionDenied':
      return e.message;
    case 'UndoIncomplete':
      return `${e.after ? `${describeError(e.after)}; then ` : ''}${e.remaining.length} change${e.remaining.length === 1 ? '' : 's'} could not be undone and stay${e.remaining.length === 1 ? 's' : ''} in the portal record for the next \`mpctl down\` (${e.remaining.join('; ')}): ${describeError(e.cause)}`;
    case 'Bug':
      return `internal error: ${e.message}`;
  }
}
