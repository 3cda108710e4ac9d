// Typed bindings for build/native/libmpctl.so (native/libmpctl.h), loaded lazily through ffi-rs.
//
// Every call returns a Result: a negative return from C becomes
//   { kind: 'NativeFailed', op, errno, message: mp_last_error() }
// or PermissionDenied for EPERM/EACCES (see toError for the one exception).
//
// Buffers: a Node Buffer passed as DataType.U8Array reaches C as a pointer to the Buffer's own
// memory (zero-copy, byteOffset respected), so C can fill it in place; that is how values,
// packets and out-parameters come back. Sizes always travel next to the pointer, and the C side
// checks them against the map, because the kernel would otherwise read or write past a short
// buffer.
//
// Namespaces: tc attach/detach/hook and ethtool open their socket at call time, so they act in
// the namespace of the calling thread — wrap them in withNetns() (src/native/netns.ts) and look
// the ifindex up in that same namespace.

import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import { createExternalBuffer, DataType, load, open, type JsExternal } from 'ffi-rs';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import { packagePath } from '../paths.js';

// ---- types -------------------------------------------------------------------------------------

/** A loaded BPF object (index into libmpctl's object table). */
export type ObjHandle = number & { readonly __brand: 'ObjHandle' };
/** A BPF map fd: borrowed from an object (mapFd) or owned (objGet; close with closeFd). */
export type MapFd = number & { readonly __brand: 'MapFd' };

export type TcDirection = 'ingress' | 'egress';

export interface TcFilterId {
  ifindex: number;
  direction: TcDirection;
  /** tc "pref", 1..65535. */
  priority: number;
  /** tc filter handle, non-zero. */
  tcHandle: number;
}

export interface TcAttachSpec extends TcFilterId {
  handle: ObjHandle;
  /** Program (function) name in the object. */
  prog: string;
}

export interface MapInfo {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  name: string;
}

export interface ProgTestRunOpts {
  /** Times to run (the duration is the mean per run). Default 1. */
  repeat?: number;
  /** Capacity for the output packet. Default dataIn.length + 256 (room for encapsulation). */
  dataOutSize?: number;
  /**
   * tc programs: the struct __sk_buff fields to start from. `ifindex` > 1 makes the test skb
   * belong to that device of the calling thread's namespace (so skb->ifindex, bpf_fib_lookup
   * and redirects see it; wrap the call in withNetns()). With it, the result has `ctx` too.
   */
  ctx?: SkbContext;
}

export interface ProgTestRunResult {
  retval: number;
  dataOut: Buffer;
  durationNs: number;
  /** The context after the run, when `ctx` was given. */
  ctx?: SkbContext;
}

/** The fields of struct __sk_buff that BPF_PROG_TEST_RUN accepts for tc programs. */
export interface SkbContext {
  mark?: number;
  priority?: number;
  ingressIfindex?: number;
  ifindex?: number;
  /** Up to 5 u32 words of skb->cb. */
  cb?: number[];
  tstamp?: bigint;
  /** 0: the packet length. */
  wireLen?: number;
  gsoSegs?: number;
  gsoSize?: number;
  hwtstamp?: bigint;
}

/** sizeof(struct __sk_buff) and the offsets of SkbContext's fields (checked against BTF). */
export const SK_BUFF_SIZE = 192;
export const SK_BUFF_OFFSETS = {
  mark: 8,
  priority: 32,
  ingressIfindex: 36,
  ifindex: 40,
  cb: 48,
  tstamp: 152,
  wireLen: 160,
  gsoSegs: 164,
  gsoSize: 176,
  hwtstamp: 184,
} as const;

/** Native-endian struct __sk_buff with the given fields, every other byte zero (as required). */
export function encodeSkbContext(c: SkbContext): Buffer {
  const b = Buffer.alloc(SK_BUFF_SIZE);
  const o = SK_BUFF_OFFSETS;
  const u32 = (v: number | undefined, off: number) => b.writeUInt32LE((v ?? 0) >>> 0, off);
  u32(c.mark, o.mark);
  u32(c.priority, o.priority);
  u32(c.ingressIfindex, o.ingressIfindex);
  u32(c.ifindex, o.ifindex);
  (c.cb ?? []).slice(0, 5).forEach((w, i) => u32(w, o.cb + 4 * i));
  b.writeBigUInt64LE(c.tstamp ?? 0n, o.tstamp);
  u32(c.wireLen, o.wireLen);
  u32(c.gsoSegs, o.gsoSegs);
  u32(c.gsoSize, o.gsoSize);
  b.writeBigUInt64LE(c.hwtstamp ?? 0n, o.hwtstamp);
  return b;
}

