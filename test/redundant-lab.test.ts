// Redundant mode end to end in the lab (≤ 45 s): a [[redundant]] class (UDP port 5004: node's
// dgram cannot set DSCP; DSCP matching is in test/redundant.test.ts) on both portals, 100
// datagrams from the client to the server over 2 links; the LP sends each on two links, the RP
// delivers the first copy and drops the second as `duplicate` (not `replay`), and both portals'
// status shows it. Run as root, under the heavy-test lock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { parseScenario } from '../src/lab/scenario.js';
import { linkNode, nsName } from '../src/lab/topology.js';
import type { PortalStatus } from '../src/run/status.js';
import { getState } from '../src/lab/emulator.js';
import { withLab } from './helpers/lab.js';
import { depthTrainsOver, labStatus } from './helpers/wait.js';

const N = 100;
const SEND = `
const s = require('node:dgram').createSocket('udp4');
s.bind(0, () => {
  let i = 0;
  const t = setInterval(() => {
    s.send(Buffer.alloc(200, i & 0xff), 5004, '203.0.113.2');
    if (++i === ${N}) { clearInterval(t); setTimeout(() => s.close(), 200); }
  }, 5);
});`;

test('redundant lab: each packet of the class goes on both links, the RP keeps the first and counts the second as duplicate', { timeout: 45_000, skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
  const sc = parseScenario({ links: [{ rate: '20mbit', delay: '5ms' }, { rate: '20mbit', delay: '15ms' }] }, 'redundant-lab')._unsafeUnwrap();
  await withLab(
    sc,
    async (lab) => {
      // not while a depth train fills a link's buffer: a first copy dropped there leaves its
      // second the winner and no duplicate (CI, under CPU contention: 99 of 100)
      await depthTrainsOver(lab);
      execFileSync('ip', ['netns', 'exec', nsName(lab, 'client'), process.execPath, '-e', SEND], { timeout: 10_000 });
      // wait for the counters (the RP's second copies arrive 10 ms after the first)
      let lp: PortalStatus;
      let rp: PortalStatus;
      const until = Date.now() + 8000;
      for (;;) {
        lp = await labStatus(lab, 'lp');
        rp = await labStatus(lab, 'rp');
        if ((rp.redundant?.[0]?.duplicates ?? 0) >= N || Date.now() > until) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const sent = lp.redundant?.[0];
      const got = rp.redundant?.[0];
      assert.ok(sent && got, 'both portals report the class');
      assert.equal(sent.name, 'call');
      assert.equal(sent.packets, N, 'the LP classified every datagram to port 5004');
      assert.equal(sent.copies, N, 'and sent a copy of each on the other link');
      assert.equal(sent.copyFailed, 0);
      const wins = Object.values(got.wins).reduce((a, n) => a + n, 0);
      assert.equal(wins, N, `the RP delivered each once (first copies by link: ${JSON.stringify(got.wins)})`);
      if (got.duplicates !== N) {
        // where did a copy go? the links' emulators (up: LP → Internet) and both portals' drops
        const nz = (d: Record<string, number>): string => JSON.stringify(Object.fromEntries(Object.entries(d).filter(([, n]) => n > 0)));
        const links = await Promise.all([1, 2].map(async (k) => {
          const st = await getState(nsName(lab, linkNode(k)));
          return st.isOk() ? `isp${k} up ${JSON.stringify(st.value.up.stats)}` : `isp${k}: ${JSON.stringify(st.error)}`;
        }));
        assert.fail(`duplicates ${got.duplicates} of ${N}; RP drops ${nz(rp.drops)}; LP drops ${nz(lp.drops)}; ${links.join('; ')}`);
      }
      assert.equal(rp.drops['duplicate'], N);
      assert.equal(rp.drops['replay'], 0, 'a copy is not a replay');
      assert.ok((got.wins['0'] ?? 0) > (got.wins['1'] ?? 0), 'the 5 ms link wins most');
    },
    { bond: true, lp: { redundant: ['[[redundant]]', 'name = "call"', 'udp_ports = [5004]', 'links = 2', 'cap = "1mbit"'] } },
  );
});
