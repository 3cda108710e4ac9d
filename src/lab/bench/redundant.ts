// `mpctl lab bench redundant` (README "Redundant mode"): a call — 50 packets/s of 200-byte UDP to port
// 5004, the class's `udp_ports` (node's dgram cannot set DSCP; DSCP matching is covered by the
// PROG_TEST_RUN tables, test/redundant.test.ts) — over 2 links of 20 and 40 ms one-way delay, in a
// redundant class (links = 2), client → server. Every packet carries its send time; the receiver
// (native/callrecv.c, same host, same clock) takes each packet's one-way delay from the kernel's
// receive timestamp. The links' emulators run at SCHED_FIFO (the lab's, src/lab/emulator.ts
// labRtPrio) so the links keep their delays on the loaded machine. Each phase also reads the class's counters from both
// portals' status: copies that failed, packets sent alone or capped (LP), first copies by link (RP).
//
//   cut   30 s; the fast link (isp1) silently cut (the emulator drops everything, both ways) at
//         10 s. Targets: 0 packets lost; p99 of the one-way delay ≤ the faster usable link's
//         delay + 2 ms (22 ms before the cut, 42 ms after it); 0 packets without a copy before it.
//   (order: cut, bulk, loss)
//   loss  60 s with 2 % random loss on each link (both ways). Target: delivered loss ≤ 0.05 %
//         (the two copies are lost together with 2 % × 2 % = 0.04 %: 1.2 of 3000 packets).
//   bulk  an iperf3 TCP upload alone (the baseline), then one alongside the call, no loss:
//         goodput ≥ 85 % of the sum of the links (2 × 20 Mbit/s), the call still without loss.
//         Runs before the loss phase: after it, loss back to 0, one upload got one link's worth
//         (17.8-18.3 Mbit/s, against 33-36 in a lab that had only seen the cut), so the bench
//         measures that once more at the end.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../../errors.js';
import { packagePath } from '../../paths.js';
import * as emu from '../emulator.js';
import { portalInstance } from '../bond.js';
import { labDown, labUp } from '../lab.js';
import { iperf } from '../measure.js';
import { parseScenario } from '../scenario.js';
import { labDir } from '../state.js';
import { nsName } from '../topology.js';
import { portalStatus, type RedundantStatus } from '../../run/status.js';
import { suiteLabModes, type SuiteFigure, type SuiteOptions, type SuiteResult } from './suite.js';

const PORT = 5004;
const PPS = 50;
const BYTES = 200;
const SERVER = '203.0.113.2';
const DELAYS_MS = [20, 40];

/** The sender: `<dst> <port> <seconds> <pps> <bytes>` (seq u32, send time f64 ms at offset 4,
 * taken just before the send). The receiver is native/callrecv.c: it stamps each datagram with
 * the kernel's receive time (SO_TIMESTAMPNS). A node receiver stamped datagrams when its event
 * loop read them and added up to 90 ms on the loaded machine (README "Redundant mode"). */
const PROBE = `
import { createSocket } from 'node:dgram';
const [addr, portS, secS, ppsS, bytesS] = process.argv.slice(2);
const port = Number(portS), seconds = Number(secS), pps = Number(ppsS), bytes = Number(bytesS);
const clock = () => performance.timeOrigin + performance.now();
const s = createSocket('udp4');
s.bind(0, () => {
  const start = performance.now();
  let seq = 0;
  const tick = () => {
    const elapsed = (performance.now() - start) / 1000;
    if (elapsed >= seconds) { s.close(); process.stdout.write(JSON.stringify({ sent: seq }) + '\\n'); return; }
    while (seq < Math.floor(elapsed * pps)) {
      const b = Buffer.alloc(bytes);
      b.writeUInt32BE(seq++, 0);
      b.writeDoubleBE(clock(), 4);
      s.send(b, port, addr);
    }
    setTimeout(tick, 1);
  };
  tick();
});
`;

/** The class's counters at both portals: what the LP sent (copies, copyFailed, single, capped)
 * and what the RP received first on each link. */
interface ClassCounters {
  lp: RedundantStatus;
  rp: RedundantStatus;
}

