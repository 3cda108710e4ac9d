// src/datapath/abi.ts against the BTF of build/bpf/mpctl.o (bpf/mp.h as compiled): every
// struct's size and members (name, offset, size, in order), every enum's constants, the maps
// of the loaded object, and the encoders/decoders themselves. Run as root (it loads the object):
//   node --import tsx --test test/abi.test.ts

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as abi from '../src/datapath/abi.js';
import { after, describe, it } from 'node:test';
import {
  decodeConfig,
  decodeDrops,
  decodeEndpoint,
  decodeHdr,
  decodeLink,
  decodeLinkStats,
  decodeLoopStats,
  decodeRx,
  decodeSched,
  DROP_REASONS,
  DropReason,
  encodeConfig,
  encodeNatKey,
  encodeNatVal,
  decodeNatKey,
  decodeNatVal,
  MP_NAT_F_FORWARD,
  encodeEndpoint,
  encodeHdr,
  encodeLink,
  ENUMS,
  LAYOUTS,
  MAPS,
  MP_CARRIER_IP,
  MP_CFG_DEC_TTL,
  MP_CFG_SINGLE_IF,
  MP_DROP_MAX,
  MP_HDR,
  MP_HDR_LEN,
  MP_LINK_STATS,
  MP_LOOP_STATS,
  MP_MAX_LINKS,
  MP_RESERVED_PORTS,
  MP_RX,
  MP_LINK_F_NO_ACKS,
  MP_LINK_UP,
  MP_ROLE_REMOTE,
  MP_SCHED,
  MP_T_FEEDBACK,
  NO_ADDR,
  perCpuStride,
  percpuValueSize,
  type MpConfig,
  type MpEndpoint,
  type MpLink,
  type StructLayout,
  MP_CONFIG_SIZE,
} from '../src/datapath/abi.js';
import { MAX_LINKS, MAX_RESERVED_PORTS } from '../src/config/parse.js';
import { MAX_LINKS as LAB_MAX_LINKS } from '../src/lab/topology.js';
import { bpfClose, bpfOpenLoad, mapFd, mapInfo, progVerifiedInsns, SK_BUFF_OFFSETS, SK_BUFF_SIZE, type ObjHandle } from '../src/native/libmpctl.js';

const ROOT = new URL('..', import.meta.url).pathname;
const OBJ = join(ROOT, 'build/bpf/mpctl.o');

// ---- BTF -----------------------------------------------------------------------------------

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  bitfield_size?: number;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
  values?: { name: string; val: number }[];
}

function loadBtf(file: string): Map<number, BtfType> {
  const json = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', file], { encoding: 'utf8', maxBuffer: 1 << 30 })) as {
    types: BtfType[];
  };
  return new Map(json.types.map((t) => [t.id, t]));
}

function typeSize(btf: Map<number, BtfType>, id: number): number {
  const t = btf.get(id);
  if (!t) throw new Error(`BTF type ${id} missing`);
  switch (t.kind) {
    case 'INT':
    case 'STRUCT':
    case 'UNION':
    case 'ENUM':
    case 'ENUM64':
      return t.size ?? 0;
    case 'PTR':
      return 8;
    case 'ARRAY':
      return (t.nr_elems ?? 0) * typeSize(btf, t.type_id ?? 0);
    case 'TYPEDEF':
    case 'CONST':
    case 'VOLATILE':
    case 'RESTRICT':
    case 'TYPE_TAG':
      return typeSize(btf, t.type_id ?? 0);
    default:
      throw new Error(`no size for BTF ${t.kind} ${t.name}`);
  }
}

function byName(btf: Map<number, BtfType>, kind: string, name: string): BtfType[] {
  return [...btf.values()].filter((t) => t.kind === kind && t.name === name);
}

/** The C struct as a layout table, bitfields refused (the mirror cannot express them). */
function btfLayout(btf: Map<number, BtfType>, name: string): StructLayout {
  const found = byName(btf, 'STRUCT', name);
  assert.equal(found.length, 1, `exactly one struct ${name} in the BTF (found ${found.length})`);
  const s = found[0]!;
  return {
    name,
    size: s.size ?? 0,
    fields: (s.members ?? []).map((m) => {
      assert.ok(!m.bitfield_size && m.bits_offset % 8 === 0, `${name}.${m.name} is a bitfield`);
      return { name: m.name, offset: m.bits_offset / 8, size: typeSize(btf, m.type_id) };
    }),
  };
}

