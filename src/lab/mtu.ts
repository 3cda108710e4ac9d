// The lab's MTU settings of a link (scenario keys `mtu`, `mtu_icmp`, `if_mtu`; `lab set`):
//
//   if_mtu        the link's interface MTU. up: the LP's wanK and the isp node's `a` (the veth
//                 the up direction enters the ISP by); down: inet's ispK and the isp node's `b`.
//   mtu           a smaller MTU inside the ISP in that direction, below the interface MTU:
//     mtu_icmp    true (default): the ISP's router answers a too-big packet with ICMP
//                 "fragmentation needed" / "packet too big", as a router should. inet routes the
//                 link's traffic through a table whose route carries that MTU (locked: IPv6
//                 forwarding honours only a locked route MTU):
//                   up    rule iif ispK → table 1000+K: the RP's segment, mtu lock M
//                   down  rule iif rp, to the LP's link K prefixes → table 2000+K: ispK, mtu lock M
//                 false: the too-big packet vanishes (linkem mtu=M: a path MTU black hole).
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { run } from './namespaces.js';
import type { DirSettings } from './params.js';
import { nsName } from './topology.js';

type Direction = 'up' | 'down';

const ipIn = (lab: string, node: string, args: string[]) => run('ip', ['netns', 'exec', nsName(lab, node), 'ip', ...args]);

/** The policy-routing table (and rule preference) of link k's ICMP-answering hop in `dir`. */
export const hopTable = (k: number, dir: Direction): number => (dir === 'up' ? 1000 : 2000) + k;

/** The routes and rules of link k's hop in `dir`: removed, then added again with mtu (null: none). */
async function routerHop(lab: string, k: number, dir: Direction, mtu: number | null): Promise<Result<void, MpError>> {
  const t = String(hopTable(k, dir));
  const hex = k.toString(16);
  for (const fam of ['-4', '-6']) {
    await ipIn(lab, 'inet', [fam, 'rule', 'del', 'pref', t]); // absent: fine
    await ipIn(lab, 'inet', [fam, 'route', 'flush', 'table', t]);
  }
  if (mtu === null) return ok(undefined);
  const steps: string[][] =
    dir === 'up'
      ? [
          ['-4', 'rule', 'add', 'pref', t, 'iif', `isp${k}`, 'lookup', t],
          ['-6', 'rule', 'add', 'pref', t, 'iif', `isp${k}`, 'lookup', t],
          ['-4', 'route', 'add', '198.51.100.0/24', 'dev', 'rp', 'table', t, 'mtu', 'lock', String(mtu)],
          ['-6', 'route', 'add', '2001:db8:100::/64', 'dev', 'rp', 'table', t, 'mtu', 'lock', String(mtu)],
        ]
      : [
          ['-4', 'rule', 'add', 'pref', t, 'iif', 'rp', 'to', `100.64.${k}.0/24`, 'lookup', t],
          ['-6', 'rule', 'add', 'pref', t, 'iif', 'rp', 'to', `fd00:64:${hex}::/64`, 'lookup', t],
          ['-4', 'route', 'add', `100.64.${k}.0/24`, 'dev', `isp${k}`, 'table', t, 'mtu', 'lock', String(mtu)],
          ['-6', 'route', 'add', `fd00:64:${hex}::/64`, 'dev', `isp${k}`, 'table', t, 'mtu', 'lock', String(mtu)],
        ];
  for (const s of steps) {
    const r = await ipIn(lab, 'inet', s);
    if (r.isErr()) return err(r.error);
  }
  return ok(undefined);
}

/** Interface MTUs of link k in `dir` (null: 1500). */
async function ifMtus(lab: string, k: number, dir: Direction, mtu: number | null): Promise<Result<void, MpError>> {
  const m = String(mtu ?? 1500);
  const ends: [string, string][] = dir === 'up' ? [['lp', `wan${k}`], [`isp${k}`, 'a']] : [['inet', `isp${k}`], [`isp${k}`, 'b']];
  for (const [node, dev] of ends) {
    const r = await ipIn(lab, node, ['link', 'set', 'dev', dev, 'mtu', m]);
    if (r.isErr()) return err(r.error);
  }
  return ok(undefined);
}

/** linkem's `mtu` for the direction: the silent hop (0: none). */
export const silentMtu = (d: DirSettings): number => (d.mtu !== null && !d.mtuIcmp ? d.mtu : 0);

/** Applies link k's MTU settings in `dir`; `prev`: what was applied before (only changes are
 * made; none at lab up for a link without MTU settings). */
export async function applyMtu(lab: string, k: number, dir: Direction, d: DirSettings, prev?: DirSettings): Promise<Result<void, MpError>> {
  const hop = (s: DirSettings | undefined) => (s && s.mtu !== null && s.mtuIcmp ? s.mtu : null);
  if (hop(d) !== hop(prev)) {
    const r = await routerHop(lab, k, dir, hop(d));
    if (r.isErr()) return err(r.error);
  }
  if ((d.ifMtu ?? null) !== (prev?.ifMtu ?? null)) return ifMtus(lab, k, dir, d.ifMtu ?? null);
  return ok(undefined);
}
