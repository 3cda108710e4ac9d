// The example configs of docs/config.md (examples/): they are valid, `mpctl config check`
// summarises them, and their plans — what `mpctl up ... --dry-run` prints on a host with these
// interface addresses and MTUs — match the golden files (UPDATE_GOLDEN=1 regenerates them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/parse.js';
import { describeError } from '../src/errors.js';
import { planPortal, type PlanFacts } from '../src/plan/plan.js';
import { DEFAULT_POLICY } from '../src/plan/policy.js';
import { renderPlan } from '../src/plan/render.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const mpctl = (...args: string[]) => {
  const r = spawnSync(here('../bin/mpctl'), args, { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

/** What `up` would read on the two hosts: a PPPoE address, Starlink's CGNAT lease, the modem's. */
const FACTS: Record<string, PlanFacts> = {
  'lp-dsl-4g-starlink': {
    addresses: { ppp0: ['192.0.2.45/32'], eth2: ['100.79.12.34/10', 'fe80::1/64'], wwan0: ['10.170.3.7/30'], 'br-lan': ['192.168.8.1/24'] },
    mtus: { ppp0: 1492, eth2: 1500, wwan0: 1500, 'br-lan': 1500 },
  },
  'rp-vps': { addresses: { eth0: ['203.0.113.7/24'] }, mtus: { eth0: 1500 } },
};

for (const [name, facts] of Object.entries(FACTS)) {
  test(`examples/${name}.toml: valid, and its dry-run plan matches test/golden/example-${name}.up.txt`, async () => {
    const cfg = await loadConfig(here(`../examples/${name}.toml`));
    assert.ok(cfg.isOk(), cfg.isErr() ? describeError(cfg.error) : '');
    const plan = planPortal(cfg.value, DEFAULT_POLICY, facts);
    assert.ok(plan.isOk(), plan.isErr() ? describeError(plan.error) : '');
    const text = `${renderPlan(plan.value, 'up').join('\n')}\n`;
    const file = here(`golden/example-${name}.up.txt`);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
    assert.equal(text, readFileSync(file, 'utf8'), `example-${name}.up.txt differs (UPDATE_GOLDEN=1 regenerates it)`);
  });
}

test('mpctl config check: summary of a valid file, exit 2 naming the bad key, 3 for a missing file, keys read', () => {
  const lp = mpctl('config', 'check', here('../examples/lp-dsl-4g-starlink.toml'), '--skip-keys');
  assert.equal(lp.code, 0, lp.err);
  assert.match(lp.out, /valid — Local Portal "local", tunnel port 7470/);
  assert.match(lp.out, /links \(3\):\n {4}0 dsl {8}ppp0 {7}IPv4 udp  metric 0  point-to-point/);
  assert.match(lp.out, /2 4g .* metric 1 .* budget 20 GB/);
  assert.match(lp.out, /backup: 4g carries traffic only while every metric-0 link is down/);
  assert.match(lp.out, /metrics {5}http:\/\/127\.0\.0\.1:9472\/metrics/);
  const rp = mpctl('config', 'check', here('../examples/rp-vps.toml'), '--skip-keys');
  assert.equal(rp.code, 0, rp.err);
  assert.match(rp.out, /stays here: the tunnel port, 22/);

  const dir = mkdtempSync(`${tmpdir()}/mpctl-config-`);
  try {
    const bad = `${dir}/bad.toml`;
    writeFileSync(bad, readFileSync(here('../examples/lp-dsl-4g-starlink.toml'), 'utf8').replace('metric = 1', 'metric = 300'));
    const b = mpctl('config', 'check', bad, '--skip-keys');
    assert.equal(b.code, 2);
    assert.match(b.err, /link\[2\]\.metric: must be an integer from 0 to 255 \(got 300\)/);
    assert.equal(mpctl('config', 'check', `${dir}/none.toml`).code, 3);
    // with the key file: the public key to hand to the peer
    const key = `${dir}/lp.key`;
    writeFileSync(key, `${mpctl('genkey').out}`, { mode: 0o600 });
    const pub = spawnSync(here('../bin/mpctl'), ['pubkey'], { input: readFileSync(key), encoding: 'utf8' }).stdout.trim();
    const withKey = `${dir}/lp.toml`;
    writeFileSync(withKey, readFileSync(here('../examples/lp-dsl-4g-starlink.toml'), 'utf8').replace('private_key = "/etc/mpctl/lp.key"', `private_key = "${key}"`));
    const k = mpctl('config', 'check', withKey);
    assert.equal(k.code, 0, k.err);
    assert.ok(k.out.includes(`(public key ${pub}: the peer's peer_public_key)`), k.out);
    assert.equal(mpctl('config', 'check', here('../examples/lp-dsl-4g-starlink.toml')).code, 2, 'a missing key file is a config error');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mpctl config check prints each link\'s rate as configured, and the 10 Mbit/s start where it is left out', () => {
  const dir = mkdtempSync(`${tmpdir()}/mpctl-config-`);
  try {
    const file = `${dir}/rates.toml`;
    // dsl 10mbit -> 50mbit; starlink gets 1.2gbit; 4g 2500kbit; a fourth link keeps the default
    const text = readFileSync(here('../examples/lp-dsl-4g-starlink.toml'), 'utf8')
      .replace('rate = "10mbit"', 'rate = "50mbit"')
      .replace('gateway = "100.64.0.1"', 'gateway = "100.64.0.1"\nrate = "1.2gbit"')
      .replace('metric = 1 ', 'rate = "2500kbit"\nmetric = 1 ')
      .concat('\n[[link]]\nname = "spare"\ninterface = "eth3"\ngateway = "198.51.100.1"\n');
    writeFileSync(file, text);
    const r = mpctl('config', 'check', file, '--skip-keys');
    assert.equal(r.code, 0, r.err);
    const rates = [...r.out.matchAll(/^ {4}\d (\S+) .*  rate (\S+ \S+)  delay /gm)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(rates, ['dsl 50.0 Mb/s', 'starlink 1.20 Gb/s', '4g 2.50 Mb/s', 'spare 10.0 Mb/s'], r.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('docs/config.md documents every key the parser accepts, and its examples are the example files', async () => {
  const { parseConfig } = await import('../src/config/parse.js');
  const md = readFileSync(here('../docs/config.md'), 'utf8');
  // the parser lists the keys it accepts when it meets an unknown one
  const accepted = (raw: unknown) => {
    const r = parseConfig(raw, 't');
    assert.ok(r.isErr() && r.error.kind === 'ConfigInvalid');
    return /expected one of: ([^)]*)\)/.exec(r.error.message)![1]!.split(', ');
  };
  const keys = new Set([
    ...accepted({ role: 'local', zzz: 1 }),
    ...accepted({ role: 'remote', zzz: 1 }),
    ...accepted({ role: 'local', lan: 'lan', client: '10.0.0.1', gateway: '10.0.0.2', remote: '192.0.2.1', insecure_no_auth: true, link: [{ interface: 'w', zzz: 1 }] }),
  ]);
  assert.ok(keys.size > 20, [...keys].join());
  for (const k of keys) assert.ok(md.includes(`| \`${k === 'link' ? '[[link]]' : k}\` |`), `docs/config.md has a row for ${k}`);
  // each ```toml block parses to the same config as its example file
  const blocks = [...md.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const { parse } = await import('smol-toml');
  for (const [i, name] of ['lp-dsl-4g-starlink', 'rp-vps'].entries()) {
    const file = parse(readFileSync(here(`../examples/${name}.toml`), 'utf8'));
    assert.deepEqual(parse(blocks[i]!), file, `the docs example of ${name} is the file`);
  }
});
