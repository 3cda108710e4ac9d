// Liveness probes: the control message every link carries at least every probe interval, even
// idle. The LP sends a request on each link; the RP answers on the same link (to the address and
// port the request came from, which is also how it learns the link's NAT endpoint), so both ends
// hear every link. The request carries the LP's current estimate of the link (rate, one-way
// delay, metric), which the RP's scheduler uses for its direction, and, on a metered link, how
// many bytes the RP may still send on it this period (budget.ts).
//
//   struct mp_hdr (24, type MP_T_PROBE) | struct mp_probe (32)                      = 56 bytes
//   mp_probe: kind u8 | metric u8 | carrier u8 | budget_flags u8 | probe_seq u32
//           | sent_ns u64 (sender's clock, echoed) | rate_bps u64 | owd_us u32 | budget_kib u32
//
// The layout is bpf/mp.h's struct mp_probe (abi.MP_PROBE, checked against BTF). budget_flags and
// budget_kib were padding before budgets were advertised: an older LP sends zeros there (no
// budget), an older RP ignores them.

import { decodeHdr, encodeHdr, MP_CARRIER_IP, MP_HDR_LEN, MP_MAX_LINKS, MP_PROBE, MP_PROBE_F_BUDGET, MP_PROBE_LEN, MP_T_PROBE, MP_VERSION, offsetOf } from '../datapath/abi.js';

export const PROBE_LEN = MP_PROBE_LEN;

const KIB = 1024;
const MAX_KIB = 0xffff_ffff;

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
}

const off = (n: string): number => MP_HDR_LEN + offsetOf(MP_PROBE, n);

/** An allowance as it travels: whole KiB, rounded down (never more than the LP allows),
 * saturating at 2^32 − 1 KiB (4 TiB: re-advertised every probe long before it matters). */
export function allowanceKib(bytes: number): number {
  return Math.min(MAX_KIB, Math.max(0, Math.floor(bytes / KIB)));
}

export function encodeProbe(p: Probe, nowUs: number): Buffer {
  const b = Buffer.alloc(PROBE_LEN);
  encodeHdr({ type: MP_T_PROBE, linkId: p.linkId, tsUs: nowUs }).copy(b, 0);
  const budget = !p.reply && p.budgetBytes !== undefined && p.budgetBytes !== null;
  b.writeUInt8(p.reply ? 1 : 0, off('kind'));
  b.writeUInt8(p.metric, off('metric'));
  b.writeUInt8(p.carrier, off('carrier'));
  b.writeUInt8(budget ? MP_PROBE_F_BUDGET : 0, off('budget_flags'));
  b.writeUInt32BE(p.probeSeq >>> 0, off('probe_seq'));
  b.writeBigUInt64BE(p.sentNs, off('sent_ns'));
  b.writeBigUInt64BE(p.rateBps, off('rate_bps'));
  b.writeUInt32BE(p.owdUs >>> 0, off('owd_us'));
  b.writeUInt32BE(budget ? allowanceKib(p.budgetBytes!) : 0, off('budget_kib'));
  return b;
}

/** Parses a probe; anything malformed is null (counted by the caller). Unknown budget flags
 * are malformed: a later format must not be read as this one. */
export function decodeProbe(b: Buffer): Probe | null {
  if (b.length !== PROBE_LEN) return null;
  const h = decodeHdr(b);
  if (h.version !== MP_VERSION || h.type !== MP_T_PROBE) return null;
  const linkId = h.linkId;
  const kind = b.readUInt8(off('kind'));
  const flags = b.readUInt8(off('budget_flags'));
  if (linkId >= MP_MAX_LINKS || kind > 1 || b.readUInt8(off('carrier')) > MP_CARRIER_IP || flags & ~MP_PROBE_F_BUDGET) return null;
  return {
    linkId,
    reply: kind === 1,
    metric: b.readUInt8(off('metric')),
    carrier: b.readUInt8(off('carrier')),
    probeSeq: b.readUInt32BE(off('probe_seq')),
    sentNs: b.readBigUInt64BE(off('sent_ns')),
    rateBps: b.readBigUInt64BE(off('rate_bps')),
    owdUs: b.readUInt32BE(off('owd_us')),
    budgetBytes: kind === 0 && flags & MP_PROBE_F_BUDGET ? b.readUInt32BE(off('budget_kib')) * KIB : null,
  };
}
