// Feedback: what the receiver of a direction tells the sender about each link, every ~20 ms.
//
// The receiver reads its per-link counters (bpf mp_rx: bytes, packets, highest per-link
// sequence, last one-way-delay sample), turns two successive readings into one record per link
// (feedbackFromCounters) and sends all records in one control message over the links. The
// sender feeds each record to that link's congestion controller (controller.ts).
//
//   struct mp_hdr (24, type MP_T_FEEDBACK) | seq u32 | count u8 | flags u8 | pad u16
//   | count × record                                                    = 32 + 44·count bytes
//
//   record: link_id u8 | flags u8 | pad u16 | interval_us u32 | bytes u64 | packets u32
//         | max_link_seq u32 | owd_min_us u32 | owd_max_us u32 | lost u32
//         | echo_ts_us u32 | echo_delay_us u32                                    = 44 bytes
//
// Big-endian like the rest of the wire format. `seq` numbers feedback messages so a sender that
// gets the same message over two links (or late) uses it once. One-way delays are the
// receiver's clock minus the sender's timestamp, modulo 2^32 µs: only their variation means
// anything (the two clocks are not synchronised), so they are carried raw.
//
// The echo (as TCP timestamps and QUIC's ack delay) gives the sender a round-trip time per
// record without probes: echo_ts_us is the sender timestamp of the last packet received on the
// link, echo_delay_us how long the receiver held it before this record. The sender's round
// trip is then its clock now − echo_ts_us − echo_delay_us: the link's forward delay plus the
// feedback's way back, which is exactly how long a change of rate takes to show in feedback.

import { err, ok, type Result } from 'neverthrow';
import { decodeHdr, encodeHdr, MP_HDR_LEN, MP_MAX_LINKS, MP_T_FEEDBACK, MP_VERSION, type MpRx } from '../datapath/abi.js';

export const FB_HDR_LEN = 8;
export const FB_RECORD_LEN = 44;
/** A message with every link: 24 + 8 + 16 · 44 = 736 bytes. */
export const FB_MAX_LEN = MP_HDR_LEN + FB_HDR_LEN + MP_MAX_LINKS * FB_RECORD_LEN;

/** Record flag: owd_min_us / owd_max_us hold samples (at least one packet in the interval). */
export const FB_F_OWD = 1 << 0;
/** Record flag: echo_ts_us / echo_delay_us are set. */
export const FB_F_ECHO = 1 << 1;
const FB_FLAGS = FB_F_OWD | FB_F_ECHO;

/** One link's interval as the receiver saw it. */
export interface LinkFeedback {
  linkId: number;
  /** Length of the interval at the receiver, µs. */
  intervalUs: number;
  /** Outer IP bytes received in the interval (the unit of rate_bps). */
  bytes: number;
  packets: number;
  /** Highest per-link sequence seen so far (u32, wraps). */
  maxLinkSeq: number;
  /** Smallest and largest one-way-delay sample of the interval (u32 µs, raw, wraps); null
   * without a sample (no packet in the interval). */
  owdMinUs: number | null;
  owdMaxUs: number | null;
  /** Sequence numbers skipped in the interval: packets lost (or, rarely, reordered). */
  lost: number;
  /** Sender timestamp (u32 µs, the header's ts_us) of the last packet received, and µs since
   * it arrived; null without one. */
  echoTsUs: number | null;
  echoDelayUs: number | null;
}

export interface FeedbackMsg {
  /** Per-message sequence number (u32, wraps). */
  seq: number;
  records: LinkFeedback[];
}

export type FeedbackError = { kind: 'BadFeedback'; reason: string };

const bad = (reason: string): Result<never, FeedbackError> => err({ kind: 'BadFeedback', reason });

const U32 = 0x1_0000_0000;
const u32 = (n: number): number => ((n % U32) + U32) % U32;
const clampU32 = (n: number): number => Math.max(0, Math.min(U32 - 1, Math.round(n)));

// ---- encoding ------------------------------------------------------------------------------

