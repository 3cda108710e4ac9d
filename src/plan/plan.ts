// config → plan: the kernel state a portal needs, as data (plan/types.ts). Pure: no I/O; what
// only the running system knows (a link's address when `source` is not set) comes in `facts`.
// Each step says why it is there. Steps are in bring-up order; `down` is the reverse:
//
//   LP: 1 lan sysctls · 2 GRO off on lan · 3 client and gateway routes · 4 per-link tables and
//       rules · 5 decap on each link · 6 the segmentation loop · 7 encap on lan · 8 neighbour
//       proxies for the gateways · 9 `bond_local`: the LP's own traffic into the bond
//   RP: 1 forwarding (+ proxy) sysctls · 2 GRO off · 3 the segmentation loop · 4 decap + encap
//       on wan, encap on forward interfaces · 5 client route and neighbour proxies
//
// Neighbour proxies come last on purpose: the moment the portal answers ARP/ND for the
// gateway (LP) or the client (RP), traffic starts arriving, and by then the programs that must
// catch it are attached; `down` withdraws them first for the same reason. (LP step 9 only
// follows them because it concerns the LP's own traffic, which no proxy brings: its routes come
// after its own encap, and `down` takes them away before anything else.)
import { err, ok, type Result } from 'neverthrow';
import { configInvalid, type MpError } from '../errors.js';
import type { Family, LinkConfig, LocalConfig, PortalConfig, Prefix, RemoteConfig } from '../config/types.js';
import { canonicalAddress, formatPrefix, isLinkLocal, isUnicast, prefixContains } from '../config/values.js';
import { innerMtu } from './mtu.js';
import type { Policy } from './policy.js';
import type { BondLocalPlan, LoopPlan, Plan, PlanStep } from './types.js';

/** What the caller looked up on the machine: each interface's addresses (`100.64.1.1/24` or
 *  bare) and MTU (absent: 1500, see mtu.ts). */
export interface PlanFacts {
  addresses: Record<string, string[]>;
  mtus?: Record<string, number>;
}

export const MAIN_TABLE = 254;
/** The htb root handle of per-link shaping ("mp": 0x6d70, major << 16; bpf/shape.h): link id's
 * class is SHAPE_HANDLE | (id + 1). */
export const SHAPE_HANDLE = 0x6d70_0000;

/** The shaper step of one device (`shape` true or "auto": see PlanStep). */
function shaperStep(shape: true | 'auto', dev: string): PlanStep {
  return { kind: 'shaper', dev, handle: SHAPE_HANDLE, ...(shape === 'auto' ? { ifOwnRoot: 'skip' as const } : {}) };
}

/**
 * tc filter slots (priority, handle) of our programs. One program per hook, except the RP's
 * wan where decap (tunnel packets to our port) runs first and hands everything else to encap
 * (packets to the client), which passes what is neither.
 */
export const TC_SLOT = {
  single: { priority: 1, handle: 1 },
  wanDecap: { priority: 1, handle: 1 },
  wanEncap: { priority: 2, handle: 1 },
} as const;

const FAMILIES: Family[] = [4, 6];

/**
 * A sysctl key in dotted form. A dot inside an interface name (a VLAN such as `eth0.100`) is
 * written `/`, as sysctl(8) does: `net.ipv4.conf.eth0/100.forwarding`.
 */
const sysctlKey = (family: Family, group: 'conf' | 'neigh', dev: string, key: string): string =>
  `net.ipv${family}.${group}.${dev.replace(/\./g, '/')}.${key}`;

const sysctl = (family: Family, group: 'conf' | 'neigh', dev: string, key: string, value: string): PlanStep => ({
  kind: 'sysctl',
  key: sysctlKey(family, group, dev, key),
  value,
});

/** A program at `dev`'s tc ingress (the only direction the portals use). */
const ingress = (dev: string, prog: 'encap' | 'decap', slot: { priority: number; handle: number }): PlanStep => ({
  kind: 'bpfFilter',
  dev,
  direction: 'ingress',
  prog,
  ...slot,
});

/**
 * The segmentation loop's veth pair of an instance: `mpf<8 hex digits>a` ⇄ `…b`, the digits a
 * hash (FNV-1a) of the instance name, so that two portals in one namespace get two pairs and
 * the names stay within IFNAMSIZ (15 characters).
 */
export function loopDevices(instance: string): { dev: string; peer: string } {
  return vethPair('mpf', instance);
}

/** `bond_local`'s veth pair of an instance: `mpl<hash>a` ⇄ `…b`, named as the loop's. */
export function bondLocalDevices(instance: string): { dev: string; peer: string } {
  return vethPair('mpl', instance);
}

