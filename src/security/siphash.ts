// SipHash-2-4 (Aumasson & Bernstein), the MAC of every mpctl data and control message.
// The BPF side (bpf/siphash.h) computes the same function; this one signs and verifies the
// control messages userland sends (probes, feedback) and builds the packets of the tests.
//
// 64-bit lanes are kept as two unsigned 32-bit halves in plain numbers (BigInt is ~20× slower,
// and the fuzz test signs many packets). Key: 16 bytes, k0 = bytes 0..7 and k1 = bytes 8..15
// read little-endian. Output: the 64-bit result as 8 bytes little-endian, as the reference
// implementation writes it.

export const SIPHASH_KEY_LEN = 16;
export const SIPHASH_TAG_LEN = 8;

// state v0..v3 as [hi, lo] pairs in a flat array: v0h v0l v1h v1l v2h v2l v3h v3l
type State = Uint32Array;

function add(s: State, a: number, b: number): void {
  // s[a] += s[b] (64-bit)
  const lo = s[a + 1]! + s[b + 1]!;
  s[a] = (s[a]! + s[b]! + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  s[a + 1] = lo >>> 0;
}

function rotl(s: State, a: number, n: number): void {
  let h = s[a]!;
  let l = s[a + 1]!;
  if (n >= 32) {
    [h, l] = [l, h];
    n -= 32;
  }
  if (n === 0) {
    s[a] = h;
    s[a + 1] = l;
    return;
  }
  s[a] = ((h << n) | (l >>> (32 - n))) >>> 0;
  s[a + 1] = ((l << n) | (h >>> (32 - n))) >>> 0;
}

function xor(s: State, a: number, b: number): void {
  s[a] = (s[a]! ^ s[b]!) >>> 0;
  s[a + 1] = (s[a + 1]! ^ s[b + 1]!) >>> 0;
}

const V0 = 0;
const V1 = 2;
const V2 = 4;
const V3 = 6;

function round(s: State): void {
  add(s, V0, V1);
  rotl(s, V1, 13);
  xor(s, V1, V0);
  rotl(s, V0, 32);
  add(s, V2, V3);
  rotl(s, V3, 16);
  xor(s, V3, V2);
  add(s, V0, V3);
  rotl(s, V3, 21);
  xor(s, V3, V0);
  add(s, V2, V1);
  rotl(s, V1, 17);
  xor(s, V1, V2);
  rotl(s, V2, 32);
}

function absorb(s: State, hi: number, lo: number): void {
  s[V3] = (s[V3]! ^ hi) >>> 0;
  s[V3 + 1] = (s[V3 + 1]! ^ lo) >>> 0;
  round(s);
  round(s);
  s[V0] = (s[V0]! ^ hi) >>> 0;
  s[V0 + 1] = (s[V0 + 1]! ^ lo) >>> 0;
}

/** SipHash-2-4 of `parts` (concatenated) under a 16-byte key: 8 bytes, little-endian. */
export function siphash24(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  if (key.length !== SIPHASH_KEY_LEN) throw new Error(`siphash key must be ${SIPHASH_KEY_LEN} bytes, got ${key.length}`);
  const k = Buffer.from(key.buffer, key.byteOffset, key.length);
  const k0h = k.readUInt32LE(4);
  const k0l = k.readUInt32LE(0);
  const k1h = k.readUInt32LE(12);
  const k1l = k.readUInt32LE(8);
  // "somepseudorandomlygeneratedbytes"
  const s: State = new Uint32Array([
    (0x736f6d65 ^ k0h) >>> 0, (0x70736575 ^ k0l) >>> 0,
    (0x646f7261 ^ k1h) >>> 0, (0x6e646f6d ^ k1l) >>> 0,
    (0x6c796765 ^ k0h) >>> 0, (0x6e657261 ^ k0l) >>> 0,
    (0x74656462 ^ k1h) >>> 0, (0x79746573 ^ k1l) >>> 0,
  ]);
  const total = parts.reduce((n, p) => n + p.length, 0);
  const word = new Uint8Array(8);
  let fill = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      word[fill++] = p[i]!;
      if (fill === 8) {
        absorb(s, (word[4]! | (word[5]! << 8) | (word[6]! << 16) | (word[7]! << 24)) >>> 0, (word[0]! | (word[1]! << 8) | (word[2]! << 16) | (word[3]! << 24)) >>> 0);
        fill = 0;
      }
    }
  }
  // last word: the remaining bytes and the length's low byte in the top byte
  for (let i = fill; i < 7; i++) word[i] = 0;
  word[7] = total & 0xff;
  absorb(s, (word[4]! | (word[5]! << 8) | (word[6]! << 16) | (word[7]! << 24)) >>> 0, (word[0]! | (word[1]! << 8) | (word[2]! << 16) | (word[3]! << 24)) >>> 0);
  s[V2 + 1] = (s[V2 + 1]! ^ 0xff) >>> 0;
  round(s);
  round(s);
  round(s);
  round(s);
  const out = Buffer.alloc(8);
  out.writeUInt32LE((s[V0 + 1]! ^ s[V1 + 1]! ^ s[V2 + 1]! ^ s[V3 + 1]!) >>> 0, 0);
  out.writeUInt32LE((s[V0]! ^ s[V1]! ^ s[V2]! ^ s[V3]!) >>> 0, 4);
  return out;
}
