// Mutation fuzzing of decap's authentication (bpf/auth.h) through BPF_PROG_TEST_RUN: a stream
// of more than 10^6 packets in which the only authentic packets are the generator's originals,
// each sent once. Everything else is derived from them or made up:
//
//   flip     one bit flipped in the mpctl header, the inner packet or the tag
//   replay   an original sent again (sometimes from another outer address: NAT roaming)
//   stale    correctly signed, but its seq is more than the window behind top
//   oldkey   signed with an expired key, a withdrawn slot, an absent id, or the wrong key
//   cut      truncated: the frame cut short, or the datagram shortened consistently
//   random   random bytes after the UDP header / ip-carrier protocol
//
// Each packet's expected outcome is known to the generator (the `expect` of every packet), so
// the test checks, per packet, that nothing but an original is forwarded (redirected, or passed
// up as an authenticated control message: TC_ACT_OK), and, in total, that every drop counter
// moved by exactly as many as the generator produced under that reason. Handshake messages pass
// up unauthenticated by design (userland checks them); flips and random bytes that turn into
// one are expected as such.
//
// Run as root:  node --import tsx --test test/decap-fuzz.test.ts   (about 10 s: 7 s generating, 1.3 s in the kernel)

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bpfClose, progTestRunBatch } from '../src/native/libmpctl.js';
import {
  decodeHdr,
  DROP_REASONS,
  encodeConfig,
  encodeEndpoint,
  encodeKey,
  encodeLink,
  hostAddr,
  MP_CARRIER_IP,
  MP_CARRIER_UDP,
  MP_HDR_LEN,
  MP_LINK_UP,
  MP_REPLAY_WINDOW,
  MP_T_COOKIE,
  MP_T_FEC,
  MP_T_DATA,
  MP_T_FEEDBACK,
  MP_T_HS_INIT,
  MP_T_HS_RESP,
  MP_T_PROBE,
  NO_ADDR,
  type DropReason,
} from '../src/datapath/abi.js';
import { dropDelta, must, openObject, rng, type MapName, type ObjMaps } from './helpers/maps.js';
import { IP_PROTO, LP_CONFIG, RP_PORT } from './helpers/lp-config.js';
import { encodeProbe, PROBE_LEN } from '../src/run/probe.js';
import { frame, inetChecksum, ipPacket, ipSpec, mpPacket, parseIp, udp, type PacketKey } from './helpers/packet.js';

const ROOT = new URL('..', import.meta.url).pathname;
const OBJ = join(ROOT, 'build/bpf/mpctl.o');
const TOTAL = 1_000_000;
const BATCH = 20_000;

const TC_ACT_UNSPEC = -1;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

const RP_V4 = '203.0.113.1';
const RP_V6 = '2001:db8:113::1';
const LP_V4 = '198.51.100.1';
const LP_V6 = '2001:db8:100::1';
const linkPort = (id: number) => 40000 + id;

// ---- keys: what decap holds --------------------------------------------------------------------

const FAR_NS = 1n << 62n;
const hex = (s: string) => Buffer.from(s, 'hex');
const CURRENT: PacketKey = { id: 1, key: hex('00112233445566778899aabbccddeeff') };
const GRACE: PacketKey = { id: 2, key: hex('0f1e2d3c4b5a69788796a5b4c3d2e1f0') }; // the previous session, still accepted
const EXPIRED: PacketKey = { id: 3, key: hex('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf') };
const WITHDRAWN: PacketKey = { id: 4, key: hex('b0b1b2b3b4b5b6b7b8b9babbbcbdbebf') }; // slot written valid = 0
const ABSENT: PacketKey = { id: 200, key: hex('c0c1c2c3c4c5c6c7c8c9cacbcccdcecf') };
const VALID_IDS = new Set([CURRENT.id, GRACE.id]);

// ---- the object ----------------------------------------------------------------------------------

let obj: ObjMaps;
const put = (m: MapName, i: number, v: Buffer) => obj.put(m, i, v);