function vethPair(prefix: string, instance: string): { dev: string; peer: string } {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(instance, 'utf8')) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  const id = h.toString(16).padStart(8, '0');
  return { dev: `${prefix}${id}a`, peer: `${prefix}${id}b` };
}

/** The two halves of each family's address space: more specific than any default route, less
 *  than anything else in main (connected subnets, host routes), so they take exactly the
 *  traffic that would have left by the default route (OpenVPN's def1). */
const HALVES: Record<Family, [string, string]> = { 4: ['0.0.0.0/1', '128.0.0.0/1'], 6: ['::/1', '8000::/1'] };

/** `bond_local`: the LP's source of each family with LAN prefixes, an address of lan inside
 *  one of them (what the NAT translates to the client address). */
function bondLocalSources(cfg: LocalConfig, facts?: PlanFacts): Result<{ v4?: string; v6?: string }, MpError> {
  const out: { v4?: string; v6?: string } = {};
  const have = (facts?.addresses[cfg.lan] ?? []).map((a) => a.split('/')[0]!);
  for (const f of FAMILIES) {
    const prefixes = cfg.lanPrefixes.filter((p) => p.family === f);
    if (prefixes.length === 0) continue;
    const a = have.map((x) => canonicalAddress(x)).find((x) => x !== undefined && x.family === f && prefixes.some((p) => prefixContains(p, x.address)));
    if (a === undefined)
      return err(
        configInvalid(
          'bond_local',
          true,
          `needs an IPv${f} address of ${cfg.lan} inside lan_prefixes (${prefixes.map(formatPrefix).join(', ')}) to send the LP's own traffic from (${cfg.lan} has: ${have.join(', ') || 'none'})`,
        ),
      );
    out[f === 4 ? 'v4' : 'v6'] = a.address;
  }
  return ok(out);
}

/**
 * 9. `bond_local`: the LP's own traffic that no link claims goes through the bond. A veth pair
 * like the loop's: routes lead into mpl…a, encap takes the frames at mpl…b's tc ingress and
 * translates them as a LAN host's (nat.h: the source is the LP's address on a LAN prefix), and
 * decap delivers the replies at mpl…a's ingress, where the route back to the sender points (so
 * strict rp_filter passes, and a firewall sees them come in on the device they went out of).
 * The links' own traffic never gets here: probes and control messages are bound to a link's
 * source, whose rule (step 4) comes before main; the data path redirects outer packets
 * without routing.
 */
function bondLocalSteps(b: BondLocalPlan, mtu: number): PlanStep[] {
  const steps: PlanStep[] = [
    { kind: 'veth', name: b.dev, peer: b.peer },
    //  the entry: MTU = inner MTU, so the LP's sockets make packets that fit the tunnel; no
    //  ARP (frames carry its own MAC, as the loop's entry)
    { kind: 'link', dev: b.dev, mtu, arp: false, up: true },
    { kind: 'link', dev: b.peer, mtu: LOOP_PEER_MTU, up: true },
    //  tx checksumming off: the LP's TCP/UDP GSO is cut and checksummed in software before the
    //  veth, so encap gets wire-size packets with complete checksums (as from a LAN host)
    { kind: 'offload', ifname: b.dev, feature: 'tx-csum', on: false },
    { kind: 'clsact', dev: b.peer },
    ingress(b.peer, 'encap', TC_SLOT.single),
  ];
  //  last, once encap is there: the halves of the default route, with the LP's LAN address as
  //  source (a socket bound to another address still takes them, and is dropped: only LAN
  //  sources are translated)
  for (const [f, src] of [[4, b.v4], [6, b.v6]] as const)
    if (src !== undefined) for (const dst of HALVES[f]) steps.push({ kind: 'route', family: f, dst, dev: b.dev, table: MAIN_TABLE, src });
  return steps;
}

/** MTU of the loop's exit: the largest a veth takes, so it never drops a piece encap should count. */
export const LOOP_PEER_MTU = 65535;

/**
 * The segmentation loop (bpf/loop.h): where encap sends the packets it cannot carry whole, GSO
 * super-packets and IPv4 without DF larger than the inner MTU, for the kernel to cut them.
 * `routed`: the fwmark rule and table that lead IPv4 into it.
 */
