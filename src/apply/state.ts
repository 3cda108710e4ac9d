// A running portal's record: who runs it and the undo log of everything `up` changed.
// Written after every change so `down` works even after a crash of the portal process.
import { promises as fs } from 'node:fs';
import { err, ok, type Result } from 'neverthrow';
import { fileError, type MpError } from '../errors.js';
import type { Undo } from './apply.js';
export { BPFFS_ROOT, pinDir } from '../plan/pins.js';

export const RUN_DIR = process.env.MPCTL_RUN_DIR ?? '/run/mpctl';

export interface PortalState {
  version: 1;
  instance: string;
  role: 'local' | 'remote';
  pid: number;
  configFile: string;
  startedAt: string;
  /** the network namespace inode the portal runs in (so `down` from elsewhere can tell) */
  netns: string;
  pinDir: string;
  /** the BPF object the data path was loaded from (datapath.ts objectId); absent in a record
   * written before it was kept: such a data path is not adopted */
  object?: string;
  /** status socket for `mpctl status` */
  undo: Undo[];
}

export const portalDir = (instance: string): string => `${RUN_DIR}/portal/${instance}`;
/** the background portal's log lines (cli/background.ts; the lab shows them too) */
export const logFile = (instance: string): string => `${RUN_DIR}/log/${instance}.log`;
const stateFile = (instance: string): string => `${portalDir(instance)}/state.json`;

export async function writePortalState(s: PortalState): Promise<Result<void, MpError>> {
  try {
    await fs.mkdir(portalDir(s.instance), { recursive: true, mode: 0o700 });
    await writeFileAtomic(stateFile(s.instance), `${JSON.stringify(s, null, 2)}\n`);
    return ok(undefined);
  } catch (e) {
    return err(fileError('write', stateFile(s.instance), e));
  }
}

/** Writes `text` to a temporary name in the same directory and renames it over `file`, so that
 * a reader sees the old file or the new one, never a part. */
export async function writeFileAtomic(file: string, text: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text, { mode });
  await fs.rename(tmp, file);
}

/**
 * The record of `instance`: NotFound only when there is none (the portal is not up);
 * PermissionDenied when it cannot be read (not root); Conflict when it is not a record (a
 * broken file must not be taken for "not up" and overwritten: it holds the undo log).
 */
export async function readPortalState(instance: string): Promise<Result<PortalState, MpError>> {
  const file = stateFile(instance);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return err({ kind: 'NotFound', what: 'portal', message: `portal "${instance}" is not up` });
    return err(fileError('read', file, e));
  }
  try {
    const s = JSON.parse(text) as PortalState;
    if (s?.version === 1 && typeof s.pid === 'number' && Array.isArray(s.undo)) return ok(s);
  } catch {
    /* reported below */
  }
  return err({
    kind: 'Conflict',
    what: 'portal record',
    message: `the record of portal "${instance}" (${file}) is not a portal record; it may hold the undo log of what mpctl changed: look at it, undo by hand what it lists, then remove it`,
  });
}

export async function removePortalState(instance: string): Promise<void> {
  await fs.rm(portalDir(instance), { recursive: true, force: true });
}
