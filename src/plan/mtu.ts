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
 * LP: the largest of (link MTU − its overhead): a packet goes only on links it fits (bpf/pmtu.h),
 * so the tunnel carries what its largest link carries. RP: wan's MTU less the largest overhead
 * (IPv6 + UDP) until it learns its links from the LP's probes (runtime: tunnelMtus). At most
 * MP_NH_MAX_BODY either way: a longer inner packet could not be authenticated (bpf/mp.h).
 */
export function innerMtu(cfg: PortalConfig, mtuOf: (ifname: string) => number | undefined): number {
  const mtu = (ifname: string) => mtuOf(ifname) ?? DEFAULT_MTU;
  if (cfg.role === 'remote') return Math.min(mtu(cfg.wan) - overhead(6, 'udp'), MP_NH_MAX_BODY);
  return Math.min(Math.max(...cfg.links.map((l) => mtu(l.interface) - overhead(l.family, l.carrier))), MP_NH_MAX_BODY);
}

/** One up link's outer path MTUs, both directions (up: LP → RP), as both portals know them. */
export interface LinkMtu {
  family: 4 | 6;
  carrier: 'udp' | 'ip';
  up: number;
  down: number;
}

/** TCP segments are never clamped below this inner size for a small link's sake (MSS 536): a
 * link smaller than that carries only what fits. */
export const CLAMP_FLOOR = 576;

/**
 * The tunnel's inner MTUs from the up links' outer path MTUs (bpf/pmtu.h schedules each packet
 * only where it fits):
 *   up / down  the largest inner packet some link carries in that direction: the LP's (up) and
 *              the RP's (down) inner_mtu, above which a packet is answered "too big";
 *   clamp      the TCP MSS clamp's inner size: the smallest link's inner MTU (not below
 *              CLAMP_FLOOR) in either direction, so that full-size segments fit every link and a
 *              bulk flow spreads over all of them; the same number on both portals, which compute
 *              it from the same figures (the LP's probes; the RP reads them from its requests).
 * null: no link up (keep what was written).
 */
export function tunnelMtus(links: LinkMtu[]): { up: number; down: number; clamp: number } | null {
  if (links.length === 0) return null;
  const inner = (l: LinkMtu, d: 'up' | 'down') => Math.min(l[d] - overhead(l.family, l.carrier), MP_NH_MAX_BODY);
  const dir = (d: 'up' | 'down') => {
    const all = links.map((l) => inner(l, d));
    const max = Math.max(...all);
    const fit = all.filter((m) => m >= CLAMP_FLOOR);
    return { max, clamp: fit.length ? Math.min(...fit) : max };
  };
  const up = dir('up');
  const down = dir('down');
  return { up: up.max, down: down.max, clamp: Math.min(up.clamp, down.clamp) };
}
