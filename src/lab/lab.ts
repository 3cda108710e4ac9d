// `mpctl lab up|down|status|set|exec`: builds the topology of topology.ts in network namespaces,
// puts a link emulator (linkem) on every ISP link and a tbf for its rate, and tears all of it
// down again. A failed `up` rolls back through `down`, which is total and safe to repeat.
import { spawn } from 'node:child_process';
import { packagePath } from '../paths.js';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { openRtnl, type AddrInfo, type Rtnl } from '../netlink/rtnl.js';
import { ethtoolSet } from '../native/libmpctl.js';
import { withNetns } from '../native/netns.js';
import { sysctlSet } from '../sysctl.js';
import * as emu from './emulator.js';
import {
  run,
  createNamespace,
  deleteNamespace,
  listNamespaces,
  nsExists,
  spawnDetached,
  waitForLog,
} from './namespaces.js';
import { burstBytes, queueBytes, type DirSettings, type LinkSettings } from './params.js';
import { applyPatch, type DirPatch, type Scenario } from './scenario.js';
import { applyMtu, silentMtu } from './mtu.js';
import { rm } from 'node:fs/promises';
import { logFile } from '../apply/state.js';
import { portalInstance, startBond, stopBond, type BondOptions } from './bond.js';
import { labDir, listLabs, readState, removeState, writeState, type LabState } from './state.js';
import { hasSchedule, runTimeline } from './timeline.js';
import { configureRouter, ROUTER_SYSCTLS } from './hop.js';
import { buildTopology, hostsFile, LAB_NAME_RE, linkNode, nsName, nsPrefix, SHAPE_NEEDS_HOP, vethPairs, type Topology } from './topology.js';

export type Direction = 'up' | 'down';

/** The CLI the lab runs inside its namespaces (portals): this package's bin/mpctl. */
export const mpctlPath = (): string => packagePath('bin', 'mpctl');

export function checkLabName(name: string): Result<string, MpError> {
  return LAB_NAME_RE.test(name)
    ? ok(name)
    : err({ kind: 'ConfigInvalid', path: '--name', value: name, message: 'lab names are 1-24 lowercase letters, digits or "_"' });
}

async function withRtnl<T>(ns: string, f: (r: Rtnl) => Promise<Result<T, MpError>>): Promise<Result<T, MpError>> {
  const r = openRtnl(ns);
  if (r.isErr()) return err(r.error);
  try {
    return await f(r.value);
  } finally {
    r.value.close();
  }
}

/**
 * Sysctls of a new namespace, set before its interfaces exist so they inherit the defaults:
 * IPv6 off on the emulator's ports, no DAD delay elsewhere, forwarding on routers, proxy ARP
 * and NDP on the routers in front of end hosts (routed-hosts mode).
 */
function nodeSysctls(node: Topology['nodes'][number]): Result<void, MpError> {
  const isLink = node.node.startsWith('isp');
  const sysctls: [string, string | number][] = isLink
    ? [
        ['net.ipv6.conf.all.disable_ipv6', 1],
        ['net.ipv6.conf.default.disable_ipv6', 1],
      ]
    : [
        ['net.ipv6.conf.all.accept_dad', 0],
        ['net.ipv6.conf.default.accept_dad', 0],
        ['net.ipv4.ip_forward', node.forwarding ? 1 : 0],
        ['net.ipv6.conf.all.forwarding', node.forwarding ? 1 : 0],
        ...(node.router ? ROUTER_SYSCTLS : []),
      ];
  for (const [k, v] of sysctls) {
    const r = sysctlSet(node.ns, k, v);
    if (r.isErr()) return err(r.error);
  }
  return ok(undefined);
}

/** Brings a node's interfaces up with addresses and routes, as a wire-speed L3 host. */
async function configureNode(node: Topology['nodes'][number]): Promise<Result<void, MpError>> {
  return withRtnl(node.ns, async (rt) => {
    const lo = await rt.setLink('lo', { up: true });
    if (lo.isErr()) return err(lo.error);
    if (node.bridge) {
      // a switch (whole-LAN mode's lansw): STP off, so its ports forward at once
      const br = (await rt.createBridge('br0')).andThen(() => ok(undefined));
      if (br.isErr()) return err(br.error);
      for (const port of node.bridge) {
        const m = await rt.setMaster(port, 'br0');
        if (m.isErr()) return err(m.error);
      }
      const up = await rt.setLink('br0', { up: true });
      if (up.isErr()) return err(up.error);
    }
    for (const i of node.ifaces) {
      // wire-size frames everywhere: a real wire has no TSO/GRO super-packets (DESIGN.md)
      for (const f of ['tso', 'gso', 'gro'] as const) {
        const r = withNetns(node.ns, () => ethtoolSet(i.name, f, false)).andThen((x) => x);
        if (r.isErr()) return err(r.error);
      }
      for (const cidr of [i.v4, i.v6, ...(i.extra ?? [])]) {
        if (!cidr) continue;
        const r = await rt.addAddress(i.name, cidr, { nodad: true });
        if (r.isErr()) return err(r.error);
      }
      const up = await rt.setLink(i.name, { up: true });
      if (up.isErr()) return err(up.error);
    }
    for (const route of node.routes) {
      const r = await rt.addRoute(route);
      if (r.isErr()) return err(r.error);
    }
    return node.router ? configureRouter(node.ns, rt, node.router) : ok(undefined);
  });
}

