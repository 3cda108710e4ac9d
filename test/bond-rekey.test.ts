// Rekeying under a live flow: the portals run with MPCTL_REKEY_AFTER_MS shortened so that a
// 12-second flow in each direction at once (paced UDP with sequence numbers, test/helpers/
// udpflow.mjs) crosses several rekeys. Every rekey switches the LP's send key at once and the
// RP's once the LP used the new one; the old receive key stays for the grace period.
//
// What a broken rekey looks like — a key switched before the other side holds it, a receive key
// dropped too early, a replay window reset under a live key — is data-path drops counted as
// no_key / bad_mac / replay and a burst of loss right at a key change. So: none of those drops
// on either portal during the flow, no datagram lost within REKEY_WINDOW_MS of any key change
// in either direction, and the key ids changed. Loss elsewhere (the 2-core lab machine starving
// the link emulator: seen as links going down, far from any rekey) is reported, and bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { mpctlPath } from '../src/lab/lab.js';
import { run } from '../src/lab/namespaces.js';
import { parseScenario } from '../src/lab/scenario.js';
import { portalInstance } from '../src/lab/bond.js';
import { labDir } from '../src/lab/state.js';
import { nsName } from '../src/lab/topology.js';
import { publishFile } from '../src/run/status.js';
import type { SecurityStatus } from '../src/security/security-status.js';
import { withLab } from './helpers/lab.js';

const REKEY_MS = 3000; // handshakes are at least HANDSHAKE_TIMEOUT_MS (5 s) apart: ~5 s per rekey
const SECONDS = 14;
const PPS = 1000; // 8 Mbit/s of 1000-byte datagrams per direction, on 2×20 Mbit
/** A loss or a silence this close to a key change (either portal's log) counts as caused by it. */
const REKEY_WINDOW_MS = 500;
/** The longest silence at a receiver near a key change (the flow sends every 1 ms). */
const MAX_GAP_MS = 100;
const FLOW = fileURLToPath(new URL('helpers/udpflow.mjs', import.meta.url));

interface Status {
  drops: Record<string, number>;
  security: SecurityStatus | null;
  links: { id: number; state: string }[];
}

async function status(lab: string, role: 'lp' | 'rp'): Promise<Status> {
  const r = await run('ip', ['netns', 'exec', nsName(lab, role), mpctlPath(), 'status', '--instance', portalInstance(lab, role), '--json']);
  assert.ok(r.isOk(), JSON.stringify(r.isErr() && r.error));
  return JSON.parse(r.value) as Status;
}

interface FlowOut {
  sent?: number;
  startMs?: number;
  pps?: number;
  received?: number;
  lost?: number;
  maxGapMs?: number;
  gaps?: [number, number][];
  missing?: [number, number][];
}

/** Runs udpflow.mjs in a lab node; resolves with its last JSON line. `ready` resolves on "listening". */
function flow(lab: string, node: string, args: string[]): { done: Promise<FlowOut>; ready: Promise<void> } {
  const p = spawn('ip', ['netns', 'exec', nsName(lab, node), process.execPath, FLOW, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let ready: () => void = () => {};
  const readyP = new Promise<void>((r) => (ready = r));
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('listening')) ready();
  });
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<FlowOut>((resolve, reject) =>
    p.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`udpflow ${args.join(' ')} in ${node}: exit ${code} ${err}`));
      else resolve(JSON.parse(line) as FlowOut);
    }),
  );
  return { done, ready: readyP };
}

/** Times (Date.now()) of every key change in a portal's log: a session taken into use or confirmed. */
async function keyChanges(lab: string, role: 'lp' | 'rp'): Promise<number[]> {
  const text = await readFile(`${labDir(lab)}/${role}.log`, 'utf8');
  return text
    .split('\n')
    .filter((l) => /session key id \d+ (in use|pending|confirmed)/.test(l))
    .map((l) => Date.parse(l.slice(0, 24)));
}

/** When each lost datagram was sent (the sender's schedule). */
const lossTimes = (sent: FlowOut, got: FlowOut): number[] =>
  (got.missing ?? []).flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => sent.startMs! + ((a + i) * 1000) / sent.pps!));

