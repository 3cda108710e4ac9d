// The data path answers probe requests itself (bpf/probe.h, mp.h "struct mp_peer_probe"), as
// packet tables through BPF_PROG_TEST_RUN: a request in, the reply's bytes out (addresses,
// ports and MACs swapped, lengths, checksums, the body echoed, the MAC verified with mac.ts),
// the request recorded, replay windows, padding, and every refused request dropped and counted.
// Run as root:  node --import tsx --test test/probe-answer.test.ts
//
// In test runs bpf_redirect only records its target and returns TC_ACT_REDIRECT (7): the reply
// is the output packet.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bpfClose, mapFd, mapMmap, mmapRead, munmap, progTestRun } from '../src/native/libmpctl.js';
import {
  decodeEndpoint,
  decodeHdr,
  decodePeerProbe,
  MP_PEER_PROBE,
  MP_RX,
  offsetOf,
  decodeReplay,
  decodeSched,
  encodeConfig,
  encodeEndpoint,
  encodeKey,
  encodeLink,
  hostAddr,
  MP_CARRIER_IP,
  MP_CARRIER_UDP,
  MP_CFG_NO_AUTH,
  MP_HDR_F_DP,
  MP_HDR_LEN,
  MP_LINK_UP,
  MP_PROBE_F_ADMIN_DOWN,
  MP_PROBE_F_BUDGET,
  MP_PROBE_F_PMTU,
  MP_PROBE_F_TRAIN,
  MP_PROBE_F_UNRATED,
  MP_REPLAY_CONTROL,
  MP_REPLAY_DATA,
  MP_ROLE_LOCAL,
  MP_ROLE_REMOTE,
  MP_T_DATA,
  MP_T_PROBE,
  NO_ADDR,
  NO_KEY,
  replayIndex,
  type DropReason,
  type MpConfig,
} from '../src/datapath/abi.js';
import { decodeProbe, encodeProbe, PROBE_LEN, type Probe } from '../src/run/probe.js';
import { macOf } from '../src/security/mac.js';
import { ethDst, ethSrc, ipPacket, ipSpec, l4ChecksumOk, MAC_A, MAC_B, mpPacket, parseIp, udp, type PacketKey } from './helpers/packet.js';
import { dropDelta, must, openObject, type ObjMaps } from './helpers/maps.js';
import { serial } from './helpers/serial.js';

// the data path's scheduling reads the clock between packets: not beside another test file
// (helpers/serial.ts; beside one, datapath's 'equal links alternate' met a later clock in a CI run)
await serial();

const OBJ = join(new URL('..', import.meta.url).pathname, 'build/bpf/mpctl.o');
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const TC_ACT_UNSPEC = -1;

const LP_V4 = '198.51.100.1';
const LP_V6 = '2001:db8:100::1';
const NAT_V4 = '198.51.100.77';
const RP_V4 = '203.0.113.1';
const RP_V6 = '2001:db8:113::1';
const RP_PORT = 5555;
const IP_PROTO = 253;
const linkPort = (id: number) => 40000 + id;

