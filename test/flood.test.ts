// Floods from the Internet at the RP while a bonded TCP flow runs server → client (so the RP
// sends the data and needs the LP's feedback and probes, which arrive on the socket a handshake
// flood would fill):
//
//   client ── lp ═╦═ isp1 ═╦═ inet ── rp ── server
//                 ╚═ isp2 ═╝    │
//                            attacker 192.0.2.66: a raw socket, so it can spoof sources
//
//   replay    initiations the LP really made (its key, an old timestamp: as if captured), from
//             the attacker's address, FLOOD_PPS a second, FLOOD_S
//   mac1      initiations with a valid mac1 (anyone can compute one from the RP's public key)
//             from a static key the RP does not know, each from a random spoofed source in
//             172.16.0.0/12 (4096 /24s), FLOOD_PPS a second, FLOOD_S
//   random    168-byte type-4 messages with a valid header and random bytes after it, random
//             spoofed sources, FLOOD_PPS a second, FLOOD_S
//   mac1-16   as mac1 but from 16 /24s (172.16.0-15.x; each /24 its own source port), FLOOD_PPS
//             a second, SHORT_S: each /24 sends ~3,000 a second, far over its cap of 10, and
//             together they stay under the global one, so the per-/24 cap is what binds
//   frag      initiations cut into two outer IPv4 fragments, FRAG_PPS a second, SHORT_S
//   malformed wrong-size type-4 messages (each used to write a log line), FRAG_PPS, SHORT_S
//
// The body of every random and malformed message (what follows the 24-byte header) is an IPv4
// UDP datagram with a marker to a listener on the server or the client: a portal that took one
// for data would deliver it there. Replies to the spoofed sources are routed to the attacker,
// which listens for them (a local route for 172.16.0.0/12; one port per /24 for mac1-16).
//
// The LP rekeys every REKEY_MS (MPCTL_REKEY_AFTER_MS; ≥ HANDSHAKE_TIMEOUT_MS, so the schedule is
// only that: the previous key in use + REKEY_MS) so that rekeys fall due inside each flood.
//
// Checked per flood: nothing forwarded (the listeners on server and client got no marked
// datagram, and every flood packet is counted: dropped in BPF by reason, or refused by the RP's
// userland; none unaccounted), the flow kept ≥ 90 % of its rate (bytes the client received over
// the flood's window against a window before the first flood), no link marked down, every rekey
// due in a FLOOD_S flood in use within REKEY_LIMIT_MS of when it was due (and at least one was
// due in each), cookie replies ≤ 1000/s in all and ≤ 10/s (+ a burst of 10) to any /24 (counted
// where they arrive), the RP's log did not grow with the flood. FLOOD_S (env MPCTL_FLOOD_S,
// default 10, the issue's length) is each long flood's length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { iperf } from '../src/lab/measure.js';
import { run } from '../src/lab/namespaces.js';
import { parseScenario } from '../src/lab/scenario.js';
import { BOND, clientAddrs } from '../src/lab/bond.js';
import { labDir } from '../src/lab/state.js';
import { ATTACKER, nsName } from '../src/lab/topology.js';
import { encodeHdr, MP_HDR_LEN, MP_T_HS_INIT } from '../src/datapath/abi.js';
import { createInitiation } from '../src/security/handshake.js';
import { generatePrivateKey, publicKeyOf, staticKeys } from '../src/security/keys.js';
import { INIT } from '../src/security/messages.js';
import { ipPacket, ipSpec, raw, udp } from './helpers/packet.js';
import { emulatorHealth, emulatorStarved, healthBetween, withLab } from './helpers/lab.js';
import { labStatus, waitFor } from './helpers/wait.js';
import type { PortalStatus } from '../src/run/status.js';

