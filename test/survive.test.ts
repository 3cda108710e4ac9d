// The data path outlives its control plane (README, of that name): either portal is killed with
// SIGKILL in the middle of a TCP flow, and the flow goes on at >= 90 % of its rate for 60 s.
// The dead portal's data path keeps forwarding with the estimates it had, and answers the peer's
// probe requests itself (bpf/probe.h), so the survivor keeps the links up; the RP asks on its own
// (runtime.ts startRemote) when the LP's requests stop. The survivor's congestion controller,
// without feedback, keeps the last rates (cc/controller.ts onSilence: stale, not lowered).
//
//   client ── lp ═╦═ isp1 (20 Mbit/s, 10 ms) ═╦═ inet ── rp ── srv ── server
//                 ╚═ isp2 (20 Mbit/s, 15 ms) ═╝
//
// One lab per victim; the flow runs 10 s before the kill and 60 s after it (server → client).
// The victim's `mpctl status` says its control plane is gone since about the kill and its data
// path forwards the flow (README "`mpctl status`").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mpctlPath } from '../src/lab/lab.js';
import { iperf } from '../src/lab/measure.js';
import { run } from '../src/lab/namespaces.js';
import { parseScenario } from '../src/lab/scenario.js';
import { portalInstance } from '../src/lab/bond.js';
import { nsName } from '../src/lab/topology.js';
import { withLab } from './helpers/lab.js';

const BEFORE_S = 10;
const AFTER_S = 60;

const must = <T>(r: { isOk(): boolean; _unsafeUnwrap(): T }, what: string): T => {
  assert.ok(r.isOk(), `${what}: ${JSON.stringify((r as unknown as { error?: unknown }).error)}`);
  return r._unsafeUnwrap();
};

const scenario = parseScenario({ links: [{ label: 'l1', rate: '20mbit', delay: '10ms', queue: '60ms' }, { label: 'l2', rate: '20mbit', delay: '15ms', queue: '60ms' }] }, 't')._unsafeUnwrap();

interface Status {
  pid: number;
  running: boolean;
  controlPlane: { running: boolean; lastSeenMs: number | null };
  dataPath: { forwarding: boolean; packetsLastSecond: number };
  links: { id: number; state: string }[];
}

async function status(lab: string, role: 'lp' | 'rp'): Promise<Status> {
  const r = await run('ip', ['netns', 'exec', nsName(lab, role), mpctlPath(), 'status', '--instance', portalInstance(lab, role), '--json']);
  return JSON.parse(must(r, 'mpctl status')) as Status;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

for (const victim of ['lp', 'rp'] as const) {
  test(`SIGKILL of the ${victim.toUpperCase()} mid-flow: the flow goes on at >= 90 % for ${AFTER_S} s, the survivor keeps both links up`, { timeout: 240_000 }, async (t) => {
    await withLab(
      scenario,
      async (lab) => {
        const survivor = victim === 'lp' ? 'rp' : 'lp';
        const pid = (await status(lab, victim)).pid;
        assert.ok(pid > 0, 'the victim runs');
        const flow = iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: BEFORE_S + AFTER_S, reverse: true });
        await new Promise((r) => setTimeout(r, BEFORE_S * 1000));
        process.kill(pid, 'SIGKILL');
        const killedAt = Date.now();
        const sample = async () => (await status(lab, survivor)).links.map((l) => l.state);
        const states: string[][] = [];
        let dead: Status | null = null;
        for (let i = 0; i < 6; i++) {
          await new Promise((r) => setTimeout(r, (AFTER_S * 1000) / 7));
          states.push(await sample());
          if (i === 0) dead = await status(lab, victim); // status truth, mid-flow
        }
        const r = must(await flow, 'iperf3 across the kill');
        const rates = r.intervals.map((x) => x / 1e6);
        t.diagnostic(`per-second goodput (Mbit/s), kill after ${BEFORE_S} s: ${rates.map((x) => x.toFixed(1)).join(' ')}`);
        t.diagnostic(`survivor's link states every ~${Math.round(AFTER_S / 7)} s: ${states.map((s) => s.join('/')).join(' ')}`);
        const before = mean(rates.slice(3, BEFORE_S));
        const afterRates = rates.slice(BEFORE_S, BEFORE_S + AFTER_S);
        const after = mean(afterRates);
        t.diagnostic(`before the kill ${before.toFixed(2)} Mbit/s, after ${after.toFixed(2)} Mbit/s (${((after / before) * 100).toFixed(1)} %), slowest second after ${Math.min(...afterRates).toFixed(1)}`);
        assert.ok(afterRates.length >= AFTER_S - 1, `the flow lasted ${afterRates.length} s after the kill`);
        assert.ok(after >= 0.9 * before, `after the kill ${after.toFixed(2)} Mbit/s < 90 % of ${before.toFixed(2)}`);
        assert.ok(states.every((s) => s.length === 2 && s.every((x) => x === 'up')), `the survivor kept both links up: ${JSON.stringify(states)}`);
        // the victim's status: control plane gone since about the kill, data path forwarding
        assert.ok(dead);
        t.diagnostic(`the victim's status: ${JSON.stringify({ controlPlane: dead.controlPlane, dataPath: dead.dataPath })} (killed at ${killedAt})`);
        assert.deepEqual([dead.running, dead.controlPlane.running, dead.dataPath.forwarding], [false, false, true]);
        assert.ok(dead.controlPlane.lastSeenMs !== null && killedAt - dead.controlPlane.lastSeenMs < 2500 && dead.controlPlane.lastSeenMs <= killedAt, 'last seen within the publish interval before the kill');
        assert.ok(dead.dataPath.packetsLastSecond > 1000, `the flow's packets counted: ${dead.dataPath.packetsLastSecond}`);
      },
      { bond: true },
    );
  });
}
