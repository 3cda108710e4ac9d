// Teardown leaves nothing: after `down`, and after a test that throws midway, no namespace,
// /etc/netns entry, state file or emulator process of that lab remains. A failed `up` rolls back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { labDown, labStatus, labUp } from '../src/lab/lab.js';
import { listNamespaces } from '../src/lab/namespaces.js';
import { isAlive } from '../src/proc.js';
import { uniformScenario } from '../src/lab/scenario.js';
import { stateFile } from '../src/lab/state.js';
import { nsPrefix } from '../src/lab/topology.js';
import { uniqueLabName, withLab } from './helpers/lab.js';

async function assertGone(name: string, pids: number[]): Promise<void> {
  assert.deepEqual(await listNamespaces(nsPrefix(name)), [], 'no namespaces');
  const etc = existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((n) => n.startsWith(nsPrefix(name))) : [];
  assert.deepEqual(etc, [], 'no /etc/netns entries');
  assert.equal(existsSync(stateFile(name)), false, 'no state file');
  for (const p of pids) assert.equal(isAlive(p), false, `process ${p} is gone`);
}

async function emulatorPids(name: string): Promise<number[]> {
  const s = await labStatus(name);
  assert.ok(s.isOk());
  const pids = s.value.links.map((l) => l.emulatorPid);
  assert.ok(pids.every((p) => typeof p === 'number' && p > 0), 'every link has a running emulator');
  return pids as number[];
}

test('down removes namespaces, veths, processes and files; repeating it is harmless', async () => {
  const name = uniqueLabName();
  const up = await labUp({ name, scenario: uniformScenario(2)._unsafeUnwrap(), bond: false, routedHosts: false });
  assert.ok(up.isOk(), JSON.stringify(up.isErr() && up.error));
  assert.equal(up.value.routedHosts, undefined, 'the state says the hosts are not routed');
  assert.equal((await listNamespaces(nsPrefix(name))).length, 2 + 2 + 4); // client lp, 2 isps, inet rp server attacker
  const pids = await emulatorPids(name);
  const again = await labUp({ name, scenario: uniformScenario(2)._unsafeUnwrap(), bond: false });
  assert.ok(again.isErr() && again.error.kind === 'Conflict', 'a second up of the same lab is refused');
  const d = await labDown(name);
  assert.ok(d.isOk());
  await assertGone(name, pids);
  const d2 = await labDown(name);
  assert.ok(d2.isOk() && d2.value.removed.length === 0);
});

test('routed hosts (the default): up makes the routers, status shows them, down removes them with the rest', async () => {
  const name = uniqueLabName();
  const up = await labUp({ name, scenario: uniformScenario(1)._unsafeUnwrap(), bond: false });
  assert.ok(up.isOk(), JSON.stringify(up.isErr() && up.error));
  assert.equal(up.value.routedHosts, true, 'the state remembers the mode');
  assert.equal(up.value.shape, true, 'and that its portals shape');
  const nss = await listNamespaces(nsPrefix(name));
  assert.equal(nss.length, 2 + 1 + 4 + 2); // client lp, 1 isp, inet rp server attacker, cgw sgw
  for (const router of ['cgw', 'sgw']) assert.ok(nss.includes(`${nsPrefix(name)}${router}`), `${router} is up`);
  const st = await labStatus(name);
  assert.ok(st.isOk());
  assert.deepEqual(st.value.nodes.filter((n) => n.present && ['cgw', 'sgw'].includes(n.node)).map((n) => n.node), ['cgw', 'sgw'], 'status shows the routers');
  const pids = await emulatorPids(name);
  const d = await labDown(name);
  assert.ok(d.isOk());
  assert.equal(d.value.removed.length, nss.length, 'down removed every namespace');
  await assertGone(name, pids);
});

test('a lab that shapes needs routed hosts: up refuses shape without them and makes nothing', async () => {
  const name = uniqueLabName();
  const up = await labUp({ name, scenario: uniformScenario(1)._unsafeUnwrap(), bond: false, routedHosts: false, shape: true });
  assert.ok(up.isErr() && up.error.kind === 'Conflict' && /needs routed hosts/.test(up.error.message), JSON.stringify(up.isErr() ? up.error : up.value));
  assert.deepEqual(await listNamespaces(nsPrefix(name)), []);
});

test('a test that throws midway leaves nothing behind', async () => {
  let seen = '';
  let pids: number[] = [];
  await assert.rejects(
    withLab(uniformScenario(1)._unsafeUnwrap(), async (name) => {
      seen = name;
      pids = await emulatorPids(name);
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.ok(seen);
  await assertGone(seen, pids);
});

test('a failed up rolls back what it made', async () => {
  const name = uniqueLabName();
  const prev = process.env.MPCTL_LINKEM;
  process.env.MPCTL_LINKEM = '/nonexistent/linkem';
  try {
    const up = await labUp({ name, scenario: uniformScenario(2)._unsafeUnwrap(), bond: false });
    assert.ok(up.isErr(), 'up fails when the emulator cannot start');
  } finally {
    if (prev === undefined) delete process.env.MPCTL_LINKEM;
    else process.env.MPCTL_LINKEM = prev;
  }
  await assertGone(name, []);
});