/** The LP as the RP's packets find it: links 0 (UDP/IPv4), 1 (UDP/IPv6), 2 (ip carrier on lo). */
function setUp(): void {
  obj.zero();
  put(
    'config',
    0,
    encodeConfig({ ...LP_CONFIG, mssV4: 0, mssV6: 0, innerMtu: 0 }),
  );
  for (const [id, v6, ip] of [[0, false, false], [1, true, false], [2, false, true]] as const) {
    put(
      'links',
      id,
      encodeLink({
        ifindex: ip ? 1 : 100 + id,
        state: MP_LINK_UP,
        carrier: ip ? MP_CARRIER_IP : MP_CARRIER_UDP,
        metric: 0,
        mtu: 1500,
        owdUs: 0,
        rateBps: 0n,
        local: hostAddr(v6 ? LP_V6 : LP_V4),
        nexthop: NO_ADDR,
        localPort: linkPort(id),
      }),
    );
    put('endpoints', id, encodeEndpoint({ addr: hostAddr(v6 ? RP_V6 : RP_V4), port: ip ? 0 : RP_PORT, valid: true, updatedNs: 0n }));
  }
  const slot = (k: PacketKey, expiresNs: bigint, valid: boolean) => put('rxKeys', k.id, encodeKey({ key: k.key, expiresNs, id: k.id, valid }));
  slot(CURRENT, FAR_NS, true);
  put('txKey', 0, encodeKey({ key: CURRENT.key, expiresNs: FAR_NS, id: CURRENT.id, valid: true })); // answers are signed
  slot(GRACE, FAR_NS, true);
  slot(EXPIRED, 1n, true);
  slot(WITHDRAWN, FAR_NS, false);
}

// ---- the generator -------------------------------------------------------------------------------

const next = rng(0xf022); // the whole stream is reproducible from the seed
const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length]!;
function bytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) {
    const r = next();
    b[i] = r;
    if (i + 1 < n) b[i + 1] = r >>> 8;
    if (i + 2 < n) b[i + 2] = r >>> 16;
    if (i + 3 < n) b[i + 3] = r >>> 24;
  }
  return b;
}

/** What decap must do with a packet: drop it for a reason, deliver it (redirect), pass it up as
 * an authentic control message (TC_ACT_OK), answer an authentic probe request (bpf/probe.h: the
 * reply is redirected) — those three only ever for an original — or pass up a handshake message
 * (TC_ACT_UNSPEC). */
type Expect = DropReason | 'deliver' | 'control' | 'answer' | 'up';
type Kind = 'original' | 'flip' | 'replay' | 'stale' | 'oldkey' | 'cut' | 'random';

interface Wire {
  frame: Buffer;
  /** offset of the mp_hdr in the frame */
  at: number;
}

/** An mpctl datagram to link `link` of the LP: outer IPv4/UDP (0), IPv6/UDP (1), ip carrier (2). */
function wire(link: number, type: number, seq: number, body: Buffer, key: PacketKey | undefined, src?: string): Wire {
  const v6 = link === 1;
  const outer = ipSpec(src ?? (v6 ? RP_V6 : RP_V4), v6 ? LP_V6 : LP_V4);
  const hdr = { type, linkId: link, seq, linkSeq: seq, tsUs: 1000 };
  const f =
    link === 2
      ? mpPacket({ outer, carrier: 'ip', ipProto: IP_PROTO, hdr, inner: body, ...(key ? { key } : {}) })
      : mpPacket({ outer, sport: RP_PORT, dport: linkPort(link), hdr, inner: body, ...(key ? { key } : {}) });
  return { frame: f, at: 14 + (v6 ? 40 : 20) + (link === 2 ? 0 : 8) };
}

/** Decap's verdict for a message that is not authentic, from its header as decap reads it. */
function classify(msg: Buffer): Expect {
  if (msg.length < MP_HDR_LEN) return 'truncated';
  const h = decodeHdr(msg);
  if (h.version !== 1 || h.type < MP_T_DATA || h.type > MP_T_FEC) return 'bad_version';
  // a handshake message: bpf/flood.h checks its shape (the LP receives responses and cookie
  // replies of their exact size, reserved header fields zero), then passes it up from the RP
  if (h.type >= MP_T_HS_INIT && h.type <= MP_T_COOKIE) {
    const size = h.type === MP_T_HS_RESP ? 112 : h.type === MP_T_COOKIE ? 72 : 0;
    const zero = h.flags === 0 && h.seq === 0 && h.linkSeq === 0 && h.tsUs === 0 && h.tag.every((x) => x === 0);
    return msg.length === size && h.linkId < 16 && zero ? 'up' : 'hs_malformed';
  }
  if (!VALID_IDS.has(h.keyId)) return 'no_key';
  return 'bad_mac';
}

/** Shorten the datagram to `keep` bytes after the mp_hdr offset, lengths made consistent. */
function shorten(w: Wire, keep: number): Buffer {
  const b = Buffer.from(w.frame.subarray(0, w.at + keep));
  const ip = parseIp(b);
  if (ip.version === 4) {
    b.writeUInt16BE(b.length - 14, 16);
    b.writeUInt16BE(0, 24);
    b.writeUInt16BE(inetChecksum(b.subarray(14, 34)), 24);
  } else b.writeUInt16BE(b.length - 14 - 40, 18);
  if (ip.proto === 17) b.writeUInt16BE(b.length - ip.l4, ip.l4 + 4);
  return b;
}

const innerTo = (v6: boolean, n: number) =>
  ipPacket(ipSpec(v6 ? '2001:db8:2::10' : '192.0.2.10', v6 ? '2001:db8:9::2' : '10.9.0.2'), udp({ sport: 53, dport: 33333, payload: bytes(n) }));

