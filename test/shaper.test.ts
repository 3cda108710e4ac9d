// Per-link shaping at run time (src/run/shaper.ts): the class rate a controller's output gives,
// and LinkShaper writing it into a real htb class (a namespace of its own, deleted after).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { err, ok } from 'neverthrow';
import { execFileSync } from 'node:child_process';
import { openRtnl, type Rtnl } from '../src/netlink/rtnl.js';
import { createNamespace, deleteNamespace } from '../src/lab/namespaces.js';
import { nsPrefix } from '../src/lab/topology.js';
import { FRAME_RATIO, LinkShaper, MIN_LIMIT_BYTES, openRate, openShaper, plannedRate, SHAPE_GAIN, shapeLimitBytes, shapeRate } from '../src/run/shaper.js';
import { applyPlan, revertAll, type FilterPort } from '../src/apply/apply.js';
import { SHAPE_HANDLE } from '../src/plan/plan.js';
import type { PlanStep } from '../src/plan/types.js';
import { describeError } from '../src/errors.js';
import { uniqueLabName } from './helpers/lab.js';

describe('shaping: the class rate of a link', () => {
  it('98 % of the larger of the pacing rate and the estimate, in frames: cruise under the link, a probe above it passes, a drain does not lower it', () => {
    const f = (ipBps: number) => Math.round(ipBps * FRAME_RATIO);
    assert.equal(shapeRate(20e6, 20e6), f(19.6e6), 'cruise');
    assert.equal(shapeRate(25e6, 20e6), f(24.5e6), 'probing at 1.25');
    assert.equal(shapeRate(15e6, 20e6), f(19.6e6), 'draining at 0.75: held at the estimate');
  });
  it('the scheduler plans a shaped link at 98 % of its pacing rate: the class\'s rate in cruise, in IP bytes', () => {
    assert.equal(plannedRate(20_000_000n), 19_600_000n);
    assert.equal(Math.round(Number(plannedRate(20_000_000n)) * FRAME_RATIO), shapeRate(20e6, 20e6));
  });
  it('a leaf queue of 150 ms of the rate, never under MIN_LIMIT_BYTES', () => {
    assert.equal(shapeLimitBytes(19.6e6), 367_500);
    assert.equal(shapeLimitBytes(1e6), MIN_LIMIT_BYTES);
  });

  it('logs 5 failed counter reads and 5 failed class writes, each of its own: reads failing every second do not silence a failed write', async () => {
    let writes = 0;
    const refused = { kind: 'NetlinkRejected' as const, op: 'test', errno: 'EINVAL' };
    const fake = {
      setHtbClass: async () => (writes++ === 0 ? ok(undefined) : err(refused)),
      leafStats: async () => err(refused),
      close: () => {},
    } as unknown as Rtnl;
    const logs: string[] = [];
    const shaper = new LinkShaper(fake, () => 'sa', 0x6d70, (m) => logs.push(m));
    shaper.update(0, 20e6, 20e6, true);
    await shaper.idle();
    for (let i = 0; i < 20; i++) {
      shaper.refreshQueues();
      await new Promise((r) => setImmediate(r));
    }
    shaper.update(0, 10e6, 10e6, true);
    await shaper.idle();
    assert.equal(logs.filter((m) => m.includes('counters could not be read')).length, 5);
    assert.equal(logs.filter((m) => m.includes('could not be set')).length, 1, logs.join(' | '));
  });
});

/** `tc class show` of the namespace's device: each class's rate in kbit/s (tc prints kbit/s or
 * Mbit/s, rounded). */
function classes(ns: string, dev: string): Record<string, number> {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'tc', 'class', 'show', 'dev', dev]).toString();
  const r: Record<string, number> = {};
  for (const m of out.matchAll(/class htb (\S+) .*?rate ([\d.]+)([KM])bit/g)) r[m[1]!] = Math.round(Number(m[2]) * (m[3] === 'M' ? 1000 : 1));
  return r;
}
const kbit = (bps: number) => Math.floor(bps / 1000);

/** A namespace of its own with veth pairs [device, peer] (each device up) for `fn`, deleted after. */
async function withDevices(suffix: string, pairs: readonly (readonly [string, string])[], fn: (ns: string, rt: Rtnl) => Promise<void>): Promise<void> {
  const ns = `${nsPrefix(uniqueLabName())}${suffix}`;
  assert.ok((await createNamespace(ns, null)).isOk());
  const rt = openRtnl(ns)._unsafeUnwrap();
  try {
    for (const [a, b] of pairs) {
      assert.ok((await rt.createVeth(a, b, null)).isOk());
      assert.ok((await rt.setLink(a, { up: true })).isOk());
    }
    await fn(ns, rt);
  } finally {
    rt.close();
    await deleteNamespace(ns);
  }
}

/** Shaper steps only: a filter step would be a bug here (as apply.test's noFilters). */
const noFilters: FilterPort = {
  attach: async () => err({ kind: 'Bug', message: 'no filters here' }),
  detach: async () => err({ kind: 'Bug', message: 'no filters here' }),
};

