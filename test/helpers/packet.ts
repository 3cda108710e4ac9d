// A tiny packet builder and parser for BPF packet-table tests: Ethernet + IPv4/IPv6 +
// TCP (with options) / UDP / ICMP / ICMPv6 with correct checksums, ARP, and mpctl-encapsulated
// packets (through src/datapath/abi.ts). Everything is plain Buffers, network byte order.
//
//   const syn = frame(ip('10.9.0.2', '192.0.2.1'), tcp({ sport: 40000, dport: 80, flags: SYN, mss: 1460 }));
//   const wire = frame(ip('198.51.100.1', '203.0.113.1'), udp({ sport: 5000, dport: 5555, payload: mp(...) }));

import { ipFamily, ipToBuffer, bufferToIp } from '../../src/netlink/ip.js';
import { encodeHdr, MP_T_DATA, type MpHdr } from '../../src/datapath/abi.js';
import { sign } from '../../src/security/mac.js';

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

export const MAC_A = '02:00:00:00:00:0a';
export const MAC_B = '02:00:00:00:00:0b';

// ---- checksums -----------------------------------------------------------------------------

/** One's complement sum of buffers (16-bit big-endian words, odd tail padded), unfolded. */
export function onesSum(...bufs: Buffer[]): number {
  let sum = 0;
  for (const b of bufs) {
    for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
    if (b.length % 2) sum += (b[b.length - 1] ?? 0) << 8;
  }
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The Internet checksum (RFC 1071) of the concatenated buffers. */
export function inetChecksum(...bufs: Buffer[]): number {
  return ~fold(onesSum(...bufs)) & 0xffff;
}

/** Pseudo-header for TCP/UDP/ICMPv6 checksums. */
export function pseudoHeader(src: string, dst: string, proto: number, length: number): Buffer {
  const s = ipToBuffer(src);
  const d = ipToBuffer(dst);
  if (s.length === 4) {
    const p = Buffer.alloc(12);
    s.copy(p, 0);
    d.copy(p, 4);
    p.writeUInt8(proto, 9);
    p.writeUInt16BE(length, 10);
    return p;
  }
  const p = Buffer.alloc(40);
  s.copy(p, 0);
  d.copy(p, 16);
  p.writeUInt32BE(length, 32);
  p.writeUInt8(proto, 39);
  return p;
}

// ---- MAC / Ethernet ------------------------------------------------------------------------

export function macToBuffer(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function bufferToMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export interface EthSpec {
  dst?: string;
  src?: string;
  /** Default: from the payload's IP version. */
  proto?: number;
}

export function eth(payload: Buffer, e: EthSpec = {}): Buffer {
  const h = Buffer.alloc(14);
  macToBuffer(e.dst ?? MAC_B).copy(h, 0);
  macToBuffer(e.src ?? MAC_A).copy(h, 6);
  const version = (payload[0] ?? 0) >> 4;
  h.writeUInt16BE(e.proto ?? (version === 6 ? ETH_P_IPV6 : ETH_P_IP), 12);
  return Buffer.concat([h, payload]);
}

/** An ARP request (who-has target tell sender), Ethernet included. */
export function arpRequest(sender: string, target: string): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0); // Ethernet
  a.writeUInt16BE(ETH_P_IP, 2);
  a.writeUInt8(6, 4);
  a.writeUInt8(4, 5);
  a.writeUInt16BE(1, 6); // request
  macToBuffer(MAC_A).copy(a, 8);
  ipToBuffer(sender).copy(a, 14);
  ipToBuffer(target).copy(a, 24);
  return eth(a, { dst: 'ff:ff:ff:ff:ff:ff', proto: ETH_P_ARP });
}

// ---- L4 ------------------------------------------------------------------------------------

/** An L4 segment; its checksum is filled in when it is put into an IP packet. */
export interface L4 {
  proto: number;
  /** Header + payload with the checksum field zero. */
  bytes: Buffer;
  /** Offset of the checksum field, or -1 (none / keep as is). */
  csumOff: number;
  /** ICMPv4 has no pseudo-header. */
  pseudo: boolean;
}

