// The portal's running loop: the handshake (handshake-loop.ts: the LP initiates, the RP
// answers), probes on every link, liveness → link state in the BPF maps (a busy link whose
// data stops arriving goes down sooner, from the feedback: fast-down.ts), (on the RP) learning
// each link's endpoint and estimates from the LP's authenticated probes, and congestion control
// (cc.ts: feedback out every 20 ms on the fastest up link, feedback in → each link's rate and
// delay in mp_links). Data packets never come here; only control messages that decap passes up
// to these UDP sockets. Probes and feedback are signed on the way out and checked on the way in
// (auth.ts); without a session no probe is sent, so every link stays down.
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import type { LocalConfig, RemoteConfig } from '../config/types.js';
import { ipFamily } from '../netlink/ip.js';
import { livenessChanges, type LinkLiveness, type LivenessParams } from './liveness.js';
import { nextHoldMs } from './fast-down.js';
import { answer, decodeProbe, encodeProbe, PROBE_LEN, udpOverhead, type Probe } from './probe.js';
import { MAX_WAIT_MS, PmtuProber, type PmtuStatus, type SizeProbe } from './pmtu.js';
import { HINT_OFF, RAISE_OFF, retrainShape, startFromTrain, TRAIN_LEN, TRAIN_OUTER_BYTES, Trains, type TrainResult } from './train.js';
import { openShaper, type LinkShaper } from './shaper.js';
import { DEPTH_PEER_WAIT_MS, DEPTH_WAIT_MS, DepthTrains, depthLen, type DepthStatus } from './depth.js';
import { setPmtuProbe } from '../native/libmpctl.js';
import { decodeHdr, MP_CARRIER_IP, MP_ALIVE_NS, MP_CARRIER_UDP, MP_HDR, MP_HDR_LEN, MP_MAX_LINKS, MP_T_COOKIE, MP_T_FEEDBACK, MP_T_HS_INIT, MP_T_HS_RESP, MP_T_PROBE, offsetOf, type MpPeerProbe } from '../datapath/abi.js';
import { CcLoop, FEEDBACK_INTERVAL_MS, type CcCounters, type CcDatapath, type CcStatus } from '../cc/loop.js';
import type { StaticKeys } from '../security/keys.js';
import { INSECURE_WARNING, PortalAuth } from '../security/auth.js';
import { Initiator, Responder } from '../security/handshake-loop.js';
import type { KeysPort } from '../security/keys-port.js';
import type { SecurityStatus } from '../security/security-status.js';
import { budgetFile, loadBudgetFile, restoreUsage, SAVE_INTERVAL_MS, saveBudgetFile, STATE_DIR } from '../cc/budget-store.js';
import { controlWireBytes } from '../cc/budget-loop.js';
import type { SavedBudget } from '../cc/budget.js';
import { overhead, type LinkMtu } from '../plan/mtu.js';
import { performance } from 'node:perf_hooks';
import { Cadence, EARLY_MS, Wake } from './wake.js';

/** What the loop changes in the data path (datapath.ts implements it over the pinned maps). */
export interface LinkStatePort extends CcDatapath {
  /** liveness, or the operator's administrative down (MP_LINK_ADMIN_DOWN) */
  setState(linkId: number, state: LinkLiveness | 'admin-down'): Result<void, MpError>;
  /** RP: a probe told us where link `linkId` is, what the LP estimates for it and (budgetBytes,
   * mp_link.budget_bytes) how far our sending on it may go; budgetBytes absent: it stays */
  learn(
    linkId: number,
    from: { address: string; port: number },
    est: { rateBps: bigint; owdUs: number; metric: number; carrier: number; budgetBytes?: bigint; peerEstimate?: boolean; mtu?: number },
  ): Result<void, MpError>;
  /** the heartbeat the data path holds its links' rates without (mp_config.alive_ns, bpf/mp.h
   * MP_ALIVE_NS): written every 195-250 ms (aliveWriter) */
  alive(): Result<void, MpError>;
  /** the last probe request the data path verified and answered on each link id (bpf/probe.h,
   * mp_peer_probe, read as memory); null: none. The array may be reused by the next call. */
  peerProbes(): Result<readonly (MpPeerProbe | null)[], MpError>;
  /** The up links' outer path MTUs (0: not known, the interface's is used): the LP writes each
   * link's `up` into mp_link.mtu (the RP takes `down` with learn), and both the tunnel's inner
   * MTU and MSS clamp (plan/mtu.ts tunnelMtus) into the config. */
  setLinkMtus(links: (LinkMtu & { id: number })[]): Result<void, MpError>;
  /** RP: the path MTU toward `address` the kernel cached from ICMP "fragmentation needed" /
   * "packet too big" about our outer packets (null: none) */
  routeMtu(address: string): Promise<Result<number | null, MpError>>;
}

export interface LinkRuntimeStatus {
  id: number;
  state: LinkLiveness;
  lastHeardMs: number | null;
  rttMs: number | null;
  probesSent: number;
  probesHeard: number;
  /** the congestion controller of our sending direction on this link */
  cc: CcStatus | null;
  /** LP, a metered link: bytes counted against its budget this period (both directions) */
  budgetUsedBytes?: number;
  /** path MTU discovery (pmtu.ts). LP: its searches, both directions; RP: what the LP's
   * requests said (confirmed outer MTUs, 0 = not known yet) and what ICMP "too big" about our
   * packets taught the kernel toward the LP (its route MTU; absent: nothing) */
  pmtu?: { up: PmtuStatus; down: PmtuStatus } | { peerUp: number; peerDown: number; icmp?: number };
  /** the capacity train of our sending direction (train.ts): its measurement; absent: none */
  train?: TrainResult;
  /** the depth train of our sending direction (depth.ts); absent: none over yet */
  depthTrain?: DepthStatus;
  /** `shape = true`: the rate the link's htb class was last written with (bits/s of frames,
   * shaper.ts); absent: not shaped, or no class written yet */
  shapeBps?: number;
  /** the link's class queue (shaper.ts queues; absent: no class, or not read yet): packets it
   * dropped because it was full, and bytes waiting in it */
  shapeQueue?: { drops: number; bytes: number };
}

export interface Runtime {
  status(): LinkRuntimeStatus[];
  /** counters of control messages that were malformed */
  badControl(): number;
  /** feedback messages sent, taken, duplicate, malformed */
  feedback(): CcCounters;
  /** keys, session and handshake counters */
  security(): SecurityStatus;
  /** Takes a link administratively down (MP_LINK_ADMIN_DOWN: liveness leaves it so) or back. */
  setAdmin(linkId: number, down: boolean): Result<void, MpError>;
  stop(): Promise<void>;
}

/** What the loop needs for authentication: the static keys (null with insecure_no_auth), the
 * peer's public key and where session keys go. */
export interface AuthSetup {
  local: StaticKeys | null;
  /** the peer's public key, raw (null with insecure_no_auth) */
  peer: Buffer | null;
  keys: KeysPort;
  /** a data path adopted from a dead portal: take over its keys (PortalAuth.adopt) */
  adopted?: boolean;
}

function portalAuth(a: AuthSetup, log: Log): PortalAuth {
  if (!a.local || !a.peer) {
    log(INSECURE_WARNING);
    return new PortalAuth('insecure-no-auth', a.peer?.toString('base64') ?? '', a.keys, log);
  }
  const auth = new PortalAuth('authenticated', a.peer.toString('base64'), a.keys, log);
  if (a.adopted && a.keys.read) {
    const t = a.keys.read(auth.now());
    if (t.isOk()) auth.adopt(t.value);
    else log('reading the adopted keys failed', { error: t.error });
  }
  return auth;
}

const isHandshake = (t: number | null) => t === MP_T_HS_INIT || t === MP_T_HS_RESP || t === MP_T_COOKIE;

type Log = (msg: string, fields?: Record<string, unknown>) => void;

/** The run loop's clock: CLOCK_MONOTONIC in ns, as the data path's bpf_ktime_get_ns. A port:
 *  unit tests set the time by hand instead of sleeping through probe intervals. */
export interface Clock {
  ns(): bigint;
}
export const monotonic: Clock = { ns: () => process.hrtime.bigint() };
const clockFns = (c: Clock) => ({ nowNs: () => c.ns(), nowMs: () => Number(c.ns() / 1_000_000n), nowUs: () => Number(c.ns() / 1000n) >>> 0 });
const { nowMs, nowNs, nowUs } = clockFns(monotonic);

