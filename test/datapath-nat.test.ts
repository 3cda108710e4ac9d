// Whole-LAN mode (bpf/nat.h) as packet tables through BPF_PROG_TEST_RUN: encap translates a LAN
// packet to the client address and a port of it, decap translates the replies back, and the
// NAT maps hold what it did. Same harness as test/datapath.test.ts (no namespace needed: the LP
// delivers with bpf_redirect_neigh, which a test run only records). Run as root:
//   node --import tsx --test test/datapath-nat.test.ts
//
//   LAN 192.168.1.0/24, fd00:1::/64  --encap-->  client 203.0.113.7 / 2001:db8:7::7  --> Internet
//   LAN host  <--decap--  replies to the client address

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bpfClose, mapLookup, mapUpdate, mapDelete, mapKeys, progTestRun, type ObjHandle } from '../src/native/libmpctl.js';
import {
  decodeNatKey,
  decodeNatVal,
  encodeConfig,
  encodeEndpoint,
  encodeKey,
  encodeLink,
  encodeNatKey,
  encodeNatVal,
  hostAddr,
  MAPS,
  MP_CARRIER_UDP,
  MP_CFG_BOND_LOCAL,
  MP_CFG_LAN_NAT,
  MP_HDR_LEN,
  MP_LINK_DOWN,
  MP_LINK_UP,
  MP_NAT_F_FORWARD,
  MP_NAT_ICMP_S,
  MP_NAT_S_CLOSING,
  MP_NAT_S_EST,
  MP_NAT_S_OPENING,
  MP_NAT_TCP_EST_S,
  MP_NAT_TCP_TRANS_S,
  MP_NAT_UDP_S,
  natNowS,
  NO_ADDR,
  type DropReason,
  type MpConfig,
  type MpNatKey,
  type MpNatVal,
} from '../src/datapath/abi.js';
import {
  eth,
  icmpEcho,
  icmpMsg,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  ipPacket,
  ipSpec,
  l4ChecksumOk,
  mpPacket,
  parseIp,
  raw,
  SYN,
  tcp,
  udp,
  type PacketKey,
} from './helpers/packet.js';
import { dropDelta, must, openObject, type ObjMaps } from './helpers/maps.js';
import { LP_CONFIG, RP_PORT } from './helpers/lp-config.js';
import { natCount, natDump, sweepNat } from '../src/run/nat.js';
import { serial } from './helpers/serial.js';

// the data path's scheduling reads the clock between packets: not beside another test file
// (helpers/serial.ts; beside one, datapath's 'equal links alternate' met a later clock in a CI run)
await serial();

const OBJ = join(new URL('..', import.meta.url).pathname, 'build/bpf/mpctl.o');
const TC_ACT_UNSPEC = -1;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