/** The message body (what follows the mp_hdr). */
export function encodeFeedback(m: FeedbackMsg): Buffer {
  if (m.records.length > MP_MAX_LINKS) throw new Error(`at most ${MP_MAX_LINKS} feedback records, got ${m.records.length}`);
  const b = Buffer.alloc(FB_HDR_LEN + m.records.length * FB_RECORD_LEN);
  b.writeUInt32BE(u32(m.seq), 0);
  b.writeUInt8(m.records.length, 4);
  m.records.forEach((r, i) => {
    const o = FB_HDR_LEN + i * FB_RECORD_LEN;
    if (r.linkId < 0 || r.linkId >= MP_MAX_LINKS) throw new Error(`bad link id ${r.linkId}`);
    const hasOwd = r.owdMinUs !== null && r.owdMaxUs !== null;
    const hasEcho = r.echoTsUs !== null && r.echoDelayUs !== null;
    b.writeUInt8(r.linkId, o);
    b.writeUInt8((hasOwd ? FB_F_OWD : 0) | (hasEcho ? FB_F_ECHO : 0), o + 1);
    b.writeUInt32BE(clampU32(r.intervalUs), o + 4);
    b.writeBigUInt64BE(BigInt(Math.max(0, Math.round(r.bytes))), o + 8);
    b.writeUInt32BE(clampU32(r.packets), o + 16);
    b.writeUInt32BE(u32(r.maxLinkSeq), o + 20);
    b.writeUInt32BE(hasOwd ? u32(r.owdMinUs!) : 0, o + 24);
    b.writeUInt32BE(hasOwd ? u32(r.owdMaxUs!) : 0, o + 28);
    b.writeUInt32BE(clampU32(r.lost), o + 32);
    b.writeUInt32BE(hasEcho ? u32(r.echoTsUs!) : 0, o + 36);
    b.writeUInt32BE(hasEcho ? clampU32(r.echoDelayUs!) : 0, o + 40);
  });
  return b;
}

/** Parses a message body. Anything malformed is an error (the caller counts it). */
export function decodeFeedback(b: Buffer): Result<FeedbackMsg, FeedbackError> {
  if (b.length < FB_HDR_LEN) return bad(`body of ${b.length} bytes, shorter than ${FB_HDR_LEN}`);
  const count = b.readUInt8(4);
  if (count > MP_MAX_LINKS) return bad(`${count} records, more than ${MP_MAX_LINKS}`);
  if (b.length !== FB_HDR_LEN + count * FB_RECORD_LEN) return bad(`${count} records need ${FB_HDR_LEN + count * FB_RECORD_LEN} bytes, got ${b.length}`);
  const records: LinkFeedback[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) {
    const o = FB_HDR_LEN + i * FB_RECORD_LEN;
    const linkId = b.readUInt8(o);
    const flags = b.readUInt8(o + 1);
    if (linkId >= MP_MAX_LINKS) return bad(`record ${i}: link id ${linkId}`);
    if (seen.has(linkId)) return bad(`record ${i}: link ${linkId} twice`);
    if (flags & ~FB_FLAGS) return bad(`record ${i}: unknown flags 0x${flags.toString(16)}`);
    seen.add(linkId);
    const bytes = b.readBigUInt64BE(o + 8);
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) return bad(`record ${i}: ${bytes} bytes`);
    const hasOwd = (flags & FB_F_OWD) !== 0;
    const hasEcho = (flags & FB_F_ECHO) !== 0;
    records.push({
      linkId,
      intervalUs: b.readUInt32BE(o + 4),
      bytes: Number(bytes),
      packets: b.readUInt32BE(o + 16),
      maxLinkSeq: b.readUInt32BE(o + 20),
      owdMinUs: hasOwd ? b.readUInt32BE(o + 24) : null,
      owdMaxUs: hasOwd ? b.readUInt32BE(o + 28) : null,
      lost: b.readUInt32BE(o + 32),
      echoTsUs: hasEcho ? b.readUInt32BE(o + 36) : null,
      echoDelayUs: hasEcho ? b.readUInt32BE(o + 40) : null,
    });
  }
  return ok({ seq: b.readUInt32BE(0), records });
}

