// `mpctl status`: a read-only view of a running portal from any shell — its record, its pinned
// maps (per-link counters, link state, drops by reason, the segmentation loop's counters) and
// the run loop's last published state.
import { renameSync, writeFileSync } from 'node:fs';
import type { DepthStatus } from './depth.js';
import { readFile } from 'node:fs/promises';
import { err, ok, type Result } from 'neverthrow';
import { fileError, type MpError } from '../errors.js';
import * as abi from '../datapath/abi.js';
import { closeFd, mapLookup, numPossibleCpus, objGet, type MapFd } from '../native/libmpctl.js';
import { isAlive } from '../proc.js';
import { natCount, natDump, type NatCount } from './nat.js';
import type { LinkRuntimeStatus } from './runtime.js';
import type { CcCounters, CcStatus } from '../cc/loop.js';
import { portalDir, readPortalState } from '../apply/state.js';
import { loadConfig } from '../config/parse.js';
import type { SecurityStatus } from '../security/security-status.js';

export interface LinkStatus {
  id: number;
  /** the link's name and interface from the portal's config: the LP's [[link]]; on the RP the
   *  name from `link_names` (null without it: the RP knows links by id) and no interface */
  name: string | null;
  interface: string | null;
  state: 'up' | 'down' | 'admin-down' | 'unused';
  metric: number;
  rateBps: number;
  owdUs: number;
  endpoint: string | null;
  tx: { packets: number; bytes: number };
  rx: { packets: number; bytes: number };
  rttMs: number | null;
  probesSent: number;
  probesHeard: number;
  /** the congestion controller of this portal's sending direction on the link (null: none yet) */
  cc: CcStatus | null;
  /** a metered link's budget (null: none): `limitBytes` per period from the config (LP), and
   *  from the data path what this portal may still send on it before the scheduler stops using
   *  it (`leftBytes`; `exhausted` once it is 0) */
  budget: {
    limitBytes: number | null;
    leftBytes: number;
    exhausted: boolean;
    /** LP: bytes counted against the budget this period, both directions, including what
     *  earlier runs counted (budget.json); null on the RP, whose line is the LP's allowance */
    usedBytes?: number | null;
  } | null;
  /** path MTU of this portal's sending direction (pmtu.ts): mp_link.mtu, whether probes
   * confirmed it, how often size-dependent loss made the LP search below it, and the confirmed
   * outer MTU per direction (0 = not yet); on the RP `icmp`, the MTU toward the LP that ICMP
   * "too big" about its packets taught its kernel (absent: none). Absent before path MTU
   * discovery existed. */
  pmtu?: { mtu: number; source: 'probed' | 'interface'; shrinks: number; up?: number; down?: number; icmp?: number } | null;
  /** the capacity train of this portal's sending direction (train.ts): the latest one that
   * measured the link (its first, or a re-train); absent: none */
  train?: { bps: number; replies: number; sent: number; spanUs: number; outerBytes: number; dataBytes: number; retrain: boolean };
  /** the depth train of this portal's sending direction (depth.ts): the latest burst's result;
   * absent: none over yet */
  depthTrain?: DepthStatus;
  /** `shape = true`: the rate of the link's htb class, bits/s of Ethernet frames (run/shaper.ts);
   * absent: not shaped (or no class written yet) */
  shapeBps?: number;
  /** the link's class queue in this portal: packets it dropped because it was full (also in
   * `drops.shape_queue`) and bytes waiting in it, as the control plane last published them;
   * absent: no class */
  shapeQueue?: { drops: number; bytes: number };
}

