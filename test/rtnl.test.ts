// The rtnetlink wrapper against the kernel: requests issued at once on one socket all succeed.
// The netlink package assembles one multipart reply per socket; a dump spread over several
// datagrams with another request's reply between its parts failed both ("Multipart message not
// terminated properly", seen on an RP's start). Runs in a namespace of its own, deleted after.
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRtNetlink, type RtNetlinkSocket } from 'netlink';
import { openRtnl, type Rtnl } from '../src/netlink/rtnl.js';
import { parseAttrs } from '../src/netlink/attr.js';
import { withNetns } from '../src/native/netns.js';
import { createNamespace, deleteNamespace, run } from '../src/lab/namespaces.js';
import { nsPrefix } from '../src/lab/topology.js';
import { uniqueLabName } from './helpers/lab.js';

test('requests issued at once on one socket, dumps of many links among them, all succeed', async () => {
  const ns = `${nsPrefix(uniqueLabName())}nl`;
  assert.ok((await createNamespace(ns, null)).isOk());
  const rt = openRtnl(ns)._unsafeUnwrap();
  try {
    // 60 interfaces: a link dump of several datagrams (a veth's message is ~1.5 kB)
    for (let i = 0; i < 30; i++) {
      const r = await rt.createVeth(`va${i}`, `vb${i}`, null);
      assert.ok(r.isOk(), JSON.stringify(r.isErr() && r.error));
    }
    const jobs: Promise<{ isOk(): boolean; isErr(): boolean; error?: unknown }>[] = [];
    for (let i = 0; i < 30; i++) {
      jobs.push(rt.listLinks());
      jobs.push(rt.setLink(`va${i}`, { mtu: 1400 + i })); // a dump by name, then a request
      if (i % 3 === 0) jobs.push(rt.listAddresses());
    }
    const rs = await Promise.all(jobs);
    const failed = rs.filter((r) => r.isErr()).map((r) => JSON.stringify(r.error));
    assert.deepEqual(failed, [], `${failed.length} of ${rs.length} failed`);
    const links = (await rt.listLinks())._unsafeUnwrap();
    assert.ok(links.length >= 61, `${links.length} links`);
    for (let i = 0; i < 30; i++) assert.equal(links.find((l) => l.name === `va${i}`)?.mtu, 1400 + i);
  } finally {
    rt.close();
    await deleteNamespace(ns);
  }
});

