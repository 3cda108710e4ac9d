// Congestion control in the running bond (README "Running a bond"), end to end through `mpctl up`:
//
//   client ── lp ═╦═ isp1 20 Mbit ═╦═ inet ── rp ── server
//                 ╚═ isp2  5 Mbit ═╝        (the LP is configured with 20 + 20: wrong on isp2)
//
// The LP starts from its configured rates; isp2 is then cut to 5 Mbit behind its back, so only
// the receiver's feedback can tell. After a few seconds of one TCP flow, the LP's controller
// must estimate each link within ±25 % of its true rate, and the flow must beat the best link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labSet } from '../src/lab/lab.js';
import { iperf } from '../src/lab/measure.js';
import { parseScenario } from '../src/lab/scenario.js';
import type { PortalStatus } from '../src/run/status.js';
import { must, withLab } from './helpers/lab.js';
import { labStatus } from './helpers/wait.js';

const scenario = parseScenario(
  { links: [{ label: 'fast', rate: '20mbit', delay: '10ms', queue: '60ms' }, { label: 'slow', rate: '20mbit', delay: '10ms', queue: '60ms' }] },
  't',
)._unsafeUnwrap();

test('congestion control: the LP finds unequal link rates from feedback and one TCP flow beats the best link', { timeout: 180_000 }, async (t) => {
  await withLab(
    scenario,
    async (lab) => {
      must(await labSet({ name: lab, node: 'isp2', dirs: ['up', 'down'], patch: { rateBps: 5e6 } }), 'isp2 to 5 Mbit');
      const truth = new Map([
        [0, 20e6],
        [1, 5e6],
      ]);
      const flow = iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 6, omitS: 2 });
      // the estimates as soon as both are within ±25 % of the truth, or as they are after 6 s
      const near = (s: PortalStatus) =>
        s.links.length === 2 && s.links.every((l) => l.cc && l.cc.feedback > 20 && Math.abs(l.cc.bwBps - truth.get(l.id)!) <= 0.25 * truth.get(l.id)!);
      const t0 = Date.now();
      let lp = await labStatus(lab, 'lp');
      while (!near(lp) && Date.now() - t0 < 6000) {
        await new Promise((r) => setTimeout(r, 100));
        lp = await labStatus(lab, 'lp');
      }
      t.diagnostic(`estimates read ${Date.now() - t0} ms into the flow`);
      const r = must(await flow, 'iperf3');
      const best = 20e6 * ((1500 - 52) / 1514);
      for (const l of lp.links)
        t.diagnostic(`link ${l.id}: ${JSON.stringify(l.cc)} (true ${(truth.get(l.id)! / 1e6).toFixed(0)} Mbit/s)`);
      t.diagnostic(`feedback: ${JSON.stringify(lp.feedback)}`);
      t.diagnostic(`20 + 5 Mbit, one TCP flow client → server: ${(r.bps / 1e6).toFixed(2)} Mbit/s (${((r.bps / 25e6) * 100).toFixed(1)} % of the sum)`);
      assert.equal(lp.links.length, 2);
      for (const l of lp.links) {
        assert.ok(l.cc, `link ${l.id} has a controller`);
        assert.ok(l.cc.feedback > 20, `link ${l.id}'s controller took feedback`);
        const want = truth.get(l.id)!;
        assert.ok(Math.abs(l.cc.bwBps - want) <= 0.25 * want, `link ${l.id}: estimate ${l.cc.bwBps} not within ±25 % of ${want}`);
      }
      assert.ok((lp.feedback?.fbHeard ?? 0) > 10, `the RP sends feedback: ${JSON.stringify(lp.feedback)}`);
      assert.equal(lp.feedback?.fbBad, 0, 'no malformed feedback');
      assert.ok(r.bps > best, `${r.bps} not above the best link ${best}`);
    },
    { bond: true },
  );
});