export interface TcpSpec {
  sport: number;
  dport: number;
  flags?: number;
  seq?: number;
  ack?: number;
  window?: number;
  /** Shortcut for an MSS option (kind 2) first in the options. */
  mss?: number;
  /** Raw options (padded to 4 bytes with EOL). */
  options?: Buffer;
  payload?: Buffer;
}

export function tcp(t: TcpSpec): L4 {
  let opts = Buffer.concat([
    t.mss !== undefined ? Buffer.from([2, 4, t.mss >> 8, t.mss & 0xff]) : Buffer.alloc(0),
    t.options ?? Buffer.alloc(0),
  ]);
  if (opts.length % 4) opts = Buffer.concat([opts, Buffer.alloc(4 - (opts.length % 4))]);
  const h = Buffer.alloc(20);
  h.writeUInt16BE(t.sport, 0);
  h.writeUInt16BE(t.dport, 2);
  h.writeUInt32BE((t.seq ?? 1000) >>> 0, 4);
  h.writeUInt32BE((t.ack ?? 0) >>> 0, 8);
  h.writeUInt8(((20 + opts.length) / 4) << 4, 12);
  h.writeUInt8(t.flags ?? ACK, 13);
  h.writeUInt16BE(t.window ?? 65535, 14);
  return { proto: IPPROTO_TCP, bytes: Buffer.concat([h, opts, t.payload ?? Buffer.alloc(0)]), csumOff: 16, pseudo: true };
}

export interface UdpSpec {
  sport: number;
  dport: number;
  payload?: Buffer;
  /** IPv4 only: send checksum 0 (none). */
  noChecksum?: boolean;
}