export interface PortalStatus {
  /** schema version of this object (docs/status-json.md); bumped only on incompatible changes */
  version: 2;
  /** when this snapshot was read, ms since the epoch */
  time: number;
  instance: string;
  role: 'local' | 'remote';
  pid: number;
  running: boolean;
  startedAt: string;
  /** the run loop (probes, liveness, congestion control, handshakes): running, or since when it
   * is gone (its last published state, ms since the epoch; null: never published) */
  controlPlane: { running: boolean; lastSeenMs: number | null };
  /** the BPF programs, which go on forwarding without the control plane: forwarding = some link
   * is up in the data path; packets it carried (sent + received on all links) in the last second */
  dataPath: { forwarding: boolean; packetsLastSecond: number };
  links: LinkStatus[];
  drops: Record<string, number>;
  /** the segmentation loop (bpf/loop.h): packets sent round it, pieces carried after it */
  loop: { gso: number; frag: number; back: number };
  /** congestion-control feedback messages: sent, taken, duplicate, malformed */
  feedback: CcCounters | null;
  /** malformed control messages */
  badControl: number;
  /** keys, session and handshakes (null: not published yet) */
  security: SecurityStatus | null;
  /** redundant classes (bpf/redundant.h), per `[[redundant]]` of the config; absent before
   * redundant mode existed */
  redundant?: RedundantStatus[];
  /** LP whole-LAN mode (bpf/nat.h): the NAT's live mappings, one per flow, by protocol, and the
   * expired ones the next sweep deletes; absent: not in whole-LAN mode */
  nat?: NatCount;
}

/** A redundant class's counters: what this portal sent, and the peer's copies it received. */
export interface RedundantStatus {
  id: number;
  /** from the config (null: the config file no longer names the class) */
  name: string | null;
  packets: number;
  bytes: number;
  copies: number;
  copyBytes: number;
  capped: number;
  single: number;
  copyFailed: number;
  duplicates: number;
  /** link id → first copies received on it (links with none left out) */
  wins: Record<string, number>;
}

/** `drops` beyond the data path's reasons (abi.DROP_REASONS): packets the shaping classes'
 * queues dropped because they were full (run/shaper.ts), summed over the links. */
export const SHAPE_QUEUE_DROPS = 'shape_queue';

const STATE_NAMES: Record<number, LinkStatus['state']> = {
  [abi.MP_LINK_UNUSED]: 'unused',
  [abi.MP_LINK_UP]: 'up',
  [abi.MP_LINK_DOWN]: 'down',
  [abi.MP_LINK_ADMIN_DOWN]: 'admin-down',
};

/** What the running portal publishes for `mpctl status` (runtime.json, every PUBLISH_MS,
 * written to a temporary file and renamed: a reader never sees half of it). */
export interface Published {
  /** when it was published (ms since the epoch): the control plane's last sign of life */
  time: number;
  /** the data path's packets (sent + received, all links) then */
  packets: number;
  links: LinkRuntimeStatus[];
  feedback: CcCounters;
  badControl: number;
  security: SecurityStatus;
}

export const publishFile = (instance: string): string => `${portalDir(instance)}/runtime.json`;
export const PUBLISH_MS = 1000;

/** Publishes atomically: the reader sees the previous or the new state, never a torn one.
 * Synchronous: a few KiB to a file under /run (tmpfs) once a second; the promise API's hops
 * through libuv's thread pool (open, write, close, rename, each a wake of the loop and of a pool
 * thread) were ~5 % of an idle portal's main thread (perf, README `cpu`). */
export function publish(instance: string, p: Published): Result<void, MpError> {
  const file = publishFile(instance);
  try {
    writeFileSync(`${file}.tmp`, JSON.stringify(p));
    renameSync(`${file}.tmp`, file);
    return ok(undefined);
  } catch (e) {
    return err(fileError('write', file, e));
  }
}

/** The last publication of instance's portal (null: none, or unreadable). */
export async function readPublished(instance: string): Promise<Published | null> {
  try {
    return JSON.parse(await readFile(publishFile(instance), 'utf8')) as Published;
  } catch {
    return null; // not published yet
  }
}

/** The link names from the config file (read-only; a config edited since `up` may differ, which
 *  is why the id stays the key): the LP's [[link]] tables, the RP's `link_names`. */
