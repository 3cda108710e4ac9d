// Wire formats of the handshake messages (as WireGuard's messages.h): every layout in one place.
//
// Each message is one UDP payload (or raw-IP payload with the `ip` carrier) starting with the
// 24-byte mpctl header (src/datapath/abi.ts, bpf/mp.h), then fixed fields, big-endian like the
// header. There are no optional fields and no lengths: a message of another size is malformed.
//
// Header fields in handshake messages: ver_type = version 1 and the type below; link_id = the
// link the message travels on (a response or cookie reply goes back on the initiation's link);
// key_id = the session's key id (initiation, response), 0 in a cookie reply; flags, seq,
// link_seq, ts_us and tag are 0. The whole header is mixed into the handshake hash, so the
// AEAD tags authenticate it along with the indices.
//
// MP_T_HS_INIT (initiator → responder, LP → RP), 168 bytes:
//     0  24  mpctl header
//    24   4  sender index (initiator's, u32)
//    28  32  ephemeral public key (cleartext)
//    60  48  static public key of the initiator, ChaCha20-Poly1305 (32 + 16 tag)
//   108  28  TAI64N timestamp, ChaCha20-Poly1305 (12 + 16 tag)
//   136  16  mac1 = HMAC-SHA256(SHA-256("mac1----" ‖ responder static), bytes 0..136)[0..16]
//   152  16  mac2 = HMAC-SHA256(cookie, bytes 0..152)[0..16], or zeros without a cookie
//
// MP_T_HS_RESP (responder → initiator), 112 bytes (never larger than the initiation):
//     0  24  mpctl header
//    24   4  sender index (responder's)
//    28   4  receiver index (the initiation's sender index)
//    32  32  ephemeral public key (cleartext)
//    64  16  empty payload, ChaCha20-Poly1305 (0 + 16 tag): key confirmation
//    80  16  mac1 keyed by SHA-256("mac1----" ‖ initiator static), bytes 0..80
//    96  16  mac2 (cookie of the initiator, if it sent one; zeros: mpctl's LP never does)
//
// MP_T_COOKIE (responder under load → initiator, instead of a response), 72 bytes:
//     0  24  mpctl header
//    24   4  receiver index (the initiation's sender index)
//    28  12  random nonce
//    40  32  cookie (16), ChaCha20-Poly1305 (16 + 16 tag) with key
//            HMAC-SHA256(SHA-256("cookie--" ‖ responder static), initiation mac1) and
//            associated data initiation mac1 ‖ bytes 0..28 (cookie.ts)

import { decodeHdr, encodeHdr, MP_HDR_LEN, MP_T_COOKIE, MP_T_HS_INIT, MP_T_HS_RESP, MP_VERSION, type MpHdr } from '../datapath/abi.js';
import { hash, mac16, MAC_LEN, sameBytes } from './crypto.js';

export const TIMESTAMP_LEN = 12;
export const COOKIE_LEN = 16;
export const COOKIE_NONCE_LEN = 12;

// prettier-ignore
export const INIT = {
  type: MP_T_HS_INIT, sender: 24, ephemeral: 28, static: 60, timestamp: 108, mac1: 136, mac2: 152, size: 168,
} as const;
// prettier-ignore
export const RESP = {
  type: MP_T_HS_RESP, sender: 24, receiver: 28, ephemeral: 32, empty: 64, mac1: 80, mac2: 96, size: 112,
} as const;
// prettier-ignore
export const COOKIE = {
  type: MP_T_COOKIE, receiver: 24, nonce: 28, cookie: 40, size: 72,
} as const;

/** A handshake message's header: only the type, the link and the key id carry meaning. */
export function handshakeHdr(type: number, linkId: number, keyId: number): Buffer {
  return encodeHdr({ type, linkId, keyId });
}

/** The header of a message of `size` bytes and `type`, or why not. */
export function checkHdr(msg: Buffer, type: number, size: number): MpHdr | string {
  if (msg.length < MP_HDR_LEN) return `${msg.length} bytes, shorter than the mpctl header`;
  const h = decodeHdr(msg);
  if (h.version !== MP_VERSION) return `version ${h.version}, expected ${MP_VERSION}`;
  if (h.type !== type) return `message type ${h.type}, expected ${type}`;
  if (msg.length !== size) return `${msg.length} bytes, expected ${size}`;
  return h;
}

// ---- mac1 / mac2 ---------------------------------------------------------------------------

const MAC1_LABEL = Buffer.from('mac1----');

/** The key of mac1 on messages *to* the holder of `staticPublic`; cache it per peer. */
export function mac1Key(staticPublic: Buffer): Buffer {
  return hash(MAC1_LABEL, staticPublic);
}

/** Writes mac1 (over everything before it) into `msg` at `at`. */
export function sealMac1(msg: Buffer, at: number, key: Buffer): void {
  mac16(key, msg.subarray(0, at)).copy(msg, at);
}

export function mac1Valid(msg: Buffer, at: number, key: Buffer): boolean {
  return sameBytes(mac16(key, msg.subarray(0, at)), msg.subarray(at, at + MAC_LEN));
}

/** mac2 of a message: over everything before it, keyed by a cookie. */
export function mac2Of(msg: Buffer, at: number, cookie: Buffer): Buffer {
  return mac16(cookie, msg.subarray(0, at));
}