/** The sockets' address lookup (dgram's `lookup`): the loop sends only to address literals (the
 * config's remote, a link's learned endpoint), handed back at once. dgram's default, dns.lookup,
 * answers a literal on the next tick, so every send went through process.nextTick and a second
 * callback (an idle LP sends 40 datagrams a second: a few % of its main thread, README CPU). */
export function literalLookup(
  address: string,
  options: LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const fam = isIP(address);
  if (fam !== 0) callback(null, address, fam);
  else dnsLookup(address, typeof options === 'number' ? { family: options } : options, callback);
}

async function bind(type: 'udp4' | 'udp6', address: string, port: number): Promise<Result<Socket, MpError>> {
  const s = createSocket({ type, ipv6Only: type === 'udp6', lookup: literalLookup as never });
  return new Promise((resolve) => {
    s.once('error', (e) =>
      resolve(err({ kind: 'CommandFailed', cmd: `bind ${address}:${port}`, code: null, stderr: (e as Error).message })),
    );
    s.bind({ address, port, exclusive: true }, () => resolve(probeMode(s, type === 'udp6' ? 6 : 4).map(() => s)));
  });
}

/** Every datagram of a portal's socket leaves with DF and is never fragmented by the kernel,
 * whatever path MTU it cached (IP_PMTUDISC_PROBE): a padded probe that arrives proves its size.
 * Node's dgram has no such option: the fd is taken from the socket's handle. */
function probeMode(s: Socket, family: 4 | 6): Result<void, MpError> {
  const state = Object.getOwnPropertySymbols(s).find((k) => k.description === 'state symbol');
  const fd = (state && (s as unknown as Record<symbol, { handle?: { fd?: number } }>)[state]?.handle?.fd) ?? -1;
  if (fd < 0) return err({ kind: 'Bug', message: 'no fd on the UDP socket for IP_MTU_DISCOVER' });
  return setPmtuProbe(fd, family);
}

/** The mp_hdr type of a control packet (null: too short for a header): ver_type's low nibble,
 * read without decoding the header (every message that arrives). */
const VER_TYPE_OFF = offsetOf(MP_HDR, 'ver_type');
const msgType = (b: Buffer): number | null => (b.length >= MP_HDR_LEN ? b.readUInt8(VER_TYPE_OFF) & 0xf : null);

/** Liveness and administrative state of each link. `clock` (ms, monotonic) is a port: unit
 *  tests drive it by hand instead of sleeping through probe intervals. */
export class Tracker {
  readonly lastHeard = new Map<number, number | null>();
  readonly state = new Map<number, LinkLiveness>();
  readonly rtt = new Map<number, number>();
  readonly sent = new Map<number, number>();
  readonly heard = new Map<number, number>();
  /** links the operator took down: liveness does not touch them */
  readonly admin = new Set<number>();
  /** RP: links the LP's operator took down (its probes say so: MP_PROBE_F_ADMIN_DOWN) */
  readonly peerAdmin = new Set<number>();
  /** links the data called down (fast-down.ts): down until a probe heard after this time */
  private readonly held = new Map<number, number>();
  private readonly holdMs = new Map<number, number>();
  /** the hold and the last return before the last fast-down (restored when its verdict proves
   * wrong: fastUp) */
  private readonly beforeVerdict = new Map<number, { holdMs: number; upAt: number | undefined }>();
  /** when each link last came up */
  private readonly upAt = new Map<number, number>();
  /** told when a link comes (back) up */
  onUp: (id: number) => void = () => {};
  bad = 0;

  constructor(
    ids: number[],
    private readonly port: LinkStatePort,
    private readonly params: LivenessParams,
    private readonly log: Log,
    private readonly clock: () => number = nowMs,
  ) {
    for (const id of ids) {
      this.lastHeard.set(id, null);
      this.state.set(id, 'down');
    }
  }

  hear(id: number): void {
    this.lastHeard.set(id, this.clock());
    this.heard.set(id, (this.heard.get(id) ?? 0) + 1);
    // a link that comes back is used at once; one that is up stays so (the timer evaluates)
    if (this.state.get(id) !== 'up') this.evaluate();
  }

  /** taken down by this portal's operator or (RP) by the LP's */
  isAdmin(id: number): boolean {
    return this.admin.has(id) || this.peerAdmin.has(id);
  }

  /** up by liveness and not taken down by an operator */
  usable(id: number): boolean {
    return this.state.get(id) === 'up' && !this.isAdmin(id);
  }

  /** Administrative down/up, by this portal's operator or (`by: 'peer'`) the LP's: the link
   * stays down while either holds it. */
  setAdmin(id: number, down: boolean, by: 'operator' | 'peer' = 'operator'): Result<void, MpError> {
    if (!this.lastHeard.has(id)) return err({ kind: 'NotFound', what: 'link', message: `no link ${id}` });
    const holders = by === 'peer' ? this.peerAdmin : this.admin;
    const why = by === 'peer' ? ' by the Local Portal' : '';
    if (down) {
      const r = this.port.setState(id, 'admin-down');
      if (r.isErr()) return r;
      if (!holders.has(id)) this.log(`link ${id} administratively down${why}`, { link: id });
      holders.add(id);
      return ok(undefined);
    }
    if (!holders.delete(id)) return ok(undefined);
    if (this.isAdmin(id)) return ok(undefined); // the other side still holds it down
    this.log(`link ${id} administratively up${why}`, { link: id });
    this.state.delete(id); // the next evaluation writes its liveness
    this.evaluate();
    return ok(undefined);
  }

  /** The feedback says the link's data stopped arriving (fast-down.ts): down now, until a
   * probe heard after the hold (0 unless the link keeps dying soon after coming back). */
  fastDown(id: number): void {
    // never the last usable link: with nowhere else to send, the probes decide
    if (!this.usable(id) || ![...this.state.keys()].some((o) => o !== id && this.usable(o))) return;
    const r = this.port.setState(id, 'down');
    if (r.isErr()) {
      this.log('link state write failed', { link: id, error: r.error });
      return;
    }
    const now = this.clock();
    const up = this.upAt.get(id);
    this.beforeVerdict.set(id, { holdMs: this.holdMs.get(id) ?? 0, upAt: up });
    const hold = nextHoldMs(this.holdMs.get(id) ?? 0, up === undefined ? null : now - up);
    this.holdMs.set(id, hold);
    this.held.set(id, now + hold);
    this.state.set(id, 'down');
    this.log(`link ${id} down: its data stopped arriving`, { link: id, state: 'down', reason: 'data', holdMs: hold });
  }

  /** The data of a link fastDown took down arrived after all (fast-down.ts: a stall, not a cut):
   * the verdict is void, its hold with it, and the probes' liveness decides at once. */
  fastUp(id: number): void {
    if (this.state.get(id) !== 'down' || !this.held.has(id)) return;
    this.held.delete(id);
    const before = this.beforeVerdict.get(id);
    this.holdMs.set(id, before?.holdMs ?? 0);
    this.log(`link ${id}: its data arrived after all (a stall, not a cut)`, { link: id, reason: 'data' });
    this.state.delete(id); // the next evaluation writes its liveness
    this.evaluate();
    // a return from a verdict that was wrong is no return: the flap rule (nextHoldMs) counts from
    // the one before
    if (before?.upAt === undefined) this.upAt.delete(id);
    else this.upAt.set(id, before.upAt);
  }

  /** Every probe round and on a link heard while down: links whose liveness changed to the map. */
  evaluate(): void {
    const now = this.clock();
    for (const [id, s] of livenessChanges(this.state, this.lastHeard, now, this.params, this.held, (id) => this.isAdmin(id))) {
      const r = this.port.setState(id, s);
      if (r.isErr()) {
        this.log('link state write failed', { link: id, error: r.error });
        continue;
      }
      this.state.set(id, s);
      this.log(`link ${id} ${s}`, { link: id, state: s });
      if (s === 'up') {
        this.held.delete(id);
        this.upAt.set(id, now);
        this.onUp(id);
      }
    }
  }

  status(cc: CcLoop): LinkRuntimeStatus[] {
    return [...this.lastHeard.keys()].map((id) => ({
      id,
      state: this.state.get(id) ?? 'down',
      lastHeardMs: this.lastHeard.get(id) ?? null,
      rttMs: this.rtt.get(id) ?? null,
      probesSent: this.sent.get(id) ?? 0,
      probesHeard: this.heard.get(id) ?? 0,
      cc: cc.status(id),
      ...(cc.budgets.has(id) ? { budgetUsedBytes: cc.budgets.status(id)!.usedBytes } : {}),
    }));
  }
}

/**
 * A control message that is not a handshake: checked (auth.ts), then feedback goes to the
 * congestion controller and a probe is returned. Anything else is counted and dropped (null).
 */
