// The portal's running loop: probes on every link, liveness → link state in the BPF maps,
// (on the RP) learning each link's endpoint and estimates from the LP's probes, and congestion
// control (cc.ts: feedback out every 20 ms on the fastest up link, feedback in → each link's
// rate and delay in mp_links). Data packets never come here; only control messages that decap
// passes up to these UDP sockets.
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import type { LocalConfig, RemoteConfig } from '../config/types.js';
import { ipFamily } from '../netlink/ip.js';
import { livenessChanges, type LinkLiveness, type LivenessParams } from './liveness.js';
import { decodeProbe, encodeProbe, type Probe } from './probe.js';
import { decodeHdr, MP_CARRIER_IP, MP_CARRIER_UDP, MP_HDR_LEN, MP_T_FEEDBACK, MP_T_PROBE } from '../datapath/abi.js';
import { CcLoop, FEEDBACK_INTERVAL_MS, type CcCounters, type CcDatapath, type CcStatus } from './cc.js';

/** What the loop changes in the data path (datapath.ts implements it over the pinned maps). */
export interface LinkStatePort extends CcDatapath {
  setState(linkId: number, state: LinkLiveness): Result<void, MpError>;
  /** RP: a probe told us where link `linkId` is and what the LP estimates for it */
  learn(linkId: number, from: { address: string; port: number }, est: { rateBps: bigint; owdUs: number; metric: number; carrier: number }): Result<void, MpError>;
  /** the congestion controller's rate and delay for our sending direction on link `linkId`
   * (read-modify-write: ifindex, state and the rest stay) */
  setEstimate(linkId: number, rateBps: bigint, owdUs: number): Result<void, MpError>;
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
}

export interface Runtime {
  status(): LinkRuntimeStatus[];
  /** counters of control messages that were malformed */
  badControl(): number;
  /** feedback messages sent, taken, duplicate, malformed */
  feedback(): CcCounters;
  stop(): Promise<void>;
}

type Log = (msg: string, fields?: Record<string, unknown>) => void;

const nowMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);
const nowNs = (): bigint => process.hrtime.bigint();
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n) >>> 0;

async function bind(type: 'udp4' | 'udp6', address: string, port: number): Promise<Result<Socket, MpError>> {
  const s = createSocket({ type, ipv6Only: type === 'udp6' });
  return new Promise((resolve) => {
    s.once('error', (e) =>
      resolve(err({ kind: 'CommandFailed', cmd: `bind ${address}:${port}`, code: null, stderr: (e as Error).message })),
    );
    s.bind({ address, port, exclusive: true }, () => resolve(ok(s)));
  });
}

/** The mp_hdr type of a control packet (null: too short for a header). */
const msgType = (b: Buffer): number | null => (b.length >= MP_HDR_LEN ? decodeHdr(b).type : null);

class Tracker {
  readonly lastHeard = new Map<number, number | null>();
  readonly state = new Map<number, LinkLiveness>();
  readonly rtt = new Map<number, number>();
  readonly sent = new Map<number, number>();
  readonly heard = new Map<number, number>();
  bad = 0;

  constructor(
    ids: number[],
    private readonly port: LinkStatePort,
    private readonly params: LivenessParams,
    private readonly log: Log,
  ) {
    for (const id of ids) {
      this.lastHeard.set(id, null);
      this.state.set(id, 'down');
    }
  }

  hear(id: number): void {
    this.lastHeard.set(id, nowMs());
    this.heard.set(id, (this.heard.get(id) ?? 0) + 1);
    this.evaluate(); // a link that comes back is used at once
  }

  evaluate(): void {
    for (const [id, s] of livenessChanges(this.state, this.lastHeard, nowMs(), this.params)) {
      const r = this.port.setState(id, s);
      if (r.isErr()) {
        this.log('link state write failed', { link: id, error: r.error });
        continue;
      }
      this.state.set(id, s);
      this.log(`link ${id} ${s}`, { link: id, state: s });
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
    }));
  }
}