test('rekey across a live flow in both directions: no loss at a key change, no key drops, key ids change', { timeout: 180_000 }, async (t) => {
  const prev = process.env.MPCTL_REKEY_AFTER_MS;
  process.env.MPCTL_REKEY_AFTER_MS = String(REKEY_MS); // the portals the lab starts inherit it
  try {
    const scenario = parseScenario(
      { links: [{ label: 'l1', rate: '20mbit', delay: '10ms', queue: '60ms' }, { label: 'l2', rate: '20mbit', delay: '15ms', queue: '60ms' }] },
      't',
    )._unsafeUnwrap();
    await withLab(
      scenario,
      async (lab) => {
        // the run loop publishes its view once a second: wait for the first publication
        const firstStatus = async (role: 'lp' | 'rp'): Promise<Status> => {
          for (let i = 0; ; i++) {
            const s = await status(lab, role);
            if (s.security || i >= 50) return s;
            await new Promise((r) => setTimeout(r, 100));
          }
        };
        const before = { lp: await firstStatus('lp'), rp: await firstStatus('rp') };
        assert.equal(before.lp.security?.mode, 'authenticated');
        assert.ok(before.lp.links.every((l) => l.state === 'up'), 'both links up');
        const up = flow(lab, 'server', ['recv', '203.0.113.2', '5301', String(SECONDS)]);
        const down = flow(lab, 'client', ['recv', '198.51.100.10', '5302', String(SECONDS)]);
        await Promise.all([up.ready, down.ready]);
        // the LP's key ids as it publishes them (a file read: no process per poll on this busy machine)
        const keyIds = new Set<number>();
        const published = publishFile(portalInstance(lab, 'lp'));
        const watch = setInterval(
          () =>
            void readFile(published, 'utf8')
              .then((x) => (JSON.parse(x) as { security?: SecurityStatus }).security?.keyId)
              .then((k) => k && keyIds.add(k))
              .catch(() => {}),
          250,
        );
        const sendUp = flow(lab, 'client', ['send', '203.0.113.2', '5301', String(SECONDS), String(PPS)]);
        const sendDown = flow(lab, 'server', ['send', '198.51.100.10', '5302', String(SECONDS), String(PPS)]);
        const [sentUp, sentDown, gotUp, gotDown] = await Promise.all([sendUp.done, sendDown.done, up.done, down.done]);
        clearInterval(watch);
        const after = { lp: await status(lab, 'lp'), rp: await status(lab, 'rp') };
        const changes = [...(await keyChanges(lab, 'lp')), ...(await keyChanges(lab, 'rp'))].filter(
          (c) => c >= sentUp.startMs! && c <= sentUp.startMs! + SECONDS * 1000,
        );
        const rekeys = after.lp.security!.rekeys - before.lp.security!.rekeys;
        const near = (ts: number[]) => ts.filter((x) => changes.some((c) => Math.abs(x - c) < REKEY_WINDOW_MS)).length;
        const flows = [
          ['client → server', sentUp, gotUp],
          ['server → client', sentDown, gotDown],
        ] as const;
        for (const [dir, sent, got] of flows)
          t.diagnostic(
            `${dir}: sent ${sent.sent}, received ${got.received}, lost ${got.lost} (${near(lossTimes(sent, got))} within ${REKEY_WINDOW_MS} ms of a key change), ` +
              `longest gap ${got.maxGapMs} ms, gaps over 50 ms ${JSON.stringify((got.gaps ?? []).map(([end, ms]) => [new Date(end).toISOString().slice(11, 23), ms]))}`,
          );
        t.diagnostic(`${rekeys} rekeys during the flow (${changes.length} key changes on both portals); LP key ids seen ${[...keyIds].join(', ')}`);
        const authDrops = (s: Status, b: Status) => Object.fromEntries(['no_key', 'bad_mac', 'replay'].map((k) => [k, (s.drops[k] ?? 0) - (b.drops[k] ?? 0)]));
        t.diagnostic(`data-path drops during the flow: LP ${JSON.stringify(authDrops(after.lp, before.lp))}, RP ${JSON.stringify(authDrops(after.rp, before.rp))}`);

        assert.ok(rekeys >= 2, `at least 2 rekeys during the flow (got ${rekeys})`);
        assert.ok(keyIds.size >= 3, `the send key id changed (seen ${[...keyIds].join(', ')})`);
        // each portal publishes its status once a second: a rekey's publication can fall between
        // the two reads (CI: RP 237, LP 236), so read both again until they agree, 3 s at most
        let last = after;
        for (const end = Date.now() + 3000; last.rp.security!.keyId !== last.lp.security!.keyId && Date.now() < end; ) {
          await new Promise((r) => setTimeout(r, 200));
          last = { lp: await status(lab, 'lp'), rp: await status(lab, 'rp') };
        }
        assert.equal(last.rp.security!.keyId, last.lp.security!.keyId, 'both portals end on the same session');
        assert.deepEqual(after.rp.security!.rejected, {}, 'the RP refused nothing');
        for (const [who, a, b] of [
          ['LP', after.lp, before.lp],
          ['RP', after.rp, before.rp],
        ] as const)
          assert.deepEqual(authDrops(a, b), { no_key: 0, bad_mac: 0, replay: 0 }, `${who}: nothing dropped for a key`);
        for (const [dir, sent, got] of flows) {
          assert.equal(near(lossTimes(sent, got)), 0, `${dir}: nothing lost at a key change`);
          const stalls = (got.gaps ?? []).filter(([end, ms]) => ms > MAX_GAP_MS && changes.some((c) => c >= end - ms - REKEY_WINDOW_MS && c <= end + REKEY_WINDOW_MS));
          assert.deepEqual(stalls, [], `${dir}: no silence over ${MAX_GAP_MS} ms at a key change`);
          assert.ok(got.lost! <= sent.sent! * 0.02, `${dir}: ${got.lost} lost of ${sent.sent} (lab noise is bounded)`);
        }
      },
      { bond: true },
    );
  } finally {
    if (prev === undefined) delete process.env.MPCTL_REKEY_AFTER_MS;
    else process.env.MPCTL_REKEY_AFTER_MS = prev;
  }
});
