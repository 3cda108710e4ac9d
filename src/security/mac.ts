// The per-packet MAC of bpf/mp.h ("authentication"), hash-then-PRF:
//   tag = SipHash-2-4(key, hdr || le64(len(body)) || NH(K, body) || NH(K + 16, body))
// where hdr is the 24-byte mp_hdr with its tag zeroed, the body everything after it to the end
// of the datagram, and K the NH key stream expanded from the 16-byte session key
// (src/security/nh.ts). Userland signs and checks its control messages (probes, feedback) with
// it; the BPF decap program checks the same tag (and the replay window) before a control
// message reaches the portal's socket, and for every data packet.

import { MP_HDR, MP_HDR_LEN, MP_NH_KEY_WORDS, MP_NH_MAX_BODY } from '../datapath/abi.js';
import { nh2, nhKeyStream } from './nh.js';
import { siphash24, SIPHASH_TAG_LEN } from './siphash.js';

const TAG_OFF = MP_HDR.fields.find((f) => f.name === 'tag')!.offset;
const KEY_ID_OFF = MP_HDR.fields.find((f) => f.name === 'key_id')!.offset;
const SEQ_OFF = MP_HDR.fields.find((f) => f.name === 'seq')!.offset;
const ZERO_TAG = new Uint8Array(SIPHASH_TAG_LEN);

// The expansion costs ~1150 SipHash calls: the last few keys' streams are kept (a portal has at
// most a send key and two receive keys in use; tests a few more).
const CACHED_KEYS = 8;
const streams = new Map<string, Uint32Array>();

/** the last few key arrays asked for (a portal signs with its send key and checks with a
 * receive key, message after message): found by identity, no hex string per call */
const recent: { key: Uint8Array; copy: Buffer; stream: Uint32Array }[] = [];
const RECENT_KEYS = 4;

function streamOf(key: Uint8Array): Uint32Array {
  // the same array with the same bytes (a key array is not changed in place, but check)
  for (const r of recent) if (r.key === key && r.copy.equals(key)) return r.stream;
  const stream = streamById(key);
  if (recent.length >= RECENT_KEYS) recent.shift();
  recent.push({ key, copy: Buffer.from(key), stream });
  return stream;
}

function streamById(key: Uint8Array): Uint32Array {
  const id = Buffer.from(key.buffer, key.byteOffset, key.length).toString('hex');
  let k = streams.get(id);
  if (k) return k;
  k = nhKeyStream(key, MP_NH_KEY_WORDS);
  if (streams.size >= CACHED_KEYS) streams.delete(streams.keys().next().value!);
  streams.set(id, k);
  return k;
}

/** The tag of `msg` (header + body), computed as if its tag field were zero. */
export function macOf(key: Uint8Array, msg: Uint8Array): Buffer {
  if (msg.length < MP_HDR_LEN) throw new Error(`an mpctl message has at least ${MP_HDR_LEN} bytes, got ${msg.length}`);
  const body = msg.subarray(MP_HDR_LEN);
  if (body.length > MP_NH_MAX_BODY) throw new Error(`an mpctl message body has at most ${MP_NH_MAX_BODY} bytes to be authenticated, got ${body.length}`);
  const len = Buffer.alloc(8);
  len.writeUInt32LE(body.length, 0);
  return siphash24(key, msg.subarray(0, TAG_OFF), ZERO_TAG, len, nh2(streamOf(key), body));
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
  if (msg.length < MP_HDR_LEN || msg.length - MP_HDR_LEN > MP_NH_MAX_BODY) return false;
  const want = macOf(key, msg);
  let diff = 0;
  for (let i = 0; i < SIPHASH_TAG_LEN; i++) diff |= want[i]! ^ msg[TAG_OFF + i]!;
  return diff === 0;
}
