// A running portal's record: who runs it and the undo log of everything `up` changed.
// Written after every change so `down` works even after a crash of the portal process.
import { promises as fs } from 'node:fs';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
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
  /** status socket for `mpctl status` */
  undo: Undo[];
}

export const portalDir = (instance: string): string => `${RUN_DIR}/portal/${instance}`;
const stateFile = (instance: string): string => `${portalDir(instance)}/state.json`;

export async function writePortalState(s: PortalState): Promise<void> {
  await fs.mkdir(portalDir(s.instance), { recursive: true, mode: 0o700 });
  await writeFileAtomic(stateFile(s.instance), `${JSON.stringify(s, null, 2)}\n`);
}

/** Writes `text` to a temporary name in the same directory and renames it over `file`, so that
 * a reader sees the old file or the new one, never a part. */
export async function writeFileAtomic(file: string, text: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text, { mode });
  await fs.rename(tmp, file);
}

export async function readPortalState(instance: string): Promise<Result<PortalState, MpError>> {
  try {
    return ok(JSON.parse(await fs.readFile(stateFile(instance), 'utf8')) as PortalState);
  } catch {
    return err({ kind: 'NotFound', what: 'portal', message: `portal "${instance}" is not up` });
  }
}

export async function removePortalState(instance: string): Promise<void> {
  await fs.rm(portalDir(instance), { recursive: true, force: true });
}
