// The native reads the portals' control loops make every tick (README "Benchmarks", cpu): the batch read of an
// array map (mp_map_lookup_array) against one lookup per key, on the per-CPU mp_link_stats of
// build/bpf/mpctl.o. Run as root (the test loads the object).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { bpfClose, bpfOpenLoad, mapFd, mapLookup, mapLookupArray, mapMmap, mapUpdate, mmapRead, munmap, numPossibleCpus, tickReads, type ObjHandle } from '../src/native/libmpctl.js';
import { mapKey, MP_LINK_STATS_SIZE, MP_MAX_LINKS, MP_RX_SIZE, MP_SCHED_SIZE, percpuValueSize } from '../src/datapath/abi.js';
import { objectPath } from '../src/apply/datapath.js';

const must = <T>(r: { isOk(): boolean; _unsafeUnwrap(): T; _unsafeUnwrapErr(): unknown }): T => {
  assert.ok(r.isOk(), JSON.stringify(r.isOk() ? null : r._unsafeUnwrapErr()));
  return r._unsafeUnwrap();
};

describe('batch reads of array maps, and the tick', () => {
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

  it('mp_tick: the registered reads land in the shared area on every call', () => {
    assert.ok(h !== undefined);
    const stats = must(mapFd(h, 'mp_link_stats'));
    const sched = must(mapFd(h, 'mp_sched'));
    const rxFd = must(mapFd(h, 'mp_rx'));
    const size = percpuValueSize(MP_LINK_STATS_SIZE, must(numPossibleCpus()));
    const rx = must(mapMmap(rxFd));
    const t = must(tickReads());
    try {
      t.clear();
      const s = must(t.addArray(sched, 1, MP_SCHED_SIZE));
      const st = must(t.addArray(stats, MP_MAX_LINKS, size));
      const r = must(t.addMmap(rx, MP_RX_SIZE * MP_MAX_LINKS));
      assert.ok(t.addArray(stats, MP_MAX_LINKS, size - 8).isErr(), 'a short value');
      for (let round = 0; round < 2; round++) {
        const v = randomBytes(size);
        must(mapUpdate(stats, mapKey(3), v));
        must(mapUpdate(rxFd, mapKey(2), randomBytes(MP_RX_SIZE)));
        must(t.read());
        assert.deepEqual(st.subarray(3 * size, 4 * size), v, `round ${round}: stats of link 3`);
        assert.deepEqual(s, must(mapLookup(sched, mapKey(0), MP_SCHED_SIZE)));
        const want = Buffer.alloc(MP_RX_SIZE * MP_MAX_LINKS);
        must(mmapRead(rx, 0, want));
        assert.deepEqual(r, want, `round ${round}: mp_rx`);
      }
    } finally {
      t.clear();
      munmap(rx);
    }
  });
});
