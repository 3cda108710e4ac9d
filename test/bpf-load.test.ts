// Toolchain and native-helper test: build/bpf/placeholder.o loaded through libmpctl.so,
// attached at tc ingress inside a namespace, counted, test-run, detached. Run as root:
//   node --import tsx --test test/bpf-load.test.ts
//
//   ns <p>-a                          ns <p>-b
//  ┌──────────────────────┐          ┌─────────────────────────────────┐
//  │  va  10.250.N.1/24   │──veth────│  vb  10.250.N.2/24              │
//  │  (ping -c 3 →)       │          │  tc ingress: placeholder        │
//  └──────────────────────┘          │  → placeholder_stats {pkts,bytes}│
//                                    └─────────────────────────────────┘
//  <p> = mpt<pid><rand>; nothing is attached or addressed outside these two namespaces.
//  A bpffs is mounted at a temporary directory to test map pinning, and unmounted after.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRtNetlink } from 'netlink';
import {
  bpfClose,
  bpffsMount,
  bpfOpenLoad,
  closeFd,
  ethtoolGet,
  ethtoolSet,
  mapFd,
  mapLookup,
  mapUpdate,
  nativeLibPath,
  objGet,
  progTestRun,
  tcAttach,
  tcDetach,
  tcHookDestroy,
  type MapFd,
  type ObjHandle,
} from '../src/native/libmpctl.js';
import { currentNetnsInode, gettid, netnsInode, withNetns } from '../src/native/netns.js';

const ROOT = new URL('..', import.meta.url).pathname;
const OBJ = join(ROOT, 'build/bpf/placeholder.o');

const prefix = `mpt${process.pid}${Math.floor(Math.random() * 100)}`;
const nsA = `${prefix}-a`;
const nsB = `${prefix}-b`;
const net = 1 + Math.floor(Math.random() * 250);
const addrA = `10.250.${net}.1`;
const addrB = `10.250.${net}.2`;
const PINGS = 3;
const FILTER = { direction: 'ingress', priority: 1, tcHandle: 1 } as const;

function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const inNs = (ns: string, cmd: string, ...args: string[]): string => sh('ip', 'netns', 'exec', ns, cmd, ...args);

/** Unwrap a Result, failing the test with the whole error. */
function must<T>(r: { isOk(): boolean; _unsafeUnwrap(): T; _unsafeUnwrapErr(): unknown }): T {
  if (!r.isOk()) assert.fail(`unexpected error: ${JSON.stringify(r._unsafeUnwrapErr())}`);
  return r._unsafeUnwrap();
}

function readStats(fd: MapFd): { packets: bigint; bytes: bigint } {
  const v = must(mapLookup(fd, Buffer.alloc(4), 16));
  assert.ok(v, 'array element 0 exists');
  return { packets: v.readBigUInt64LE(0), bytes: v.readBigUInt64LE(8) };
}

