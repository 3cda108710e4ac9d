// Per-link path MTU through the bond (README "Running a bond", path MTU), one lab bring-up, three 20 Mbit links:
//
//   link 1  interface MTU 1280 (the LP's wan1 and the ISP's side: the portals start after it)
//   link 2  1500; at (d) a 1400 hop inside the ISP that drops silently (a black hole) appears
//   link 3  interface 1500, a 1280 hop inside the ISP that answers frag-needed / packet too big
//
// (a) path MTU discovery finds every link's MTU on its own, both directions, and the RP takes the
//     LP's figures (pmtu_down); `status` shows `pmtu 1280 (probed)`; `up` warned that link 1 is
//     below IPv6's 1280; (b) TCP moves data both ways, IPv4 and IPv6, and the MSS clamp is the
//     same on both portals (no full-size segment is answered "too big"); (c) DF pings above the
//     small links go on the large one, above every link they are answered at the largest link's
//     MTU (IPv6 too, never below 1280) and counted as too_big, non-DF is fragmented, server →
//     client IPv4 and IPv6 of every size up to the large link's; (c2) UDP echoed both ways: DF
//     IPv4 and IPv6 up to the large link, IPv4 without DF fragmented, DF above every link
//     answered (the sender gets EMSGSIZE); (e) traceroute through the bond: TTL 1 is answered
//     "time exceeded" by the RP's own address (client → server) and the LP's (server → client),
//     IPv6 too though every link is IPv4 (from the RP's wan and the LP's lan address, through the
//     tunnel); (d) the black hole is found within 2 s and the flows carry on; (f) a 1200 hop
//     answering ICMP on link 1: the LP learns from the ICMP about its own packets (bpf/ptb.h);
//     (g) link 3 at a 600 ms round trip, then a black hole: found within 2 s all the same.
// Growth (found at the next search above, REPROBE_MS = 5 min) is test/pmtu.test.ts's: too long here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { iperf } from '../src/lab/measure.js';
import { labSet } from '../src/lab/lab.js';
import { parseScenario } from '../src/lab/scenario.js';
import { portalInstance } from '../src/lab/bond.js';
import { nsName } from '../src/lab/topology.js';
import { labDir } from '../src/lab/state.js';
import { withLab } from './helpers/lab.js';
import { labStatus } from './helpers/wait.js';
import type { PortalStatus } from '../src/run/status.js';

const SERVER = { v4: '203.0.113.2', v6: '2001:db8:113::2' };
const CLIENT = '198.51.100.10'; // the client's bonded address (src/lab/bond.ts)
const CLIENT_V6 = '2001:db8:100::10';
const link = { rate: '20mbit', delay: '5ms', queue: '60ms' };
const SCENARIO = parseScenario({ links: [{ label: 'if1280', ...link, if_mtu: 1280 }, { label: 'big', ...link }, { label: 'hop1280', ...link, mtu: 1280 }] }, 't')._unsafeUnwrap();

/** A portal's status (pinned maps and what it publishes once a second), read in this process as
 * `mpctl status --json` prints it; (a) runs `mpctl status` itself once for its text. */
const status = labStatus;
type Status = PortalStatus;

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

const portalLog = async (lab: string, role: 'lp' | 'rp') => (await readFile(`${labDir(lab)}/${role}.log`)).toString('utf8');

/** Waits (20 ms polls) for a line of the portal's log written after `from` bytes that `ok`
 * accepts; the time it took, ms (-1: not within limitMs). The log is written the moment the
 * portal acts, unlike `status` (published once a second). */
async function untilLog(lab: string, role: 'lp' | 'rp', from: number, ok: (line: string) => boolean, limitMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    if ((await portalLog(lab, role)).slice(from).split('\n').some(ok)) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  return -1;
}

/** A "path MTUs (up/down): link 0 1280/1280, …" log line where link `id`'s up MTU is `mtu` (or
 * up to 4 bytes less: the search's resolution), and with `both` its down MTU too. */
const logsMtus = (id: number, mtu: number, both: boolean) => (line: string) => {
  const m = line.includes('path MTUs (up/down)') ? new RegExp(`link ${id} (\\d+)/(\\d+)`).exec(line) : null;
  const near = (x: string | undefined) => Number(x) <= mtu && Number(x) > mtu - 5;
  return m !== null && near(m[1]) && (!both || near(m[2]));
};