const KEY: PacketKey = { id: 1, key: Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex') };
const FAR_NS = 1n << 62n;

const CONFIG: MpConfig = {
  role: MP_ROLE_REMOTE,
  flags: 0,
  lanIfindex: 0,
  wanIfindex: 1,
  port: RP_PORT,
  mssV4: 0,
  mssV6: 0,
  innerMtu: 1400,
  ipProto: IP_PROTO,
  clientV4: hostAddr('203.0.113.7'),
  clientV6: { family: 6, prefixLen: 64, addr: '2001:db8:7::' },
  reservedPorts: [],
  loopIfindex: 0,
  loopMark: 0,
};

let obj: ObjMaps | undefined;
const maps = (): ObjMaps => {
  assert.ok(obj, 'object loaded');
  return obj;
};

before(() => {
  obj = openObject(OBJ);
});
after(() => {
  if (obj) bpfClose(obj.handle);
});

/** Zero everything; KEY both ways; `role` configured. The LP has links 0 (UDP, IPv4), 1 (UDP,
 * IPv6) and 2 (ip carrier on "lo", the test skb's device). */
function reset(role: number = MP_ROLE_REMOTE, flags = 0): void {
  const m = maps();
  m.zero();
  m.put('txKey', 0, encodeKey({ key: KEY.key, expiresNs: FAR_NS, id: KEY.id, valid: true }));
  m.put('rxKeys', KEY.id, encodeKey({ key: KEY.key, expiresNs: FAR_NS, id: KEY.id, valid: true }));
  m.put('config', 0, encodeConfig({ ...CONFIG, role, flags, ...(role === MP_ROLE_LOCAL ? { wanIfindex: 0, lanIfindex: 1 } : {}) }));
  if (role !== MP_ROLE_LOCAL) return;
  for (const [id, v6, ip] of [
    [0, false, false],
    [1, true, false],
    [2, false, true],
  ] as const) {
    m.put(
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
    m.put('endpoints', id, encodeEndpoint({ addr: hostAddr(v6 ? RP_V6 : RP_V4), port: ip ? 0 : RP_PORT, valid: true, updatedNs: 0n }));
  }
}

const REQ: Probe = {
  linkId: 0,
  reply: false,
  metric: 2,
  carrier: MP_CARRIER_UDP,
  probeSeq: 77,
  sentNs: 0x1122334455667788n,
  rateBps: 20_000_000n,
  owdUs: 5000,
  budgetBytes: 4096,
  adminDown: true,
  pmtuDown: 1400,
  pmtuUp: 1380,
};

interface ReqOpts {
  probe?: Partial<Probe>;
  /** whole message length (header + body + padding) */
  msgLen?: number;
  seq?: number;
  v6?: boolean;
  /** the RP receives (default); 'lp': the RP's request to the LP's link */
  to?: 'rp' | 'lp';
  carrier?: 'udp' | 'ip';
  key?: PacketKey | undefined;
  hdrFlags?: number;
  /** change the message after it is signed (a forgery) or before (non-zero padding) */
  mangle?: (msg: Buffer) => void;
  body?: Buffer;
  /** the header's key id when the message is not signed (key: undefined) */
  keyId?: number;
  /** the request's outer source (default: the LP's NATed address, or the RP) and UDP port */
  src?: string;
  sport?: number;
}

/** A probe request as a peer's userland sends it (signed with KEY, control seq). */
function request(o: ReqOpts = {}): Buffer {
  const p = { ...REQ, ...o.probe };
  const msg = o.body ? Buffer.concat([Buffer.alloc(MP_HDR_LEN), o.body]) : encodeProbe(p, 1234, o.msgLen);
  o.mangle?.(msg);
  const lp = o.to === 'lp';
  const v6 = o.v6 ?? false;
  const outer = lp ? ipSpec(o.src ?? (v6 ? RP_V6 : RP_V4), v6 ? LP_V6 : LP_V4) : ipSpec(o.src ?? (v6 ? '2001:db8:100::77' : NAT_V4), v6 ? RP_V6 : RP_V4);
  return mpPacket(
    {
      outer,
      carrier: o.carrier ?? 'udp',
      sport: o.sport ?? (lp ? RP_PORT : 41000),
      dport: lp ? linkPort(p.linkId) : RP_PORT,
      hdr: { type: MP_T_PROBE, linkId: p.linkId, seq: o.seq ?? 1, tsUs: 99, flags: o.hdrFlags ?? 0, keyId: o.keyId ?? 0 },
      inner: msg.subarray(MP_HDR_LEN),
      ...('key' in o ? (o.key ? { key: o.key } : {}) : { key: KEY }),
    },
    { src: MAC_A, dst: MAC_B },
  );
}

function run(input: Buffer): { verdict: number; out: Buffer; drops: Partial<Record<DropReason, number>> } {
  const before = maps().drops();
  const r = must(progTestRun(maps().handle, 'decap', input, { dataOutSize: 16384 }));
  return { verdict: r.retval | 0, out: r.dataOut, drops: dropDelta(before, maps().drops()) };
}

const peer = (id: number) => decodePeerProbe(maps().get('peerProbe', id));
const replay = (cls: number) => decodeReplay(maps().get('replay', replayIndex(KEY.id, cls)));

/** The mpctl message (header + body + padding) of an output frame, and where it starts. */
function messageOf(out: Buffer): { msg: Buffer; ip: ReturnType<typeof parseIp> } {
  const ip = parseIp(out);
  const off = ip.proto === 17 ? ip.l4 + 8 : ip.l4;
  return { msg: out.subarray(off, ip.off + ip.totalLen), ip };
}

/** Every property of a reply to a request `req` (as sent, outer frame) the data path built. */
function assertReply(req: Buffer, out: Buffer, want: { seq: number; len: number; probe?: Partial<Probe> }): Probe {
  const q = parseIp(req);
  const { msg, ip } = messageOf(out);
  assert.equal(out.length, 14 + want.len, 'frame length: the reply_len outer bytes');
  assert.equal(ip.totalLen, want.len, 'outer IP length');
  assert.deepEqual([ethDst(out), ethSrc(out)], [MAC_A, MAC_B], 'MAC addresses swapped');
  assert.deepEqual([ip.src, ip.dst, ip.version, ip.proto], [q.dst, q.src, q.version, q.proto], 'addresses swapped');
  assert.equal(ip.ttl, 64);
  if (ip.version === 4) {
    assert.ok(ip.df, 'DF: a size probe is never fragmented');
    assert.equal(ip.id, 0);
    assert.ok(ip.headerChecksumOk, 'IPv4 header checksum');
  }
  if (ip.proto === 17) {
    assert.deepEqual([out.readUInt16BE(ip.l4), out.readUInt16BE(ip.l4 + 2)], [req.readUInt16BE(q.l4 + 2), req.readUInt16BE(q.l4)], 'ports swapped');
    assert.equal(out.readUInt16BE(ip.l4 + 4), want.len - (ip.l4 - 14), 'UDP length');
    if (ip.version === 6) assert.ok(out.readUInt16BE(ip.l4 + 6) !== 0 && l4ChecksumOk(out, ip), 'UDP checksum over IPv6');
    else assert.equal(out.readUInt16BE(ip.l4 + 6), 0, 'no UDP checksum over IPv4 (as encap)');
  }
  const h = decodeHdr(msg);
  const reqHdr = decodeHdr(messageOf(req).msg);
  assert.deepEqual([h.version, h.type, h.flags, h.linkId, h.keyId, h.seq, h.linkSeq], [1, MP_T_PROBE, MP_HDR_F_DP, reqHdr.linkId, KEY.id, want.seq, 0], 'header');
  assert.deepEqual(h.tag, macOf(KEY.key, msg), 'the tag is the MAC of the reply under the send key');
  const p = decodeProbe(msg);
  assert.ok(p, 'a well-formed probe: padding zero');
  const r = decodeProbe(messageOf(req).msg.subarray(0, PROBE_LEN))!; // its padding may be anything
  assert.deepEqual(
    { reply: p.reply, carrier: p.carrier, probeSeq: p.probeSeq, sentNs: p.sentNs, replyLen: p.replyLen, reqLen: p.reqLen },
    { reply: true, carrier: r.carrier, probeSeq: r.probeSeq, sentNs: r.sentNs, replyLen: r.replyLen, reqLen: q.totalLen },
    'echoed fields and req_len',
  );
  assert.equal(msg.readUInt8(MP_HDR_LEN + 3), (r.pmtuProbe ? MP_PROBE_F_PMTU : 0) | (r.train ? MP_PROBE_F_TRAIN : 0), 'only the PMTU and TRAIN flags are echoed in a reply');
  assert.deepEqual(
    [p.metric, r.train ? 0n : p.rateBps, p.owdUs, p.budgetBytes, p.adminDown, p.pmtuProbe === Boolean(r.pmtuProbe), p.pmtuDown, p.pmtuUp, msg.readUInt32BE(MP_HDR_LEN + 28)],
    [0, 0n, 0, null, false, true, 0, 0, 0],
    'request-only fields are zero (a train reply\'s rate_bps: the data count, asserted by its test)',
  );
  return p;
}

describe('the data path answers probe requests (bpf/probe.h)', () => {
  it('RP, IPv4: the reply goes back where the request came from, signed (MP_HDR_F_DP, data seq); the request is recorded and teaches the endpoint', () => {
    reset();
    const req = request();
    const r = run(req);
    assert.deepEqual([r.verdict, r.drops], [TC_ACT_REDIRECT, {}]);
    assertReply(req, r.out, { seq: 1, len: 20 + 8 + PROBE_LEN });
    const pp = peer(0);
    assert.deepEqual(pp.msg, messageOf(req).msg.subarray(0, PROBE_LEN), 'header and body as they arrived');
    assert.deepEqual([pp.requests, pp.answered, pp.from, pp.port, pp.reqLen], [1n, 1n, hostAddr(NAT_V4), 41000, 20 + 8 + PROBE_LEN]);
    assert.ok(pp.rxNs > 0n && pp.rxNs <= process.hrtime.bigint(), 'rx_ns on the monotonic clock');
    const d = decodeProbe(pp.msg)!;
    assert.deepEqual([d.rateBps, d.owdUs, d.budgetBytes, d.adminDown, d.pmtuDown, d.pmtuUp, d.metric], [20_000_000n, 5000, 4096, true, 1400, 1380, 2], 'the LP’s fields for userland');
    const ep = decodeEndpoint(maps().get('endpoints', 0));
    assert.deepEqual([ep.addr, ep.port, ep.valid], [hostAddr(NAT_V4), 41000, true], 'endpoint learned');
    assert.equal(decodeSched(maps().get('sched', 0)).seq, 1, 'seq taken from mp_sched');
    assert.equal(replay(MP_REPLAY_CONTROL).top, 1, 'the request moved the control window');
    assert.equal(replay(MP_REPLAY_DATA).any, false, 'not the data window');
  });

  it('RP, IPv6: UDP checksum over the reply, padding included', () => {
    reset();
    const req = request({ v6: true, probe: { replyLen: 1300 } });
    const r = run(req);
    assert.equal(r.verdict, TC_ACT_REDIRECT);
    assertReply(req, r.out, { seq: 1, len: 1300 });
  });

  it('the data sequence space: replies take the next seq after encap’s, one each', () => {
    reset();
    const s = Buffer.alloc(maps().valueLen('sched'));
    s.writeUInt32LE(41, 4); // seq (after the lock)
    maps().put('sched', 0, s);
    assertReply(request({ seq: 1 }), run(request({ seq: 1 })).out, { seq: 42, len: 92 });
    assertReply(request({ seq: 2 }), run(request({ seq: 2 })).out, { seq: 43, len: 92 });
    assert.equal(peer(0).answered, 2n);
  });

  const padding: [string, ReqOpts, number][] = [
    ['reply_len 1400 pads a 64-byte request’s reply to 1400 outer bytes', { probe: { replyLen: 1400, pmtuProbe: true } }, 1400],
    ['reply_len 9000 (jumbo)', { probe: { replyLen: 9000 } }, 9000],
    ['a padded request (1400) without reply_len: the reply is unpadded', { msgLen: 1400 - 28 }, 92],
    ['a padded request (1400), reply_len 600: cut to 600', { msgLen: 1400 - 28, probe: { replyLen: 600 } }, 600],
    ['reply_len shorter than an unpadded reply: unpadded', { probe: { replyLen: 50 } }, 92],
    ['reply_len = the largest a tag covers', { probe: { replyLen: 28 + MP_HDR_LEN + 9216 } }, 28 + MP_HDR_LEN + 9216],
  ];
  for (const [name, o, len] of padding)
    it(name, () => {
      reset();
      const req = request(o);
      const r = run(req);
      assert.deepEqual([r.verdict, r.drops], [TC_ACT_REDIRECT, {}]);
      assertReply(req, r.out, { seq: 1, len });
    });

  it('non-zero bytes after the probe in a (signed) request never reach the reply: its padding is zero', () => {
    reset();
    const req = request({ msgLen: 600, probe: { replyLen: 1000 }, mangle: (m) => m.fill(0xee, PROBE_LEN) });
    const r = run(req);
    assert.equal(r.verdict, TC_ACT_REDIRECT);
    assertReply(req, r.out, { seq: 1, len: 1000 });
  });

  it('LP: the RP’s request on a link is answered out of that link’s device (IPv4, IPv6, ip carrier)', () => {
    reset(MP_ROLE_LOCAL);
    const cases: ReqOpts[] = [
      { to: 'lp', seq: 1 },
      { to: 'lp', v6: true, probe: { linkId: 1 }, seq: 2 },
      { to: 'lp', carrier: 'ip', probe: { linkId: 2, carrier: MP_CARRIER_IP, replyLen: 200 }, seq: 3 },
    ];
    cases.forEach((o, i) => {
      const req = request(o);
      const r = run(req);
      assert.deepEqual([r.verdict, r.drops], [TC_ACT_REDIRECT, {}], `case ${i}`);
      assertReply(req, r.out, { seq: i + 1, len: i === 2 ? 200 : (o.v6 ? 48 : 28) + PROBE_LEN });
      assert.equal(peer(i).requests, 1n);
    });
    assert.equal(decodeEndpoint(maps().get('endpoints', 0)).addr.addr, RP_V4, 'the LP learns no endpoint');
  });

  it('a reply (kind 1) goes up to the portal’s socket untouched, userland-signed (class 1) or data-path-signed (class 0)', () => {
    reset(MP_ROLE_LOCAL);
    const reply = request({ to: 'lp', probe: { reply: true }, seq: 5 });
    assert.deepEqual(run(reply), { verdict: TC_ACT_OK, out: reply, drops: {} });
    const dp = request({ to: 'lp', probe: { reply: true }, seq: 5, hdrFlags: MP_HDR_F_DP });
    assert.deepEqual(run(dp), { verdict: TC_ACT_OK, out: dp, drops: {} }, 'seq 5 again, in the data window');
    assert.deepEqual([replay(MP_REPLAY_CONTROL).top, replay(MP_REPLAY_DATA).top], [5, 5]);
    const data = mpPacket({ outer: ipSpec(RP_V4, LP_V4), sport: RP_PORT, dport: linkPort(0), hdr: { type: MP_T_DATA, linkId: 0, seq: 5 }, inner: ipPacket(ipSpec('192.0.2.1', '10.9.0.2'), udp({ sport: 1, dport: 2 })), key: KEY });
    assert.deepEqual(run(data).drops, { replay: 1 }, 'a data packet with the DP reply’s seq is a replay');
    assert.equal(peer(0).requests, 0n, 'replies are not recorded');
  });

  it('round trip: the reply the RP’s data path built is accepted by the LP’s (class 0), once', () => {
    reset();
    const reply = run(request({ src: LP_V4, sport: linkPort(0) })).out;
    reset(MP_ROLE_LOCAL);
    const r = run(reply);
    assert.deepEqual([r.verdict, r.drops], [TC_ACT_OK, {}]);
    assert.deepEqual(run(reply).drops, { replay: 1 });
  });

  const flipLast = (b: Buffer): Buffer => {
    b[b.length - 1] = (b[b.length - 1] ?? 0) ^ 1;
    return b;
  };
  // name, request, reason, authentic (it passed key, MAC and replay window first)
  const refused: [string, () => Buffer, DropReason, boolean][] = [
    ['forged: a flipped byte of the body', () => flipLast(request()), 'bad_mac', false],
    ['unsigned', () => request({ key: undefined }), 'no_key', false],
    ['a body of 39 bytes (shorter than struct mp_probe)', () => request({ body: encodeProbe(REQ, 0).subarray(MP_HDR_LEN, PROBE_LEN - 1) }), 'bad_probe', true],
    ['kind 2', () => request({ mangle: (m) => m.writeUInt8(2, MP_HDR_LEN) }), 'bad_probe', true],
    ['reply_len beyond what a tag covers', () => request({ probe: { replyLen: 28 + MP_HDR_LEN + 9216 + 1 } }), 'bad_probe', true],
    ['link id 16', () => request({ probe: { linkId: 16 } }), 'bad_link', true],
  ];
  for (const [name, input, reason, authentic] of refused)
    it(`${name}: dropped as ${reason}, neither recorded nor answered`, () => {
      reset();
      const r = run(input());
      assert.deepEqual([r.verdict, r.drops], [TC_ACT_SHOT, { [reason]: 1 }]);
      for (let i = 0; i < 16; i++) assert.equal(peer(i).requests, 0n);
      assert.equal(replay(MP_REPLAY_CONTROL).any, authentic, authentic ? 'authentic: its seq is spent' : 'the window is untouched');
      assert.equal(decodeEndpoint(maps().get('endpoints', 0)).valid, false, 'no endpoint learned');
    });

  it('a replayed request is dropped as replay and answered once', () => {
    reset();
    const req = request({ seq: 9 });
    assert.equal(run(req).verdict, TC_ACT_REDIRECT);
    assert.deepEqual(run(req), { verdict: TC_ACT_SHOT, out: req, drops: { replay: 1 } });
    assert.deepEqual([peer(0).requests, peer(0).answered], [1n, 1n]);
  });

  it('LP: a request for a link not configured (id 5) is bad_link; to no link’s port it is not ours', () => {
    reset(MP_ROLE_LOCAL);
    const unknown = request({ to: 'lp', probe: { linkId: 5 } });
    unknown.writeUInt16BE(linkPort(0), 14 + 20 + 2); // arrives on link 0's port
    assert.deepEqual(run(unknown).drops, { bad_link: 1 });
    const stray = request({ to: 'lp', seq: 2 });
    stray.writeUInt16BE(linkPort(9), 14 + 20 + 2);
    assert.equal(run(stray).verdict, TC_ACT_UNSPEC);
  });

  it('without a send key the request is recorded but not answered (no_key): nothing unsigned leaves', () => {
    reset();
    maps().put('txKey', 0, encodeKey(NO_KEY));
    const r = run(request());
    assert.deepEqual([r.verdict, r.drops], [TC_ACT_SHOT, { no_key: 1 }]);
    assert.deepEqual([peer(0).requests, peer(0).answered], [1n, 0n]);
  });

  it('MP_CFG_NO_AUTH: an unsigned request is answered unsigned (key id 0, zero tag)', () => {
    reset(MP_ROLE_REMOTE, MP_CFG_NO_AUTH);
    const r = run(request({ key: undefined }));
    assert.equal(r.verdict, TC_ACT_REDIRECT);
    const h = decodeHdr(messageOf(r.out).msg);
    assert.deepEqual([h.keyId, h.tag, h.flags], [0, Buffer.alloc(8), MP_HDR_F_DP]);
    assert.equal(decodeProbe(messageOf(r.out).msg)?.reply, true);
  });

  it('request flags (budget, admin-down, PMTU) are recorded, and only PMTU is echoed (a size probe\'s answer says so)', () => {
    reset();
    const r = run(request({ probe: { pmtuProbe: true } }));
    assert.equal(r.verdict, TC_ACT_REDIRECT);
    assert.equal(peer(0).msg.readUInt8(MP_HDR_LEN + 3), MP_PROBE_F_BUDGET | MP_PROBE_F_ADMIN_DOWN | MP_PROBE_F_PMTU);
    assert.equal(messageOf(r.out).msg.readUInt8(MP_HDR_LEN + 3), MP_PROBE_F_PMTU);
  });

  it('a capacity train\'s request: TRAIN and UNRATED recorded, TRAIN echoed, the reply stamped with when it arrived (mp_hdr.ts_us, the data path\'s clock)', () => {
    reset();
    const before = Number((process.hrtime.bigint() / 1000n) & 0xffff_ffffn);
    const req = request({ probe: { train: true, unrated: true, probeSeq: 0x8000_0105 }, msgLen: 1200 });
    const r = run(req);
    const after = Number((process.hrtime.bigint() / 1000n) & 0xffff_ffffn);
    assert.equal(r.verdict, TC_ACT_REDIRECT);
    assert.equal(peer(0).msg.readUInt8(MP_HDR_LEN + 3), MP_PROBE_F_BUDGET | MP_PROBE_F_ADMIN_DOWN | MP_PROBE_F_TRAIN | MP_PROBE_F_UNRATED);
    const p = assertReply(req, r.out, { seq: 1, len: 20 + 8 + PROBE_LEN }); // padded request, unpadded reply
    assert.equal(messageOf(r.out).msg.readUInt8(MP_HDR_LEN + 3), MP_PROBE_F_TRAIN);
    assert.deepEqual([p.train, p.unrated, p.pmtuProbe, p.probeSeq], [true, false, false, 0x8000_0105]);
    const ts = decodeHdr(messageOf(r.out).msg).tsUs;
    assert.ok(((ts - before) | 0) >= 0 && ((after - ts) | 0) >= 0, `stamp ${ts} between ${before} and ${after}`);
    assert.equal(p.rxBytes, 0n, 'no data received on the link yet');
  });

  it('a train\'s reply carries the data bytes the link delivered so far (mp_rx.bytes, in rate_bps); a liveness reply does not', () => {
    reset();
    const rx = Buffer.alloc(MP_RX.size);
    rx.writeBigUInt64LE(0x1_2345_6789n, offsetOf(MP_RX, 'bytes'));
    maps().put('rx', 2, rx);
    const train = run(request({ probe: { linkId: 2, train: true, probeSeq: 0x8000_0200 } }));
    assert.equal(train.verdict, TC_ACT_REDIRECT);
    const p = decodeProbe(messageOf(train.out).msg)!;
    assert.deepEqual([p.train, p.rxBytes, p.rateBps], [true, 0x1_2345_6789n, 0x1_2345_6789n]);
    const second = run(request({ probe: { linkId: 2 }, seq: 2 }));
    assert.equal(second.verdict, TC_ACT_REDIRECT);
    const live = decodeProbe(messageOf(second.out).msg)!;
    assert.deepEqual([live.train, live.rxBytes, live.rateBps], [false, undefined, 0n]);
  });

  it('mp_peer_probe reads as memory (BPF_F_MMAPABLE): what userland maps is what the data path wrote; other maps refuse', () => {
    reset();
    run(request({ probe: { linkId: 3 } }));
    const h = must(mapMmap(must(mapFd(maps().handle, 'mp_peer_probe'))));
    try {
      const all = Buffer.alloc(16 * MP_PEER_PROBE.size);
      must(mmapRead(h, 0, all));
      for (let i = 0; i < 16; i++) assert.deepEqual(all.subarray(i * 120, (i + 1) * 120), maps().get('peerProbe', i), `entry ${i}`);
      assert.equal(decodePeerProbe(all.subarray(3 * 120)).requests, 1n);
      assert.ok(mmapRead(h, 4096 - 8, Buffer.alloc(16)).isErr(), 'beyond the mapping');
    } finally {
      munmap(h);
    }
    assert.ok(mapMmap(must(mapFd(maps().handle, 'mp_links'))).isErr(), 'mp_links is not mmapable');
  });
});
