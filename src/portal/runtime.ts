// The portal's running loop: probes on every link, liveness → link state in the BPF maps, and
// (on the RP) learning each link's endpoint and estimates from the LP's probes. Data packets
// never come here; only control messages that decap passes up to these UDP sockets.
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import type { LocalConfig, RemoteConfig } from '../config/types.js';
import { ipFamily } from '../netlink/ip.js';
import { livenessChanges, type LinkLiveness, type LivenessParams } from './liveness.js';
import { decodeProbe, encodeProbe, type Probe } from './probe.js';
import { MP_CARRIER_IP, MP_CARRIER_UDP } from '../datapath/abi.js';

/** What the loop changes in the data path (datapath.ts implements it over the pinned maps). */
export interface LinkStatePort {
  setState(linkId: number, state: LinkLiveness): Result<void, MpError>;
  /** RP: a probe told us where link `linkId` is and what the LP estimates for it */
  learn(linkId: number, from: { address: string; port: number }, est: { rateBps: bigint; owdUs: number; metric: number; carrier: number }): Result<void, MpError>;
}

export interface LinkRuntimeStatus {
  id: number;
  state: LinkLiveness;
  lastHeardMs: number | null;
  rttMs: number | null;
  probesSent: number;
  probesHeard: number;
}

export interface Runtime {
  status(): LinkRuntimeStatus[];
  /** counters of control messages that were malformed */
  badControl(): number;
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

  status(): LinkRuntimeStatus[] {
    return [...this.lastHeard.keys()].map((id) => ({
      id,
      state: this.state.get(id) ?? 'down',
      lastHeardMs: this.lastHeard.get(id) ?? null,
      rttMs: this.rtt.get(id) ?? null,
      probesSent: this.sent.get(id) ?? 0,
      probesHeard: this.heard.get(id) ?? 0,
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
  return ok({
    status: () => t.status(),
    badControl: () => t.bad,
    stop: async () => {
      clearInterval(timer);
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
      const p = decodeProbe(msg);
      if (!p || p.reply) {
        t.bad++;
        return;
      }
      const l = port.learn(p.linkId, { address: rinfo.address, port: rinfo.port }, { rateBps: p.rateBps, owdUs: p.owdUs, metric: p.metric, carrier: p.carrier });
      if (l.isErr()) {
        log('learning link failed', { link: p.linkId, error: l.error });
        return;
      }
      seen.add(p.linkId);
      t.hear(p.linkId);
      s.value.send(encodeProbe({ ...p, reply: true }, nowUs()), rinfo.port, rinfo.address);
    });
    s.value.on('error', (e) => log('socket error', { error: e.message }));
    socks.push(s.value);
  }
  const timer = setInterval(() => t.evaluate(), params.intervalMs);
  return ok({
    status: () => t.status().filter((s) => seen.has(s.id)),
    badControl: () => t.bad,
    stop: async () => {
      clearInterval(timer);
      await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  });
}