/** Ethernet + IPv4 + UDP, 60 bytes on the wire. */
function udpFrame(): Buffer {
  const f = Buffer.alloc(60);
  Buffer.from('02000000000b02000000000a', 'hex').copy(f, 0); // dst, src MAC
  f.writeUInt16BE(0x0800, 12);
  const ip = 14;
  f.writeUInt8(0x45, ip);
  f.writeUInt16BE(46, ip + 2); // total length
  f.writeUInt8(64, ip + 8); // TTL
  f.writeUInt8(17, ip + 9); // UDP
  Buffer.from(addrA.split('.').map(Number)).copy(f, ip + 12);
  Buffer.from(addrB.split('.').map(Number)).copy(f, ip + 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += f.readUInt16BE(ip + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  f.writeUInt16BE(~sum & 0xffff, ip + 10);
  f.writeUInt16BE(40000, 34); // UDP sport
  f.writeUInt16BE(9, 36); // dport (discard)
  f.writeUInt16BE(26, 38); // UDP length
  return f;
}

/** ifindex of `name` and all link names, as seen by a netlink socket created inside `ns`. */
async function linksIn(ns: string | null): Promise<Map<string, number>> {
  const sock = must(withNetns(ns, () => createRtNetlink()));
  try {
    const links = await sock.getLinks();
    return new Map(links.map((l) => [l.attrs.ifname ?? '?', l.data.index ?? 0]));
  } finally {
    sock.socket.close();
  }
}

describe('libmpctl + placeholder.o in a namespace pair', { concurrency: false }, () => {
  let handle: ObjHandle | undefined;
  let ifindexB = 0;
  let bpffsDir: string | undefined;

  before(() => {
    assert.equal(process.getuid?.(), 0, 'this test needs root');
    sh('ip', 'netns', 'add', nsA);
    sh('ip', 'netns', 'add', nsB);
    sh('ip', '-n', nsA, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', nsB);
    sh('ip', '-n', nsA, 'addr', 'add', `${addrA}/24`, 'dev', 'va');
    sh('ip', '-n', nsB, 'addr', 'add', `${addrB}/24`, 'dev', 'vb');
    for (const [ns, dev] of [[nsA, 'va'], [nsB, 'vb']] as const) {
      sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
      sh('ip', '-n', ns, 'link', 'set', dev, 'up');
    }
  });

  after(() => {
    if (handle !== undefined) bpfClose(handle);
    for (const ns of [nsA, nsB]) {
      try {
        sh('ip', 'netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    if (bpffsDir) {
      try {
        sh('umount', bpffsDir);
      } catch {
        // not mounted
      }
      rmSync(bpffsDir, { recursive: true, force: true });
    }
  });

  it('runs ffi-rs calls on the main thread', () => {
    assert.equal(gettid(), process.pid);
  });

  it('withNetns: a netlink socket created inside sees the namespace, not the host', async () => {
    const hostIno = currentNetnsInode();
    const inside = must(withNetns(nsB, () => ({ ino: currentNetnsInode(), tid: gettid() })));
    assert.equal(inside.ino, netnsInode(nsB));
    assert.equal(inside.tid, process.pid, 'setns acted on the main thread');
    assert.equal(currentNetnsInode(), hostIno, 'switched back');

    const b = await linksIn(nsB);
    assert.deepEqual([...b.keys()].sort(), ['lo', 'vb']);
    ifindexB = b.get('vb') ?? 0;
    assert.ok(ifindexB > 0);
    const host = await linksIn(null);
    assert.ok(!host.has('vb') && !host.has('va'), 'host socket does not see the namespace links');
  });

  it('withNetns: errors', () => {
    const missing = withNetns(`${prefix}-nope`, () => 1);
    assert.equal(missing.isErr() && missing.error.kind, 'NotFound');
    const promise = withNetns(nsB, async () => 1);
    assert.equal(promise.isErr() && promise.error.kind, 'Bug');
    assert.throws(() => withNetns(nsB, () => { throw new Error('boom'); }), /boom/);
    assert.notEqual(currentNetnsInode(), netnsInode(nsB), 'switched back after a throw');
  });

  it('bpfOpenLoad of a missing file is NativeFailed naming the path', () => {
    const r = bpfOpenLoad('/nonexistent.o');
    assert.ok(r.isErr());
    assert.equal(r.error.kind, 'NativeFailed');
    assert.ok(r.error.kind === 'NativeFailed' && r.error.message.includes('/nonexistent.o'), JSON.stringify(r.error));
    assert.ok(r.error.kind === 'NativeFailed' && r.error.errno === 2);
  });

  it('loads, attaches at ingress of vb, counts pings, test-runs, detaches', () => {
    assert.ok(ifindexB > 0, 'ifindex found by the previous test');
    handle = must(bpfOpenLoad(OBJ));
    const h = handle;
    const fd = must(mapFd(h, 'placeholder_stats'));
    const zero = readStats(fd);
    assert.deepEqual(zero, { packets: 0n, bytes: 0n });

    // Attach twice: BPF_TC_F_REPLACE makes it idempotent.
    for (let i = 0; i < 2; i++)
      must(must(withNetns(nsB, () => tcAttach({ handle: h, prog: 'placeholder', ifindex: ifindexB, ...FILTER }))));
    const filters = inNs(nsB, 'tc', 'filter', 'show', 'dev', 'vb', 'ingress');
    assert.equal(filters.match(/^filter .* handle 0x1 placeholder/gm)?.length, 1, filters);

    inNs(nsA, 'ping', '-c', String(PINGS), '-i', '0.2', '-W', '2', '-q', addrB);
    const counted = readStats(fd);
    assert.ok(counted.packets >= BigInt(PINGS), `packets ${counted.packets} >= ${PINGS}`);
    assert.ok(counted.bytes > 0n);

    // ethtool acts in the thread's namespace: vb does not exist on the host.
    must(must(withNetns(nsB, () => ethtoolSet('vb', 'gro', false))));
    assert.equal(must(must(withNetns(nsB, () => ethtoolGet('vb', 'gro')))), false);
    assert.ok(inNs(nsB, 'ethtool', '-k', 'vb').includes('generic-receive-offload: off'));
    assert.ok(ethtoolGet('vb', 'gro').isErr(), 'no vb on the host');

    must(must(withNetns(nsB, () => tcDetach({ ifindex: ifindexB, ...FILTER }))));
    assert.equal(inNs(nsB, 'tc', 'filter', 'show', 'dev', 'vb', 'ingress').trim(), '');
    must(must(withNetns(nsB, () => tcDetach({ ifindex: ifindexB, ...FILTER })))); // already gone: ok
    must(must(withNetns(nsB, () => tcHookDestroy(ifindexB))));
    assert.ok(!inNs(nsB, 'tc', 'qdisc', 'show', 'dev', 'vb').includes('clsact'));
    must(must(withNetns(nsB, () => tcHookDestroy(ifindexB)))); // missing: ok
    must(must(withNetns(nsB, () => tcDetach({ ifindex: ifindexB, ...FILTER })))); // no clsact: ok

    // Detached, so nothing but the test run can move the counter now.
    const before = readStats(fd);
    const frame = udpFrame();
    const run = must(progTestRun(h, 'placeholder', frame));
    assert.equal(run.retval, 0, 'TC_ACT_OK');
    assert.deepEqual(run.dataOut, frame, 'packet passes unchanged');
    const afterRun = readStats(fd);
    assert.equal(afterRun.packets - before.packets, 1n);
    assert.equal(afterRun.bytes - before.bytes, 60n);

    const unknown = progTestRun(h, 'nope', frame);
    assert.equal(unknown.isErr() && unknown.error.kind, 'NativeFailed');
  });

  it('map buffers: round trip, size checks, absent keys', () => {
    assert.ok(handle !== undefined);
    const fd = must(mapFd(handle, 'placeholder_stats'));
    const key = Buffer.alloc(4);
    const value = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
    must(mapUpdate(fd, key, value));
    assert.deepEqual(must(mapLookup(fd, key, 16)), value);
    // A Buffer that is a view into a larger ArrayBuffer is passed at its own offset.
    const big = Buffer.alloc(64, 0xee);
    const view = big.subarray(20, 36);
    value.copy(view);
    must(mapUpdate(fd, key, view));
    assert.deepEqual(must(mapLookup(fd, key, 16)), value);

    const short = mapLookup(fd, key, 8);
    assert.ok(short.isErr() && short.error.kind === 'NativeFailed' && short.error.errno === 22);
    const badKey = mapUpdate(fd, Buffer.alloc(2), value);
    assert.ok(badKey.isErr() && badKey.error.kind === 'NativeFailed' && badKey.error.errno === 22);
    const outOfRange = mapLookup(fd, Buffer.from([5, 0, 0, 0]), 16);
    assert.equal(must(outOfRange), null, 'absent key is null');
  });

  it('bpffs mount and pinned maps are shared between objects', () => {
    bpffsDir = mkdtempSync(join(tmpdir(), `${prefix}-bpffs-`));
    assert.equal(must(bpffsMount(bpffsDir)), true, 'mounted now');
    assert.equal(must(bpffsMount(bpffsDir)), false, 'already a bpffs');
    const pins = join(bpffsDir, 'mpctl');
    const h1 = must(bpfOpenLoad(OBJ, pins));
    const h2 = must(bpfOpenLoad(OBJ, pins));
    try {
      const key = Buffer.alloc(4);
      const value = Buffer.alloc(16);
      value.writeBigUInt64LE(42n, 0);
      must(mapUpdate(must(mapFd(h1, 'placeholder_stats')), key, value));
      assert.deepEqual(must(mapLookup(must(mapFd(h2, 'placeholder_stats')), key, 16)), value);
      const pinned = must(objGet(join(pins, 'placeholder_stats')));
      assert.deepEqual(must(mapLookup(pinned, key, 16)), value);
      must(closeFd(pinned));
      const gone = objGet(join(pins, 'nothing'));
      assert.equal(gone.isErr() && gone.error.kind, 'NotFound');
    } finally {
      bpfClose(h1);
      bpfClose(h2);
    }
  });

  it('resolves the library next to package.json', () => {
    assert.equal(nativeLibPath(), join(ROOT, 'build/native/libmpctl.so'));
  });
});
