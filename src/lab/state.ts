// What a running lab is: written when `lab up` starts (so a half-built lab can still be torn
// down), updated by `lab set`, removed by `lab down`. Live numbers come from the kernel and the
// emulators; this file only holds what the user asked for.
import { promises as fs } from 'node:fs';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { DEFAULT_DIR, type LinkSettings } from './params.js';

export const LAB_RUN_DIR = process.env.MPCTL_RUN_DIR ? `${process.env.MPCTL_RUN_DIR}/lab` : '/run/mpctl/lab';

export interface LabState {
  version: 1;
  name: string;
  prefix: string;
  createdAt: string;
  /** pid of the process that created the lab (tests use it to reap leftovers of crashed runs) */
  ownerPid: number;
  links: LinkSettings[];
  /** whether `lab up` finished; false while building or after a failed build */
  complete: boolean;
  /** both portals run (the bonded lab) */
  bond: boolean;
  singleInterface: boolean;
  /** whole-LAN mode: the LAN switch and its hosts (topology.ts); absent = false */
  lan?: boolean;
  /** routed-hosts mode: a router in front of each end host's side (topology.ts ROUTERS); absent = false */
  routedHosts?: boolean;
  /** both portals shape their links (`shape = true`; lab.ts UpOptions.shape); absent = false */
  shape?: boolean;
}

export const stateFile = (name: string): string => `${LAB_RUN_DIR}/${name}.json`;
export const labDir = (name: string): string => `${LAB_RUN_DIR}/${name}`;

export async function writeState(s: LabState): Promise<void> {
  await fs.mkdir(labDir(s.name), { recursive: true, mode: 0o755 });
  const tmp = `${stateFile(s.name)}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(s, null, 2)}\n`);
  await fs.rename(tmp, stateFile(s.name));
}

export async function readState(name: string): Promise<Result<LabState, MpError>> {
  try {
    const st = JSON.parse(await fs.readFile(stateFile(name), 'utf8')) as LabState;
    // a lab brought up by an older mpctl has no trace or schedule keys: the defaults
    for (const l of st.links) for (const dir of ['up', 'down'] as const) l[dir] = { ...DEFAULT_DIR, ...l[dir] };
    return ok(st);
  } catch {
    return err({ kind: 'NotFound', what: 'lab', message: `no lab named "${name}" is up (mpctl lab up --name ${name})` });
  }
}

export async function removeState(name: string): Promise<void> {
  await fs.rm(stateFile(name), { force: true });
  await fs.rm(labDir(name), { recursive: true, force: true });
}

export async function listLabs(): Promise<string[]> {
  try {
    return (await fs.readdir(LAB_RUN_DIR)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
  } catch {
    return [];
  }
}