function takeControl(msg: Buffer, type: number | null, auth: PortalAuth, cc: CcLoop, t: Tracker): Probe | null {
  if (type !== MP_T_FEEDBACK && type !== MP_T_PROBE) {
    t.bad++;
    return null;
  }
  if (!auth.check(msg)) return null;
  if (type === MP_T_FEEDBACK) {
    if (!cc.onFeedbackPacket(msg)) t.bad++;
    return null;
  }
  const p = decodeProbe(msg);
  if (!p) t.bad++;
  return p;
}

/**
 * RP: the LP's administrative state of a link, as its signed probe request tells it
 * (MP_PROBE_F_ADMIN_DOWN, set in every request while the LP's operator holds the link down): the
 * RP stops sending on the link too, and uses it again once a request comes without the flag.
 * Takes the decoded request, however it arrived (the socket here, or the data path's record).
 */
export function peerAdminFromProbe(t: Pick<Tracker, 'peerAdmin' | 'setAdmin'>, p: Probe, log: Log): void {
  if (p.reply || Boolean(p.adminDown) === t.peerAdmin.has(p.linkId)) return;
  const r = t.setAdmin(p.linkId, Boolean(p.adminDown), 'peer');
  if (r.isErr()) log('link state write failed', { link: p.linkId, error: r.error });
}

/** IPv6's minimum MTU (RFC 8200 5): a link that carries less takes IPv6 packets only up to its size. */
const IPV6_MIN_MTU = 1280;
const small = (name: string, inner: number) =>
  `link ${name} carries inner packets up to ${inner} bytes, below IPv6's minimum 1280: larger IPv6 packets (and anything larger) go on the other links only`;

/** LP: a confirmed link's path MTU events (confirm probes, their deadlines) wait this long at
 * most for the next probe round (at the default 100 ms interval: all of them, confirm probes every
 * 300 ms instead of 250). */
const CONFIRM_DEFER_MS = 100;

/** RP: how often the kernel's path MTU cache (ICMP "too big" about our packets) is read: while
 * packets move, and while none do (what we send then is probe replies and feedback, never at a
 * size the kernel may have learned less for; the first wake with packets moving reads it at once
 * when the last read is ICMP_POLL_MS old). Idle, 3 links: 3 netlink requests every 2 s were ~4 %
 * of the RP's main thread (perf, README CPU). */
const ICMP_POLL_MS = 500;
const ICMP_IDLE_POLL_MS = 10_000;

/** RP: what a request from the LP says about its link's path MTUs (0 = not confirmed yet).
 * Whoever decodes the request (this loop, or the data path that answers it) reads it here. */
export function peerMtu(p: Probe, family: 4 | 6): LinkMtu {
  return { family, carrier: p.carrier === MP_CARRIER_IP ? 'ip' : 'udp', up: p.pmtuUp ?? 0, down: p.pmtuDown ?? 0 };
}

/** A capacity train on link `id` (train.ts; `what`: the link's first, or a re-train of a link
 * that carries flows, shaped to its estimate: retrainShape; Trains.next): its requests,
 * built by `req`, padded to at most `maxOuter` bytes on the wire (`fam`'s IP and UDP headers
 * included), signed first and then sent back to back. Nothing goes without a session; a send
 * that fails voids the train (tried again later). */
function sendTrain(trains: Trains, id: number, maxOuter: number, fam: 4 | 6, req: (seq: number) => Probe, auth: PortalAuth, at: { ms: number; us: number }, what: 'first' | { retrain: number }, send: (b: Buffer, done: (e: Error | null) => void) => void): void {
  const shape = what === 'first' ? { len: TRAIN_LEN, outerBytes: maxOuter } : retrainShape(what.retrain, maxOuter);
  const msgs = signTrain(trains.start(id, at.ms, shape.outerBytes, what !== 'first', shape.len), shape.outerBytes, fam, req, auth, at.us);
  if (!msgs) return trains.failed(id);
  for (const m of msgs) send(m, (e) => void (e && trains.failed(id)));
}

/** A train's requests (a capacity train's or a depth train's: MP_PROBE_F_TRAIN), one per
 * probe_seq, padded to `outer` bytes on the wire (`fam`'s IP and UDP headers included) and
 * signed; null: no session yet. */
function signTrain(seqs: readonly number[], outer: number, fam: 4 | 6, req: (seq: number) => Probe, auth: PortalAuth, atUs: number): Buffer[] | null {
  const msgs: Buffer[] = [];
  for (const seq of seqs) {
    const signed = auth.sign(encodeProbe({ ...req(seq), train: true }, atUs, outer - udpOverhead(fam)));
    if (!signed) return null;
    msgs.push(signed);
  }
  return msgs;
}

/** A depth train on link `id` (depth.ts): depthLen requests of `outer` bytes for the link's
 * estimate, built by `req`, signed first and sent back to back, each timed as it goes (Node's
 * dgram sends to an address on the next tick: a tick queued after each send runs right after
 * its datagram went; timed as a whole, the sends of a 168-request burst in the lab were not even:
 * the first 43 went at once, filling a 10 Mbit/s link's 50 ms buffer, and the depth read 43 ms).
 * Nothing goes without a session; a send that fails voids it (tried again). */
function sendDepth(depths: DepthTrains, id: number, outer: number, fam: 4 | 6, estimateBps: number, req: (seq: number) => Probe, auth: PortalAuth, at: { ms: number; us: number }, clockUs: () => number, send: (b: Buffer, done: (e: Error | null) => void) => void): void {
  const msgs = signTrain(depths.start(id, at.ms, outer, depthLen(estimateBps, outer)), outer, fam, req, auth, at.us);
  if (!msgs) return depths.failed(id);
  msgs.forEach((m, i) => {
    send(m, (e) => void (e && depths.failed(id)));
    process.nextTick(() => depths.sent(id, i, clockUs()));
  });
}

/** Depth trains that are over: a depth found becomes the link's controller's (cc.seedDepth: a
 * depth learned from a loss already stays), and the log says what each found. */
function takeDepths(depths: DepthTrains, nowMs: number, cc: CcLoop, log: Log, name: (id: number) => string): void {
  for (const { id, result: r, outerBytes, again } of depths.finish(nowMs)) {
    const what = `${r.replies} of ${r.sent} replies, ${outerBytes} B each, the most queue met ${(r.maxQueueUs / 1000).toFixed(1)} ms`;
    if (r.depthUs === null) {
      const why = { deep: 'no overflow: the buffer took it', few: 'too few replies', shallow: 'a buffer too small to plan on', mixed: 'losses that were not the buffer\'s' }[r.none ?? 'few'];
      log(`link ${name(id)}: depth train found no depth (${why}; ${what}): ${again ? 'tried again' : 'no plan cap until a loss shows one'}`, { link: id, ...r, again });
      continue;
    }
    const used = cc.seedDepth(id, r.depthUs);
    log(`link ${name(id)}: depth train ${(r.depthUs / 1000).toFixed(1)} ms of buffer (${what}, overflow from request ${r.overflowAt})${used ? '' : '; not used: a depth is known already'}`, { link: id, ...r, used });
  }
}

/** Trains that are over: a measurement becomes the link's controller's starting estimate
 * where the link has no configured rate (`hint` null) or one far off (startFromTrain; cc.seedRate:
 * a link that carried data already keeps its own), and the log says it; a re-train's raises the
 * estimate where it is more than RAISE_OFF times it (cc.raiseFromTrain). */
function takeTrains(trains: Trains, nowMs: number, cc: CcLoop, log: Log, name: (id: number) => string, hint: (id: number) => number | null): void {
  for (const { id, result: r } of trains.finish(nowMs)) {
    const what = `${r.replies} of ${r.sent} replies over ${(r.spanUs / 1000).toFixed(1)} ms, ${r.outerBytes} B each`;
    if (r.retrain) {
      const raised = trains.takeRetrain(id, nowMs, r.bps, cc.estimateBps(id), (bps) => cc.raiseFromTrain(id, bps, RAISE_OFF));
      if (raised) log(`link ${name(id)}: re-train ${(r.bps! / 1e6).toFixed(1)} Mbit/s (${what}, ${r.dataBytes} B of data between): more than ${RAISE_OFF}x the estimate, raised`, { link: id, ...r, used: true });
      continue;
    }
    if (r.bps === null) {
      log(`link ${name(id)}: capacity train inconclusive (${what}): tried again later`, { link: id, ...r });
      continue;
    }
    const h = hint(id);
    const mbit = (bps: number) => `${(bps / 1e6).toFixed(1)} Mbit/s`;
    if (!startFromTrain(r.bps, h)) {
      log(`link ${name(id)}: capacity train ${mbit(r.bps)} (${what}), within ${HINT_OFF}x of the configured ${mbit(h!)}: that stays the start`, { link: id, ...r, used: false });
      continue;
    }
    const used = cc.seedRate(id, r.bps);
    const off = h === null ? '' : `; the configured ${mbit(h)} is more than ${HINT_OFF}x off`;
    log(`link ${name(id)}: capacity train ${mbit(r.bps)} (${what})${off}${used ? '' : '; not used: the link measures itself already'}`, { link: id, ...r, used });
  }
}

