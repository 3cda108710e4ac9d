// The portal's BPF object: load build/bpf/mpctl.o once with its maps pinned under the
// instance's bpffs directory, write the config, link and endpoint maps from the portal config,
// and give the running loop a port to change link state. Layouts come from src/datapath/abi.ts.
// The segmentation loop's device exists only once the plan is applied: `setLoop` then adds it
// to the config (until then no link is up, so encap sends nothing anywhere).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { err, ok, type Result } from 'neverthrow';
import { fileError, type MpError } from '../errors.js';
import type { LinkConfig, LocalConfig, PortalConfig, Prefix } from '../config/types.js';
import type { RedundantClass } from '../config/redundant.js';
import * as abi from '../datapath/abi.js';
import { bpfClose, bpfOpenLoad, closeFd, mapDelete, mapFd, mapKeys, mapLookup, mapMmap, mapUpdate, munmap, numPossibleCpus, objGet, tickReads, type MapFd, type ObjHandle } from '../native/libmpctl.js';
import type { Rtnl } from '../netlink/rtnl.js';
import { ipFamily } from '../netlink/ip.js';
import { packagePath } from '../paths.js';
import { CLAMP_FLOOR, innerMtu as innerMtuOf, overhead, tunnelMtus } from '../plan/mtu.js';
import { loopDevices, SHAPE_HANDLE } from '../plan/plan.js';
import type { LinkStatePort } from '../run/runtime.js';
import { NO_HOLD } from '../cc/loop.js';
import { mapKeysPort, type KeysPort } from '../security/keys-port.js';

/** Reads of mp_rx, mp_link_stats and mp_sched within this long share one copy of each (the
 * links of one feedback tick, of one feedback message, of one status publication). */
const RX_SNAPSHOT_NS = 1_000_000n;

export const objectPath = (): string => process.env.MPCTL_BPF_OBJ ?? packagePath('build', 'bpf', 'mpctl.o');

/** The BPF object's identity: the first 16 hex digits of its SHA-256. A data path is adopted only
 * by a control plane of the object it was loaded from (portal.ts): another object may lay its
 * maps out otherwise (mp.h, abi.ts) or run other programs, and the new process would read and
 * write the old maps by its own layouts. */
export function objectId(path = objectPath()): Result<string, MpError> {
  try {
    return ok(createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16));
  } catch (e) {
    return err(fileError('read', path, e));
  }
}

/** The segmentation loop as the data path sees it (bpf/loop.h). */
export interface LoopConfig {
  /** ifindex of mpf…a */
  ifindex: number;
  mark: number;
  /** the mark is routed into the loop: IPv4 without DF may be sent there to be fragmented */
  routed: boolean;
}
/** `bond_local` as the data path sees it (mp_config.local_*). */
export interface BondLocalConfig {
  /** ifindex and MAC of mpl…a */
  ifindex: number;
  mac: string;
  /** the LP's own source of each family */
  v4?: string;
  v6?: string;
}
export interface Datapath {
  /** the loaded object (null: adopted, the maps opened from their pins; the programs that run
   * are the previous process's, still attached) */
  handle: ObjHandle | null;
  maps: Record<'config' | 'links' | 'endpoints' | 'sched' | 'stats' | 'rx' | 'drops' | 'loop' | 'txKey' | 'rxKeys' | 'replay' | 'peerProbe' | 'redClass' | 'natFwd' | 'natFwdOut' | 'natIn' | 'natOut', MapFd>;
  /** LP: the outer source address of each link id */
  sources: Map<number, string>;
  /** LP: each link id's interface MTU (its largest path MTU probe) */
  ifMtus: Map<number, number>;
  /** LP, adopted: each link's outer MTU in the running data path (mp_link.mtu: what it schedules by) */
  adoptedMtus: Map<number, number>;
  innerMtu: number;
  /** Turns the segmentation loop on in the config (after the plan created its devices). */
  setLoop(loop: LoopConfig): Result<void, MpError>;
  /** LP `bond_local`: where decap delivers the replies to the LP's own traffic (after the plan
   * created the bond device; bpf/nat.h) */
  setBondLocal(b: BondLocalConfig): Result<void, MpError>;
  linkStatePort(): LinkStatePort;
  /** the session keys' maps (keys-port.ts) */
  keysPort(): KeysPort;
  close(): void;
}

