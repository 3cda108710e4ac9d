// config → plan → ip/tc/sysctl lines. The example configs render to golden files (regenerate
// with UPDATE_GOLDEN=1 and review the diff); the policy-routing template on disk matches the
// defaults in code; a plan that cannot know a link's address says which key to set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseConfig } from '../src/config/parse.js';
import type { PortalConfig } from '../src/config/types.js';
import { describeError } from '../src/errors.js';
import { loopDevices, planPortal, SHAPE_HANDLE, type PlanFacts } from '../src/plan/plan.js';
import { DEFAULT_POLICY, loadPolicy, parsePolicy } from '../src/plan/policy.js';
import { renderPlan } from '../src/plan/render.js';
import type { Plan } from '../src/plan/types.js';
import { MP_NH_MAX_BODY } from '../src/datapath/abi.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** What `up` would find on the lab's LP: wan2 has a link-local and a global IPv6 address. */
const LP_FACTS: PlanFacts = { addresses: { wan2: ['fe80::a8c1:abff:fe12:3456/64', '100.64.2.1/24', 'fd00:64:2::1/64'] } };

async function config(name: string): Promise<PortalConfig> {
  const r = await loadConfig(here(`fixtures/${name}`));
  assert.ok(r.isOk(), r.isErr() ? describeError(r.error) : '');
  return r.value;
}

function plan(cfg: PortalConfig, facts?: PlanFacts): Plan {
  const r = planPortal(cfg, DEFAULT_POLICY, facts);
  assert.ok(r.isOk(), r.isErr() ? describeError(r.error) : '');
  return r.value;
}

function golden(name: string, lines: string[]): void {
  const file = here(`golden/${name}`);
  const text = `${lines.join('\n')}\n`;
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
  assert.equal(text, readFileSync(file, 'utf8'), `${name} differs (UPDATE_GOLDEN=1 regenerates it)`);
}

test('policy/routing.toml on disk is the policy in code', async () => {
  const r = await loadPolicy();
  assert.ok(r.isOk(), r.isErr() ? describeError(r.error) : '');
  assert.deepEqual(r.value, DEFAULT_POLICY);
});

const GOOD_POLICY = { tables: { base: 201, loop: 200 }, rules: { fwmark: 10000, source: 10100, loop: 10050 }, marks: { base: 1, loop: 0x100 } };
const policyWith = (patch: Record<string, Record<string, number>>) =>
  Object.fromEntries(Object.entries(GOOD_POLICY).map(([k, v]) => [k, { ...v, ...patch[k] }]));