async function counters(lab: string): Promise<Result<ClassCounters, MpError>> {
  const lp = await portalStatus(portalInstance(lab, 'lp'));
  if (lp.isErr()) return err(lp.error);
  const rp = await portalStatus(portalInstance(lab, 'rp'));
  if (rp.isErr()) return err(rp.error);
  const l = lp.value.redundant?.find((c) => c.name === 'call');
  const r = rp.value.redundant?.find((c) => c.id === l?.id);
  if (!l || !r) return err({ kind: 'Bug', message: 'the LP or the RP status has no redundant class "call"' });
  return ok({ lp: l, rp: r });
}

/** What happened between two readings: the LP's packets, copies, copies that failed, packets
 * sent alone (one usable link) or capped; the RP's first copies by link id and duplicates. */
export interface ClassDelta {
  packets: number;
  copies: number;
  copyFailed: number;
  single: number;
  capped: number;
  duplicates: number;
  wins: Record<string, number>;
}

export function classDelta(a: ClassCounters, b: ClassCounters): ClassDelta {
  const wins: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a.rp.wins), ...Object.keys(b.rp.wins)])) wins[k] = (b.rp.wins[k] ?? 0) - (a.rp.wins[k] ?? 0);
  return {
    packets: b.lp.packets - a.lp.packets,
    copies: b.lp.copies - a.lp.copies,
    copyFailed: b.lp.copyFailed - a.lp.copyFailed,
    single: b.lp.single - a.lp.single,
    capped: b.lp.capped - a.lp.capped,
    duplicates: b.rp.duplicates - a.rp.duplicates,
    wins,
  };
}

interface CallRun {
  sent: number;
  /** per seq: its one-way delay (ms), or null: lost */
  owdMs: (number | null)[];
  /** per seq: when it was sent (ms since the epoch, the sender's stamp), or null: lost */
  sentMs: (number | null)[];
  /** each event: when its action started (ms since the epoch) and seconds since the stream's
   * start when it had acted */
  events: { startMs: number; atS: number; label: string }[];
  /** the class's counters from the start to the first event, between events, and from the last
   * event to the end (events.length + 1 entries) */
  counts: ClassDelta[];
}

/** Runs the call for `seconds`, with `events` (at seconds into the stream), and reads the class's
 * counters at the start, before each event and at the end. */
