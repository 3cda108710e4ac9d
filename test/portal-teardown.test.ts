// `mpctl down` returns a namespace to exactly its prior state, and `up` twice is a no-op.
//
//   client ── lp ══ isp1, isp2 ══ inet ── rp ── server     (bare lab; the test runs the portals)
//
// Snapshot per portal namespace: ip rule, ip route show table all, ip -d link, tc qdisc/filter
// of every interface, neighbour proxies, the sysctls mpctl touches, and the pinned objects. The
// portals run with `shape = true`: their htb roots go with down too (the leaf queues of its
// classes, whose limits follow the controllers' rates, and its count of unshaped packets are
// left out of the snapshot).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { generateBondKeys, startBond, stopBond, portalInstance } from '../src/lab/bond.js';
import { mpctlPath } from '../src/lab/lab.js';
import { run } from '../src/lab/namespaces.js';
import { uniformScenario } from '../src/lab/scenario.js';
import { labDir, readState } from '../src/lab/state.js';
import { portalDir } from '../src/apply/state.js';
import { nsName } from '../src/lab/topology.js';
import { pinDir } from '../src/plan/pins.js';
import { withLab } from './helpers/lab.js';

async function sh(ns: string, ...args: string[]): Promise<string> {
  const r = await run('ip', ['netns', 'exec', ns, ...args]);
  return r.isOk() ? r.value : `ERR ${JSON.stringify(r.error)}`;
}

async function snapshot(ns: string): Promise<string> {
  const out: string[] = [];
  for (const fam of ['-4', '-6']) {
    out.push(await sh(ns, 'ip', fam, 'rule'));
    out.push(await sh(ns, 'ip', fam, 'route', 'show', 'table', 'all'));
    out.push(await sh(ns, 'ip', fam, 'neigh', 'show', 'proxy'));
  }
  // link details without counters/neighbour caches that change with traffic
  out.push((await sh(ns, 'ip', '-d', 'link')).replace(/\s+(link\/ether|alias).*$/gm, ''));
  const ifaces = (await sh(ns, 'ls', '/sys/class/net')).split('\n').filter(Boolean);
  for (const i of ifaces) {
    out.push(`${i}: ${(await sh(ns, 'tc', 'qdisc', 'show', 'dev', i)).split('\n').filter((l) => !/ parent 6d70:/.test(l)).join('\n').replace(/ direct_packets_stat \d+/, '')}`);
    for (const dir of ['ingress', 'egress']) out.push(`${i} ${dir}: ${await sh(ns, 'tc', 'filter', 'show', 'dev', i, dir)}`);
    out.push(`${i} offloads: ${(await sh(ns, 'ethtool', '-k', i)).split('\n').filter((l) => /generic-receive|segmentation-offload:/.test(l)).join(',')}`);
  }
  out.push(await sh(ns, 'sh', '-c', 'sysctl -a 2>/dev/null | grep -E "forwarding|proxy_ndp|proxy_delay|proxy_arp|accept_ra|rp_filter" | sort'));
  return out.join('\n');
}

test('down restores every portal namespace exactly; up twice is a no-op', { timeout: 120_000 }, async () => {
  await withLab(uniformScenario(2)._unsafeUnwrap(), async (lab) => {
    const st = (await readState(lab))._unsafeUnwrap();
    const before = { lp: await snapshot(nsName(lab, 'lp')), rp: await snapshot(nsName(lab, 'rp')) };
    const up = await startBond(lab, st.links, { singleInterface: false, shape: true }, mpctlPath());
    assert.ok(up.isOk(), JSON.stringify(up.isErr() && up.error));
    const during = await snapshot(nsName(lab, 'lp'));
    assert.notEqual(during, before.lp, 'up changed the LP namespace');
    assert.match(during, /lookup 201/, 'policy rule for link 0');
    for (const dev of ['wan1', 'wan2']) assert.match(during, new RegExp(`^${dev}: qdisc htb 6d70: root`, 'm'), `the LP shapes ${dev}`);
    assert.match(await snapshot(nsName(lab, 'rp')), /^wan: qdisc htb 6d70: root/m, 'the RP shapes wan');
    assert.ok(existsSync(pinDir(portalInstance(lab, 'lp'))), 'maps pinned');

    // a second `up` of the same instance changes nothing and exits 0
    const again = await run('ip', ['netns', 'exec', nsName(lab, 'lp'), mpctlPath(), 'up', 'local', '--config', `/run/mpctl/lab/${lab}/lp.toml`, '--no-tui'], 20_000);
    assert.ok(again.isOk() && /already up/.test(again.value), 'second up is a no-op');
    assert.equal(await snapshot(nsName(lab, 'lp')), during);

    await stopBond(lab, mpctlPath());
    assert.equal(await snapshot(nsName(lab, 'lp')), before.lp, 'LP namespace restored');
    assert.equal(await snapshot(nsName(lab, 'rp')), before.rp, 'RP namespace restored');
    for (const role of ['lp', 'rp'] as const) {
      assert.equal(existsSync(pinDir(portalInstance(lab, role))), false, `${role} pins removed`);
      assert.equal(existsSync(portalDir(portalInstance(lab, role))), false, `${role} record and status file removed`);
    }
    assert.ok(existsSync(`${labDir(lab)}/lp.key`), 'the lab keeps its generated keys until lab down');
    // down again: nothing to do, still exit 0
    const d = await run('ip', ['netns', 'exec', nsName(lab, 'lp'), mpctlPath(), 'down', '--instance', portalInstance(lab, 'lp')]);
    assert.ok(d.isOk() && /not up/.test(d.value));
    return lab;
  }).then((lab) => assert.equal(existsSync(labDir(lab)), false, 'lab down removed its directory with the key files'));
});

test('a failed up rolls back what it changed', { timeout: 120_000 }, async () => {
  await withLab(uniformScenario(2)._unsafeUnwrap(), async (lab) => {
    const ns = nsName(lab, 'lp');
    const before = await snapshot(ns);
    // link 2's gateway is not on its subnet: the kernel refuses that route midway through apply,
    // after sysctls, offloads, routes and rules of the plan were already in place
    const cfg = `/run/mpctl/lab/${lab}/broken-lp.toml`;
    const keys = (await generateBondKeys(labDir(lab)))._unsafeUnwrap().lp;
    const text = [
      `private_key = "${keys.privateKeyFile}"`,
      `peer_public_key = "${keys.peerPublicKey}"`,
      'role = "local"',
      `instance = "${lab.slice(0, 12)}-bad"`,
      'lan = "lan"',
      'client = ["198.51.100.10/32"]',
      'gateway = ["198.51.100.1"]',
      'remote = ["198.51.100.2"]',
      '[[link]]',
      'interface = "wan1"',
      'gateway = "100.64.1.254"',
      'source = "100.64.1.1"',
      '[[link]]',
      'interface = "wan2"',
      'gateway = "100.99.2.254"',
      'source = "100.64.2.1"',
      '',
    ].join('\n');
    await (await import('node:fs/promises')).writeFile(cfg, text);
    const up = await run('ip', ['netns', 'exec', ns, mpctlPath(), 'up', 'local', '--config', cfg, '--no-tui'], 30_000);
    assert.ok(up.isErr(), 'up fails');
    assert.match(JSON.stringify(up.error), /route|ENETUNREACH|EINVAL/);
    assert.equal(await snapshot(ns), before, 'nothing of the failed up is left');
    assert.equal(existsSync(pinDir(`${lab.slice(0, 12)}-bad`)), false, 'no pins left');
  });
});
