// Probes (probe v2, bpf/mp.h "struct mp_probe"): the control message every link carries at
// least every probe interval, even idle. One design serves liveness, path MTU discovery and
// budgets. A request (kind 0) is answered on the same link, to the address and port it came from
// (which is also how the RP learns the link's NAT endpoint), so both ends hear every link. The
// LP's request carries its estimate of the link (rate, one-way delay, metric), which the RP's
// scheduler starts from, its confirmed path MTUs (pmtu_down: what reaches the LP; pmtu_up: what
// reaches the RP), admin-down, and, on a metered link, how many bytes the RP may still send on it
// this period (budget.ts). A reply echoes probe_seq, sent_ns and reply_len and says how long the
// request was when it arrived (req_len).
//
//   struct mp_hdr (24, type MP_T_PROBE) | struct mp_probe (40) | zero padding   >= 64 bytes
//   mp_probe: kind u8 | metric u8 | carrier u8 | flags u8 | probe_seq u32 | sent_ns u64
//           | rate_bps u64 | owd_us u32 | budget_kib u32
//           | reply_len u16 | req_len u16 | pmtu_down u16 | pmtu_up u16
//
// Padding makes a probe as large as the outer size under test (RFC 8899's probe packets); it is
// covered by the MAC and must be zero. reply_len asks the peer to pad its reply to that outer IP
// length, which tests the other direction with a small request.

import { decodeHdr, encodeHdr, MP_CARRIER_IP, MP_HDR_LEN, MP_MAX_LINKS, MP_NH_MAX_BODY, MP_PROBE, MP_PROBE_F_ADMIN_DOWN, MP_PROBE_F_BUDGET, MP_PROBE_F_PMTU, MP_PROBE_F_TRAIN, MP_PROBE_F_UNRATED, MP_PROBE_LEN, MP_T_PROBE, MP_VERSION, offsetOf } from '../datapath/abi.js';

/** The shortest probe message (no padding). */
export const PROBE_LEN = MP_PROBE_LEN;
/** The longest probe message accepted (jumbo frames: 9216-byte bodies carry a tag, mp.h). */
export const PROBE_MAX_LEN = MP_NH_MAX_BODY + MP_HDR_LEN;

const KIB = 1024;
const MAX_KIB = 0xffff_ffff;
const KNOWN_FLAGS = MP_PROBE_F_BUDGET | MP_PROBE_F_ADMIN_DOWN | MP_PROBE_F_PMTU | MP_PROBE_F_TRAIN | MP_PROBE_F_UNRATED;

export interface Probe {
  linkId: number;
  reply: boolean;
  metric: number;
  /** the link's carrier (MP_CARRIER_*): the RP answers data on the same one */
  carrier: number;
  probeSeq: number;
  sentNs: bigint;
  rateBps: bigint;
  owdUs: number;
  /** LP requests on a metered link: bytes the RP may still send on it this period (a multiple
   * of 1 KiB, rounded down on the wire); null: no budget. Replies carry null. */
  budgetBytes?: number | null;
  /** request: the operator took the link out (MP_PROBE_F_ADMIN_DOWN) */
  adminDown?: boolean;
  /** a size probe (MP_PROBE_F_PMTU): its loss is not a sign of a dead link */
  pmtuProbe?: boolean;
  /** one packet of a capacity train (MP_PROBE_F_TRAIN, train.ts): not liveness; echoed */
  train?: boolean;
  /** LP request: its config names no rate for the link (MP_PROBE_F_UNRATED): rate_bps is a default */
  unrated?: boolean;
  /** request: pad the reply to this outer IP length (0 = unpadded); reply: echoed */
  replyLen?: number;
  /** reply: the outer IP length of the request as it arrived */
  reqLen?: number;
  /** request: confirmed outer path MTU toward the sender / from the sender (0 = unknown) */
  pmtuDown?: number;
  pmtuUp?: number;
  /** decoded: the whole message's length, padding included */
  len?: number;
  /** decoded: the sender's clock (mp_hdr.ts_us, µs, u32): in a reply built by the data path,
   * when the request arrived there (a capacity train's dispersion) */
  tsUs?: number;
  /** train reply (rate_bps on the wire): outer bytes of data and parity the link had delivered
   * to the answering portal when the request arrived (mp_rx.bytes; a u64 that wraps) */
  rxBytes?: bigint;
}

const off = (n: string): number => MP_HDR_LEN + offsetOf(MP_PROBE, n);

/** An allowance as it travels: whole KiB, rounded down (never more than the LP allows),
 * saturating at 2^32 − 1 KiB (4 TiB: re-advertised every probe long before it matters). */
export function allowanceKib(bytes: number): number {
  return Math.min(MAX_KIB, Math.max(0, Math.floor(bytes / KIB)));
}

/** Encodes a probe message, zero-padded to `msgLen` bytes when that is longer than PROBE_LEN.
 * A reply carries only the echoed fields (probe_seq, sent_ns, reply_len), req_len and carrier. */
