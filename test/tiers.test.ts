// Scheduling policy end to end in the bonded lab (a few seconds each): adaptive rates against
// equal static weights on unequal links, the backup tier, and a byte budget. One lab for all of
// them (bringing one up takes seconds); each test sets isp2's rate it needs and starts the
// portals with its own LP config.
//
//   client ── lp ══ isp1 (20 Mbit/10 ms) ══╗
//                ══ isp2 (5 or 20 Mbit)  ══╩══ inet ── rp ── server (iperf3 -s)
//
// Run as root, under the lab lock:
//   flock /tmp/mpctl-heavy.lock node --import tsx --test test/tiers.test.ts

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LinkSampler } from '../src/lab/bench/sample.js';
import { portalInstance, startBond, stopBond, type BondOptions } from '../src/lab/bond.js';
import { labSet, mpctlPath } from '../src/lab/lab.js';
import { iperf } from '../src/lab/measure.js';
import { parseScenario } from '../src/lab/scenario.js';
import { readState } from '../src/lab/state.js';
import { measuredAgain } from './helpers/again.js';
import { emulatorHealth, healthBetween, must, sharedLab } from './helpers/lab.js';
import { bondReady, labStatus, waitFor } from './helpers/wait.js';

const links = parseScenario({ links: [{ rate: '20mbit', delay: '10ms', queue: '60ms' }, { rate: '20mbit', delay: '10ms', queue: '60ms' }] }, 'test')._unsafeUnwrap();

/** isp2's rate both ways (the queue stays 60 ms at the new rate, as a lab made with it). */
async function isp2Rate(lab: string, bps: number): Promise<void> {
  must(await labSet({ name: lab, node: 'isp2', dirs: ['up', 'down'], patch: { rateBps: bps } }), `isp2 to ${bps / 1e6} Mbit/s`);
}

/** Starts the portals with `lp` extras, runs `f`, stops them. */
async function bonded<T>(lab: string, lp: BondOptions['lp'], f: () => Promise<T>): Promise<T> {
  const st = await readState(lab);
  assert.ok(st.isOk());
  const b = await startBond(lab, st.value.links, { singleInterface: false, lp }, mpctlPath());
  assert.ok(b.isOk(), b.isErr() ? JSON.stringify(b.error) : '');
  try {
    await bondReady(lab, st.value.links.length);
    return await f();
  } finally {
    await stopBond(lab, mpctlPath());
  }
}

/** One TCP flow client → server; goodput (Mbit/s) and the bytes each link id carried (LP tx). */
async function flowUp(lab: string, seconds: number): Promise<{ mbit: number; tx: number[]; lab: string }> {
  const s = await LinkSampler.open(portalInstance(lab, 'lp'), 2);
  assert.ok(s.isOk(), s.isErr() ? JSON.stringify(s.error) : '');
  try {
    const before = s.value.read()!;
    const h0 = await emulatorHealth(lab);
    const r = await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds, omitS: 1 });
    assert.ok(r.isOk(), r.isErr() ? JSON.stringify(r.error) : '');
    const after = s.value.read()!;
    return { mbit: r.value.bps / 1e6, tx: after.tx.map((x, i) => x - before.tx[i]!), lab: healthBetween(h0, await emulatorHealth(lab)) };
  } finally {
    s.value.close();
  }
}

describe('scheduling policy in the lab', { timeout: 120_000 }, () => {
  const labName = sharedLab(links);

  it('adaptive rates beat equal static weights on 20 + 5 Mbit links', async () => {
    const lab = labName();
    await isp2Rate(lab, 5e6);
    // both start from the same wrong, equal estimates (10 Mbit/s each)
    const lp = { rates: ['10mbit', '10mbit'] };
    const stat = await bonded(lab, { ...lp, congestionControl: false }, () => flowUp(lab, 4));
    // a miss is measured again with fresh portals (helpers/again.ts); the first figure is shown too
    const adapt = await measuredAgain(
      (l) => console.log(`# ${l}`),
      'adaptive 20 + 5',
      () => bonded(lab, lp, () => flowUp(lab, 4)),
      (x) => x.mbit > 1.2 * stat.mbit && x.mbit > 0.85 * 25,
      (x) => `${x.mbit.toFixed(1)} Mbit/s`,
    );
    console.log(`# 20 + 5 Mbit, one TCP flow: static equal weights ${stat.mbit.toFixed(1)} Mbit/s, adaptive ${adapt.mbit.toFixed(1)} Mbit/s`);
    assert.ok(adapt.mbit > 1.2 * stat.mbit, `adaptive ${adapt.mbit} vs static ${stat.mbit}`);
    assert.ok(adapt.mbit > 0.85 * 25, `adaptive ${adapt.mbit} of 25 Mbit/s`);
  });

  it('the backup tier carries zero bytes while the primary is up, and the flow when it is cut', async () => {
    const lab = labName();
    await isp2Rate(lab, 20e6);
    try {
      await bonded(lab, { metrics: [0, 1] }, async () => {
        const up = await flowUp(lab, 2);
        console.log(`# primary up: ${up.mbit.toFixed(1)} Mbit/s, bytes on primary ${up.tx[0]}, on backup ${up.tx[1]}; emulators: ${up.lab}`);
        assert.equal(up.tx[1], 0, 'the backup carried data while the primary was up');
        assert.ok(up.tx[0]! > 1e6);
        const cut = await labSet({ name: lab, node: 'isp1', dirs: ['up', 'down'], patch: { down: true } });
        assert.ok(cut.isOk());
        await waitFor('the LP marks the cut primary down', () => labStatus(lab, 'lp'), (s) => s.links[0]?.state === 'down', 3000);
        const down = await flowUp(lab, 2);
        console.log(`# primary cut: ${down.mbit.toFixed(1)} Mbit/s, bytes on primary ${down.tx[0]}, on backup ${down.tx[1]}; emulators: ${down.lab}`);
        assert.equal(down.tx[0], 0);
        assert.ok(down.mbit > 15, `the backup carried ${down.mbit} Mbit/s (the lab's emulators: ${down.lab})`);
      });
    } finally {
      must(await labSet({ name: lab, node: 'isp1', dirs: ['up', 'down'], patch: { down: false } }), 'restore isp1'); // for the next test
    }
  });

  it('a link stops carrying data once its byte budget is spent; the other carries on', async () => {
    const lab = labName();
    await isp2Rate(lab, 20e6);
    await bonded(lab, { budgets: ['0', '2MB'] }, async () => {
      const r = await flowUp(lab, 3);
      console.log(`# 2 MB budget on link 2: ${r.mbit.toFixed(1)} Mbit/s, link 1 sent ${r.tx[0]} B, link 2 sent ${r.tx[1]} B`);
      // the budget counts both directions (the ACKs coming back on it too): what we sent on it
      // stays within 2 MB (plus the one packet that crosses the line) and the link carried a
      // part of the flow before it was spent
      assert.ok(r.tx[1]! > 0.5e6 && r.tx[1]! <= 2e6 + 1500, `link 2 sent ${r.tx[1]} B`);
      assert.ok(r.mbit > 15, `${r.mbit} Mbit/s (the lab's emulators: ${r.lab})`);
    });
  });
});
