// The symmetric primitives of the handshake and the cookie, all from node:crypto: SHA-256,
// HMAC-SHA256 (truncated to 16 bytes where WireGuard uses keyed BLAKE2s-128), HKDF-SHA256 and
// ChaCha20-Poly1305 with a 16-byte tag.

import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

export const AEAD_TAG_LEN = 16;
export const MAC_LEN = 16;

export function hash(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC-SHA256 truncated to 16 bytes. */
export function mac16(key: Buffer, data: Buffer): Buffer {
  return hmac(key, data).subarray(0, MAC_LEN);
}

/** Constant-time comparison of byte strings. */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * HKDF-SHA256 with `salt` as the HMAC key of the extract step: with an empty `info` this is
 * Noise's HKDF(chaining_key, input) (RFC 5869 extract-then-expand with chaining_key as salt).
 */
export function hkdf(salt: Buffer, ikm: Buffer, bytes: number, info = ''): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, bytes));
}

/** ChaCha20-Poly1305: ciphertext ‖ 16-byte tag. */
export function seal(key: Buffer, nonce: Buffer, plaintext: Buffer, ad: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LEN });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([body, c.getAuthTag()]);
}

/** The plaintext of `sealed` (ciphertext ‖ tag), or null when the tag does not verify. */
export function open(key: Buffer, nonce: Buffer, sealed: Buffer, ad: Buffer): Buffer | null {
  if (sealed.length < AEAD_TAG_LEN) return null;
  const body = sealed.subarray(0, sealed.length - AEAD_TAG_LEN);
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LEN });
  d.setAAD(ad, { plaintextLength: body.length });
  d.setAuthTag(sealed.subarray(sealed.length - AEAD_TAG_LEN));
  const out = d.update(body);
  try {
    d.final();
  } catch {
    return null;
  }
  return out;
}
