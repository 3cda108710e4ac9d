// The routed hop in front of each end host (routed-hosts mode, topology.ts ROUTERS): what makes a
// router namespace answer for the far side, and the addresses the bond adds on the client's side.
// The routes and proxy entries themselves are planned in topology.ts; this applies them.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { openRtnl, type Rtnl } from '../netlink/rtnl.js';
import { sysctlSet } from '../sysctl.js';
import { readState } from './state.js';
import { buildTopology, hostRoute, nsName, portalProxy, ROUTERS, type NdpProxy, type RouterPlan } from './topology.js';

/** A router's sysctls besides forwarding: proxy ARP and proxy NDP on every interface. Set before
 * the interfaces exist, which take the defaults. */
export const ROUTER_SYSCTLS: [string, number][] = [
  ['net.ipv4.conf.all.proxy_arp', 1],
  ['net.ipv4.conf.default.proxy_arp', 1],
  ['net.ipv6.conf.all.proxy_ndp', 1],
  ['net.ipv6.conf.default.proxy_ndp', 1],
];

/** An EEXIST answer: what a second bond start in the same lab gets for what the first added. */
const exists = (e: MpError): boolean => e.kind === 'NetlinkRejected' && e.errno === 'EEXIST';

/**
 * The rest of a router, once its interfaces exist: no proxy delay on either side (by default a
 * proxied answer to a broadcast ARP request or a multicast neighbour solicitation waits up to
 * 0.8 s, which would stall the first packet of every neighbour through the hop; a namespace
 * other than the first has no neigh.default to set it in beforehand), then its proxy NDP entries.
 */
export async function configureRouter(ns: string, rt: Rtnl, plan: RouterPlan): Promise<Result<void, MpError>> {
  for (const dev of [plan.hostSide, plan.portalSide])
    for (const fam of ['ipv4', 'ipv6']) {
      const r = sysctlSet(ns, `net.${fam}.neigh.${dev}.proxy_delay`, 0);
      if (r.isErr()) return err(r.error);
    }
  return addNdpProxies(rt, plan.ndpProxy);
}

/** Adds proxy NDP entries; one that is there already is fine. */
async function addNdpProxies(rt: Rtnl, entries: readonly NdpProxy[]): Promise<Result<void, MpError>> {
  for (const p of entries) {
    const r = await rt.addNeighProxy(p.address, p.dev, p.router);
    if (r.isErr() && !exists(r.error)) return err(r.error);
  }
  return ok(undefined);
}

/**
 * Tells the client's router about addresses the bond gives the client (`hosts`) and the gateway
 * it routes through (`gateways`, on the portal's side): host routes and proxy NDP entries, as the
 * topology has for the lab's own addresses. Nothing when the lab has no routed hosts.
 */
export async function routeClientAddresses(lab: string, links: number, hosts: readonly string[], gateways: readonly string[]): Promise<Result<void, MpError>> {
  const st = await readState(lab);
  if (st.isErr()) return err(st.error);
  if (!st.value.routedHosts) return ok(undefined);
  const plan = buildTopology(lab, links, { lan: st.value.lan ?? false, routedHosts: true }).nodes.find((n) => n.node === ROUTERS.client)?.router;
  if (!plan) return err({ kind: 'Bug', message: `lab ${lab} has no ${ROUTERS.client}` });
  const r = openRtnl(nsName(lab, ROUTERS.client));
  if (r.isErr()) return err(r.error);
  const rt = r.value;
  try {
    const proxies: NdpProxy[] = [];
    for (const a of hosts) {
      const h = hostRoute(plan, a);
      const added = await rt.addRoute(h.route);
      if (added.isErr() && !exists(added.error)) return err(added.error);
      if (h.proxy) proxies.push(h.proxy);
    }
    for (const g of gateways) {
      const p = portalProxy(plan, g);
      if (p) proxies.push(p);
    }
    return await addNdpProxies(rt, proxies);
  } finally {
    rt.close();
  }
}
