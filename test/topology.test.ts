// The lab's addressing plan: one veth per segment, both address families everywhere, names resolve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, hostsFile, nsName, vethPairs, type Topology } from '../src/lab/topology.js';
import { bufferToIp, ipToBuffer, parsePrefix } from '../src/netlink/ip.js';
import { encodeTbfOptions } from '../src/netlink/tbf.js';
import { parseAttrs } from '../src/netlink/attr.js';

test('topology has client, lp, N isps, inet, rp, server, attacker joined by one veth per segment', () => {
  const t = buildTopology('x', 3);
  assert.deepEqual(t.nodes.map((n) => n.node), ['client', 'lp', 'isp1', 'isp2', 'isp3', 'inet', 'rp', 'server', 'attacker']);
  assert.equal(nsName('x', 'lp'), 'mp-x-lp');
  // lan + 3 × (lp–isp, isp–inet) + inet–rp + rp–server + inet–attacker
  assert.equal(vethPairs(t).length, 1 + 6 + 3);
  for (const n of t.nodes)
    for (const i of n.ifaces) {
      const peer = t.nodes.find((x) => x.node === i.peer.node)?.ifaces.find((x) => x.name === i.peer.ifname);
      assert.ok(peer, `${n.node}:${i.name} has a peer`);
      assert.equal(peer.peer.node, n.node, 'peers point at each other');
      if (!n.node.startsWith('isp')) assert.ok(i.v4 && i.v6, `${n.node}:${i.name} has IPv4 and IPv6`);
    }
});

test('whole-LAN mode: a switch with client, host1, host2 and the LP\'s lan as its ports', () => {
  const t = buildTopology('x', 2, { lan: true });
  assert.deepEqual(t.nodes.map((n) => n.node), ['client', 'lansw', 'host1', 'host2', 'lp', 'isp1', 'isp2', 'inet', 'rp', 'server', 'attacker']);
  const sw = t.nodes.find((n) => n.node === 'lansw');
  assert.deepEqual(sw?.bridge, ['lp', 'cl', 'h1', 'h2']);
  assert.ok(sw?.ifaces.every((i) => !i.v4 && !i.v6), 'a switch has no addresses');
  const lan = t.nodes.find((n) => n.node === 'lp')?.ifaces.find((i) => i.name === 'lan');
  assert.deepEqual([lan?.peer, lan?.extra], [{ node: 'lansw', ifname: 'lp' }, ['192.168.1.1/24', 'fd00:1::1/64']]);
  // 4 switch ports + 2 × (lp–isp, isp–inet) + inet–rp + rp–server + inet–attacker
  assert.equal(vethPairs(t).length, 4 + 4 + 3);
  for (const n of t.nodes)
    for (const i of n.ifaces) {
      const peer = t.nodes.find((x) => x.node === i.peer.node)?.ifaces.find((x) => x.name === i.peer.ifname);
      assert.equal(peer?.peer.node, n.node, `${n.node}:${i.name} and its peer point at each other`);
    }
  assert.match(hostsFile(t), /^192\.168\.1\.11\thost2$/m);
  assert.deepEqual(buildTopology('x', 2).nodes.map((n) => n.node).includes('lansw'), false, 'off by default');
});

/** Every node but the routers with its interfaces' addresses: what routed-hosts mode must keep. */
const addressesOf = (t: Topology) =>
  t.nodes.filter((n) => !n.router).map((n) => ({ node: n.node, ns: n.ns, ifaces: n.ifaces.map((i) => [i.name, i.v4, i.v6, i.extra]), routes: n.routes }));

/** A node's routes as `ip route` would print them, roughly. */
const routesOf = (n: Topology['nodes'][number]) => n.routes.map((r) => `${r.dst} ${r.dev ? `dev ${r.dev}` : `via ${r.via}`}`);

/** The peers of every interface point back at it. */
function assertPeered(t: Topology): void {
  for (const n of t.nodes)
    for (const i of n.ifaces) {
      const peer = t.nodes.find((x) => x.node === i.peer.node)?.ifaces.find((x) => x.name === i.peer.ifname);
      assert.deepEqual(peer?.peer, { node: n.node, ifname: i.name }, `${n.node}:${i.name} and its peer point at each other`);
    }
}

