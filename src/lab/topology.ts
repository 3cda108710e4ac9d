// The lab's topology and addressing — the one place they are defined.
//
//   client          lp                 isp1..N             inet              rp               server
//  ┌──────┐      ┌───────┐  wan1 ┌──────────────┐ isp1 ┌────────┐ rp   wan ┌──────┐ srv  eth0 ┌────────┐
//  │ eth0 ├──────┤ lan   ├───────┤ a ─linkem─ b ├──────┤        ├──────────┤      ├──────────┤        │
//  └──────┘      │  wanN ├─ ...  └──────────────┘      └────────┘          └──────┘           └────────┘
//                └───────┘        one per link: L2 wire with rate (tbf), delay, jitter, loss, outage
//                                                         │ atk
//                                                    ┌────┴─────┐
//                                                    │ attacker │ eth0: anyone on the Internet
//                                                    └──────────┘
//
// Segment            IPv4                           IPv6
// lan                client 10.10.0.2/24            fd00:10::2/64      (lp 10.10.0.1, fd00:10::1)
// link K (1..16)     lp wanK 100.64.K.1/24          fd00:64:K::1/64    (gateway: inet ispK 100.64.K.254, fd00:64:K::fe)
// inet–rp            inet 198.51.100.1/24           2001:db8:100::1/64 (rp wan 198.51.100.2, 2001:db8:100::2)
// rp–server          rp srv 203.0.113.1/24          2001:db8:113::1/64 (server 203.0.113.2, 2001:db8:113::2)
// inet–attacker      inet atk 192.0.2.1/24          2001:db8:66::1/64  (attacker 192.0.2.66, 2001:db8:66::66)
//
// Whole-LAN mode (`buildTopology(..., { lan: true })`, `mpctl lab up --lan`): lp's lan and the
// client hang off a LAN switch (lansw, a bridge br0) with two more hosts, the LP's LAN:
//
//   client eth0 ─┐
//   host1  eth0 ─┤ lansw (br0) ├── lp lan 10.10.0.1, 192.168.1.1/24, fd00:1::1/64
//   host2  eth0 ─┘
// lan (LAN)          host1 192.168.1.10/24 fd00:1::10/64, host2 192.168.1.11/24 fd00:1::11/64
//                    (default via lp 192.168.1.1 / fd00:1::1; the LP translates them, bpf/nat.h)
//
// Routed-hosts mode (`buildTopology(..., { routedHosts: true })`, `mpctl lab up --routed-hosts`):
// a router namespace on each end host's veth, cgw between the client side (the client, or lansw
// in whole-LAN mode) and the LP's lan, sgw between the server and the RP's srv:
//
//   client eth0 ── client [cgw] lp ── lan lp    …    rp srv ── rp [sgw] server ── eth0 server
//
// A router has no address of its own: it forwards at IP and answers ARP (proxy_arp, for whatever
// it routes out of its other side) and NDP (a proxy entry per address of the other side) for the
// far side, so every node keeps its addresses and subnet; only the TTL / hop limit drops by one and
// the MACs the portals see are the router's. Why: a veth keeps the sending socket on the skb across
// namespaces, so a queue in a portal's qdisc would count against the end host's TCP small-queues
// budget; IP receive on the router orphans the skb, as a real client's LAN does.
//
// The isp nodes have no addresses: their two interfaces only carry the link emulator's frames.
// Without a bond, client traffic takes link 1 (lp's default route); `inet` routes the lan back
// over link 1 as well. Namespaces are named `mp-<lab>-<node>`, so labs never collide. The
// attacker is a host elsewhere on the Internet that can reach both portals' public addresses
// (the attack tests send forged, replayed and flooding traffic from it); nothing routes through it.

import { MP_MAX_LINKS } from '../datapath/abi.js';
import { maskAddress } from '../config/values.js';
import { parsePrefix } from '../netlink/ip.js';
import type { RouteSpec } from '../netlink/rtnl.js';

