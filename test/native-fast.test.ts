// The native fast paths the portals' control loops use (issue 11): libmpctl's mp_mac against
// the TypeScript MAC (src/security/mac.ts, itself checked against bpf/mp.h's definition in
// siphash.test.ts) for every body length a control message has and then some, and the batch
// read of an array map (mp_map_lookup_array) against one lookup per key, on the per-CPU
// mp_link_stats of build/bpf/mpctl.o. Run as root (the map test loads the object).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { bpfClose, bpfOpenLoad, mac, mapFd, mapLookup, mapLookupArray, mapUpdate, numPossibleCpus, type ObjHandle } from '../src/native/libmpctl.js';
import { macOf, sign, useNativeMac, verify } from '../src/security/mac.js';
import { nhKeyBytes, nhKeyStream } from '../src/security/nh.js';
import { mapKey, MP_LINK_STATS_SIZE, MP_MAX_LINKS, MP_NH_KEY_WORDS, MP_NH_MAX_BODY, percpuValueSize } from '../src/datapath/abi.js';
import { objectPath } from '../src/portal/datapath.js';

const must = <T>(r: { isOk(): boolean; _unsafeUnwrap(): T; _unsafeUnwrapErr(): unknown }): T => {
  assert.ok(r.isOk(), JSON.stringify(r.isOk() ? null : r._unsafeUnwrapErr()));
  return r._unsafeUnwrap();
};

describe('mp_mac equals mac.ts', () => {
  it('every body length 0..600, and long ones up to MP_NH_MAX_BODY, under random keys', () => {
    const lengths = [...Array(601).keys(), 1000, 1400, 1472, 4095, 4096, 9000, MP_NH_MAX_BODY - 1, MP_NH_MAX_BODY];
    const keys = Array.from({ length: 4 }, () => randomBytes(16)); // a key's stream costs ~1150 SipHash calls
    const streams = keys.map((k) => nhKeyBytes(nhKeyStream(k, MP_NH_KEY_WORDS)));
    for (const [i, n] of lengths.entries()) {
      const key = keys[i % 4]!;
      const nh = streams[i % 4]!;
      const msg = randomBytes(24 + n);
      const tag = must(mac(key, nh, msg, Buffer.alloc(8)));
      assert.equal(tag.toString('hex'), macOf(key, msg).toString('hex'), `body of ${n} bytes`);
    }
  });

  it('the tag field does not count; too long or too short is an error', () => {
    const key = randomBytes(16);
    const nh = nhKeyBytes(nhKeyStream(key, MP_NH_KEY_WORDS));
    const msg = randomBytes(100);
    const a = must(mac(key, nh, msg, Buffer.alloc(8)));
    randomBytes(8).copy(msg, 16);
    assert.deepEqual(must(mac(key, nh, msg, Buffer.alloc(8))), a);
    assert.ok(mac(key, nh, randomBytes(23), Buffer.alloc(8)).isErr());
    assert.ok(mac(key, nh, randomBytes(24 + MP_NH_MAX_BODY + 1), Buffer.alloc(8)).isErr());
    assert.ok(mac(key, nh.subarray(0, 64), randomBytes(200), Buffer.alloc(8)).isErr(), 'key stream too short');
  });

  it('sign and verify through it (useNativeMac) agree with the TypeScript MAC', () => {
    const key = randomBytes(16);
    const msg = randomBytes(80);
    const ts = sign(Buffer.from(msg), key, 3, 7);
    useNativeMac((k, nh, m, t) => mac(k, nh, m, t).isOk());
    try {
      const nat = sign(Buffer.from(msg), key, 3, 7);
      assert.deepEqual(nat, ts);
      assert.ok(verify(ts, key));
      ts[30] ^= 1;
      assert.ok(!verify(ts, key));
    } finally {
      useNativeMac(null);
    }
  });
});

describe('mp_map_lookup_array', () => {
  let h: ObjHandle | undefined;
  after(() => void (h !== undefined && bpfClose(h)));

  it('reads every link of the per-CPU mp_link_stats in one call, as one lookup per key does', () => {
    h = must(bpfOpenLoad(objectPath()));
    const fd = must(mapFd(h, 'mp_link_stats'));
    const size = percpuValueSize(MP_LINK_STATS_SIZE, must(numPossibleCpus()));
    for (const id of [0, 1, 5, MP_MAX_LINKS - 1]) must(mapUpdate(fd, mapKey(id), randomBytes(size)));
    const all = must(mapLookupArray(fd, MP_MAX_LINKS, size));
    for (let id = 0; id < MP_MAX_LINKS; id++) assert.deepEqual(all.subarray(id * size, (id + 1) * size), must(mapLookup(fd, mapKey(id), size)), `link ${id}`);
    assert.deepEqual(must(mapLookupArray(fd, 2, size)), all.subarray(0, 2 * size), 'the first two');
    assert.ok(mapLookupArray(fd, MP_MAX_LINKS + 1, size).isErr(), 'more than max_entries');
    assert.ok(mapLookupArray(fd, 2, size - 8).isErr(), 'a short value');
  });
});
