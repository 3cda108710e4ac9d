// The desired kernel state of a portal, as data. `plan` builds it from a validated config,
// `render` prints it as ip/tc/sysctl lines (--dry-run, golden tests), `apply` reconciles it
// through netlink and records what it created so `down` removes exactly that.

export type Family = 4 | 6;

export type PlanStep =
  /** /proc/sys value; apply records the old value and restores it on down */
  | { kind: 'sysctl'; key: string; value: string }
  /** an ethtool offload feature of an interface (GRO off on encap ingress devices, tx
   *  checksumming off on the segmentation loop's entry) */
  | { kind: 'offload'; ifname: string; feature: 'gro' | 'gso' | 'tso' | 'tx-csum'; on: boolean }
  /** a veth pair `name` ⇄ `peer` in the portal's namespace (the segmentation loop); apply
   *  deletes it on down only if it created it */
  | { kind: 'veth'; name: string; peer: string }
  /** settings of an interface; apply restores the ones it changed on down */
  | { kind: 'link'; dev: string; mtu?: number; arp?: boolean; up?: boolean }
  /** a route; `table` 254 = main */
  | { kind: 'route'; family: Family; dst: string; via?: string; dev?: string; table: number; src?: string }
  /** a policy rule: `from <src> lookup <table>` (and/or fwmark) at `priority` */
  | { kind: 'rule'; family: Family; priority: number; table: number; from?: string; fwmark?: number }
  /** neighbour proxy entry: answer ARP/ND for `address` on `dev`; `router` sets the IsRouter
   *  flag of the proxied IPv6 neighbour advertisements (NTF_ROUTER on the entry) */
  | { kind: 'neighProxy'; family: Family; address: string; dev: string; router?: boolean }
  /** clsact qdisc on `dev` (created once for all our filters) */
  | { kind: 'clsact'; dev: string }
  /** per-link shaping (`shape = true`): an htb root qdisc `handle` on a device the tunnel's
   *  data leaves by, its classes (one per link, at the link's pacing rate) the controllers' at
   *  run time (src/run/shaper.ts); unclassified traffic goes out unshaped. Apply replaces only
   *  the kernel's default root (handle 0), never an operator's: with `ifOwnRoot` (shape =
   *  "auto") an operator's root is kept and the step does nothing, else up fails there */
  | { kind: 'shaper'; dev: string; handle: number; ifOwnRoot?: 'skip' }
  /** a tc BPF filter: program `prog` of the portal's object at `dev` ingress/egress */
  | { kind: 'bpfFilter'; dev: string; direction: 'ingress' | 'egress'; prog: 'encap' | 'decap'; priority: number; handle: number };

export interface Plan {
  role: 'local' | 'remote';
  /** instance name: pins live under /run/mpctl/bpf/<instance>, state under /run/mpctl/portal/<instance> */
  instance: string;
  steps: PlanStep[];
  /** what the data path's config needs to know of the segmentation loop (bpf/loop.h) */
  loop: LoopPlan;
  /** LP `bond_local`: the device the LP's own traffic is routed to (plan step 9) */
  bondLocal?: BondLocalPlan;
}

export interface BondLocalPlan {
  /** mpl…a: the half-default routes of the LP's own traffic lead here; decap delivers the
   *  replies at its ingress (bpf/nat.h) */
  dev: string;
  /** mpl…b: encap at its tc ingress takes what leaves mpl…a */
  peer: string;
  /** the LP's source address of each family (an address of lan inside a LAN prefix) */
  v4?: string;
  v6?: string;
}

export interface LoopPlan {
  /** mpf…a: GSO super-packets are redirected to its egress, routed packets fragmented to its MTU */
  dev: string;
  /** mpf…b: where the pieces come back (encap at its tc ingress) */
  peer: string;
  /** skb->mark of a packet in the loop */
  mark: number;
  /** the plan routes the mark into the loop (IPv4 without DF is fragmented there) */
  routed: boolean;
  /** MTU of `dev`: the tunnel's inner MTU */
  mtu: number;
}