const addr = (a: string | undefined, len?: number): abi.MpAddr =>
  a ? { family: ipFamily(a) ?? 0, prefixLen: len ?? (ipFamily(a) === 4 ? 32 : 128), addr: a } : abi.NO_ADDR;

/**
 * RP: link `id` as a probe of the LP teaches it (LinkStatePort.learn), over what the data path
 * has (`prev`; null: nothing). What the controller writes with setEstimate stays: its flags, its
 * hold rate and its plan cap. Before, the hold rate was rewritten as 0 (no hold: the pacing rate of the moment,
 * no queue limit) at every request whose estimate differed from the last (up to 10 a second per
 * link) until the next feedback wrote it back, ~20 ms later: lab, survive.test, a quarter of the
 * 0.5 s samples of the RP's mp_links showed a link without its hold rate, and an RP killed then
 * left that link unheld for good.
 */
export function learnedLink(
  prev: abi.MpLink | null,
  est: { rateBps: bigint; owdUs: number; metric: number; carrier: number; budgetBytes?: bigint; peerEstimate?: boolean; mtu?: number },
  own: { ifindex: number; mtu: number; local: abi.MpAddr; port: number },
): abi.MpLink {
  const prevState = prev ? prev.state : abi.MP_LINK_DOWN;
  const known = prev !== null && prev.ifindex !== 0;
  return {
    ifindex: own.ifindex,
    state: prevState === abi.MP_LINK_UNUSED ? abi.MP_LINK_UP : prevState,
    carrier: est.carrier, // the link's carrier as the LP uses it (probes always go over UDP)
    metric: est.metric,
    mtu: est.mtu || own.mtu, // what reaches the LP on this link (its probes' pmtu_down)
    // a link the data path already has keeps its estimate unless ours is newer (adopted
    // data path: the previous process's controller's output)
    owdUs: known && est.peerEstimate ? prev.owdUs : est.owdUs,
    rateBps: known && est.peerEstimate ? prev.rateBps : est.rateBps,
    local: own.local,
    nexthop: abi.NO_ADDR,
    localPort: own.port,
    // the LP's allowance for our sending (budget.ts PeerAllowances); absent: the line stays
    budgetBytes: est.budgetBytes ?? prev?.budgetBytes ?? 0n,
    flags: prev?.flags ?? 0, // the controller's (setEstimate)
    holdKbps: prev?.holdKbps ?? 0, // the controller's too
    planCapMs: prev?.planCapMs ?? 0, // and its plan cap
  };
}

/** A `[[redundant]]` class as mp_red_class holds it: the cap in bytes/s, a bucket of 200 ms of
 * it (at least 16 KiB, so a burst of a call's packets on every link is not cut). */
export function redClassValue(c: RedundantClass): abi.MpRedClass {
  const capBytesPerS = c.capBps / 8;
  return {
    links: c.links === 'all' ? abi.MP_RED_ALL_LINKS : c.links,
    dscp: c.dscp,
    ports: c.udpPorts,
    prefixes: c.prefixes.map((p) => ({ family: p.family, prefixLen: p.len, addr: p.address })),
    capBytesPerS,
    burstBytes: Math.max(16384, Math.round(capBytesPerS / 5)),
  };
}

/** A port forward's two static entries (bpf/nat.h): client address:port -> LAN host (mp_nat_fwd)
 * and back (mp_nat_fwd_out). */
export function forwardEntries(cfg: LocalConfig): { fwd: [abi.MpNatKey, abi.MpNatVal]; back: [abi.MpNatKey, abi.MpNatVal] }[] {
  return cfg.portForwards.map((f) => {
    const client = cfg.client.find((c) => c.family === f.family)!.address; // config: a single address of that family
    const proto = f.proto === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
    return {
      fwd: [{ family: f.family, proto, port: f.port, addr: client }, { addr: f.address, port: f.targetPort, flags: abi.MP_NAT_F_FORWARD }],
      back: [{ family: f.family, proto, port: f.targetPort, addr: f.address }, { addr: client, port: f.port, flags: abi.MP_NAT_F_FORWARD }],
    };
  });
}

