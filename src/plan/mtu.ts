// The tunnel's inner MTU: the largest inner packet that every link carries whole once the outer
// headers are added. Pure, so that the plan (the loop device's MTU) and the data path's config
// (inner_mtu, the MSS clamps) compute it from the same interface MTUs.
import type { PortalConfig } from '../config/types.js';
import { MP_HDR_LEN, MP_NH_MAX_BODY } from '../datapath/abi.js';

/** An interface whose MTU is unknown (a dry run without facts) is taken to be Ethernet's. */
export const DEFAULT_MTU = 1500;

/** Outer overhead of a link: IP + UDP (udp carrier) + the mpctl header. */
export const overhead = (family: 4 | 6, carrier: 'udp' | 'ip'): number => (family === 4 ? 20 : 40) + (carrier === 'udp' ? 8 : 0) + MP_HDR_LEN;

/**
 * LP: the smallest of (link MTU − its overhead). RP: wan's MTU less the largest overhead (IPv6
 * + UDP): it learns its links from the LP's probes, and answers each in either family. At most
 * MP_NH_MAX_BODY either way: a longer inner packet could not be authenticated (bpf/mp.h).
 */
export function innerMtu(cfg: PortalConfig, mtuOf: (ifname: string) => number | undefined): number {
  const mtu = (ifname: string) => mtuOf(ifname) ?? DEFAULT_MTU;
  if (cfg.role === 'remote') return Math.min(mtu(cfg.wan) - overhead(6, 'udp'), MP_NH_MAX_BODY);
  return Math.min(...cfg.links.map((l) => mtu(l.interface) - overhead(l.family, l.carrier)), MP_NH_MAX_BODY);
}