/** CcLoop's shape option when the portal shapes its links. */
const shapeOpt = (shaper: LinkShaper | null) => (shaper ? { shape: shaper } : {});

/** The Runtime both portals return: their loop's parts, and a stop that ends timers, the
 * handshake loop and the sockets. */
function runtimeOf(
  t: Tracker,
  cc: CcLoop,
  auth: PortalAuth,
  status: () => LinkRuntimeStatus[],
  wake: Wake,
  socks: Socket[],
  /** last words before the sockets close (the LP saves its budget usage) */
  onStop: () => Promise<void> = async () => {},
  shaper: LinkShaper | null = null,
): Runtime {
  // the class queues are read again (for the next call: the publisher's, once a second) while
  // packets move, and once after they stopped; an idle portal's queues neither fill nor drop
  // (a dump costs ~0.3 ms of CPU)
  let readIdle = false;
  return {
    status: () => {
      if (!shaper) return status();
      const classes = shaper.rates();
      const queues = shaper.queues();
      if (cc.busy() || !readIdle) shaper.refreshQueues();
      readIdle = !cc.busy();
      return status().map((s) => {
        const q = queues.get(s.id);
        return {
          ...s,
          ...(classes.has(s.id) ? { shapeBps: classes.get(s.id)! } : {}),
          ...(q ? { shapeQueue: { drops: q.drops, bytes: q.backlogBytes } } : {}),
        };
      });
    },
    badControl: () => t.bad,
    feedback: () => ({ ...cc.counters }),
    security: () => auth.status(),
    setAdmin: (id, down) => t.setAdmin(id, down),
    stop: async () => {
      wake.stop();
      await onStop();
      auth.stop();
      await shaper?.close();
      await Promise.all(socks.map((x) => new Promise<void>((r) => x.close(() => r()))));
    },
  };
}