/** Empties both forward maps and writes the config's forwards. */
function writeForwards(fwd: MapFd, back: MapFd, cfg: LocalConfig): Result<void, MpError> {
  for (const [fd, m] of [[fwd, abi.MAPS.natFwd], [back, abi.MAPS.natFwdOut]] as const) {
    const keys = mapKeys(fd, m.keySize);
    if (keys.isErr()) return err(keys.error);
    for (const k of keys.value) {
      const d = mapDelete(fd, k);
      if (d.isErr()) return err(d.error);
    }
  }
  for (const e of forwardEntries(cfg)) {
    const a = mapUpdate(fwd, abi.encodeNatKey(e.fwd[0]), abi.encodeNatVal(e.fwd[1]));
    if (a.isErr()) return err(a.error);
    const b = mapUpdate(back, abi.encodeNatKey(e.back[0]), abi.encodeNatVal(e.back[1]));
    if (b.isErr()) return err(b.error);
  }
  return ok(undefined);
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

const prefixAddr = (p: Prefix | undefined): abi.MpAddr => (p ? { family: p.family, prefixLen: p.len, addr: p.address } : abi.NO_ADDR);

const MAP_NAMES = {
  config: 'mp_config',
  links: 'mp_links',
  endpoints: 'mp_endpoints',
  sched: 'mp_sched',
  stats: 'mp_link_stats',
  rx: 'mp_rx',
  drops: 'mp_drops',
  loop: 'mp_loop_stats',
  txKey: abi.MAPS.txKey.name,
  rxKeys: abi.MAPS.rxKeys.name,
  replay: abi.MAPS.replay.name,
  peerProbe: abi.MAPS.peerProbe.name,
  redClass: abi.MAPS.redClass.name,
  natFwd: abi.MAPS.natFwd.name,
  natFwdOut: abi.MAPS.natFwdOut.name,
  natIn: abi.MAPS.natIn.name,
  natOut: abi.MAPS.natOut.name,
} as const;

/** Map fds of the loaded object, by role in the ABI. */
export function portalMaps(h: ObjHandle): Result<Datapath['maps'], MpError> {
  const out: Partial<Datapath['maps']> = {};
  for (const [k, n] of Object.entries(MAP_NAMES)) {
    const fd = mapFd(h, n);
    if (fd.isErr()) return err(fd.error);
    out[k as keyof Datapath['maps']] = fd.value;
  }
  return ok(out as Datapath['maps']);
}

function firstAddr(facts: Record<string, string[]>, ifname: string, family: 4 | 6): string | undefined {
  return (facts[ifname] ?? []).map((a) => a.split('/')[0]!).find((a) => ipFamily(a) === family);
}

/** The maps of a running data path, opened from their pins (owned fds: close them). */
function pinnedMaps(pinDir: string): Result<Datapath['maps'], MpError> {
  const out: Partial<Datapath['maps']> = {};
  for (const [k, n] of Object.entries(MAP_NAMES)) {
    const fd = objGet(`${pinDir}/${n}`);
    if (fd.isErr()) {
      for (const x of Object.values(out)) closeFd(x);
      return err(fd.error);
    }
    out[k as keyof Datapath['maps']] = fd.value;
  }
  return ok(out as Datapath['maps']);
}

/**
 * Loads the object with its maps pinned under pinDir and writes config, links and endpoints —
 * or, `adopt`, takes over a data path that runs without its control plane (hitless restart):
 * its pinned maps are opened and nothing in them is rewritten (links keep their state and
 * estimates, keys their sessions), and its programs stay attached.
 */
export async function openDatapath(
  pinDir: string,
  cfg: PortalConfig,
  rt: Rtnl,
  facts: Record<string, string[]>,
  adopt = false,
  /** what goes wrong later, in the background (the loop device's MTU) */
  onError: (msg: string) => void = () => {},
): Promise<Result<Datapath, MpError>> {
  const links = await rt.listLinks();
  if (links.isErr()) return err(links.error);
  const byName = new Map(links.value.map((l) => [l.name, l]));
  const ifindex = (name: string): Result<number, MpError> => {
    const l = byName.get(name);
    return l ? ok(l.index) : err({ kind: 'NotFound', what: 'interface', message: `no interface ${name}` });
  };

  const h = adopt ? ok(null) : bpfOpenLoad(objectPath(), pinDir);
  if (h.isErr()) return err(h.error);
  const maps = h.value === null ? pinnedMaps(pinDir) : portalMaps(h.value);
  const release = () => {
    if (h.value !== null) bpfClose(h.value);
    else if (maps.isOk()) for (const fd of Object.values(maps.value)) closeFd(fd);
  };
  const fail = (e: MpError) => {
    release();
    return err(e);
  };
  if (maps.isErr()) return fail(maps.error);
  const write = (fd: MapFd, i: number, v: Buffer) => mapUpdate(fd, abi.mapKey(i), v);

  const sources = new Map<number, string>();
  const ifMtus = new Map<number, number>();
  const adoptedMtus = new Map<number, number>();
  const innerMtu = innerMtuOf(cfg, (name) => byName.get(name)?.mtu);
  // a link's outer MTU until path MTU discovery says otherwise: its interface's (LP), wan's (RP)
  const ifMtu = (name: string) => byName.get(name)?.mtu ?? 1500;
  const wanMtu = cfg.role === 'remote' ? ifMtu(cfg.wan) : 0;
  const defaultMtu = (id: number) => (cfg.role === 'local' ? ifMtu(cfg.links.find((l) => l.id === id)?.interface ?? '') : wanMtu);
  // the MSS clamp as tunnelMtus computes it (LP: every link at its interface MTU to start with)
  const start = cfg.role === 'local' ? tunnelMtus(cfg.links.map((l) => ({ family: l.family, carrier: l.carrier, up: ifMtu(l.interface), down: ifMtu(l.interface) }))) : null;
  const clamp = start ? Math.min(start.clamp, innerMtu) : innerMtu;
  if (cfg.role === 'local') {
    for (const l of cfg.links) {
      const idx = ifindex(l.interface);
      if (idx.isErr()) return fail(idx.error);
      const src = l.source ?? firstAddr(facts, l.interface, l.family);
      const remote = cfg.remote.find((r) => ipFamily(r) === l.family);
      if (!src || !remote) return fail({ kind: 'ConfigInvalid', path: `link[${l.id}].source`, value: src ?? null, message: `no IPv${l.family} address on ${l.interface}` });
      sources.set(l.id, src);
      const linkMtu = ifMtu(l.interface);
      ifMtus.set(l.id, linkMtu);
      if (adopt) {
        // the running data path's links (state, estimates, path MTU) stay as they are
        const cur = mapLookup(maps.value.links, abi.mapKey(l.id), abi.MP_LINK_SIZE);
        if (cur.isErr()) return fail(cur.error);
        const mtu = cur.value ? abi.decodeLink(cur.value).mtu : 0;
        if (mtu > 0) adoptedMtus.set(l.id, mtu);
        continue;
      }
      const w = write(maps.value.links, l.id, abi.encodeLink(linkValue(l, idx.value, src, linkMtu, cfg.port)));
      if (w.isErr()) return fail(w.error);
      const e = write(maps.value.endpoints, l.id, abi.encodeEndpoint({ addr: addr(remote), port: cfg.port, valid: true, updatedNs: 0n }));
      if (e.isErr()) return fail(e.error);
    }
  }
  const lan = cfg.role === 'local' ? ifindex(cfg.lan) : ok(0);
  const wan = cfg.role === 'remote' ? ifindex(cfg.wan) : ok(0);
  if (lan.isErr()) return fail(lan.error);
  if (wan.isErr()) return fail(wan.error);
  /** the portal's own address of a family ("time exceeded" when no link has it, bpf/ttl.h):
   * LP on lan, RP on wan, not link-local; else a link's source of that family */
  const ownAddr = (ifname: string, f: 4 | 6) =>
    (facts[ifname] ?? []).map((a) => a.split('/')[0]!).find((a) => ipFamily(a) === f && !/^fe80:/i.test(a)) ??
    [...sources.values()].find((a) => ipFamily(a) === f);
  const config: abi.MpConfig = {
    role: cfg.role === 'local' ? abi.MP_ROLE_LOCAL : abi.MP_ROLE_REMOTE,
    flags:
      (cfg.role === 'remote' && cfg.singleInterface ? abi.MP_CFG_SINGLE_IF : 0) |
      abi.MP_CFG_DEC_TTL |
      (cfg.auth.mode === 'insecure-no-auth' ? abi.MP_CFG_NO_AUTH : 0) |
      (cfg.ackPath === 'earliest' ? abi.MP_CFG_ACKS_EARLIEST : 0) |
      (cfg.role === 'local' && cfg.lanPrefixes.length > 0 ? abi.MP_CFG_LAN_NAT : 0),
    lanIfindex: lan.value,
    wanIfindex: wan.value,
    port: cfg.port,
    mssV4: clamp - 40,
    mssV6: clamp - 60,
    innerMtu,
    ipProto: cfg.ipProto,
    clientV4: prefixAddr(cfg.client.find((p) => p.family === 4)),
    clientV6: prefixAddr(cfg.client.find((p) => p.family === 6)),
    reservedPorts: cfg.role === 'remote' ? cfg.reservedPorts : [],
    // per-link shaping (bpf/shape.h): the htb the plan puts on the link devices
    shapeHandle: cfg.shape ? SHAPE_HANDLE : 0,
    loopIfindex: 0,
    loopMark: 0,
    ownV4: addr(ownAddr(cfg.role === 'local' ? cfg.lan : cfg.wan, 4)),
    ownV6: addr(ownAddr(cfg.role === 'local' ? cfg.lan : cfg.wan, 6)),
    // whole-LAN mode (bpf/nat.h): the LAN prefixes, translated to the client address
    lan: cfg.role === 'local' ? cfg.lanPrefixes.map((p) => ({ family: p.family, prefixLen: p.len, addr: p.address })) : [],
    natPortLo: cfg.role === 'local' ? cfg.natPorts.lo : 0,
    natPortHi: cfg.role === 'local' ? cfg.natPorts.hi : 0,
  };
  // adopted: the config stays until setLoop writes the same one with the loop in it, with the
  // inner MTU and MSS clamp the running data path has (its path MTU discovery's, not the interfaces')
  if (adopt) {
    const cur = mapLookup(maps.value.config, abi.mapKey(0), abi.MP_CONFIG_SIZE);
    if (cur.isErr()) return fail(cur.error);
    if (cur.value) {
      const running = abi.decodeConfig(cur.value);
      if (running.innerMtu > 0) Object.assign(config, { innerMtu: running.innerMtu, mssV4: running.mssV4, mssV6: running.mssV6 });
    }
  }
  // mp_config as last written: the heartbeat (alive, every few probe rounds) patches its alive_ns
  // and writes it again, without encoding the rest each time
  let configBuf: Buffer | null = null;
  const configKey = abi.mapKey(0);
  const aliveOff = abi.offsetOf(abi.MP_CONFIG, 'alive_ns');
  const writeConfig = () => mapUpdate(maps.value.config, configKey, (configBuf = abi.encodeConfig(config)));
  const c = adopt ? ok(undefined) : writeConfig();
  if (c.isErr()) return fail(c.error);
  // redundant classes (bpf/redundant.h): written on adoption too, they are the config's
  for (let i = 0; i < abi.MP_RED_CLASSES; i++) {
    const rc = cfg.redundant[i];
    const w = write(maps.value.redClass, i, abi.encodeRedClass(rc ? redClassValue(rc) : null));
    if (w.isErr()) return fail(w.error);
  }
  // port forwards (bpf/nat.h): the config's, on adoption too (what a previous config left goes)
  if (cfg.role === 'local') {
    const f = writeForwards(maps.value.natFwd, maps.value.natFwdOut, cfg);
    if (f.isErr()) return fail(f.error);
  }

  const ncpu = numPossibleCpus();
  if (ncpu.isErr()) return fail(ncpu.error);
  // What the control loop reads every tick, all in one native call (mp_tick: an ffi call costs
  // more than the reads): mp_sched and the per-CPU mp_link_stats (no mmap for those: a spin lock,
  // per-CPU values) as batch lookups, mp_rx and mp_peer_probe (BPF_F_MMAPABLE) as memory. Reads
  // within RX_SNAPSHOT_NS share one refresh (the links of one tick, of one feedback message).
  const rxMap = mapMmap(maps.value.rx);
  if (rxMap.isErr()) return fail(rxMap.error);
  const ppMap = mapMmap(maps.value.peerProbe);
  if (ppMap.isErr()) {
    munmap(rxMap.value);
    return fail(ppMap.error);
  }
  const unmap = () => {
    munmap(rxMap.value);
    munmap(ppMap.value);
  };
  const statsSize = abi.percpuValueSize(abi.MP_LINK_STATS_SIZE, ncpu.value);
  const ppStride = abi.perCpuStride(abi.MP_PEER_PROBE.size); // array elements are 8-aligned too
  const tick = tickReads();
  if (tick.isErr()) {
    unmap();
    return fail(tick.error);
  }
  tick.value.clear();
  const views = {
    sched: tick.value.addArray(maps.value.sched, 1, abi.MP_SCHED_SIZE),
    stats: tick.value.addArray(maps.value.stats, abi.MP_MAX_LINKS, statsSize),
    rx: tick.value.addMmap(rxMap.value, abi.MP_RX_SIZE * abi.MP_MAX_LINKS),
    peerProbe: tick.value.addMmap(ppMap.value, ppStride * abi.MP_MAX_LINKS),
  };
  if (views.sched.isErr() || views.stats.isErr() || views.rx.isErr() || views.peerProbe.isErr()) {
    tick.value.clear();
    unmap();
    return fail([views.sched, views.stats, views.rx, views.peerProbe].find((v) => v.isErr())!._unsafeUnwrapErr());
  }
  const v = { sched: views.sched.value, stats: views.stats.value, rx: views.rx.value, peerProbe: views.peerProbe.value };
  let readAt = -RX_SNAPSHOT_NS;
  /** inside lastSnapshot: any snapshot will do */
  let anySnapshot = false;
  const fresh = (): Result<void, MpError> => {
    if (anySnapshot && readAt !== -RX_SNAPSHOT_NS) return ok(undefined);
    const now = process.hrtime.bigint();
    if (now - readAt <= RX_SNAPSHOT_NS) return ok(undefined);
    const r = tick.value.read();
    if (r.isOk()) readAt = now;
    return r;
  };
  const stats = (id: number): Result<abi.MpLinkStats | null, MpError> =>
    id < 0 || id >= abi.MP_MAX_LINKS ? ok(null) : fresh().map(() => abi.decodeLinkStats(v.stats.subarray(id * statsSize, (id + 1) * statsSize), ncpu.value));
  let schedOf = { at: 0n, value: null as abi.MpSched | null };
  const sched = (): Result<abi.MpSched | null, MpError> =>
    fresh().map(() => {
      if (schedOf.at !== readAt || !schedOf.value) schedOf = { at: readAt, value: abi.decodeSched(v.sched) };
      return schedOf.value;
    });
  const peerProbes = peerProbeReader(v.peerProbe, ppStride, fresh);
  /** per link: the rate/delay this process last wrote (setEstimate) */
  const written = new Map<number, string>();
  const readLink = (id: number): Result<abi.MpLink | null, MpError> =>
    mapLookup(maps.value.links, abi.mapKey(id), abi.MP_LINK_SIZE).map((b) => (b ? abi.decodeLink(b) : null));
  const wanIndex = wan.value;
  const wanAddr = (f: 4 | 6) => (cfg.role === 'remote' ? firstAddr(facts, cfg.wan, f) : undefined);
  const dp: Datapath = {
    handle: h.value,
    maps: maps.value,
    sources,
    ifMtus,
    adoptedMtus,
    innerMtu,
    setLoop: (loop) => {
      config.loopIfindex = loop.ifindex;
      config.loopMark = loop.mark;
      config.flags = loop.routed ? config.flags | abi.MP_CFG_LOOP_FRAG : config.flags & ~abi.MP_CFG_LOOP_FRAG;
      return writeConfig();
    },
    setBondLocal: (b) => {
      Object.assign(config, { localIfindex: b.ifindex, localMac: b.mac, localV4: addr(b.v4), localV6: addr(b.v6) });
      config.flags |= abi.MP_CFG_BOND_LOCAL;
      return writeConfig();
    },
    linkStatePort: () => ({
      setState: (id, s) => {
        const cur = mapLookup(maps.value.links, abi.mapKey(id), abi.MP_LINK_SIZE);
        if (cur.isErr()) return err(cur.error);
        if (!cur.value) return err({ kind: 'Bug', message: `link ${id} missing from mp_links` });
        const l = abi.decodeLink(cur.value);
        if (l.ifindex === 0) return ok(undefined); // never configured (RP: not learned yet)
        l.state = s === 'up' ? abi.MP_LINK_UP : s === 'admin-down' ? abi.MP_LINK_ADMIN_DOWN : abi.MP_LINK_DOWN;
        return write(maps.value.links, id, abi.encodeLink(l));
      },
      learn: (id, from, est) => {
        const fam = ipFamily(from.address.replace(/^::ffff:/, ''));
        if (fam === null || id >= abi.MP_MAX_LINKS) return err({ kind: 'Bug', message: `bad probe source ${from.address}` });
        const local = wanAddr(fam);
        if (!local) return err({ kind: 'NotFound', what: 'address', message: `no IPv${fam} address on ${cfg.role === 'remote' ? cfg.wan : ''}` });
        const cur = mapLookup(maps.value.links, abi.mapKey(id), abi.MP_LINK_SIZE);
        if (cur.isErr()) return err(cur.error);
        const prev = cur.value ? abi.decodeLink(cur.value) : null;
        const l = abi.encodeLink(learnedLink(prev, est, { ifindex: wanIndex, mtu: wanMtu, local: addr(local), port: cfg.port }));
        const w = write(maps.value.links, id, l);
        if (w.isErr()) return err(w.error);
        written.delete(id);
        return write(maps.value.endpoints, id, abi.encodeEndpoint({ addr: addr(from.address.replace(/^::ffff:/, '')), port: from.port, valid: true, updatedNs: 0n }));
      },
      setEstimate: (id, rateBps, owdUs, noAcks, fec = false, hold = NO_HOLD, planCapMs = 0) => {
        // what this process last wrote: an unchanged estimate costs no map read (only learn
        // below writes rate and delay besides this)
        const owd = Math.max(0, Math.min(owdUs, 0xffff_ffff));
        const holdKbps = Math.max(0, Math.min(Math.round(hold.kbps), 0xffff_ffff));
        const cap = Math.max(0, Math.min(Math.round(planCapMs), 0xffff));
        const key = `${rateBps}/${owd}/${noAcks ? 1 : 0}/${fec ? 1 : 0}/${holdKbps}/${hold.held ? 1 : 0}/${cap}`;
        if (written.get(id) === key) return ok(undefined);
        const l = readLink(id);
        if (l.isErr()) return err(l.error);
        if (!l.value || l.value.ifindex === 0) return ok(undefined); // not configured / learned
        const flags =
          ((l.value.flags ?? 0) & ~(abi.MP_LINK_F_NO_ACKS | abi.MP_LINK_F_FEC | abi.MP_LINK_F_HELD)) |
          (noAcks ? abi.MP_LINK_F_NO_ACKS : 0) |
          (fec ? abi.MP_LINK_F_FEC : 0) |
          (hold.held ? abi.MP_LINK_F_HELD : 0);
        if (l.value.rateBps === rateBps && l.value.owdUs === owd && l.value.flags === flags && l.value.holdKbps === holdKbps && l.value.planCapMs === cap) {
          written.set(id, key);
          return ok(undefined);
        }
        const w = write(maps.value.links, id, abi.encodeLink({ ...l.value, rateBps, owdUs: owd, flags, holdKbps, planCapMs: cap }));
        if (w.isOk()) written.set(id, key);
        return w;
      },
      readRx: (id) =>
        id < 0 || id >= abi.MP_MAX_LINKS ? ok(null) : fresh().map(() => abi.decodeRx(v.rx.subarray(id * abi.MP_RX_SIZE, (id + 1) * abi.MP_RX_SIZE))),
      setLinkMtus: (links) => {
        const known = links.map((l) => ({ ...l, up: l.up || defaultMtu(l.id), down: l.down || defaultMtu(l.id) }));
        if (cfg.role === 'local')
          for (const l of known) {
            const cur = readLink(l.id);
            if (cur.isErr()) return err(cur.error);
            if (!cur.value || cur.value.ifindex === 0 || cur.value.mtu === l.up) continue;
            const w = write(maps.value.links, l.id, abi.encodeLink({ ...cur.value, mtu: l.up }));
            if (w.isErr()) return err(w.error);
          }
        // a link that carries less than CLAMP_FLOOR inner bytes either way (its padded probes
        // all failed) carries only what fits (the scheduler keeps larger packets off it by its
        // own MTU): it sets neither the inner MTU nor the clamp. None larger: what was written stays.
        const t = tunnelMtus(known.filter((l) => Math.min(l.up, l.down) - overhead(l.family, l.carrier) >= CLAMP_FLOOR));
        if (!t) return ok(undefined);
        const inner = Math.min(cfg.role === 'local' ? t.up : t.down, abi.MP_NH_MAX_BODY);
        const clamp = t.clamp;
        if (config.innerMtu === inner && config.mssV4 === clamp - 40) return ok(undefined);
        // IPv4 without DF is fragmented to the loop device's MTU (loop.h): it follows inner_mtu
        if (config.loopIfindex && config.innerMtu !== inner)
          void rt.setLink(loopDevices(cfg.instance).dev, { mtu: inner }).then((r) => r.isErr() && onError(`loop MTU ${inner}: ${JSON.stringify(r.error)}`));
        config.innerMtu = inner;
        config.mssV4 = clamp - 40;
        config.mssV6 = clamp - 60;
        return writeConfig();
      },
      routeMtu: (address) => rt.routeMtu(address),
      // the heartbeat (mp_config.alive_ns): the data path holds its links' rates without it
      alive: () => {
        config.aliveNs = process.hrtime.bigint();
        if (!configBuf) return writeConfig();
        configBuf.writeBigUInt64LE(config.aliveNs, aliveOff);
        return mapUpdate(maps.value.config, configKey, configBuf);
      },
      txBytes: (id) => stats(id).map((st) => st?.txBytes ?? 0n),
      // what setEstimate last wrote, else the map (buildFeedback asks for every link, 50 times a second)
      owdUs: (id) => {
        const w = written.get(id);
        if (w !== undefined) return ok(Number(w.split('/')[1]));
        return readLink(id).map((l) => (l && l.ifindex !== 0 ? l.owdUs : null));
      },
      sched,
      lastSnapshot: (f) => {
        anySnapshot = true;
        try {
          return f();
        } finally {
          anySnapshot = false;
        }
      },
      counters: stats,
      peerProbes,
      setBudget: (id, bytes) =>
        readLink(id).andThen((l) => (!l || l.ifindex === 0 || l.budgetBytes === bytes ? ok(undefined) : write(maps.value.links, id, abi.encodeLink({ ...l, budgetBytes: bytes })))),
    }),
    keysPort: () => {
      const fds = { tx: maps.value.txKey, rx: maps.value.rxKeys, replay: maps.value.replay };
      return mapKeysPort(
        (m, i, v) => write(fds[m], i, v),
        (m, i) => mapLookup(fds[m], abi.mapKey(i), abi.MP_KEY_SIZE),
      );
    },
    close: () => {
      tick.value.clear();
      unmap();
      release();
    },
  };
  return ok(dp);
}

/** mp_peer_probe as the tick's read left it in `raw` (refreshed by `fresh`): an entry is
 * decoded again only when its request count moved. The array is reused by the next call. */
function peerProbeReader(raw: Buffer, stride: number, fresh: () => Result<void, MpError>): () => Result<readonly (abi.MpPeerProbe | null)[], MpError> {
  const at = abi.offsetOf(abi.MP_PEER_PROBE, 'requests');
  const out: (abi.MpPeerProbe | null)[] = new Array(abi.MP_MAX_LINKS).fill(null);
  return () =>
    fresh().map(() => {
      for (let id = 0; id < abi.MP_MAX_LINKS; id++) {
        const n = raw.readBigUInt64LE(id * stride + at);
        if (n === 0n) out[id] = null;
        else if (out[id]?.requests !== n) out[id] = abi.decodePeerProbe(raw.subarray(id * stride, (id + 1) * stride));
      }
      return out;
    });
}

function linkValue(l: LinkConfig, ifindex: number, src: string, mtu: number, port: number): abi.MpLink {
  return {
    ifindex,
    state: abi.MP_LINK_DOWN, // up once its first probe is answered
    carrier: l.carrier === 'udp' ? abi.MP_CARRIER_UDP : abi.MP_CARRIER_IP,
    metric: l.metric,
    mtu,
    owdUs: l.delayUs,
    rateBps: BigInt(l.rateBps),
    local: addr(src),
    nexthop: addr(l.gateway),
    localPort: port, // the LP sends from (and its control socket binds) the tunnel port
  };
}