async function linkNames(configFile: string): Promise<Map<number, { name: string; interface: string | null; budgetBytes: number }>> {
  const cfg = await loadConfig(configFile);
  const m = new Map<number, { name: string; interface: string | null; budgetBytes: number }>();
  if (cfg.isOk() && cfg.value.role === 'local') for (const l of cfg.value.links) m.set(l.id, { name: l.name, interface: l.interface, budgetBytes: l.budgetBytes });
  if (cfg.isOk() && cfg.value.role === 'remote') for (const [id, name] of cfg.value.linkNames.entries()) m.set(id, { name, interface: null, budgetBytes: 0 });
  return m;
}

/** The redundant classes' counters (mp_red_stats): the config's classes, and any other slot
 * with counts (a class removed from the config since `up`). */
async function redundantStatus(configFile: string, fd: MapFd, ncpu: number): Promise<RedundantStatus[]> {
  const cfg = await loadConfig(configFile);
  const names = new Map(cfg.isOk() ? cfg.value.redundant.map((c) => [c.id, c.name]) : []);
  const out: RedundantStatus[] = [];
  for (let id = 0; id < abi.MP_RED_CLASSES; id++) {
    const v = mapLookup(fd, abi.mapKey(id), abi.percpuValueSize(abi.MP_RED_STATS.size, ncpu));
    const r = v.isOk() && v.value ? abi.decodeRedStats(v.value, ncpu) : null;
    if (!r || (!names.has(id) && r.packets === 0n && r.duplicates === 0n && r.wins.every((w) => w === 0n))) continue;
    const wins: Record<string, number> = {};
    r.wins.forEach((w, link) => w > 0n && (wins[String(link)] = Number(w)));
    out.push({
      id,
      name: names.get(id) ?? null,
      packets: Number(r.packets),
      bytes: Number(r.bytes),
      copies: Number(r.copies),
      copyBytes: Number(r.copyBytes),
      capped: Number(r.capped),
      single: Number(r.single),
      copyFailed: Number(r.copyFailed),
      duplicates: Number(r.duplicates),
      wins,
    });
  }
  return out;
}

/** `mpctl status` lines of the redundant classes. */
export function redundantLines(rs: readonly RedundantStatus[]): string[] {
  return rs.map(
    (r) =>
      `  redundant ${r.id}${r.name ? ` ${r.name}` : ''}: sent ${r.packets} pkts with ${r.copies} copies (${r.copyBytes} B)` +
      `${r.capped ? `, ${r.capped} capped` : ''}${r.single ? `, ${r.single} alone (one link)` : ''}${r.copyFailed ? `, ${r.copyFailed} copies failed` : ''}` +
      `; received first on ${Object.entries(r.wins).map(([l, n]) => `link ${l} ${n}`).join(', ') || 'none'}, ${r.duplicates} duplicates dropped`,
  );
}