/** LP: one socket per link bound to the link's source address; the handshake and probes to the RP. */
export async function startLocal(
  cfg: LocalConfig,
  sources: Map<number, string>,
  port: LinkStatePort,
  authSetup: AuthSetup,
  log: Log,
  /** each link's interface MTU: the largest probe (default 1500) */
  ceilings: Map<number, number> = new Map(),
  /** an adopted data path's path MTUs (hitless restart): confirmed from the start, no search
   * (PmtuProber.seed; 0: not known, that direction searches) */
  seeds: Map<number, { up: number; down: number }> = new Map(),
  clock: Clock = monotonic,
): Promise<Result<Runtime, MpError>> {
  const { nowMs, nowNs, nowUs } = clockFns(clock);
  const params = { intervalMs: cfg.probeIntervalMs, missed: 3 };
  const t = new Tracker(cfg.links.map((l) => l.id), port, params, log, nowMs);
  // per-link shaping (shaper.ts): each link's class on its interface follows its controller
  const shaperR = cfg.shape ? await openShaper((id) => cfg.links[id]?.interface ?? null, cfg.links.map((l) => l.interface), log) : ok(null);
  if (shaperR.isErr()) return err(shaperR.error);
  const shaper = shaperR.value;
  const cc = new CcLoop(port, log, { adaptive: cfg.congestionControl, onLinkDead: (id) => t.fastDown(id), onLinkAlive: (id) => t.fastUp(id), idleFeedbackMs: params.intervalMs, ...shapeOpt(shaper) });
  const pmtu = new PmtuProber();
  // capacity trains (train.ts): every link but a metered one with a configured rate (a budget
  // pays for them; one whose rate nobody configured is worth its ~31 KB)
  const trains = new Trains();
  // depth trains (depth.ts): each link's buffer, once its first capacity train is over
  const depths = new DepthTrains();
  const linkName = (id: number) => cfg.links[id]!.name;
  const linkHint = (id: number) => (cfg.links[id]!.unrated ? null : cfg.links[id]!.rateBps);
  const trained = (id: number) => cfg.links[id]!.unrated === true || cfg.links[id]!.budgetBytes === 0;
  t.onUp = (id) => {
    cc.linkUp(id);
    pmtu.restart(id, nowMs());
  };
  const auth = portalAuth(authSetup, log);
  const budgets = await budgetPersistence(cfg, cc, log);
  for (const l of cfg.links)
    cc.addLink(l.id, { rateBps: l.rateBps, owdUs: l.delayUs, budget: { limitBytes: l.budgetBytes, period: l.budgetPeriod, saved: budgets.restored.get(l.name) } });
  /** A message may have made something due sooner: a search round (an answer ended the last
   * one), or feedback every interval (the peer's shows our packets arriving). Set once the
   * loop's timer exists (messages may come while the sockets are being bound). */
  let poke = () => {};
  /** The same, after a message on link `id` (its path MTU discovery may be due sooner). */
  let pokeLink = (id: number) => void id;
  // each link's socket; `sent`: count a message that went out (budgets count control traffic)
  const socks: { id: number; sock: Socket; remote: string; fam: 4 | 6; sent: (udpPayload: number) => void }[] = [];
  // usable links, preferred first: lowest metric, then the fastest static estimate
  const preferred = [...cfg.links].sort((a, b) => a.metric - b.metric || b.rateBps - a.rateBps).map((l) => l.id);
  const initiator =
    auth.authenticated && authSetup.local && authSetup.peer
      ? new Initiator(auth, authSetup.local, authSetup.peer, {
          all: cfg.links.map((l) => l.id),
          up: () => preferred.filter((id) => t.usable(id)),
          send: (id, msg) => {
            const s = socks.find((x) => x.id === id);
            s?.sock.send(msg, cfg.port, s.remote, (e) => void (e ? log('handshake send failed', { link: id, error: e.message }) : s.sent(msg.length)));
          },
          peer: (id) => {
            const s = socks.find((x) => x.id === id);
            return s ? { address: s.remote, port: cfg.port } : undefined;
          },
        }, log)
      : null;
  for (const l of cfg.links) {
    const src = sources.get(l.id);
    const fam = src ? ipFamily(src) : null;
    const remote = cfg.remote.find((r) => ipFamily(r) === fam);
    if (!src || !fam || !remote) {
      for (const s of socks) s.sock.close();
      void shaper?.close();
      return err({ kind: 'ConfigInvalid', path: `link[${l.id}].source`, value: src ?? null, message: 'no source address with a matching remote address family' });
    }
    const s = await bind(fam === 4 ? 'udp4' : 'udp6', src, cfg.port);
    if (s.isErr()) {
      for (const x of socks) x.sock.close();
      void shaper?.close();
      return err(s.error);
    }
    s.value.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      cc.budgets.countControl(l.id, 'rx', controlWireBytes(msg.length, fam));
      const type = msgType(msg);
      if (isHandshake(type)) {
        if (initiator) initiator.onMessage(l.id, msg, rinfo);
        else t.bad++;
        return;
      }
      const p = takeControl(msg, type, auth, cc, t);
      if (!p) {
        if (type === MP_T_FEEDBACK) poke(); // it may show our packets moving
        return;
      }
      if (!p.reply || p.linkId !== l.id) {
        t.bad++;
        return;
      }
      if (p.train) {
        // a capacity train's answer: when its request arrived says the link's rate (train.ts);
        // queued behind its train, its round trip says nothing. A depth train's: the queue it met
        if (DepthTrains.owns(p.probeSeq)) depths.reply(l.id, p.probeSeq, p.tsUs ?? 0);
        else if (trains.reply(l.id, p.probeSeq, p.tsUs ?? 0, p.rxBytes ?? null)) takeTrains(trains, nowMs(), cc, log, linkName, linkHint); // the last one ends it
        return;
      }
      if (p.pmtuProbe) {
        // a size probe's answer: its size counts for path MTU discovery, its arrival for liveness
        if (pmtuReply(l.id, p.probeSeq, msg.length + udpOverhead(fam), p.reqLen ?? 0, nowMs())) t.hear(l.id);
        pokeLink(l.id);
        return;
      }
      t.rtt.set(l.id, Number(nowNs() - p.sentNs) / 1e6);
      cc.onProbeRtt(l.id, Number(nowNs() - p.sentNs) / 1e3);
      t.hear(l.id);
      pmtu.heard(l.id, Number(p.sentNs / 1_000_000n), nowMs()); // size probes sent well before it are lost
      pokeLink(l.id);
    });
    s.value.on('error', (e) => log('socket error', { link: l.id, error: e.message }));
    socks.push({ id: l.id, sock: s.value, remote, fam, sent: (n) => cc.budgets.countControl(l.id, 'tx', controlWireBytes(n, fam)) });
    pmtu.addLink(l.id, ceilings.get(l.id) ?? 1500, PROBE_LEN + udpOverhead(fam), l.budgetBytes > 0);
    const seed = seeds.get(l.id);
    if (seed) pmtu.seed(l.id, seed, nowMs());
    const inner = (ceilings.get(l.id) ?? 1500) - overhead(fam, l.carrier);
    if (inner < IPV6_MIN_MTU) log(`warning: ${small(l.name, inner)}`, { link: l.id, innerMtu: inner });
  }
  /** A request on link `id`: our estimate of it, its budget and its confirmed path MTUs. */
  const request = (id: number, probeSeq: number): Probe => {
    const l = cfg.links[id]!;
    const m = pmtu.mtus(id);
    return {
      linkId: id,
      reply: false,
      metric: l.metric,
      carrier: l.carrier === 'ip' ? MP_CARRIER_IP : MP_CARRIER_UDP,
      probeSeq,
      sentNs: nowNs(),
      rateBps: BigInt(l.rateBps),
      owdUs: cc.measuredOwdUs(id) ?? l.delayUs, // the RP's delay for the link until its own feedback measures one
      budgetBytes: cc.budgets.allowance(id), // what the RP may still send on it (budget.ts)
      pmtuDown: m?.confirmedDown ?? 0, // the RP schedules nothing larger on the link
      pmtuUp: m?.confirmedUp ?? 0,
      unrated: l.unrated === true, // rate_bps is no configured rate: the RP starts from its own train
    };
  };
  let seq = 0;
  const heartbeat = aliveWriter(port, log, nowMs);
  /** links whose request this round is their confirm pair (pmtuTick, run before tick in a probe
   * round): it asks for a reply like the liveness request does, so that one is not sent too */
  const confirmed = new Set<number>();
  const tick = () => {
    initiator?.tick();
    seq++;
    for (const { id, sock, remote, sent } of socks) {
      if (confirmed.has(id)) continue;
      const signed = auth.sign(encodeProbe({ ...request(id, seq), adminDown: t.admin.has(id) }, nowUs()));
      if (!signed) continue; // no session yet: nothing but handshakes goes out
      sock.send(signed, cfg.port, remote, (e) => {
        if (e) return;
        t.sent.set(id, (t.sent.get(id) ?? 0) + 1);
        sent(signed.length);
      });
    }
    t.evaluate();
    // capacity trains on the usable links (train.ts)
    takeTrains(trains, nowMs(), cc, log, linkName, linkHint);
    if (!cfg.congestionControl) return;
    let burst = false; // one depth train a tick: bursts on several links at once crowd the sender
    for (const { id, sock, remote, fam, sent } of socks) {
      if (!trained(id) || !t.usable(id)) continue;
      const what = trains.next(id, nowMs(), () => cc.roomSuspected(id), () => cc.estimateBps(id));
      // else its buffer (not on a metered link: ~DEPTH_SPAN_MS of it), once its rate is known,
      // while no flow uses it (its packets would queue with the burst and be lost with it) and
      // no size probe's loss would mislead the search
      const depth = what === null && !burst && cfg.links[id]!.budgetBytes === 0 && trains.settled(id) && depths.due(id, nowMs()) && !cc.carried(id) && !searching(id);
      if (what === null && !depth) continue;
      const outer = Math.min(pmtu.mtus(id)?.confirmedUp || TRAIN_OUTER_BYTES, ceilings.get(id) ?? 1500);
      const send = (b: Buffer, done: (e: Error | null) => void) =>
        sock.send(b, cfg.port, remote, (e) => {
          if (!e) sent(b.length);
          done(e);
        });
      if (what !== null) sendTrain(trains, id, outer, fam, (s) => request(id, s), auth, { ms: nowMs(), us: nowUs() }, what, send);
      else {
        burst = true;
        sendDepth(depths, id, outer, fam, cc.estimateBps(id), (s) => request(id, s), auth, { ms: nowMs(), us: nowUs() }, nowUs, send);
      }
    }
    takeDepths(depths, nowMs(), cc, log, linkName);
  };
  // path MTU discovery: size probes on the usable links, and the MTUs they find to the data path
  /** Is either direction of link `id` searching (its events are kept to their times)? */
  const searching = (id: number): boolean => {
    const st = pmtu.status(id);
    return st !== null && (st.up.mode === 'search' || st.down.mode === 'search');
  };
  /** The size probes due on a link, when they are its two directions' confirm probes (both
   * confirmed: due() sends nothing else then). */
  const confirmPair = (id: number, sps: readonly SizeProbe[]): [SizeProbe, SizeProbe] | null => {
    if (sps.length !== 2 || sps[0]!.dir === sps[1]!.dir || searching(id)) return null;
    return sps[0]!.dir === 'up' ? [sps[0]!, sps[1]!] : [sps[1]!, sps[0]!];
  };
  /** merged confirm probes: the up probe's seq (the one the request carries) → the down probe's */
  const merged = new Map<number, { other: number; at: number }>();
  const pruneMerged = (now: number) => {
    if (merged.size < 16) return;
    for (const [seq, m] of merged) if (now - m.at > 2 * MAX_WAIT_MS) merged.delete(seq);
  };
  /** A size probe's reply on link `id`: for path MTU discovery (both probes of a merged pair:
   * the request's length as it arrived tells the up size, the reply's own the down size).
   * false: it answers no probe in flight. */
  const pmtuReply = (id: number, seq: number, replyOuter: number, reqLen: number, now: number): boolean => {
    const m = merged.get(seq);
    if (m) {
      merged.delete(seq);
      pmtu.reply(id, m.other, replyOuter, reqLen, now);
    }
    return pmtu.reply(id, seq, replyOuter, reqLen, now);
  };
  const written: { id: number; up: number; down: number }[] = [];
  const ptbSeen = new Map<number, number>();
  const pmtuTick = (late: number, round: boolean) => {
    const now = nowMs();
    confirmed.clear();
    for (const { id, sock, remote, fam, sent } of socks) {
      // ICMP "too big" about our packets on the link (bpf/ptb.h): a hint, the search confirms it
      const rx = port.readRx(id);
      const seen = ptbSeen.get(id); // the first reading is the baseline (an adopted data path's)
      if (rx.isOk() && rx.value) {
        ptbSeen.set(id, rx.value.ptbCount);
        if (seen !== undefined && rx.value.ptbCount !== seen && pmtu.tooBig(id, rx.value.ptbMtu, now))
          log(`link ${cfg.links[id]!.name}: ICMP too big, MTU ${rx.value.ptbMtu}: searching below it`, { link: id, mtu: rx.value.ptbMtu });
      }
      if (!t.usable(id)) continue;
      const sps = pmtu.due(id, now, t.rtt.get(id) ?? null, late);
      const pair = confirmPair(id, sps);
      if (pair) {
        // both directions' confirm probes in one request: padded to the up size, its reply
        // padded to the down size (the reply answers both: pmtuReply)
        const [up, down] = pair;
        const signed = auth.sign(encodeProbe({ ...request(id, up.seq), pmtuProbe: true, replyLen: down.size }, nowUs(), up.size - udpOverhead(fam)));
        if (!signed) continue;
        pruneMerged(now);
        merged.set(up.seq, { other: down.seq, at: now });
        // in a probe round it is the link's request of the round: the peer answers it as it
        // answers a liveness request (and counts it as one: the RP's requestSilent), its reply
        // counts for liveness (pmtuReply), and a confirmed path carries it; a lost one (the path
        // shrank) costs one round of three at most (confirm probes every CONFIRM_MS), under the
        // 3 missed intervals that take a link down. One datagram each way less per link every
        // third round (3 links: 40 a second instead of 50)
        if (round) confirmed.add(id);
        sock.send(signed, cfg.port, remote, (e) => {
          if (!e) {
            if (round) t.sent.set(id, (t.sent.get(id) ?? 0) + 1);
            return sent(signed.length);
          }
          merged.delete(up.seq);
          pmtu.failed(up.seq, nowMs());
          pmtu.failed(down.seq, nowMs());
        });
        continue;
      }
      for (const sp of sps) {
        const p = { ...request(id, sp.seq), pmtuProbe: true, replyLen: sp.dir === 'down' ? sp.size : 0 };
        const signed = auth.sign(encodeProbe(p, nowUs(), sp.dir === 'up' ? sp.size - udpOverhead(fam) : PROBE_LEN));
        if (!signed) continue;
        sock.send(signed, cfg.port, remote, (e) => (e ? pmtu.failed(sp.seq, nowMs()) : sent(signed.length)));
      }
    }
    if (!mtusChanged()) return;
    const links = socks.flatMap(({ id, fam }) => {
      const m = pmtu.mtus(id);
      const l = cfg.links[id]!;
      return m && t.usable(id) ? [{ id, family: fam, carrier: l.carrier, up: m.up, down: m.down }] : [];
    });
    const w = port.setLinkMtus(links);
    if (w.isErr()) log('path MTU write failed', { error: w.error });
    else {
      log(`path MTUs (up/down): ${links.map((l) => `link ${l.id} ${l.up}/${l.down}`).join(', ')}`, { links });
      for (const l of links) {
        const inner = Math.min(l.up, l.down) - overhead(l.family, l.carrier);
        if (inner < IPV6_MIN_MTU) log(small(cfg.links[l.id]!.name, inner), { link: l.id, innerMtu: inner });
      }
      written.length = 0;
      for (const l of links) written.push({ id: l.id, up: l.up, down: l.down });
    }
  };
  /** Are the usable links' MTUs other than those last written (no allocation when not)? */
  const mtusChanged = (): boolean => {
    let n = 0;
    for (const { id } of socks) {
      const m = pmtu.mtus(id);
      if (!m || !t.usable(id)) continue;
      const w = written[n++];
      if (!w || w.id !== id || w.up !== m.up || w.down !== m.down) return true;
    }
    return n !== written.length;
  };
  const ids = cfg.links.map((l) => l.id);
  const feedbackTick = () => {
    cc.tick();
    for (const fb of cc.buildFeedback(ids, (id) => t.usable(id))) {
      const s = socks.find((x) => x.id === fb.linkId);
      const signed = s ? auth.sign(fb.packet) : null;
      if (signed && s)
        s.sock.send(signed, cfg.port, s.remote, (e) => {
          if (e) return;
          cc.sent();
          s.sent(signed.length);
        });
    }
  };
  /** The next path MTU event on a usable link that needs a wake of its own, on the wake's clock
   * (ms of performance.now). A search's events keep their times; a confirmed link's (its confirm
   * probes, their deadlines, a reprobe) wait for the next probe round if it comes within
   * CONFIRM_DEFER_MS: an idle portal wakes for its probe rounds only, and a link's two directions,
   * confirmed in the same round, stay in phase and go in one request (confirmPair). */
  const pmtuAt = (at: number): number => {
    let due = Infinity;
    for (const { id } of socks) due = Math.min(due, pmtuAtLink(id, at));
    return due;
  };
  /** Each link's part of pmtuAt as last worked out: a message on a link changes its own only
   * (pokeLink), and every wake works all of them out again (the probe round moves on). */
  const linkDue = new Map<number, number>();
  const pmtuAtLink = (id: number, at: number): number => {
    let due = Infinity;
    if (t.usable(id)) {
      const d = at + Math.max(0, pmtu.nextDue(id) - nowMs());
      const round = cadence.probeAt();
      // a wake comes at the probe round anyway
      if (d + EARLY_MS < round && (d + CONFIRM_DEFER_MS < round || searching(id))) due = d;
    }
    linkDue.set(id, due);
    return due;
  };
  // one timer for all of it (wake.ts): probes every interval, feedback every 20 ms while packets
  // move and with the probes while none do, path MTU probes when due, budget usage saved
  const cadence = new Cadence(params.intervalMs, FEEDBACK_INTERVAL_MS);
  let nextSave = performance.now() + SAVE_INTERVAL_MS;
  const wake = new Wake((late) => {
    const at = performance.now();
    heartbeat.beat();
    // path MTU probes first: a link's confirm pair, due with the round, is its request (tick)
    const round = cadence.probeDue(at);
    pmtuTick(late, round);
    if (round) tick();
    if (cadence.feedbackDue(at)) {
      feedbackTick();
      cadence.fed(at, cc.busy());
    }
    if (at >= nextSave) {
      nextSave = at + SAVE_INTERVAL_MS;
      void budgets.save();
    }
    return Math.min(cadence.next(), pmtuAt(at), nextSave, heartbeat.at(at));
  });
  poke = () => {
    if (cc.busy()) wake.soon(cadence.hurry(performance.now()));
  };
  pokeLink = (id) => {
    const at = performance.now();
    poke();
    pmtuAtLink(id, at);
    let due = Infinity;
    for (const d of linkDue.values()) due = Math.min(due, d);
    wake.soon(due);
  };
  wake.start();
  const lastWords = async () => {
    cc.budgets.tick(); // what was counted since the last tick, while the maps are there
    await budgets.save();
  };
  const status = () => t.status(cc).map((s) => ({ ...s, pmtu: pmtu.status(s.id) ?? undefined, train: trains.result(s.id) ?? undefined, depthTrain: depths.status(s.id) ?? undefined }));
  return ok(runtimeOf(t, cc, auth, status, wake, socks.map((x) => x.sock), lastWords, shaper));
}