/** a bonded lab has at most the data path's links */
export const MAX_LINKS = MP_MAX_LINKS;
/** Why shaping needs routed hosts (labUp's refusal, and `lab up`'s usage check). */
export const SHAPE_NEEDS_HOP = "without the hop the end hosts' TCP small queues count the portals' queues as their own";

export type NodeName = string; // 'client' | 'lp' | `isp${n}` | 'inet' | 'rp' | 'server' | 'attacker' | 'cgw' | 'sgw' | …

/** Routed-hosts mode: the router in front of each end host's side. */
export const ROUTERS = { client: 'cgw', server: 'sgw' } as const;

/** The attacker's addresses (on the inet–attacker segment). */
export const ATTACKER = { v4: '192.0.2.66', v6: '2001:db8:66::66' } as const;

/** Whole-LAN mode: the LAN's prefixes, the LP's address on it, its hosts. */
export const LAN = {
  v4: '192.168.1.0/24',
  v6: 'fd00:1::/64',
  gateway: { v4: '192.168.1.1', v6: 'fd00:1::1' },
  hosts: {
    host1: { v4: '192.168.1.10', v6: 'fd00:1::10' },
    host2: { v4: '192.168.1.11', v6: 'fd00:1::11' },
  },
} as const;

export interface TopologyOptions {
  /** whole-LAN mode: a LAN switch with host1 and host2 on the LP's lan */
  lan?: boolean;
  /** routed-hosts mode: a router (ROUTERS) between each end host's side and its portal */
  routedHosts?: boolean;
}

/** A proxy NDP entry: answer neighbour solicitations for `address` on `dev` (`router`: as a router). */
export interface NdpProxy {
  address: string;
  dev: string;
  router: boolean;
}

/** What makes a node a router in front of end hosts (routed-hosts mode): its two sides and the
 * proxy NDP entries for the addresses across it. */
export interface RouterPlan {
  /** the interface toward the end hosts (the client, the LAN switch, the server) */
  hostSide: string;
  /** the interface toward the portal */
  portalSide: string;
  ndpProxy: NdpProxy[];
}

export interface Iface {
  name: string;
  v4?: string; // CIDR
  v6?: string; // CIDR
  /** further addresses (CIDR) */
  extra?: string[];
  /** the veth peer: node and interface */
  peer: { node: NodeName; ifname: string };
}

export interface NodePlan {
  node: NodeName;
  ns: string;
  ifaces: Iface[];
  routes: Pick<RouteSpec, 'dst' | 'via' | 'dev'>[];
  forwarding: boolean;
  /** a switch: these interfaces are ports of a bridge br0 (no addresses) */
  bridge?: string[];
  /** a router in front of end hosts (routed-hosts mode): proxy ARP on, these NDP proxies */
  router?: RouterPlan;
}

export interface Topology {
  lab: string;
  prefix: string;
  links: number;
  nodes: NodePlan[];
}

export const nsPrefix = (lab: string): string => `mp-${lab}-`;
export const nsName = (lab: string, node: NodeName): string => `${nsPrefix(lab)}${node}`;
export const linkNode = (k: number): NodeName => `isp${k}`;

/** Valid lab names: short, so namespace and file names stay readable. */
export const LAB_NAME_RE = /^[a-z0-9][a-z0-9_]{0,23}$/;

