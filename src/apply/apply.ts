// Apply a plan: an idempotent reconcile through netlink, /proc/sys and the native helper.
// Every change that was not already in place is recorded in an undo log (written to disk after
// each step), so `down` — or the rollback of a failed `up` — removes exactly what mpctl made and
// restores every value it changed, in reverse order. Things that already existed are left alone.
import { err, ok, type Result } from 'neverthrow';
import { configInvalid, type MpError } from '../errors.js';
import { ethtoolGet, ethtoolSet, type EthtoolFeature } from '../native/libmpctl.js';
import type { RouteSpec, Rtnl, RuleSpec } from '../netlink/rtnl.js';
import type { PlanStep } from '../plan/types.js';
import { sysctlGet, sysctlSet } from '../sysctl.js';

export type Undo =
  | { kind: 'sysctl'; key: string; old: string }
  | { kind: 'offload'; ifname: string; feature: EthtoolFeature; old: boolean }
  | { kind: 'veth'; name: string }
  | { kind: 'link'; dev: string; old: { mtu?: number; arp?: boolean; up?: boolean } }
  | { kind: 'route'; spec: RouteSpec }
  | { kind: 'rule'; spec: RuleSpec }
  | { kind: 'neighProxy'; address: string; dev: string }
  | { kind: 'clsact'; dev: string }
  | { kind: 'shaper'; dev: string; handle: number }
  | { kind: 'bpfFilter'; dev: string; direction: 'ingress' | 'egress'; priority: number; handle: number };

/** What bpfFilter steps need: the portal's loaded object (see datapath.ts). */
export interface FilterPort {
  attach(step: Extract<PlanStep, { kind: 'bpfFilter' }>): Promise<Result<void, MpError>>;
  detach(u: Extract<Undo, { kind: 'bpfFilter' }>): Promise<Result<void, MpError>>;
}

export interface ApplyEnv {
  rt: Rtnl;
  /** network namespace to act in (null: the process's own) */
  ns: string | null;
  filters: FilterPort;
  /** called after every recorded change, to persist the undo log */
  record: (log: Undo[]) => Promise<Result<void, MpError>>;
}

const exists = (e: MpError): boolean => e.kind === 'NetlinkRejected' && e.errno === 'EEXIST';
const gone = (e: MpError): boolean =>
  (e.kind === 'NetlinkRejected' && (e.errno === 'ENOENT' || e.errno === 'ESRCH' || e.errno === 'EADDRNOTAVAIL')) || e.kind === 'NotFound';

async function applyStep(env: ApplyEnv, s: PlanStep): Promise<Result<Undo | null, MpError>> {
  switch (s.kind) {
    case 'sysctl': {
      const old = sysctlGet(env.ns, s.key);
      if (old.isErr()) return err(old.error);
      if (old.value === s.value) return ok(null);
      return sysctlSet(env.ns, s.key, s.value).map(() => ({ kind: 'sysctl', key: s.key, old: old.value }) as const);
    }
    case 'offload': {
      const old = ethtoolGet(s.ifname, s.feature);
      if (old.isErr()) return err(old.error);
      if (old.value === s.on) return ok(null);
      return ethtoolSet(s.ifname, s.feature, s.on).map(() => ({ kind: 'offload', ifname: s.ifname, feature: s.feature, old: old.value }) as const);
    }
    case 'veth': {
      // one that exists already (of an earlier run that lost its record, or someone's) is left
      // alone on down; the link steps that follow still set it up as the plan says
      const r = await env.rt.createVeth(s.name, s.peer, null);
      if (r.isErr()) return exists(r.error) ? ok(null) : err(r.error);
      return ok({ kind: 'veth', name: s.name });
    }
    case 'link': {
      const links = await env.rt.listLinks();
      if (links.isErr()) return err(links.error);
      const cur = links.value.find((l) => l.name === s.dev);
      if (!cur) return err({ kind: 'NotFound', what: 'interface', message: `no interface ${s.dev}` });
      const want: { mtu?: number; arp?: boolean; up?: boolean } = {};
      const old: typeof want = {};
      if (s.mtu !== undefined && s.mtu !== cur.mtu) [want.mtu, old.mtu] = [s.mtu, cur.mtu];
      if (s.arp !== undefined && s.arp !== cur.arp) [want.arp, old.arp] = [s.arp, cur.arp];
      if (s.up !== undefined && s.up !== cur.up) [want.up, old.up] = [s.up, cur.up];
      if (!Object.keys(want).length) return ok(null);
      return (await env.rt.setLink(s.dev, want)).map(() => ({ kind: 'link', dev: s.dev, old }) as const);
    }
    case 'route': {
      const spec: RouteSpec = { dst: s.dst, family: s.family, table: s.table, ...(s.via ? { via: s.via } : {}), ...(s.dev ? { dev: s.dev } : {}), ...(s.src ? { src: s.src } : {}) };
      const r = await env.rt.addRoute(spec);
      if (r.isErr()) return exists(r.error) ? ok(null) : err(r.error);
      return ok({ kind: 'route', spec });
    }
    case 'rule': {
      const spec: RuleSpec = { family: s.family, priority: s.priority, table: s.table, ...(s.from ? { from: s.from } : {}), ...(s.fwmark !== undefined ? { fwmark: s.fwmark } : {}) };
      const r = await env.rt.addRule(spec);
      if (r.isErr()) return exists(r.error) ? ok(null) : err(r.error);
      return ok({ kind: 'rule', spec });
    }
    case 'neighProxy': {
      const r = await env.rt.addNeighProxy(s.address, s.dev, s.router ?? false);
      if (r.isErr()) return exists(r.error) ? ok(null) : err(r.error);
      return ok({ kind: 'neighProxy', address: s.address, dev: s.dev });
    }
    case 'clsact': {
      const has = await env.rt.hasClsact(s.dev);
      if (has.isErr()) return err(has.error);
      if (has.value) return ok(null);
      return (await env.rt.addClsact(s.dev)).map(() => ({ kind: 'clsact', dev: s.dev }) as const);
    }
    case 'shaper': {
      // ours already (an adopted data path's): kept, classes and all; the kernel's default root
      // (handle 0): replaced; an operator's: left alone, and up fails saying so
      const root = await env.rt.rootQdisc(s.dev);
      if (root.isErr()) return err(root.error);
      if (root.value && root.value.kind === 'htb' && root.value.handle === s.handle) return ok(null);
      if (root.value && root.value.handle !== 0 && s.ifOwnRoot === 'skip') return ok(null); // shape = "auto": the run leaves its links unshaped
      if (root.value && root.value.handle !== 0)
        return err(configInvalid('shape', true, `${s.dev} has a root qdisc of its own (${root.value.kind}, handle ${(root.value.handle >>> 16).toString(16)}:), which per-link shaping would replace: remove it, or set shape = false`));
      return (await env.rt.setHtbRoot(s.dev, s.handle >>> 16, undefined, root.value)).map(() => ({ kind: 'shaper', dev: s.dev, handle: s.handle }) as const);
    }
    case 'bpfFilter': {
      const r = await env.filters.attach(s);
      return r.map(() => ({ kind: 'bpfFilter', dev: s.dev, direction: s.direction, priority: s.priority, handle: s.handle }) as const);
    }
  }
}