/** The heartbeat (port.alive, mp_config.alive_ns), called on every wake: while it is fresh the
 * data path plans links at the controllers' live rates; once it is older than MP_ALIVE_NS (this
 * process is gone) at their held rates (bpf/schedule.h). Written on a wake ALIVE_EVERY_MS or more
 * after the last write (every second probe round at the default 100 ms interval), and never
 * later than ALIVE_MAX_MS after it: the loop wakes for it then (`at`), whatever the probe
 * interval. A failed write is said once. */
const ALIVE_MAX_MS = MP_ALIVE_NS / 1e6 / 2;
const ALIVE_EVERY_MS = (4 * ALIVE_MAX_MS) / 5 - 5; // 195: a wake a little early still writes
export function aliveWriter(port: Pick<LinkStatePort, 'alive'>, log: Log, nowMs: () => number): { beat(): void; at(now: number): number } {
  let failed = false;
  let last = -Infinity;
  return {
    beat: () => {
      if (nowMs() - last < ALIVE_EVERY_MS) return;
      last = nowMs();
      const w = port.alive();
      if (w.isErr() && !failed) log('heartbeat write failed (the data path will hold its rates)', { error: w.error });
      failed = w.isErr();
    },
    /** when the next write is due at the latest, on the clock of `now` (performance.now) */
    at: (now) => now + Math.max(0, last + ALIVE_MAX_MS - nowMs()),
  };
}

/** LP: budget usage across restarts (budget-store.ts): what `up` starts from, and a save that
 * writes the current usage (serialised; nothing without a budgeted link). */
async function budgetPersistence(cfg: LocalConfig, cc: CcLoop, log: Log): Promise<{ restored: Map<string, SavedBudget>; save: () => Promise<void> }> {
  const budgeted = cfg.links.filter((l) => l.budgetBytes > 0);
  if (budgeted.length === 0) return { restored: new Map(), save: async () => {} };
  const file = budgetFile(cfg.stateDir ?? STATE_DIR, cfg.instance);
  const onDisk = await loadBudgetFile(file, log);
  const { usage, warnings } = restoreUsage(budgeted, onDisk, Date.now());
  for (const w of warnings) log(w, { file });
  for (const [name, u] of usage) log(`link ${name} budget: ${u.usedBytes} bytes used this period before this start`, { file, usedBytes: u.usedBytes });
  let chain = Promise.resolve();
  let failed = false;
  const save = (): Promise<void> =>
    (chain = chain.then(async () => {
      // links no longer configured keep their entries: usage returns with the link
      const m = new Map(onDisk);
      for (const [id, s] of cc.budgets.saved()) m.set(cfg.links[id]!.name, s);
      const w = await saveBudgetFile(file, m);
      if (w.isErr() && !failed) log(`budget usage not saved: ${JSON.stringify(w.error)}`, { file });
      failed = w.isErr();
    }));
  return { restored: usage, save };
}

