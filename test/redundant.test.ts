// Redundant mode (README "Redundant mode"; bpf/redundant.h) through BPF_PROG_TEST_RUN: which packets a
// class takes (DSCP, UDP ports, prefixes), how many copies go and on which links, the cap
// (token bucket), and the receiver keeping the first copy and counting the rest as `duplicate`
// (not `replay`). The copies are real clones sent out of veths in a namespace (the FIB lookup
// for their MACs needs routes and neighbours there). Run as root:
//   node --import tsx --test test/redundant.test.ts
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { bpfClose, progTestRun } from '../src/native/libmpctl.js';
import { withNetns } from '../src/native/netns.js';
import {
  decodeHdr,
  decodeLinkStats,
  decodeRedStats,
  decodeRx,
  decodeSched,
  encodeConfig,
  encodeEndpoint,
  encodeKey,
  encodeLink,
  encodeRedClass,
  hostAddr,
  MP_CARRIER_UDP,
  MP_CFG_NO_AUTH,
  MP_HDR_CLASS_SHIFT,
  MP_HDR_F_COPY,
  MP_LINK_DOWN,
  MP_LINK_UP,
  MP_RED_ALL_LINKS,
  type MpRedClass,
} from '../src/datapath/abi.js';
import { packagePath } from '../src/paths.js';
import { dropDelta, must, openObject, type ObjMaps } from './helpers/maps.js';
import { LP_CONFIG, RP_PORT } from './helpers/lp-config.js';
import { ipPacket, ipSpec, mpPacket, parseIp, tcp, udp, type PacketKey } from './helpers/packet.js';
import { serial } from './helpers/serial.js';

// the data path's scheduling reads the clock between packets: not beside another test file
// (helpers/serial.ts; beside one, datapath's 'equal links alternate' met a later clock in a CI run)
await serial();

const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const NS = `mpred${process.pid}`;
const RP = '203.0.113.1';
const GW = (id: number) => `10.210.${id}.254`;
const SRC = (id: number) => `10.210.${id}.1`;
const KEY: PacketKey = { id: 1, key: Buffer.from('0f0e0d0c0b0a09080706050403020100', 'hex') };

