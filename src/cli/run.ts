// Runs a command handler and exits with its code; the single place errors reach the user.
import type { Result } from 'neverthrow';
import { bug, type MpError } from '../errors.js';
import { reportError } from './exit.js';

export async function run(f: () => Promise<Result<number, MpError>>): Promise<void> {
  let code: number;
  try {
    const r = await f();
    code = r.isOk() ? r.value : reportError(r.error);
  } catch (e) {
    code = reportError(bug(e instanceof Error ? e.message : String(e), e));
  }
  process.exitCode = code;
  // netlink sockets and timers must not keep a finished command alive
  setImmediate(() => process.exit(code));
}
