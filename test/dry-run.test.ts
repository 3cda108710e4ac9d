// `mpctl up --dry-run` checks the host first (the key file, every interface the config names)
// and prints a script that runs as printed: here it runs, with `sh -e`, in a namespace that has
// the config's interfaces.
//
//   netns mpdry<pid>:  lan  wan1 (100.64.1.1/24)  wan2 (fd00:64:2::1/64)  wan3 (100.64.3.1/24)
//                      (each a veth whose peer stays in the namespace: nothing leaves it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/config/parse.js';
import { parse as parseToml } from 'smol-toml';
import { describeError } from '../src/errors.js';
import { planPortal } from '../src/plan/plan.js';
import { DEFAULT_POLICY } from '../src/plan/policy.js';
import { checkInterfaces, dryRunScript } from '../src/plan/dry-run.js';
import { renderStep } from '../src/plan/render.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const MPCTL = here('../bin/mpctl');
const LP_TEXT = readFileSync(here('fixtures/lp.toml'), 'utf8');
const lp = () => parseConfig(parseToml(LP_TEXT), 'lp.toml')._unsafeUnwrap();
const MTUS = { lo: 65536, lan: 1500, wan1: 1500, wan2: 1500, wan3: 1500 };

test('dry run: an interface the config names must exist, and the message names its key', () => {
  assert.ok(checkInterfaces(lp(), MTUS).isOk());
  const { wan3: _, ...noWan3 } = MTUS;
  const r = checkInterfaces(lp(), noWan3);
  assert.ok(r.isErr());
  assert.equal(describeError(r.error), 'link[2].interface: no interface "wan3" on this host (interfaces: lan, lo, wan1, wan2)');
});