const sh = (...a: string[]) => execFileSync(a[0]!, a.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const ifindex: number[] = [];

let obj: ObjMaps;

before(() => {
  sh('ip', 'netns', 'add', NS);
  sh('ip', '-n', NS, 'link', 'set', 'lo', 'up');
  for (let i = 0; i < 3; i++) {
    sh('ip', '-n', NS, 'link', 'add', `l${i}`, 'type', 'veth', 'peer', 'name', `l${i}p`);
    sh('ip', '-n', NS, 'link', 'set', `l${i}`, 'up');
    sh('ip', '-n', NS, 'link', 'set', `l${i}p`, 'up');
    sh('ip', '-n', NS, 'addr', 'add', `${SRC(i)}/24`, 'dev', `l${i}`);
    sh('ip', '-n', NS, 'neigh', 'add', GW(i), 'lladdr', `02:00:00:00:0${i}:fe`, 'dev', `l${i}`, 'nud', 'permanent');
    ifindex.push((JSON.parse(sh('ip', '-n', NS, '-j', 'link', 'show', `l${i}`)) as { ifindex: number }[])[0]!.ifindex);
  }
  sh('ip', 'netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv4.conf.all.forwarding=1', 'net.ipv6.conf.all.forwarding=1');
  obj = openObject(process.env.MPCTL_BPF_OBJ ?? packagePath('build', 'bpf', 'mpctl.o'));
});
after(() => {
  if (obj) bpfClose(obj.handle);
  sh('ip', 'netns', 'del', NS);
});

function reset(flags = MP_CFG_NO_AUTH): void {
  obj.zero();
  obj.put('config', 0, encodeConfig({ ...LP_CONFIG, flags }));
  obj.put('txKey', 0, encodeKey({ key: KEY.key, expiresNs: 1n << 62n, id: KEY.id, valid: true }));
  obj.put('rxKeys', KEY.id, encodeKey({ key: KEY.key, expiresNs: 1n << 62n, id: KEY.id, valid: true }));
}

/** Link id over l<id> (gateway GW(id)): near links first by default (owd 10, 20, 30 ms). */
function setLink(id: number, o: { state?: number; owdUs?: number } = {}): void {
  obj.put('links', id, encodeLink({ ifindex: ifindex[id]!, state: o.state ?? MP_LINK_UP, carrier: MP_CARRIER_UDP, metric: 0, flags: 0, mtu: 1500, owdUs: o.owdUs ?? 10_000 * (id + 1), rateBps: 100_000_000n, local: hostAddr(SRC(id)), nexthop: hostAddr(GW(id)), localPort: 40000 + id, budgetBytes: 0n }));
  obj.put('endpoints', id, encodeEndpoint({ addr: hostAddr(RP), port: RP_PORT, valid: true, updatedNs: 0n }));
}

const CLASS: MpRedClass = { links: 2, dscp: [], ports: [], prefixes: [], capBytesPerS: 1e6, burstBytes: 1 << 20 };
const setClass = (i: number, c: Partial<MpRedClass>) => obj.put('redClass', i, encodeRedClass({ ...CLASS, ...c }));
const stats = (i: number) => decodeRedStats(obj.get('redStats', i));
const txPackets = (id: number) => decodeLinkStats(obj.get('linkStats', id)).txPackets;

const ETH4 = Buffer.from('02000000000b02000000000a0800', 'hex');
const ETH6 = Buffer.from('02000000000b02000000000a86dd', 'hex');
/** A client packet: UDP 200 B (a call's) unless told; tos = DSCP << 2. */
function pkt(o: { dscp?: number; sport?: number; dport?: number; dst?: string; v6?: boolean; tcp?: boolean } = {}): Buffer {
  const v6 = o.v6 ?? false;
  const spec = ipSpec(v6 ? '2001:db8:9::2' : '10.9.0.2', o.dst ?? (v6 ? '2001:db8:2::10' : '192.0.2.10'), { tos: (o.dscp ?? 0) << 2 });
  const l4 = o.tcp ? tcp({ sport: o.sport ?? 40000, dport: o.dport ?? 50000, flags: 0x18, payload: Buffer.alloc(172, 1) }) : udp({ sport: o.sport ?? 40000, dport: o.dport ?? 50000, payload: Buffer.alloc(172, 1) });
  return Buffer.concat([v6 ? ETH6 : ETH4, ipPacket(spec, l4)]);
}

/** encap in the namespace: the scheduled link and the header flags (-1: dropped). */
function send(f: Buffer): { link: number; flags: number; seq: number } {
  const r = must(must(withNetns(NS, () => progTestRun(obj.handle, 'encap', f, { dataOutSize: f.length + 512 }))));
  if ((r.retval | 0) !== TC_ACT_REDIRECT) return { link: -1, flags: 0, seq: 0 };
  const ip = parseIp(r.dataOut);
  const h = decodeHdr(r.dataOut.subarray(ip.l4 + 8));
  return { link: h.linkId, flags: h.flags, seq: h.seq };
}

describe('redundant mode: classification', () => {
  const cases: [string, Partial<MpRedClass>, Buffer, boolean][] = [
    ['DSCP EF', { dscp: [46, 34] }, pkt({ dscp: 46 }), true],
    ['DSCP AF41', { dscp: [46, 34] }, pkt({ dscp: 34 }), true],
    ['IPv6 DSCP EF (traffic class across two bytes)', { dscp: [46] }, pkt({ dscp: 46, v6: true }), true],
    ['DSCP 0 is not EF', { dscp: [46, 34] }, pkt({ dscp: 0 }), false],
    ['DSCP CS5 (40) is not EF', { dscp: [46] }, pkt({ dscp: 40 }), false],
    ['UDP destination port in a range', { ports: [{ lo: 3478, hi: 3481 }] }, pkt({ dport: 3480 }), true],
    ['UDP source port in a range', { ports: [{ lo: 3478, hi: 3481 }] }, pkt({ sport: 3478 }), true],
    ['UDP port outside the range', { ports: [{ lo: 3478, hi: 3481 }] }, pkt({ dport: 3482 }), false],
    ['TCP to a port of the range: UDP only', { ports: [{ lo: 3478, hi: 3481 }] }, pkt({ dport: 3479, tcp: true }), false],
    ['destination in a prefix', { prefixes: [{ family: 4, prefixLen: 24, addr: '192.0.2.0' }] }, pkt(), true],
    ['destination outside the prefix', { prefixes: [{ family: 4, prefixLen: 24, addr: '192.0.3.0' }] }, pkt(), false],
    ['IPv6 prefix', { prefixes: [{ family: 6, prefixLen: 48, addr: '2001:db8:2::' }] }, pkt({ v6: true }), true],
  ];
  for (const [name, cls, f, copied] of cases)
    it(`${name}: ${copied ? 'copied' : 'not copied'}`, () => {
      reset();
      setLink(0);
      setLink(1);
      setClass(3, cls);
      const r = send(f);
      assert.equal(r.link, 0, 'the packet itself goes on its scheduled link (the nearest)');
      assert.equal(r.flags, copied ? MP_HDR_F_COPY | (3 << MP_HDR_CLASS_SHIFT) : 0);
      assert.equal(stats(3).packets, copied ? 1n : 0n);
      assert.equal(stats(3).copies, copied ? 1n : 0n);
      assert.equal(txPackets(1), copied ? 1n : 0n, 'the copy went out of link 1');
    });

  it('the first matching class wins', () => {
    reset();
    setLink(0);
    setLink(1);
    setClass(0, { dscp: [46] });
    setClass(1, { dscp: [46], ports: [{ lo: 1, hi: 65535 }] });
    assert.equal(send(pkt({ dscp: 46 })).flags, MP_HDR_F_COPY);
    assert.equal(send(pkt({ dscp: 0 })).flags, MP_HDR_F_COPY | (1 << MP_HDR_CLASS_SHIFT));
    assert.equal(stats(0).packets, 1n);
    assert.equal(stats(1).packets, 1n);
  });
});

describe('redundant mode: copies', () => {
  it('links = 2: one copy on the next earliest link, same seq; its own link_seq', () => {
    reset();
    for (const id of [0, 1, 2]) setLink(id);
    setClass(0, { dscp: [46] });
    const a = send(pkt({ dscp: 46 }));
    const b = send(pkt({ dscp: 46 }));
    assert.deepEqual([a.link, b.link], [0, 0]);
    assert.deepEqual([a.seq, b.seq], [1, 2], 'a copy takes no sequence number of its own');
    assert.deepEqual([txPackets(0), txPackets(1), txPackets(2)], [2n, 2n, 0n], 'copies on link 1 (20 ms), none on link 2 (30 ms)');
    const s = decodeSched(obj.get('sched', 0));
    assert.deepEqual(s.linkSeq.slice(0, 3), [2, 2, 0]);
    assert.equal(s.seq, 2);
    assert.equal(stats(0).copies, 2n);
    assert.equal(stats(0).copyBytes, 2n * BigInt(pkt().length - 14 + 20 + 8 + 24));
  });

  it('links = "all": a copy on every other usable link; a link that is down gets none', () => {
    reset();
    for (const id of [0, 1, 2]) setLink(id);
    setClass(0, { dscp: [46], links: MP_RED_ALL_LINKS });
    send(pkt({ dscp: 46 }));
    assert.deepEqual([txPackets(0), txPackets(1), txPackets(2)], [1n, 1n, 1n]);
    setLink(1, { state: MP_LINK_DOWN });
    send(pkt({ dscp: 46 }));
    assert.deepEqual([txPackets(0), txPackets(1), txPackets(2)], [2n, 1n, 2n]);
    assert.equal(stats(0).copies, 3n);
  });

  it('one usable link: the packet goes alone, unflagged, counted `single`', () => {
    reset();
    setLink(0);
    setLink(1, { state: MP_LINK_DOWN });
    setClass(0, { dscp: [46] });
    assert.deepEqual(send(pkt({ dscp: 46 })), { link: 0, flags: 0, seq: 1 });
    assert.equal(stats(0).single, 1n);
    assert.equal(stats(0).copies, 0n);
  });

  it('the cap: copies while the bucket holds their bytes, then the class goes on one link (`capped`)', () => {
    reset();
    setLink(0);
    setLink(1);
    const copy = pkt().length - 14 + 40 + 8 + 24; // charged at the largest overhead (IPv6 + UDP)
    setClass(0, { dscp: [46], capBytesPerS: 1, burstBytes: 3 * copy });
    const flags = Array.from({ length: 5 }, () => send(pkt({ dscp: 46 })).flags);
    assert.deepEqual(flags, [1, 1, 1, 0, 0].map((x) => x * MP_HDR_F_COPY));
    assert.equal(stats(0).copies, 3n);
    assert.equal(stats(0).capped, 2n);
    assert.equal(stats(0).packets, 5n);
    assert.equal(txPackets(1), 3n);
  });

  it('authenticated: the copy is signed and sent like the packet', () => {
    reset(0);
    setLink(0);
    setLink(1);
    setClass(0, { dscp: [46] });
    assert.equal(send(pkt({ dscp: 46 })).flags, MP_HDR_F_COPY);
    assert.equal(stats(0).copies, 1n);
    assert.equal(stats(0).copyFailed, 0n);
  });
});

describe('redundant mode: the receiver keeps the first copy', () => {
  const inner = ipPacket(ipSpec('192.0.2.10', '10.9.0.2'), udp({ sport: 50000, dport: 40000, payload: Buffer.alloc(100, 2) }));
  const wire = (link: number, seq: number, flags: number) =>
    mpPacket({ outer: ipSpec(RP, SRC(link)), sport: RP_PORT, dport: 40000 + link, hdr: { linkId: link, seq, linkSeq: seq, flags }, inner, key: KEY });
  const decap = (f: Buffer) => must(must(withNetns(NS, () => progTestRun(obj.handle, 'decap', f, { dataOutSize: f.length + 64 })))).retval | 0;

  it('first copy delivered and counted as a win of its link; the second dropped as duplicate, not replay', () => {
    reset(0);
    setLink(0);
    setLink(1);
    const cls2 = MP_HDR_F_COPY | (2 << MP_HDR_CLASS_SHIFT);
    const before = obj.drops();
    assert.equal(decap(wire(1, 10, cls2)), TC_ACT_REDIRECT, 'the copy on link 1 arrived first');
    assert.equal(decap(wire(0, 10, cls2)), TC_ACT_SHOT);
    assert.equal(decap(wire(0, 11, cls2)), TC_ACT_REDIRECT);
    assert.equal(decap(wire(1, 11, cls2)), TC_ACT_SHOT);
    assert.equal(decap(wire(0, 11, 0)), TC_ACT_SHOT, 'an unflagged packet seen before');
    assert.deepEqual(dropDelta(before, obj.drops()), { duplicate: 2, replay: 1 });
    const s = stats(2);
    assert.deepEqual([s.wins[0], s.wins[1], s.duplicates], [1n, 1n, 2n]);
    // a copy that lost the race still counts as received on its link (per-link loss, liveness)
    const rx = (id: number) => decodeRx(obj.get('rx', id));
    assert.deepEqual([rx(0).packets, rx(1).packets], [2n, 2n], 'the unflagged replay is not recorded');
    assert.deepEqual([rx(0).maxLinkSeq, rx(1).maxLinkSeq], [11, 11]);
  });
});
