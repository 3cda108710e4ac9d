// apply/revert of the segmentation loop's devices against a recording fake of the netlink port:
// a veth pair apply created is deleted on down, one that already existed is left alone, and
// link settings come back to what they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { err, ok, type Result } from 'neverthrow';
import { describeError, type MpError } from '../src/errors.js';
import { exitCodeOf } from '../src/cli/exit.js';
import type { LinkInfo, Rtnl } from '../src/netlink/rtnl.js';
import { applyPlan, revertAll, type FilterPort, type Undo } from '../src/apply/apply.js';
import type { PlanStep } from '../src/plan/types.js';

/** Links only: every call is recorded; what the tests do not need is refused. */
class FakeRtnl {
  readonly ns = null;
  calls: string[] = [];
  links = new Map<string, LinkInfo>();
  private peers = new Map<string, string>();
  private next = 10;
  /** names whose deletion the kernel refuses (EBUSY) */
  busy = new Set<string>();

  add(name: string, o: Partial<LinkInfo> = {}): void {
    this.links.set(name, { index: this.next++, name, up: false, mtu: 1500, mac: '', arp: true, ...o });
  }
  async listLinks(): Promise<Result<LinkInfo[], MpError>> {
    return ok([...this.links.values()].map((l) => ({ ...l })));
  }
  async linkIndex(name: string): Promise<Result<number, MpError>> {
    const l = this.links.get(name);
    return l ? ok(l.index) : err({ kind: 'NotFound', what: 'interface', message: name });
  }
  async createVeth(name: string, peer: string): Promise<Result<void, MpError>> {
    this.calls.push(`createVeth ${name} ${peer}`);
    if (this.links.has(name) || this.links.has(peer)) return err({ kind: 'NetlinkRejected', op: 'create veth', errno: 'EEXIST' });
    this.add(name);
    this.add(peer);
    this.peers.set(name, peer).set(peer, name);
    return ok(undefined);
  }
  async setLink(name: string, o: { up?: boolean; mtu?: number; arp?: boolean }): Promise<Result<void, MpError>> {
    this.calls.push(`setLink ${name} ${JSON.stringify(o)}`);
    const l = this.links.get(name);
    if (!l) return err({ kind: 'NotFound', what: 'interface', message: name });
    Object.assign(l, o);
    return ok(undefined);
  }
  async deleteLink(name: string): Promise<Result<void, MpError>> {
    this.calls.push(`deleteLink ${name}`);
    if (this.busy.has(name)) return err({ kind: 'NetlinkRejected', op: 'delete link', errno: 'EBUSY' });
    if (!this.links.delete(name)) return err({ kind: 'NotFound', what: 'interface', message: name });
    this.links.delete(this.peers.get(name) ?? ''); // a veth goes with its peer
    return ok(undefined);
  }
  close(): void {}
}

const noFilters: FilterPort = {
  attach: async () => err({ kind: 'Bug', message: 'no filters here' }),
  detach: async () => err({ kind: 'Bug', message: 'no filters here' }),
};

const LOOP: PlanStep[] = [
  { kind: 'veth', name: 'mpf1a', peer: 'mpf1b' },
  { kind: 'link', dev: 'mpf1a', mtu: 1448, arp: false, up: true },
  { kind: 'link', dev: 'mpf1b', mtu: 65535, up: true },
];

function env(rt: FakeRtnl, records: Undo[][] = []) {
  return {
    rt: rt as unknown as Rtnl,
    ns: null,
    filters: noFilters,
    record: async (l: Undo[]): Promise<Result<void, MpError>> => {
      records.push([...l]);
      return ok(undefined);
    },
  };
}

test('a veth pair apply created is configured, and deleted on down', async () => {
  const rt = new FakeRtnl();
  const log = (await applyPlan(env(rt), LOOP))._unsafeUnwrap();
  assert.deepEqual(rt.links.get('mpf1a'), { ...rt.links.get('mpf1a')!, mtu: 1448, arp: false, up: true });
  assert.equal(rt.links.get('mpf1b')?.mtu, 65535);
  assert.deepEqual(log.map((u) => u.kind), ['veth', 'link', 'link']);
  assert.ok((await revertAll(env(rt), log)).isOk());
  assert.equal(rt.links.size, 0, 'both ends gone');
  assert.equal(rt.calls.at(-1), 'deleteLink mpf1a');
});