/** Where each direction is shaped: `up` (lp → rp) leaves the isp node through `b`, `down` through `a`. */
const egressOf = (dir: Direction): string => (dir === 'up' ? 'b' : 'a');

/**
 * Puts one direction's settings in place: delay, jitter, loss, outage and the trace in linkem,
 * the rate in the tbf. Given `before` (the settings it replaces), a running trace keeps running
 * unless `restartTrace` (a change that names the trace): linkem starts a trace over whenever it
 * is given one.
 */
async function applyDirection(lab: string, link: LinkSettings, dir: Direction, before?: DirSettings, restartTrace = false): Promise<Result<void, MpError>> {
  const ns = nsName(lab, link.node);
  const d = link[dir];
  const traceChanged = before === undefined || restartTrace || before.trace?.file !== d.trace?.file;
  const e = await emu.setParams(ns, dir, {
    delayUs: d.delayUs,
    jitterUs: d.jitterUs,
    lossPpm: d.lossPpm,
    down: d.down,
    qlimit: d.trace ? queueBytes(d.queue, d.trace.meanBps) : 0,
    ...(traceChanged ? { trace: d.trace?.file ?? null } : {}),
    mtu: silentMtu(d),
  });
  if (e.isErr()) return err(e.error);
  const m = await applyMtu(lab, Number(link.node.replace(/^isp/, '')), dir, d, before);
  if (m.isErr()) return err(m.error);
  const tbf =
    d.rateBps === null ? null : { rateBps: d.rateBps, burstBytes: burstBytes(d.rateBps), limitBytes: queueBytes(d.queue, d.rateBps) };
  return withRtnl(ns, (rt) => rt.setTbf(egressOf(dir), tbf));
}

async function startEmulator(lab: string, k: number): Promise<Result<void, MpError>> {
  const ns = nsName(lab, linkNode(k));
  const log = `${labDir(lab)}/linkem-${linkNode(k)}.log`;
  const prio = emu.labRtPrio();
  if (prio.isErr()) return err(prio.error);
  const pid = await spawnDetached(ns, [emu.linkemPath(), ...emu.spawnArgs('a', 'b', k, prio.value)], log);
  if (pid.isErr()) return err(pid.error);
  return waitForLog(log, 'linkem ready', pid.value);
}

export interface UpOptions {
  name: string;
  scenario: Scenario;
  /** start both portals (the bonded lab); false = the bare lab */
  bond?: boolean;
  /** the RP shares its own address with the client */
  singleInterface?: boolean;
  /** every second link over IPv6 (mixed underlays) */
  ipv6Underlay?: boolean;
  /** the raw IP carrier on every second link, or on the links listed (BondOptions.ipCarrier) */
  ipCarrier?: boolean | readonly number[];
  /** start `mpctl lab schedule` for the links' schedules (default true; the benchmarks play
   * the schedules themselves, from each flow's start) */
  schedules?: boolean;
  /** LP config extras (bond.ts BondOptions.lp) */
  lp?: BondOptions['lp'];
  /** whole-LAN mode: a LAN switch with host1 and host2 (topology.ts), the LP translating them */
  lan?: boolean;
  /** both portals shape their links (`shape = true`; bond.ts); absent: as routedHosts (the
   * product's default, `shape = "auto"`, is what a lab with routed hosts runs). Needs routed
   * hosts: without the hop the end hosts' TCP small queues would count the portals' queues as
   * their own (labUp refuses shape with routedHosts false) */
  shape?: boolean;
  /** routed-hosts mode (absent: on): a router one IP hop in front of each end host's side
   * (topology.ts ROUTERS), so the end hosts' skbs are orphaned before a portal queues them (TCP
   * small queues), as on a real LAN; false: the end hosts' veths straight on the portals */
  routedHosts?: boolean;
}

