// Byte budgets end to end in the bonded lab: the RP stops sending on a metered link when the
// LP's allowance for it is spent, the usage survives `mpctl down` + `up`, and a raised budget
// brings the link back for the RP too.
//
//   client ── lp ══ isp1 (20 Mbit/10 ms)              ══╗
//                ══ isp2 (20 Mbit/10 ms, budget 2 MB) ══╩══ inet ── rp ── server (iperf3 -s)
//
// Traffic is downstream (iperf3 -R: server → client), so nearly all the metered bytes are the
// RP's to send. The LP keeps its usage in <lab dir>/state/<instance>/budget.json, which
// `lab down` removes with the lab.
//
// Run as root, under the lab lock:
//   flock /tmp/mpctl-heavy.lock node --import tsx --test test/budget.test.ts

import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { LinkSampler } from '../src/lab/bench/sample.js';
import { portalInstance, startBond, stopBond, type BondOptions } from '../src/lab/bond.js';
import { mpctlPath } from '../src/lab/lab.js';
import { iperf } from '../src/lab/measure.js';
import { parseScenario } from '../src/lab/scenario.js';
import { labDir, readState } from '../src/lab/state.js';
import { budgetFile, parseBudgetFile } from '../src/cc/budget-store.js';
import { portalStatus } from '../src/run/status.js';
import { withLab } from './helpers/lab.js';
import { bondReady, labStatus, waitFor } from './helpers/wait.js';

const MB = 1_000_000;
/** How far a budget may be passed: 5 % of 2 MB (measured: 0.5-25 KB; without the RP's cap, 8 MB) */
const OVERSHOOT = 100_000;
const links = parseScenario({ links: [{ rate: '20mbit', delay: '10ms', queue: '60ms' }, { rate: '20mbit', delay: '10ms', queue: '60ms' }] }, 'test')._unsafeUnwrap();

async function up(lab: string, lp: BondOptions['lp']): Promise<void> {
  const st = await readState(lab);
  assert.ok(st.isOk());
  const b = await startBond(lab, st.value.links, { singleInterface: false, lp }, mpctlPath());
  assert.ok(b.isOk(), b.isErr() ? JSON.stringify(b.error) : '');
  await bondReady(lab, st.value.links.length);
}

interface Flow {
  mbit: number;
  /** bytes the RP sent on each link (its data path's tx counters) */
  rpTx: number[];
  /** the LP's count against link 2's budget after the flow (both directions, earlier runs included) */
  used: number;
  lpExhausted: boolean;
  rpExhausted: boolean;
}

/** One TCP flow server → client for `seconds` (+1 s warm-up); what each side counted. */
async function flowDown(lab: string, seconds: number): Promise<Flow> {
  const rp = await LinkSampler.open(portalInstance(lab, 'rp'), 2);
  assert.ok(rp.isOk(), rp.isErr() ? JSON.stringify(rp.error) : '');
  try {
    const before = rp.value.read()!;
    const r = await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds, omitS: 1, reverse: true });
    assert.ok(r.isOk(), r.isErr() ? JSON.stringify(r.error) : '');
    // the LP's count as published after the flow's last packets (once a second)
    const end = Date.now();
    await waitFor('an LP publication after the flow', () => labStatus(lab, 'lp'), (s) => (s.controlPlane.lastSeenMs ?? 0) > end + 50, 3000);
    const after = rp.value.read()!;
    const lp = await portalStatus(portalInstance(lab, 'lp'));
    const rps = await portalStatus(portalInstance(lab, 'rp'));
    assert.ok(lp.isOk() && rps.isOk());
    const b = lp.value.links[1]!.budget;
    assert.ok(b && typeof b.usedBytes === 'number', `LP status shows link 2's budget: ${JSON.stringify(b)}`);
    return {
      mbit: r.value.bps / 1e6,
      rpTx: after.tx.map((x, i) => x - before.tx[i]!),
      used: b.usedBytes,
      lpExhausted: b.exhausted,
      rpExhausted: rps.value.links.find((l) => l.id === 1)?.budget?.exhausted ?? false,
    };
  } finally {
    rp.value.close();
  }
}

