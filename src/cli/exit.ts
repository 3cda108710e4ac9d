// The CLI edge: the only place an MpError becomes a message and an exit code.
//
// Exit codes (documented in the README):
//   0 success · 1 runtime failure (netlink, native, external command, timeout) · 2 bad usage or
//   config · 3 not found · 4 conflict (already up / in use) · 5 permission denied · 70 bug ·
//   75 handed over (the foreground portal on SIGUSR2: its data path left for the next `up`)
// `mpctl up` with the console (commands/portal.ts): 0 after q (clean teardown) or d (detached),
// 1 when the portal's teardown was incomplete, the portal's own code when it failed to come up.
import { describeError, type MpError } from '../errors.js';

export const EXIT = { ok: 0, failure: 1, usage: 2, notFound: 3, conflict: 4, permission: 5, handover: 75, bug: 70 } as const;

export function exitCodeOf(e: MpError): number {
  switch (e.kind) {
    case 'ConfigInvalid':
      return EXIT.usage;
    case 'NotFound':
      return EXIT.notFound;
    case 'Conflict':
      return EXIT.conflict;
    case 'PermissionDenied':
      return EXIT.permission;
    case 'Bug':
      return EXIT.bug;
    case 'UndoIncomplete':
      return exitCodeOf(e.cause);
    case 'NetlinkRejected':
    case 'NativeFailed':
    case 'CommandFailed':
    case 'Timeout':
      return EXIT.failure;
  }
}

/** Prints the error for a person and returns the exit code. */
export function reportError(e: MpError): number {
  process.stderr.write(`mpctl: ${describeError(e)}\n`);
  if (e.kind === 'Bug') {
    if (e.cause instanceof Error && e.cause.stack) process.stderr.write(`${e.cause.stack}\n`);
    process.stderr.write('This is a bug in mpctl; please report it with the output above.\n');
  }
  return exitCodeOf(e);
}