export function buildTopology(lab: string, links: number, o: TopologyOptions = {}): Topology {
  const ns = (n: NodeName) => nsName(lab, n);
  const ks = Array.from({ length: links }, (_, i) => i + 1);
  const hex = (k: number) => k.toString(16);
  const nodes: NodePlan[] = [
    {
      node: 'client',
      ns: ns('client'),
      ifaces: [{ name: 'eth0', v4: '10.10.0.2/24', v6: 'fd00:10::2/64', peer: o.lan ? { node: 'lansw', ifname: 'cl' } : { node: 'lp', ifname: 'lan' } }],
      routes: [
        { dst: 'default', via: '10.10.0.1' },
        { dst: 'default', via: 'fd00:10::1' },
      ],
      forwarding: false,
    },
    ...(o.lan ? lanNodes(ns) : []),
    {
      node: 'lp',
      ns: ns('lp'),
      ifaces: [
        o.lan
          ? { name: 'lan', v4: '10.10.0.1/24', v6: 'fd00:10::1/64', extra: [`${LAN.gateway.v4}/24`, `${LAN.gateway.v6}/64`], peer: { node: 'lansw', ifname: 'lp' } }
          : { name: 'lan', v4: '10.10.0.1/24', v6: 'fd00:10::1/64', peer: { node: 'client', ifname: 'eth0' } },
        ...ks.map((k) => ({
          name: `wan${k}`,
          v4: `100.64.${k}.1/24`,
          v6: `fd00:64:${hex(k)}::1/64`,
          peer: { node: linkNode(k), ifname: 'a' },
        })),
      ],
      routes: [
        { dst: 'default', via: '100.64.1.254' },
        { dst: 'default', via: 'fd00:64:1::fe' },
      ],
      forwarding: true,
    },
    ...ks.map((k) => ({
      node: linkNode(k),
      ns: ns(linkNode(k)),
      ifaces: [
        { name: 'a', peer: { node: 'lp', ifname: `wan${k}` } },
        { name: 'b', peer: { node: 'inet', ifname: linkNode(k) } },
      ],
      routes: [],
      forwarding: false,
    })),
    {
      node: 'inet',
      ns: ns('inet'),
      ifaces: [
        ...ks.map((k) => ({
          name: linkNode(k),
          v4: `100.64.${k}.254/24`,
          v6: `fd00:64:${hex(k)}::fe/64`,
          peer: { node: linkNode(k), ifname: 'b' },
        })),
        { name: 'rp', v4: '198.51.100.1/24', v6: '2001:db8:100::1/64', peer: { node: 'rp', ifname: 'wan' } },
        { name: 'atk', v4: '192.0.2.1/24', v6: '2001:db8:66::1/64', peer: { node: 'attacker', ifname: 'eth0' } },
      ],
      routes: [
        { dst: '10.10.0.0/24', via: '100.64.1.1' },
        { dst: 'fd00:10::/64', via: 'fd00:64:1::1' },
        { dst: '203.0.113.0/24', via: '198.51.100.2' },
        { dst: '2001:db8:113::/64', via: '2001:db8:100::2' },
      ],
      forwarding: true,
    },
    {
      node: 'rp',
      ns: ns('rp'),
      ifaces: [
        { name: 'wan', v4: '198.51.100.2/24', v6: '2001:db8:100::2/64', peer: { node: 'inet', ifname: 'rp' } },
        { name: 'srv', v4: '203.0.113.1/24', v6: '2001:db8:113::1/64', peer: { node: 'server', ifname: 'eth0' } },
      ],
      routes: [
        { dst: 'default', via: '198.51.100.1' },
        { dst: 'default', via: '2001:db8:100::1' },
      ],
      forwarding: true,
    },
    {
      node: 'server',
      ns: ns('server'),
      ifaces: [{ name: 'eth0', v4: '203.0.113.2/24', v6: '2001:db8:113::2/64', peer: { node: 'rp', ifname: 'srv' } }],
      routes: [
        { dst: 'default', via: '203.0.113.1' },
        { dst: 'default', via: '2001:db8:113::1' },
      ],
      forwarding: false,
    },
    {
      node: 'attacker',
      ns: ns('attacker'),
      ifaces: [{ name: 'eth0', v4: `${ATTACKER.v4}/24`, v6: `${ATTACKER.v6}/64`, peer: { node: 'inet', ifname: 'atk' } }],
      routes: [
        { dst: 'default', via: '192.0.2.1' },
        { dst: 'default', via: '2001:db8:66::1' },
      ],
      forwarding: false,
    },
  ];
  if (o.routedHosts) {
    routeBetween(nodes, ns, ROUTERS.client, o.lan ? { node: 'lansw', ifname: 'lp' } : { node: 'client', ifname: 'eth0' }, { node: 'lp', ifname: 'lan' });
    routeBetween(nodes, ns, ROUTERS.server, { node: 'server', ifname: 'eth0' }, { node: 'rp', ifname: 'srv' });
  }
  return { lab, prefix: nsPrefix(lab), links, nodes };
}