/** Differences between two layouts, as readable lines (empty: identical). */
function layoutDiff(c: StructLayout, ts: StructLayout): string[] {
  const out: string[] = [];
  if (c.size !== ts.size) out.push(`size: C ${c.size}, TS ${ts.size}`);
  const n = Math.max(c.fields.length, ts.fields.length);
  for (let i = 0; i < n; i++) {
    const a = c.fields[i];
    const b = ts.fields[i];
    const show = (f?: { name: string; offset: number; size: number }) => (f ? `${f.name}@${f.offset}+${f.size}` : '(none)');
    if (!a || !b || a.name !== b.name || a.offset !== b.offset || a.size !== b.size)
      out.push(`member ${i}: C ${show(a)}, TS ${show(b)}`);
  }
  return out;
}

describe('abi.ts mirrors the BTF of build/bpf/mpctl.o', () => {
  const btf = loadBtf(OBJ);

  for (const l of LAYOUTS) {
    it(`struct ${l.name}: size and every member`, () => {
      assert.deepEqual(layoutDiff(btfLayout(btf, l.name), l), []);
    });
  }

  it('the comparison catches a moved, resized, added or removed member', () => {
    const c = btfLayout(btf, 'mp_endpoint');
    const moved = { ...c, fields: c.fields.map((f) => (f.name === 'valid' ? { ...f, offset: f.offset + 1 } : f)) };
    const resized = { ...c, fields: c.fields.map((f) => (f.name === 'port_be' ? { ...f, size: 4 } : f)) };
    const added = { ...c, fields: [...c.fields, { name: 'extra', offset: 32, size: 4 }] };
    const removed = { ...c, fields: c.fields.slice(1) };
    for (const bad of [moved, resized, added, removed]) assert.notDeepEqual(layoutDiff(c, bad), []);
  });

  for (const [name, values] of Object.entries(ENUMS)) {
    it(`enum ${name}: same constants and values`, () => {
      const found = byName(btf, 'ENUM', name);
      assert.equal(found.length, 1, `enum ${name} in the BTF (maps.h's mp_abi anchor keeps it there)`);
      const c = Object.fromEntries((found[0]!.values ?? []).map((v) => [v.name, v.val]));
      assert.deepEqual(c, values);
    });
  }

  it('constants that BTF shows indirectly', () => {
    assert.equal(btfLayout(btf, 'mp_hdr').size, MP_HDR_LEN);
    const busy = btfLayout(btf, 'mp_sched').fields.find((f) => f.name === 'busy_until_ns');
    assert.equal(busy?.size, 8 * MP_MAX_LINKS, 'MP_MAX_LINKS');
    const reserved = btfLayout(btf, 'mp_config').fields.find((f) => f.name === 'reserved_ports');
    assert.equal(reserved?.size, 2 * MP_RESERVED_PORTS, 'MP_RESERVED_PORTS');
    assert.equal(MAX_RESERVED_PORTS, MP_RESERVED_PORTS, 'the config refuses what the data path cannot hold');
    assert.equal(MAX_LINKS, MP_MAX_LINKS);
    assert.equal(LAB_MAX_LINKS, MP_MAX_LINKS);
    assert.equal(DROP_REASONS.length, MP_DROP_MAX);
    assert.equal(DROP_REASONS[DropReason.truncated], 'truncated');
    assert.equal(ENUMS['mp_drop_reason']?.['MP_DROP_MAX'], MP_DROP_MAX);
  });

  it("every number bpf/mp.h #defines is abi.ts's constant of the same name", () => {
    // BTF keeps no macros: the header the object was compiled from is read instead, so a bound
    // (MP_REPLAY_WINDOW, MP_NH_MAX_BODY, MP_KEY_IDS, ...) changed there fails here until mirrored
    const text = readFileSync(join(ROOT, 'bpf', 'mp.h'), 'utf8');
    const defs = new Map<string, number>();
    for (const m of text.matchAll(/^#define (MP_\w+)[ \t]+([^\n/]+?)\s*(?:\/\*.*)?$/gm)) {
      const expr = m[2]!.replace(/MP_\w+/g, (n) => String(defs.get(n) ?? NaN)).replace(/0x[0-9a-fA-F]+/g, (h) => String(parseInt(h, 16)));
      assert.match(expr, /^[\d\s()+\-*/<>|&]+$/, `${m[1]}: ${m[2]} is a number or arithmetic of earlier ones`);
      defs.set(m[1]!, Function(`return ${expr}`)() as number);
    }
    for (const n of ['MP_MAX_LINKS', 'MP_RESERVED_PORTS', 'MP_REPLAY_WINDOW', 'MP_REPLAY_WORDS', 'MP_NH_MAX_BODY', 'MP_KEY_IDS'])
      assert.ok(defs.has(n), `${n} is defined in mp.h`);
    const exported = abi as unknown as Record<string, unknown>;
    for (const [n, v] of defs) assert.equal(exported[n], v, `abi.ts ${n} mirrors mp.h`);
  });

  it('the programs encap and decap are in the one object', () => {
    const funcs = [...btf.values()].filter((t) => t.kind === 'FUNC').map((t) => t.name);
    assert.ok(funcs.includes('encap') && funcs.includes('decap'), funcs.join(','));
  });

  it('struct __sk_buff offsets used by progTestRun contexts', () => {
    const kernel = loadBtf('/sys/kernel/btf/vmlinux');
    const skb = btfLayout(kernel, '__sk_buff');
    assert.equal(skb.size, SK_BUFF_SIZE);
    const off = (n: string) => skb.fields.find((f) => f.name === n)?.offset;
    assert.equal(off('mark'), SK_BUFF_OFFSETS.mark);
    assert.equal(off('priority'), SK_BUFF_OFFSETS.priority);
    assert.equal(off('ingress_ifindex'), SK_BUFF_OFFSETS.ingressIfindex);
    assert.equal(off('ifindex'), SK_BUFF_OFFSETS.ifindex);
    assert.equal(off('cb'), SK_BUFF_OFFSETS.cb);
    assert.equal(off('tstamp'), SK_BUFF_OFFSETS.tstamp);
    assert.equal(off('wire_len'), SK_BUFF_OFFSETS.wireLen);
    assert.equal(off('gso_segs'), SK_BUFF_OFFSETS.gsoSegs);
    assert.equal(off('gso_size'), SK_BUFF_OFFSETS.gsoSize);
    assert.equal(off('hwtstamp'), SK_BUFF_OFFSETS.hwtstamp);
  });
});

describe('the loaded object has the maps abi.ts names', () => {
  let h: ObjHandle | undefined;
  after(() => {
    if (h !== undefined) bpfClose(h);
  });

  it('type, key size, value size and entries of every map', () => {
    assert.equal(process.getuid?.(), 0, 'this test needs root');
    const r = bpfOpenLoad(OBJ);
    assert.ok(r.isOk(), JSON.stringify(r.isErr() && r.error));
    h = r.value;
    for (const m of Object.values(MAPS)) {
      const fd = mapFd(h, m.name);
      assert.ok(fd.isOk(), `map ${m.name}`);
      const info = mapInfo(fd.value);
      assert.ok(info.isOk());
      assert.deepEqual(
        { name: info.value.name, type: info.value.type, keySize: info.value.keySize, value: info.value.valueSize, maxEntries: info.value.maxEntries },
        { name: m.name, type: m.type, keySize: m.keySize, value: m.value, maxEntries: m.maxEntries },
      );
    }
  });

  // What the verifier walks is what a portal's start costs (0.6 s here for both programs; a
  // router's core is several times slower), and the kernel refuses a program past 1,000,000.
  // decap walked 673,304 before its MAC, probe reply, loss recovery and ICMP checksum loops
  // became global functions and bpf_loop callbacks (bpf/nh.h, probe.h, fec.h, csum.h); these
  // budgets keep about a third of headroom over what they walk now (encap 139,860, decap
  // 103,411): a change that takes a program past its budget is a change to look at.
  it('each program is verified within its budget of instructions walked', (t) => {
    assert.ok(h !== undefined, 'the object loaded (test above)');
    const budget = { encap: 190_000, decap: 140_000 };
    for (const [prog, max] of Object.entries(budget)) {
      const n = progVerifiedInsns(h, prog);
      assert.ok(n.isOk(), JSON.stringify(n.isErr() && n.error));
      t.diagnostic(`${prog}: ${n.value} instructions walked (budget ${max})`);
      assert.ok(n.value > 0 && n.value <= max, `${prog}: the verifier walked ${n.value} instructions, over its budget of ${max}`);
    }
  });
});

describe('encoders and decoders', () => {
  it('mp_config round trip, ports in network order', () => {
    const c: MpConfig = {
      role: MP_ROLE_REMOTE,
      flags: MP_CFG_SINGLE_IF | MP_CFG_DEC_TTL,
      lanIfindex: 3,
      wanIfindex: 4,
      port: 5555,
      mssV4: 1360,
      mssV6: 1340,
      innerMtu: 1400,
      ipProto: 253,
      clientV4: { family: 4, prefixLen: 32, addr: '203.0.113.7' },
      clientV6: { family: 6, prefixLen: 64, addr: '2001:db8:7::' },
      reservedPorts: [22, 443],
      loopIfindex: 9,
      loopMark: 0x6d700100,
      ownV4: { family: 4, prefixLen: 32, addr: '198.51.100.2' },
      ownV6: { family: 6, prefixLen: 128, addr: '2001:db8:100::2' },
      aliveNs: 123_456_789_012n,
      lan: [{ family: 4, prefixLen: 24, addr: '192.168.1.0' }, { family: 6, prefixLen: 64, addr: 'fd00:1::' }],
      natPortLo: 1024,
      natPortHi: 65535,
      localIfindex: 12,
      localMac: '02:6d:70:00:00:01',
      localV4: { family: 4, prefixLen: 32, addr: '192.168.1.1' },
      localV6: { family: 6, prefixLen: 128, addr: 'fd00:1::1' },
      shapeHandle: 0x6d70_0000,
    };
    const b = encodeConfig(c);
    assert.equal(b.length, 288);
    assert.equal(b.readUInt32LE(284), 0x6d70_0000, 'shape_handle host-endian, last');
    assert.equal(b.readUInt32LE(232), 12, 'local_ifindex host-endian');
    assert.deepEqual(b.subarray(236, 242), Buffer.from([2, 0x6d, 0x70, 0, 0, 1]), 'local_mac as on the wire');
    assert.deepEqual(b.subarray(244, 252), Buffer.from([4, 32, 0, 0, 192, 168, 1, 1]), 'local_v4');
    assert.deepEqual(b.subarray(144, 152), Buffer.from([4, 24, 0, 0, 192, 168, 1, 0]), 'lan[0] after alive_ns');
    assert.equal(b.readUInt8(164), 6, 'lan[1] family');
    assert.equal(b.readUInt16LE(224), 1024, 'nat_port_lo host-endian');
    assert.equal(b.readBigUInt64LE(136), 123_456_789_012n, 'alive_ns after own_v6 (8-aligned)');
    assert.deepEqual(b.subarray(112, 116), Buffer.from([6, 128, 0, 0]), 'own_v6 family, prefix');
    assert.equal(b.readUInt32LE(88), 0x6d700100, 'loop_mark host-endian (as skb->mark)');
    assert.deepEqual(b.subarray(16, 18), Buffer.from([0x15, 0xb3]), 'port_be big-endian');
    assert.deepEqual(b.subarray(28, 32), Buffer.from([4, 32, 0, 0]), 'client_v4 family, prefix');
    assert.deepEqual(decodeConfig(b), c);
  });

  it('mp_nat_key / mp_nat_val round trip: port in network order, IPv4 in the first 4 bytes', () => {
    const k = { family: 4 as const, proto: 6, port: 443, addr: '203.0.113.7' };
    const kb = encodeNatKey(k);
    assert.deepEqual(kb, Buffer.from([4, 6, 0x01, 0xbb, 203, 0, 113, 7, ...new Array(12).fill(0)]));
    assert.deepEqual(decodeNatKey(kb), k);
    const v = { addr: 'fd00:1::10', port: 8443, flags: MP_NAT_F_FORWARD, state: 1, lastS: 123456 };
    const vb = encodeNatVal(v);
    assert.equal(vb.length, 24);
    assert.equal(vb.readUInt32LE(20), 123456, 'last_s host-endian');
    assert.deepEqual(decodeNatVal(vb, 6), v);
    assert.throws(() => encodeNatKey({ ...k, addr: 'fd00::1' }), /not IPv4/);
  });

  it('unset addresses are family 0 both ways; a family that does not match is refused', () => {
    const c = decodeConfig(Buffer.alloc(MP_CONFIG_SIZE));
    assert.deepEqual([c.clientV4, c.clientV6, c.ownV4, c.ownV6], [NO_ADDR, NO_ADDR, NO_ADDR, NO_ADDR]);
    assert.throws(() => encodeEndpoint({ addr: { family: 4, prefixLen: 32, addr: '2001:db8::1' }, port: 1, valid: true, updatedNs: 0n }), /not IPv4/);
  });

  it('mp_link round trip; unset addresses stay family 0', () => {
    const l: MpLink = {
      ifindex: 7,
      state: MP_LINK_UP,
      carrier: MP_CARRIER_IP,
      metric: 2,
      flags: MP_LINK_F_NO_ACKS,
      mtu: 1500,
      owdUs: 12000,
      rateBps: 50_000_000n,
      local: { family: 6, prefixLen: 128, addr: '2001:db8::1' },
      nexthop: NO_ADDR,
      localPort: 40001,
      holdKbps: 19_000,
      planCapMs: 54,
      budgetBytes: 5_000_000_000n,
    };
    const b = encodeLink(l);
    assert.equal(b.readUInt32LE(68), 19_000, 'hold_kbps');
    assert.equal(b.readUInt16LE(66), 54, 'plan_cap_ms');
    assert.equal(b.length, 80);
    assert.equal(b.readUInt8(44), 0, 'nexthop family 0');
    assert.deepEqual(decodeLink(b), l);
  });

  it('mp_endpoint round trip', () => {
    const e: MpEndpoint = { addr: { family: 4, prefixLen: 32, addr: '198.51.100.9' }, port: 41000, valid: true, updatedNs: 123456789n };
    const b = encodeEndpoint(e);
    assert.equal(b.length, 32);
    assert.deepEqual(decodeEndpoint(b), e);
  });

  it('mp_hdr round trip, version and type in one byte', () => {
    const b = encodeHdr({ type: MP_T_FEEDBACK, linkId: 3, keyId: 1, seq: 0xfffffffe, linkSeq: 7, tsUs: 99, tag: Buffer.alloc(8, 0xab) });
    assert.equal(b.length, MP_HDR.size);
    assert.equal(b[0], 0x13);
    assert.deepEqual(decodeHdr(b), { version: 1, type: MP_T_FEEDBACK, flags: 0, linkId: 3, keyId: 1, seq: 0xfffffffe, linkSeq: 7, tsUs: 99, tag: Buffer.alloc(8, 0xab) });
  });

  it('per-CPU values are summed across CPUs', () => {
    const stride = perCpuStride(MP_LINK_STATS.size);
    const b = Buffer.alloc(stride * 3);
    for (let cpu = 0; cpu < 3; cpu++) {
      b.writeBigUInt64LE(BigInt(cpu + 1), cpu * stride); // tx_packets
      b.writeBigUInt64LE(100n, cpu * stride + 24); // rx_bytes
    }
    assert.deepEqual(decodeLinkStats(b), { txPackets: 6n, txBytes: 0n, rxPackets: 0n, rxBytes: 300n });
    const drops = decodeDrops([null, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])]);
    assert.equal(drops.truncated, 3n);
    assert.equal(drops.fib, 0n);
    assert.equal(perCpuStride(20), 24);
    assert.equal(percpuValueSize(20, 3), 72);
    assert.equal(decodeLinkStats(b, 2).txPackets, 3n, 'only the first ncpu');
    const loop = Buffer.alloc(perCpuStride(MP_LOOP_STATS.size) * 2);
    loop.writeBigUInt64LE(1n, 0);
    loop.writeBigUInt64LE(5n, 24 + 16);
    assert.deepEqual(decodeLoopStats(loop), { gso: 1n, frag: 0n, back: 5n });
  });

  it('mp_rx and mp_sched decode', () => {
    const rx = Buffer.alloc(MP_RX.size);
    rx.writeBigUInt64LE(5n, 0);
    rx.writeUInt32LE(9, 8);
    rx.writeUInt32LE(0xfffffff0, 12);
    rx.writeBigUInt64LE(2n, 16);
    rx.writeBigUInt64LE(300n, 24);
    rx.writeUInt32LE(1280, 32);
    rx.writeUInt32LE(3, 36);
    assert.deepEqual(decodeRx(rx), { lastRxNs: 5n, maxLinkSeq: 9, lastOwdUs: 0xfffffff0, packets: 2n, bytes: 300n, ptbMtu: 1280, ptbCount: 3 });
    const s = Buffer.alloc(MP_SCHED.size);
    s.writeUInt32LE(42, 4);
    s.writeBigUInt64LE(77n, 8 + 8 * 3);
    s.writeUInt32LE(5, 136 + 4 * 3);
    const d = decodeSched(s);
    assert.equal(d.seq, 42);
    assert.equal(d.busyUntilNs[3], 77n);
    assert.equal(d.linkSeq[3], 5);
  });
});