export async function labUp(o: UpOptions): Promise<Result<LabState, MpError>> {
  const name = checkLabName(o.name);
  if (name.isErr()) return err(name.error);
  if ((await readState(o.name)).isOk() || (await listNamespaces(nsPrefix(o.name))).length > 0)
    return err({ kind: 'Conflict', what: 'lab', message: `lab "${o.name}" is already up (mpctl lab down --name ${o.name} first)` });
  const routedHosts = o.routedHosts ?? true;
  if (o.shape === true && !routedHosts)
    return err({ kind: 'Conflict', what: 'lab', message: `a lab that shapes needs routed hosts (--shape with --no-routed-hosts): ${SHAPE_NEEDS_HOP}` });
  const shape = o.shape ?? routedHosts;
  const t = buildTopology(o.name, o.scenario.links.length, { lan: o.lan ?? false, routedHosts });
  const state: LabState = {
    version: 1,
    name: o.name,
    prefix: t.prefix,
    createdAt: new Date().toISOString(),
    ownerPid: process.pid,
    links: o.scenario.links,
    complete: false,
    bond: o.bond ?? true,
    singleInterface: o.singleInterface ?? false,
    ...(o.lan ? { lan: true } : {}),
    ...(routedHosts ? { routedHosts: true } : {}),
    ...(shape ? { shape: true } : {}),
  };
  await writeState(state);
  const built = await build(t, state);
  if (built.isErr()) {
    await labDown(o.name); // roll back whatever was made
    return err(built.error);
  }
  if (state.bond) {
    const b = await startBond(o.name, state.links, { singleInterface: state.singleInterface, ipv6Underlay: o.ipv6Underlay ?? false, ipCarrier: o.ipCarrier ?? false, ...(o.lp ? { lp: o.lp } : {}), ...(o.lan ? { lan: true } : {}), shape }, mpctlPath());
    if (b.isErr()) {
      await labDown(o.name);
      return err(b.error);
    }
  } else {
    await warmUp(o.name, state.links[0]);
  }
  if ((o.schedules ?? true) && hasSchedule(state.links)) {
    // inside inet, so `lab down` ends it with the namespace; its log is in the lab's directory
    const pid = await spawnDetached(nsName(o.name, 'inet'), [mpctlPath(), 'lab', 'schedule', '--name', o.name], `${labDir(o.name)}/schedule.log`);
    if (pid.isErr()) {
      await labDown(o.name);
      return err(pid.error);
    }
  }
  state.complete = true;
  await writeState(state);
  return ok(state);
}

/** `mpctl lab schedule`: plays the lab's schedules (from its state) until they end or the lab
 * goes away; each change is logged with how late it was applied. */
export async function labSchedule(name: string, log: (line: string) => void): Promise<Result<number, MpError>> {
  const st = await readState(name);
  if (st.isErr()) return err(st.error);
  log(`schedule of lab ${name} started`);
  return runTimeline(st.value.links, {
    apply: (c) => labSet({ name, node: c.node, dirs: c.dirs, patch: c.patch }),
    onApplied: (c, lateMs) => log(`${(c.atUs / 1e6).toFixed(3)} s ${c.node} ${c.dirs.join('+')} ${Object.keys(c.patch).join(',')} (applied ${lateMs.toFixed(0)} ms late)`),
  });
}

/** The topology of a lab that is up, as its state says it was built. */
const topologyOf = (name: string, st: LabState): Topology =>
  buildTopology(name, st.links.length, { lan: st.lan ?? false, routedHosts: st.routedHosts ?? false });

async function build(t: Topology, state: LabState): Promise<Result<void, MpError>> {
  const hosts = hostsFile(t);
  for (const n of t.nodes) {
    const r = (await createNamespace(n.ns, hosts)).andThen(() => nodeSysctls(n));
    if (r.isErr()) return err(r.error);
  }
  for (const { a, b } of vethPairs(t)) {
    const r = await withRtnl(a.node.ns, (rt) => rt.createVeth(a.ifname, b.ifname, b.node.ns));
    if (r.isErr()) return err(r.error);
  }
  for (const n of t.nodes) {
    const r = await configureNode(n);
    if (r.isErr()) return err(r.error);
  }
  for (const [i, link] of state.links.entries()) {
    const s = await startEmulator(t.lab, i + 1);
    if (s.isErr()) return err(s.error);
    for (const dir of ['up', 'down'] as const) {
      const r = await applyDirection(t.lab, link, dir);
      if (r.isErr()) return err(r.error);
    }
  }
  return ok(undefined);
}

/**
 * Resolves neighbours along client → server once (IPv4 and IPv6) so the first packets of a test
 * do not wait for ND/ARP across every hop. Best effort: a link 1 that starts cut stays cut.
 */
async function warmUp(lab: string, link1: LinkSettings | undefined): Promise<void> {
  if (!link1 || link1.up.down || link1.down.down) return;
  await Promise.all(
    ['203.0.113.2', '2001:db8:113::2'].map((dst) => run('ip', ['netns', 'exec', nsName(lab, 'client'), 'ping', '-n', '-q', '-c', '1', '-w', '3', dst], 5000)),
  );
}