// UDP echo through the bond (python3: socket options for DF). The server echoes on port 9000 with
// DF (IP(V6)_PMTUDISC_DO) and on 9001 without (IPv4 only: IP_PMTUDISC_DONT), so each datagram
// crosses the bond both ways with the same size and flag.
const UDP_SERVER = `
import socket, select, sys
a = sys.argv[1]; fam = socket.AF_INET6 if ':' in a else socket.AF_INET
lvl, opt = (socket.IPPROTO_IPV6, 23) if fam == socket.AF_INET6 else (socket.IPPROTO_IP, 10)
ss = []
for port, mode in ((9000, 2), (9001, 0)):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.setsockopt(lvl, opt, mode); s.bind((a, port)); ss.append(s)
print('ready', flush=True)
while True:
    for s in select.select(ss, [], [])[0]:
        d, peer = s.recvfrom(65535)
        try: s.sendto(d, peer)
        except OSError: pass
`;
const UDP_CLIENT = `
import socket, sys, time
a, port, mode, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
fam = socket.AF_INET6 if ':' in a else socket.AF_INET
lvl, opt = (socket.IPPROTO_IPV6, 23) if fam == socket.AF_INET6 else (socket.IPPROTO_IP, 10)
s = socket.socket(fam, socket.SOCK_DGRAM); s.setsockopt(lvl, opt, mode); s.settimeout(0.02)
sent = echoed = emsg = 0
def drain():
    global echoed
    try:
        while True:
            if len(s.recv(65535)) == size: echoed += 1
    except (socket.timeout, OSError): pass
for i in range(n):
    try: s.sendto(bytes(size), (a, port)); sent += 1
    except OSError: emsg += 1
    drain()
end = time.time() + 1.5
while time.time() < end and echoed < sent: drain()
print(f'sent {sent} echoed {echoed} emsgsize {emsg}')
`;

/** n UDP datagrams of `size` payload bytes from the client to the server's echo and back. */
function udpEcho(lab: string, dst: string, df: boolean, size: number, n = 10): { sent: number; echoed: number; emsgsize: number } {
  const r = inNode(lab, 'client', 'python3', '-c', UDP_CLIENT, dst, df ? '9000' : '9001', df ? '2' : '0', String(size), String(n));
  const m = /sent (\d+) echoed (\d+) emsgsize (\d+)/.exec(r.out);
  assert.ok(m, r.out);
  return { sent: Number(m[1]), echoed: Number(m[2]), emsgsize: Number(m[3]) };
}

/** For IPv4, then IPv6: a TCP flow each way at once (each direction of a link has its own
 * rate), both must move data, and no segment of either is answered too big. */