// The per-link shaper's htb through rtnetlink against the kernel: a veth pair between two
// namespaces of this run; what the kernel holds is read back over a netlink socket of the test's
// own, and packets with SO_PRIORITY = classid (as the data path's skb->priority) are counted in
// their class.
describe('htb root, per-link classes with bfifo leaves (setHtbRoot, setHtbClass)', () => {
  const prefix = nsPrefix(uniqueLabName());
  const nsA = `${prefix}ha`;
  const nsB = `${prefix}hb`;
  const MAJOR = 0x4d50;
  const cls = (minor: number): number => ((MAJOR << 16) | minor) >>> 0;
  let rt: Rtnl;
  let rtB: Rtnl;
  let sock: RtNetlinkSocket;
  let ifindex = 0;

  before(async () => {
    assert.ok((await createNamespace(nsA, null)).isOk());
    assert.ok((await createNamespace(nsB, null)).isOk());
    rt = openRtnl(nsA)._unsafeUnwrap();
    rtB = openRtnl(nsB)._unsafeUnwrap();
    sock = withNetns(nsA, () => createRtNetlink())._unsafeUnwrap();
    assert.ok((await rt.createVeth('sa', 'sb', nsB)).isOk());
    assert.ok((await rt.addAddress('sa', '10.77.0.1/24')).isOk());
    assert.ok((await rtB.addAddress('sb', '10.77.0.2/24')).isOk());
    assert.ok((await rt.setLink('sa', { up: true })).isOk());
    assert.ok((await rtB.setLink('sb', { up: true })).isOk());
    ifindex = (await rt.linkIndex('sa'))._unsafeUnwrap();
  });

  after(async () => {
    rt?.close();
    rtB?.close();
    try {
      sock?.socket.close();
    } catch {
      /* closed */
    }
    await deleteNamespace(nsA);
    await deleteNamespace(nsB);
  });

  /** struct tc_stats (TCA_STATS): bytes u64, packets u32, drops u32, ..., backlog u32 at 32 */
  const stats = (b: Buffer | undefined) => ({
    bytes: b ? Number(b.readBigUInt64LE(0)) : 0,
    packets: b ? b.readUInt32LE(8) : 0,
    drops: b ? b.readUInt32LE(12) : 0,
    backlog: b ? b.readUInt32LE(32) : 0,
  });

  /** sa's htb classes: rate/ceil (bytes/s, RATE64 when given), buckets, leaf handle, counters */
  async function classes() {
    const out = new Map<number, { rate: number; ceil: number; buffer: number; leaf: number; bytes: number; packets: number; backlog: number }>();
    for (const c of await sock.getTrafficClasses({ ifindex })) {
      if (c.data.ifindex !== ifindex || c.attrs.kind !== 'htb') continue;
      const o = parseAttrs(c.attrs.options!);
      const parms = o.get(1)!;
      out.set(c.data.handle!, {
        rate: o.get(6) ? Number(o.get(6)!.readBigUInt64LE(0)) : parms.readUInt32LE(8),
        ceil: o.get(7) ? Number(o.get(7)!.readBigUInt64LE(0)) : parms.readUInt32LE(20),
        buffer: parms.readUInt32LE(24),
        leaf: c.data.info!,
        ...stats(c.attrs.stats),
      });
    }
    return out;
  }

  async function qdiscs() {
    return (await sock.getQdiscs()).filter((q) => q.data.ifindex === ifindex);
  }

  /** the htb qdisc's direct queue: packets that matched no class, and its length */
  async function direct() {
    const q = (await qdiscs()).find((x) => x.attrs.kind === 'htb')!;
    const o = parseAttrs(q.attrs.options!);
    return { packets: o.get(2)!.readUInt32LE(16), qlen: o.get(5)!.readUInt32LE(0) };
  }

  async function leaf(minor: number) {
    const q = (await qdiscs()).find((x) => x.data.parent === cls(minor));
    return q && { kind: q.attrs.kind, handle: q.data.handle, limit: q.attrs.options!.readUInt32LE(0), ...stats(q.attrs.stats) };
  }

  /** `count` UDP datagrams of `size` bytes from sa to sb with SO_PRIORITY `prio` (0: unset) */
  async function send(prio: number, count: number, size = 1000) {
    const py = [
      'import socket,sys',
      's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)',
      'p,n,z=map(int,sys.argv[1:4])',
      'if p: s.setsockopt(socket.SOL_SOCKET,socket.SO_PRIORITY,p)',
      's.setsockopt(socket.SOL_SOCKET,32,16<<20)', // SO_SNDBUFFORCE: a burst all queued at once
      'for _ in range(n): s.sendto(bytes(z),("10.77.0.2",9))',
    ].join('\n');
    const r = await run('ip', ['netns', 'exec', nsA, 'python3', '-c', py, String(prio), String(count), String(size)]);
    assert.ok(r.isOk(), JSON.stringify(r.isErr() && r.error));
  }

  it('reports the kernel default root (handle 0), then an htb root major:0 in place of a tbf', async () => {
    const def = (await rt.rootQdisc('sa'))._unsafeUnwrap();
    assert.equal(def?.handle, 0, JSON.stringify(def));
    assert.ok((await rt.setTbf('sa', { rateBps: 10e6, burstBytes: 3028, limitBytes: 30000 })).isOk());
    assert.deepEqual((await rt.rootQdisc('sa'))._unsafeUnwrap(), { kind: 'tbf', handle: 0x10000 });
    const r = await rt.setHtbRoot('sa', MAJOR, 500);
    assert.ok(r.isOk(), JSON.stringify(r.isErr() && r.error));
    assert.deepEqual((await rt.rootQdisc('sa'))._unsafeUnwrap(), { kind: 'htb', handle: MAJOR << 16 });
    assert.equal((await direct()).qlen, 500);
  });

  it('creates two classes at their rates with bfifo leaves (major+minor):0', async () => {
    for (const [minor, rateBps, limitBytes] of [
      [1, 20e6, 200_000],
      [2, 8e6, 1_000_000],
    ] as const) {
      const r = await rt.setHtbClass('sa', MAJOR, minor, { rateBps, limitBytes });
      assert.ok(r.isOk(), JSON.stringify(r.isErr() && r.error));
    }
    const cs = await classes();
    assert.deepEqual([...cs.keys()].sort(), [cls(1), cls(2)]);
    assert.equal(cs.get(cls(1))!.rate, 2_500_000);
    assert.equal(cs.get(cls(1))!.ceil, 2_500_000);
    assert.equal(cs.get(cls(2))!.rate, 1_000_000);
    assert.equal(cs.get(cls(2))!.ceil, 1_000_000);
    // buckets: 1 ms of 2.5 MB/s is 2500 B, below two frames: 3028 B = 1.2112 ms = 18925 ticks of 64 ns
    assert.equal(cs.get(cls(1))!.buffer, Math.floor((3028 * 1e9) / 2_500_000 / 64));
    for (const [minor, limit] of [
      [1, 200_000],
      [2, 1_000_000],
    ] as const) {
      const l = await leaf(minor);
      assert.deepEqual({ kind: l?.kind, handle: l?.handle, limit: l?.limit }, { kind: 'bfifo', handle: (MAJOR + minor) << 16, limit });
      assert.equal(cs.get(cls(minor))!.leaf, (MAJOR + minor) << 16);
    }
    // again on the htb already there: a no-op, classes kept (read here, or the root the caller read)
    assert.ok((await rt.setHtbRoot('sa', MAJOR)).isOk());
    const root = await rt.rootQdisc('sa');
    assert.deepEqual(root._unsafeUnwrap(), { kind: 'htb', handle: MAJOR << 16 });
    assert.ok((await rt.setHtbRoot('sa', MAJOR, 1000, root._unsafeUnwrap())).isOk());
    assert.equal((await classes()).size, 2);
    assert.equal((await direct()).qlen, 500);
  });

  it('sends packets whose priority is a classid through that class, the rest direct', async () => {
    await send(0, 5); // also resolves the neighbour
    await sleep(100);
    const d0 = await direct();
    assert.ok(d0.packets >= 5, `direct ${d0.packets}`);
    const c0 = await classes();
    assert.equal(c0.get(cls(1))!.packets + c0.get(cls(2))!.packets, 0);
    await send(cls(1), 20);
    await sleep(100);
    const c1 = await classes();
    assert.equal(c1.get(cls(1))!.packets, 20);
    assert.equal(c1.get(cls(2))!.packets, 0);
    assert.equal((await leaf(1))!.packets, 20);
    // nothing of the classified burst went direct (the link's own IPv6 chatter may have)
    assert.ok((await direct()).packets - d0.packets < 20);
  });

  it("changes a live class's rate and its leaf's limit in place, counters kept", async () => {
    assert.ok((await rt.setHtbClass('sa', MAJOR, 1, { rateBps: 40e6, limitBytes: 300_000 })).isOk());
    let c = (await classes()).get(cls(1))!;
    assert.deepEqual([c.rate, c.ceil, c.packets], [5_000_000, 5_000_000, 20]);
    assert.equal((await leaf(1))!.limit, 300_000);
    assert.ok((await rt.setHtbClass('sa', MAJOR, 1, { rateBps: 5e6, limitBytes: 50_000 })).isOk());
    c = (await classes()).get(cls(1))!;
    assert.deepEqual([c.rate, c.ceil, c.packets], [625_000, 625_000, 20]);
    const l = (await leaf(1))!;
    assert.deepEqual([l.handle, l.limit, l.packets], [(MAJOR + 1) << 16, 50_000, 20]);
    // a rate past 2^32-1 bytes/s goes in TCA_HTB_RATE64/CEIL64
    assert.ok((await rt.setHtbClass('sa', MAJOR, 3, { rateBps: 40e9, limitBytes: 100_000 })).isOk());
    c = (await classes()).get(cls(3))!;
    assert.deepEqual([c.rate, c.ceil], [5e9, 5e9]);
    assert.ok((await rt.deleteHtbClass('sa', MAJOR, 3)).isOk());
  });

  it('holds a burst to the class rate (8 Mbit/s: about 1 MB/s)', async () => {
    await send(cls(2), 600); // ~625 kB at once: the leaf (1 MB) queues it, the class drains it
    const t1 = performance.now();
    const a = (await classes()).get(cls(2))!;
    await sleep(250);
    const t2 = performance.now();
    const b = (await classes()).get(cls(2))!;
    assert.ok(b.backlog > 0, `backlog ${b.backlog}: the burst should still be queued`);
    const rate = (b.bytes - a.bytes) / ((t2 - t1) / 1000);
    assert.ok(rate > 0.7e6 && rate < 1.3e6, `${Math.round(rate)} B/s`);
    assert.equal((await leaf(2))!.drops, 0);
  });

  it('counts what a full leaf drops (leafStats: the bfifo counters by class minor)', async () => {
    assert.ok((await rt.setHtbClass('sa', MAJOR, 4, { rateBps: 1e6, limitBytes: 30_000 })).isOk());
    const before = (await rt.leafStats(['sa'], MAJOR))._unsafeUnwrap().get('sa')!;
    assert.deepEqual([...before.keys()].sort(), [1, 2, 4]);
    assert.deepEqual([before.get(4)!.packets, before.get(4)!.drops], [0, 0]);
    await send(cls(4), 100); // 100 frames of 1042 B at once into 30 kB at 125 kB/s: ~28 fit
    const after = (await rt.leafStats(['sa'], MAJOR))._unsafeUnwrap().get('sa')!.get(4)!;
    const kernel = (await leaf(4))!;
    assert.equal(after.drops, kernel.drops, 'the same counter the kernel reports');
    assert.ok(after.drops >= 60 && after.drops <= 75, `drops ${after.drops}`);
    assert.equal(after.packets + after.qlen + after.drops, 100, `sent ${after.packets} + queued ${after.qlen} + dropped ${after.drops}`);
    assert.ok(after.backlogBytes > 0 && after.backlogBytes <= 30_000, `backlog ${after.backlogBytes}`);
    assert.equal(before.get(2)!.drops, 0);
    assert.ok((await rt.deleteHtbClass('sa', MAJOR, 4)).isOk());
    const some = (await rt.leafStats(['sa', 'nope0'], MAJOR))._unsafeUnwrap();
    assert.deepEqual([...some.keys()], ['sa'], 'a device that is gone is left out, the others read');
  });

  it('deletes a class and its leaf, then the root (the kernel default comes back); nothing left is success', async () => {
    assert.ok((await rt.deleteHtbClass('sa', MAJOR, 1)).isOk());
    assert.deepEqual([...(await classes()).keys()], [cls(2)]);
    assert.equal(await leaf(1), undefined);
    assert.ok((await rt.deleteHtbClass('sa', MAJOR, 1)).isOk());
    // another handle: not ours, stays
    assert.ok((await rt.deleteRootQdisc('sa', 0x10000)).isOk());
    assert.equal((await rt.rootQdisc('sa'))._unsafeUnwrap()?.kind, 'htb');
    assert.ok((await rt.deleteRootQdisc('sa', MAJOR << 16)).isOk());
    const def = (await rt.rootQdisc('sa'))._unsafeUnwrap();
    assert.equal(def?.handle, 0, JSON.stringify(def));
    assert.ok((await rt.deleteRootQdisc('sa')).isOk());
    assert.ok((await rt.setTbf('sa', null)).isOk());
    assert.ok((await rt.deleteHtbClass('sa', MAJOR, 2)).isOk());
  });

  it('names a missing device, also once the device of a remembered ifindex is gone', async () => {
    for (const r of [
      await rt.rootQdisc('nosuch0'),
      await rt.setHtbRoot('nosuch0', MAJOR),
      await rt.setHtbClass('nosuch0', MAJOR, 1, { rateBps: 1e6, limitBytes: 10_000 }),
      await rt.deleteHtbClass('nosuch0', MAJOR, 1),
      await rt.deleteRootQdisc('nosuch0'),
    ]) {
      assert.ok(r.isErr() && r.error.kind === 'NotFound' && r.error.message.includes('nosuch0'), JSON.stringify(r));
    }
    assert.ok((await rt.setHtbRoot('sa', MAJOR)).isOk());
    assert.ok((await rt.setHtbClass('sa', MAJOR, 1, { rateBps: 1e6, limitBytes: 10_000 })).isOk()); // sa's index remembered
    assert.ok((await rt.deleteLink('sa')).isOk());
    const r = await rt.setHtbClass('sa', MAJOR, 1, { rateBps: 2e6, limitBytes: 10_000 });
    assert.ok(r.isErr() && r.error.kind === 'NotFound' && r.error.message.includes('sa'), JSON.stringify(r));
    const bad = await rt.setHtbClass('sa', MAJOR, 0, { rateBps: 2e6, limitBytes: 10_000 });
    assert.ok(bad.isErr() && bad.error.kind === 'Bug');
  });
});