/** The human-readable `mpctl status` text. */
export function statusText(s: PortalStatus): string {
  const { loop } = s;
  const cp = s.controlPlane.running
    ? 'running'
    : `not running since ${s.controlPlane.lastSeenMs === null ? 'its start' : new Date(s.controlPlane.lastSeenMs).toISOString()}`;
  return [
    `portal ${s.instance} (${s.role}) pid ${s.pid}${s.running ? '' : ' NOT RUNNING'} since ${s.startedAt}`,
    `  control plane: ${cp}; data path: ${s.dataPath.forwarding ? 'forwarding' : 'not forwarding'}, ${s.dataPath.packetsLastSecond} packets in the last second`,
    ...s.links.map(
      (l) =>
        `  link ${l.id}${l.name ? ` ${l.name}` : ''} ${l.state.padEnd(5)} metric ${l.metric} rate ${(l.rateBps / 1e6).toFixed(1)} Mbit/s owd ${(l.owdUs / 1000).toFixed(1)} ms` +
        `${l.rttMs === null ? '' : ` rtt ${l.rttMs.toFixed(1)} ms`}  tx ${l.tx.packets} pkts ${l.tx.bytes} B  rx ${l.rx.packets} pkts ${l.rx.bytes} B` +
        `${l.endpoint ? `  peer ${l.endpoint}` : ''}` +
        `${l.pmtu ? `  pmtu ${l.pmtu.mtu} (${l.pmtu.source}${l.pmtu.icmp ? `, ICMP ${l.pmtu.icmp}` : ''})${l.pmtu.shrinks ? ` shrank ${l.pmtu.shrinks}x` : ''}` : ''}` +
        `${l.budget ? `  budget ${l.budget.exhausted ? 'SPENT' : `${(l.budget.leftBytes / 1e6).toFixed(1)} MB left`}${typeof l.budget.usedBytes === 'number' ? ` (${(l.budget.usedBytes / 1e6).toFixed(1)} MB used)` : ''}` : ''}` +
        `${l.train ? `  train ${(l.train.bps / 1e6).toFixed(1)} Mbit/s${l.train.retrain ? ' (re-train)' : ''}` : ''}` +
        `${l.shapeBps ? `  shaped ${(l.shapeBps / 1e6).toFixed(1)} Mbit/s` : ''}` +
        `${l.shapeQueue ? `${l.shapeBps ? '' : '  open class'} queue ${(l.shapeQueue.bytes / 1000).toFixed(1)} kB${l.shapeQueue.drops ? `, ${l.shapeQueue.drops} dropped full` : ''}` : ''}` +
        (l.cc
          ? `\n    cc ${l.cc.phase}${l.cc.stale ? ' (stale)' : ''} bw ${(l.cc.bwBps / 1e6).toFixed(1)} Mbit/s delivered ${(l.cc.deliveryBps / 1e6).toFixed(1)} Mbit/s` +
            ` queue ${l.cc.queueMs.toFixed(1)} ms rtt ${l.cc.rttMs.toFixed(1)} ms loss ${l.cc.lossPct.toFixed(1)} %` +
            `${l.cc.jitterMs !== undefined ? ` jitter ${l.cc.jitterMs.toFixed(1)} ms${l.cc.jittery ? ' (jittery)' : ''}` : ''}` +
            `${typeof l.cc.depthMs === 'number' ? ` buffer ${l.cc.depthMs.toFixed(1)} ms` : ''}` +
            `${l.cc.randomLossPct ? ` random loss ${l.cc.randomLossPct.toFixed(2)} %` : ''}`
          : ''),
    ),
    `  drops: ${Object.entries(s.drops).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    `  segmentation loop: ${loop.gso} GSO and ${loop.frag} too big sent round, ${loop.back} pieces carried`,
    ...redundantLines(s.redundant ?? []),
    ...(s.nat
      ? [`  NAT: ${s.nat.mappings} mappings (TCP ${s.nat.tcp}, UDP ${s.nat.udp}, ICMP ${s.nat.icmp})${s.nat.expired ? `, ${s.nat.expired} expired (freed, deleted at the next sweep)` : ''}`]
      : []),
    ...(s.feedback
      ? [`  feedback: ${s.feedback.fbSent} sent, ${s.feedback.fbHeard} taken, ${s.feedback.fbDup} duplicate, ${s.feedback.fbBad} malformed`]
      : []),
    ...(s.security
      ? [
          `  session: ${s.security.mode}${s.security.peer ? ` peer ${s.security.peer}` : ''}${s.security.keyId === null ? '' : ` key ${s.security.keyId}`}` +
            `${s.security.sessionAgeMs === null ? '' : ` age ${Math.round(s.security.sessionAgeMs / 1000)} s`}, ${s.security.handshakes} handshakes, ${s.security.rekeys} rekeys`,
          `  refused messages: ${Object.entries(s.security.rejected).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
        ]
      : []),
  ].join('\n');
}

/** A link's path MTU for status, from mp_link.mtu and what the run loop published. */
function pmtuStatus(mtu: number, rt: LinkRuntimeStatus | undefined): LinkStatus['pmtu'] {
  const p = rt?.pmtu;
  if (!p) return mtu ? { mtu, source: 'interface', shrinks: 0 } : null;
  if ('peerDown' in p) return { mtu, source: p.peerDown > 0 ? 'probed' : 'interface', shrinks: 0, up: p.peerUp, down: p.peerDown, ...(p.icmp ? { icmp: p.icmp } : {}) };
  const up = p.up.probed ? p.up.mtu : 0;
  const down = p.down.probed ? p.down.mtu : 0;
  return { mtu, source: up ? 'probed' : 'interface', shrinks: p.up.shrinks + p.down.shrinks, up, down };
}