/** A whole control packet: mp_hdr (type MP_T_FEEDBACK, sent on `linkId` at `tsUs`) + body, key
 * id and tag zero: the portal's auth signs it before it goes out (README "Running a bond"). */
export function encodeFeedbackPacket(m: FeedbackMsg, linkId: number, tsUs: number): Buffer {
  return Buffer.concat([encodeHdr({ type: MP_T_FEEDBACK, linkId, tsUs }), encodeFeedback(m)]);
}

export function decodeFeedbackPacket(b: Buffer): Result<{ linkId: number; msg: FeedbackMsg }, FeedbackError> {
  if (b.length < MP_HDR_LEN) return bad(`packet of ${b.length} bytes`);
  const h = decodeHdr(b);
  if (h.version !== MP_VERSION || h.type !== MP_T_FEEDBACK) return bad(`version ${h.version} type ${h.type}`);
  return decodeFeedback(b.subarray(MP_HDR_LEN)).map((msg) => ({ linkId: h.linkId, msg }));
}

/** Is `a` newer than `b` (u32 sequence numbers, RFC 1982)? For deduplicating messages. */
export function seqNewer(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

// ---- from receiver counters ------------------------------------------------------------------

/** One reading of mp_rx[link] (abi.MpRx) and when it was taken, in µs of the receiver's
 * monotonic clock: the clock of bpf_ktime_get_ns() (process.hrtime in Node on Linux). If the
 * data path ever tracks the interval's smallest and largest delay sample (reset by the reader),
 * owdMinUs/owdMaxUs carry them; otherwise the last sample stands for both. */
export interface RxSnapshot extends Pick<MpRx, 'lastRxNs' | 'maxLinkSeq' | 'lastOwdUs' | 'packets' | 'bytes'> {
  linkId: number;
  atUs: number;
  owdMinUs?: number;
  owdMaxUs?: number;
}

/**
 * The record for the interval between two readings of one link's counters, `cur` taken at
 * `nowUs`. Losses are the per-link sequence numbers the interval skipped:
 * (max_link_seq advance, modulo 2^32) − packets received; negative (reordering, duplicates
 * already counted) counts as 0. Before the first packet there is no baseline: no losses.
 */
export function feedbackFromCounters(prev: RxSnapshot, cur: Omit<RxSnapshot, 'atUs'>, nowUs: number): LinkFeedback {
  const packets = cur.packets >= prev.packets ? Number(cur.packets - prev.packets) : Number(cur.packets); // reset: counts since
  const bytes = cur.bytes >= prev.bytes ? Number(cur.bytes - prev.bytes) : Number(cur.bytes);
  let lost = 0;
  if (packets > 0 && prev.packets > 0n && cur.packets >= prev.packets) {
    const advance = (cur.maxLinkSeq - prev.maxLinkSeq) | 0; // s32: wraps at 2^32
    lost = Math.max(0, advance - packets);
  }
  const last = cur.lastOwdUs >>> 0;
  // decap: last_owd_us = (u32)(now_ns / 1000) − ts_us, so the last packet's ts_us is:
  const rxUs = Number(cur.lastRxNs / 1000n);
  const echo = packets > 0 && cur.lastRxNs > 0n;
  return {
    linkId: cur.linkId,
    intervalUs: Math.max(0, Math.round(nowUs - prev.atUs)),
    bytes,
    packets,
    maxLinkSeq: cur.maxLinkSeq >>> 0,
    owdMinUs: packets > 0 ? (cur.owdMinUs ?? last) >>> 0 : null,
    owdMaxUs: packets > 0 ? (cur.owdMaxUs ?? last) >>> 0 : null,
    lost,
    echoTsUs: echo ? u32(rxUs - last) : null,
    echoDelayUs: echo ? Math.max(0, Math.round(nowUs - rxUs)) : null,
  };
}

/** A reading stamped with the time it was taken: the `prev` of the next interval. */
export function snapshotAt(cur: Omit<RxSnapshot, 'atUs'>, nowUs: number): RxSnapshot {
  return { ...cur, atUs: nowUs };
}
