// SipHash-2-4 (src/security/siphash.ts) against the reference vectors of the paper's appendix
// and an independent BigInt implementation; NH (src/security/nh.ts) and the packet MAC
// (src/security/mac.ts) against a BigInt transcription of bpf/mp.h's definition. The BPF side
// computes the same tags: test/datapath.test.ts (encap tags equal mac.ts's, decap accepts them).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { siphash24 } from '../src/security/siphash.js';
import { macOf, sign, verify } from '../src/security/mac.js';
import { nh2, nhKeyStream } from '../src/security/nh.js';
import { decodeKey, encodeHdr, encodeKey, MP_KEY, MP_NH_KEY_WORDS, MP_NH_MAX_BODY, MP_T_PROBE } from '../src/datapath/abi.js';

const KEY = Buffer.from([...Array(16).keys()]);
const PINNED = ['292d8d13a9feef4c', '830598038698ca3d', '12aef3d65b889c8f']; // mac.ts tags, bodies of 0, 1, 1400 bytes
const seqBytes = (n: number) => Buffer.from([...Array(n).keys()]);

const M = (1n << 64n) - 1n;
const rl = (x: bigint, n: bigint) => ((x << n) | (x >> (64n - n))) & M;
function reference(k: Buffer, m: Buffer): Buffer {
  const k0 = k.readBigUInt64LE(0);
  const k1 = k.readBigUInt64LE(8);
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & M; v1 = rl(v1, 13n); v1 ^= v0; v0 = rl(v0, 32n);
    v2 = (v2 + v3) & M; v3 = rl(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & M; v3 = rl(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & M; v1 = rl(v1, 17n); v1 ^= v2; v2 = rl(v2, 32n);
  };
  const padded = Buffer.alloc(Math.floor(m.length / 8) * 8 + 8);
  m.copy(padded);
  padded[padded.length - 1] = m.length & 0xff;
  for (let i = 0; i < padded.length; i += 8) {
    const w = padded.readBigUInt64LE(i);
    v3 ^= w; round(); round(); v0 ^= w;
  }
  v2 ^= 0xffn;
  round(); round(); round(); round();
  const o = Buffer.alloc(8);
  o.writeBigUInt64LE(v0 ^ v1 ^ v2 ^ v3);
  return o;
}

describe('siphash24', () => {
  it('matches the reference vectors (key 00..0f, message 00..n-1)', () => {
    // the paper's vectors, as the reference implementation prints them (little-endian bytes)
    assert.equal(siphash24(KEY, seqBytes(0)).toString('hex'), '310e0edd47db6f72');
    assert.equal(siphash24(KEY, seqBytes(1)).toString('hex'), 'fd67dc93c539f874');
    assert.equal(siphash24(KEY, seqBytes(8)).toString('hex'), '6224939a79f5f593');
    assert.equal(siphash24(KEY, seqBytes(15)).toString('hex'), 'e545be4961ca29a1');
    assert.equal(siphash24(KEY, seqBytes(63)).toString('hex'), '724506eb4c328a95');
  });

  it('equals an independent BigInt implementation for 0..600 bytes, however the input is split', () => {
    for (let n = 0; n <= 600; n += n < 40 ? 1 : 37) {
      const m = Buffer.from(Array.from({ length: n }, (_, i) => (i * 131 + n) & 0xff));
      const want = reference(KEY, m).toString('hex');
      assert.equal(siphash24(KEY, m).toString('hex'), want, `length ${n}`);
      assert.equal(siphash24(KEY, m.subarray(0, n >> 1), m.subarray(n >> 1)).toString('hex'), want, `length ${n} split`);
    }
  });

  it('refuses a key that is not 16 bytes', () => {
    assert.throws(() => siphash24(Buffer.alloc(15), Buffer.alloc(1)), /16 bytes/);
  });
});

// bpf/mp.h's definition, word for word in BigInt
const M32 = (1n << 32n) - 1n;
function refKeyStream(k: Buffer, words: number): bigint[] {
  const out: bigint[] = [];
  for (let j = 0; j < words / 2; j++) {
    const w = reference(k, Buffer.from(new BigUint64Array([BigInt(j)]).buffer)).readBigUInt64LE(0);
    out.push(w & M32, w >> 32n);
  }
  return out;
}
function refNh(K: bigint[], body: Buffer, shift: number): bigint {
  const padded = Buffer.alloc(Math.ceil(body.length / 16) * 16);
  body.copy(padded);
  let acc = 0n;
  for (let i = 0; i < padded.length / 16; i++) {
    const m = [0, 1, 2, 3].map((j) => BigInt(padded.readUInt32LE(16 * i + 4 * j)));
    const k = [0, 1, 2, 3].map((j) => K[4 * i + shift + j]!);
    const w = (j: number) => (m[j]! + k[j]!) & M32;
    acc = (acc + w(0) * w(2) + w(1) * w(3)) & M;
  }
  return acc;
}
const refKs = refKeyStream(KEY, MP_NH_KEY_WORDS);
function refMac(msg: Buffer): Buffer {
  const body = msg.subarray(24);
  const prf = Buffer.alloc(48);
  msg.copy(prf, 0, 0, 16);
  prf.writeBigUInt64LE(BigInt(body.length), 24);
  prf.writeBigUInt64LE(refNh(refKs, body, 0), 32);
  prf.writeBigUInt64LE(refNh(refKs, body, 4), 40);
  return reference(KEY, prf);
}

describe('NH', () => {
  it('key stream: 8-byte word j is SipHash-2-4(key, le64(j))', () => {
    const ks = nhKeyStream(KEY, MP_NH_KEY_WORDS);
    assert.deepEqual([...ks].map(BigInt), refKs);
    assert.equal(ks.length * 4, MP_NH_MAX_BODY + 16);
  });

  it('both passes equal the BigInt definition for bodies of 0..2000 bytes, all-ones words included', () => {
    const ks = nhKeyStream(KEY, MP_NH_KEY_WORDS);
    for (let n = 0; n <= 2000; n += n < 100 ? 1 : 13) {
      for (const fill of [(i: number) => (i * 167 + n) & 0xff, () => 0xff]) {
        const body = Buffer.from(Array.from({ length: n }, (_, i) => fill(i)));
        const got = nh2(ks, body);
        assert.equal(got.readBigUInt64LE(0), refNh(refKs, body, 0), `NH(K), ${n} bytes`);
        assert.equal(got.readBigUInt64LE(8), refNh(refKs, body, 4), `NH(K + 16), ${n} bytes`);
      }
    }
    const longest = Buffer.alloc(MP_NH_MAX_BODY, 0xff);
    const got = nh2(ks, longest);
    assert.equal(got.readBigUInt64LE(0), refNh(refKs, longest, 0), 'longest body, pass 1 (no precision lost)');
    assert.equal(got.readBigUInt64LE(8), refNh(refKs, longest, 4), 'longest body, pass 2');
  });

  it('refuses a key stream too short for the body', () => {
    assert.throws(() => nh2(new Uint32Array(8), Buffer.alloc(17)), /too short/);
  });
});

describe('packet MAC', () => {
  const msg = () => Buffer.concat([encodeHdr({ type: MP_T_PROBE, linkId: 3 }), Buffer.from('payload of a probe, 32 bytes....')]);

  it('signs header and body with the tag zeroed, and verifies', () => {
    const m = sign(msg(), KEY, 7, 1234);
    assert.equal(m.readUInt8(3), 7);
    assert.equal(m.readUInt32BE(4), 1234);
    assert.deepEqual(m.subarray(16, 24), refMac(m));
    assert.deepEqual(macOf(KEY, m), m.subarray(16, 24));
    assert.ok(verify(m, KEY));
  });

  it('equals the definition for bodies of 0..2000 bytes (pinned vectors at 0, 1, 1400)', () => {
    const hdr = encodeHdr({ type: MP_T_PROBE, linkId: 1, keyId: 1, seq: 9 });
    const tags = new Map<number, string>();
    for (const n of [...Array.from({ length: 64 }, (_, i) => i), ...Array.from({ length: 66 }, (_, i) => 64 + 29 * i), 1400, 2000]) {
      const m = Buffer.concat([hdr, Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff))]);
      assert.deepEqual(macOf(KEY, m), refMac(m), `${n}-byte body`);
      tags.set(n, macOf(KEY, m).toString('hex'));
    }
    assert.deepEqual([tags.get(0), tags.get(1), tags.get(1400)], PINNED);
  });

  it('a body longer than MP_NH_MAX_BODY has no tag', () => {
    const m = Buffer.concat([encodeHdr({ type: MP_T_PROBE }), Buffer.alloc(MP_NH_MAX_BODY + 1)]);
    assert.throws(() => macOf(KEY, m), /at most 9216 bytes/);
    assert.equal(verify(m, KEY), false);
    assert.doesNotThrow(() => macOf(KEY, m.subarray(0, m.length - 1)));
  });

  it('encodeKey expands the NH key stream into mp_key.nh; an empty slot stays zero', () => {
    const nhOff = MP_KEY.fields.find((f) => f.name === 'nh')!.offset;
    const b = encodeKey({ key: KEY, expiresNs: 5n, id: 1, valid: true });
    assert.equal(b.length, MP_KEY.size);
    assert.deepEqual(new Uint32Array(b.buffer.slice(b.byteOffset + nhOff, b.byteOffset + b.length)), nhKeyStream(KEY, MP_NH_KEY_WORDS));
    assert.deepEqual(decodeKey(b).key, KEY);
    const empty = encodeKey({ key: Buffer.alloc(16), expiresNs: 0n, id: 0, valid: false });
    assert.ok(empty.every((x) => x === 0));
  });

  it('fails for any flipped bit, another key, or a short message', () => {
    const m = sign(msg(), KEY, 7, 1);
    for (let bit = 0; bit < m.length * 8; bit++) {
      const x = Buffer.from(m);
      x[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(verify(x, KEY), false, `bit ${bit}`);
    }
    assert.equal(verify(m, Buffer.alloc(16, 1)), false);
    assert.equal(verify(m.subarray(0, 20), KEY), false);
  });
});