export function decodeSkbContext(b: Buffer): SkbContext {
  const o = SK_BUFF_OFFSETS;
  return {
    mark: b.readUInt32LE(o.mark),
    priority: b.readUInt32LE(o.priority),
    ingressIfindex: b.readUInt32LE(o.ingressIfindex),
    ifindex: b.readUInt32LE(o.ifindex),
    cb: [0, 1, 2, 3, 4].map((i) => b.readUInt32LE(o.cb + 4 * i)),
    tstamp: b.readBigUInt64LE(o.tstamp),
    wireLen: b.readUInt32LE(o.wireLen),
    gsoSegs: b.readUInt32LE(o.gsoSegs),
    gsoSize: b.readUInt32LE(o.gsoSize),
    hwtstamp: b.readBigUInt64LE(o.hwtstamp),
  };
}

export type EthtoolFeature = 'gro' | 'gso' | 'tso' | 'sg' | 'tx-csum' | 'rx-csum';

/** bpf_map_update_elem flags. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

/** Map types the value buffer of which is round_up(value_size, 8) * possible CPUs. */
export const BPF_MAP_TYPE_PERCPU_HASH = 5;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_LRU_PERCPU_HASH = 10;

// ---- loading -----------------------------------------------------------------------------------

const LIB = 'mpctl-libmpctl';
let loaded: Result<string, MpError> | undefined;

/** Path of libmpctl.so: $MPCTL_NATIVE, else <package root>/build/native/libmpctl.so. */
export function nativeLibPath(): string {
  const env = process.env['MPCTL_NATIVE'];
  if (env) return resolve(env);
  return packagePath('build', 'native', 'libmpctl.so');
}

function ensureLoaded(): Result<string, MpError> {
  if (loaded) return loaded;
  const path = nativeLibPath();
  if (!existsSync(path)) {
    loaded = err({
      kind: 'NotFound',
      what: 'libmpctl.so',
      message: `native helper ${path} not found: build it with \`make -C native\` (or set MPCTL_NATIVE)`,
    });
  } else {
    try {
      open({ library: LIB, path });
      loaded = ok(path);
    } catch (e) {
      loaded = err({ kind: 'NativeFailed', op: 'dlopen', errno: 0, message: `dlopen ${path}: ${String(e)}` });
    }
  }
  return loaded;
}

// ---- calling -----------------------------------------------------------------------------------

/** Symbolic name of a positive errno (2 → 'ENOENT'). */
export function errnoName(errno: number): string {
  for (const [name, n] of Object.entries(osConstants.errno)) if (n === errno) return name;
  return `errno ${errno}`;
}

const EPERM = 1;
const ENOENT = 2;
const EACCES = 13;

function lastError(): string {
  return load({ library: LIB, funcName: 'mp_last_error', retType: DataType.String, paramsType: [], paramsValue: [], freeResultMemory: false }); // thread-local buffer in C: never free it
}

function toError(op: string, errno: number, message: string): MpError {
  // From bpf_object__load, EACCES is the verifier rejecting a program (root gets EPERM only
  // when capabilities are missing): that is our bug, not the user's permissions.
  const verifier = op === 'bpfOpenLoad' && errno === EACCES;
  if ((errno === EPERM || errno === EACCES) && !verifier) {
    return {
      kind: 'PermissionDenied',
      message: `${op}: ${message || errnoName(errno)} — run as root (needs CAP_BPF and CAP_NET_ADMIN)`,
    };
  }
  return { kind: 'NativeFailed', op, errno, message: message || `${op}: ${errnoName(errno)}` };
}

/** Call an int-returning libmpctl function; negative returns become errors. */
function call(op: string, funcName: string, paramsType: DataType[], paramsValue: unknown[]): Result<number, MpError> {
  const lib = ensureLoaded();
  if (lib.isErr()) return err(lib.error);
  const rc = load({ library: LIB, funcName, retType: DataType.I32, paramsType, paramsValue });
  if (rc >= 0) return ok(rc);
  return err(toError(op, -rc, lastError()));
}

const S = DataType.String;
const I32 = DataType.I32;
const U32 = DataType.U32;
const U64 = DataType.U64;
const BUF = DataType.U8Array;

