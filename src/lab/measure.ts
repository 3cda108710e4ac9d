// Measurements through the lab with the ordinary tools (ping, iperf3), used by `lab check`,
// the lab's accuracy tests and the benchmarks. Everything runs inside the lab's namespaces.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { run, spawnDetached } from './namespaces.js';
import { labDir } from './state.js';
import { nsName } from './topology.js';
import { FRAME_BYTES } from './params.js';

/** TCP payload per full-size frame (MTU 1500, IPv4, TCP timestamps): what tbf's rate becomes as goodput. */
export const TCP_GOODPUT_RATIO = (1500 - 20 - 20 - 12) / FRAME_BYTES;

export interface PingResult {
  transmitted: number;
  received: number;
  minMs: number;
  avgMs: number;
  maxMs: number;
  mdevMs: number;
  /** per reply: [unix time in s, rtt in ms] (with `timestamps`) */
  replies: [number, number][];
}

export function parsePing(out: string): PingResult {
  const tx = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out);
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(out);
  const replies: [number, number][] = [];
  for (const m of out.matchAll(/^\[(\d+\.\d+)\].*time=([\d.]+) ms/gm)) replies.push([Number(m[1]), Number(m[2])]);
  return {
    transmitted: Number(tx?.[1] ?? 0),
    received: Number(tx?.[2] ?? 0),
    minMs: Number(rtt?.[1] ?? NaN),
    avgMs: Number(rtt?.[2] ?? NaN),
    maxMs: Number(rtt?.[3] ?? NaN),
    mdevMs: Number(rtt?.[4] ?? NaN),
    replies,
  };
}

export interface PingOptions {
  count: number;
  intervalS: number;
  /** source address to bind */
  from?: string;
  timestamps?: boolean;
  /** give up waiting for a reply after this many seconds (ping -W) */
  waitS?: number;
}

/** ping from a lab node; a ping that loses packets is a result, not an error. */
export async function ping(lab: string, node: string, target: string, o: PingOptions): Promise<Result<PingResult, MpError>> {
  const args = ['netns', 'exec', nsName(lab, node), 'ping', '-n', '-c', String(o.count), '-i', String(o.intervalS), '-W', String(o.waitS ?? 1)];
  if (o.from) args.push('-I', o.from);
  if (o.timestamps) args.push('-D');
  else args.push('-q');
  args.push(target);
  const r = await run('ip', args, (o.count * o.intervalS + (o.waitS ?? 1) + 10) * 1000);
  if (r.isOk()) return ok(parsePing(r.value));
  // ping exits 1 when replies were lost: that is still a measurement
  if (r.error.kind === 'CommandFailed' && r.error.code === 1) {
    const e = r.error as { stderr: string };
    return ok(parsePing(e.stderr));
  }
  return err(r.error);
}

export interface IperfOptions {
  /** node running the iperf3 server and the address it binds; `connect`: the address the
   * client connects to instead (a port forward's public address) */
  server: { node: string; addr: string; connect?: string };
  client: { node: string; addr?: string };
  seconds: number;
  /** server → client instead of client → server */
  reverse?: boolean;
  udpBps?: number;
  streams?: number;
  port?: number;
  /** warm-up seconds (slow start) run before the measured `seconds` and left out of the result */
  omitS?: number;
  /** TCP congestion control of the sender (iperf3 -C); default: the namespace's */
  congestion?: string;
}

export interface IperfResult {
  /** goodput at the receiver, bits/s */
  bps: number;
  retransmits: number;
  /** UDP only */
  lostPercent?: number;
  lostPackets?: number;
  packets?: number;
  jitterMs?: number;
  /** UDP client → server only: packets the receiver counted lost in each of its intervals */
  lostPerInterval?: number[];
  /** UDP only: payload the receiver got per second after the warm-up (its own intervals) */
  receivedBps?: number;
  intervals: number[];
  /** client → server (not reverse) only: the client's address as the server saw it */
  serverSaw?: string;
}

