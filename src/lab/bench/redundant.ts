// `mpctl lab bench redundant` (README "Redundant mode"): a call — 50 packets/s of 200-byte UDP to port
// 5004, the class's `udp_ports` (node's dgram cannot set DSCP; DSCP matching is covered by the
// PROG_TEST_RUN tables, test/redundant.test.ts) — over 2 links of 20 and 40 ms one-way delay, in a redundant class (links = 2), client →
// server. Every packet carries its send time; the receiver (same host, same clock) records each
// packet's one-way delay and which never came.
//
//   cut   30 s; the fast link (isp1) silently cut (the emulator drops everything, both ways) at
//         10 s. Targets: 0 packets lost; p99 of the one-way delay ≤ the faster usable link's
//         delay + 2 ms (22 ms before the cut, 42 ms after it).
//   loss  60 s with 2 % random loss on each link (both ways). Target: delivered loss ≤ 0.05 %
//         (the two copies are lost together with 2 % × 2 % = 0.04 %: 1.2 of 3000 packets).
//   bulk  an iperf3 TCP upload alongside the call, no loss: goodput ≥ 85 % of the sum of the
//         links (2 × 20 Mbit/s), the call still without loss.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../../errors.js';
import * as emu from '../emulator.js';
import { labDown, labUp } from '../lab.js';
import { iperf } from '../measure.js';
import { parseScenario } from '../scenario.js';
import { labDir } from '../state.js';
import { nsName } from '../topology.js';
import type { SuiteFigure, SuiteOptions, SuiteResult } from './suite.js';

const PORT = 5004;
const PPS = 50;
const BYTES = 200;
const SERVER = '203.0.113.2';
const DELAYS_MS = [20, 40];

/** The probe: `send <dst> <port> <seconds> <pps> <bytes>` (seq u32, send time f64 ms at offset 4) and `recv <addr> <port> <seconds>` (prints {owd: [[seq, ms], …]}). */
const PROBE = `
import { createSocket } from 'node:dgram';
const [mode, addr, portS, secS, ppsS, bytesS] = process.argv.slice(2);
const port = Number(portS), seconds = Number(secS);
const clock = () => performance.timeOrigin + performance.now();
if (mode === 'recv') {
  const s = createSocket('udp4');
  const owd = [];
  let idle = null, end = null;
  const finish = () => { s.close(); process.stdout.write(JSON.stringify({ owd }) + '\\n'); process.exit(0); };
  s.on('message', (m) => {
    if (m.length < 12) return;
    owd.push([m.readUInt32BE(0), Math.round((clock() - m.readDoubleBE(4)) * 1000) / 1000]);
    if (end === null) end = setTimeout(finish, (seconds + 3) * 1000);
    clearTimeout(idle);
    idle = setTimeout(finish, 3000);
  });
  s.bind(port, addr, () => process.stdout.write('listening\\n'));
  setTimeout(finish, (seconds + 8) * 1000); // whatever arrives (or not)
} else {
  const pps = Number(ppsS), bytes = Number(bytesS);
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
}
`;

interface CallRun {
  sent: number;
  /** per seq: its one-way delay (ms), or null: lost */
  owdMs: (number | null)[];
  /** seconds since the stream started when each event acted */
  events: { atS: number; label: string }[];
}