export function udp(u: UdpSpec): L4 {
  const payload = u.payload ?? Buffer.alloc(0);
  const h = Buffer.alloc(8);
  h.writeUInt16BE(u.sport, 0);
  h.writeUInt16BE(u.dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return { proto: IPPROTO_UDP, bytes: Buffer.concat([h, payload]), csumOff: u.noChecksum ? -1 : 6, pseudo: true };
}

/** An echo request (ICMP type 8 / ICMPv6 type 128 is chosen by the IP family in ip()). */
export function icmpEcho(payload: Buffer = Buffer.alloc(8, 0x61), id = 1, seq = 1): L4 & { echo: true } {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(id, 4);
  h.writeUInt16BE(seq, 6);
  return { proto: IPPROTO_ICMP, bytes: Buffer.concat([h, payload]), csumOff: 2, pseudo: false, echo: true };
}

/** An ICMP/ICMPv6 message of the given type/code (family decides which). */
export function icmpMsg(type: number, code: number, body: Buffer = Buffer.alloc(4)): L4 {
  const h = Buffer.alloc(4);
  h.writeUInt8(type, 0);
  h.writeUInt8(code, 1);
  return { proto: IPPROTO_ICMP, bytes: Buffer.concat([h, body]), csumOff: 2, pseudo: false };
}

/** Any protocol, bytes as given. */
export function raw(proto: number, payload: Buffer): L4 {
  return { proto, bytes: payload, csumOff: -1, pseudo: false };
}

// ---- IP ------------------------------------------------------------------------------------

export interface IpSpec {
  src: string;
  dst: string;
  ttl?: number;
  /** IPv4: don't fragment (default true). */
  df?: boolean;
  mf?: boolean;
  /** IPv4 fragment offset in 8-byte units. */
  fragOffset?: number;
  id?: number;
  tos?: number;
  /** IPv4 options (multiple of 4 bytes). */
  options?: Buffer;
}

export function ipSpec(src: string, dst: string, more: Partial<IpSpec> = {}): IpSpec {
  return { src, dst, ...more };
}

/** An IPv4 or IPv6 packet (family from the addresses) carrying l4, checksums filled in. */
export function ipPacket(spec: IpSpec, l4: L4): Buffer {
  const v6 = ipFamily(spec.src) === 6;
  const seg = Buffer.from(l4.bytes);
  let proto = l4.proto;
  if (v6 && proto === IPPROTO_ICMP) {
    proto = IPPROTO_ICMPV6;
    if ('echo' in l4) seg.writeUInt8(128, 0);
  } else if (!v6 && 'echo' in l4) {
    seg.writeUInt8(8, 0);
  }
  if (l4.csumOff >= 0) {
    seg.writeUInt16BE(0, l4.csumOff);
    const pseudo = l4.pseudo || v6 ? pseudoHeader(spec.src, spec.dst, proto, seg.length) : Buffer.alloc(0);
    let c = inetChecksum(pseudo, seg);
    if (proto === IPPROTO_UDP && c === 0) c = 0xffff;
    seg.writeUInt16BE(c, l4.csumOff);
  }
  if (v6) {
    const h = Buffer.alloc(40);
    h.writeUInt32BE(0x60000000 | ((spec.tos ?? 0) << 20), 0);
    h.writeUInt16BE(seg.length, 4);
    h.writeUInt8(proto, 6);
    h.writeUInt8(spec.ttl ?? 64, 7);
    ipToBuffer(spec.src).copy(h, 8);
    ipToBuffer(spec.dst).copy(h, 24);
    return Buffer.concat([h, seg]);
  }
  const opts = spec.options ?? Buffer.alloc(0);
  const h = Buffer.alloc(20 + opts.length);
  h.writeUInt8(0x40 | ((20 + opts.length) / 4), 0);
  h.writeUInt8(spec.tos ?? 0, 1);
  h.writeUInt16BE(h.length + seg.length, 2);
  h.writeUInt16BE(spec.id ?? 0x1234, 4);
  const frag = ((spec.df ?? true) ? 0x4000 : 0) | (spec.mf ? 0x2000 : 0) | (spec.fragOffset ?? 0);
  h.writeUInt16BE(frag, 6);
  h.writeUInt8(spec.ttl ?? 64, 8);
  h.writeUInt8(proto, 9);
  ipToBuffer(spec.src).copy(h, 12);
  ipToBuffer(spec.dst).copy(h, 16);
  opts.copy(h, 20);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, seg]);
}

/** Ethernet + IP + L4: the usual test input. */
export function frame(spec: IpSpec, l4: L4, e: EthSpec = {}): Buffer {
  return eth(ipPacket(spec, l4), e);
}

// ---- mpctl packets -------------------------------------------------------------------------

export interface MpPacketSpec {
  outer: IpSpec;
  /** 'udp' (default) or 'ip' (raw protocol ipProto, no UDP header). */
  carrier?: 'udp' | 'ip';
  sport?: number;
  dport?: number;
  ipProto?: number;
  hdr?: Partial<MpHdr>;
  /** The inner IP packet (no Ethernet header), or a control message's body. */
  inner: Buffer;
  /** Sign it (src/security/mac.ts): key id and tag, over the header's seq (default 0). */
  key?: PacketKey;
}

/** A session key as a test signs with it. */
export interface PacketKey {
  id: number;
  key: Buffer;
}

/** An mpctl packet as a peer portal sends it: outer IP (+ UDP) + mp_hdr + inner. */
export function mpPacket(m: MpPacketSpec, e: EthSpec = {}): Buffer {
  const payload = Buffer.concat([encodeHdr({ type: MP_T_DATA, ...m.hdr }), m.inner]);
  if (m.key) sign(payload, m.key.key, m.key.id, m.hdr?.seq ?? 0);
  const l4 =
    (m.carrier ?? 'udp') === 'udp'
      ? udp({ sport: m.sport ?? 40001, dport: m.dport ?? 5555, payload, noChecksum: ipFamily(m.outer.src) === 4 })
      : raw(m.ipProto ?? 253, payload);
  return frame(m.outer, l4, e);
}