/** Waits until a TCP socket listens on `port` inside `ns` (iperf3 -J prints nothing until the end). */
async function waitListening(ns: string, port: number, pid: number, timeoutMs = 5000): Promise<Result<void, MpError>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await run('ip', ['netns', 'exec', ns, 'ss', '-Hltn', `sport = :${port}`]);
    if (r.isOk() && r.value.trim()) return ok(undefined);
    try {
      process.kill(pid, 0);
    } catch {
      return err({ kind: 'CommandFailed', cmd: 'iperf3 -s', code: null, stderr: 'the iperf3 server exited before listening' });
    }
    if (Date.now() > until) return err({ kind: 'Timeout', what: 'iperf3 -s', message: `iperf3 server in ${ns} did not listen on port ${port}` });
    await new Promise((res) => setTimeout(res, 20));
  }
}

let nextPort = 5201 + (process.pid % 500) * 4;

/**
 * iperf3 -J's output as JSON, or why there is none. iperf3 reports its own failure as JSON on
 * stdout with an `error` (and exits 1): that is the reason to show, not stderr, which holds at
 * most a warning (a bench's first flow once died with only "MSS" there).
 */
export function iperfJson(out: Result<string, MpError>): Result<IperfJson, MpError> {
  const failed = out.isErr() && out.error.kind === 'CommandFailed' ? out.error : null;
  const text = out.isOk() ? out.value : (failed?.stdout ?? '');
  let j: IperfJson;
  try {
    j = JSON.parse(text) as IperfJson;
  } catch {
    return err(out.isErr() ? out.error : { kind: 'CommandFailed', cmd: 'iperf3', code: null, stderr: text.slice(0, 500) });
  }
  if (j.error) {
    const warning = failed?.stderr.trim() ? ` (stderr: ${failed.stderr.trim().slice(0, 300)})` : '';
    return err({ kind: 'CommandFailed', cmd: 'iperf3', code: failed?.code ?? null, stderr: `${j.error}${warning}` });
  }
  return failed ? err(failed) : ok(j);
}

/** The rate of each of iperf3's per-second intervals (bit/s). A last interval of less than half a
 * second is left out: iperf3 closes the run with the few milliseconds its end timer fired after
 * the last whole second, whose rate says nothing (a bond test once read 1.5 Mbit/s there after
 * four seconds of 42-50 and failed "every second carried data"). */
export function perSecond(intervals: readonly IperfInterval[]): number[] {
  const short = (i: IperfInterval | undefined) => i?.sum?.start !== undefined && i.sum.end !== undefined && i.sum.end - i.sum.start < 0.5;
  const whole = intervals.length > 1 && short(intervals.at(-1)) ? intervals.slice(0, -1) : intervals;
  return whole.map((i) => i.sum?.bits_per_second ?? 0);
}