/** Native-endian u32 out-parameters backed by one Buffer (views are 4-byte aligned). */
function outU32(n: number): { views: Buffer[]; get: (i: number) => number; set: (i: number, v: number) => void } {
  const words = new Uint32Array(n);
  const views = Array.from({ length: n }, (_, i) => Buffer.from(words.buffer, i * 4, 4));
  return { views, get: (i) => words[i] ?? 0, set: (i, v) => void (words[i] = v) };
}

// ---- objects -----------------------------------------------------------------------------------

/**
 * Open and load a BPF object. With `pinDir`, every non-internal map is pinned at
 * `<pinDir>/<map name>` (reused if already pinned: that is how objects share maps). The
 * directory must be on a bpffs (see bpffsMount).
 */
export function bpfOpenLoad(objPath: string, pinDir?: string): Result<ObjHandle, MpError> {
  return call('bpfOpenLoad', 'mp_bpf_open_load', [S, S], [objPath, pinDir ?? '']).map((h) => h as ObjHandle);
}

export function bpfClose(handle: ObjHandle): Result<void, MpError> {
  return call('bpfClose', 'mp_bpf_close', [I32], [handle]).map(() => undefined);
}

/** The instructions the verifier walked to accept a program of a loaded object (its
 * "processed" count, against the kernel's limit of 1,000,000; kernel 5.16+). */
export function progVerifiedInsns(handle: ObjHandle, prog: string): Result<number, MpError> {
  return call('progVerifiedInsns', 'mp_prog_verified_insns', [I32, S], [handle, prog]);
}

// ---- tc ----------------------------------------------------------------------------------------

/** Attach (or replace, idempotently) a direct-action cls_bpf filter; creates clsact if missing. */
export function tcAttach(spec: TcAttachSpec): Result<void, MpError> {
  return call(
    'tcAttach',
    'mp_tc_attach',
    [I32, S, I32, I32, U32, U32],
    [spec.handle, spec.prog, spec.ifindex, spec.direction === 'egress' ? 1 : 0, spec.priority, spec.tcHandle],
  ).map(() => undefined);
}

/** Remove one filter; already gone is success. */
export function tcDetach(id: TcFilterId): Result<void, MpError> {
  return call(
    'tcDetach',
    'mp_tc_detach',
    [I32, I32, U32, U32],
    [id.ifindex, id.direction === 'egress' ? 1 : 0, id.priority, id.tcHandle],
  ).map(() => undefined);
}

/** Remove the clsact qdisc and all its filters; missing is success. */
export function tcHookDestroy(ifindex: number): Result<void, MpError> {
  return call('tcHookDestroy', 'mp_tc_hook_destroy', [I32], [ifindex]).map(() => undefined);
}

// ---- maps --------------------------------------------------------------------------------------

/** fd of a map inside a loaded object. Borrowed: do not closeFd it. */
export function mapFd(handle: ObjHandle, name: string): Result<MapFd, MpError> {
  return call('mapFd', 'mp_map_fd', [I32, S], [handle, name]).map((fd) => fd as MapFd);
}

export function mapInfo(fd: MapFd): Result<MapInfo, MpError> {
  const out = outU32(4);
  const name = Buffer.alloc(16);
  return call(
    'mapInfo',
    'mp_map_info',
    [I32, BUF, BUF, BUF, BUF, BUF, U32],
    [fd, ...out.views, name, name.length],
  ).map(() => ({
    type: out.get(0),
    keySize: out.get(1),
    valueSize: out.get(2),
    maxEntries: out.get(3),
    name: name.subarray(0, Math.max(0, name.indexOf(0))).toString('latin1'),
  }));
}

/**
 * Look a key up. `valueSize` is the whole value buffer: value_size, or for per-CPU maps
 * round_up(value_size, 8) * numPossibleCpus(). Returns null if the key is absent.
 */
export function mapLookup(fd: MapFd, key: Buffer, valueSize: number): Result<Buffer | null, MpError> {
  const value = Buffer.alloc(valueSize);
  const r = call('mapLookup', 'mp_map_lookup', [I32, BUF, U32, BUF, U32], [fd, key, key.length, value, value.length]);
  if (r.isErr()) return r.error.kind === 'NativeFailed' && r.error.errno === ENOENT ? ok(null) : err(r.error);
  return ok(value);
}

/** Elements 0..count-1 of an array map (per-CPU: each `valueSize` as mapLookup takes it) in one
 * call and, where the kernel has batch lookups, one system call; into `out` when given. */