async function tcpBothWays(lab: string, t: { diagnostic(s: string): void }, what: string): Promise<void> {
  for (const fam of ['v4', 'v6'] as const) {
    const lp0 = await status(lab, 'lp');
    const rp0 = await status(lab, 'rp');
    const runs = await Promise.all(
      [false, true].map(async (reverse) => ({ reverse, r: await iperf(lab, { server: { node: 'server', addr: SERVER[fam] }, client: { node: 'client' }, seconds: 3, omitS: 1, reverse }) })),
    );
    const lp = await status(lab, 'lp');
    const rp = await status(lab, 'rp');
    const tooBig = (lp.drops.too_big ?? 0) - (lp0.drops.too_big ?? 0) + (rp.drops.too_big ?? 0) - (rp0.drops.too_big ?? 0);
    for (const { reverse, r } of runs) {
      assert.ok(r.isOk(), JSON.stringify(r));
      const { bps, intervals } = r._unsafeUnwrap();
      t.diagnostic(`${what} ${fam} ${reverse ? 'download' : 'upload'}: ${(bps / 1e6).toFixed(1)} Mbit/s (${intervals.map((x) => (x / 1e6).toFixed(1)).join(' ')})`);
      assert.ok(bps > 15e6, `${fam} ${reverse ? 'download' : 'upload'} moves data: ${(bps / 1e6).toFixed(1)} Mbit/s`);
      assert.ok(intervals.every((x) => x > 5e6), 'every second carried data');
    }
    t.diagnostic(`${what} ${fam}: too_big ${tooBig}`);
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
        const text = inNode(lab, 'lp', 'bin/mpctl', 'status', '--instance', portalInstance(lab, 'lp')).out;
        assert.match(text, /pmtu 1280 \(probed\)/, `status shows the small link as probed:\n${text}`);
        assert.match(await portalLog(lab, 'lp'), /warning: link \S+ carries inner packets up to 1228 bytes, below IPv6's minimum 1280/, 'warned at up');
      });

      await t.test('(b) TCP both ways, IPv4 and IPv6: data moves, nothing too big', async () => {
        await tcpBothWays(lab, t, '3 links');
      });

      await t.test('(c) UDP: DF above the small links goes on the large one; above all of them, answered at its MTU', async () => {
        const v4 = inNode(lab, 'client', 'ping', '-n', '-c', '5', '-i', '0.1', '-W', '2', '-M', 'do', '-s', '1400', SERVER.v4);
        assert.equal(received(v4.out), 5, v4.out);
        const v6 = inNode(lab, 'client', 'ping', '-6', '-n', '-c', '5', '-i', '0.1', '-W', '2', '-s', '1380', SERVER.v6);
        assert.equal(received(v6.out), 5, v6.out);
        const tb0 = (await status(lab, 'lp')).drops.too_big ?? 0;
        const big4 = inNode(lab, 'client', 'ping', '-n', '-c', '2', '-i', '0.2', '-W', '1', '-M', 'do', '-s', '1460', SERVER.v4);
        assert.match(big4.out, /mtu = 1448|mtu=1448/, big4.out);
        const big6 = inNode(lab, 'client', 'ping', '-6', '-n', '-c', '2', '-i', '0.2', '-W', '1', '-s', '1440', SERVER.v6);
        assert.match(big6.out, /mtu=1448/, big6.out);
        assert.ok(((await status(lab, 'lp')).drops.too_big ?? 0) - tb0 >= 2, 'the answers are counted as too_big');
        // server → client, every size from the small links' 1228 to the large one's 1448 (before:
        // the RP put 1229-1428-byte packets on the 1280 link, where they died)
        for (const size of [1200, 1201, 1229, 1300, 1372, 1400, 1420])
          assert.equal(received(inNode(lab, 'server', 'ping', '-n', '-c', '3', '-i', '0.05', '-W', '2', '-M', 'do', '-s', String(size), CLIENT).out), 3, `server → client DF ${size + 28} bytes`);
        const noDf = inNode(lab, 'client', 'ping', '-n', '-c', '5', '-i', '0.1', '-W', '2', '-M', 'dont', '-s', '1460', SERVER.v4);
        assert.equal(received(noDf.out), 5, noDf.out);
        for (const size of [1200, 1229, 1300, 1400])
          assert.equal(received(inNode(lab, 'server', 'ping', '-6', '-n', '-c', '3', '-i', '0.05', '-W', '2', '-s', String(size), CLIENT_V6).out), 3, `server → client IPv6 ${size + 48} bytes`);
      });

      await t.test('(c2) UDP both ways: DF up to the largest link echoed whole, IPv4 and IPv6; without DF fragmented; above every link answered and counted', async () => {
        const srv = spawn('ip', ['netns', 'exec', nsName(lab, 'server'), 'python3', '-c', UDP_SERVER, SERVER.v4], { stdio: ['ignore', 'pipe', 'inherit'] });
        const srv6 = spawn('ip', ['netns', 'exec', nsName(lab, 'server'), 'python3', '-c', UDP_SERVER, SERVER.v6], { stdio: ['ignore', 'pipe', 'inherit'] });
        try {
          await Promise.all([srv, srv6].map((p) => new Promise((r) => p.stdout?.once('data', r))));
          const lp0 = await status(lab, 'lp');
          const cases = [
            ['IPv4 DF 1428 bytes (the large link only)', udpEcho(lab, SERVER.v4, true, 1400), 10],
            ['IPv4 without DF 1488 bytes (fragmented both ways)', udpEcho(lab, SERVER.v4, false, 1460), 10],
            ['IPv6 1428 bytes', udpEcho(lab, SERVER.v6, true, 1380), 10],
            ['IPv4 DF 1228 bytes (every link)', udpEcho(lab, SERVER.v4, true, 1200), 10],
          ] as const;
          for (const [what, r, n] of cases) {
            t.diagnostic(`${what}: ${JSON.stringify(r)}`);
            assert.deepEqual([r.sent, r.echoed], [n, n], what);
          }
          inNode(lab, 'client', 'ip', 'route', 'flush', 'cache'); // forget what (c)'s pings taught the client
          const big = udpEcho(lab, SERVER.v4, true, 1440); // 1468 bytes: above the largest link's 1448
          t.diagnostic(`IPv4 DF 1468 bytes: ${JSON.stringify(big)}`);
          assert.equal(big.echoed, 0);
          assert.ok(big.emsgsize >= 8, 'the sender learned the tunnel’s MTU from the answer (EMSGSIZE)');
          const lp = await status(lab, 'lp');
          assert.ok((lp.drops.too_big ?? 0) - (lp0.drops.too_big ?? 0) >= 1, 'answered and counted as too_big');
        } finally {
          srv.kill();
          srv6.kill();
        }
      });

      await t.test('(e) TTL expiry in the tunnel: time exceeded from the portal’s own address, both ways', async () => {
        const hop = (node: string, dst: string, v6: boolean) => inNode(lab, node, 'ping', ...(v6 ? ['-6'] : []), '-n', '-c', '1', '-W', '2', '-t', '1', dst).out;
        assert.match(hop('client', SERVER.v4, false), /From 198\.51\.100\.2 .*Time to live exceeded/i, 'client → server: the RP');
        assert.match(hop('server', CLIENT, false), /From 100\.64\.\d\.1 .*Time to live exceeded/i, 'server → client: the LP');
        // IPv6 inside IPv4 links: from the portals' own IPv6 addresses (RP: wan; LP: lan), through the tunnel
        assert.match(hop('client', SERVER.v6, true), /From 2001:db8:100::2 .*Time exceeded/i, 'client → server IPv6: the RP');
        assert.match(hop('server', CLIENT_V6, true), /From fd00:10::1 .*Time exceeded/i, 'server → client IPv6: the LP');
        const two = inNode(lab, 'client', 'ping', '-n', '-c', '1', '-W', '2', '-t', '2', SERVER.v4).out;
        assert.match(two, /1 received/, 'TTL 2 reaches the server: the bond is one hop');
      });

      await t.test('(d) a black hole appears on link 2 at runtime: found within 2 s, flows carry on', async () => {
        const from = (await portalLog(lab, 'lp')).length;
        const set = await labSet({ name: lab, node: 'isp2', dirs: ['up', 'down'], patch: { mtu: 1400, mtuIcmp: false } });
        assert.ok(set.isOk(), JSON.stringify(set));
        const ms = await untilLog(lab, 'lp', from, logsMtus(1, 1400, true), 10_000);
        // status is published once a second: wait for the publication after the shrink
        const reported = await until(lab, 'lp', (s) => (pmtuOf(s, 1)?.shrinks ?? 0) >= 1, 3000);
        const lp = await status(lab, 'lp');
        t.diagnostic(`shrink found after ${ms} ms: ${JSON.stringify(pmtuOf(lp, 1))}`);
        assert.ok(ms >= 0 && ms <= 2000, `found within 2 s (${ms} ms)`);
        assert.ok(reported >= 0, `reported as size-dependent loss: ${JSON.stringify(pmtuOf(lp, 1))}`);
        assert.equal(lp.links.find((l) => l.id === 1)?.state, 'up', 'the link stays up: small packets pass');
        await tcpBothWays(lab, t, 'black hole on link 2');
      });

      await t.test('(f) a hop that answers ICMP appears on link 1: the LP learns from the ICMP at once (ptb.h), probes confirm', async () => {
        const from = (await portalLog(lab, 'lp')).length;
        const set = await labSet({ name: lab, node: 'isp1', dirs: ['up', 'down'], patch: { mtu: 1200, mtuIcmp: true } });
        assert.ok(set.isOk(), JSON.stringify(set));
        const icmpMs = await untilLog(lab, 'lp', from, (l) => /ICMP too big, MTU 1200: searching below it/.test(l), 5000);
        const ms = await untilLog(lab, 'lp', from, logsMtus(0, 1200, false), 5000);
        t.diagnostic(`ICMP taken after ${icmpMs} ms, link 1 up at 1200 after ${ms} ms`);
        assert.ok(icmpMs >= 0, 'the LP took the ICMP about its own packets');
        assert.ok(ms >= 0 && ms <= 2000, `found within 2 s (${ms} ms)`);
        const v6 = inNode(lab, 'client', 'ping', '-6', '-n', '-c', '3', '-i', '0.1', '-W', '2', '-s', '1200', SERVER.v6);
        assert.equal(received(v6.out), 3, `IPv6 of 1248 bytes goes on the links that carry it: ${v6.out}`);
      });

      await t.test('(g) a satellite round trip (300 ms each way) on link 3, then a black hole: found within 2 s all the same', async () => {
        const slow = await labSet({ name: lab, node: 'isp3', dirs: ['up', 'down'], patch: { delayUs: 300_000 } });
        assert.ok(slow.isOk(), JSON.stringify(slow));
        // the round trip settles and any search the step started ends
        const settled = await until(lab, 'lp', (s) => (s.links.find((l) => l.id === 2)?.rttMs ?? 0) > 590 && s.links.find((l) => l.id === 2)?.state === 'up', 10_000);
        assert.ok(settled >= 0, 'link 3 up with a 600 ms round trip');
        await new Promise((r) => setTimeout(r, 2500));
        const from = (await portalLog(lab, 'lp')).length;
        const set = await labSet({ name: lab, node: 'isp3', dirs: ['up', 'down'], patch: { mtu: 1240, mtuIcmp: false } });
        assert.ok(set.isOk(), JSON.stringify(set));
        const ms = await untilLog(lab, 'lp', from, logsMtus(2, 1240, true), 10_000);
        t.diagnostic(`shrink at a 600 ms round trip found after ${ms} ms`);
        assert.ok(ms >= 0 && ms <= 2000, `found within 2 s (${ms} ms)`);
      });
    },
    // the end hosts straight on the portals: their first hop is the tunnel, whose ICMP (e) checks
    // (a router in front, the lab's default, would answer TTL 1 itself, from 192.0.0.8)
    { bond: true, routedHosts: false },
  );
});