/** A probe's body (request or reply) with random fields, sometimes padded, sometimes asking
 * for a padded reply. */
function probeBody(link: number, request: boolean): Buffer {
  const p = {
    linkId: link,
    reply: !request,
    metric: next() % 4,
    carrier: link === 2 ? MP_CARRIER_IP : MP_CARRIER_UDP,
    probeSeq: next(),
    sentNs: BigInt(next()) << 20n,
    rateBps: BigInt(next()),
    owdUs: next() % 100_000,
    budgetBytes: next() % 2 ? next() : null,
    replyLen: next() % 4 === 0 ? 100 + (next() % 1400) : 0,
    pmtuDown: next() % 1500,
    pmtuUp: next() % 1500,
  };
  return encodeProbe(p, 0, next() % 3 === 0 ? PROBE_LEN + (next() % 300) : PROBE_LEN).subarray(MP_HDR_LEN);
}

interface Stream {
  packets: Buffer[];
  expect: Expect[];
  kinds: Kind[];
}

/** The stream, a batch at a time (its state carries over: replays reach back across batches). */
function generator(): (size: number) => Stream {
  let s: Stream = { packets: [], expect: [], kinds: [] };
  const add = (p: Buffer, e: Expect, k: Kind) => {
    s.packets.push(p);
    s.expect.push(e);
    s.kinds.push(k);
  };
  const sent: Wire[] = []; // recent originals, for replays
  const top = new Map<string, number>(); // `${key id}/${class}` → highest seq sent
  const seqs = new Map<string, number>();
  const nextSeq = (k: PacketKey, cls: number) => {
    const id = `${k.id}/${cls}`;
    const seq = ((seqs.get(id) ?? 0) + 1 + (next() % 3 === 0 ? next() % 40 : 0)) >>> 0; // gaps: loss
    seqs.set(id, seq);
    top.set(id, seq);
    return seq;
  };

  return (size) => {
  s = { packets: [], expect: [], kinds: [] };
  while (s.packets.length < size) {
    // an original: data (inner IPv4/IPv6 of 20..300 bytes, sometimes 1400) or a control message
    const key = next() % 4 === 0 ? GRACE : CURRENT;
    const link = next() % 3;
    const control = next() % 8 === 0;
    const type = control ? pick([MP_T_PROBE, MP_T_FEEDBACK]) : MP_T_DATA;
    const request = type === MP_T_PROBE && next() % 2 === 0;
    const body =
      type === MP_T_PROBE
        ? probeBody(link, request)
        : control
          ? bytes(next() % 64)
          : innerTo(next() % 2 === 0, next() % 16 === 0 ? 1372 : next() % 280);
    const seq = nextSeq(key, control ? 1 : 0);
    const orig = wire(link, type, seq, body, key);
    add(orig.frame, request ? 'answer' : control ? 'control' : 'deliver', 'original');
    sent.push(orig);
    if (sent.length > 4096) sent.splice(0, 1024);

    // and about nine made from it, or up
    for (let j = 0; j < 9; j++) {
      const r = next() % 100;
      if (r < 40) {
        // one bit flipped anywhere from the mpctl header to the end
        const b = Buffer.from(orig.frame);
        const at = orig.at + (next() % (b.length - orig.at));
        b[at] = b[at]! ^ (1 << (next() % 8));
        add(b, classify(b.subarray(orig.at)), 'flip');
      } else if (r < 55) {
        // a replay of this or an earlier original, maybe from another address
        const old = pick(sent);
        if (next() % 2 === 0 && old.frame.readUInt16BE(12) === 0x0800) {
          const b = Buffer.from(old.frame);
          b.writeUInt32BE(next(), 26); // outer source
          b.writeUInt16BE(0, 24);
          b.writeUInt16BE(inetChecksum(b.subarray(14, 34)), 24);
          add(b, 'replay', 'replay');
        } else add(old.frame, 'replay', 'replay');
      } else if (r < 62) {
        // authentic but stale: at least a window behind top
        const cls = next() % 2;
        const t = top.get(`${key.id}/${cls}`) ?? 0;
        if (t < MP_REPLAY_WINDOW + 10) continue;
        const stale = t - MP_REPLAY_WINDOW - (next() % 5000);
        if (stale <= 0) continue;
        add(wire(link, cls ? MP_T_PROBE : MP_T_DATA, stale, body, key).frame, 'replay', 'stale');
      } else if (r < 72) {
        // keys decap does not (or no longer) hold, or the right id with the wrong key
        const k = pick([EXPIRED, WITHDRAWN, ABSENT, { id: CURRENT.id, key: GRACE.key }, { id: GRACE.id, key: EXPIRED.key }, { id: 0, key: CURRENT.key }]);
        add(wire(link, type, next(), body, k).frame, VALID_IDS.has(k.id) ? 'bad_mac' : 'no_key', 'oldkey');
      } else if (r < 84) {
        // truncated: the frame cut (lengths now claim more than there is), or the datagram
        // shortened with consistent lengths (the MAC then covers fewer bytes)
        const keep = next() % (orig.frame.length - orig.at);
        if (next() % 2 === 0) add(orig.frame.subarray(0, orig.at + keep), 'truncated', 'cut');
        else {
          const b = shorten(orig, keep);
          add(b, classify(b.subarray(orig.at)), 'cut');
        }
      } else {
        // random bytes where the mpctl header goes (half of them with version 1 and a real type)
        const n = next() % 200;
        const junk = bytes(n);
        if (n > 0 && next() % 2 === 0) junk[0] = 0x10 | (1 + (next() % 3));
        if (n > 3 && next() % 2 === 0) junk[3] = pick([...VALID_IDS]);
        const b =
          link === 2
            ? frame(ipSpec(RP_V4, LP_V4), { proto: IP_PROTO, bytes: junk, csumOff: -1, pseudo: false })
            : frame(ipSpec(link === 1 ? RP_V6 : RP_V4, link === 1 ? LP_V6 : LP_V4), udp({ sport: RP_PORT, dport: linkPort(link), payload: junk, noChecksum: link !== 1 }));
        add(b, classify(junk), 'random');
      }
    }
  }
  return s;
  };
}