test('routed hosts: cgw between client and lp, sgw between rp and server, every other node and address as before', () => {
  const plain = buildTopology('x', 2);
  const t = buildTopology('x', 2, { routedHosts: true });
  assert.deepEqual(t.nodes.map((n) => n.node), ['client', 'cgw', 'lp', 'isp1', 'isp2', 'inet', 'rp', 'sgw', 'server', 'attacker']);
  assert.equal(vethPairs(t).length, vethPairs(plain).length + 2, 'one more veth per router');
  assertPeered(t);
  assert.deepEqual(addressesOf(t), addressesOf(plain), 'the other nodes keep names, addresses and routes');
  const at = (node: string, ifname: string) => t.nodes.find((n) => n.node === node)?.ifaces.find((i) => i.name === ifname)?.peer;
  assert.deepEqual([at('client', 'eth0'), at('lp', 'lan'), at('rp', 'srv'), at('server', 'eth0')], [
    { node: 'cgw', ifname: 'client' },
    { node: 'cgw', ifname: 'lp' },
    { node: 'sgw', ifname: 'rp' },
    { node: 'sgw', ifname: 'server' },
  ]);
  const cgw = t.nodes.find((n) => n.node === 'cgw')!;
  assert.equal(cgw.ns, 'mp-x-cgw');
  assert.ok(cgw.forwarding, 'a router forwards');
  assert.ok(cgw.ifaces.every((i) => !i.v4 && !i.v6 && !i.extra), 'a router has no addresses of its own');
  assert.deepEqual(routesOf(cgw), ['10.10.0.2/32 dev client', 'fd00:10::2/128 dev client', '10.10.0.0/24 dev lp', 'fd00:10::/64 dev lp', 'default via 10.10.0.1', 'default via fd00:10::1']);
  assert.deepEqual(cgw.router, {
    hostSide: 'client',
    portalSide: 'lp',
    ndpProxy: [
      { address: 'fd00:10::2', dev: 'lp', router: false },
      { address: 'fd00:10::1', dev: 'client', router: true },
    ],
  });
  const sgw = t.nodes.find((n) => n.node === 'sgw')!;
  assert.deepEqual(routesOf(sgw), [
    '203.0.113.2/32 dev server',
    '2001:db8:113::2/128 dev server',
    '203.0.113.0/24 dev rp',
    '2001:db8:113::/64 dev rp',
    'default via 203.0.113.1',
    'default via 2001:db8:113::1',
  ]);
  assert.deepEqual(sgw.router?.ndpProxy.map((p) => `${p.address} ${p.dev}`), ['2001:db8:113::2 rp', '2001:db8:113::1 server']);
  assert.equal(hostsFile(t), hostsFile(plain), 'names resolve as before');
  assert.equal(plain.nodes.some((n) => n.router), false, 'off by default');
});

test('routed hosts in whole-LAN mode: cgw between the switch and lp, answering for every LAN host and LP address', () => {
  const plain = buildTopology('x', 2, { lan: true });
  const t = buildTopology('x', 2, { lan: true, routedHosts: true });
  assert.deepEqual(t.nodes.map((n) => n.node), ['client', 'lansw', 'host1', 'host2', 'cgw', 'lp', 'isp1', 'isp2', 'inet', 'rp', 'sgw', 'server', 'attacker']);
  assertPeered(t);
  assert.deepEqual(addressesOf(t), addressesOf(plain));
  assert.deepEqual(t.nodes.find((n) => n.node === 'lansw')?.bridge, ['lp', 'cl', 'h1', 'h2'], 'the switch keeps its ports');
  const cgw = t.nodes.find((n) => n.node === 'cgw')!;
  assert.deepEqual(cgw.ifaces.map((i) => [i.name, i.peer]), [
    ['lansw', { node: 'lansw', ifname: 'lp' }],
    ['lp', { node: 'lp', ifname: 'lan' }],
  ]);
  assert.deepEqual(cgw.routes.filter((r) => r.dev === 'lansw').map((r) => r.dst), ['10.10.0.2/32', 'fd00:10::2/128', '192.168.1.10/32', 'fd00:1::10/128', '192.168.1.11/32', 'fd00:1::11/128']);
  assert.deepEqual(cgw.routes.filter((r) => r.dev === 'lp').map((r) => r.dst), ['10.10.0.0/24', 'fd00:10::/64', '192.168.1.0/24', 'fd00:1::/64']);
  assert.deepEqual(cgw.router?.ndpProxy.map((p) => `${p.address} ${p.dev}${p.router ? ' router' : ''}`), [
    'fd00:10::2 lp',
    'fd00:1::10 lp',
    'fd00:1::11 lp',
    'fd00:10::1 lansw router',
    'fd00:1::1 lansw router',
  ]);
});

test('hosts file names every node', () => {
  const h = hostsFile(buildTopology('x', 2));
  for (const name of ['client', 'lp', 'isp1', 'isp2', 'inet', 'rp', 'server', 'attacker']) assert.match(h, new RegExp(`\\t${name}$`, 'm'));
  assert.match(h, /^203\.0\.113\.2\tserver$/m);
  assert.match(h, /^2001:db8:113::2\tserver$/m);
});

test('IP parsing round-trips', () => {
  for (const a of ['10.0.0.1', 'fd00:64:1::fe', '2001:db8::1', '::1', '::', 'fe80::1:2:3:4'])
    assert.equal(bufferToIp(ipToBuffer(a)), a);
  assert.equal(bufferToIp(ipToBuffer('::ffff:1.2.3.4')), '::ffff:102:304');
  assert.deepEqual(parsePrefix('fd00::1/64'), { family: 6, address: 'fd00::1', len: 64 });
  assert.equal(parsePrefix('10.0.0.1/33'), null);
});

test('tbf options encode rate, burst and limit as the kernel reads them', () => {
  const a = parseAttrs(encodeTbfOptions({ rateBps: 20e6, burstBytes: 3028, limitBytes: 125_000 }));
  const parms = a.get(1)!;
  assert.equal(parms.length, 36);
  assert.equal(parms.readUInt8(1), 1, 'linklayer ethernet');
  assert.equal(parms.readUInt32LE(8), 2_500_000, 'bytes/s');
  assert.equal(parms.readUInt32LE(24), 125_000, 'limit');
  assert.equal(parms.readUInt32LE(28), Math.floor((3028 * 1e9) / 2.5e6 / 64), 'buffer in psched ticks');
  assert.equal(a.get(6)!.readUInt32LE(0), 3028, 'TCA_TBF_BURST');
  assert.equal(a.has(4), false, 'no RATE64 below 2^32 B/s');
  assert.equal(parseAttrs(encodeTbfOptions({ rateBps: 40e9, burstBytes: 5e6, limitBytes: 1e7 })).get(4)!.readBigUInt64LE(0), 5_000_000_000n);
});