function loopSteps(loop: LoopPlan, policy: Policy): PlanStep[] {
  const steps: PlanStep[] = [
    { kind: 'veth', name: loop.dev, peer: loop.peer },
    //  the entry: MTU = inner MTU, so ip_forward fragments to it; no ARP, so routing into it
    //  needs no neighbour (frames carry its own MAC: the exit's tc ingress takes them before
    //  anything looks at the MAC)
    { kind: 'link', dev: loop.dev, mtu: loop.mtu, arp: false, up: true },
    { kind: 'link', dev: loop.peer, mtu: LOOP_PEER_MTU, up: true },
    //  tx checksumming off: then no GSO type is offloadable to the entry, and validate_xmit_skb
    //  segments every GSO skb in software (with checksums) before the veth carries it
    { kind: 'offload', ifname: loop.dev, feature: 'tx-csum', on: false },
    //  the exit: encap takes the pieces at its tc ingress
    { kind: 'clsact', dev: loop.peer },
    ingress(loop.peer, 'encap', TC_SLOT.single),
  ];
  //  the loop mark leads into the loop: a default route in the loop table, IPv4 only (the
  //  kernel does not fragment forwarded IPv6; GSO packets are redirected without routing)
  if (loop.routed)
    steps.push(
      { kind: 'route', family: 4, dst: 'default', dev: loop.dev, table: policy.loopTable },
      { kind: 'rule', family: 4, priority: policy.loopPriority, table: policy.loopTable, fwmark: policy.loopMark },
    );
  return steps;
}

function loopPlan(cfg: PortalConfig, policy: Policy, facts: PlanFacts | undefined): LoopPlan {
  return { ...loopDevices(cfg.instance), mark: policy.loopMark, routed: true, mtu: innerMtu(cfg, (i) => facts?.mtus?.[i]) };
}

const hostRoute = (family: Family, address: string) => `${address}/${family === 4 ? 32 : 128}`;
const isHost = (p: Prefix) => p.len === (p.family === 4 ? 32 : 128);

export function planPortal(cfg: PortalConfig, policy: Policy, facts?: PlanFacts): Result<Plan, MpError> {
  return cfg.role === 'local' ? planLocal(cfg, policy, facts) : ok(planRemote(cfg, policy, facts));
}

// ---- Local Portal ---------------------------------------------------------------------------