async function call(lab: string, seconds: number, events: { atS: number; label: string; act: () => Promise<Result<unknown, MpError>> }[]): Promise<Result<CallRun, MpError>> {
  const file = `${labDir(lab)}/callprobe.mjs`;
  await writeFile(file, PROBE);
  const snaps: ClassCounters[] = [];
  const snap = async (): Promise<Result<void, MpError>> => {
    const c = await counters(lab);
    if (c.isErr()) return err(c.error);
    snaps.push(c.value);
    return ok(undefined);
  };
  const first = await snap();
  if (first.isErr()) return err(first.error);
  const recv = spawn('ip', ['netns', 'exec', nsName(lab, 'server'), callrecvPath(), SERVER, String(PORT), String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let rerr = '';
  recv.stdout.on('data', (d: Buffer) => (out += d.toString()));
  recv.stderr.on('data', (d: Buffer) => (rerr += d.toString()));
  const done = new Promise<number>((r) => recv.on('close', (c) => r(c ?? -1)));
  const t = Date.now() + 5000;
  while (!out.includes('listening') && Date.now() < t && recv.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  if (!out.includes('listening')) {
    recv.kill();
    return err({ kind: 'Timeout', what: 'call receiver', message: `the call receiver (${callrecvPath()}) did not start listening within 5 s${rerr ? `: ${rerr.trim()}` : ''}` });
  }
  const t0 = performance.now();
  const send = spawn('ip', ['netns', 'exec', nsName(lab, 'client'), process.execPath, file, SERVER, String(PORT), String(seconds), String(PPS), String(BYTES)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let sout = '';
  send.stdout.on('data', (d: Buffer) => (sout += d.toString()));
  const sent = new Promise<number>((r) => send.on('close', (c) => r(c ?? -1)));
  const acted: CallRun['events'] = [];
  for (const e of events) {
    const wait = t0 + e.atS * 1000 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const before = await snap();
    const startMs = Date.now();
    const r = before.isErr() ? before : await e.act();
    if (r.isErr()) {
      send.kill();
      recv.kill();
      return err(r.error);
    }
    acted.push({ startMs, atS: (performance.now() - t0) / 1000, label: e.label });
  }
  await sent;
  await done;
  const last = await snap();
  if (last.isErr()) return err(last.error);
  const n = (JSON.parse(sout.trim().split('\n').pop() ?? '{}') as { sent?: number }).sent ?? 0;
  const owd = (JSON.parse(out.trim().split('\n').pop() ?? '{}') as { owd?: [number, number, number][] }).owd ?? [];
  const owdMs: (number | null)[] = Array.from({ length: n }, () => null);
  const sentMs: (number | null)[] = Array.from({ length: n }, () => null);
  for (const [seq, ms, at] of owd)
    if (seq < n && owdMs[seq] === null) {
      owdMs[seq] = ms;
      sentMs[seq] = at;
    }
  return ok({ sent: n, owdMs, sentMs, events: acted, counts: snaps.slice(1).map((b, i) => classDelta(snaps[i]!, b)) });
}

const pct = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const round2 = (x: number) => Math.round(x * 100) / 100;
const median = (xs: readonly number[]) => pct(xs, 50);

/** The call's receiver (native/callrecv.c): `$MPCTL_CALLRECV`, else `<package root>/build/native/callrecv`. */
export const callrecvPath = (): string => process.env.MPCTL_CALLRECV ?? packagePath('build', 'native', 'callrecv');

const CLASS = ['[[redundant]]', 'name = "call"', `udp_ports = [${PORT}]`, 'links = 2', 'cap = "1mbit"'];

export async function redundantBench(lab: string, o: SuiteOptions): Promise<Result<SuiteResult, MpError>> {
  const sc = parseScenario({ links: DELAYS_MS.map((d) => ({ rate: '20mbit', delay: `${d}ms`, queue: '60ms' })) }, 'bench')._unsafeUnwrap();
  await labDown(lab);
  const up = await labUp({ name: lab, scenario: sc, bond: true, schedules: false, ...suiteLabModes(), lp: { redundant: CLASS } });
  if (up.isErr()) return err(up.error);
  const isp = (k: number) => nsName(lab, `isp${k}`);
  const figures: SuiteFigure[] = [];
  const runs = Math.max(1, o.runs);
  try {
    await new Promise((r) => setTimeout(r, 1500)); // probes answered, estimates in
    // ---- cut: the fast link silently cut mid-stream
    const cutS = o.seconds ?? 30;
    const cutAt = Math.round(cutS / 3);
    const lost: number[] = [];
    const p99Before: number[] = [];
    const p50Before: number[] = [];
    const slowBefore: number[] = [];
    const p99After: number[] = [];
    const noCopy: number[] = [];
    const fastFirst: number[] = [];
    const noCopyNotes: string[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await call(lab, cutS, [{ atS: cutAt, label: 'isp1 cut', act: () => emu.setParams(isp(1), 'both', { down: true }) }]);
      const back = await emu.setParams(isp(1), 'both', { down: false });
      if (r.isErr()) return err(r.error);
      if (back.isErr()) return err(back.error);
      await new Promise((res) => setTimeout(res, 2000)); // isp1 back up before the next run
      // Before the cut: packets sent more than the fast link's delay (+ 5 ms) before the cut's
      // request started, so their fast copy had left the emulator's delay line when it dropped
      // what it held. Every later packet counts as after the cut. (Was: by sequence number from
      // the moment the request had returned, which counted up to ~1 s of packets sent after the
      // cut — their fast copy cut — as before it: the ~5 % at the slow link's delay.)
      const cutMs = r.value.events[0]!.startMs - DELAYS_MS[0]! - 5;
      lost.push(r.value.owdMs.filter((x) => x === null).length);
      const delivered = r.value.owdMs.flatMap((ms, i) => (ms === null ? [] : [{ ms, at: r.value.sentMs[i]! }]));
      const before = delivered.filter((x) => x.at < cutMs).map((x) => x.ms);
      const after = delivered.filter((x) => x.at >= cutMs).map((x) => x.ms);
      p99Before.push(pct(before, 99));
      p50Before.push(pct(before, 50));
      slowBefore.push((100 * before.filter((x) => x > DELAYS_MS[0]! + 2).length) / Math.max(1, before.length));
      p99After.push(pct(after, 99));
      const c = r.value.counts[0]!; // start → the cut
      noCopy.push(c.copyFailed + c.single + c.capped);
      noCopyNotes.push(`${c.packets} sent: ${c.copyFailed} copies failed, ${c.single} alone, ${c.capped} capped; RP first copies by link ${JSON.stringify(c.wins)}`);
      const wins = Object.values(c.wins).reduce((a, n) => a + n, 0);
      fastFirst.push((100 * (c.wins['0'] ?? 0)) / Math.max(1, wins));
    }
    figures.push(
      { name: `call (50 pkt/s, 200 B UDP) over 20 + 40 ms, the 20 ms link silently cut at ${cutAt} s: packets lost`, unit: 'packets', runs: lost, median: median(lost), target: '0', met: lost.every((x) => x === 0), note: `of ${cutS * PPS} per run; client → server; [[redundant]] udp_ports = [5004], links = 2, cap 1mbit` },
      { name: 'call, before the cut: p99 one-way delay', unit: 'ms', runs: p99Before.map(round2), median: round2(median(p99Before)), target: '≤ 22 ms (the 20 ms link + 2 ms)', met: median(p99Before) <= 22, note: 'send to receive, same host clock; the links\' delays are the emulator\'s, each way' },
      { name: 'call, before the cut: median one-way delay', unit: 'ms', runs: p50Before.map(round2), median: round2(median(p50Before)), note: 'the 20 ms link\'s copy should be first' },
      { name: 'call, before the cut: packets slower than the 20 ms link + 2 ms', unit: '%', runs: slowBefore.map(round2), median: round2(median(slowBefore)), target: '< 1 % (for the p99 target)', met: median(slowBefore) < 1 },
      { name: 'call, before the cut: packets that went without a copy (LP status: copyFailed + single + capped)', unit: 'packets', runs: noCopy, median: median(noCopy), target: '0', met: noCopy.every((x) => x === 0), note: noCopyNotes.join(' | ') },
      { name: 'call, before the cut: first copies the RP took from the 20 ms link (status wins)', unit: '%', runs: fastFirst.map(round2), median: round2(median(fastFirst)), note: 'the data path\'s view: which copy reached the RP first, whatever the receiver measures' },
      { name: 'call, after the cut: p99 one-way delay', unit: 'ms', runs: p99After.map(round2), median: round2(median(p99After)), target: '≤ 42 ms (the 40 ms link + 2 ms)', met: median(p99After) <= 42, note: 'every packet sent from the fast link\'s delay + 5 ms before the cut on (their fast copy was cut)' },
    );
    // ---- bulk TCP alone (the same-invocation baseline), then alongside the call; before the loss
    // phase, which the bond remembers (below)
    const tcpS = o.seconds ?? 15;
    const alone: number[] = [];
    const mbit: number[] = [];
    const lostBulk: number[] = [];
    const p99Bulk: number[] = [];
    for (let i = 0; i < runs; i++) {
      const a = await iperf(lab, { server: { node: 'server', addr: SERVER }, client: { node: 'client' }, seconds: tcpS, omitS: 2 });
      if (a.isErr()) return err(a.error);
      alone.push(a.value.bps / 1e6);
      const bulk = iperf(lab, { server: { node: 'server', addr: SERVER }, client: { node: 'client' }, seconds: tcpS, omitS: 2 });
      const r = await call(lab, tcpS + 2, []);
      const b = await bulk;
      if (r.isErr()) return err(r.error);
      if (b.isErr()) return err(b.error);
      mbit.push(b.value.bps / 1e6);
      lostBulk.push(r.value.owdMs.filter((x) => x === null).length);
      p99Bulk.push(pct(r.value.owdMs.filter((x): x is number => x !== null), 99));
    }
    const ratio = alone.map((x, i) => (100 * mbit[i]!) / x);
    figures.push(
      { name: 'bulk TCP upload alongside the call: goodput', unit: 'Mbit/s', runs: mbit.map(round2), median: round2(median(mbit)), target: '≥ 85 % of the sum (34 Mbit/s of 2 × 20 Mbit/s)', met: median(mbit) >= 34, note: 'iperf3, the host\'s default congestion control; the call\'s copies take ~0.1 Mbit/s' },
      { name: 'bulk TCP upload alone (no call), same lab and invocation: goodput', unit: 'Mbit/s', runs: alone.map(round2), median: round2(median(alone)), note: 'the baseline: what the bond gives this TCP flow over 20/20 + 20/40 ms without redundant traffic' },
      { name: 'bulk TCP alongside the call / bulk TCP alone', unit: '%', runs: ratio.map(round2), median: round2(median(ratio)), note: 'what the call costs the bulk flow (alone and alongside alternate within each run)' },
      { name: 'the call alongside bulk TCP: p99 one-way delay', unit: 'ms', runs: p99Bulk.map(round2), median: round2(median(p99Bulk)), note: 'no target: each copy waits behind the bulk flow\'s queue on its link' },
      { name: 'the call alongside bulk TCP: packets lost', unit: 'packets', runs: lostBulk, median: median(lostBulk), note: `of ${(tcpS + 2) * PPS} per run` },
    );
    // ---- loss: 2 % random loss on each link, both ways
    for (const k of [1, 2]) {
      const l = await emu.setParams(isp(k), 'both', { lossPpm: 20_000 });
      if (l.isErr()) return err(l.error);
    }
    const lossS = o.seconds ? 2 * o.seconds : 60;
    const lossPct: number[] = [];
    const p99Loss: number[] = [];
    const lossNotes: string[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await call(lab, lossS, []);
      if (r.isErr()) return err(r.error);
      const c = r.value.counts[0]!;
      lossNotes.push(`${c.packets} sent: ${c.copyFailed} copies failed, ${c.single} alone, ${c.capped} capped`);
      lossPct.push((100 * r.value.owdMs.filter((x) => x === null).length) / Math.max(1, r.value.sent));
      p99Loss.push(pct(r.value.owdMs.filter((x): x is number => x !== null), 99));
    }
    figures.push(
      { name: 'call over 20 + 40 ms, 2 % random loss on each link: delivered loss', unit: '%', runs: lossPct.map((x) => Math.round(x * 1000) / 1000), median: Math.round(median(lossPct) * 1000) / 1000, target: '≤ 0.05 %', met: median(lossPct) <= 0.05, note: `${lossS * PPS} packets per run; both copies lost together: 2 % × 2 % = 0.04 % expected (${round2(lossS * PPS * 0.0004)} packets), so one run resolves the target only roughly; ${lossNotes.join(' | ')}` },
      { name: 'call with 2 % loss on each link: p99 one-way delay', unit: 'ms', runs: p99Loss.map(round2), median: round2(median(p99Loss)), note: 'no target: a packet whose 20 ms copy is lost (2 %) arrives by the 40 ms one, so p99 lands there' },
    );
    for (const k of [1, 2]) {
      const l = await emu.setParams(isp(k), 'both', { lossPpm: 0 });
      if (l.isErr()) return err(l.error);
    }
    // ---- bulk TCP alone again, the loss gone: what the bond kept of the loss phase
    const again = await iperf(lab, { server: { node: 'server', addr: SERVER }, client: { node: 'client' }, seconds: tcpS, omitS: 2 });
    if (again.isErr()) return err(again.error);
    figures.push({ name: 'bulk TCP upload alone after the loss phase (loss back to 0 %): goodput', unit: 'Mbit/s', runs: [round2(again.value.bps / 1e6)], median: round2(again.value.bps / 1e6), note: 'one run, right after the loss phase: compare with the baseline before it' });
    return ok({ figures, plot: { title: 'redundant call: 20 + 40 ms', panels: [] } });
  } finally {
    await labDown(lab);
  }
}
