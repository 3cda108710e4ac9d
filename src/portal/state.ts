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
  const tmp = `${stateFile(s.instance)}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  await fs.rename(tmp, stateFile(s.instance));
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