/** A veth end: a node and one of its interfaces. */
interface End {
  node: NodeName;
  ifname: string;
}

const addrsOf = (i: Iface): string[] => [i.v4, i.v6, ...(i.extra ?? [])].filter((a): a is string => a !== undefined);

/**
 * Routed-hosts mode: puts router `name` on the veth between `host` (an end host, or the LAN
 * switch) and `portal` (the portal's interface), in `nodes`. Its interfaces are named after the nodes they face. The hosts' addresses get host
 * routes out of the host side, the portal's subnets point out of the portal side, the default
 * route is the portal's address: so proxy ARP answers each side for the other, and the proxy NDP
 * entries do the same for IPv6.
 */
function routeBetween(nodes: NodePlan[], ns: (n: NodeName) => string, name: NodeName, host: End, portal: End): void {
  const find = (e: End) => nodes.find((n) => n.node === e.node)?.ifaces.find((i) => i.name === e.ifname);
  const hostIf = find(host);
  const portalIf = find(portal);
  const portalAt = nodes.findIndex((n) => n.node === portal.node);
  const hostAt = nodes.findIndex((n) => n.node === host.node);
  if (!hostIf || !portalIf || portalAt < 0) return; // not a veth of this topology (the unit test names every router)
  // behind a switch: every other port's host
  const ports = nodes.find((n) => n.node === host.node)?.bridge;
  const hostIfaces = ports ? ports.filter((p) => p !== host.ifname).map((p) => find({ node: host.node, ifname: p })?.peer).map((e) => (e ? find(e) : undefined)) : [hostIf];
  const hostAddrs = hostIfaces.flatMap((i) => (i ? addrsOf(i) : [])).map((a) => a.split('/')[0]!);
  const portalAddrs = addrsOf(portalIf);
  const side = { hostSide: host.node, portalSide: portal.node };
  hostIf.peer = { node: name, ifname: side.hostSide };
  portalIf.peer = { node: name, ifname: side.portalSide };
  const gateway = (fam: 4 | 6) => portalAddrs.find((a) => parsePrefix(a)?.family === fam)?.split('/')[0];
  // listed between the two: before the portal when the hosts come first (client), else after it (server)
  nodes.splice(hostAt < portalAt ? portalAt : portalAt + 1, 0, {
    node: name,
    ns: ns(name),
    ifaces: [
      { name: side.hostSide, peer: host },
      { name: side.portalSide, peer: portal },
    ],
    routes: [
      ...hostAddrs.map((a) => hostRoute(side, a).route),
      ...portalAddrs.map((cidr) => {
        const p = parsePrefix(cidr)!;
        return { dst: `${maskAddress(p.address, p.len)}/${p.len}`, dev: side.portalSide };
      }),
      ...([4, 6] as const).flatMap((fam) => {
        const via = gateway(fam);
        return via ? [{ dst: 'default', via }] : [];
      }),
    ],
    forwarding: true,
    router: {
      ...side,
      ndpProxy: [...hostAddrs.flatMap((a) => hostRoute(side, a).proxy ?? []), ...portalAddrs.flatMap((a) => portalProxy(side, a.split('/')[0]!) ?? [])],
    },
  });
}

/**
 * What a router needs for one address on its hosts' side (one the topology has, or one the bond
 * gives the client): a host route out of the host side and, for IPv6, a proxy NDP entry on the
 * portal side (IPv4's proxy ARP follows the route).
 */
export function hostRoute(r: Pick<RouterPlan, 'hostSide' | 'portalSide'>, address: string): { route: Pick<RouteSpec, 'dst' | 'dev'>; proxy?: NdpProxy } {
  const v6 = parsePrefix(address)?.family === 6;
  return {
    route: { dst: `${address}/${v6 ? 128 : 32}`, dev: r.hostSide },
    ...(v6 ? { proxy: { address, dev: r.portalSide, router: false } } : {}),
  };
}

