// Floods from the Internet at the RP while a bonded TCP flow runs server → client (so the RP
// sends the data and needs the LP's feedback and probes, which arrive on the socket a handshake
// flood would fill):
//
//   client ── lp ═╦═ isp1 ═╦═ inet ── rp ── server
//                 ╚═ isp2 ═╝    │
//                            attacker 192.0.2.66: a raw socket, so it can spoof sources
//
//   replay    initiations the LP really made (its key, an old timestamp: as if captured), from
//             the attacker's address, FLOOD_PPS a second
//   mac1      initiations with a valid mac1 (anyone can compute one from the RP's public key)
//             from a static key the RP does not know, each from a random spoofed source in
//             172.16.0.0/12 (4096 /24s), FLOOD_PPS a second
//   random    168-byte type-4 messages with a valid header and random bytes after it, random
//             spoofed sources, FLOOD_PPS a second
//   frag      initiations cut into two outer IPv4 fragments, FRAG_PPS a second (4 s)
//   malformed wrong-size type-4 messages (each used to write a log line), FRAG_PPS a second (4 s)
//
// The portals rekey every REKEY_MS (MPCTL_REKEY_AFTER_MS; handshakes are ≥ 5 s apart) so that
// a rekey falls inside each flood. Reported per flood: the flow's goodput before and during,
// what the RP's data path dropped by reason, what reached its userland, the cookie replies
// (in all, and to the attacker's own /24), reply bytes per request byte, links marked down,
// rekey delays. Checked: nothing forwarded (the flood's messages are never data), no link down,
// every rekey in a flood within REKEY_LIMIT_MS, the cookie caps (bpf/flood.h), the RP's log
// did not grow with the flood, and the flow kept most of its rate. FLOOD_S (env MPCTL_FLOOD_S,
// default 5) is each flood's length; the issue's figures use 10.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { iperf } from '../src/lab/measure.js';
import { parseScenario } from '../src/lab/scenario.js';
import { BOND } from '../src/lab/bond.js';
import { labDir } from '../src/lab/state.js';
import { ATTACKER, nsName } from '../src/lab/topology.js';
import { encodeHdr, MP_T_HS_INIT } from '../src/datapath/abi.js';
import { createInitiation } from '../src/security/handshake.js';
import { generatePrivateKey, publicKeyOf, staticKeys } from '../src/security/keys.js';
import { INIT } from '../src/security/messages.js';
import { ipPacket, ipSpec, raw, udp } from './helpers/packet.js';
import { withLab } from './helpers/lab.js';
import { labStatus } from './helpers/wait.js';

const ROOT = new URL('..', import.meta.url).pathname;
const ATTACKER_TOOL = join(ROOT, 'test/helpers/attacker.ts');
const FLOOD_PPS = 50_000;
const FRAG_PPS = 20_000;
const FLOOD_S = Number(process.env.MPCTL_FLOOD_S ?? 5);
const GAP_S = 2;
const REKEY_MS = 4000;
const REKEY_LIMIT_MS = 1000;
const ATTACK_PORT = 40_000;
const SPOOF_BASE = '172.16.0.0';
const SPOOF_BITS = 20;

/** The RP's status (drops by reason, links, handshake counters), read in this process as
 * `mpctl status --json` prints it. */
const status = labStatus;

/** attacker.ts started now (node and tsx start up while the test does other things) and run
 * when `start` is called; `started` resolves once it is ready for that (or gone); `result` is
 * what it printed last (its JSON), once it exited. `cancel` ends one never started (the end of
 * its input: it exits without running). */
