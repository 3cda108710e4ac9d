// Hitless restart (README "Hitless restart"): `mpctl up` of an instance whose process died (SIGKILL:
// a crash, the OOM killer, the unit killed for an upgrade) adopts the running data path — its
// pinned maps, links, estimates, path MTUs and session keys — instead of tearing it down and
// starting over. A UDP flow (10 Mbit/s client → server, 1400-byte datagrams, over 2×20 Mbit)
// runs while the LP and then the RP are killed and started again: not one packet is lost, the
// flow never slows, and the restarted portals run on (the LP rekeys at once, both hear every
// link, the LP's inner MTU never went below what the running data path had confirmed). Last,
// the LP is restarted as `systemctl reload` does it (SIGUSR2: it hands its data path over, exit
// 75, and the next `up` adopts): no packet lost either. Then an upgrade: a record naming another
// BPF object is not adopted (its maps may be laid out otherwise): the data path is replaced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { iperf } from '../src/lab/measure.js';
import { labDir } from '../src/lab/state.js';
import { portalDir } from '../src/apply/state.js';
import { portalInstance } from '../src/lab/bond.js';
import { killAndRestart, killPortal, must, restartPortal, sleep, twoLinks, withLab } from './helpers/lab.js';
import { depthTrainsOver, labStatus } from './helpers/wait.js';

test('SIGKILL and `mpctl up` of each portal, then SIGUSR2 (reload) of the LP, during a UDP flow: the data path is adopted, no packet lost', { timeout: 240_000 }, async (t) => {
  await withLab(
    twoLinks,
    async (lab) => {
      // not into the depth trains of the bond's start: each fills its link's buffer until it drops
      await depthTrainsOver(lab);
      const t0 = Date.now();
      const flow = iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 20, udpBps: 10e6 });
      const marks: string[] = []; // when each restart began, seconds into the flow
      const mark = () => marks.push(((Date.now() - t0) / 1000).toFixed(1));
      await sleep(3000);
      mark();
      const lpLog = await killAndRestart(lab, 'lp');
      assert.match(lpLog, /adopting the running data path/, 'the LP adopted');
      await sleep(3000);
      mark();
      const rpLog = await killAndRestart(lab, 'rp');
      assert.match(rpLog, /adopting the running data path/, 'the RP adopted');
      await sleep(3000);
      // `systemctl reload` (contrib/systemd): SIGUSR2, the LP hands its data path over and exits
      const before = (await readFile(`${labDir(lab)}/lp.log`, 'utf8')).length;
      mark();
      const lpAgain = await killAndRestart(lab, 'lp', 'SIGUSR2');
      const handOver = (await readFile(`${labDir(lab)}/lp.log`, 'utf8')).slice(before);
      assert.match(handOver, /leaving the data path running for the next `mpctl up` to adopt/, 'the LP handed over on SIGUSR2');
      assert.match(lpAgain, /adopting the running data path/, 'the LP adopted after handing over');
      const r = must(await flow, 'iperf3 -u across both restarts');
      t.diagnostic(`UDP 10 Mbit/s across an LP and an RP restart: ${r.packets} packets, ${r.lostPackets} lost; per second ${r.intervals.map((x) => (x / 1e6).toFixed(1)).join(' ')}; lost per second at the receiver ${r.lostPerInterval?.join(' ')}; restarts at ${marks.join(', ')} s`);
      const lpAfter = (await readFile(`${labDir(lab)}/lp.log`, 'utf8')).split('adopting the running data path').at(-1) ?? '';
      const mtuLines = lpAfter.split('\n').filter((l) => l.includes('path MTU'));
      t.diagnostic(`the restarted LP's path MTU log: ${mtuLines.map((l) => l.slice(0, 160)).join(' | ') || 'none'}`);
      const dropped = async (role: 'lp' | 'rp') => Object.entries((await labStatus(lab, role)).drops).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
      t.diagnostic(`drops by reason: LP ${await dropped('lp')}; RP ${await dropped('rp')}`);
      assert.equal(r.lostPackets, 0, 'no packet lost');
      assert.ok(r.intervals.every((x) => x > 9e6), 'no second below 9 Mbit/s');
      for (const role of ['lp', 'rp'] as const) {
        const s = await labStatus(lab, role);
        assert.ok(s.running, `${role} runs`);
        assert.deepEqual(s.links.map((l) => l.state), ['up', 'up'], `${role}: both links up`);
      }
      // the rekey completes after 'portal up' (the log read at that moment may not have it yet)
      let rekeyed = lpAfter;
      for (let i = 0; i < 50 && !/session key id \d+ in use/.test(rekeyed); i++) {
        await sleep(100);
        rekeyed = (await readFile(`${labDir(lab)}/lp.log`, 'utf8')).split('adopting the running data path').at(-1) ?? '';
      }
      assert.match(rekeyed, /session key id \d+ in use/, 'the restarted LP rekeyed');

      // an upgrade: the record says another BPF object loaded the running data path (its maps
      // may be laid out otherwise): the LP does not adopt it, it replaces it, and the bond works
      await killPortal(lab, 'lp');
      const stateFile = `${portalDir(portalInstance(lab, 'lp'))}/state.json`;
      const rec = JSON.parse(await readFile(stateFile, 'utf8')) as { object?: string };
      assert.match(rec.object ?? '', /^[0-9a-f]{16}$/, 'the record names the object the data path was loaded from');
      await writeFile(stateFile, JSON.stringify({ ...rec, object: '0123456789abcdef' }));
      const upgraded = await restartPortal(lab, 'lp');
      assert.match(upgraded, /not adopting the running data path: it was loaded from another BPF object \(0123456789abcdef; this mpctl's is [0-9a-f]{16}\)/, 'the LP says why it does not adopt');
      assert.doesNotMatch(upgraded, /adopting the running data path of a portal/, 'the LP did not adopt');
      const after = await depthTrainsOver(lab);
      assert.deepEqual(after.lp.links.map((l) => l.state), ['up', 'up'], 'the replaced LP: both links up');
      const again = must(await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 3, udpBps: 5e6 }), 'iperf3 -u after the upgrade');
      t.diagnostic(`after the upgrade: ${again.packets} packets, ${again.lostPackets} lost`);
      assert.ok(again.packets > 0 && again.lostPackets <= again.packets * 0.01, `the bond carries a flow after the upgrade (${again.lostPackets} of ${again.packets} lost)`);
    },
    { bond: true },
  );
});