export function mapLookupArray(fd: MapFd, count: number, valueSize: number, out: Buffer = Buffer.alloc(count * valueSize)): Result<Buffer, MpError> {
  if (out.length !== count * valueSize) return err({ kind: 'Bug', message: `mapLookupArray: ${out.length} bytes for ${count} values of ${valueSize}` });
  return call('mapLookupArray', 'mp_map_lookup_array', [I32, U32, BUF, U32], [fd, count, out, out.length]).map(() => out);
}

/** Every element of a (shared) hash map, LRU too: keys and values packed, at most `max`, in
 * batch lookups (an LRU does not count them as uses). */
export function mapDump(fd: MapFd, keySize: number, valueSize: number, max: number): Result<{ count: number; keys: Buffer; values: Buffer }, MpError> {
  const keys = Buffer.alloc(keySize * max);
  const values = Buffer.alloc(valueSize * max);
  return call('mapDump', 'mp_map_dump', [I32, BUF, U32, BUF, U32, U32], [fd, keys, keys.length, values, values.length, max]).map((count) => ({ count, keys, values }));
}

export function mapUpdate(fd: MapFd, key: Buffer, value: Buffer, flags: number = BPF_ANY): Result<void, MpError> {
  return call(
    'mapUpdate',
    'mp_map_update',
    [I32, BUF, U32, BUF, U32, U64],
    [fd, key, key.length, value, value.length, flags],
  ).map(() => undefined);
}

/** Delete a key; returns false if it was not there. */
export function mapDelete(fd: MapFd, key: Buffer): Result<boolean, MpError> {
  const r = call('mapDelete', 'mp_map_delete', [I32, BUF, U32], [fd, key, key.length]);
  if (r.isErr()) return r.error.kind === 'NativeFailed' && r.error.errno === ENOENT ? ok(false) : err(r.error);
  return ok(true);
}

/** Every key of a hash map (bpf_map_get_next_key from the first; keys deleted meanwhile are
 * skipped, as the kernel walks), at most `max`. */
export function mapKeys(fd: MapFd, keySize: number, max = 1 << 20): Result<Buffer[], MpError> {
  const keys: Buffer[] = [];
  let prev: Buffer | null = null;
  while (keys.length < max) {
    const next = Buffer.alloc(keySize);
    // a missing first key: the walk starts at the map's first (the kernel's rule for NULL)
    const r = call('mapKeys', 'mp_map_next_key', [I32, BUF, BUF, U32], [fd, prev ?? Buffer.alloc(keySize, 0xff), next, keySize]);
    if (r.isErr()) return r.error.kind === 'NativeFailed' && r.error.errno === ENOENT ? ok(keys) : err(r.error);
    keys.push(next);
    prev = next;
  }
  return ok(keys);
}

/** A BPF_F_MMAPABLE array mapped read-only (mapMmap): reads copy memory, no system call. */
export type MmapHandle = number & { readonly __brand: 'MmapHandle' };

export function mapMmap(fd: MapFd): Result<MmapHandle, MpError> {
  return call('mapMmap', 'mp_map_mmap', [I32], [fd]).map((h) => h as MmapHandle);
}

/** Copies out.length bytes at `offset` of the mapped array into `out` (element i of a map of
 * value_size v is at i * round_up(v, 8)). */
export function mmapRead(h: MmapHandle, offset: number, out: Buffer): Result<void, MpError> {
  return call('mmapRead', 'mp_mmap_read', [I32, U32, BUF, U32], [h, offset, out, out.length]).map(() => undefined);
}

/**
 * The control loop's reads of one tick in one call (native/libmpctl.h mp_tick): `add` registers
 * a read (an array map's first `count` elements, or a mapping's first `len` bytes) and returns
 * where its bytes are in `area`; `read` refreshes them all. The area is libmpctl's static memory
 * seen as a Buffer (no copy, no Buffer argument per call): one set of reads per process.
 */
export interface TickReads {
  area: Buffer;
  addArray(fd: MapFd, count: number, valueSize: number): Result<Buffer, MpError>;
  addMmap(h: MmapHandle, len: number): Result<Buffer, MpError>;
  read(): Result<void, MpError>;
  clear(): void;
}

let tickArea: Buffer | null = null;