/**
 * What a router needs for an address on its portal's side that the hosts resolve (the portal's
 * own, or the gateway the bond gives the client): for IPv6 a proxy NDP entry on the host side,
 * as a router; nothing for IPv4, where proxy ARP answers for whatever the default route covers.
 */
export function portalProxy(r: Pick<RouterPlan, 'hostSide' | 'portalSide'>, address: string): NdpProxy | undefined {
  return parsePrefix(address)?.family === 6 ? { address, dev: r.hostSide, router: true } : undefined;
}

/** Whole-LAN mode: the switch and its two hosts. */
function lanNodes(ns: (n: NodeName) => string): NodePlan[] {
  const host = (node: 'host1' | 'host2', port: string): NodePlan => ({
    node,
    ns: ns(node),
    ifaces: [{ name: 'eth0', v4: `${LAN.hosts[node].v4}/24`, v6: `${LAN.hosts[node].v6}/64`, peer: { node: 'lansw', ifname: port } }],
    routes: [
      { dst: 'default', via: LAN.gateway.v4 },
      { dst: 'default', via: LAN.gateway.v6 },
    ],
    forwarding: false,
  });
  return [
    {
      node: 'lansw',
      ns: ns('lansw'),
      ifaces: [
        { name: 'lp', peer: { node: 'lp', ifname: 'lan' } },
        { name: 'cl', peer: { node: 'client', ifname: 'eth0' } },
        { name: 'h1', peer: { node: 'host1', ifname: 'eth0' } },
        { name: 'h2', peer: { node: 'host2', ifname: 'eth0' } },
      ],
      routes: [],
      forwarding: false,
      bridge: ['lp', 'cl', 'h1', 'h2'],
    },
    host('host1', 'h1'),
    host('host2', 'h2'),
  ];
}

/** Each veth pair once, from the side that comes first in the node list. */
export function vethPairs(t: Topology): { a: { node: NodePlan; ifname: string }; b: { node: NodePlan; ifname: string } }[] {
  const byName = new Map(t.nodes.map((n) => [n.node, n]));
  const seen = new Set<string>();
  const out: ReturnType<typeof vethPairs> = [];
  for (const n of t.nodes)
    for (const i of n.ifaces) {
      const key = [`${n.node}/${i.name}`, `${i.peer.node}/${i.peer.ifname}`].sort().join('|');
      if (seen.has(key)) continue;
      seen.add(key);
      const peer = byName.get(i.peer.node);
      if (peer) out.push({ a: { node: n, ifname: i.name }, b: { node: peer, ifname: i.peer.ifname } });
    }
  return out;
}

/** Names every node resolves inside the lab (written to /etc/netns/<ns>/hosts). */
export function hostsFile(t: Topology): string {
  const first = (node: NodeName, fam: 'v4' | 'v6') =>
    t.nodes.find((n) => n.node === node)?.ifaces.find((i) => i[fam])?.[fam]?.split('/')[0];
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  const names: [NodeName, NodeName][] = [
    ['client', 'client'],
    ['lp', 'lp'],
    ['inet', 'inet'],
    ['rp', 'rp'],
    ['server', 'server'],
    ['attacker', 'attacker'],
    ['host1', 'host1'],
    ['host2', 'host2'],
  ];
  for (const [name, node] of names)
    for (const fam of ['v4', 'v6'] as const) {
      // rp and inet are named by their address on the inet–rp segment
      const a = name === 'rp' ? (fam === 'v4' ? '198.51.100.2' : '2001:db8:100::2') : first(node, fam);
      if (a) lines.push(`${a}\t${name}`);
    }
  for (let k = 1; k <= t.links; k++) {
    // an isp node is named by its gateway (the ISP's router on the link)
    lines.push(`100.64.${k}.254\t${linkNode(k)}`, `fd00:64:${k.toString(16)}::fe\t${linkNode(k)}`);
  }
  return `${lines.join('\n')}\n`;
}
