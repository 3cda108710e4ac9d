// The native reads the portals' control loops make every tick (issue 11): the batch read of an
// array map (mp_map_lookup_array) against one lookup per key, on the per-CPU mp_link_stats of
// build/bpf/mpctl.o. Run as root (the test loads the object).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { bpfClose, bpfOpenLoad, mapFd, mapLookup, mapLookupArray, mapUpdate, numPossibleCpus, type ObjHandle } from '../src/native/libmpctl.js';
import { mapKey, MP_LINK_STATS_SIZE, MP_MAX_LINKS, percpuValueSize } from '../src/datapath/abi.js';
import { objectPath } from '../src/apply/datapath.js';

const must = <T>(r: { isOk(): boolean; _unsafeUnwrap(): T; _unsafeUnwrapErr(): unknown }): T => {
  assert.ok(r.isOk(), JSON.stringify(r.isOk() ? null : r._unsafeUnwrapErr()));
  return r._unsafeUnwrap();
};

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