describe('shaping: LinkShaper against the kernel', () => {
  it('writes each link\'s class on its device, rewrites it only when the rate moved 1 % or more, and keeps the classes when closed', async () => {
    await withDevices('sh', [['sa', 'sb']], async (ns, rt) => {
      const logs: string[] = [];
      assert.ok((await rt.setHtbRoot('sa', 0x6d70)).isOk());
      const shaper = new LinkShaper(openRtnl(ns)._unsafeUnwrap(), (id) => (id < 2 ? 'sa' : null), 0x6d70, (m) => logs.push(m));
      shaper.update(0, 20e6, 20e6, true);
      shaper.update(1, 10e6, 8e6, true);
      shaper.update(2, 10e6, 10e6, true); // no device: nothing
      await shaper.idle();
      assert.deepEqual(classes(ns, 'sa'), { '6d70:1': kbit(shapeRate(20e6, 20e6)), '6d70:2': kbit(shapeRate(10e6, 8e6)) });
      shaper.update(0, 20.1e6, 20e6, true); // +0.5 %: not written
      await shaper.idle();
      assert.equal(shaper.rates().get(0), shapeRate(20e6, 20e6));
      shaper.update(0, 25e6, 20e6, true); // a probe
      shaper.update(0, 30e6, 20e6, true); // the newest wins over one not written yet (or follows it)
      await shaper.idle();
      assert.equal(classes(ns, 'sa')['6d70:1'], kbit(shapeRate(30e6, 20e6)));
      // no equalising queue on link 1 any more (cc.equalising): its class opens, status leaves it out
      shaper.update(1, 10e6, 8e6, false);
      await shaper.idle();
      assert.equal(classes(ns, 'sa')['6d70:2'], kbit(openRate(10e6, 8e6)));
      assert.deepEqual([...shaper.rates().keys()], [0]);
      shaper.update(1, 10e6, 8e6, true);
      await shaper.idle();
      assert.equal(classes(ns, 'sa')['6d70:2'], kbit(shapeRate(10e6, 8e6)), 'and shapes again');
      assert.deepEqual([...shaper.rates().keys()].sort(), [0, 1]);
      await shaper.close();
      shaper.update(0, 10e6, 10e6, true); // closed: ignored
      assert.equal(classes(ns, 'sa')['6d70:1'], kbit(shapeRate(30e6, 20e6)), 'the classes stay (down removes the root with them)');
      assert.deepEqual(logs, []);
    });
  });
});

describe('shaping: shape = "auto" against the kernel', () => {
  it("puts the htb root only over the kernel's default root; the run shapes those links and plans the others at their full rates", async () => {
    await withDevices('sa', [['sa', 'sb'], ['ta', 'tb']], async (ns, rt) => {
      const logs: string[] = [];
      // the operator's own root on ta
      assert.ok((await rt.setTbf('ta', { rateBps: 50e6, burstBytes: 32_000, limitBytes: 100_000 })).isOk());
      const env = { rt, ns, filters: noFilters, record: async () => ok(undefined) };
      const step = (dev: string, auto: boolean): PlanStep => ({ kind: 'shaper', dev, handle: SHAPE_HANDLE, ...(auto ? { ifOwnRoot: 'skip' as const } : {}) });
      // shape = true: up fails on ta, naming the key, and takes back what it did on sa
      const strict = await applyPlan(env, [step('sa', false), step('ta', false)]);
      assert.ok(strict.isErr());
      assert.match(describeError(strict.error), /shape.*ta has a root qdisc of its own \(tbf/);
      assert.equal((await rt.rootQdisc('sa'))._unsafeUnwrap()?.handle ?? 0, 0, 'rolled back: the kernel\'s default root');
      // shape = "auto": sa shaped, ta left as it was (nothing to undo there)
      const log = (await applyPlan(env, [step('sa', true), step('ta', true)]))._unsafeUnwrap();
      assert.deepEqual(log, [{ kind: 'shaper', dev: 'sa', handle: SHAPE_HANDLE }]);
      assert.deepEqual((await rt.rootQdisc('sa'))._unsafeUnwrap(), { kind: 'htb', handle: SHAPE_HANDLE });
      assert.equal((await rt.rootQdisc('ta'))._unsafeUnwrap()?.kind, 'tbf');
      // the run: link 0 leaves by sa, link 1 by ta
      const devOf = (id: number) => (id === 0 ? 'sa' : id === 1 ? 'ta' : null);
      const shaper = (await openShaper(devOf, ['sa', 'ta', 'sa'], (m) => logs.push(m), ns))._unsafeUnwrap();
      assert.equal(shaper.gainOf(0), SHAPE_GAIN);
      assert.equal(shaper.gainOf(1), 0);
      assert.equal(shaper.planned(0, 20_000_000n, true), plannedRate(20_000_000n));
      assert.equal(shaper.planned(0, 20_000_000n, false), 20_000_000n, 'no equalising queue: planned at the full rate');
      assert.equal(shaper.planned(1, 20_000_000n, true), 20_000_000n);
      shaper.update(0, 20e6, 20e6, true);
      shaper.update(1, 20e6, 20e6, true);
      await shaper.idle();
      assert.deepEqual(classes(ns, 'sa'), { '6d70:1': kbit(shapeRate(20e6, 20e6)) });
      assert.deepEqual(classes(ns, 'ta'), {}, 'no class under the operator\'s root');
      assert.deepEqual([...shaper.rates().keys()], [0]);
      assert.equal(logs.length, 1, logs.join('\n'));
      assert.match(logs[0]!, /^ta: not shaped, its root qdisc is not mpctl's \(tbf 1:\)/);
      await shaper.close();
      // down: our root goes, the operator's stays
      assert.ok((await revertAll(env, log)).isOk());
      assert.equal((await rt.rootQdisc('sa'))._unsafeUnwrap()?.handle ?? 0, 0);
      assert.equal((await rt.rootQdisc('ta'))._unsafeUnwrap()?.kind, 'tbf');
    });
  });
});