const show = (f: Flow) =>
  `${f.mbit.toFixed(1)} Mbit/s, RP sent ${f.rpTx[0]} B on link 1 and ${f.rpTx[1]} B on link 2; LP counts ${f.used} B on link 2 (exhausted: LP ${f.lpExhausted}, RP ${f.rpExhausted})`;

describe('byte budgets in both directions and across restarts', { timeout: 120_000 }, () => {
  it('the RP stops on a spent link, the usage survives down + up, a raised budget brings the link back', async () => {
    await withLab(links, async (lab) => {
      const file = budgetFile(`${labDir(lab)}/state`, portalInstance(lab, 'lp'));
      const stop = () => stopBond(lab, mpctlPath());

      // 1. 2 MB on link 2, downstream: the RP stops near the allowance, link 1 carries on
      await up(lab, { budgets: ['0', '2MB'] });
      const a = await flowDown(lab, 3).finally(stop);
      const overA = a.used - 2 * MB;
      console.log(`# 2 MB budget, downstream: ${show(a)}; overshoot ${overA} B`);
      assert.ok(a.rpTx[1]! > 1 * MB, 'link 2 carried part of the flow before it was spent');
      // the budget counts both directions: the RP's share and the whole stay within it, but for
      // the overshoot (what was in flight when the last allowance was advertised)
      assert.ok(a.rpTx[1]! <= 2 * MB + OVERSHOOT, `the RP sent ${a.rpTx[1]} B on link 2, more than its 2 MB budget`);
      assert.ok(overA <= OVERSHOOT, `the link's count passed 2 MB by ${overA} B`);
      // spent: the RP is out; the LP is out, or has less than a packet left of its own line
      assert.ok(a.rpExhausted, 'the RP reports link 2 spent');
      assert.ok(a.lpExhausted || a.used > 2 * MB - 1500, `the LP counts ${a.used} B and does not report link 2 spent`);
      assert.ok(a.rpTx[0]! > 4 * MB && a.mbit > 12, 'link 1 carried the rest');

      // 2. `down` kept the usage; `up` with the same budget: link 2 stays spent
      const saved = parseBudgetFile(await readFile(file, 'utf8'))._unsafeUnwrap().get('link2');
      assert.ok(saved && Math.abs(saved.usedBytes - a.used) < 50_000, `budget.json after down: ${JSON.stringify(saved)}, status said ${a.used}`);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      await up(lab, { budgets: ['0', '2MB'] });
      const b = await flowDown(lab, 2).finally(stop);
      console.log(`# after down + up, same budget: ${show(b)}`);
      assert.ok(b.rpTx[1]! <= 1500, `the RP sent ${b.rpTx[1]} B on the spent link after the restart`);
      assert.ok(b.used >= saved.usedBytes, 'the count went on from the saved usage');
      assert.ok(b.mbit > 12);

      // 3. raised to 6 MB (restart with the bigger budget): the RP uses link 2 again, up to it
      await up(lab, { budgets: ['0', '6MB'] });
      const c = await flowDown(lab, 3).finally(stop);
      const overC = c.used - 6 * MB;
      console.log(`# raised to 6 MB: ${show(c)}; overshoot ${overC} B`);
      assert.ok(c.rpTx[1]! > 1 * MB, 'link 2 carried traffic again');
      assert.ok(c.rpTx[1]! <= 6 * MB - b.used + OVERSHOOT, `the RP sent ${c.rpTx[1]} B, more than the ${6 * MB - b.used} B left`);
      assert.ok(overC <= OVERSHOOT, `the link's count passed 6 MB by ${overC} B`);
    });
  });
});