const BAD_POLICY: [string, unknown, string, RegExp][] = [
  ['a table over main', policyWith({ tables: { base: 250 } }), 'tables.base', /over the kernel's table 253/],
  ['rules after main', policyWith({ rules: { source: 32760 } }), 'rules.source', /before the main table's rule \(32766\)/],
  ['overlapping rule blocks', policyWith({ rules: { source: 10010 } }), 'rules.source', /overlaps the fwmark rules 10000\.\.10015/],
  ['a missing key', { tables: { base: 201, loop: 200 }, rules: { fwmark: 10000, loop: 10050 }, marks: { base: 1, loop: 0x100 } }, 'rules.source', /is required/],
  ['an unknown section', { tables: { base: 201 }, routes: {} }, 'routes', /unknown section/],
  ['mark 0', policyWith({ marks: { base: 0 } }), 'marks.base', /integer from 1/],
  ['the loop table among the link tables', policyWith({ tables: { loop: 205 } }), 'tables.loop', /nor a link table \(201\.\.216\)/],
  ['the loop table = main', policyWith({ tables: { loop: 254 } }), 'tables.loop', /none of the kernel's tables/],
  ['the loop rule inside the source rules', policyWith({ rules: { loop: 10101 } }), 'rules.loop', /inside the rules\.source rules/],
  ['the loop rule after main', policyWith({ rules: { loop: 32766 } }), 'rules.loop', /before the main table's rule/],
  ['the loop mark = a link mark', policyWith({ marks: { loop: 3 } }), 'marks.loop', /one of the link marks/],
];
test('the policy of a test is valid', () => assert.ok(parsePolicy(GOOD_POLICY, 'x').isOk()));
for (const [name, raw, path, msg] of BAD_POLICY) {
  test(`policy rejects ${name} at ${path}`, () => {
    const r = parsePolicy(raw, 'routing.toml');
    assert.ok(r.isErr() && r.error.kind === 'ConfigInvalid');
    assert.equal(r.error.path, path);
    assert.match(r.error.message, msg);
  });
}

test('golden: lp up and down', async () => {
  const p = plan(await config('lp.toml'), LP_FACTS);
  golden('lp.up.txt', renderPlan(p, 'up'));
  golden('lp.down.txt', renderPlan(p, 'down'));
});

test('golden: rp up', async () => {
  golden('rp.up.txt', renderPlan(plan(await config('rp.toml')), 'up'));
});

test('golden: single-interface rp up', async () => {
  golden('rp-single.up.txt', renderPlan(plan(await config('rp-single.toml')), 'up'));
});

test('one line per step; down is up reversed, add → del', async () => {
  for (const [name, facts] of [['lp.toml', LP_FACTS], ['rp.toml', undefined]] as const) {
    const p = plan(await config(name), facts);
    const up = renderPlan(p, 'up');
    const down = renderPlan(p, 'down');
    assert.equal(up.length, p.steps.length);
    assert.equal(down.length, p.steps.length);
    down.reverse().forEach((d, i) => {
      const u = up[i]!;
      if (d.startsWith('#')) assert.match(u, /^(sysctl|ethtool|ip link set) /);
      else if (d.startsWith('tc filter')) assert.ok(u.startsWith(d.replace(' del ', ' add ')), `${u} / ${d}`);
      else if (d.startsWith('tc qdisc del') && d.includes(' root ')) assert.ok(u.startsWith(d.replace(' del ', ' replace ')), `${u} / ${d}`);
      else assert.equal(d, u.replace(' add ', ' del ').replace(/ router$/, ''));
    });
  }
});

test('neighbour proxies come after the programs that catch the traffic they attract', async () => {
  for (const [name, facts] of [['lp.toml', LP_FACTS], ['rp.toml', undefined]] as const) {
    const steps = plan(await config(name), facts).steps;
    const lastFilter = steps.map((s) => s.kind).lastIndexOf('bpfFilter');
    const firstProxy = steps.findIndex((s) => s.kind === 'neighProxy');
    assert.ok(firstProxy > lastFilter, name);
  }
});

/** keys every config needs (plans do not read them) */
const KEYS = { private_key: '/etc/mpctl/portal.key', peer_public_key: 'oT2LMtrTvyrwCNeG6hfidYnFAYKOCPqkaODgWgI5H2k=' };
const LP_MIN = {
  ...KEYS,
  role: 'local',
  lan: 'lan',
  client: '198.51.100.10/32',
  gateway: '198.51.100.1',
  remote: ['198.51.100.2', '2001:db8:100::2'],
  link: [
    { interface: 'wan1', gateway: '100.64.1.254' },
    { interface: 'wan2', gateway: 'fd00:64:2::fe' },
  ],
};
const lpMin = (patch: Record<string, unknown> = {}) => {
  const r = parseConfig({ ...LP_MIN, ...patch }, 'x.toml');
  assert.ok(r.isOk(), r.isErr() ? describeError(r.error) : '');
  return r.value;
};

test('a link without source takes the first global address of its family from the facts', () => {
  const p = plan(lpMin(), { addresses: { wan1: ['100.64.1.1/24'], wan2: ['fe80::1/64', '100.64.2.1/24', 'FD00:64:2::1'] } });
  const lines = renderPlan(p, 'up');
  assert.ok(lines.includes('ip -4 rule add from 100.64.1.1 lookup 201 priority 10100'));
  assert.ok(lines.includes('ip -6 route add default via fd00:64:2::fe dev wan2 src fd00:64:2::1 table 202'));
  assert.ok(lines.includes('ip -6 rule add from fd00:64:2::1 lookup 202 priority 10101'));
  assert.ok(lines.includes('ip -6 rule add fwmark 0x6d700001 lookup 202 priority 10001'));
});

const UNRESOLVABLE: [string, PlanFacts | undefined, string, RegExp][] = [
  ['no facts at all', undefined, 'link[0].source', /is not set and the addresses of wan1 are unknown/],
  ['no facts for the interface', { addresses: { wan1: ['100.64.1.1/24'] } }, 'link[1].source', /addresses of wan2 are unknown/],
  ['only a link-local address', { addresses: { wan1: ['100.64.1.1/24'], wan2: ['fe80::1/64', '100.64.2.1/24'] } }, 'link[1].source', /wan2 has no IPv6 address that is not link-local/],
  ['two links on one address', { addresses: { wan1: ['100.64.1.1/24', 'fd00::1/64'], wan2: ['fd00::1/64'] } }, 'link[1].source', /resolves to the source of link\[0\]/],
];
for (const [name, facts, path, msg] of UNRESOLVABLE) {
  test(`plan without a usable source: ${name}`, () => {
    const cfg = name.startsWith('two links') ? lpMin({ link: [{ interface: 'wan1', source: 'fd00::1' }, { interface: 'wan2', gateway: 'fd00::fe' }] }) : lpMin();
    const r = planPortal(cfg, DEFAULT_POLICY, facts);
    assert.ok(r.isErr() && r.error.kind === 'ConfigInvalid', JSON.stringify(r));
    assert.equal(r.error.path, path);
    assert.match(r.error.message, msg);
  });
}

test('policy numbers come from the policy', () => {
  const policy = { tableBase: 1000, rulePriority: 200, fwmarkPriority: 300, fwmarkBase: 0x10, loopTable: 999, loopPriority: 250, loopMark: 0x100 };
  const p = planPortal(lpMin(), policy, { addresses: { wan1: ['100.64.1.1'], wan2: ['fd00:64:2::1'] } });
  assert.ok(p.isOk());
  const lines = renderPlan(p.value, 'up');
  assert.ok(lines.includes('ip -6 rule add fwmark 0x11 lookup 1001 priority 301'));
  assert.ok(lines.includes('ip -4 rule add from 100.64.1.1 lookup 1000 priority 200'));
  assert.ok(lines.includes('ip -4 rule add fwmark 0x100 lookup 999 priority 250'));
  assert.ok(lines.includes(`ip -4 route add default dev ${p.value.loop.dev} table 999`));
});

test('a VLAN interface is spelt with "/" in sysctl keys, as sysctl(8) does', () => {
  const p = plan(lpMin({ lan: 'eth0.100' }), { addresses: { wan1: ['100.64.1.1'], wan2: ['fd00:64:2::1'] } });
  const lines = renderPlan(p, 'up');
  assert.ok(lines.includes('sysctl -w net.ipv4.conf.eth0/100.forwarding=1'));
  assert.ok(lines.includes('ethtool -K eth0.100 gro off'));
});

test('an RP with a routed client prefix answers nothing on wan', () => {
  const r = parseConfig({ ...KEYS, role: 'remote', wan: 'wan', client: ['203.0.113.64/26', '2001:db8:200::/48'] }, 'x.toml');
  assert.ok(r.isOk());
  const steps = plan(r.value).steps;
  assert.ok(!steps.some((s) => s.kind === 'neighProxy' || (s.kind === 'route' && s.dev === 'lo')));
  assert.ok(!steps.some((s) => s.kind === 'sysctl' && /proxy/.test(s.key)));
});

test('the segmentation loop: a veth pair per instance, its MTU the inner MTU, before encap on lan', async () => {
  const cfg = await config('lp.toml');
  // wan1 IPv4/UDP 9000 − 52, wan2 IPv6/UDP 1500 − 72, wan3 IPv4/ip 1500 − 44: the largest wins
  // (each packet goes only on links it fits: bpf/pmtu.h)
  const p = plan(cfg, { ...LP_FACTS, mtus: { wan1: 1400, wan2: 1500, wan3: 1472 } });
  const { dev, peer } = loopDevices(cfg.instance);
  assert.deepEqual(p.loop, { dev, peer, mark: DEFAULT_POLICY.loopMark, routed: true, mtu: 1428 });
  assert.ok(dev.length <= 15 && peer.length <= 15, 'IFNAMSIZ');
  assert.notEqual(loopDevices('lp1').dev, loopDevices('lp2').dev, 'two portals, two pairs');
  const lines = renderPlan(p, 'up');
  assert.ok(lines.includes(`ip link set ${dev} mtu 1428 arp off up`));
  assert.ok(lines.includes(`ethtool -K ${dev} tx off`));
  const at = (l: string) => lines.indexOf(l);
  assert.ok(at(`tc filter add dev ${peer} ingress prio 1 handle 1 bpf da pinned /run/mpctl/bpf/local/prog_encap`) < at('tc qdisc add dev lan clsact'));
  assert.equal(plan(cfg, { ...LP_FACTS, mtus: { wan1: 9000 } }).loop.mtu, 9000 - 52, 'wan1 larger');
  const huge = { wan1: 65535, wan2: 65535, wan3: 65535 };
  assert.equal(plan(cfg, { ...LP_FACTS, mtus: huge }).loop.mtu, MP_NH_MAX_BODY, 'no longer than the MAC covers');
});

test('every RP gets the routed loop, a single-interface one too (encap enters it via a stand-in address)', async () => {
  for (const file of ['rp-single.toml', 'rp.toml']) {
    const p = plan(await config(file));
    assert.equal(p.loop.routed, true, file);
    assert.ok(p.steps.some((s) => s.kind === 'veth'), file);
    assert.ok(renderPlan(p, 'up').includes(`ip -4 rule add fwmark 0x6d700100 lookup 200 priority 10050`), file);
  }
});

test('shape = true: an htb root (6d70:) on each link device of the LP and on the RP\'s wan, before encap sends anything; none with shape = false', async () => {
  for (const [name, facts, devs] of [
    ['lp.toml', LP_FACTS, ['wan1', 'wan2', 'wan3']],
    ['rp.toml', undefined, ['wan']],
  ] as const) {
    const cfg = await config(name);
    assert.equal(cfg.shape, 'auto', '"auto" by default');
    assert.ok(!plan({ ...cfg, shape: false }, facts).steps.some((s) => s.kind === 'shaper'), `${name}: no shaper with shape = false`);
    const p = plan({ ...cfg, shape: true }, facts);
    const shapers = p.steps.filter((s) => s.kind === 'shaper');
    assert.deepEqual(shapers.map((s) => s.dev), [...devs], name);
    assert.ok(shapers.every((s) => s.kind === 'shaper' && s.handle === SHAPE_HANDLE));
    const lastShaper = p.steps.map((s) => s.kind).lastIndexOf('shaper');
    const firstEncap = p.steps.findIndex((s) => s.kind === 'bpfFilter' && s.prog === 'encap');
    assert.ok(lastShaper < firstEncap, `${name}: shaping in place before encap`);
    const up = renderPlan(p, 'up');
    const down = renderPlan(p, 'down');
    for (const d of devs) {
      assert.ok(up.includes(`tc qdisc replace dev ${d} root handle 6d70: htb default 0`), `${name}: ${up.join('\n')}`);
      assert.ok(down.includes(`tc qdisc del dev ${d} root handle 6d70:`), name);
    }
    assert.ok(shapers.every((s) => s.kind === 'shaper' && s.ifOwnRoot === undefined), `${name}: shape = true replaces no operator's root, up fails there`);
    // "auto": the same steps, each skipping a device whose root is an operator's
    const auto = plan({ ...cfg, shape: 'auto' }, facts).steps.filter((s) => s.kind === 'shaper');
    assert.deepEqual(auto, shapers.map((s) => ({ ...s, ifOwnRoot: 'skip' })), name);
    assert.ok(renderPlan(plan({ ...cfg, shape: 'auto' }, facts), 'up').some((l) => l.includes(`dev ${devs[0]} root handle 6d70: htb default 0   # shape = "auto"`)), name);
  }
});
