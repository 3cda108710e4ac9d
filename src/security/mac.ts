// The per-packet MAC of bpf/mp.h ("authentication"): tag = SipHash-2-4(key, message with the
// tag zeroed), where the message is the 24-byte mp_hdr and everything after it to the end of
// the datagram. Userland signs and checks its control messages (probes, feedback) with it; the
// BPF decap program checks the same tag (and the replay window) before a control message
// reaches the portal's socket, and for every data packet.

import { MP_HDR, MP_HDR_LEN } from '../datapath/abi.js';
import { siphash24, SIPHASH_TAG_LEN } from './siphash.js';

const TAG_OFF = MP_HDR.fields.find((f) => f.name === 'tag')!.offset;
const KEY_ID_OFF = MP_HDR.fields.find((f) => f.name === 'key_id')!.offset;
const SEQ_OFF = MP_HDR.fields.find((f) => f.name === 'seq')!.offset;
const ZERO_TAG = new Uint8Array(SIPHASH_TAG_LEN);

/** The tag of `msg` (header + body), computed as if its tag field were zero. */
export function macOf(key: Uint8Array, msg: Uint8Array): Buffer {
  if (msg.length < MP_HDR_LEN) throw new Error(`an mpctl message has at least ${MP_HDR_LEN} bytes, got ${msg.length}`);
  return siphash24(key, msg.subarray(0, TAG_OFF), ZERO_TAG, msg.subarray(TAG_OFF + SIPHASH_TAG_LEN));
}

/** Writes key id, seq and the tag into `msg` (in place) and returns it. */
export function sign(msg: Buffer, key: Uint8Array, keyId: number, seq: number): Buffer {
  msg.writeUInt8(keyId, KEY_ID_OFF);
  msg.writeUInt32BE(seq >>> 0, SEQ_OFF);
  macOf(key, msg).copy(msg, TAG_OFF);
  return msg;
}

/** Whether `msg`'s tag is the MAC of the rest under `key` (constant time in the tag). */
export function verify(msg: Uint8Array, key: Uint8Array): boolean {
  if (msg.length < MP_HDR_LEN) return false;
  const want = macOf(key, msg);
  let diff = 0;
  for (let i = 0; i < SIPHASH_TAG_LEN; i++) diff |= want[i]! ^ msg[TAG_OFF + i]!;
  return diff === 0;
}