/** LP: one socket per link bound to the link's source address; probes to the RP every interval. */
export async function startLocal(
  cfg: LocalConfig,
  sources: Map<number, string>,
  port: LinkStatePort,
  log: Log,
): Promise<Result<Runtime, MpError>> {
  const params = { intervalMs: cfg.probeIntervalMs, missed: 3 };
  const t = new Tracker(cfg.links.map((l) => l.id), port, params, log);
  const cc = new CcLoop(port, log);
  for (const l of cfg.links) cc.addLink(l.id, { rateBps: l.rateBps, owdUs: l.delayUs });
  const socks: { id: number; sock: Socket; remote: string }[] = [];
  for (const l of cfg.links) {
    const src = sources.get(l.id);
    const fam = src ? ipFamily(src) : null;
    const remote = cfg.remote.find((r) => ipFamily(r) === fam);
    if (!src || !fam || !remote) {
      for (const s of socks) s.sock.close();
      return err({ kind: 'ConfigInvalid', path: `link[${l.id}].source`, value: src ?? null, message: 'no source address with a matching remote address family' });
    }
    const s = await bind(fam === 4 ? 'udp4' : 'udp6', src, cfg.port);
    if (s.isErr()) {
      for (const x of socks) x.sock.close();
      return err(s.error);
    }
    s.value.on('message', (msg: Buffer) => {
      if (msgType(msg) === MP_T_FEEDBACK) {
        if (!cc.onFeedbackPacket(msg)) t.bad++;
        return;
      }
      const p = decodeProbe(msg);
      if (!p || !p.reply || p.linkId !== l.id) {
        t.bad++;
        return;
      }
      t.rtt.set(l.id, Number(nowNs() - p.sentNs) / 1e6);
      t.hear(l.id);
    });
    s.value.on('error', (e) => log('socket error', { link: l.id, error: e.message }));
    socks.push({ id: l.id, sock: s.value, remote });
  }
  let seq = 0;
  const tick = () => {
    seq++;
    for (const { id, sock, remote } of socks) {
      const l = cfg.links[id]!;
      const probe: Probe = { linkId: id, reply: false, metric: l.metric, carrier: l.carrier === 'ip' ? MP_CARRIER_IP : MP_CARRIER_UDP, probeSeq: seq, sentNs: nowNs(), rateBps: BigInt(l.rateBps), owdUs: l.delayUs };
      sock.send(encodeProbe(probe, nowUs()), cfg.port, remote, (e) => {
        if (!e) t.sent.set(id, (t.sent.get(id) ?? 0) + 1);
      });
    }
    t.evaluate();
  };
  tick();
  const timer = setInterval(tick, params.intervalMs);
  const ids = cfg.links.map((l) => l.id);
  const fbTimer = setInterval(() => {
    cc.tick();
    const fb = cc.buildFeedback(ids, (id) => t.state.get(id) === 'up');
    const s = fb && socks.find((x) => x.id === fb.linkId);
    if (fb && s) s.sock.send(fb.packet, cfg.port, s.remote, (e) => void (e ? undefined : cc.sent()));
  }, FEEDBACK_INTERVAL_MS);
  return ok({
    status: () => t.status(cc),
    badControl: () => t.bad,
    feedback: () => ({ ...cc.counters }),
    stop: async () => {
      clearInterval(timer);
      clearInterval(fbTimer);
      await Promise.all(socks.map(({ sock }) => new Promise<void>((r) => sock.close(() => r()))));
    },
  });
}

/** RP: sockets on the tunnel port (both families); answers probes and learns links from them. */
export async function startRemote(cfg: RemoteConfig, port: LinkStatePort, log: Log): Promise<Result<Runtime, MpError>> {
  const params = { intervalMs: cfg.probeIntervalMs, missed: 3 };
  const t = new Tracker(Array.from({ length: 16 }, (_, i) => i), port, params, log);
  // links the RP never heard of stay "down" silently: only report ids seen at least once
  const seen = new Set<number>();
  const cc = new CcLoop(port, log);
  // where each link's probes come from: the feedback goes back there
  const endpoints = new Map<number, { address: string; port: number; sock: Socket }>();
  const socks: Socket[] = [];
  for (const [type, addr] of [
    ['udp4', '0.0.0.0'],
    ['udp6', '::'],
  ] as const) {
    const s = await bind(type, addr, cfg.port);
    if (s.isErr()) {
      for (const x of socks) x.close();
      return err(s.error);
    }
    s.value.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      const type = msgType(msg);
      if (type === MP_T_FEEDBACK) {
        if (!cc.onFeedbackPacket(msg)) t.bad++;
        return;
      }
      const p = type === MP_T_PROBE ? decodeProbe(msg) : null;
      if (!p || p.reply) {
        t.bad++;
        return;
      }
      // the probe carries the LP's static estimate; once feedback flows, our controller decides
      const own = cc.output(p.linkId);
      const est = own ? { rateBps: own.rateBps, owdUs: own.owdUs } : { rateBps: p.rateBps, owdUs: p.owdUs };
      const l = port.learn(p.linkId, { address: rinfo.address, port: rinfo.port }, { ...est, metric: p.metric, carrier: p.carrier });
      if (l.isErr()) {
        log('learning link failed', { link: p.linkId, error: l.error });
        return;
      }
      seen.add(p.linkId);
      cc.addLink(p.linkId, { rateBps: Number(p.rateBps), owdUs: p.owdUs });
      endpoints.set(p.linkId, { address: rinfo.address, port: rinfo.port, sock: s.value });
      t.hear(p.linkId);
      s.value.send(encodeProbe({ ...p, reply: true }, nowUs()), rinfo.port, rinfo.address);
    });
    s.value.on('error', (e) => log('socket error', { error: e.message }));
    socks.push(s.value);
  }
  const timer = setInterval(() => t.evaluate(), params.intervalMs);
  const fbTimer = setInterval(() => {
    cc.tick();
    const fb = cc.buildFeedback([...seen], (id) => t.state.get(id) === 'up' && endpoints.has(id));
    const ep = fb && endpoints.get(fb.linkId);
    if (fb && ep) ep.sock.send(fb.packet, ep.port, ep.address, (e) => void (e ? undefined : cc.sent()));
  }, FEEDBACK_INTERVAL_MS);
  return ok({
    status: () => t.status(cc).filter((s) => seen.has(s.id)),
    badControl: () => t.bad,
    feedback: () => ({ ...cc.counters }),
    stop: async () => {
      clearInterval(timer);
      clearInterval(fbTimer);
      await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  });
}