/** A link emulator this late (µs) stalled its link past what the fast-down rule calls a cut's start. */
const LAB_STALL_US = 40_000;
const ROOT = new URL('..', import.meta.url).pathname;
const ATTACKER_TOOL = join(ROOT, 'test/helpers/attacker.ts');
const FLOOD_PPS = 50_000;
const FRAG_PPS = 20_000;
const FLOOD_S = Number(process.env.MPCTL_FLOOD_S ?? 10);
/** the floods the issue has no length for (fragments, malformed, the per-/24 cap). BBR's
 * ProbeRTT (every 10 s, ~25 % of a second) and the flow's own dips cost a short window more
 * than a long one: 4 s windows kept 0.876-1.002 of the rate (the 0.876 a CI run's failure,
 * 2026-12-07), the gaps between floods (~2 s) 0.87-1.1 of it, the 10 s floods 0.972-1.002; at
 * 8 s a ProbeRTT costs at most ~3 % */
const SHORT_S = 8;
/** at least this long between floods (the flow recovers, the counters settle) */
const GAP_S = 2;
const REKEY_MS = 5000;
const REKEY_LIMIT_MS = 1000;
/** the issue's bar: the flow keeps this share of its rate during each flood */
const KEPT = 0.9;
const ATTACK_PORT = 40_000;
const SPOOF_BASE = '172.16.0.0';
const SPOOF_NET = '172.16.0.0/12';
const SPOOF_BITS = 20;
/** mac1-16: this many /24s, each from source port ATTACK_PORT + its index */
const PREFIXES = 16;
/** the data path's per-/24 (/48) bucket for handshake messages (bpf/flood.h): 10/s, burst 10 */
const PREFIX_RATE = 10;
const PREFIX_BURST = 10;
const COOKIE_CAP = 1000;
const SINK_PORT = 9999;
const MARKER = Buffer.from('6d7063746c666c6f6f640000', 'hex'); // "mpctlflood" in a would-be inner datagram
const SERVER = '203.0.113.2';
/** a legitimate handshake message is sent and counted by the RP's userland within this */
const SETTLE_MS = 400;

/** The RP's status (drops by reason, links, handshake counters), read in this process as
 * `mpctl status --json` prints it. */
const status = labStatus;

/** attacker.ts started now (node and tsx start up while the test does other things) and run
 * when `start` is called; `started` resolves once it is ready for that (or gone); `result` is
 * what it printed last (its JSON), once it exited. `cancel` ends one never started (the end of
 * its input: it exits without running). */
interface ToolOut {
  sent?: number;
  startMs?: number;
  endMs?: number;
  received?: number;
  marked?: number;
  perPort?: Record<string, number>;
}
interface Primed {
  started: Promise<void>;
  start(): Promise<void>;
  result(): Promise<ToolOut>;
  cancel(): void;
}
function primed(ns: string, args: string[]): Primed {
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', ATTACKER_TOOL, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ATTACKER_GO: 'stdin' },
  });
  let out = '';
  let errText = '';
  let onReady = () => {};
  const ready = new Promise<void>((r) => (onReady = r));
  p.stdout.on('data', (d) => {
    out += d;
    if (out.startsWith('ready\n')) onReady();
  });
  p.stderr.on('data', (d) => (errText += d));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  const failed = (code: number | null) => new Error(`attacker.ts ${args[0]} exited ${code}: ${errText}`);
  return {
    started: Promise.race([ready, exited.then(() => undefined)]),
    async start() {
      const early = await Promise.race([ready.then(() => undefined), exited.then((code) => ({ code }))]);
      if (early) throw failed(early.code);
      p.stdin.end('go\n');
    },
    async result() {
      const code = await exited;
      if (code !== 0) throw failed(code);
      return JSON.parse(out.trim().split('\n').pop() ?? '{}') as ToolOut;
    },
    cancel: () => p.stdin.end(),
  };
}

