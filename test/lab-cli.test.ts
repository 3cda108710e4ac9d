// The lab through the CLI: up/status --json/exec/set/down, exit codes and messages.
//
//   client ── lp ══ isp1, isp2 ══ inet ── rp ── server
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uniqueLabName, reapStaleTestLabs } from './helpers/lab.js';

const mpctl = (...args: string[]) => {
  const r = spawnSync(join(import.meta.dirname, '..', 'bin', 'mpctl'), args, { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

test('mpctl lab: up from a TOML scenario, status --json, exec with names, set, down', { timeout: 180_000 }, async (t) => {
  await reapStaleTestLabs();
  const name = uniqueLabName();
  const file = join(tmpdir(), `${name}.toml`);
  writeFileSync(file, '[[links]]\nlabel = "dsl"\nrate = "20mbit"\ndelay = "5ms"\n\n[[links]]\nlabel = "lte"\nrate = "10mbit"\n[links.up]\ndelay = "20ms"\n');
  try {
    const up = mpctl('lab', 'up', '--name', name, '--scenario', file, '--no-bond', '--json');
    assert.equal(up.code, 0, up.err);
    const st = JSON.parse(mpctl('lab', 'status', '--name', name, '--json').out);
    assert.equal(st.name, name);
    assert.deepEqual(st.nodes.map((n: { node: string }) => n.node), ['client', 'cgw', 'lp', 'isp1', 'isp2', 'inet', 'rp', 'sgw', 'server', 'attacker'], 'the default lab: routed hosts (cgw, sgw)');
    for (const n of st.nodes) assert.equal(n.ns, `mp-${name}-${n.node}`);
    const lan = st.nodes.find((n: { node: string }) => n.node === 'client').interfaces[0];
    assert.deepEqual(lan.addresses.filter((a: string) => !a.startsWith('fe80:')).sort(), ['10.10.0.2/24', 'fd00:10::2/64']);
    assert.equal(st.links[1].label, 'lte');
    assert.equal(st.links[1].up.delayUs, 20_000);
    assert.equal(st.links[1].down.delayUs, 0);
    assert.equal(st.links[0].up.rateBps, 20e6);
    assert.ok(st.links[0].up.live.stats, 'live emulator counters');

    await t.test('exec: node names resolve inside the lab (IPv4 and IPv6)', () => {
      const p4 = mpctl('lab', 'exec', '--name', name, 'client', '--', 'ping', '-4', '-c', '1', '-W', '2', 'server');
      assert.equal(p4.code, 0, p4.out + p4.err);
      const p6 = mpctl('lab', 'exec', '--name', name, 'client', '--', 'ping', '-6', '-c', '1', '-W', '2', 'server');
      assert.equal(p6.code, 0, p6.out + p6.err);
      assert.equal(mpctl('lab', 'exec', '--name', name, 'server', '--', 'false').code, 1, 'exit code passes through');
    });

    await t.test('set changes live settings; bad values name the flag and quote the value', () => {
      assert.equal(mpctl('lab', 'set', '--name', name, 'lte', '--rate', '5mbit', '--dir', 'down').code, 0);
      const s2 = JSON.parse(mpctl('lab', 'status', '--name', name, '--json').out);
      assert.equal(s2.links[1].down.rateBps, 5e6);
      assert.equal(s2.links[1].up.rateBps, 10e6);
      const bad = mpctl('lab', 'set', '--name', name, 'isp1', '--delay', 'soon');
      assert.equal(bad.code, 2);
      assert.match(bad.err, /--delay: .*"soon"/);
      const missing = mpctl('lab', 'set', '--name', name, 'isp9', '--delay', '1ms');
      assert.equal(missing.code, 3);
      assert.match(missing.err, /no link isp9/);
      const human = mpctl('lab', 'status', '--name', name);
      assert.match(human.out, /isp2 lte/);
    });
  } finally {
    const d = mpctl('lab', 'down', '--name', name);
    assert.equal(d.code, 0, d.err);
  }
  assert.equal(mpctl('lab', 'status', '--name', name).code, 3, 'status of a lab that is down: not found');
});