export function tickReads(): Result<TickReads, MpError> {
  const lib = ensureLoaded();
  if (lib.isErr()) return err(lib.error);
  if (!tickArea) {
    const len = load({ library: LIB, funcName: 'mp_tick_area_len', retType: DataType.U32, paramsType: [], paramsValue: [] });
    const p = load({ library: LIB, funcName: 'mp_tick_area', retType: DataType.External, paramsType: [], paramsValue: [] }) as JsExternal;
    tickArea = createExternalBuffer(p, len);
  }
  const area = tickArea;
  let next = 0;
  const add = (kind: 0 | 1, fd: number, count: number, len: number): Result<Buffer, MpError> => {
    const off = next;
    return call('tickAdd', 'mp_tick_add', [I32, I32, U32, U32, U32], [kind, fd, count, off, len]).map(() => {
      next = off + Math.ceil(len / 8) * 8;
      return area.subarray(off, off + len);
    });
  };
  return ok({
    area,
    addArray: (fd, count, valueSize) => add(0, fd, count, count * valueSize),
    addMmap: (h, len) => add(1, h, 0, len),
    read: () => call('tick', 'mp_tick', [], []).map(() => undefined),
    clear: () => {
      load({ library: LIB, funcName: 'mp_tick_clear', retType: DataType.Void, paramsType: [], paramsValue: [] });
      next = 0;
    },
  });
}

export function munmap(h: MmapHandle): Result<void, MpError> {
  return call('munmap', 'mp_munmap', [I32], [h]).map(() => undefined);
}

/** Open a pinned map. Owned: closeFd it when done. NotFound if nothing is pinned there. */
export function objGet(pinnedPath: string): Result<MapFd, MpError> {
  return call('objGet', 'mp_obj_get', [S], [pinnedPath])
    .map((fd) => fd as MapFd)
    .mapErr((e) =>
      e.kind === 'NativeFailed' && e.errno === ENOENT
        ? { kind: 'NotFound', what: pinnedPath, message: `no pinned BPF object at ${pinnedPath}` }
        : e,
    );
}

export function closeFd(fd: MapFd | number): Result<void, MpError> {
  return call('closeFd', 'mp_close_fd', [I32], [fd]).map(() => undefined);
}

export function numPossibleCpus(): Result<number, MpError> {
  return call('numPossibleCpus', 'mp_num_possible_cpus', [], []);
}

// ---- sockets -----------------------------------------------------------------------------------

/** Path MTU probing on a UDP socket's fd (native/libmpctl.h mp_set_pmtu_probe): datagrams leave
 * with DF whatever the kernel cached for the path, and are never fragmented by it. */
export function setPmtuProbe(fd: number, family: 4 | 6): Result<void, MpError> {
  return call('setPmtuProbe', 'mp_set_pmtu_probe', [I32, I32], [fd, family]).map(() => undefined);
}

// ---- bpffs -------------------------------------------------------------------------------------

/** mkdir -p and mount a bpffs at `path` unless one is there. true = mounted now. */
export function bpffsMount(path: string): Result<boolean, MpError> {
  return call('bpffsMount', 'mp_bpffs_mount', [S], [path]).map((r) => r === 1);
}

// ---- BPF_PROG_TEST_RUN -------------------------------------------------------------------------

/** Run a program once (or `repeat` times) on a packet; returns its verdict and output packet. */
export function progTestRun(
  handle: ObjHandle,
  prog: string,
  dataIn: Buffer,
  opts: ProgTestRunOpts = {},
): Result<ProgTestRunResult, MpError> {
  const capacity = opts.dataOutSize ?? dataIn.length + 256;
  const dataOut = Buffer.alloc(Math.max(1, capacity));
  if (opts.ctx) return progTestRunCtx(handle, prog, dataIn, dataOut, opts.ctx, opts.repeat ?? 1);
  const out = outU32(3); // len_out, retval, duration_ns
  out.set(0, capacity);
  return call(
    'progTestRun',
    'mp_prog_test_run',
    [I32, S, BUF, U32, BUF, BUF, BUF, U32, BUF],
    [handle, prog, dataIn, dataIn.length, dataOut, out.views[0], out.views[1], opts.repeat ?? 1, out.views[2]],
  ).map(() => ({
    retval: out.get(1),
    dataOut: dataOut.subarray(0, Math.min(out.get(0), capacity)),
    durationNs: out.get(2),
  }));
}