export async function revert(env: Omit<ApplyEnv, 'record'>, u: Undo): Promise<Result<void, MpError>> {
  let r: Result<void, MpError>;
  switch (u.kind) {
    case 'sysctl':
      r = sysctlSet(env.ns, u.key, u.old);
      break;
    case 'offload':
      r = ethtoolSet(u.ifname, u.feature, u.old);
      break;
    case 'veth':
      r = await env.rt.deleteLink(u.name);
      break;
    case 'link':
      r = await env.rt.setLink(u.dev, u.old);
      break;
    case 'route':
      r = await env.rt.deleteRoute(u.spec);
      break;
    case 'rule':
      r = await env.rt.deleteRule(u.spec);
      break;
    case 'neighProxy':
      r = await env.rt.deleteNeighProxy(u.address, u.dev);
      break;
    case 'clsact':
      r = await env.rt.deleteClsact(u.dev);
      break;
    case 'shaper':
      r = await env.rt.deleteRootQdisc(u.dev, u.handle);
      break;
    case 'bpfFilter':
      r = await env.filters.detach(u);
      break;
  }
  // already gone (an interface that disappeared takes its routes and filters with it) is fine
  return r.isErr() && gone(r.error) ? ok(undefined) : r;
}

/** Applies the steps in order; on failure reverts what this call changed and returns the
 *  step's error — or, when the rollback failed too, UndoIncomplete naming what is left in `log`. */
export async function applyPlan(env: ApplyEnv, steps: PlanStep[], log: Undo[] = []): Promise<Result<Undo[], MpError>> {
  const rollback = async (e: MpError): Promise<Result<Undo[], MpError>> => {
    const r = await revertAll(env, log);
    return err(r.isErr() && r.error.kind === 'UndoIncomplete' ? { ...r.error, after: e } : e);
  };
  for (const s of steps) {
    const r = await applyStep(env, s);
    if (r.isErr()) return rollback(r.error);
    if (r.value) {
      log.push(r.value);
      // a change the record does not hold could not be undone by `down`: take it back now
      const saved = await env.record(log);
      if (saved.isErr()) return rollback(saved.error);
    }
  }
  return ok(log);
}

/** A short name for an undo entry, for messages: `route 10.0.0.0/8 table 101`. */
export function describeUndo(u: Undo): string {
  switch (u.kind) {
    case 'sysctl':
      return `sysctl ${u.key}=${u.old}`;
    case 'offload':
      return `ethtool ${u.ifname} ${u.feature}`;
    case 'veth':
      return `veth ${u.name}`;
    case 'link':
      return `link ${u.dev}`;
    case 'route':
      return `route ${u.spec.dst} table ${u.spec.table}`;
    case 'rule':
      return `rule priority ${u.spec.priority}`;
    case 'neighProxy':
      return `proxy ${u.address} dev ${u.dev}`;
    case 'clsact':
      return `clsact ${u.dev}`;
    case 'shaper':
      return `htb ${(u.handle >>> 16).toString(16)}: on ${u.dev}`;
    case 'bpfFilter':
      return `filter ${u.dev} ${u.direction}`;
  }
}

/**
 * Reverts an undo log newest first and keeps going past failures. What could not be reverted
 * stays in `log` (in its order) and in the record, so `down` tries it again; the error is then
 * UndoIncomplete naming those entries, with the first failure as its cause.
 */
export async function revertAll(env: Omit<ApplyEnv, 'record'> & { record?: ApplyEnv['record'] }, log: Undo[]): Promise<Result<void, MpError>> {
  const kept: Undo[] = [];
  let cause: MpError | null = null;
  while (log.length) {
    const u = log.pop()!;
    const r = await revert(env, u);
    if (r.isErr()) {
      kept.unshift(u);
      cause ??= r.error;
    }
    const saved = await env.record?.([...log, ...kept]);
    if (saved?.isErr()) cause ??= saved.error;
  }
  log.push(...kept);
  if (!cause) return ok(undefined);
  return err({ kind: 'UndoIncomplete', remaining: kept.map(describeUndo), cause });
}
