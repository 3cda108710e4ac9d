// SipHash-2-4 (src/security/siphash.ts) against the reference vectors of the paper's appendix
// and an independent BigInt implementation; the packet MAC (src/security/mac.ts) on its own.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { siphash24 } from '../src/security/siphash.js';
import { macOf, sign, verify } from '../src/security/mac.js';
import { encodeHdr, MP_T_PROBE } from '../src/datapath/abi.js';

const KEY = Buffer.from([...Array(16).keys()]);
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

describe('packet MAC', () => {
  const msg = () => Buffer.concat([encodeHdr({ type: MP_T_PROBE, linkId: 3 }), Buffer.from('payload of a probe, 32 bytes....')]);

  it('signs header and body with the tag zeroed, and verifies', () => {
    const m = sign(msg(), KEY, 7, 1234);
    assert.equal(m.readUInt8(3), 7);
    assert.equal(m.readUInt32BE(4), 1234);
    const zeroed = Buffer.from(m);
    zeroed.fill(0, 16, 24);
    assert.deepEqual(m.subarray(16, 24), siphash24(KEY, zeroed));
    assert.deepEqual(macOf(KEY, m), m.subarray(16, 24));
    assert.ok(verify(m, KEY));
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