// ---- parsing (for assertions) --------------------------------------------------------------

export interface ParsedIp {
  version: 4 | 6;
  /** Offset of the IP header in the buffer. */
  off: number;
  headerLen: number;
  /** Whole IP packet length per its header. */
  totalLen: number;
  tos: number;
  id: number;
  df: boolean;
  mf: boolean;
  fragOffset: number;
  ttl: number;
  proto: number;
  src: string;
  dst: string;
  /** IPv4 header checksum verifies (always true for IPv6). */
  headerChecksumOk: boolean;
  /** Offset of the L4 header. */
  l4: number;
}

/** Parse the IP header at `off` (default: after Ethernet). */
export function parseIp(b: Buffer, off = 14): ParsedIp {
  const version = (b[off] ?? 0) >> 4;
  if (version === 4) {
    const headerLen = ((b[off] ?? 0) & 0xf) * 4;
    const frag = b.readUInt16BE(off + 6);
    return {
      version: 4,
      off,
      headerLen,
      totalLen: b.readUInt16BE(off + 2),
      tos: b.readUInt8(off + 1),
      id: b.readUInt16BE(off + 4),
      df: (frag & 0x4000) !== 0,
      mf: (frag & 0x2000) !== 0,
      fragOffset: frag & 0x1fff,
      ttl: b.readUInt8(off + 8),
      proto: b.readUInt8(off + 9),
      src: bufferToIp(b.subarray(off + 12, off + 16)),
      dst: bufferToIp(b.subarray(off + 16, off + 20)),
      headerChecksumOk: inetChecksum(b.subarray(off, off + headerLen)) === 0,
      l4: off + headerLen,
    };
  }
  if (version === 6) {
    return {
      version: 6,
      off,
      headerLen: 40,
      totalLen: 40 + b.readUInt16BE(off + 4),
      tos: (b.readUInt32BE(off) >> 20) & 0xff,
      id: 0,
      df: true,
      mf: false,
      fragOffset: 0,
      ttl: b.readUInt8(off + 7),
      proto: b.readUInt8(off + 6),
      src: bufferToIp(b.subarray(off + 8, off + 24)),
      dst: bufferToIp(b.subarray(off + 24, off + 40)),
      headerChecksumOk: true,
      l4: off + 40,
    };
  }
  throw new Error(`no IP header at ${off} (version ${version})`);
}

/** Does the L4 checksum of the IP packet parsed as `ip` verify? (UDP checksum 0 over IPv4: yes.) */
export function l4ChecksumOk(b: Buffer, ip: ParsedIp): boolean {
  const seg = b.subarray(ip.l4, ip.off + ip.totalLen);
  if (ip.proto === IPPROTO_UDP && ip.version === 4 && seg.readUInt16BE(6) === 0) return true;
  if (ip.proto === IPPROTO_ICMP) return inetChecksum(seg) === 0;
  return inetChecksum(pseudoHeader(ip.src, ip.dst, ip.proto, seg.length), seg) === 0;
}

/** The MSS option of the TCP header at ip.l4, or null. */
export function tcpMss(b: Buffer, ip: ParsedIp): number | null {
  const doff = ((b[ip.l4 + 12] ?? 0) >> 4) * 4;
  for (let o = ip.l4 + 20; o < ip.l4 + doff; ) {
    const kind = b[o] ?? 0;
    if (kind === 0) break;
    if (kind === 1) {
      o++;
      continue;
    }
    const len = b[o + 1] ?? 0;
    if (kind === 2 && len === 4) return b.readUInt16BE(o + 2);
    if (len < 2) break;
    o += len;
  }
  return null;
}

export function ethDst(b: Buffer): string {
  return bufferToMac(b.subarray(0, 6));
}

export function ethSrc(b: Buffer): string {
  return bufferToMac(b.subarray(6, 12));
}

export function ethProto(b: Buffer): number {
  return b.readUInt16BE(12);
}