const CLIENT_V4 = '203.0.113.7';
const CLIENT_V6 = '2001:db8:7::7';
const HOST_A = '192.168.1.10';
const HOST_B = '192.168.1.11';
const HOST_A6 = 'fd00:1::10';
const HOST_B6 = 'fd00:1::11';
const NET_V4 = '192.0.2.10';
const NET_V6 = '2001:db8:2::10';
const LP_LOCAL_V4 = '198.51.100.1';
const RP_V4 = '198.51.100.2';
const LINK_PORT = 40000;
const KEY: PacketKey = { id: 1, key: Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex') };
/** outer IPv4 + UDP + mp_hdr in front of the inner packet (Ethernet kept) */
const OUTER_V4 = 20 + 8 + MP_HDR_LEN;

/** LP_CONFIG in whole-LAN mode: the client address is one address of each family */
const CONFIG: MpConfig = {
  ...LP_CONFIG,
  flags: MP_CFG_LAN_NAT,
  clientV4: hostAddr(CLIENT_V4),
  clientV6: hostAddr(CLIENT_V6),
  lan: [
    { family: 4, prefixLen: 24, addr: '192.168.1.0' },
    { family: 6, prefixLen: 64, addr: 'fd00:1::' },
  ],
  natPortLo: 1024,
  natPortHi: 65535,
};

let obj: ObjMaps | undefined;
let handle: ObjHandle | undefined;
const maps = (): ObjMaps => {
  assert.ok(obj, 'object loaded');
  return obj;
};

before(() => {
  assert.equal(process.getuid?.(), 0, 'this test needs root');
  obj = openObject(OBJ);
  handle = obj.handle;
});
after(() => {
  if (handle !== undefined) bpfClose(handle);
});

function setLink(id: number, state = MP_LINK_UP): void {
  maps().put(
    'links',
    id,
    encodeLink({
      ifindex: 100 + id,
      state,
      carrier: MP_CARRIER_UDP,
      metric: 0,
      mtu: 1500,
      owdUs: 10_000 * (id + 1),
      rateBps: 10_000_000n,
      local: hostAddr(LP_LOCAL_V4),
      nexthop: NO_ADDR,
      localPort: LINK_PORT + id,
    }),
  );
  maps().put('endpoints', id, encodeEndpoint({ addr: hostAddr(RP_V4), port: RP_PORT, valid: true, updatedNs: 0n }));
}

/** Every map empty, the config `c` over CONFIG, link 0 up, KEY both ways. */
function reset(c: Partial<MpConfig> = {}): void {
  maps().zero();
  maps().put('txKey', 0, encodeKey({ key: KEY.key, expiresNs: 1n << 62n, id: KEY.id, valid: true }));
  maps().put('rxKeys', KEY.id, encodeKey({ key: KEY.key, expiresNs: 1n << 62n, id: KEY.id, valid: true }));
  maps().put('config', 0, encodeConfig({ ...CONFIG, ...c }));
  setLink(0);
}

type NatMap = 'natOut' | 'natIn' | 'natFwd' | 'natFwdOut';
/** a value without its timing (state, last_s: the timeout tests look at those) */
const where = ({ addr, port, flags }: MpNatVal): MpNatVal => ({ addr, port, flags });
const entries = (m: NatMap): [MpNatKey, MpNatVal][] =>
  must(mapKeys(maps().fd(m), MAPS[m].keySize)).map((k) => {
    const key = decodeNatKey(k);
    const v = must(mapLookup(maps().fd(m), k, MAPS[m].value));
    assert.ok(v);
    return [key, where(decodeNatVal(v, key.family))];
  });
const lookupFull = (m: NatMap, k: MpNatKey): MpNatVal | null => {
  const v = must(mapLookup(maps().fd(m), encodeNatKey(k), MAPS[m].value));
  return v ? decodeNatVal(v, k.family) : null;
};
const lookup = (m: NatMap, k: MpNatKey): MpNatVal | null => {
  const v = lookupFull(m, k);
  return v ? where(v) : null;
};
/** a map entry as the data path would have written it now (last_s: this second) unless given */
const putNat = (m: NatMap, k: MpNatKey, v: MpNatVal) => must(mapUpdate(maps().fd(m), encodeNatKey(k), encodeNatVal({ lastS: natNowS(), ...v })));

interface Run {
  verdict: number;
  out: Buffer;
  drops: Partial<Record<DropReason, number>>;
}
function run(prog: 'encap' | 'decap', input: Buffer): Run {
  assert.ok(handle !== undefined);
  const before = maps().drops();
  const r = must(progTestRun(handle, prog, input, { dataOutSize: input.length + 2048 }));
  return { verdict: r.retval | 0, out: r.dataOut, drops: dropDelta(before, maps().drops()) };
}

/** encap of a LAN frame: redirected, nothing dropped; the inner packet as it left (Ethernet
 * header of its own, for parseIp), its checksums verified. */
function encapOut(frame: Buffer): { inner: Buffer; ip: ReturnType<typeof parseIp> } {
  const r = run('encap', frame);
  assert.deepEqual(r.drops, {}, 'no drop');
  assert.equal(r.verdict, TC_ACT_REDIRECT, 'sent');
  const inner = Buffer.concat([Buffer.alloc(14), r.out.subarray(14 + OUTER_V4)]);
  const ip = parseIp(inner);
  assert.equal(ip.totalLen, inner.length - 14, 'inner length');
  assert.ok(ip.headerChecksumOk, 'inner IPv4 header checksum');
  assert.ok(l4ChecksumOk(inner, ip), 'inner L4 checksum');
  return { inner, ip };
}

/** The RP's packet carrying `inner` to the LP on link 0. */
let seq = 100;
const wire = (inner: Buffer) =>
  mpPacket({ outer: ipSpec(RP_V4, LP_LOCAL_V4), sport: RP_PORT, dport: LINK_PORT, hdr: { linkId: 0, seq: ++seq, linkSeq: seq, tsUs: 1 }, inner, key: KEY });

/** decap of a reply: delivered, nothing dropped, checksums verified. */
function decapOut(inner: Buffer): { pkt: Buffer; ip: ReturnType<typeof parseIp> } {
  const r = run('decap', wire(inner));
  assert.deepEqual(r.drops, {}, 'no drop');
  assert.equal(r.verdict, TC_ACT_REDIRECT, 'delivered to lan');
  const ip = parseIp(r.out);
  assert.ok(ip.headerChecksumOk, 'IPv4 header checksum');
  assert.ok(l4ChecksumOk(r.out, ip), 'L4 checksum');
  assert.equal(r.out.length, 14 + inner.length, 'the inner packet, as long as it was');
  return { pkt: r.out, ip };
}

const tcpOut = (src: string, sport: number, dst = NET_V4, flags = SYN) =>
  eth(ipPacket(ipSpec(src, dst), tcp({ sport, dport: 443, flags, payload: Buffer.alloc(100, 1) })));
const tcpIn = (dport: number, src = NET_V4, dst = CLIENT_V4) =>
  ipPacket(ipSpec(src, dst), tcp({ sport: 443, dport, payload: Buffer.alloc(300, 2) }));
const echoReply = (id: number, src: string, dst: string) => {
  const v6 = src.includes(':');
  const body = Buffer.alloc(4 + 32, 5);
  body.writeUInt16BE(id, 0);
  body.writeUInt16BE(9, 2);
  return ipPacket(ipSpec(src, dst), icmpMsg(v6 ? 129 : 0, 0, body));
};
const sport = (b: Buffer, ip: ReturnType<typeof parseIp>) => b.readUInt16BE(ip.l4);
const dport = (b: Buffer, ip: ReturnType<typeof parseIp>) => b.readUInt16BE(ip.l4 + 2);

describe('whole-LAN mode, IPv4: encap translates LAN packets to the client address', () => {
  it('a TCP SYN keeps its port when free; the mapping and its reverse are in the maps', () => {
    reset();
    const { inner, ip } = encapOut(tcpOut(HOST_A, 40001));
    assert.equal(ip.src, CLIENT_V4);
    assert.equal(ip.dst, NET_V4);
    assert.equal(sport(inner, ip), 40001);
    assert.deepEqual(entries('natOut'), [[{ family: 4, proto: IPPROTO_TCP, port: 40001, addr: HOST_A }, { addr: CLIENT_V4, port: 40001, flags: 0 }]]);
    assert.deepEqual(entries('natIn'), [[{ family: 4, proto: IPPROTO_TCP, port: 40001, addr: CLIENT_V4 }, { addr: HOST_A, port: 40001, flags: 0 }]]);
  });

  it('a second host with the same port gets another port; each flow keeps its own on every packet', () => {
    reset();
    encapOut(tcpOut(HOST_A, 40001));
    const b = encapOut(tcpOut(HOST_B, 40001));
    const portB = sport(b.inner, b.ip);
    assert.notEqual(portB, 40001);
    assert.ok(portB >= 1024 && portB <= 65535);
    for (let i = 0; i < 3; i++) {
      const a = encapOut(tcpOut(HOST_A, 40001, NET_V4, 0x10));
      assert.equal(sport(a.inner, a.ip), 40001);
      const b2 = encapOut(tcpOut(HOST_B, 40001, '192.0.2.99', 0x10)); // any destination: endpoint-independent
      assert.equal(sport(b2.inner, b2.ip), portB);
    }
    assert.equal(entries('natOut').length, 2);
    assert.equal(entries('natIn').length, 2);
  });

  it('a flow keeps its port when it moves to another link (link 0 down, link 1 up)', () => {
    reset();
    setLink(1);
    encapOut(tcpOut(HOST_A, 40001));
    const first = encapOut(tcpOut(HOST_B, 40001));
    setLink(0, MP_LINK_DOWN);
    const r = run('encap', tcpOut(HOST_B, 40001, NET_V4, 0x10));
    assert.equal(r.verdict, TC_ACT_REDIRECT);
    const udpHdr = parseIp(r.out).l4;
    assert.equal(r.out.readUInt16BE(udpHdr), LINK_PORT + 1, 'sent on link 1');
    const inner = Buffer.concat([Buffer.alloc(14), r.out.subarray(14 + OUTER_V4)]);
    assert.equal(sport(inner, parseIp(inner)), sport(first.inner, first.ip), 'same client port');
  });

  it('UDP: a checksum 0 stays 0; a checksum is updated', () => {
    reset();
    const none = encapOut(eth(ipPacket(ipSpec(HOST_A, NET_V4), udp({ sport: 5353, dport: 53, payload: Buffer.alloc(40, 3), noChecksum: true }))));
    assert.equal(none.inner.readUInt16BE(none.ip.l4 + 6), 0, 'still no checksum');
    assert.equal(none.ip.src, CLIENT_V4);
    const sum = encapOut(eth(ipPacket(ipSpec(HOST_B, NET_V4), udp({ sport: 5353, dport: 53, payload: Buffer.alloc(41, 3) }))));
    assert.notEqual(sum.inner.readUInt16BE(sum.ip.l4 + 6), 0);
    assert.notEqual(sport(sum.inner, sum.ip), 5353, 'host B: another port than host A');
  });

  it('ICMP echo: the id is the port', () => {
    reset();
    const a = encapOut(eth(ipPacket(ipSpec(HOST_A, NET_V4), icmpEcho(Buffer.alloc(56, 1), 7, 1))));
    assert.equal(a.ip.src, CLIENT_V4);
    assert.equal(a.inner.readUInt16BE(a.ip.l4 + 4), 7);
    const b = encapOut(eth(ipPacket(ipSpec(HOST_B, NET_V4), icmpEcho(Buffer.alloc(56, 1), 7, 1))));
    assert.notEqual(b.inner.readUInt16BE(b.ip.l4 + 4), 7);
    assert.deepEqual(lookup('natOut', { family: 4, proto: IPPROTO_ICMP, port: 7, addr: HOST_A }), { addr: CLIENT_V4, port: 7, flags: 0 });
  });

  it('a LAN port outside lan_nat_ports, and the tunnel port, are not handed out', () => {
    reset({ natPortLo: 20000, natPortHi: 20255 });
    const a = encapOut(tcpOut(HOST_A, 40001));
    assert.ok(sport(a.inner, a.ip) >= 20000 && sport(a.inner, a.ip) <= 20255);
    reset({ natPortLo: 5500, natPortHi: 5755 });
    for (let i = 0; i < 20; i++) {
      const t = encapOut(tcpOut(HOST_A, i === 0 ? RP_PORT : 30000 + i));
      assert.notEqual(sport(t.inner, t.ip), RP_PORT, 'never the tunnel port');
    }
  });

  it('no free port: dropped as nat_ports; an evicted reverse entry is restored; a port taken since gives a new one', () => {
    reset({ natPortLo: 20000, natPortHi: 20255 });
    for (let p = 20000; p <= 20255; p++) putNat('natIn', { family: 4, proto: IPPROTO_TCP, port: p, addr: CLIENT_V4 }, { addr: '192.168.1.99', port: p, flags: 0 });
    const full = run('encap', tcpOut(HOST_A, 40001));
    assert.equal(full.verdict, TC_ACT_SHOT);
    assert.deepEqual(full.drops, { nat_ports: 1 });

    reset();
    encapOut(tcpOut(HOST_A, 40001));
    const rk = encodeNatKey({ family: 4, proto: IPPROTO_TCP, port: 40001, addr: CLIENT_V4 });
    assert.equal(must(mapDelete(maps().fd('natIn'), rk)), true);
    const again = encapOut(tcpOut(HOST_A, 40001, NET_V4, 0x10));
    assert.equal(sport(again.inner, again.ip), 40001);
    assert.deepEqual(lookup('natIn', { family: 4, proto: IPPROTO_TCP, port: 40001, addr: CLIENT_V4 }), { addr: HOST_A, port: 40001, flags: 0 }, 'restored');

    putNat('natIn', { family: 4, proto: IPPROTO_TCP, port: 40001, addr: CLIENT_V4 }, { addr: HOST_B, port: 1, flags: 0 });
    const moved = encapOut(tcpOut(HOST_A, 40001, NET_V4, 0x10));
    assert.notEqual(sport(moved.inner, moved.ip), 40001, 'the port is host B\'s now');
  });

  it('IPv4 fragments: the first is translated with its ports, later ones get the address only', () => {
    reset();
    const first = encapOut(eth(ipPacket(ipSpec(HOST_A, NET_V4, { df: false, mf: true }), udp({ sport: 6000, dport: 53, payload: Buffer.alloc(64, 8) }))));
    assert.equal(first.ip.src, CLIENT_V4);
    const later = run('encap', eth(ipPacket(ipSpec(HOST_A, NET_V4, { df: false, fragOffset: 9 }), raw(IPPROTO_UDP, Buffer.alloc(48, 9)))));
    assert.equal(later.verdict, TC_ACT_REDIRECT);
    const inner = Buffer.concat([Buffer.alloc(14), later.out.subarray(14 + OUTER_V4)]);
    const ip = parseIp(inner);
    assert.equal(ip.src, CLIENT_V4);
    assert.ok(ip.headerChecksumOk);
    assert.deepEqual(inner.subarray(ip.l4), Buffer.alloc(48, 9), 'payload untouched');
  });

  it('LAN to LAN passes untouched; other protocols and ICMP errors from the LAN are dropped as nat_proto', () => {
    reset();
    const local = tcpOut(HOST_A, 40001, HOST_B);
    const l = run('encap', local);
    assert.equal(l.verdict, TC_ACT_UNSPEC);
    assert.deepEqual(l.out, local);
    const gre = run('encap', eth(ipPacket(ipSpec(HOST_A, NET_V4), raw(47, Buffer.alloc(40)))));
    assert.equal(gre.verdict, TC_ACT_SHOT);
    assert.deepEqual(gre.drops, { nat_proto: 1 });
    const unreach = run('encap', eth(ipPacket(ipSpec(HOST_A, NET_V4), icmpMsg(3, 3, Buffer.alloc(32)))));
    assert.deepEqual([unreach.verdict, unreach.drops], [TC_ACT_SHOT, { nat_proto: 1 }]);
    assert.equal(entries('natOut').length, 0);
  });

  it('without MP_CFG_LAN_NAT a LAN packet is not the tunnel\'s', () => {
    reset({ flags: 0 });
    const f = tcpOut(HOST_A, 40001);
    const r = run('encap', f);
    assert.equal(r.verdict, TC_ACT_UNSPEC);
    assert.deepEqual(r.out, f);
  });
});

describe('whole-LAN mode, IPv4: decap translates replies back to the LAN host', () => {
  it('TCP replies reach each host at its own port', () => {
    reset();
    encapOut(tcpOut(HOST_A, 40001));
    const b = encapOut(tcpOut(HOST_B, 40001));
    const portB = sport(b.inner, b.ip);
    const ra = decapOut(tcpIn(40001));
    assert.deepEqual([ra.ip.src, ra.ip.dst, dport(ra.pkt, ra.ip)], [NET_V4, HOST_A, 40001]);
    const rb = decapOut(tcpIn(portB));
    assert.deepEqual([rb.ip.dst, dport(rb.pkt, rb.ip)], [HOST_B, 40001]);
  });

  it('UDP without checksum, ICMP echo replies', () => {
    reset();
    const u = encapOut(eth(ipPacket(ipSpec(HOST_B, NET_V4), udp({ sport: 5353, dport: 53, noChecksum: true }))));
    const r = decapOut(ipPacket(ipSpec(NET_V4, CLIENT_V4), udp({ sport: 53, dport: sport(u.inner, u.ip), payload: Buffer.alloc(30, 1), noChecksum: true })));
    assert.deepEqual([r.ip.dst, dport(r.pkt, r.ip), r.pkt.readUInt16BE(r.ip.l4 + 6)], [HOST_B, 5353, 0]);
    encapOut(eth(ipPacket(ipSpec(HOST_A, NET_V4), icmpEcho(Buffer.alloc(32, 5), 7, 9))));
    const e = decapOut(echoReply(7, NET_V4, CLIENT_V4));
    assert.deepEqual([e.ip.dst, e.pkt.readUInt16BE(e.ip.l4 + 4)], [HOST_A, 7]);
  });

  it('no mapping: nat_miss (unsolicited TCP, an echo request, another protocol); later fragments: nat_frag', () => {
    reset();
    for (const inner of [tcpIn(40001), ipPacket(ipSpec(NET_V4, CLIENT_V4), icmpEcho()), ipPacket(ipSpec(NET_V4, CLIENT_V4), raw(47, Buffer.alloc(20)))]) {
      const r = run('decap', wire(inner));
      assert.deepEqual([r.verdict, r.drops], [TC_ACT_SHOT, { nat_miss: 1 }]);
    }
    const frag = run('decap', wire(ipPacket(ipSpec(NET_V4, CLIENT_V4, { df: false, fragOffset: 4 }), raw(IPPROTO_UDP, Buffer.alloc(40)))));
    assert.deepEqual([frag.verdict, frag.drops], [TC_ACT_SHOT, { nat_frag: 1 }]);
  });

  it('a port forward (mp_nat_fwd / mp_nat_fwd_out) goes both ways and is never handed to a flow', () => {
    reset({ natPortLo: 443, natPortHi: 698 });
    putNat('natFwd', { family: 4, proto: IPPROTO_TCP, port: 443, addr: CLIENT_V4 }, { addr: HOST_B, port: 8443, flags: MP_NAT_F_FORWARD });
    putNat('natFwdOut', { family: 4, proto: IPPROTO_TCP, port: 8443, addr: HOST_B }, { addr: CLIENT_V4, port: 443, flags: MP_NAT_F_FORWARD });
    const inb = decapOut(ipPacket(ipSpec(NET_V4, CLIENT_V4), tcp({ sport: 50000, dport: 443, flags: SYN })));
    assert.deepEqual([inb.ip.dst, dport(inb.pkt, inb.ip)], [HOST_B, 8443]);
    const back = encapOut(eth(ipPacket(ipSpec(HOST_B, NET_V4), tcp({ sport: 8443, dport: 50000, flags: SYN | 0x10 }))));
    assert.deepEqual([back.ip.src, sport(back.inner, back.ip)], [CLIENT_V4, 443]);
    const flow = encapOut(tcpOut(HOST_A, 443));
    assert.notEqual(sport(flow.inner, flow.ip), 443, 'the forward keeps its port');
    assert.equal(entries('natOut').length, 1, 'the forward made no dynamic mapping');
  });
});

describe('whole-LAN mode: ICMP errors about a LAN flow reach its host, the quote translated back', () => {
  const quoteOf = (inner: Buffer, ip: ReturnType<typeof parseIp>) => inner.subarray(14, ip.l4 + 8); // IP header + 8 bytes, as it left
  const mtuWord = (mtu: number) => Buffer.from([0, 0, mtu >> 8, mtu & 0xff]);

  it('IPv4 fragmentation needed about a TCP flow of host B, time exceeded about host A\'s ping', () => {
    reset();
    encapOut(tcpOut(HOST_A, 40001));
    const b = encapOut(tcpOut(HOST_B, 40001));
    const portB = sport(b.inner, b.ip);
    const err = ipPacket(ipSpec('192.0.2.1', CLIENT_V4), icmpMsg(3, 4, Buffer.concat([mtuWord(1400), quoteOf(b.inner, b.ip)])));
    const r = decapOut(err); // checks the ICMP checksum over the translated quote
    assert.equal(r.ip.dst, HOST_B);
    const q = parseIp(r.pkt, r.ip.l4 + 8);
    assert.deepEqual([q.src, q.dst, r.pkt.readUInt16BE(q.l4), q.headerChecksumOk], [HOST_B, NET_V4, 40001, true], 'the quote as host B sent it');
    assert.notEqual(portB, 40001);
    const e = encapOut(eth(ipPacket(ipSpec(HOST_A, NET_V4, { ttl: 1 }), icmpEcho(Buffer.alloc(16, 1), 4242, 1))));
    const te = decapOut(ipPacket(ipSpec(RP_V4, CLIENT_V4), icmpMsg(11, 0, Buffer.concat([Buffer.alloc(4), quoteOf(e.inner, e.ip)]))));
    const tq = parseIp(te.pkt, te.ip.l4 + 8);
    assert.deepEqual([te.ip.dst, tq.src, te.pkt.readUInt16BE(tq.l4 + 4)], [HOST_A, HOST_A, 4242]);
  });

  it('IPv6 packet too big about a UDP flow; no mapping, or a quote from another address: nat_miss', () => {
    reset();
    encapOut(eth(ipPacket(ipSpec(HOST_A6, NET_V6), udp({ sport: 7000, dport: 53, payload: Buffer.alloc(20) }))));
    const u = encapOut(eth(ipPacket(ipSpec(HOST_B6, NET_V6), udp({ sport: 7000, dport: 53, payload: Buffer.alloc(20) }))));
    const ptb = ipPacket(ipSpec('2001:db8:2::1', CLIENT_V6), icmpMsg(2, 0, Buffer.concat([Buffer.from([0, 0, 0x05, 0x00]), quoteOf(u.inner, u.ip)])));
    const r = decapOut(ptb);
    const q = parseIp(r.pkt, r.ip.l4 + 8);
    assert.deepEqual([r.ip.dst, q.src, r.pkt.readUInt16BE(q.l4)], [HOST_B6, HOST_B6, 7000]);
    const unknown = Buffer.from(quoteOf(u.inner, u.ip));
    unknown.writeUInt16BE(1, 40); // a port nobody has
    const miss = run('decap', wire(ipPacket(ipSpec('2001:db8:2::1', CLIENT_V6), icmpMsg(2, 0, Buffer.concat([Buffer.from([0, 0, 0x05, 0x00]), unknown])))));
    assert.deepEqual([miss.verdict, miss.drops], [TC_ACT_SHOT, { nat_miss: 1 }]);
    const other = ipPacket(ipSpec(NET_V4, CLIENT_V4), tcp({ sport: 40001, dport: 443 })).subarray(0, 28); // not from the client address
    const o = run('decap', wire(ipPacket(ipSpec('192.0.2.1', CLIENT_V4), icmpMsg(3, 4, Buffer.concat([mtuWord(1400), other])))));
    assert.deepEqual([o.verdict, o.drops], [TC_ACT_SHOT, { nat_miss: 1 }]);
  });
});

describe('whole-LAN mode: ICMP errors from a LAN host about what it received leave as the client address', () => {
  const quoteOf = (pkt: Buffer, ip: ReturnType<typeof parseIp>) => pkt.subarray(14, ip.l4 + 8);

  it('port unreachable for a forwarded UDP port (IPv4), and for a flow\'s reply (IPv6)', () => {
    reset();
    putNat('natFwd', { family: 4, proto: IPPROTO_UDP, port: 51820, addr: CLIENT_V4 }, { addr: HOST_B, port: 5000, flags: MP_NAT_F_FORWARD });
    putNat('natFwdOut', { family: 4, proto: IPPROTO_UDP, port: 5000, addr: HOST_B }, { addr: CLIENT_V4, port: 51820, flags: MP_NAT_F_FORWARD });
    const got = decapOut(ipPacket(ipSpec(NET_V4, CLIENT_V4), udp({ sport: 50000, dport: 51820, payload: Buffer.alloc(20) })));
    const unreach = encapOut(eth(ipPacket(ipSpec(HOST_B, NET_V4), icmpMsg(3, 3, Buffer.concat([Buffer.alloc(4), quoteOf(got.pkt, got.ip)])))));
    assert.equal(unreach.ip.src, CLIENT_V4);
    const q = parseIp(unreach.inner, unreach.ip.l4 + 8);
    assert.deepEqual([q.src, q.dst, unreach.inner.readUInt16BE(q.l4 + 2), q.headerChecksumOk], [NET_V4, CLIENT_V4, 51820, true], 'the quote as the Internet host sent it');

    encapOut(eth(ipPacket(ipSpec(HOST_A6, NET_V6), udp({ sport: 7000, dport: 53 }))));
    const b = encapOut(eth(ipPacket(ipSpec(HOST_B6, NET_V6), udp({ sport: 7000, dport: 53 }))));
    const portB = sport(b.inner, b.ip);
    const reply = decapOut(ipPacket(ipSpec(NET_V6, CLIENT_V6), udp({ sport: 53, dport: portB, payload: Buffer.alloc(10) })));
    const u6 = encapOut(eth(ipPacket(ipSpec(HOST_B6, NET_V6), icmpMsg(1, 4, Buffer.concat([Buffer.alloc(4), quoteOf(reply.pkt, reply.ip)])))));
    const q6 = parseIp(u6.inner, u6.ip.l4 + 8);
    assert.deepEqual([u6.ip.src, q6.dst, u6.inner.readUInt16BE(q6.l4 + 2)], [CLIENT_V6, CLIENT_V6, portB]);
    // about a port the NAT knows nothing of: not sent
    const stray = run('encap', eth(ipPacket(ipSpec(HOST_A, NET_V4), icmpMsg(3, 3, Buffer.concat([Buffer.alloc(4), quoteOf(got.pkt, got.ip)])))));
    assert.deepEqual([stray.verdict, stray.drops], [TC_ACT_SHOT, { nat_proto: 1 }], 'host A did not receive that packet');
  });
});

describe('mapping timeouts: an idle mapping\'s port is free again (times injected as last_s)', () => {
  const HOST_C = '192.168.1.12';
  const tcpKey = (port: number) => ({ family: 4 as const, proto: IPPROTO_TCP, port, addr: CLIENT_V4 });
  const rev = (proto: number, port: number) => lookupFull('natIn', { family: 4, proto, port, addr: CLIENT_V4 });
  /** make the reverse entry of client port `port` idle for `idle` seconds (in state `state`) */
  const age = (proto: number, port: number, idle: number, state?: number) => {
    const v = rev(proto, port);
    assert.ok(v, `a mapping of port ${port}`);
    putNat('natIn', { family: 4, proto, port, addr: CLIENT_V4 }, { ...v, lastS: (natNowS() - idle) >>> 0, ...(state === undefined ? {} : { state }) });
  };
  const udpOut = (src: string, sp: number) => eth(ipPacket(ipSpec(src, NET_V4), udp({ sport: sp, dport: 53, payload: Buffer.alloc(20, 1) })));
  const udpIn = (dp: number) => ipPacket(ipSpec(NET_V4, CLIENT_V4), udp({ sport: 53, dport: dp, payload: Buffer.alloc(30, 2) }));
  const FIN_ACK = 0x11;
  const RST = 0x04;

  it('the reverse entry holds the second of the last packet and the TCP state: SYN opening, then established, FIN or RST closing, a new SYN opening', () => {
    reset();
    const t0 = natNowS();
    encapOut(tcpOut(HOST_A, 40001));
    const v = rev(IPPROTO_TCP, 40001);
    assert.ok(v && v.lastS! >= t0 && v.lastS! <= natNowS(), `last_s ${v?.lastS} is now (${t0})`);
    assert.equal(v.state, MP_NAT_S_OPENING, 'a SYN: opening');
    encapOut(tcpOut(HOST_A, 40001, NET_V4, 0x10));
    assert.equal(rev(IPPROTO_TCP, 40001)?.state, MP_NAT_S_EST, 'an ACK: established');
    encapOut(tcpOut(HOST_A, 40001, NET_V4, FIN_ACK));
    assert.equal(rev(IPPROTO_TCP, 40001)?.state, MP_NAT_S_CLOSING, 'a FIN: closing');
    encapOut(tcpOut(HOST_A, 40001, NET_V4, 0x10));
    assert.equal(rev(IPPROTO_TCP, 40001)?.state, MP_NAT_S_CLOSING, 'the last ACK does not reopen it');
    encapOut(tcpOut(HOST_A, 40001, NET_V4, SYN));
    assert.equal(rev(IPPROTO_TCP, 40001)?.state, MP_NAT_S_OPENING, 'a new connection on the port');
    decapOut(tcpIn(40001));
    assert.equal(rev(IPPROTO_TCP, 40001)?.state, MP_NAT_S_EST, 'a reply (ACK) from the Internet: established');
    age(IPPROTO_TCP, 40001, 30);
    decapOut(ipPacket(ipSpec(NET_V4, CLIENT_V4), tcp({ sport: 443, dport: 40001, flags: RST })));
    const r = rev(IPPROTO_TCP, 40001);
    assert.equal(r?.state, MP_NAT_S_CLOSING, 'an RST from the Internet: closing');
    assert.ok(r!.lastS! >= natNowS() - 1, 'an inbound packet refreshes it too');
  });

  it('a port whose mapping is idle past its timeout goes to a new flow; just under it, it does not (TCP established / closing, UDP, ICMP echo)', () => {
    for (const [what, proto, state, timeout, out] of [
      ['established TCP', IPPROTO_TCP, MP_NAT_S_EST, MP_NAT_TCP_EST_S, (h: string) => tcpOut(h, 40001)],
      ['closing TCP', IPPROTO_TCP, MP_NAT_S_CLOSING, MP_NAT_TCP_TRANS_S, (h: string) => tcpOut(h, 40001)],
      ['opening TCP', IPPROTO_TCP, MP_NAT_S_OPENING, MP_NAT_TCP_TRANS_S, (h: string) => tcpOut(h, 40001)],
      ['UDP', IPPROTO_UDP, undefined, MP_NAT_UDP_S, (h: string) => udpOut(h, 40001)],
      ['ICMP echo', IPPROTO_ICMP, undefined, MP_NAT_ICMP_S, (h: string) => eth(ipPacket(ipSpec(h, NET_V4), icmpEcho(Buffer.alloc(16, 1), 40001, 1)))],
    ] as const) {
      reset();
      const portOf = (r: { inner: Buffer; ip: ReturnType<typeof parseIp> }) => (proto === IPPROTO_ICMP ? r.inner.readUInt16BE(r.ip.l4 + 4) : sport(r.inner, r.ip));
      assert.equal(portOf(encapOut(out(HOST_A))), 40001, `${what}: host A has the port`);
      age(proto, 40001, timeout - 5, state);
      assert.notEqual(portOf(encapOut(out(HOST_B))), 40001, `${what}: idle ${timeout - 5} s of ${timeout}: still host A's`);
      age(proto, 40001, timeout + 2, state);
      assert.equal(portOf(encapOut(out(HOST_C))), 40001, `${what}: idle ${timeout + 2} s of ${timeout}: host C takes it`);
      assert.equal(lookup('natIn', { family: 4, proto, port: 40001, addr: CLIENT_V4 })?.addr, HOST_C);
      assert.equal(lookup('natOut', { family: 4, proto, port: 40001, addr: HOST_A }), null, `${what}: host A's mapping is gone`);
    }
  });

  it('a flow whose mp_nat_out entry was evicted gets its own port back (its reverse entry names it)', () => {
    reset();
    encapOut(tcpOut(HOST_A, 40001));
    assert.equal(must(mapDelete(maps().fd('natOut'), encodeNatKey({ family: 4, proto: IPPROTO_TCP, port: 40001, addr: HOST_A }))), true);
    const again = encapOut(tcpOut(HOST_A, 40001, NET_V4, 0x10));
    assert.equal(sport(again.inner, again.ip), 40001, 'the same port, not a random one');
    assert.deepEqual(entries('natIn'), [[tcpKey(40001), { addr: HOST_A, port: 40001, flags: 0 }]], 'one reverse entry, no orphan');
  });

  it('a reply to an expired mapping is nat_miss; the flow\'s own next packet from the LAN revives it (nobody took the port)', () => {
    reset();
    encapOut(udpOut(HOST_A, 5000));
    age(IPPROTO_UDP, 5000, MP_NAT_UDP_S + 2);
    const r = run('decap', wire(udpIn(5000)));
    assert.equal(r.verdict, TC_ACT_SHOT);
    assert.deepEqual(r.drops, { nat_miss: 1 });
    const again = encapOut(udpOut(HOST_A, 5000));
    assert.equal(sport(again.inner, again.ip), 5000);
    assert.equal(decapOut(udpIn(5000)).ip.dst, HOST_A);
    // an ICMP error about a flow does not keep it alive
    age(IPPROTO_UDP, 5000, 100);
    const before = rev(IPPROTO_UDP, 5000)!.lastS!;
    decapOut(ipPacket(ipSpec('192.0.2.1', CLIENT_V4), icmpMsg(3, 3, Buffer.concat([Buffer.alloc(4), again.inner.subarray(14, again.ip.l4 + 8)]))));
    assert.equal(rev(IPPROTO_UDP, 5000)!.lastS, before, 'not refreshed by an ICMP error');
    // a port forward never expires
    reset();
    putNat('natFwd', tcpKey(8443), { addr: HOST_A, port: 443, flags: MP_NAT_F_FORWARD, lastS: 0 });
    assert.equal(decapOut(tcpIn(8443)).ip.dst, HOST_A);
  });

  it('the control plane\'s sweep deletes the expired mappings (both entries) and counts the live ones; a dump reads past its first buffer', () => {
    reset();
    encapOut(tcpOut(HOST_A, 40001));
    encapOut(udpOut(HOST_A, 5000));
    encapOut(udpOut(HOST_B, 5001));
    encapOut(eth(ipPacket(ipSpec(HOST_B, NET_V4), icmpEcho(Buffer.alloc(16, 1), 99, 1))));
    age(IPPROTO_UDP, 5000, MP_NAT_UDP_S + 2);
    age(IPPROTO_ICMP, 99, MP_NAT_ICMP_S + 2);
    const dump = must(natDump(maps().fd('natIn')));
    assert.deepEqual(natCount(dump, natNowS()), { mappings: 2, tcp: 1, udp: 1, icmp: 0, expired: 2 });
    const r = must(sweepNat(maps().fd('natIn'), maps().fd('natOut'), natNowS()));
    assert.deepEqual(r, { mappings: 2, tcp: 1, udp: 1, icmp: 0, expired: 0, deleted: 2 });
    assert.deepEqual(entries('natIn').map(([k]) => `${k.proto}/${k.port}`).sort(), ['17/5001', '6/40001']);
    assert.deepEqual(entries('natOut').map(([k, v]) => `${k.addr}:${k.port}->${v.port}`).sort(), ['192.168.1.10:40001->40001', '192.168.1.11:5001->5001']);
    // an expired mapping whose port went to another flow: the other flow's entries stay
    reset();
    encapOut(udpOut(HOST_A, 5000));
    age(IPPROTO_UDP, 5000, MP_NAT_UDP_S + 2);
    putNat('natOut', { family: 4, proto: IPPROTO_UDP, port: 5000, addr: HOST_A }, { addr: CLIENT_V4, port: 6000, flags: 0 });
    must(sweepNat(maps().fd('natIn'), maps().fd('natOut'), natNowS()));
    assert.equal(entries('natIn').length, 0);
    assert.equal(lookup('natOut', { family: 4, proto: IPPROTO_UDP, port: 5000, addr: HOST_A })?.port, 6000, 'names another port: left');
    // 3000 mappings: more than the first dump's room
    reset();
    const now = natNowS();
    for (let i = 0; i < 3000; i++) putNat('natIn', { family: 4, proto: IPPROTO_UDP, port: 10000 + i, addr: CLIENT_V4 }, { addr: HOST_A, port: 10000 + i, flags: 0, lastS: i % 3 === 0 ? (now - 1000) >>> 0 : now });
    const t0 = process.hrtime.bigint();
    const c = must(sweepNat(maps().fd('natIn'), maps().fd('natOut'), natNowS()));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.deepEqual(c, { mappings: 2000, tcp: 0, udp: 2000, icmp: 0, expired: 0, deleted: 1000 });
    const t1 = process.hrtime.bigint();
    must(natDump(maps().fd('natIn')));
    const dumpMs = Number(process.hrtime.bigint() - t1) / 1e6;
    process.stdout.write(`# sweep of 3000 mappings (1000 expired): ${ms.toFixed(1)} ms; a dump of 2000: ${dumpMs.toFixed(2)} ms\n`);
  });
});

describe('bond_local: the LP\'s own traffic through the NAT, its replies to its own stack', () => {
  const LP_LAN = '192.168.1.1';
  const LP_LAN6 = 'fd00:1::1';
  const BOND_DEV = 42;
  const BOND_MAC = Buffer.from('026d70000042', 'hex');
  const bondLocal = { flags: MP_CFG_LAN_NAT | MP_CFG_BOND_LOCAL, localIfindex: BOND_DEV, localMac: '02:6d:70:00:00:42', localV4: hostAddr(LP_LAN), localV6: hostAddr(LP_LAN6) };

  it('the LP\'s packet (from mpl…b) is translated as a LAN host\'s; the reply goes to the bond device, addressed to its MAC', () => {
    reset(bondLocal);
    const out = encapOut(tcpOut(LP_LAN, 45000));
    assert.equal(out.ip.src, CLIENT_V4);
    const r = decapOut(tcpIn(sport(out.inner, out.ip)));
    assert.equal(r.ip.dst, LP_LAN);
    assert.equal(dport(r.pkt, r.ip), 45000);
    assert.deepEqual(r.pkt.subarray(0, 6), BOND_MAC, 'the bond device\'s MAC: its stack takes the frame');
    // a LAN host's reply is not the LP's: to lan, the frame's destination left as it was
    const h = encapOut(tcpOut(HOST_A, 45001));
    const hr = decapOut(tcpIn(sport(h.inner, h.ip)));
    assert.equal(hr.ip.dst, HOST_A);
    assert.notDeepEqual(hr.pkt.subarray(0, 6), BOND_MAC);
  });

  it('IPv6, and an ICMP error about the LP\'s own flow, reach its stack too; without the flag the reply goes to lan', () => {
    reset(bondLocal);
    const e = encapOut(eth(ipPacket(ipSpec(LP_LAN, NET_V4, { ttl: 1 }), icmpEcho(Buffer.alloc(16, 1), 777, 1))));
    const te = decapOut(ipPacket(ipSpec(RP_V4, CLIENT_V4), icmpMsg(11, 0, Buffer.concat([Buffer.alloc(4), e.inner.subarray(14, e.ip.l4 + 8)]))));
    assert.equal(te.ip.dst, LP_LAN);
    assert.deepEqual(te.pkt.subarray(0, 6), BOND_MAC, 'time exceeded about the LP\'s ping');
    const r6 = run('encap', eth(ipPacket(ipSpec(LP_LAN6, NET_V6), udp({ sport: 5353, dport: 53, payload: Buffer.alloc(20, 1) }))));
    assert.equal(r6.verdict, TC_ACT_REDIRECT);
    const inner6 = Buffer.concat([Buffer.alloc(14), r6.out.subarray(14 + OUTER_V4)]);
    const ip6 = parseIp(inner6);
    assert.equal(ip6.src, CLIENT_V6);
    const back = run('decap', wire(ipPacket(ipSpec(NET_V6, CLIENT_V6), udp({ sport: 53, dport: sport(inner6, ip6), payload: Buffer.alloc(30, 2) }))));
    assert.equal(back.verdict, TC_ACT_REDIRECT);
    assert.equal(parseIp(back.out).dst, LP_LAN6);
    assert.deepEqual(back.out.subarray(0, 6), BOND_MAC);

    reset({ ...bondLocal, flags: MP_CFG_LAN_NAT });
    const o = encapOut(tcpOut(LP_LAN, 45000));
    const r = decapOut(tcpIn(sport(o.inner, o.ip)));
    assert.equal(r.ip.dst, LP_LAN);
    assert.notDeepEqual(r.pkt.subarray(0, 6), BOND_MAC, 'no MP_CFG_BOND_LOCAL: delivered like a LAN host\'s');
  });
});

describe('whole-LAN mode, IPv6', () => {
  it('TCP and ICMPv6 echo out and back, checksums over the new pseudo-header', () => {
    reset();
    const t = encapOut(eth(ipPacket(ipSpec(HOST_A6, NET_V6), tcp({ sport: 40001, dport: 443, flags: SYN }))));
    assert.deepEqual([t.ip.src, sport(t.inner, t.ip)], [CLIENT_V6, 40001]);
    const t2 = encapOut(eth(ipPacket(ipSpec(HOST_B6, NET_V6), tcp({ sport: 40001, dport: 443, flags: SYN }))));
    const portB = sport(t2.inner, t2.ip);
    assert.notEqual(portB, 40001);
    const r = decapOut(ipPacket(ipSpec(NET_V6, CLIENT_V6), tcp({ sport: 443, dport: portB, payload: Buffer.alloc(64, 1) })));
    assert.deepEqual([r.ip.dst, dport(r.pkt, r.ip)], [HOST_B6, 40001]);
    const e = encapOut(eth(ipPacket(ipSpec(HOST_A6, NET_V6), icmpEcho(Buffer.alloc(40, 2), 33, 1))));
    assert.deepEqual([e.ip.src, e.ip.proto, e.inner.readUInt16BE(e.ip.l4 + 4)], [CLIENT_V6, IPPROTO_ICMPV6, 33]);
    const er = decapOut(echoReply(33, NET_V6, CLIENT_V6));
    assert.deepEqual([er.ip.dst, er.pkt.readUInt16BE(er.ip.l4 + 4)], [HOST_A6, 33]);
    assert.deepEqual(lookup('natOut', { family: 6, proto: IPPROTO_TCP, port: 40001, addr: HOST_A6 }), { addr: CLIENT_V6, port: 40001, flags: 0 });
  });

  it('UDP over IPv6; a family without LAN prefixes is untouched both ways', () => {
    reset();
    const u = encapOut(eth(ipPacket(ipSpec(HOST_A6, NET_V6), udp({ sport: 7000, dport: 53, payload: Buffer.alloc(20) }))));
    assert.equal(u.ip.src, CLIENT_V6);
    reset({ lan: [{ family: 4, prefixLen: 24, addr: '192.168.1.0' }] });
    const f = eth(ipPacket(ipSpec(HOST_A6, NET_V6), udp({ sport: 7000, dport: 53 })));
    assert.equal(run('encap', f).verdict, TC_ACT_UNSPEC, 'fd00:1::/64 is no LAN prefix now');
    const d = decapOut(ipPacket(ipSpec(NET_V6, CLIENT_V6), udp({ sport: 53, dport: 7000 })));
    assert.equal(d.ip.dst, CLIENT_V6, 'to the client address as before whole-LAN mode');
  });
});

describe('whole-LAN mode: cost per packet (single test runs, alternating)', () => {
  it('a mapped flow costs under 5 µs more than the client\'s own packet, encap and decap', (t) => {
    reset();
    encapOut(tcpOut(HOST_A, 40001));
    const nat = tcpOut(HOST_A, 40001, NET_V4, 0x10);
    const own = tcpOut(CLIENT_V4, 40001, NET_V4, 0x10);
    const ns = { nat: [] as number[], own: [] as number[], natIn: [] as number[], ownIn: [] as number[] };
    assert.ok(handle !== undefined);
    const time = (prog: 'encap' | 'decap', b: Buffer) => must(progTestRun(handle!, prog, b, { dataOutSize: 4096 })).durationNs;
    for (let i = 0; i < 300; i++) {
      ns.nat.push(time('encap', nat));
      ns.own.push(time('encap', own));
      ns.natIn.push(time('decap', wire(tcpIn(40001))));
      maps().put('config', 0, encodeConfig({ ...CONFIG, flags: 0 })); // the same reply, no NAT
      ns.ownIn.push(time('decap', wire(tcpIn(40001))));
      maps().put('config', 0, encodeConfig(CONFIG));
    }
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
    t.diagnostic(`median of 300 (alternating): encap mapped LAN flow ${med(ns.nat)} ns, the client's own packet ${med(ns.own)} ns; decap to a mapped flow ${med(ns.natIn)} ns, without NAT ${med(ns.ownIn)} ns`);
    assert.ok(med(ns.nat) - med(ns.own) < 5000, `encap: NAT adds ${med(ns.nat) - med(ns.own)} ns`);
    assert.ok(med(ns.natIn) - med(ns.ownIn) < 5000, `decap: NAT adds ${med(ns.natIn) - med(ns.ownIn)} ns`);
  });
});
