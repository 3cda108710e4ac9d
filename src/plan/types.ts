// The desired kernel state of a portal, as data. `plan` builds it from a validated config,
// `render` prints it as ip/tc/sysctl lines (--dry-run, golden tests), `apply` reconciles it
// through netlink and records what it created so `down` removes exactly that.

export type Family = 4 | 6;

export type PlanStep =
  /** /proc/sys value; apply records the old value and restores it on down */
  | { kind: 'sysctl'; key: string; value: string }
  /** an ethtool offload feature of an interface (GRO off on encap ingress devices) */
  | { kind: 'offload'; ifname: string; feature: 'gro' | 'gso' | 'tso'; on: boolean }
  /** a route; `table` 254 = main */
  | { kind: 'route'; family: Family; dst: string; via?: string; dev?: string; table: number; src?: string }
  /** a policy rule: `from <src> lookup <table>` (and/or fwmark) at `priority` */
  | { kind: 'rule'; family: Family; priority: number; table: number; from?: string; fwmark?: number }
  /** neighbour proxy entry: answer ARP/ND for `address` on `dev`; `router` sets the IsRouter
   *  flag of the proxied IPv6 neighbour advertisements (NTF_ROUTER on the entry) */
  | { kind: 'neighProxy'; family: Family; address: string; dev: string; router?: boolean }
  /** clsact qdisc on `dev` (created once for all our filters) */
  | { kind: 'clsact'; dev: string }
  /** a tc BPF filter: program `prog` of the portal's object at `dev` ingress/egress */
  | { kind: 'bpfFilter'; dev: string; direction: 'ingress' | 'egress'; prog: 'encap' | 'decap'; priority: number; handle: number };

export interface Plan {
  role: 'local' | 'remote';
  /** instance name: pins live under /run/mpctl/bpf/<instance>, state under /run/mpctl/portal/<instance> */
  instance: string;
  steps: PlanStep[];
}