export function encodeProbe(p: Probe, nowUs: number, msgLen: number = PROBE_LEN): Buffer {
  const b = Buffer.alloc(Math.min(PROBE_MAX_LEN, Math.max(PROBE_LEN, msgLen)));
  encodeHdr({ type: MP_T_PROBE, linkId: p.linkId, tsUs: nowUs }).copy(b, 0);
  const req = !p.reply;
  const budget = req && p.budgetBytes !== undefined && p.budgetBytes !== null;
  const flags = (budget ? MP_PROBE_F_BUDGET : 0) | (req && p.adminDown ? MP_PROBE_F_ADMIN_DOWN : 0) | (p.pmtuProbe ? MP_PROBE_F_PMTU : 0) | (p.train ? MP_PROBE_F_TRAIN : 0) | (req && p.unrated ? MP_PROBE_F_UNRATED : 0);
  b.writeUInt8(p.reply ? 1 : 0, off('kind'));
  b.writeUInt8(req ? p.metric : 0, off('metric'));
  b.writeUInt8(p.carrier, off('carrier'));
  b.writeUInt8(flags, off('flags'));
  b.writeUInt32BE(p.probeSeq >>> 0, off('probe_seq'));
  b.writeBigUInt64BE(p.sentNs, off('sent_ns'));
  b.writeBigUInt64BE(req ? p.rateBps : p.train ? BigInt.asUintN(64, p.rxBytes ?? 0n) : 0n, off('rate_bps'));
  b.writeUInt32BE(req ? p.owdUs >>> 0 : 0, off('owd_us'));
  b.writeUInt32BE(budget ? allowanceKib(p.budgetBytes!) : 0, off('budget_kib'));
  b.writeUInt16BE(p.replyLen ?? 0, off('reply_len'));
  b.writeUInt16BE(req ? 0 : (p.reqLen ?? 0), off('req_len'));
  b.writeUInt16BE(req ? (p.pmtuDown ?? 0) : 0, off('pmtu_down'));
  b.writeUInt16BE(req ? (p.pmtuUp ?? 0) : 0, off('pmtu_up'));
  return b;
}

/** Parses a probe; anything malformed is null (counted by the caller). Unknown budget flags
 * are malformed: a later format must not be read as this one. */
export function decodeProbe(b: Buffer): Probe | null {
  if (b.length < PROBE_LEN || b.length > PROBE_MAX_LEN) return null;
  const h = decodeHdr(b);
  if (h.version !== MP_VERSION || h.type !== MP_T_PROBE) return null;
  const linkId = h.linkId;
  const kind = b.readUInt8(off('kind'));
  const flags = b.readUInt8(off('flags'));
  if (linkId >= MP_MAX_LINKS || kind > 1 || b.readUInt8(off('carrier')) > MP_CARRIER_IP || flags & ~KNOWN_FLAGS) return null;
  for (let i = PROBE_LEN; i < b.length; i++) if (b[i] !== 0) return null; // padding is zero
  const req = kind === 0;
  return {
    linkId,
    reply: !req,
    metric: b.readUInt8(off('metric')),
    carrier: b.readUInt8(off('carrier')),
    probeSeq: b.readUInt32BE(off('probe_seq')),
    sentNs: b.readBigUInt64BE(off('sent_ns')),
    rateBps: b.readBigUInt64BE(off('rate_bps')),
    owdUs: b.readUInt32BE(off('owd_us')),
    budgetBytes: req && flags & MP_PROBE_F_BUDGET ? b.readUInt32BE(off('budget_kib')) * KIB : null,
    adminDown: req && (flags & MP_PROBE_F_ADMIN_DOWN) !== 0,
    pmtuProbe: (flags & MP_PROBE_F_PMTU) !== 0,
    train: (flags & MP_PROBE_F_TRAIN) !== 0,
    unrated: req && (flags & MP_PROBE_F_UNRATED) !== 0,
    replyLen: b.readUInt16BE(off('reply_len')),
    reqLen: b.readUInt16BE(off('req_len')),
    pmtuDown: b.readUInt16BE(off('pmtu_down')),
    pmtuUp: b.readUInt16BE(off('pmtu_up')),
    len: b.length,
    tsUs: h.tsUs,
    ...(!req && flags & MP_PROBE_F_TRAIN ? { rxBytes: b.readBigUInt64BE(off('rate_bps')) } : {}),
  };
}

/** Outer bytes in front of a probe message sent through a portal's UDP socket: IP and UDP. */
export function udpOverhead(family: 4 | 6): number {
  return (family === 4 ? 20 : 40) + 8;
}

/** The answer to request `p` that arrived in a datagram with `overhead` outer bytes in front:
 * echoes what a reply echoes, says how long the request was, and is padded so that its outer IP
 * packet is reply_len long (never shorter than an unpadded reply). */
export function answer(p: Probe, overhead: number, nowUs: number): Buffer {
  const reqLen = Math.min(0xffff, (p.len ?? PROBE_LEN) + overhead);
  const r: Probe = { ...p, reply: true, reqLen, budgetBytes: null, adminDown: false, unrated: false };
  return encodeProbe(r, nowUs, (p.replyLen ?? 0) - overhead);
}
