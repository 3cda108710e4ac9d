// Lab tests wait for the state they need instead of sleeping a fixed time: on a loaded 2-CPU
// machine a fixed sleep is either too short (a flaky failure) or longer than needed (a slow suite).
import assert from 'node:assert/strict';
import { portalInstance } from '../../src/lab/bond.js';
import { portalStatus, type PortalStatus } from '../../src/run/status.js';

/** Reads `read` every `everyMs` until `ok` holds: that value and how long it took (ms). Fails
 *  after `limitMs`, naming `what` and showing the last value read. */
export async function waitFor<T>(what: string, read: () => T | Promise<T>, ok: (v: T) => boolean, limitMs: number, everyMs = 50): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  for (;;) {
    const value = await read();
    const ms = Date.now() - t0;
    if (ok(value)) return { value, ms };
    if (ms > limitMs) assert.fail(`not within ${limitMs} ms: ${what}; last: ${JSON.stringify(value)?.slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A lab portal's status read in this process (its pinned maps and what it publishes), as
 *  `mpctl status --json` prints it, without starting mpctl for every read. */
export async function labStatus(lab: string, role: 'lp' | 'rp'): Promise<PortalStatus> {
  const s = await portalStatus(portalInstance(lab, role));
  assert.ok(s.isOk(), s.isErr() ? `status of ${role}: ${JSON.stringify(s.error)}` : '');
  return s.value;
}

/** Until both portals of the lab's bond have `links` links up: handshake done, probes answered. */
export async function bondReady(lab: string, links: number, limitMs = 15_000): Promise<void> {
  for (const role of ['lp', 'rp'] as const)
    await waitFor(`${role}: ${links} links up`, () => labStatus(lab, role), (s) => s.links.filter((l) => l.state === 'up').length === links, limitMs);
}

/** Until both portals' depth trains (src/run/depth.ts) are over on every link: each burst fills
 *  its link's buffer to where it drops, and a test that counts every packet of its own must not
 *  send into one. Links that never get a depth train (metered) must not be in the lab. Returns
 *  each portal's status as it was when its trains were over. */
export async function depthTrainsOver(lab: string, limitMs = 20_000): Promise<{ lp: PortalStatus; rp: PortalStatus }> {
  const over = (s: PortalStatus) => s.links.length > 0 && s.links.every((l) => l.depthTrain?.over === true);
  const lp = (await waitFor(`lp: every link's depth train over`, () => labStatus(lab, 'lp'), over, limitMs, 250)).value;
  const rp = (await waitFor(`rp: every link's depth train over`, () => labStatus(lab, 'rp'), over, limitMs, 250)).value;
  return { lp, rp };
}