const hexLines = (bufs: Buffer[]) => `${bufs.map((b) => b.toString('hex')).join('\n')}\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** An IPv4/UDP datagram to the RP's tunnel port (UDP checksum 0, as the portals send). */
const toRp = (src: string, msg: Buffer, sport = ATTACK_PORT) => ipPacket(ipSpec(src, BOND.rp.v4, { df: false }), udp({ sport, dport: BOND.port, payload: msg, noChecksum: true }));

/** The same datagram cut into two outer fragments (the first holds the UDP header). */
function fragments(src: string, msg: Buffer, id: number): Buffer[] {
  const dgram = Buffer.from(udp({ sport: ATTACK_PORT, dport: BOND.port, payload: msg, noChecksum: true }).bytes);
  const cut = 104; // a multiple of 8
  return [
    ipPacket(ipSpec(src, BOND.rp.v4, { df: false, mf: true, id }), raw(17, dgram.subarray(0, cut))),
    ipPacket(ipSpec(src, BOND.rp.v4, { df: false, fragOffset: cut / 8, id }), raw(17, dgram.subarray(cut))),
  ];
}

interface LogLine {
  at: number;
  msg: string;
}
async function logLines(file: string): Promise<LogLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) => /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ at: Date.parse(m[1]!), msg: m[2]! }));
}

/** The LP's rekeys by its key schedule: a key is due REKEY_MS after the one before it came into
 * use (its session made: "session key id N in use"), and `late` is how long after that it came
 * into use (null: not yet). */
interface Rekey {
  keyId: number | null;
  due: number;
  inUse: number | null;
  late: number | null;
}
function scheduledRekeys(lines: LogLine[]): Rekey[] {
  const inUse = lines.flatMap((l) => {
    const m = /^session key id (\d+) in use/.exec(l.msg);
    return m ? [{ at: l.at, keyId: Number(m[1]) }] : [];
  });
  return inUse.map((x, i) => {
    const next = inUse[i + 1];
    const due = x.at + REKEY_MS;
    return { keyId: next?.keyId ?? null, due, inUse: next?.at ?? null, late: next ? next.at - due : null };
  });
}

/** What the client (the flow's receiver) has received on its interface, in bytes, and when. */
async function received(lab: string): Promise<{ at: number; bytes: number }> {
  const t0 = Date.now();
  const r = await run('ip', ['-n', nsName(lab, 'client'), '-s', '-j', 'link', 'show', 'dev', 'eth0']);
  const at = (t0 + Date.now()) / 2;
  assert.ok(r.isOk(), `client counters: ${JSON.stringify(r.isErr() && r.error)}`);
  const j = JSON.parse(r.value) as { stats64: { rx: { bytes: number } } }[];
  return { at, bytes: j[0]!.stats64.rx.bytes };
}
/** Mbit/s between two readings. */
const mbps = (a: { at: number; bytes: number }, b: { at: number; bytes: number }) => ((b.bytes - a.bytes) * 8) / ((b.at - a.at) * 1000);

const published = (s: PortalStatus) => s.controlPlane.lastSeenMs ?? 0;
/** the drop reasons a flood's messages are dropped by in BPF (bpf/flood.h) */
const FLOOD_DROPS = ['fragment', 'hs_malformed', 'hs_source_rate', 'hs_global_rate'];

test('handshake floods, fragments and malformed messages at the RP: nothing forwarded, the bond keeps ≥ 90 % of its rate, no link goes down, rekeys stay on schedule', { timeout: 300_000 }, async (t) => {
  const prev = process.env.MPCTL_REKEY_AFTER_MS;
  process.env.MPCTL_REKEY_AFTER_MS = String(REKEY_MS); // the portals the lab starts inherit it
  const sc = parseScenario({ links: [{ label: 'l1', rate: '20mbit', delay: '10ms', queue: '60ms' }, { label: 'l2', rate: '20mbit', delay: '15ms', queue: '60ms' }] }, 't')._unsafeUnwrap();
  try {
    await withLab(
      sc,
      async (lab) => {
        const dir = labDir(lab);
        const ns = (n: string) => nsName(lab, n);
        // replies to the spoofed sources go to the attacker, which takes them as its own
        for (const [node, args] of [
          ['inet', ['route', 'add', SPOOF_NET, 'via', ATTACKER.v4]],
          ['attacker', ['route', 'add', 'local', SPOOF_NET, 'dev', 'lo']],
        ] as const) {
          const r = await run('ip', ['-n', ns(node), ...args]);
          assert.ok(r.isOk(), `${node}: ip ${args.join(' ')}: ${JSON.stringify(r.isErr() && r.error)}`);
        }
        const client = clientAddrs({ singleInterface: false }).v4;
        const rpPublic = Buffer.from((await publicKeyOf((await readFile(`${dir}/rp.key`, 'utf8')).trim()))._unsafeUnwrap(), 'base64');
        const lpKeys = staticKeys(Buffer.from((await readFile(`${dir}/lp.key`, 'utf8')).trim(), 'base64'));
        const stranger = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
        /** `len` bytes that a portal taking them for a data packet's inner packet would deliver:
         * an IPv4 UDP datagram with the marker to the server's or the client's listener */
        const deliverable = (len: number, i: number) => {
          const [src, dst] = i % 2 ? [SERVER, client] : [client, SERVER];
          return ipPacket(ipSpec(src, dst, { df: false }), udp({ sport: 4444, dport: SINK_PORT, payload: Buffer.concat([MARKER, randomBytes(len - 28 - MARKER.length)]), noChecksum: true }));
        };
        const files = {
          replay: Array.from({ length: 16 }, (_, i) => toRp(ATTACKER.v4, createInitiation(lpKeys, rpPublic, Date.now(), undefined, { wallMs: Date.now() - 60_000 - i }).message)),
          mac1: Array.from({ length: 256 }, () => toRp(SPOOF_BASE, createInitiation(stranger, rpPublic, Date.now()).message)),
          random: Array.from({ length: 256 }, (_, i) => toRp(SPOOF_BASE, Buffer.concat([encodeHdr({ type: MP_T_HS_INIT }), deliverable(INIT.size - MP_HDR_LEN, i)]))),
          'mac1-16': Array.from({ length: 256 }, (_, i) => toRp(`172.16.${i % PREFIXES}.0`, createInitiation(stranger, rpPublic, Date.now()).message, ATTACK_PORT + (i % PREFIXES))),
          frag: Array.from({ length: 256 }, (_, i) => fragments(ATTACKER.v4, createInitiation(stranger, rpPublic, Date.now()).message, 1000 + i)).flat(),
          malformed: Array.from({ length: 16 }, (_, i) => toRp(ATTACKER.v4, Buffer.concat([encodeHdr({ type: MP_T_HS_INIT }), deliverable(76, i)]))),
        };
        for (const [k, v] of Object.entries(files)) await writeFile(`${dir}/flood-${k}.hex`, hexLines(v));

        const floods = [
          { name: 'replay', pps: FLOOD_PPS, s: FLOOD_S, bits: 0, size: files.replay[0]!.length },
          { name: 'mac1', pps: FLOOD_PPS, s: FLOOD_S, bits: SPOOF_BITS, size: files.mac1[0]!.length },
          { name: 'random', pps: FLOOD_PPS, s: FLOOD_S, bits: SPOOF_BITS, size: files.random[0]!.length },
          { name: 'mac1-16', pps: FLOOD_PPS, s: SHORT_S, bits: 8, size: files['mac1-16'][0]!.length },
          { name: 'frag', pps: FRAG_PPS, s: SHORT_S, bits: 0, size: (files.frag[0]!.length + files.frag[1]!.length) / 2 },
          { name: 'malformed', pps: FRAG_PPS, s: SHORT_S, bits: 0, size: files.malformed[0]!.length },
        ];
        // each flood's attacker starts up (node + tsx, ~1 s) before it, in the gap after the one
        // before (the first's before the flow), while the counters settle (2-3.3 s measured)
        const PER_FLOOD_S = 2.5;
        const BEFORE_S = 4.5;
        const flowS = Math.ceil(BEFORE_S + floods.reduce((a, f) => a + f.s + PER_FLOOD_S, 0) + 1.5);
        // the cookie replies that come back (to the attacker's own /24, or to the spoofed
        // sources, one port per /24 for mac1-16), and the flood
        const arm = (f: (typeof floods)[number]) => ({
          back: primed(ns('attacker'), ['listen', f.name === 'mac1-16' ? `${ATTACK_PORT}-${ATTACK_PORT + PREFIXES - 1}` : String(ATTACK_PORT), String(f.s * 1000 + 500)]),
          flood: primed(ns('attacker'), ['flood', '4', String(f.pps), String(f.s), String(f.bits), `${dir}/flood-${f.name}.hex`]),
        });
        // what the portals would deliver if they took a flood message for data
        const sinks = (['server', 'client'] as const).map((n) => ({ n, p: primed(ns(n), ['listen', String(SINK_PORT), String(flowS * 1000), MARKER.toString('hex')]) }));
        const armed: ReturnType<typeof arm>[] = [];
        /** RP then LP, the LP's counters published no earlier than the RP's: every legitimate
         * initiation the LP counts after this, the RP counts after its reading too */
        const snapStart = async (rp?: PortalStatus) => {
          const r = rp ?? (await status(lab, 'rp'));
          const l = (await waitFor('the LP publishes after the RP', () => status(lab, 'lp'), (s) => published(s) >= published(r), 2500, 100)).value;
          return { rp: r, lp: l };
        };
        /** LP then RP, the RP's counters published SETTLE_MS after the LP's and the flood's end:
         * what the LP sent up to its reading, and what the flood sent, the RP has counted */
        const snapEnd = async (endMs: number) => {
          const l = await status(lab, 'lp');
          const r = (await waitFor('the RP publishes after the flood', () => status(lab, 'rp'), (s) => published(s) >= Math.max(published(l), endMs) + SETTLE_MS, 3500, 100)).value;
          return { rp: r, lp: l };
        };
        try {
          armed.push(arm(floods[0]!));
          await Promise.all([armed[0]!.back.started, armed[0]!.flood.started, ...sinks.map((s) => s.p.started)]); // not in the flow's first seconds (its rate before)
          for (const s of sinks) await s.p.start();
          const health0 = await emulatorHealth(lab);
          const flow = iperf(lab, { server: { node: 'server', addr: SERVER }, client: { node: 'client' }, seconds: flowS, reverse: true });
          const t0 = Date.now();
          // the rate before: from when iperf has surely started and left slow start, to the first flood
          await sleep(2000);
          const rxA = await received(lab);
          await sleep(t0 + BEFORE_S * 1000 - 1200 - Date.now());
          let snap = await snapStart();
          await sleep(t0 + BEFORE_S * 1000 - Date.now());
          const rxB = await received(lab);
          const before = mbps(rxA, rxB);
          let lastRx = rxB;
          const gaps: number[] = [];
          const rows: Record<string, unknown>[] = [];
          const windows: { name: string; s: number; from: number; to: number; kept: number; during: number }[] = [];
          for (const [i, f] of floods.entries()) {
            const rpLog0 = (await logLines(`${dir}/rp.log`)).length;
            const { back, flood } = armed[i]!;
            await back.start(); // listening when the flood starts
            const rx0 = await received(lab);
            gaps.push(mbps(lastRx, rx0));
            await flood.start();
            const out = await flood.result();
            const rx1 = await received(lab);
            lastRx = rx1;
            const sent = out.sent!;
            const from = out.startMs!;
            const to = out.endMs!;
            const during = mbps(rx0, rx1);
            windows.push({ name: f.name, s: f.s, from, to, kept: during / before, during });
            if (floods[i + 1]) armed.push(arm(floods[i + 1]!));
            const replies = await back.result();
            const end = await snapEnd(to);
            const { rp: rp0, lp: lp0 } = snap;
            const { rp: rp1, lp: lp1 } = end;
            const d = (r: string) => (rp1.drops[r] ?? 0) - (rp0.drops[r] ?? 0);
            const sec = (a: PortalStatus, b: PortalStatus, k: 'cookiesSent' | 'initiationsReceived' | 'initiationsSent') => (b.security?.[k] ?? 0) - (a.security?.[k] ?? 0);
            const secs = (to - from) / 1000;
            const cookies = sec(rp0, rp1, 'cookiesSent');
            const up = sec(rp0, rp1, 'initiationsReceived');
            const lpSent = sec(lp0, lp1, 'initiationsSent');
            const dropped = FLOOD_DROPS.reduce((a, r) => a + d(r), 0);
            // every flood packet dropped in BPF or refused in userland (which also counts the
            // LP's own initiations, all of them that the LP counted here): none forwarded
            const unaccounted = sent - (dropped + up - lpSent);
            // what the flood made the RP log: not the key schedule's lines (a rekey every
            // REKEY_MS, two lines each) nor a link's state changes (a stall of the lab's
            // machine: three lines, asserted on their own), which with three rekeys in a flood
            // made 13 lines in a CI run
            const grew = (await logLines(`${dir}/rp.log`)).slice(rpLog0);
            const rpLogGrew = grew.filter((l) => !/^session key id \d+ |^link \d+[: ]/.test(l.msg)).length;
            const perPrefix = Object.values(replies.perPort ?? {});
            const row = {
              flood: f.name,
              sent,
              pps: Math.round(sent / secs),
              drops: Object.fromEntries(FLOOD_DROPS.map((r) => [r, d(r)])),
              toUserland: up,
              lpInitiations: lpSent,
              unaccounted,
              cookies,
              cookiesPerS: Math.round(cookies / secs),
              repliesArrived: replies.received,
              repliesPerPrefix: f.name === 'mac1-16' ? perPrefix : undefined,
              replyBytesPerRequestByte: +((cookies * (72 + 28)) / Math.max(1, sent * f.size)).toFixed(5),
              rpLogLines: rpLogGrew,
              mbpsDuring: +during.toFixed(1),
              kept: +(during / before).toFixed(3),
            };
            rows.push(row);
            t.diagnostic(JSON.stringify(row));
            assert.ok(unaccounted <= 0, `${f.name}: ${unaccounted} of ${sent} flood packets neither dropped in BPF (${dropped}) nor refused by the RP's userland (${up} - the LP's ${lpSent})`);
            assert.ok(cookies <= COOKIE_CAP * secs + COOKIE_CAP, `${f.name}: cookie replies ≤ ${COOKIE_CAP}/s (${cookies} in ${secs.toFixed(1)} s)`);
            assert.ok(replies.received! <= cookies, `${f.name}: the attacker got ${replies.received} replies, the RP sent ${cookies}`);
            const prefixCap = PREFIX_RATE * secs + PREFIX_BURST + 1;
            if (f.bits === 0) assert.ok(replies.received! <= prefixCap, `${f.name}: cookie replies to one /24 ≤ ${PREFIX_RATE}/s + ${PREFIX_BURST}: ${replies.received} in ${secs.toFixed(1)} s`);
            if (f.name === 'mac1-16') {
              assert.equal(perPrefix.length, PREFIXES);
              for (const n of perPrefix) assert.ok(n <= prefixCap, `mac1-16: cookie replies to one /24 ≤ ${PREFIX_RATE}/s + ${PREFIX_BURST}: ${n} in ${secs.toFixed(1)} s (${JSON.stringify(perPrefix)})`);
              // and the cap is what held them (each /24 sent ~3,000/s): they did get replies
              for (const n of perPrefix) assert.ok(n >= (PREFIX_RATE * secs) / 2, `mac1-16: each /24 got cookie replies at its cap: ${JSON.stringify(perPrefix)} in ${secs.toFixed(1)} s`);
            }
            assert.ok(rpLogGrew <= 12, `${f.name}: the RP's log grew by ${rpLogGrew} lines`);
            snap = await snapStart(rp1);
            await sleep(to + GAP_S * 1000 - Date.now());
          }
          const flowEnd = t0 + flowS * 1000;
          const r = await flow;
          assert.ok(r.isOk(), JSON.stringify(r.isErr() && r.error));
          const sunk = await Promise.all(sinks.map(async (s) => ({ n: s.n, ...(await s.p.result()) })));
          t.diagnostic(`listeners for would-be inner datagrams: ${JSON.stringify(sunk)}`);
          for (const s of sunk) assert.equal(s.marked, 0, `no flood message was delivered to the ${s.n}`);

          const iv = r.value.intervals.map((x) => x / 1e6);
          t.diagnostic(`per-second goodput (Mbit/s): ${iv.map((x) => x.toFixed(1)).join(' ')}`);
          const sec = (ms: number) => (ms - t0) / 1000;
          const rates = windows.map((w) => ({ flood: w.name, before: +before.toFixed(1), during: +w.during.toFixed(1), kept: +w.kept.toFixed(3) }));
          for (const x of rates) t.diagnostic(`rate ${JSON.stringify(x)}`);
          t.diagnostic(`gaps before each flood (Mbit/s): ${gaps.map((x) => x.toFixed(1)).join(' ')}`);

          if (process.env.MPCTL_FLOOD_LOGS) for (const role of ['lp', 'rp']) await writeFile(`${process.env.MPCTL_FLOOD_LOGS}/${role}.log`, await readFile(`${dir}/${role}.log`));
          const lpLog = await logLines(`${dir}/lp.log`);
          const rpLog = await logLines(`${dir}/rp.log`);
          const inFlow = (l: LogLine) => l.at >= t0 && l.at <= Date.now();
          const downs = [...lpLog.map((l) => ({ ...l, who: 'lp' })), ...rpLog.map((l) => ({ ...l, who: 'rp' }))].filter((l) => inFlow(l) && /^link \d+ down/.test(l.msg));
          const inFlood = (at: number) => windows.find((w) => at >= w.from && at <= w.to);
          const rk = scheduledRekeys(lpLog).filter((x) => inFlood(x.due));
          t.diagnostic(`links marked down during the flow: ${downs.length} ${downs.map((l) => `${l.who} at ${sec(l.at).toFixed(1)} s: ${l.msg}`).join('; ')}`);
          t.diagnostic(`floods (s into the flow): ${windows.map((w) => `${w.name} ${sec(w.from).toFixed(1)}-${sec(w.to).toFixed(1)}`).join(', ')}`);
          t.diagnostic(`rekeys due during a flood (ms in use after due): ${JSON.stringify(rk.map((x) => ({ flood: inFlood(x.due)?.name, dueS: +sec(x.due).toFixed(2), late: x.late })))}`);
          const result = {
            floodS: FLOOD_S,
            shortS: SHORT_S,
            rows,
            rates,
            downs: downs.map((l) => `${l.who} at ${sec(l.at).toFixed(1)} s: ${l.msg}`),
            rekeysDue: rk.map((x) => ({ flood: inFlood(x.due)?.name, lateMs: x.late })),
            goodputMbps: iv.map((x) => +x.toFixed(1)),
            sinks: sunk,
          };
          console.log(`flood: ${JSON.stringify(result)}`);
          if (process.env.MPCTL_FLOOD_LOGS) await writeFile(`${process.env.MPCTL_FLOOD_LOGS}/flood.json`, `${JSON.stringify(result, null, 2)}\n`);

          for (const w of windows) assert.ok(w.to <= flowEnd - 500, `${w.name}: the flow covered the flood (it ended ${sec(w.to).toFixed(1)} s into the ${flowS} s flow)`);
          // a link emulator that itself stalled (its process ran late) stalled its link: a link
          // called down then is right, and the lab's doing, not the flood's (session 32's suite
          // runs: both portals called link 1 down at once, "its data stopped arriving")
          const health1 = await emulatorHealth(lab);
          const starved = emulatorStarved(health0, health1, LAB_STALL_US);
          t.diagnostic(`link emulators during the flow: ${healthBetween(health0, health1)}`);
          if (starved && downs.length > 0) t.diagnostic(`links marked down while an emulator ran ${LAB_STALL_US / 1000} ms or more late: its link stalled`);
          else assert.equal(downs.length, 0, 'no link marked down');
          for (const w of windows.filter((x) => x.s === FLOOD_S)) assert.ok(rk.some((x) => inFlood(x.due) === w), `${w.name}: a rekey fell due during the flood`);
          for (const x of rk) assert.ok(x.late !== null && x.late <= REKEY_LIMIT_MS, `${inFlood(x.due)?.name}: the rekey due ${sec(x.due).toFixed(2)} s into the flow was in use ${x.late === null ? 'never' : `${x.late} ms after`}`);
          for (const x of rates) assert.ok(x.kept >= KEPT, `${x.flood}: the flow kept ${(x.kept * 100).toFixed(1)} % of its rate (${x.during} of ${x.before} Mbit/s)`);
          const rpEnd = await status(lab, 'rp');
          assert.ok(rpEnd.links.every((l) => l.state === 'up'), 'links up at the end');
        } finally {
          for (const a of armed) for (const p of [a.back, a.flood]) p.cancel(); // those not started exit
          for (const s of sinks) s.p.cancel();
        }
      },
      { bond: true },
    );
  } finally {
    if (prev === undefined) delete process.env.MPCTL_REKEY_AFTER_MS;
    else process.env.MPCTL_REKEY_AFTER_MS = prev;
  }
});
