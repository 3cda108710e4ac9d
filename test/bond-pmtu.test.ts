// Per-link path MTU through the bond (issue 15), one lab bring-up, three 20 Mbit links:
//
//   link 1  interface MTU 1280 (the LP's wan1 and the ISP's side: the portals start after it)
//   link 2  1500; at (d) a 1400 hop inside the ISP that drops silently (a black hole) appears
//   link 3  interface 1500, a 1280 hop inside the ISP that answers frag-needed / packet too big
//
// (a) path MTU discovery finds every link's MTU on its own, both directions, and the RP takes the
//     LP's figures (pmtu_down); (b) TCP moves data both ways, IPv4 and IPv6, and the MSS clamp is
//     the same on both portals (no full-size segment is answered "too big"); (c) DF UDP above the
//     small links goes on the large one, above every link it is answered at the largest link's
//     MTU (IPv6 too, never below 1280), non-DF is fragmented; (d) the black hole is found within
//     2 s and the flows carry on; (e) traceroute through the bond: TTL 1 is answered "time
//     exceeded" by the RP's own address (client → server) and the LP's (server → client) — IPv4
//     here: the links are IPv4, and a portal answers from a link address of the packet's family.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { iperf } from '../src/lab/measure.js';
import { run } from '../src/lab/namespaces.js';
import { labSet } from '../src/lab/lab.js';
import { parseScenario } from '../src/lab/scenario.js';
import { portalInstance } from '../src/lab/bond.js';
import { nsName } from '../src/lab/topology.js';
import { withLab } from './helpers/lab.js';

const SERVER = { v4: '203.0.113.2', v6: '2001:db8:113::2' };
const CLIENT = '198.51.100.10'; // the client's bonded address (src/lab/bond.ts)
const link = { rate: '20mbit', delay: '5ms', queue: '60ms' };
const SCENARIO = parseScenario({ links: [{ label: 'if1280', ...link, if_mtu: 1280 }, { label: 'big', ...link }, { label: 'hop1280', ...link, mtu: 1280 }] }, 't')._unsafeUnwrap();

interface LinkJson {
  id: number;
  state: string;
  pmtu: { mtu: number; source: string; shrinks: number; up?: number; down?: number } | null;
}
interface Status {
  links: LinkJson[];
  drops: Record<string, number>;
}

async function status(lab: string, role: 'lp' | 'rp'): Promise<Status> {
  const r = await run('ip', ['netns', 'exec', nsName(lab, role), 'bin/mpctl', 'status', '--instance', portalInstance(lab, role), '--json']);
  assert.ok(r.isOk(), JSON.stringify(r));
  return JSON.parse(r._unsafeUnwrap()) as Status;
}

const pmtuOf = (s: Status, id: number) => s.links.find((l) => l.id === id)?.pmtu ?? null;

/** Polls the LP's status until `ok` holds; the time it took, ms (-1: not within limitMs). */
async function until(lab: string, role: 'lp' | 'rp', ok: (s: Status) => boolean, limitMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    if (ok(await status(lab, role))) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 100));
  }
  return -1;
}