interface Primed {
  started: Promise<void>;
  start(): Promise<void>;
  result(): Promise<Record<string, number>>;
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
      return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, number>;
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

/** LP rekeys: initiation time and how long until the new key was in use. */
function rekeys(lines: LogLine[]): { at: number; ms: number | null; keyId: number }[] {
  const out: { at: number; ms: number | null; keyId: number }[] = [];
  for (const l of lines) {
    const i = /^handshake initiation key id (\d+)/.exec(l.msg);
    if (i && !out.some((r) => r.keyId === Number(i[1]) && r.ms === null)) out.push({ at: l.at, ms: null, keyId: Number(i[1]) });
    const u = /^session key id (\d+) in use/.exec(l.msg);
    const r = u ? out.find((x) => x.keyId === Number(u[1]) && x.ms === null) : undefined;
    if (r) r.ms = l.at - r.at;
  }
  return out;
}

test('handshake floods, fragments and malformed messages at the RP: the bond keeps its rate, no link goes down, rekeys stay on time', { timeout: 300_000 }, async (t) => {
  const prev = process.env.MPCTL_REKEY_AFTER_MS;
  process.env.MPCTL_REKEY_AFTER_MS = String(REKEY_MS); // the portals the lab starts inherit it
  const sc = parseScenario({ links: [{ label: 'l1', rate: '20mbit', delay: '10ms', queue: '60ms' }, { label: 'l2', rate: '20mbit', delay: '15ms', queue: '60ms' }] }, 't')._unsafeUnwrap();
  try {
    await withLab(
      sc,
      async (lab) => {
        const dir = labDir(lab);
        const ns = (n: string) => nsName(lab, n);
        const rpPublic = Buffer.from((await publicKeyOf((await readFile(`${dir}/rp.key`, 'utf8')).trim()))._unsafeUnwrap(), 'base64');
        const lpKeys = staticKeys(Buffer.from((await readFile(`${dir}/lp.key`, 'utf8')).trim(), 'base64'));
        const stranger = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
        const files = {
          replay: Array.from({ length: 16 }, (_, i) => toRp(ATTACKER.v4, createInitiation(lpKeys, rpPublic, Date.now(), undefined, { wallMs: Date.now() - 60_000 - i }).message)),
          mac1: Array.from({ length: 256 }, () => toRp(SPOOF_BASE, createInitiation(stranger, rpPublic, Date.now()).message)),
          random: Array.from({ length: 256 }, () => toRp(SPOOF_BASE, Buffer.concat([encodeHdr({ type: MP_T_HS_INIT }), randomBytes(INIT.size - 24)]))),
          frag: Array.from({ length: 256 }, (_, i) => fragments(ATTACKER.v4, createInitiation(stranger, rpPublic, Date.now()).message, 1000 + i)).flat(),
          malformed: Array.from({ length: 16 }, () => toRp(ATTACKER.v4, Buffer.concat([encodeHdr({ type: MP_T_HS_INIT }), randomBytes(76)]))),
        };
        for (const [k, v] of Object.entries(files)) await writeFile(`${dir}/flood-${k}.hex`, hexLines(v));

        const floods = [
          { name: 'replay', pps: FLOOD_PPS, s: FLOOD_S, bits: 0, size: files.replay[0]!.length },
          { name: 'mac1', pps: FLOOD_PPS, s: FLOOD_S, bits: SPOOF_BITS, size: files.mac1[0]!.length },
          { name: 'random', pps: FLOOD_PPS, s: FLOOD_S, bits: SPOOF_BITS, size: files.random[0]!.length },
          { name: 'frag', pps: FRAG_PPS, s: 4, bits: 0, size: (files.frag[0]!.length + files.frag[1]!.length) / 2 },
          { name: 'malformed', pps: FRAG_PPS, s: 4, bits: 0, size: files.malformed[0]!.length },
        ];
        // each flood's attacker runs start up (node + tsx, ~1 s) before it, in the gap after the
        // one before (the first's before the flow): the allowance per flood is for the status
        // reads, the listener's last 0.5 s and a start-up slower than the gap
        const PER_FLOOD_S = 1;
        const flowS = 4 + floods.reduce((a, f) => a + f.s + GAP_S + PER_FLOOD_S, 0) + 2;
        // the cookie replies that come back to the attacker's own address (its /24), and the flood
        const arm = (f: (typeof floods)[number]) => ({
          back: f.bits === 0 ? primed(ns('attacker'), ['listen', String(ATTACK_PORT), String(f.s * 1000 + 500)]) : null,
          flood: primed(ns('attacker'), ['flood', '4', String(f.pps), String(f.s), String(f.bits), `${dir}/flood-${f.name}.hex`]),
        });
        const armed: ReturnType<typeof arm>[] = [];
        try {
          armed.push(arm(floods[0]!));
          await Promise.all([armed[0]!.back?.started, armed[0]!.flood.started]); // not in the flow's first seconds (its rate before)
          const flow = iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: flowS, reverse: true });
          const t0 = Date.now();
          await sleep(4000);
          const rows: Record<string, unknown>[] = [];
          const windows: { name: string; from: number; to: number }[] = [];
          for (const [i, f] of floods.entries()) {
            const rp0 = await status(lab, 'rp');
            const rpLog0 = (await logLines(`${dir}/rp.log`)).length;
            const { back, flood } = armed[i]!;
            await back?.start(); // listening when the flood starts
            await flood.start();
            const out = await flood.result();
            const sent = out['sent']!;
            const from = out['startMs']!;
            const to = out['endMs']!;
            windows.push({ name: f.name, from, to });
            const replies = back ? await back.result() : null;
            const rp1 = await status(lab, 'rp');
            const d = (r: string) => (rp1.drops[r] ?? 0) - (rp0.drops[r] ?? 0);
            const secs = (to - from) / 1000;
            const cookies = (rp1.security?.cookiesSent ?? 0) - (rp0.security?.cookiesSent ?? 0);
            const up = (rp1.security?.initiationsReceived ?? 0) - (rp0.security?.initiationsReceived ?? 0);
            const rpLogGrew = (await logLines(`${dir}/rp.log`)).length - rpLog0;
            const row = {
              flood: f.name,
              sent,
              pps: Math.round(sent / secs),
              drops: Object.fromEntries(['fragment', 'hs_malformed', 'hs_source_rate', 'hs_global_rate'].map((r) => [r, d(r)])),
              toUserland: up,
              cookies,
              cookiesPerS: Math.round(cookies / secs),
              toAttacker24PerS: replies ? +(replies['received']! / secs).toFixed(1) : null,
              replyBytesPerRequestByte: +((cookies * (72 + 28)) / Math.max(1, sent * f.size)).toFixed(5),
              rpLogLines: rpLogGrew,
            };
            rows.push(row);
            t.diagnostic(JSON.stringify(row));
            assert.ok(cookies / secs <= 1000 + 1000 / secs, `${f.name}: cookie replies ≤ 1000/s (${cookies} in ${secs.toFixed(1)} s)`);
            if (replies) assert.ok(replies['received']! <= 10 * secs + 20, `${f.name}: cookie replies to one /24 ≤ 10/s (+ burst): ${replies['received']} in ${secs.toFixed(1)} s`);
            assert.ok(rpLogGrew <= 12, `${f.name}: the RP's log grew by ${rpLogGrew} lines`);
            if (floods[i + 1]) armed.push(arm(floods[i + 1]!));
            await sleep(GAP_S * 1000);
          }
          const r = await flow;
          assert.ok(r.isOk(), JSON.stringify(r.isErr() && r.error));
          const iv = r.value.intervals.map((x) => x / 1e6);
          t.diagnostic(`per-second goodput (Mbit/s): ${iv.map((x) => x.toFixed(1)).join(' ')}`);
          const sec = (ms: number) => (ms - t0) / 1000;
          const before = median(iv.slice(1, 4));
          const rates = windows.map((w) => {
            const during = iv.slice(Math.ceil(sec(w.from)), Math.floor(sec(w.to)));
            assert.ok(during.length >= 2, `${w.name}: the flow covered the flood (${sec(w.from).toFixed(1)}-${sec(w.to).toFixed(1)} s of ${iv.length})`);
            return { flood: w.name, before: +before.toFixed(1), median: +median(during).toFixed(1), worst: +Math.min(...during).toFixed(1), kept: +(median(during) / before).toFixed(3) };
          });
          for (const x of rates) t.diagnostic(`goodput ${JSON.stringify(x)}`);

          if (process.env.MPCTL_FLOOD_LOGS) for (const role of ['lp', 'rp']) await writeFile(`${process.env.MPCTL_FLOOD_LOGS}/${role}.log`, await readFile(`${dir}/${role}.log`));
          const lpLog = await logLines(`${dir}/lp.log`);
          const rpLog = await logLines(`${dir}/rp.log`);
          const inFlow = (l: LogLine) => l.at >= t0 && l.at <= Date.now();
          const downs = [...lpLog.map((l) => ({ ...l, who: 'lp' })), ...rpLog.map((l) => ({ ...l, who: 'rp' }))].filter((l) => inFlow(l) && /^link \d+ down/.test(l.msg));
          const rk = rekeys(lpLog).filter((x) => windows.some((w) => x.at >= w.from && x.at <= w.to));
          t.diagnostic(`links marked down during the flow: ${downs.length} ${downs.map((l) => `${l.who} at ${sec(l.at).toFixed(1)} s: ${l.msg}`).join('; ')}`);
          t.diagnostic(`floods (s into the flow): ${windows.map((w) => `${w.name} ${sec(w.from).toFixed(1)}-${sec(w.to).toFixed(1)}`).join(', ')}`);
          t.diagnostic(`rekeys started during a flood: ${JSON.stringify(rk.map((x) => ({ flood: windows.find((w) => x.at >= w.from && x.at <= w.to)?.name, ms: x.ms })))}`);
          const result = { floodS: FLOOD_S, rows, rates, downs: downs.map((l) => `${l.who} at ${sec(l.at).toFixed(1)} s: ${l.msg}`), rekeyMs: rk.map((x) => x.ms), goodputMbps: iv.map((x) => +x.toFixed(1)) };
          console.log(`flood: ${JSON.stringify(result)}`);
          if (process.env.MPCTL_FLOOD_LOGS) await writeFile(`${process.env.MPCTL_FLOOD_LOGS}/flood.json`, `${JSON.stringify(result, null, 2)}\n`);

          assert.equal(downs.length, 0, 'no link marked down');
          assert.ok(rk.length >= 1, 'a rekey happened during the floods');
          for (const x of rk) assert.ok(x.ms !== null && x.ms <= REKEY_LIMIT_MS, `rekey took ${x.ms} ms`);
          // the issue's target is 90 % of the rate; the 2-core CI machine runs the flood, the link
          // emulators and both portals at once, so the test holds the flow to 75 % and the figures
          // in bench-results/ are measured alone
          for (const x of rates) assert.ok(x.kept >= 0.75, `${x.flood}: flow kept ${(x.kept * 100).toFixed(0)} % of its rate`);
          const rpEnd = await status(lab, 'rp');
          assert.ok(rpEnd.links.every((l) => l.state === 'up'), 'links up at the end');
        } finally {
          for (const a of armed) for (const p of [a.back, a.flood]) p?.cancel(); // those not started exit
        }
      },
      { bond: true },
    );
  } finally {
    if (prev === undefined) delete process.env.MPCTL_REKEY_AFTER_MS;
    else process.env.MPCTL_REKEY_AFTER_MS = prev;
  }
});
