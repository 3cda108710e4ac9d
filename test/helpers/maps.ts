// The maps of a loaded build/bpf/mpctl.o for PROG_TEST_RUN tests (test/datapath.test.ts,
// test/decap-fuzz.test.ts): open the object, write and read map entries by abi.ts name, zero
// them all, read the drop counters. Failures are assertion failures.

import assert from 'node:assert/strict';
import { bpfOpenLoad, mapDelete, mapFd, mapKeys, mapLookup, mapUpdate, numPossibleCpus, type MapFd, type ObjHandle } from '../../src/native/libmpctl.js';
import { BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, decodeDrops, DROP_REASONS, MAPS, mapKey, MP_DROP_MAX, perCpuStride, type DropReason } from '../../src/datapath/abi.js';

export type MapName = keyof typeof MAPS;

/** The value of an Ok Result, or fail the test with the error. */
export function must<T>(r: { isOk(): boolean; _unsafeUnwrap(): T; _unsafeUnwrapErr(): unknown }): T {
  if (!r.isOk()) assert.fail(`unexpected error: ${JSON.stringify(r._unsafeUnwrapErr())}`);
  return r._unsafeUnwrap();
}

/** xorshift32: reproducible "random" packets. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

export interface ObjMaps {
  handle: ObjHandle;
  put(m: MapName, index: number, value: Buffer): void;
  get(m: MapName, index: number): Buffer;
  /** Value buffer size (all CPUs for per-CPU maps). */
  valueLen(m: MapName): number;
  /** Every entry of every array map zeroed, every hash map emptied. */
  zero(): void;
  /** The map's fd (hash maps: keyed lookups, mapKeys). */
  fd(m: MapName): MapFd;
  drops(): Record<DropReason, bigint>;
}

export function openObject(path: string): ObjMaps {
  const handle = must(bpfOpenLoad(path));
  const fds = Object.fromEntries((Object.keys(MAPS) as MapName[]).map((m) => [m, must(mapFd(handle, MAPS[m].name))])) as Record<MapName, MapFd>;
  const ncpu = must(numPossibleCpus());
  const valueLen = (m: MapName) => (MAPS[m].type === 6 ? perCpuStride(MAPS[m].value) * ncpu : MAPS[m].value);
  const put = (m: MapName, index: number, value: Buffer) => must(mapUpdate(fds[m], mapKey(index), value));
  const get = (m: MapName, index: number): Buffer => {
    const v = must(mapLookup(fds[m], mapKey(index), valueLen(m)));
    assert.ok(v, `${MAPS[m].name}[${index}] exists`);
    return v;
  };
  return {
    handle,
    put,
    get,
    valueLen,
    zero: () => {
      for (const m of Object.keys(MAPS) as MapName[]) {
        if (MAPS[m].type === BPF_MAP_TYPE_HASH || MAPS[m].type === BPF_MAP_TYPE_LRU_HASH) {
          for (const k of must(mapKeys(fds[m], MAPS[m].keySize))) must(mapDelete(fds[m], k));
          continue;
        }
        for (let i = 0; i < MAPS[m].maxEntries; i++) put(m, i, Buffer.alloc(valueLen(m)));
      }
    },
    fd: (m) => fds[m],
    drops: () => decodeDrops(Array.from({ length: MP_DROP_MAX }, (_, i) => get('drops', i))),
  };
}

/** The counters that changed between two drops() readings. */
export function dropDelta(before: Record<DropReason, bigint>, after: Record<DropReason, bigint>): Partial<Record<DropReason, number>> {
  const d: Partial<Record<DropReason, number>> = {};
  for (const r of DROP_REASONS) if (after[r] !== before[r]) d[r] = Number(after[r] - before[r]);
  return d;
}