test('dry run: a script with the rates in its head and the BPF filters as comments', () => {
  const cfg = lp();
  const plan = planPortal(cfg, DEFAULT_POLICY, { addresses: { wan2: ['fd00:64:2::1/64'] }, mtus: MTUS })._unsafeUnwrap();
  const lines = dryRunScript(cfg, plan, 'lp.toml');
  assert.equal(lines[0], '#!/bin/sh');
  assert.ok(lines.includes('#   link 0 dsl: wan1, rate 20mbit, delay 10ms, metric 0'));
  assert.ok(lines.includes('#   link 1 4g: wan2, rate 10mbit, delay 25ms, metric 0, budget 10000000000 B'));
  const filters = lines.filter((l) => l.includes('tc filter add'));
  assert.ok(filters.length > 0);
  for (const l of filters) assert.match(l, /^# \(mpctl up loads and pins the program first\) tc filter add/);
  for (const l of lines.slice(lines.indexOf('set -e') + 1)) assert.ok(!l.startsWith('#') || l.includes('tc filter add'), l);
});

test('dry run: whole-LAN mode names each translated prefix (golden: test/golden/lp-lan.dry-run.txt)', () => {
  const cfg = parseConfig({ ...parseToml(LP_TEXT), lan_prefixes: ['192.168.1.0/24', 'fd00:1::/64'], lan_nat_ports: '20000-59999', port_forwards: ['tcp/443 -> 192.168.1.10:8443', 'udp/51820 -> [fd00:1::20]'], bond_local: true }, 'lp.toml')._unsafeUnwrap();
  const addresses = { wan2: ['fd00:64:2::1/64'], lan: ['10.10.0.1/24', 'fe80::1/64', '192.168.1.1/24', 'fd00:1::1/64'] };
  const plan = planPortal(cfg, DEFAULT_POLICY, { addresses, mtus: MTUS })._unsafeUnwrap();
  // bond_local (step 9): the LP's own traffic from its LAN addresses into mpl…a, after encap is on mpl…b
  assert.ok(text0(plan).includes('ip -4 route add 0.0.0.0/1 dev mpl9c436708a src 192.168.1.1 table main'), text0(plan));
  assert.ok(text0(plan).includes('ip -6 route add 8000::/1 dev mpl9c436708a src fd00:1::1 table main'), text0(plan));
  assert.deepEqual(plan.bondLocal, { dev: 'mpl9c436708a', peer: 'mpl9c436708b', v4: '192.168.1.1', v6: 'fd00:1::1' });
  // without an address of lan on a LAN prefix, the key is refused with what lan has
  const none = planPortal(cfg, DEFAULT_POLICY, { addresses: { wan2: ['fd00:64:2::1/64'], lan: ['10.10.0.1/24', '192.168.1.1/24'] }, mtus: MTUS });
  assert.ok(none.isErr());
  assert.equal(describeError(none.error), 'bond_local: needs an IPv6 address of lan inside lan_prefixes (fd00:1::/64) to send the LP\'s own traffic from (lan has: 10.10.0.1, 192.168.1.1) (got true)');
  const text = `${dryRunScript(cfg, plan, 'lp.toml').join('\n')}\n`;
  assert.ok(text.includes('#   whole-LAN NAT: 192.168.1.0/24 -> 198.51.100.10 ports 20000-59999'), text);
  assert.ok(text.includes('#   whole-LAN NAT: fd00:1::/64 -> 2001:db8:100::10 ports 20000-59999'), text);
  assert.ok(text.includes('#   port forward: tcp/443 of 198.51.100.10 -> 192.168.1.10:8443'), text);
  assert.ok(text.includes('#   port forward: udp/51820 of 2001:db8:100::10 -> [fd00:1::20]:51820'), text);
  const file = here('golden/lp-lan.dry-run.txt');
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
  assert.equal(text, readFileSync(file, 'utf8'), 'lp-lan.dry-run.txt differs (UPDATE_GOLDEN=1 regenerates it)');
});

const text0 = (plan: Parameters<typeof dryRunScript>[1]) => plan.steps.map((st) => renderStep(st, 'up', plan.instance)).join('\n');

const sh = (args: string[], input?: string) => spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', input, timeout: 60_000 });
const asRoot = process.getuid?.() === 0;

test('mpctl up --dry-run checks the key file and interfaces, and its script runs as printed', { skip: !asRoot && 'needs root (a network namespace)' }, () => {
  const ns = `mpdry${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'mpctl-dry-'));
  try {
    assert.equal(sh(['ip', 'netns', 'add', ns]).status, 0);
    const inNs = (...a: string[]) => sh(['ip', 'netns', 'exec', ns, ...a]);
    assert.equal(inNs('ip', 'link', 'set', 'lo', 'up').status, 0); // as on any host
    for (const [dev, addr] of [['lan', ''], ['wan1', '100.64.1.1/24'], ['wan2', 'fd00:64:2::1/64'], ['wan3', '100.64.3.1/24']] as const) {
      assert.equal(inNs('ip', 'link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`).status, 0);
      assert.equal(inNs('ip', 'link', 'set', dev, 'up').status, 0);
      assert.equal(inNs('ip', 'link', 'set', `${dev}p`, 'up').status, 0);
      if (addr) assert.equal(inNs('ip', 'addr', 'add', addr, 'dev', dev, 'nodad').status, 0);
    }
    const key = join(dir, 'lp.key');
    writeFileSync(key, `${sh([MPCTL, 'genkey']).stdout}`);
    chmodSync(key, 0o644);
    const cfg = join(dir, 'lp.toml');
    writeFileSync(cfg, LP_TEXT.replace('/etc/mpctl/lp.key', key));
    const bad = inNs(MPCTL, 'up', '--config', cfg, '--dry-run');
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /the private key file is accessible by group or others; run: chmod 600/);
    chmodSync(key, 0o600);
    writeFileSync(join(dir, 'no-wan3.toml'), LP_TEXT.replace('/etc/mpctl/lp.key', key).replace('"wan3"', '"wan9"'));
    const missing = inNs(MPCTL, 'up', '--config', join(dir, 'no-wan3.toml'), '--dry-run');
    assert.equal(missing.status, 3, missing.stderr);
    assert.match(missing.stderr, /^mpctl: link\[2\]\.interface: no interface "wan9" on this host/);

    const dry = inNs(MPCTL, 'up', '--config', cfg, '--dry-run');
    assert.equal(dry.status, 0, dry.stderr);
    const run = sh(['ip', 'netns', 'exec', ns, 'sh', '-e', '-x', '-s'], dry.stdout);
    assert.equal(run.status, 0, `the script stops at: ${run.stderr.split('\n').slice(-3).join(' | ')}`);
    assert.match(inNs('ip', '-4', 'rule', 'show').stdout, /fwmark/, 'its rules are in place');
  } finally {
    sh(['ip', 'netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
});