function planLocal(cfg: LocalConfig, policy: Policy, facts?: PlanFacts): Result<Plan, MpError> {
  const sources = resolveSources(cfg.links, facts);
  if (sources.isErr()) return err(sources.error);
  const lan = cfg.lan;
  const gateways = cfg.gateway.map((address) => ({ address, family: canonicalAddress(address)!.family }));
  const proxied = new Set(gateways.map((g) => g.family));
  const steps: PlanStep[] = [];

  // 1. The LP is the client's router on lan.
  //    forwarding, both families: the kernel answers ARP (arp_process) and ND (ndisc_recv_ns)
  //    for a proxied address only on a forwarding interface; the ND answer then carries the
  //    IsRouter flag; and a bpf_fib_lookup by encap (for a link without next hop) with lan as
  //    ingress device returns FWD_DISABLED unless lan forwards the outer family (either one).
  for (const f of FAMILIES) steps.push(sysctl(f, 'conf', lan, 'forwarding', '1'));
  //    proxy_delay 0: by default the kernel delays proxied answers to broadcast ARP and
  //    multicast NS by a random 0-0.8 s (meant for several proxies on one segment); we are the
  //    only one, so the client's first packet after its neighbour entry expires would wait.
  //    proxy_ndp: IPv6 consults its proxy entries only with proxy_ndp on (IPv4 always does).
  if (proxied.has(4)) steps.push(sysctl(4, 'neigh', lan, 'proxy_delay', '0'));
  if (proxied.has(6)) steps.push(sysctl(6, 'conf', lan, 'proxy_ndp', '1'), sysctl(6, 'neigh', lan, 'proxy_delay', '0'));

  // 2. GRO off on lan: encap runs at lan's tc ingress, after GRO. A GRO super-packet cannot be
  //    encapsulated once (every segment needs its own sequence number and MAC: DESIGN, "GSO
  //    breaks per-packet sequence numbers"); encap would send each round the segmentation loop
  //    (step 6) to be cut again. Wire-size packets from the start are cheaper.
  steps.push({ kind: 'offload', ifname: lan, feature: 'gro', on: false });

  // 3. Routes in main.
  //    client → lan: decap delivers inner packets with bpf_redirect_neigh to lan, which resolves
  //    the client's MAC by a route lookup for the destination on lan; this route makes that
  //    lookup land on lan even when main's default route leaves by a link. It also gives the
  //    client's ARP requests (source = the client address) a reverse path for rp_filter on lan.
  for (const c of cfg.client) steps.push({ kind: 'route', family: c.family, dst: formatPrefix(c), dev: lan, table: MAIN_TABLE });
  //    IPv4 gateway → lo: arp_process proxies only when ip_route_input for the target succeeds
  //    with a unicast route whose device is NOT the one the request came in on
  //    (`rt->dst.dev != dev`). A route to lan would disable the proxy; main's default route
  //    would do, but the LP may have none. lo qualifies (it must be up: it is on any host, but
  //    starts down in a new namespace) and carries nothing: encap takes the client's packets
  //    to the gateway address before routing. (IPv6 ND has no such condition.) The LP itself
  //    cannot reach the real host behind that address. Checked in a namespace: with this
  //    route on lan, or with none, the client's ARP request stays unanswered.
  for (const g of gateways)
    if (g.family === 4) steps.push({ kind: 'route', family: 4, dst: hostRoute(4, g.address), dev: 'lo', table: MAIN_TABLE });

  // 4. One routing table per link, and the rules that lead the link's own traffic there
  //    (policy/routing.toml explains the numbers).
  //    default route: the link's next hop (or the point-to-point device) with the link's source
  //    as preferred source, so whatever reaches the table leaves by the link with its address.
  //    fwmark rule: the link's mark names its table (data path's FIB lookup, SO_MARK sockets).
  //    source rule: the per-link control socket, bound to the link's source, leaves by the link;
  //    the same rule makes strict rp_filter pass the link's incoming outer packets (the
  //    reverse-path lookup is `from <source>` too), so rp_filter need not be loosened. Inner
  //    packets never meet rp_filter: decap redirects them to lan before routing.
  for (const l of cfg.links) {
    const table = policy.tableBase + l.id;
    const src = sources.value[l.id]!;
    steps.push({
      kind: 'route',
      family: l.family,
      dst: 'default',
      ...(l.gateway !== undefined ? { via: l.gateway } : {}),
      dev: l.interface,
      table,
      src,
    });
    steps.push({ kind: 'rule', family: l.family, priority: policy.fwmarkPriority + l.id, table, fwmark: policy.fwmarkBase + l.id });
    steps.push({ kind: 'rule', family: l.family, priority: policy.rulePriority + l.id, table, from: src });
  }

  // 5. decap at each link's tc ingress: the RP's packets are verified and unwrapped before the
  //    stack sees them; the control messages it passes reach our sockets.
  for (const l of cfg.links)
    steps.push({ kind: 'clsact', dev: l.interface }, ingress(l.interface, 'decap', TC_SLOT.single));
  //    With `shape`, each link device's root is the htb the links' classes hang from, in place
  //    before encap sends anything (bpf/shape.h).
  if (cfg.shape) for (const dev of new Set(cfg.links.map((l) => l.interface))) steps.push(shaperStep(cfg.shape, dev));

  // 6. The segmentation loop, ready before encap can send anything into it.
  const loop = loopPlan(cfg, policy, facts);
  steps.push(...loopSteps(loop, policy));

  // 7. encap at lan's tc ingress: every packet of the client goes into the tunnel. Attached
  //    after decap so the first answers are understood.
  steps.push({ kind: 'clsact', dev: lan }, ingress(lan, 'encap', TC_SLOT.single));

  // 8. Answer ARP/ND for the gateway address(es) on lan: the client sends everything to our MAC.
  //    IPv6 answers carry the IsRouter flag (a host drops a default router that says it is not).
  for (const g of gateways)
    steps.push({ kind: 'neighProxy', family: g.family, address: g.address, dev: lan, ...(g.family === 6 ? { router: true } : {}) });

  // 9. bond_local: the LP's own traffic through the bond (bondLocalSteps).
  if (!cfg.bondLocal) return ok({ role: 'local', instance: cfg.instance, steps, loop });
  const own = bondLocalSources(cfg, facts);
  if (own.isErr()) return err(own.error);
  const bondLocal: BondLocalPlan = { ...bondLocalDevices(cfg.instance), ...own.value };
  steps.push(...bondLocalSteps(bondLocal, loop.mtu));
  return ok({ role: 'local', instance: cfg.instance, steps, loop, bondLocal });
}