function inNode(lab: string, node: string, ...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', nsName(lab, node), ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}
const received = (out: string) => Number(/(\d+) received/.exec(out)?.[1] ?? -1);

async function tcpBothWays(lab: string, t: { diagnostic(s: string): void }, what: string): Promise<void> {
  for (const fam of ['v4', 'v6'] as const)
    for (const reverse of [false, true]) {
      const lp0 = await status(lab, 'lp');
      const rp0 = await status(lab, 'rp');
      const r = await iperf(lab, { server: { node: 'server', addr: SERVER[fam] }, client: { node: 'client' }, seconds: 3, omitS: 1, reverse });
      assert.ok(r.isOk(), JSON.stringify(r));
      const { bps, intervals } = r._unsafeUnwrap();
      const lp = await status(lab, 'lp');
      const rp = await status(lab, 'rp');
      const tooBig = (lp.drops.too_big ?? 0) - (lp0.drops.too_big ?? 0) + (rp.drops.too_big ?? 0) - (rp0.drops.too_big ?? 0);
      t.diagnostic(`${what} ${fam} ${reverse ? 'download' : 'upload'}: ${(bps / 1e6).toFixed(1)} Mbit/s (${intervals.map((x) => (x / 1e6).toFixed(1)).join(' ')}), too_big ${tooBig}`);
      assert.ok(bps > 15e6, `${fam} ${reverse ? 'download' : 'upload'} moves data: ${(bps / 1e6).toFixed(1)} Mbit/s`);
      assert.ok(intervals.every((x) => x > 5e6), 'every second carried data');
      assert.equal(tooBig, 0, 'the MSS clamp fits: no TCP segment answered too big');
    }
}

test('bond path MTU: every link its own, found by probing, never a black hole', { timeout: 240_000 }, async (t) => {
  await withLab(
    SCENARIO,
    async (lab) => {
      await t.test('(a) probing finds each link’s path MTU both ways; the RP schedules by the LP’s figures', async () => {
        const found = (s: Status) => [0, 1, 2].every((id) => pmtuOf(s, id)?.source === 'probed');
        const ms = await until(lab, 'lp', found, 15_000);
        const lp = await status(lab, 'lp');
        t.diagnostic(`LP after ${ms} ms: ${JSON.stringify(lp.links.map((l) => l.pmtu))}`);
        assert.ok(ms >= 0, 'every link probed');
        assert.deepEqual([pmtuOf(lp, 0)?.up, pmtuOf(lp, 0)?.down], [1280, 1280], 'link 1: its interface MTU');
        assert.deepEqual([pmtuOf(lp, 1)?.up, pmtuOf(lp, 1)?.down], [1500, 1500]);
        for (const d of ['up', 'down'] as const) {
          const m = pmtuOf(lp, 2)?.[d] ?? 0;
          assert.ok(m <= 1280 && m > 1275, `link 3 ${d}: the hop's 1280 (found ${m})`);
        }
        const rpMs = await until(lab, 'rp', (s) => [0, 1, 2].every((id) => pmtuOf(s, id)?.source === 'probed'), 5000);
        const rp = await status(lab, 'rp');
        t.diagnostic(`RP: ${JSON.stringify(rp.links.map((l) => l.pmtu))}`);
        assert.ok(rpMs >= 0, 'the RP has every link from the LP');
        assert.equal(pmtuOf(rp, 0)?.mtu, 1280);
        assert.equal(pmtuOf(rp, 1)?.mtu, 1500);
        assert.equal(pmtuOf(rp, 2)?.mtu, pmtuOf(lp, 2)?.down, 'link 3: the LP’s pmtu_down');
      });

      await t.test('(b) TCP both ways, IPv4 and IPv6: data moves, nothing too big', async () => {
        await tcpBothWays(lab, t, '3 links');
      });

      await t.test('(c) UDP: DF above the small links goes on the large one; above all of them, answered at its MTU', async () => {
        const v4 = inNode(lab, 'client', 'ping', '-n', '-c', '5', '-i', '0.1', '-W', '2', '-M', 'do', '-s', '1400', SERVER.v4);
        assert.equal(received(v4.out), 5, v4.out);
        const v6 = inNode(lab, 'client', 'ping', '-6', '-n', '-c', '5', '-i', '0.1', '-W', '2', '-s', '1380', SERVER.v6);
        assert.equal(received(v6.out), 5, v6.out);
        const big4 = inNode(lab, 'client', 'ping', '-n', '-c', '2', '-i', '0.2', '-W', '1', '-M', 'do', '-s', '1460', SERVER.v4);
        assert.match(big4.out, /mtu = 1448|mtu=1448/, big4.out);
        const big6 = inNode(lab, 'client', 'ping', '-6', '-n', '-c', '2', '-i', '0.2', '-W', '1', '-s', '1440', SERVER.v6);
        assert.match(big6.out, /mtu=1448/, big6.out);
        // server → client, every size from the small links' 1228 to the large one's 1448 (before:
        // the RP put 1229-1428-byte packets on the 1280 link, where they died)
        for (const size of [1200, 1201, 1229, 1300, 1372, 1400, 1420])
          assert.equal(received(inNode(lab, 'server', 'ping', '-n', '-c', '3', '-i', '0.05', '-W', '2', '-M', 'do', '-s', String(size), CLIENT).out), 3, `server → client DF ${size + 28} bytes`);
        const noDf = inNode(lab, 'client', 'ping', '-n', '-c', '5', '-i', '0.1', '-W', '2', '-M', 'dont', '-s', '1460', SERVER.v4);
        assert.equal(received(noDf.out), 5, noDf.out);
      });

      await t.test('(e) TTL expiry in the tunnel: time exceeded from the portal’s own address, both ways', async () => {
        const hop = (node: string, dst: string, v6: boolean) => inNode(lab, node, 'ping', ...(v6 ? ['-6'] : []), '-n', '-c', '1', '-W', '2', '-t', '1', dst).out;
        assert.match(hop('client', SERVER.v4, false), /From 198\.51\.100\.2 .*Time to live exceeded/i, 'client → server: the RP');
        assert.match(hop('server', CLIENT, false), /From 100\.64\.\d\.1 .*Time to live exceeded/i, 'server → client: the LP');
        const two = inNode(lab, 'client', 'ping', '-n', '-c', '1', '-W', '2', '-t', '2', SERVER.v4).out;
        assert.match(two, /1 received/, 'TTL 2 reaches the server: the bond is one hop');
      });

      await t.test('(d) a black hole appears on link 2 at runtime: found within 2 s, flows carry on', async () => {
        const set = await labSet({ name: lab, node: 'isp2', dirs: ['up', 'down'], patch: { mtu: 1400, mtuIcmp: false } });
        assert.ok(set.isOk(), JSON.stringify(set));
        const ms = await until(lab, 'lp', (s) => (pmtuOf(s, 1)?.up ?? 0) <= 1400 && (pmtuOf(s, 1)?.down ?? 0) <= 1400 && (pmtuOf(s, 1)?.up ?? 0) > 1395, 10_000);
        const lp = await status(lab, 'lp');
        t.diagnostic(`shrink found after ${ms} ms: ${JSON.stringify(pmtuOf(lp, 1))}`);
        assert.ok(ms >= 0 && ms <= 2000, `found within 2 s (${ms} ms)`);
        assert.ok((pmtuOf(lp, 1)?.shrinks ?? 0) >= 1, 'reported as size-dependent loss');
        assert.equal(lp.links.find((l) => l.id === 1)?.state, 'up', 'the link stays up: small packets pass');
        await tcpBothWays(lab, t, 'black hole on link 2');
      });
    },
    { bond: true },
  );
});