export async function portalStatus(instance: string): Promise<Result<PortalStatus, MpError>> {
  const st = await readPortalState(instance);
  if (st.isErr()) return err(st.error);
  const fds: MapFd[] = [];
  const open = (name: string) => {
    const r = objGet(`${st.value.pinDir}/${name}`);
    if (r.isOk()) fds.push(r.value);
    return r;
  };
  try {
    const links = open('mp_links');
    const eps = open('mp_endpoints');
    const stats = open('mp_link_stats');
    const drops = open('mp_drops');
    const loopStats = open('mp_loop_stats');
    const sched = open('mp_sched');
    const redStats = open(abi.MAPS.redStats.name);
    const cpus = numPossibleCpus();
    for (const r of [links, eps, stats, drops, loopStats, sched, cpus]) if (r.isErr()) return err(r.error);
    const sc = mapLookup(sched._unsafeUnwrap(), abi.mapKey(0), abi.MP_SCHED_SIZE);
    const sent = sc.isOk() && sc.value ? abi.decodeSched(sc.value).sentBytes : null;
    const ncpu = cpus._unsafeUnwrap();
    const names = await linkNames(st.value.configFile);
    const published = await readPublished(instance);
    const runtime: LinkRuntimeStatus[] = published?.links ?? [];
    const out: LinkStatus[] = [];
    for (let id = 0; id < abi.MP_MAX_LINKS; id++) {
      const l = mapLookup(links._unsafeUnwrap(), abi.mapKey(id), abi.MP_LINK_SIZE);
      if (l.isErr()) return err(l.error);
      const link = l.value ? abi.decodeLink(l.value) : null;
      if (!link || link.ifindex === 0) continue;
      const e = mapLookup(eps._unsafeUnwrap(), abi.mapKey(id), abi.MP_ENDPOINT_SIZE);
      const ep = e.isOk() && e.value ? abi.decodeEndpoint(e.value) : null;
      const s = mapLookup(stats._unsafeUnwrap(), abi.mapKey(id), abi.percpuValueSize(abi.MP_LINK_STATS_SIZE, ncpu));
      const c = s.isOk() && s.value ? abi.decodeLinkStats(s.value, ncpu) : null;
      const rt = runtime.find((x) => x.id === id);
      out.push({
        id,
        name: names.get(id)?.name ?? null,
        interface: names.get(id)?.interface ?? null,
        state: STATE_NAMES[link.state] ?? 'unused',
        metric: link.metric,
        rateBps: Number(link.rateBps),
        owdUs: link.owdUs,
        endpoint: ep?.valid ? `${ep.addr.family === 6 ? `[${ep.addr.addr}]` : ep.addr.addr}:${ep.port}` : null,
        tx: { packets: Number(c?.txPackets ?? 0), bytes: Number(c?.txBytes ?? 0) },
        rx: { packets: Number(c?.rxPackets ?? 0), bytes: Number(c?.rxBytes ?? 0) },
        rttMs: rt?.rttMs ?? null,
        probesSent: rt?.probesSent ?? 0,
        probesHeard: rt?.probesHeard ?? 0,
        cc: rt?.cc ?? null,
        pmtu: pmtuStatus(link.mtu, rt),
        ...(rt?.train?.bps ? { train: { ...rt.train, bps: Math.round(rt.train.bps) } } : {}),
        ...(rt?.depthTrain ? { depthTrain: rt.depthTrain } : {}),
        ...(rt?.shapeBps ? { shapeBps: rt.shapeBps } : {}),
        ...(rt?.shapeQueue ? { shapeQueue: rt.shapeQueue } : {}),
        budget:
          link.budgetBytes && sent
            ? {
                limitBytes: names.get(id)?.budgetBytes || null,
                leftBytes: Number(link.budgetBytes > sent[id]! ? link.budgetBytes - sent[id]! : 0n),
                exhausted: sent[id]! >= link.budgetBytes,
                usedBytes: rt?.budgetUsedBytes === undefined ? null : Math.round(rt.budgetUsedBytes),
              }
            : null,
      });
    }
    const dropCounts: Record<string, number> = {};
    for (let r = 1; r < abi.DROP_REASONS.length; r++) {
      const v = mapLookup(drops._unsafeUnwrap(), abi.mapKey(r), abi.percpuValueSize(8, ncpu));
      if (v.isErr()) return err(v.error);
      dropCounts[abi.DROP_REASONS[r]!] = Number(v.value ? abi.sumPerCpuU64(v.value) : 0n);
    }
    // the portal's own shaping queues drop too (counted by the kernel, published by the control plane)
    dropCounts[SHAPE_QUEUE_DROPS] = out.reduce((a, l) => a + (l.shapeQueue?.drops ?? 0), 0);
    const lv = mapLookup(loopStats._unsafeUnwrap(), abi.mapKey(0), abi.percpuValueSize(abi.MP_LOOP_STATS_SIZE, ncpu));
    if (lv.isErr()) return err(lv.error);
    const ls = lv.value ? abi.decodeLoopStats(lv.value, ncpu) : { gso: 0n, frag: 0n, back: 0n };
    // whole-LAN mode: the NAT's mappings (one batch dump of mp_nat_in)
    let nat: NatCount | undefined;
    const cfgMap = st.value.role === 'local' ? open(abi.MAPS.config.name) : null;
    const cfg = cfgMap?.isOk() ? mapLookup(cfgMap.value, abi.mapKey(0), abi.MP_CONFIG_SIZE) : null;
    if (cfg?.isOk() && cfg.value && abi.decodeConfig(cfg.value).flags & abi.MP_CFG_LAN_NAT) {
      const natIn = open(abi.MAPS.natIn.name);
      const d = natIn.andThen((fd) => natDump(fd));
      if (d.isErr()) return err(d.error);
      nat = natCount(d.value, abi.natNowS());
    }
    const loop = { gso: Number(ls.gso), frag: Number(ls.frag), back: Number(ls.back) };
    const running = isAlive(st.value.pid);
    const packets = (xs: LinkStatus[]) => xs.reduce((a, l) => a + l.tx.packets + l.rx.packets, 0);
    const time = Date.now();
    let packetsLastSecond: number;
    if (running && published && time - published.time <= 2 * PUBLISH_MS && time > published.time) {
      packetsLastSecond = Math.round(((packets(out) - published.packets) * 1000) / (time - published.time));
    } else {
      // nobody counts for us: count for a second
      const total = async () => {
        let n = 0;
        for (const l of out) {
          const v = mapLookup(stats._unsafeUnwrap(), abi.mapKey(l.id), abi.percpuValueSize(abi.MP_LINK_STATS_SIZE, ncpu));
          const c = v.isOk() && v.value ? abi.decodeLinkStats(v.value, ncpu) : null;
          n += Number((c?.txPackets ?? 0n) + (c?.rxPackets ?? 0n));
        }
        return n;
      };
      const t0 = Date.now();
      const n0 = await total();
      await new Promise((r) => setTimeout(r, 1000));
      packetsLastSecond = Math.round(((await total()) - n0) * 1000 / Math.max(1, Date.now() - t0));
    }
    return ok({
      version: 2,
      time,
      instance,
      role: st.value.role,
      pid: st.value.pid,
      running,
      startedAt: st.value.startedAt,
      controlPlane: { running, lastSeenMs: published?.time ?? null },
      dataPath: { forwarding: out.some((l) => l.state === 'up'), packetsLastSecond },
      links: out,
      drops: dropCounts,
      loop,
      feedback: published?.feedback ?? null,
      badControl: published?.badControl ?? 0,
      security: published?.security ?? null,
      // a data path pinned before redundant mode existed has no mp_red_stats
      ...(redStats.isOk() ? { redundant: await redundantStatus(st.value.configFile, redStats.value, ncpu) } : {}),
      ...(nat ? { nat } : {}),
    });
  } finally {
    for (const fd of fds) closeFd(fd);
  }
}