/** Each link's outer source address: `source`, or the interface's first usable address of the link's family. */
function resolveSources(links: LinkConfig[], facts?: PlanFacts): Result<string[], MpError> {
  const out: string[] = [];
  for (const l of links) {
    const at = `link[${l.id}].source`;
    let src = l.source;
    if (src === undefined) {
      const found = facts?.addresses[l.interface];
      if (found === undefined)
        return err(
          configInvalid(at, undefined, `is not set and the addresses of ${l.interface} are unknown: set it, or bring ${l.interface} up first`),
        );
      src = found
        .map((a) => canonicalAddress(a.split('/')[0]))
        .find((a) => a !== undefined && a.family === l.family && isUnicast(a.address) && !isLinkLocal(a.address))?.address;
      if (src === undefined)
        return err(configInvalid(at, found, `is not set and ${l.interface} has no IPv${l.family} address that is not link-local`));
    }
    const twin = out.indexOf(src);
    if (twin >= 0) return err(configInvalid(at, src, `resolves to the source of link[${twin}] ("${links[twin]!.name}")`));
    out.push(src);
  }
  return ok(out);
}

// ---- Remote Portal --------------------------------------------------------------------------

function planRemote(cfg: RemoteConfig, policy: Policy, facts?: PlanFacts): Plan {
  const wan = cfg.wan;
  const encapIfaces = [wan, ...cfg.forward];
  // Host addresses of the client on wan's segment get neighbour proxies. A single-interface RP
  // shares its own address (the kernel answers for it already); a shorter prefix is routed to
  // the RP by its provider and needs no answer on the segment.
  const proxied = cfg.singleInterface ? [] : cfg.client.filter(isHost);
  const proxiedFamilies = new Set(proxied.map((c) => c.family));
  const steps: PlanStep[] = [];

  // 1. forwarding, both families, on every interface whose ingress a program runs on: decap and
  //    encap resolve next hops with bpf_fib_lookup, which returns FWD_DISABLED when the
  //    ingress device does not forward (the inner family for decap, the outer one for encap);
  //    and ARP/ND proxying only works on a forwarding interface.
  for (const dev of encapIfaces) for (const f of FAMILIES) steps.push(sysctl(f, 'conf', dev, 'forwarding', '1'));
  //    accept_ra 2 on wan: with forwarding on, accept_ra=1 ignores router advertisements, and an
  //    RP whose IPv6 default route or address comes from them (most clouds) would lose it when
  //    their lifetime ends. The forward interfaces face downstream, where we are the router.
  steps.push(sysctl(6, 'conf', wan, 'accept_ra', '2'));
  //    proxy_delay 0 / proxy_ndp 1: as on the LP (answer at once; IPv6 needs proxy_ndp on).
  if (proxiedFamilies.has(4)) steps.push(sysctl(4, 'neigh', wan, 'proxy_delay', '0'));
  if (proxiedFamilies.has(6)) steps.push(sysctl(6, 'conf', wan, 'proxy_ndp', '1'), sysctl(6, 'neigh', wan, 'proxy_delay', '0'));

  // 2. GRO off where encap runs (wan, forward interfaces): see the LP's step 2.
  for (const dev of encapIfaces) steps.push({ kind: 'offload', ifname: dev, feature: 'gro', on: false });

  //    With `shape`, wan's root is the htb the links' classes hang from (every link leaves by
  //    it), in place before anything can send on a link (bpf/shape.h).
  if (cfg.shape) steps.push(shaperStep(cfg.shape, wan));

  // 3. The segmentation loop, ready before encap can send anything into it. On a
  //    single-interface RP the client's address is the RP's own, and the local table (rule 0,
  //    before any of ours) would deliver a marked packet to the RP itself: encap sends it into
  //    the loop addressed to a stand-in (192.0.0.8) and gives its pieces the address back when
  //    they return (bpf/loop.h).
  const loop = loopPlan(cfg, policy, facts);
  steps.push(...loopSteps(loop, policy));

  // 4. Programs: on wan, decap (tunnel port) first, then encap (to the client); encap alone on
  //    each forward interface.
  steps.push(
    { kind: 'clsact', dev: wan },
    ingress(wan, 'decap', TC_SLOT.wanDecap),
    ingress(wan, 'encap', TC_SLOT.wanEncap),
  );
  for (const dev of cfg.forward)
    steps.push({ kind: 'clsact', dev }, ingress(dev, 'encap', TC_SLOT.single));

  // 5. Answer ARP/ND for the client's address on wan, so the upstream router delivers its
  //    packets to us. IPv4 first needs a route to it leaving by another device than wan (the
  //    arp_process condition, see the LP's step 3): the connected route of wan's subnet would
  //    otherwise match. lo carries nothing: encap takes the client's packets at wan ingress.
  for (const c of proxied)
    if (c.family === 4) steps.push({ kind: 'route', family: 4, dst: formatPrefix(c), dev: 'lo', table: MAIN_TABLE });
  for (const c of proxied) steps.push({ kind: 'neighProxy', family: c.family, address: c.address, dev: wan });

  return { role: 'remote', instance: cfg.instance, steps, loop };
}