test('a veth pair that already exists is set up but left on down, with its settings restored', async () => {
  const rt = new FakeRtnl();
  rt.add('mpf1a', { mtu: 1500, up: false });
  rt.add('mpf1b', { mtu: 65535, up: true });
  const log = (await applyPlan(env(rt), LOOP))._unsafeUnwrap();
  assert.deepEqual(log, [{ kind: 'link', dev: 'mpf1a', old: { mtu: 1500, arp: true, up: false } }], 'only what changed is recorded');
  assert.ok((await revertAll(env(rt), log)).isOk());
  assert.deepEqual([rt.links.get('mpf1a')?.mtu, rt.links.get('mpf1a')?.arp, rt.links.get('mpf1a')?.up], [1500, true, false]);
  assert.ok(rt.links.has('mpf1b'));
  assert.ok(!rt.calls.some((c) => c.startsWith('deleteLink')));
});

test('reverting a link setting of a device that is gone already is fine', async () => {
  const rt = new FakeRtnl();
  const log = (await applyPlan(env(rt), LOOP))._unsafeUnwrap();
  rt.links.clear(); // someone deleted the pair
  assert.ok((await revertAll(env(rt), log)).isOk());
});

test('an undo that fails stays in the log and the record, and down names it; the next down finishes', async () => {
  const rt = new FakeRtnl();
  const log = (await applyPlan(env(rt), LOOP))._unsafeUnwrap();
  rt.busy.add('mpf1a');
  const records: Undo[][] = [];
  const r = await revertAll(env(rt, records), log);
  assert.ok(r.isErr());
  assert.equal(r.error.kind, 'UndoIncomplete');
  assert.equal(describeError(r.error), '1 change could not be undone and stays in the portal record for the next `mpctl down` (veth mpf1a): netlink delete link rejected: EBUSY');
  assert.equal(exitCodeOf(r.error), 1);
  assert.deepEqual(log, [{ kind: 'veth', name: 'mpf1a' }], 'the failed entry is kept');
  assert.deepEqual(records.at(-1), [{ kind: 'veth', name: 'mpf1a' }], 'and recorded');
  assert.equal(rt.links.get('mpf1a')?.mtu, 1500, 'the entries that could be reverted were');
  rt.busy.clear();
  assert.ok((await revertAll(env(rt), log)).isOk(), 'safe to repeat');
  assert.deepEqual(log, []);
  assert.equal(rt.links.size, 0);
});

test('a failed up whose rollback fails too reports both and keeps what is left', async () => {
  const rt = new FakeRtnl();
  rt.busy.add('mpf1a');
  const log: Undo[] = [];
  const r = await applyPlan(env(rt), [...LOOP, { kind: 'link', dev: 'nosuch', up: true }], log);
  assert.ok(r.isErr());
  assert.equal(r.error.kind, 'UndoIncomplete');
  assert.match(describeError(r.error), /^no interface nosuch; then 1 change could not be undone .*\(veth mpf1a\): netlink delete link rejected: EBUSY$/);
  assert.deepEqual(log, [{ kind: 'veth', name: 'mpf1a' }]);
});

test('a change the record cannot hold is taken back at once', async () => {
  const rt = new FakeRtnl();
  const denied: MpError = { kind: 'PermissionDenied', message: 'cannot write state.json' };
  let writes = 0;
  const e = { ...env(rt), record: async (): Promise<Result<void, MpError>> => (writes++ === 0 ? err(denied) : ok(undefined)) };
  const r = await applyPlan(e, LOOP);
  assert.ok(r.isErr());
  assert.deepEqual(r.error, denied);
  assert.equal(rt.links.size, 0, 'the veth pair it could not record is deleted');
});