// ---- the test --------------------------------------------------------------------------------------

before(() => {
  assert.equal(process.getuid?.(), 0, 'this test needs root');
  obj = openObject(OBJ);
});

after(() => {
  if (obj !== undefined) bpfClose(obj.handle);
});

describe('decap fuzz: 10^6 mutated, replayed, stale, foreign-key, truncated and random packets', () => {
  it('forwards nothing but the originals, and counts every drop under its reason', (t) => {
    const batch = generator();
    let genMs = 0;
    let runMs = 0;
    let total = 0;
    setUp();
    const before = obj.drops();
    const verdictOf: Record<Expect, number> = Object.fromEntries([...DROP_REASONS.map((r) => [r, TC_ACT_SHOT]), ['deliver', TC_ACT_REDIRECT], ['answer', TC_ACT_REDIRECT], ['control', TC_ACT_OK], ['up', TC_ACT_UNSPEC]]) as Record<Expect, number>;
    const want: Partial<Record<Expect, number>> = {};
    const kinds: Partial<Record<Kind, number>> = {};
    let wrong = 0;
    while (total < TOTAL) {
      const t0 = Date.now();
      const s = batch(BATCH);
      const t1 = Date.now();
      const verdicts = must(progTestRunBatch(obj.handle, 'decap', s.packets));
      genMs += t1 - t0;
      runMs += Date.now() - t1;
      total += s.packets.length;
      verdicts.forEach((v, k) => {
        const e = s.expect[k]!;
        want[e] = (want[e] ?? 0) + 1;
        kinds[s.kinds[k]!] = (kinds[s.kinds[k]!] ?? 0) + 1;
        if (v !== verdictOf[e] && wrong++ < 10)
          console.log(`packet ${k} (${s.kinds[k]}): verdict ${v}, expected ${e}: ${s.packets[k]!.toString('hex')}`);
        if ((v === TC_ACT_REDIRECT || v === TC_ACT_OK) && s.kinds[k] !== 'original') assert.fail(`packet ${k} (${s.kinds[k]}) was forwarded: ${s.packets[k]!.toString('hex')}`);
      });
    }
    const counted = dropDelta(before, obj.drops());
    const expected: Partial<Record<DropReason, number>> = {};
    for (const r of DROP_REASONS) if (want[r]) expected[r] = want[r];

    const lines = [
      `${total} packets: ${JSON.stringify(kinds)}`,
      `outcomes: ${JSON.stringify(want)}`,
      `generated in ${genMs} ms, run in ${runMs} ms (${((runMs * 1e6) / total).toFixed(0)} ns per packet)`,
    ];
    for (const l of lines) t.diagnostic(l);
    console.log(lines.join('\n'));

    assert.equal(wrong, 0, 'packets whose verdict differs from the expected one');
    assert.deepEqual(counted, expected, 'drop counters = what the generator produced, reason by reason');
    assert.ok(total >= 1_000_000);
    for (const k of ['flip', 'replay', 'stale', 'oldkey', 'cut', 'random'] as Kind[]) assert.ok((kinds[k] ?? 0) > 20_000, `${k}: enough of them`);
    for (const r of ['bad_mac', 'replay', 'no_key', 'truncated', 'bad_version'] as DropReason[]) assert.ok((expected[r] ?? 0) > 10_000, `${r}: exercised`);
  });
});
