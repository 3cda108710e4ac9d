// NH (UMAC, RFC 4418 §5; Adiantum's NH), the universal hash under the packet MAC of bpf/mp.h
// ("authentication"), and the key stream it takes, expanded from the 16-byte session key.
// bpf/nh.h computes the same sums; src/security/mac.ts finishes them with SipHash-2-4.
//
// NH(K, body): the body zero-padded to a multiple of 16 bytes; per 16-byte block i, with
// little-endian u32 words m0..m3, sum (mod 2^64) (m0 + K[4i]) * (m2 + K[4i+2]) +
// (m1 + K[4i+1]) * (m3 + K[4i+3]), the additions mod 2^32. Two passes, the second with the key
// words 4 further on (Toeplitz). The 32×32→64-bit products are split into 16-bit halves whose
// partial products add up exactly in doubles (BigInt is far slower): for bodies up to 9216
// bytes the three partial sums stay below 2^45.

import { siphash24 } from './siphash.js';

const TWO16 = 0x10000;
const TWO32 = 0x100000000;

/** The NH key stream of `words` u32 words: 8-byte word j is SipHash-2-4(key, le64(j)). */
export function nhKeyStream(key: Uint8Array, words: number): Uint32Array {
  if (words % 2 !== 0) throw new Error(`the NH key stream is whole 8-byte words, got ${words} u32 words`);
  const out = new Uint32Array(words);
  const ctr = Buffer.alloc(8);
  for (let j = 0; j < words / 2; j++) {
    ctr.writeUInt32LE(j, 0);
    const w = siphash24(key, ctr);
    out[2 * j] = w.readUInt32LE(0);
    out[2 * j + 1] = w.readUInt32LE(4);
  }
  return out;
}

/** The key stream as bytes (little-endian words), as struct mp_key.nh holds it. */
export function nhKeyBytes(k: Uint32Array): Buffer {
  const b = Buffer.alloc(k.length * 4);
  for (let i = 0; i < k.length; i++) b.writeUInt32LE(k[i]!, 4 * i);
  return b;
}

/** The sum (partial sums lo*lo, the cross terms, hi*hi: weights 1, 2^16, 2^32) as 64 bits mod
 * 2^64, little-endian, into out[at..at+8). */
function settle(out: Buffer, at: number, L: number, M: number, H: number): void {
  const ml = M % TWO16;
  const low = L + ml * TWO16;
  const lo = low % TWO32;
  const hi = (H + (M - ml) / TWO16 + (low - lo) / TWO32) % TWO32;
  out.writeUInt32LE(lo, at);
  out.writeUInt32LE(hi, at + 4);
}

const le32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

/**
 * Both NH passes over `body` under key stream `k` (at least ceil(len / 16) * 4 + 4 words): 16
 * bytes, NH(K) then NH(K + 16), each 64-bit little-endian.
 */
export function nh2(k: Uint32Array, body: Uint8Array): Buffer {
  const blocks = Math.ceil(body.length / 16);
  if (k.length < 4 * blocks + 4) throw new Error(`NH key stream of ${k.length * 4} bytes is too short for ${body.length} bytes`);
  const whole = body.length >>> 4;
  const out = Buffer.alloc(16);
  const tail = new Uint8Array(16);
  tail.set(body.subarray(16 * whole));
  for (let pass = 0; pass < 2; pass++) {
    // the partial sums are this function's locals (as module variables every update of these
    // doubles allocated a number: ~17 KB per 1.4 KB body)
    let L = 0;
    let M = 0;
    let H = 0;
    for (let i = 0; i < blocks; i++) {
      const src = i < whole ? body : tail;
      const o = i < whole ? 16 * i : 0;
      const ko = 4 * (i + pass);
      for (let half = 0; half < 2; half++) {
        // (m0 + K0) * (m2 + K2), then (m1 + K1) * (m3 + K3), in 16-bit halves
        const a = (le32(src, o + 4 * half) + k[ko + half]!) >>> 0;
        const b = (le32(src, o + 8 + 4 * half) + k[ko + 2 + half]!) >>> 0;
        const al = a & 0xffff;
        const ah = a >>> 16;
        const bl = b & 0xffff;
        const bh = b >>> 16;
        L += al * bl;
        M += ah * bl + al * bh;
        H += ah * bh;
      }
    }
    settle(out, 8 * pass, L, M, H);
  }
  return out;
}