/** Removes every namespace with the lab's prefix, the processes in them, and the lab's files. */
export async function labDown(name: string): Promise<Result<{ removed: string[] }, MpError>> {
  const n = checkLabName(name);
  if (n.isErr()) return err(n.error);
  const nss = await listNamespaces(nsPrefix(name));
  // portals first, so they remove their own pins and records while their namespaces exist
  if (nss.length) await stopBond(name, mpctlPath());
  for (const ns of nss) {
    const r = await deleteNamespace(ns);
    if (r.isErr()) return err(r.error);
  }
  // the log a console-started portal of the lab's instances left (mpctl down keeps a user's)
  for (const role of ['lp', 'rp'] as const) {
    const log = logFile(portalInstance(name, role));
    for (const f of [log, `${log}.1`]) await rm(f, { force: true });
  }
  await removeState(name);
  return ok({ removed: nss });
}

export interface LabSetRequest {
  name: string;
  node: string;
  dirs: Direction[];
  patch: DirPatch;
}

export async function labSet(req: LabSetRequest): Promise<Result<LinkSettings, MpError>> {
  const st = await readState(req.name);
  if (st.isErr()) return err(st.error);
  const link = st.value.links.find((l) => l.node === req.node || l.label === req.node);
  if (!link)
    return err({
      kind: 'NotFound',
      what: 'link',
      message: `lab "${req.name}" has no link ${req.node} (links: ${st.value.links.map((l) => `${l.node}/${l.label}`).join(', ')})`,
    });
  for (const dir of req.dirs) {
    const before = link[dir];
    link[dir] = applyPatch(link[dir], req.patch);
    const r = await applyDirection(req.name, link, dir, before, req.patch.trace !== undefined);
    if (r.isErr()) return err(r.error);
  }
  await writeState(st.value);
  return ok(link);
}

export interface DirStatus extends DirSettings {
  live: emu.EmulatorState['up'] | null;
}

export interface LabStatus {
  name: string;
  prefix: string;
  complete: boolean;
  createdAt: string;
  nodes: {
    node: string;
    ns: string;
    present: boolean;
    interfaces: { name: string; peer: string; addresses: string[] }[];
  }[];
  links: (Omit<LinkSettings, 'up' | 'down'> & { ns: string; emulatorPid: number | null; up: DirStatus; down: DirStatus })[];
}

export async function labStatus(name: string): Promise<Result<LabStatus, MpError>> {
  const st = await readState(name);
  if (st.isErr()) return err(st.error);
  const t = topologyOf(name, st.value);
  const nodes: LabStatus['nodes'] = [];
  for (const n of t.nodes) {
    const present = nsExists(n.ns);
    let addrs: AddrInfo[] = [];
    if (present) {
      const a = await withRtnl(n.ns, (rt) => rt.listAddresses());
      if (a.isOk()) addrs = a.value;
    }
    nodes.push({
      node: n.node,
      ns: n.ns,
      present,
      interfaces: n.ifaces.map((i) => ({
        name: i.name,
        peer: `${i.peer.node}:${i.peer.ifname}`,
        addresses: addrs.filter((a) => a.ifname === i.name).map((a) => `${a.address}/${a.prefixlen}`),
      })),
    });
  }
  const links: LabStatus['links'] = [];
  for (const l of st.value.links) {
    const ns = nsName(name, l.node);
    const live = nsExists(ns) ? await emu.getState(ns) : null;
    const s = live?.isOk() ? live.value : null;
    links.push({
      node: l.node,
      label: l.label,
      ns,
      emulatorPid: s?.pid ?? null,
      up: { ...l.up, live: s?.up ?? null },
      down: { ...l.down, live: s?.down ?? null },
    });
  }
  return ok({ name, prefix: st.value.prefix, complete: st.value.complete, createdAt: st.value.createdAt, nodes, links });
}

/** Runs `argv` inside a lab node with the terminal attached; resolves to its exit code. */
export async function labExec(name: string, node: string, argv: string[]): Promise<Result<number, MpError>> {
  const st = await readState(name);
  if (st.isErr()) return err(st.error);
  const t = topologyOf(name, st.value);
  const n = t.nodes.find((x) => x.node === node);
  if (!n)
    return err({ kind: 'NotFound', what: 'node', message: `no node ${node} in lab "${name}" (nodes: ${t.nodes.map((x) => x.node).join(', ')})` });
  if (argv.length === 0) argv = [process.env.SHELL ?? '/bin/sh'];
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', n.ns, ...argv], { stdio: 'inherit' });
    child.once('error', (e) => resolve(err({ kind: 'CommandFailed', cmd: argv.join(' '), code: null, stderr: e.message })));
    child.once('exit', (code, sig) => resolve(ok(code ?? (sig ? 128 + 15 : 1))));
  });
}

export { listLabs };