/** Runs the call for `seconds`, with `events` (at seconds into the stream) and, alongside, `also`. */
async function call(lab: string, seconds: number, events: { atS: number; label: string; act: () => Promise<Result<unknown, MpError>> }[]): Promise<Result<CallRun, MpError>> {
  const file = `${labDir(lab)}/callprobe.mjs`;
  await writeFile(file, PROBE);
  const recv = spawn('ip', ['netns', 'exec', nsName(lab, 'server'), process.execPath, file, 'recv', SERVER, String(PORT), String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  recv.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number>((r) => recv.on('close', (c) => r(c ?? -1)));
  const t = Date.now() + 5000;
  while (!out.includes('listening') && Date.now() < t) await new Promise((r) => setTimeout(r, 20));
  if (!out.includes('listening')) {
    recv.kill();
    return err({ kind: 'Timeout', what: 'call receiver', message: 'the call receiver did not start listening within 5 s' });
  }
  const t0 = performance.now();
  const send = spawn('ip', ['netns', 'exec', nsName(lab, 'client'), process.execPath, file, 'send', SERVER, String(PORT), String(seconds), String(PPS), String(BYTES)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let sout = '';
  send.stdout.on('data', (d: Buffer) => (sout += d.toString()));
  const sent = new Promise<number>((r) => send.on('close', (c) => r(c ?? -1)));
  const acted: CallRun['events'] = [];
  for (const e of events) {
    const wait = t0 + e.atS * 1000 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const r = await e.act();
    if (r.isErr()) {
      send.kill();
      recv.kill();
      return err(r.error);
    }
    acted.push({ atS: (performance.now() - t0) / 1000, label: e.label });
  }
  await sent;
  await done;
  const n = (JSON.parse(sout.trim().split('\n').pop() ?? '{}') as { sent?: number }).sent ?? 0;
  const owd = (JSON.parse(out.trim().split('\n').pop() ?? '{}') as { owd?: [number, number][] }).owd ?? [];
  const owdMs: (number | null)[] = Array.from({ length: n }, () => null);
  for (const [seq, ms] of owd) if (seq < n && owdMs[seq] === null) owdMs[seq] = ms;
  return ok({ sent: n, owdMs, events: acted });
}

const pct = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const round2 = (x: number) => Math.round(x * 100) / 100;
const median = (xs: readonly number[]) => pct(xs, 50);

const CLASS = ['[[redundant]]', 'name = "call"', `udp_ports = [${PORT}]`, 'links = 2', 'cap = "1mbit"'];

export async function redundantBench(lab: string, o: SuiteOptions): Promise<Result<SuiteResult, MpError>> {
  const sc = parseScenario({ links: DELAYS_MS.map((d) => ({ rate: '20mbit', delay: `${d}ms`, queue: '60ms' })) }, 'bench')._unsafeUnwrap();
  await labDown(lab);
  const up = await labUp({ name: lab, scenario: sc, bond: true, schedules: false, lp: { redundant: CLASS } });
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
    for (let i = 0; i < runs; i++) {
      const r = await call(lab, cutS, [{ atS: cutAt, label: 'isp1 cut', act: () => emu.setParams(isp(1), 'both', { down: true }) }]);
      const back = await emu.setParams(isp(1), 'both', { down: false });
      if (r.isErr()) return err(r.error);
      if (back.isErr()) return err(back.error);
      await new Promise((res) => setTimeout(res, 2000)); // isp1 back up before the next run
      const cutSeq = Math.floor(r.value.events[0]!.atS * PPS);
      lost.push(r.value.owdMs.filter((x) => x === null).length);
      // a packet sent within a probe interval of the cut went while the data path still used isp1
      const before = r.value.owdMs.slice(0, cutSeq).filter((x): x is number => x !== null);
      p99Before.push(pct(before, 99));
      p50Before.push(pct(before, 50));
      slowBefore.push((100 * before.filter((x) => x > DELAYS_MS[0]! + 2).length) / Math.max(1, before.length));
      p99After.push(pct(r.value.owdMs.slice(cutSeq).filter((x): x is number => x !== null), 99));
    }
    figures.push(
      { name: `call (50 pkt/s, 200 B UDP) over 20 + 40 ms, the 20 ms link silently cut at ${cutAt} s: packets lost`, unit: 'packets', runs: lost, median: median(lost), target: '0', met: lost.every((x) => x === 0), note: `of ${cutS * PPS} per run; client → server; [[redundant]] udp_ports = [5004], links = 2, cap 1mbit` },
      { name: 'call, before the cut: p99 one-way delay', unit: 'ms', runs: p99Before.map(round2), median: round2(median(p99Before)), target: '≤ 22 ms (the 20 ms link + 2 ms)', met: median(p99Before) <= 22, note: 'send to receive, same host clock; the links\' delays are the emulator\'s, each way' },
      { name: 'call, before the cut: median one-way delay', unit: 'ms', runs: p50Before.map(round2), median: round2(median(p50Before)), note: 'the 20 ms link\'s copy should be first' },
      { name: 'call, before the cut: packets slower than the 20 ms link + 2 ms', unit: '%', runs: slowBefore.map(round2), median: round2(median(slowBefore)), target: '< 1 % (for the p99 target)', met: median(slowBefore) < 1 },
      { name: 'call, after the cut: p99 one-way delay', unit: 'ms', runs: p99After.map(round2), median: round2(median(p99After)), target: '≤ 42 ms (the 40 ms link + 2 ms)', met: median(p99After) <= 42, note: 'every packet from the moment of the cut' },
    );
    // ---- loss: 2 % random loss on each link, both ways
    for (const k of [1, 2]) {
      const l = await emu.setParams(isp(k), 'both', { lossPpm: 20_000 });
      if (l.isErr()) return err(l.error);
    }
    const lossS = o.seconds ? 2 * o.seconds : 60;
    const lossPct: number[] = [];
    const p99Loss: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await call(lab, lossS, []);
      if (r.isErr()) return err(r.error);
      lossPct.push((100 * r.value.owdMs.filter((x) => x === null).length) / Math.max(1, r.value.sent));
      p99Loss.push(pct(r.value.owdMs.filter((x): x is number => x !== null), 99));
    }
    figures.push(
      { name: 'call over 20 + 40 ms, 2 % random loss on each link: delivered loss', unit: '%', runs: lossPct.map((x) => Math.round(x * 1000) / 1000), median: Math.round(median(lossPct) * 1000) / 1000, target: '≤ 0.05 %', met: median(lossPct) <= 0.05, note: `${lossS * PPS} packets per run; both copies lost together: 2 % × 2 % = 0.04 % expected (${round2(lossS * PPS * 0.0004)} packets), so one run resolves the target only roughly` },
      { name: 'call with 2 % loss on each link: p99 one-way delay', unit: 'ms', runs: p99Loss.map(round2), median: round2(median(p99Loss)), note: 'no target: a packet whose 20 ms copy is lost (2 %) arrives by the 40 ms one, so p99 lands there' },
    );
    for (const k of [1, 2]) {
      const l = await emu.setParams(isp(k), 'both', { lossPpm: 0 });
      if (l.isErr()) return err(l.error);
    }
    // ---- bulk TCP alongside the call
    const tcpS = o.seconds ?? 15;
    const mbit: number[] = [];
    const lostBulk: number[] = [];
    for (let i = 0; i < runs; i++) {
      const bulk = iperf(lab, { server: { node: 'server', addr: SERVER }, client: { node: 'client' }, seconds: tcpS, omitS: 2 });
      const r = await call(lab, tcpS + 2, []);
      const b = await bulk;
      if (r.isErr()) return err(r.error);
      if (b.isErr()) return err(b.error);
      mbit.push(b.value.bps / 1e6);
      lostBulk.push(r.value.owdMs.filter((x) => x === null).length);
    }
    figures.push(
      { name: 'bulk TCP upload alongside the call: goodput', unit: 'Mbit/s', runs: mbit.map(round2), median: round2(median(mbit)), target: '≥ 85 % of the sum (34 Mbit/s of 2 × 20 Mbit/s)', met: median(mbit) >= 34, note: 'iperf3, the host\'s default congestion control; the call\'s copies take ~0.1 Mbit/s' },
      { name: 'the call alongside bulk TCP: packets lost', unit: 'packets', runs: lostBulk, median: median(lostBulk), note: `of ${(tcpS + 2) * PPS} per run` },
    );
    return ok({ figures, plot: { title: 'redundant call: 20 + 40 ms', panels: [] } });
  } finally {
    await labDown(lab);
  }
}