/** One iperf3 run; the server is a one-shot process inside the server node. */
export async function iperf(lab: string, o: IperfOptions): Promise<Result<IperfResult, MpError>> {
  const port = o.port ?? nextPort++;
  const log = `${labDir(lab)}/iperf3-${port}.log`;
  // -J on the server too, so the client's --get-server-output carries the receiver's intervals
  const srvNs = nsName(lab, o.server.node);
  const srv = await spawnDetached(srvNs, ['iperf3', '-s', '-1', '-J', '-B', o.server.addr, '-p', String(port)], log);
  if (srv.isErr()) return err(srv.error);
  const stop = () => {
    try {
      process.kill(srv.value, 'SIGTERM');
    } catch {
      /* already exited (-1: one client, then exit) */
    }
  };
  const ready = await waitListening(srvNs, port, srv.value);
  if (ready.isErr()) {
    stop();
    return err(ready.error);
  }
  const warm = o.omitS ?? 0;
  const total = o.seconds + warm;
  const args = ['netns', 'exec', nsName(lab, o.client.node), 'iperf3', '-J', '-c', o.server.connect ?? o.server.addr, '-p', String(port), '-t', String(total)];
  if (o.client.addr) args.push('-B', o.client.addr);
  if (o.reverse) args.push('-R');
  else args.push('--get-server-output'); // the receiver's own intervals
  if (o.streams) args.push('-P', String(o.streams));
  if (o.congestion) args.push('-C', o.congestion);
  if (o.udpBps) args.push('-u', '-b', String(Math.round(o.udpBps)), '-l', '1400');
  const out = await run('ip', args, (total + 20) * 1000);
  stop();
  const parsed = iperfJson(out);
  if (parsed.isErr()) return err(parsed.error);
  const j = parsed.value;
  const intervals = perSecond(j.intervals ?? []);
  // The receiver's per-second intervals after the warm-up. iperf3's own summary divides
  // everything received (including what drains from the bottleneck queue after the sender
  // stopped) by the nominal duration, which overstates slow, deep-queued links.
  const window = (): { bytes: number; secs: number } => {
    let bytes = 0;
    let secs = 0;
    for (const i of (o.reverse ? j.intervals : j.server_output_json?.intervals) ?? []) {
      const s = i.sum;
      if (!s || s.start === undefined || s.end === undefined || s.bytes === undefined) continue;
      if (s.start < warm - 0.01 || s.end > total + 0.01) continue;
      bytes += s.bytes;
      secs += s.end - s.start;
    }
    return { bytes, secs };
  };
  if (o.udpBps) {
    const s = j.end?.sum;
    const w = window();
    return ok({
      bps: s?.bits_per_second ?? 0,
      retransmits: 0,
      lostPercent: s?.lost_percent ?? 0,
      lostPackets: s?.lost_packets ?? 0,
      packets: s?.packets ?? 0,
      jitterMs: s?.jitter_ms ?? 0,
      ...(w.secs > 0 ? { receivedBps: (w.bytes * 8) / w.secs } : {}),
      ...(o.reverse ? {} : { lostPerInterval: (j.server_output_json?.intervals ?? []).map((i) => i.sum?.lost_packets ?? 0) }),
      intervals,
    });
  }
  const rx = (o.reverse ? j.intervals : j.server_output_json?.intervals) ?? [];
  const { bytes, secs } = window();
  // the receiver's last interval can end a little after the sender's last second (a slow
  // receiver, a long queue to drain): one missing interval is tolerated, more is a failure
  if (secs < o.seconds * 0.9 && secs < o.seconds - 1.01)
    return err({ kind: 'CommandFailed', cmd: 'iperf3', code: null, stderr: `receiver reported only ${secs.toFixed(2)} s of ${o.seconds} s` });
  const saw = j.server_output_json?.start?.connected?.[0]?.remote_host;
  return ok({
    bps: (bytes * 8) / secs,
    retransmits: j.end?.sum_sent?.retransmits ?? 0,
    intervals: rx.map((i) => i.sum?.bits_per_second ?? 0),
    ...(saw ? { serverSaw: saw } : {}),
  });
}

interface IperfInterval {
  sum?: { start?: number; end?: number; bytes?: number; bits_per_second?: number; lost_packets?: number };
}

export interface IperfJson {
  error?: string;
  intervals?: IperfInterval[];
  server_output_json?: { intervals?: IperfInterval[]; start?: { connected?: { remote_host?: string }[] } };
  end?: {
    sum_received?: { bits_per_second?: number };
    sum_sent?: { retransmits?: number };
    sum?: { bits_per_second?: number; lost_percent?: number; lost_packets?: number; packets?: number; jitter_ms?: number };
  };
}

/** Addresses of link k: the lp end and the ISP gateway (see topology.ts). */
export const linkAddrs = (k: number): { lp: string; gw: string } => ({ lp: `100.64.${k}.1`, gw: `100.64.${k}.254` });
