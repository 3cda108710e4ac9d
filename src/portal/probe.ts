// Liveness probes: the control message every link carries at least every probe interval, even
// idle. The LP sends a request on each link; the RP answers on the same link (to the address and
// port the request came from, which is also how it learns the link's NAT endpoint), so both ends
// hear every link. The request carries the LP's current estimate of the link (rate, one-way
// delay, metric), which the RP's scheduler uses for its direction.
//
//   struct mp_hdr (24, type MP_T_PROBE) | kind u8 | metric u8 | carrier u8 | pad u8 | probe_seq u32
//   | sent_ns u64 (sender's clock, echoed) | rate_bps u64 | owd_us u32 | pad u32      = 56 bytes

import { decodeHdr, encodeHdr, MP_CARRIER_IP, MP_HDR_LEN, MP_MAX_LINKS, MP_T_PROBE, MP_VERSION } from '../datapath/abi.js';

export const PROBE_LEN = MP_HDR_LEN + 32;

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
}

export function encodeProbe(p: Probe, nowUs: number): Buffer {
  const b = Buffer.alloc(PROBE_LEN);
  // key id and tag stay zero until the security issue authenticates probes
  encodeHdr({ type: MP_T_PROBE, linkId: p.linkId, tsUs: nowUs }).copy(b, 0);
  b.writeUInt8(p.reply ? 1 : 0, 24);
  b.writeUInt8(p.metric, 25);
  b.writeUInt8(p.carrier, 26);
  b.writeUInt32BE(p.probeSeq >>> 0, 28);
  b.writeBigUInt64BE(p.sentNs, 32);
  b.writeBigUInt64BE(p.rateBps, 40);
  b.writeUInt32BE(p.owdUs >>> 0, 48);
  return b;
}

/** Parses a probe; anything malformed is null (counted by the caller). */
export function decodeProbe(b: Buffer): Probe | null {
  if (b.length !== PROBE_LEN) return null;
  const h = decodeHdr(b);
  if (h.version !== MP_VERSION || h.type !== MP_T_PROBE) return null;
  const linkId = h.linkId;
  const kind = b.readUInt8(24);
  if (linkId >= MP_MAX_LINKS || kind > 1 || b.readUInt8(26) > MP_CARRIER_IP) return null;
  return {
    linkId,
    reply: kind === 1,
    metric: b.readUInt8(25),
    carrier: b.readUInt8(26),
    probeSeq: b.readUInt32BE(28),
    sentNs: b.readBigUInt64BE(32),
    rateBps: b.readBigUInt64BE(40),
    owdUs: b.readUInt32BE(48),
  };
}