/** RP: sockets on the tunnel port (both families) for handshakes, feedback and probe replies.
 * The LP's probe requests never reach them: the data path verifies and answers each one itself
 * (bpf/probe.h) and records it in mp_peer_probe, which this loop reads (as memory) every 20 ms to
 * learn each link (where it is, the LP's estimates and allowance) and hear it. When the LP's
 * requests stop on a link (its control plane is gone: killed, restarting) the RP sends requests
 * of its own there, which the LP's data path answers: the links stay up while data flows. */
export async function startRemote(cfg: RemoteConfig, port: LinkStatePort, authSetup: AuthSetup, log: Log, clock: Clock = monotonic): Promise<Result<Runtime, MpError>> {
  const { nowMs, nowNs, nowUs } = clockFns(clock);
  const params = { intervalMs: cfg.probeIntervalMs, missed: 3 };
  const t = new Tracker(Array.from({ length: MP_MAX_LINKS }, (_, i) => i), port, params, log, nowMs);
  // links the RP never heard of stay "down" silently: only report ids seen at least once
  const seen = new Set<number>();
  const seenIds: number[] = []; // the same, as the array buildFeedback takes
  // per-link shaping (shaper.ts): every link leaves by wan, each in its class there
  const shaperR = cfg.shape ? await openShaper(() => cfg.wan, [cfg.wan], log) : ok(null);
  if (shaperR.isErr()) return err(shaperR.error);
  const shaper = shaperR.value;
  const cc = new CcLoop(port, log, { adaptive: cfg.congestionControl, peerBudgets: true, onLinkDead: (id) => t.fastDown(id), onLinkAlive: (id) => t.fastUp(id), idleFeedbackMs: params.intervalMs, ...shapeOpt(shaper) });
  t.onUp = (id) => cc.linkUp(id);
  // capacity trains of our direction (train.ts): the LP's configured rate of each link as its
  // requests say (null: none), and whether it is metered (the LP's budget: no train unless unrated)
  const trains = new Trains();
  // and each link's buffer toward the LP (depth.ts), after the LP's burst on it: when our
  // capacity train was over, and the last request of the LP's burst we saw
  const depths = new DepthTrains();
  const settledMs = new Map<number, number>();
  const peerDepthMs = new Map<number, number>();
  const peerHint = new Map<number, { bps: number | null; metered: boolean }>();
  const hintOf = (id: number) => peerHint.get(id)?.bps ?? null;
  const auth = portalAuth(authSetup, log);
  const responder = auth.authenticated && authSetup.local && authSetup.peer ? new Responder(auth, authSetup.local, authSetup.peer, log) : null;
  // where each link's requests come from: feedback and our own requests go back there
  const endpoints = new Map<number, { address: string; port: number; sock: Socket }>();
  // each link's path MTUs as the LP's requests last said (0: not known yet), and toward the LP as
  // ICMP "too big" about our packets taught the kernel (polled: icmpTimer)
  const peerMtus = new Map<number, LinkMtu>();
  const icmpMtus = new Map<number, number>();
  /** toward the LP on link `id`: the smaller of what the LP confirmed and what ICMP said */
  const downMtu = (id: number, lp: number) => {
    const icmp = icmpMtus.get(id) ?? 0;
    return lp && icmp ? Math.min(lp, icmp) : lp || icmp;
  };
  let written: (LinkMtu & { id: number })[] = [];
  /** Are the up links' MTUs other than those last written (no allocation when not)? */
  const mtusChanged = (): boolean => {
    let n = 0;
    for (const [id, m] of peerMtus) {
      if (!t.usable(id)) continue;
      const w = written[n++];
      if (!w || w.id !== id || w.up !== m.up || w.down !== m.down || w.family !== m.family || w.carrier !== m.carrier) return true;
    }
    return n !== written.length;
  };
  /** The up links' MTUs to the data path (the inner MTU and MSS clamp follow them). */
  const syncMtus = () => {
    if (!mtusChanged()) return;
    const links = [...peerMtus].filter(([id]) => t.usable(id)).map(([id, m]) => ({ id, ...m }));
    const w = port.setLinkMtus(links);
    if (w.isErr()) log('path MTU write failed', { error: w.error });
    else written = links;
  };
  /** Feedback from the LP showing our packets arriving: feedback every interval from now on
   * (set once the loop's timer exists). */
  let poke = () => {};
  const socks: Socket[] = [];
  for (const [type, addr] of [
    ['udp4', '0.0.0.0'],
    ['udp6', '::'],
  ] as const) {
    const s = await bind(type, addr, cfg.port);
    if (s.isErr()) {
      for (const x of socks) x.close();
      void shaper?.close();
      return err(s.error);
    }
    s.value.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      const type = msgType(msg);
      if (type === MP_T_HS_INIT && responder) {
        responder.onInitiation(msg, rinfo.address, rinfo.port, (b) => s.value.send(b, rinfo.port, rinfo.address));
        return;
      }
      const p = takeControl(msg, type, auth, cc, t);
      if (!p) {
        if (type === MP_T_FEEDBACK) poke();
        return;
      }
      // only replies to our own requests come here (the data path answers the LP's)
      if (!p.reply || !seen.has(p.linkId)) {
        t.bad++;
        return;
      }
      if (p.train) {
        // when it arrived at the LP: our direction's rate (the last reply ends the train)
        if (DepthTrains.owns(p.probeSeq)) depths.reply(p.linkId, p.probeSeq, p.tsUs ?? 0);
        else if (trains.reply(p.linkId, p.probeSeq, p.tsUs ?? 0, p.rxBytes ?? null)) takeTrains(trains, nowMs(), cc, log, String, hintOf);
        return;
      }
      t.rtt.set(p.linkId, Number(nowNs() - p.sentNs) / 1e6);
      cc.onProbeRtt(p.linkId, Number(nowNs() - p.sentNs) / 1e3);
      t.hear(p.linkId);
    });
    s.value.on('error', (e) => log('socket error', { error: e.message }));
    socks.push(s.value);
  }

  // the LP's requests, as the data path recorded them
  const taken = new Map<number, bigint>();
  const lastRequestMs = new Map<number, number>();
  const learned = new Map<number, string>();
  const freshNs = BigInt(params.missed * params.intervalMs) * 1_000_000n;
  let readFailed = false;
  const onRequest = (p: Probe, from: { address: string; port: number; family: number }, atUs: number) => {
    if (p.pmtuProbe || p.train) {
      if (p.train && DepthTrains.owns(p.probeSeq)) peerDepthMs.set(p.linkId, nowMs());
      // a size probe (pmtu.ts) or a capacity train's request (train.ts), answered by the data
      // path: it teaches nothing else, but it is
      // the LP's control plane asking: no requests of our own on the link (requestSilent). The
      // map keeps a link's last request only, and the LP sends its confirm probes right after a
      // round's liveness request: read as silence, every third round's hidden request set the
      // RP sending requests of its own (and taking their replies through its socket)
      if (seen.has(p.linkId)) {
        t.hear(p.linkId);
        lastRequestMs.set(p.linkId, nowMs());
      }
      return;
    }
    peerMtus.set(p.linkId, { ...peerMtu(p, from.family === 6 ? 6 : 4), down: downMtu(p.linkId, p.pmtuDown ?? 0) });
    peerHint.set(p.linkId, { bps: p.unrated ? null : Number(p.rateBps), metered: (p.budgetBytes ?? null) !== null });
    // the probe carries the LP's static estimate; once feedback flows, our controller decides
    const own = cc.output(p.linkId);
    const est = own ? { rateBps: own.rateBps, owdUs: own.owdUs } : { rateBps: p.rateBps, owdUs: p.owdUs, peerEstimate: true };
    // a metered link: the LP's allowance caps our sending, written with the rest (budget.ts)
    const line = cc.peerLine(p.linkId, p.probeSeq, p.budgetBytes ?? null, atUs);
    // the same as the last request said: nothing to write (10 requests a second per link)
    const mtu = downMtu(p.linkId, p.pmtuDown ?? 0);
    const what = `${from.address}|${from.port}|${est.rateBps}|${est.owdUs}|${p.metric}|${p.carrier}|${line}|${mtu}`;
    if (learned.get(p.linkId) !== what) {
      const l = port.learn(p.linkId, from, { ...est, metric: p.metric, carrier: p.carrier, mtu, ...(line === null ? {} : { budgetBytes: line }) });
      if (l.isErr()) {
        log('learning link failed', { link: p.linkId, error: l.error });
        return;
      }
      learned.set(p.linkId, what);
    }
    if (t.admin.has(p.linkId) && !seen.has(p.linkId)) t.setAdmin(p.linkId, true); // taken down before it was learned
    peerAdminFromProbe(t, p, log);
    if (!seen.has(p.linkId)) {
      seen.add(p.linkId);
      seenIds.push(p.linkId);
    }
    cc.addLink(p.linkId, { rateBps: Number(p.rateBps), owdUs: p.owdUs });
    endpoints.set(p.linkId, { address: from.address, port: from.port, sock: from.family === 6 ? socks[1]! : socks[0]! });
    lastRequestMs.set(p.linkId, nowMs());
    t.hear(p.linkId);
  };
  const takeRequests = () => {
    const now = nowNs();
    const all = port.peerProbes();
    if (all.isErr()) {
      if (!readFailed) log('mp_peer_probe read failed', { error: all.error });
      readFailed = true;
      return;
    }
    let any = false;
    for (let id = 0; id < MP_MAX_LINKS; id++) {
      const pp = all.value[id];
      if (!pp || pp.requests === 0n || pp.requests === taken.get(id)) continue;
      taken.set(id, pp.requests);
      if (now - pp.rxNs > freshNs) continue; // from before this start: the LP may be gone
      const p = decodeProbe(pp.msg);
      if (!p || p.reply || p.linkId !== id) {
        t.bad++;
        continue;
      }
      auth.heard(decodeHdr(pp.msg).keyId); // the data path verified it under that key
      onRequest(p, { address: pp.from.addr, port: pp.port, family: pp.from.family }, Number(pp.rxNs / 1000n));
      any = true;
    }
    if (any) syncMtus(); // once for all the requests taken (it looks at every link)
  };
  // our own requests on links whose LP requests stopped (its control plane may be gone)
  let ownSeq = 0;
  const requestSilent = () => {
    const now = nowMs();
    ownSeq++;
    for (const id of seen) {
      const ep = endpoints.get(id);
      if (!ep || now - (lastRequestMs.get(id) ?? 0) < 2 * params.intervalMs) continue;
      const req: Probe = { linkId: id, reply: false, metric: 0, carrier: MP_CARRIER_UDP, probeSeq: ownSeq, sentNs: nowNs(), rateBps: 0n, owdUs: 0 };
      const signed = auth.sign(encodeProbe(req, nowUs()));
      if (signed) ep.sock.send(signed, ep.port, ep.address, (e) => void (e ? undefined : t.sent.set(id, (t.sent.get(id) ?? 0) + 1)));
    }
  };
  /** Is link `id`'s depth train due: our capacity train over DEPTH_PEER_WAIT_MS ago, the LP's
   * burst (the last request of it we saw) DEPTH_WAIT_MS ago, and no flow on it yet? */
  const depthDue = (id: number): boolean => {
    if (!trains.settled(id) || !depths.due(id, nowMs()) || cc.carried(id)) return false;
    const now = nowMs();
    if (!settledMs.has(id)) settledMs.set(id, now);
    return now - settledMs.get(id)! >= DEPTH_PEER_WAIT_MS && now - (peerDepthMs.get(id) ?? -Infinity) >= DEPTH_WAIT_MS;
  };
  /** Capacity trains toward the LP once its links are up (not on a metered one with a configured
   * rate), padded to the outer MTU the LP confirmed toward it (else TRAIN_OUTER_BYTES); the
   * results of finished ones. The LP's configured rate is its upstream's: a downstream that
   * differs more than HINT_OFF times (an asymmetric line) starts from the train. Then a depth
   * train on each link (depthDue; never a metered one). */
  const trainTick = () => {
    takeTrains(trains, nowMs(), cc, log, String, hintOf);
    if (!cfg.congestionControl) return;
    let burst = false; // one depth train a tick (the LP's loop says why)
    for (const [id, h] of peerHint) {
      const ep = endpoints.get(id);
      if ((h.metered && h.bps !== null) || !ep || !t.usable(id)) continue;
      const what = trains.next(id, nowMs(), () => cc.roomSuspected(id), () => cc.estimateBps(id));
      if (what === null && (burst || h.metered || !depthDue(id))) continue;
      const fam = ep.sock === socks[1] ? 6 : 4;
      const outer = downMtu(id, peerMtus.get(id)?.down ?? 0) || TRAIN_OUTER_BYTES;
      const req = (probeSeq: number): Probe => ({ linkId: id, reply: false, metric: 0, carrier: MP_CARRIER_UDP, probeSeq, sentNs: nowNs(), rateBps: 0n, owdUs: 0 });
      const send = (b: Buffer, done: (e: Error | null) => void) => ep.sock.send(b, ep.port, ep.address, done);
      if (what !== null) sendTrain(trains, id, outer, fam, req, auth, { ms: nowMs(), us: nowUs() }, what, send);
      else {
        burst = true;
        sendDepth(depths, id, outer, fam, cc.estimateBps(id), req, auth, { ms: nowMs(), us: nowUs() }, nowUs, send);
      }
    }
    takeDepths(depths, nowMs(), cc, log, String);
  };
  const heartbeat = aliveWriter(port, log, nowMs);
  let polling = false;
  const pollIcmp = () => {
    if (polling) return;
    polling = true;
    void Promise.all(
      [...endpoints].map(async ([id, ep]) => {
        const m = await port.routeMtu(ep.address.replace(/^::ffff:/, ''));
        const mtu = m.isOk() && m.value ? m.value : 0;
        if (mtu === (icmpMtus.get(id) ?? 0)) return;
        if (mtu) {
          icmpMtus.set(id, mtu);
          log('ICMP too big toward the LP: the kernel\'s route MTU', { link: id, mtu });
        } else {
          icmpMtus.delete(id);
          log('the kernel\'s route MTU toward the LP expired', { link: id });
        }
      }),
    ).finally(() => (polling = false));
  };
  const feedbackTick = () => {
    takeRequests(); // every 20 ms while busy: a metered link's allowance caps us within a feedback interval
    cc.tick();
    for (const fb of cc.buildFeedback(seenIds, (id) => t.usable(id) && endpoints.has(id))) {
      const ep = endpoints.get(fb.linkId);
      const signed = ep ? auth.sign(fb.packet) : null;
      if (signed && ep) ep.sock.send(signed, ep.port, ep.address, (e) => void (e ? undefined : cc.sent()));
    }
  };
  // one timer for all of it (wake.ts): the LP's requests taken, liveness and our own requests
  // every probe interval, feedback every 20 ms while packets move and with the probes while
  // none do, the kernel's path MTUs every ICMP_POLL_MS (ICMP_IDLE_POLL_MS while idle)
  const cadence = new Cadence(params.intervalMs, FEEDBACK_INTERVAL_MS);
  let lastIcmp = -Infinity;
  const nextIcmp = () => lastIcmp + (cc.busy() ? ICMP_POLL_MS : ICMP_IDLE_POLL_MS);
  const wake = new Wake(() => {
    const at = performance.now();
    heartbeat.beat();
    const probe = cadence.probeDue(at);
    if (cadence.feedbackDue(at)) {
      feedbackTick();
      cadence.fed(at, cc.busy());
    } else if (probe) takeRequests(); // what arrived counts before liveness is judged
    if (probe) {
      requestSilent();
      t.evaluate();
      syncMtus();
      trainTick();
    }
    // in phase with the probes; every ICMP_POLL_MS while packets move, ICMP_IDLE_POLL_MS while
    // none do (our packets are then the probe replies and idle feedback: nothing is sent at a
    // size the kernel may have learned less for); packets moving again: at once if due by then
    if (lastIcmp === -Infinity) lastIcmp = at;
    else if (at + 2 >= nextIcmp()) {
      lastIcmp = Math.max(nextIcmp(), at - 5);
      pollIcmp();
    }
    return Math.min(cadence.next(), nextIcmp(), heartbeat.at(at));
  });
  poke = () => {
    if (cc.busy()) wake.soon(cadence.hurry(performance.now()));
  };
  wake.start();
  const status = () =>
    t.status(cc)
      .filter((s) => seen.has(s.id))
      .map((s) => {
        const m = peerMtus.get(s.id);
        // what ICMP taught the kernel applies at once (m.down, the smaller of the two, is taken
        // at the LP's next request)
        const icmp = icmpMtus.get(s.id);
        const down = m && icmp && m.down ? Math.min(m.down, icmp) : m?.down;
        const train = trains.result(s.id) ?? undefined;
        const depthTrain = depths.status(s.id) ?? undefined;
        return m ? { ...s, pmtu: { peerUp: m.up, peerDown: down ?? 0, ...(icmp ? { icmp } : {}) }, train, depthTrain } : { ...s, train, depthTrain };
      });
  return ok(runtimeOf(t, cc, auth, status, wake, socks, undefined, shaper));
}
