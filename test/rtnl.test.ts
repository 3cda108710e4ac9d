// The rtnetlink wrapper against the kernel: requests issued at once on one socket all succeed.
// The netlink package assembles one multipart reply per socket; a dump spread over several
// datagrams with another request's reply between its parts failed both ("Multipart message not
// terminated properly", seen on an RP's start). Runs in a namespace of its own, deleted after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openRtnl } from '../src/netlink/rtnl.js';
import { createNamespace, deleteNamespace } from '../src/lab/namespaces.js';
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