function progTestRunCtx(
  handle: ObjHandle,
  prog: string,
  dataIn: Buffer,
  dataOut: Buffer,
  ctx: SkbContext,
  repeat: number,
): Result<ProgTestRunResult, MpError> {
  const ctxIn = encodeSkbContext(ctx);
  const ctxOut = Buffer.alloc(SK_BUFF_SIZE);
  const out = outU32(4); // len_out, ctx_len_out, retval, duration_ns
  out.set(0, dataOut.length);
  out.set(1, ctxOut.length);
  return call(
    'progTestRun',
    'mp_prog_test_run_ctx',
    [I32, S, BUF, U32, BUF, BUF, BUF, U32, BUF, BUF, BUF, U32, BUF],
    [handle, prog, dataIn, dataIn.length, dataOut, out.views[0], ctxIn, ctxIn.length, ctxOut, out.views[1], out.views[2], repeat, out.views[3]],
  ).map(() => ({
    retval: out.get(2),
    dataOut: dataOut.subarray(0, Math.min(out.get(0), dataOut.length)),
    durationNs: out.get(3),
    ctx: decodeSkbContext(ctxOut),
  }));
}

/**
 * Run a program once on each packet (one native call for all of them: fuzz tests run millions)
 * and return the verdicts in order. The output packets are not kept.
 */
export function progTestRunBatch(handle: ObjHandle, prog: string, packets: readonly Buffer[]): Result<Int32Array, MpError> {
  const lens = new Uint32Array(packets.length);
  packets.forEach((p, i) => void (lens[i] = p.length));
  const verdicts = new Int32Array(Math.max(1, packets.length));
  const data = Buffer.concat(packets);
  return call(
    'progTestRunBatch',
    'mp_prog_test_run_batch',
    [I32, S, BUF, BUF, U32, BUF],
    [handle, prog, data.length ? data : Buffer.alloc(1), Buffer.from(lens.buffer, 0, Math.max(4, lens.byteLength)), packets.length, Buffer.from(verdicts.buffer)],
  ).map(() => verdicts.subarray(0, packets.length));
}

// ---- packet capture ----------------------------------------------------------------------------

/**
 * The frames `ifname` sends and receives during `timeoutMs` (at most `maxFrames`), Ethernet
 * header included. Blocks the calling thread meanwhile; acts in its namespace (withNetns).
 */
export function capture(ifname: string, timeoutMs: number, maxFrames = 10_000, capacity = 16 << 20): Result<Buffer[], MpError> {
  const buf = Buffer.alloc(capacity);
  const lens = new Uint32Array(maxFrames);
  return call('capture', 'mp_capture', [S, U32, U32, BUF, U32, BUF], [ifname, timeoutMs, maxFrames, buf, capacity, Buffer.from(lens.buffer)]).map((n) => {
    const out: Buffer[] = [];
    let off = 0;
    for (let i = 0; i < n; i++) {
      out.push(Buffer.from(buf.subarray(off, off + lens[i]!)));
      off += lens[i]!;
    }
    return out;
  });
}

// ---- flood (the lab's attacker) ----------------------------------------------------------------

/**
 * Sends whole IP packets (one family) through a raw socket, cycling through them at `pps` for
 * `durationMs` or until `total` went out (0: no limit); `randSrcBits` > 0 randomises the low bits
 * of each IPv4 source address (spoofing). Blocks the calling thread; acts in its namespace.
 * Returns how many were sent.
 */
export function flood(family: 4 | 6, packets: readonly Buffer[], o: { pps: number; durationMs: number; total?: number; randSrcBits?: number }): Result<number, MpError> {
  const data = Buffer.concat(packets);
  const lens = new Uint32Array(Math.max(1, packets.length));
  packets.forEach((p, i) => (lens[i] = p.length));
  return call(
    'flood',
    'mp_flood',
    [I32, BUF, BUF, U32, U32, U32, U32, U32],
    [family, data.length ? data : Buffer.alloc(1), Buffer.from(lens.buffer), packets.length, o.pps, o.durationMs, o.total ?? 0, o.randSrcBits ?? 0],
  );
}

// ---- ethtool -----------------------------------------------------------------------------------

/** Switch an offload on/off on an interface of the calling thread's namespace. */
export function ethtoolSet(ifname: string, feature: EthtoolFeature, on: boolean): Result<void, MpError> {
  return call('ethtoolSet', 'mp_ethtool_set', [S, S, I32], [ifname, feature, on ? 1 : 0]).map(() => undefined);
}

export function ethtoolGet(ifname: string, feature: EthtoolFeature): Result<boolean, MpError> {
  return call('ethtoolGet', 'mp_ethtool_get', [S, S], [ifname, feature]).map((v) => v === 1);
}
