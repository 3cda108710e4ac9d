// Portal config validation: the example configs parse to the expected typed objects, and every
// bad value is rejected with its key path, the value, and a message that says what is wanted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseConfig, parseTomlText } from '../src/config/parse.js';
import { parseBytes, parseClientPrefix } from '../src/config/values.js';
import type { LocalConfig, RemoteConfig } from '../src/config/types.js';
import { describeError } from '../src/errors.js';

/** the fixtures' public keys (test/fixtures/*.toml) */
const LP_PUB = 'QrbaVdtRWCBwdaw+q4cEwgxnP/g3QiW2vVWxBhyhwzM=';
const RP_PUB = 'oT2LMtrTvyrwCNeG6hfidYnFAYKOCPqkaODgWgI5H2k=';
/** the keys every minimal config below needs */
const KEYS = { private_key: '/etc/mpctl/portal.key', peer_public_key: RP_PUB };

const fixture = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));

/** budget_period's default: renews on the 1st of each month (UTC) */
const MONTHLY = { kind: 'monthly', day: 1 } as const;

test('lp.toml parses to the typed config, with defaults filled in', async () => {
  const r = await loadConfig(fixture('lp.toml'));
  assert.ok(r.isOk(), r.isErr() ? describeError(r.error) : '');
  const expected: LocalConfig = {
    role: 'local',
    instance: 'local',
    port: 7470,
    client: [
      { family: 4, address: '198.51.100.10', len: 32 },
      { family: 6, address: '2001:db8:100::10', len: 128 },
    ],
    ipProto: 253,
    probeIntervalMs: 100,
    congestionControl: true,
    ackPath: 'slowest',
    shape: 'auto',
    redundant: [],
    auth: { mode: 'authenticated', privateKeyFile: '/etc/mpctl/lp.key', peerPublicKey: RP_PUB },
    lan: 'lan',
    gateway: ['198.51.100.1', '2001:db8:100::1'],
    remote: ['198.51.100.2', '2001:db8:100::2'],
    links: [
      { id: 0, name: 'dsl', interface: 'wan1', family: 4, gateway: '100.64.1.254', source: '100.64.1.1', carrier: 'udp', metric: 0, rateBps: 20e6, delayUs: 10_000, budgetBytes: 0, budgetPeriod: MONTHLY },
      { id: 1, name: '4g', interface: 'wan2', family: 6, gateway: 'fd00:64:2::fe', carrier: 'udp', metric: 0, rateBps: 10e6, delayUs: 25_000, budgetBytes: 10e9, budgetPeriod: MONTHLY },
      { id: 2, name: 'sat', interface: 'wan3', family: 4, source: '100.64.3.1', carrier: 'ip', metric: 1, rateBps: 30e6, delayUs: 300_000, budgetBytes: 0, budgetPeriod: MONTHLY },
    ],
    lanPrefixes: [],
    natPorts: { lo: 1024, hi: 65535 },
    portForwards: [],
    bondLocal: false,
  };
  assert.deepEqual(r.value, expected);
});

test('shape: "auto" by default, true, or false', () => {
  assert.equal((parseConfig({ ...LP }, 'lp.toml')._unsafeUnwrap() as LocalConfig).shape, 'auto');
  assert.equal((parseConfig({ ...LP, shape: false }, 'lp.toml')._unsafeUnwrap() as LocalConfig).shape, false);
  assert.equal((parseConfig({ ...LP, shape: true }, 'lp.toml')._unsafeUnwrap() as LocalConfig).shape, true);
  assert.equal((parseConfig({ ...LP, shape: 'auto' }, 'lp.toml')._unsafeUnwrap() as LocalConfig).shape, 'auto');
});

test('lan_prefixes and lan_nat_ports (whole-LAN mode)', () => {
  const r = parseConfig({ ...LP, lan_prefixes: ['192.168.1.0/24', 'fd00:1::/64', '10.20.0.0/16'], lan_nat_ports: '20000-29999' }, 'lp.toml');
  assert.ok(r.isOk() && r.value.role === 'local', r.isErr() ? describeError(r.error) : '');
  assert.deepEqual(r.value.lanPrefixes, [
    { family: 4, address: '192.168.1.0', len: 24 },
    { family: 6, address: 'fd00:1::', len: 64 },
    { family: 4, address: '10.20.0.0', len: 16 },
  ]);
  assert.deepEqual(r.value.natPorts, { lo: 20000, hi: 29999 });
  assert.equal(r.value.bondLocal, false, 'bond_local is off by default');
  const b = parseConfig({ ...LP, lan_prefixes: ['192.168.1.0/24'], bond_local: true }, 'lp.toml');
  assert.ok(b.isOk() && b.value.role === 'local' && b.value.bondLocal === true);
});

test('port_forwards (whole-LAN mode)', () => {
  const r = parseConfig({ ...LP, lan_prefixes: ['192.168.1.0/24', 'fd00:1::/64'], port_forwards: ['tcp/443 -> 192.168.1.10:8443', 'udp/51820 -> 192.168.1.20', 'tcp/443 -> [fd00:1::10]:443', 'tcp/22->[fd00:1::22]'] }, 'lp.toml');
  assert.ok(r.isOk() && r.value.role === 'local', r.isErr() ? describeError(r.error) : '');
  assert.deepEqual(r.value.portForwards, [
    { proto: 'tcp', port: 443, family: 4, address: '192.168.1.10', targetPort: 8443 },
    { proto: 'udp', port: 51820, family: 4, address: '192.168.1.20', targetPort: 51820 },
    { proto: 'tcp', port: 443, family: 6, address: 'fd00:1::10', targetPort: 443 },
    { proto: 'tcp', port: 22, family: 6, address: 'fd00:1::22', targetPort: 22 },
  ]);
});

test('rp.toml and rp-single.toml parse to the typed configs', async () => {
  const rp = await loadConfig(fixture('rp.toml'));
  assert.ok(rp.isOk(), rp.isErr() ? describeError(rp.error) : '');
  assert.deepEqual(rp.value, {
    role: 'remote',
    instance: 'remote',
    port: 7470,
    client: [
      { family: 4, address: '198.51.100.10', len: 32 },
      { family: 6, address: '2001:db8:100::10', len: 128 },
    ],
    ipProto: 253,
    probeIntervalMs: 100,
    congestionControl: true,
    ackPath: 'slowest',
    shape: 'auto',
    redundant: [],
    auth: { mode: 'authenticated', privateKeyFile: '/etc/mpctl/rp.key', peerPublicKey: LP_PUB },
    wan: 'wan',
    forward: ['srv'],
    singleInterface: false,
    reservedPorts: [],
    linkNames: ['dsl', '4g', 'sat'],
  } satisfies RemoteConfig);
  const single = await loadConfig(fixture('rp-single.toml'));
  assert.ok(single.isOk(), single.isErr() ? describeError(single.error) : '');
  assert.deepEqual(single.value, {
    role: 'remote',
    instance: 'vps',
    port: 7471,
    client: [{ family: 4, address: '203.0.113.7', len: 32 }],
    ipProto: 253,
    probeIntervalMs: 100,
    congestionControl: true,
    ackPath: 'slowest',
    shape: 'auto',
    redundant: [],
    auth: { mode: 'authenticated', privateKeyFile: '/etc/mpctl/vps.key', peerPublicKey: LP_PUB },
    wan: 'eth0',
    forward: [],
    singleInterface: true,
    reservedPorts: [22],
    linkNames: [],
  } satisfies RemoteConfig);
});

test('a minimal LP gets every default; addresses are canonicalised', () => {
  const r = parseConfig(
    { ...KEYS, role: 'local', lan: 'lan', client: '2001:DB8:100:0::10', gateway: 'FE80::1', remote: '2001:db8:100:0:0:0:0:2', link: [{ interface: 'wan1' }] },
    'x.toml',
  );
  assert.ok(r.isOk(), r.isErr() ? describeError(r.error) : '');
  assert.ok(r.value.role === 'local');
  assert.deepEqual(r.value.client, [{ family: 6, address: '2001:db8:100::10', len: 128 }]);
  assert.deepEqual(r.value.gateway, ['fe80::1']);
  assert.deepEqual(r.value.remote, ['2001:db8:100::2']);
  assert.deepEqual(r.value.links, [
    // point-to-point with neither gateway nor source: the remote's only family
    { id: 0, name: 'wan1', interface: 'wan1', family: 6, carrier: 'udp', metric: 0, rateBps: 10e6, unrated: true, delayUs: 10_000, budgetBytes: 0, budgetPeriod: MONTHLY },
  ]);
  assert.equal(r.value.instance, 'local');
  assert.equal(r.value.port, 7470);
});

test('budget_period, congestion_control and state_dir', () => {
  const one = (link: Record<string, unknown>, top: Record<string, unknown> = {}) =>
    parseConfig({ ...KEYS, role: 'local', lan: 'lan', client: '198.51.100.10', gateway: '198.51.100.1', remote: '198.51.100.2', link: [{ interface: 'wan1', ...link }], ...top }, 'x.toml');
  const period = (v: string) => {
    const r = one({ budget: '5GB', budget_period: v });
    assert.ok(r.isOk() && r.value.role === 'local', v);
    return r.value.links[0]!.budgetPeriod;
  };
  assert.deepEqual(period('monthly:15'), { kind: 'monthly', day: 15 });
  assert.deepEqual(period('daily'), { kind: 'daily' });
  assert.deepEqual(period('none'), { kind: 'none' });
  const off = one({}, { congestion_control: false });
  assert.ok(off.isOk() && off.value.congestionControl === false);
  const dir = one({}, { state_dir: '/srv/mpctl/' });
  assert.ok(dir.isOk() && dir.value.role === 'local' && dir.value.stateDir === '/srv/mpctl', 'state_dir, trailing slash dropped');
  const none = one({});
  assert.ok(none.isOk() && none.value.role === 'local' && none.value.stateDir === undefined, 'absent: the default at use');
  for (const bad of ['var/lib/mpctl', 5, '']) {
    const r = one({}, { state_dir: bad });
    assert.ok(r.isErr() && r.error.kind === 'ConfigInvalid' && r.error.path === 'state_dir' && /absolute directory/.test(r.error.message), String(bad));
  }
  const rp = parseConfig({ ...KEYS, role: 'remote', wan: 'wan', client: '198.51.100.10', state_dir: '/x' }, 'rp.toml');
  assert.ok(rp.isErr() && rp.error.kind === 'ConfigInvalid' && rp.error.path === 'state_dir', 'a Local Portal key');
});

test('units: client prefixes and byte budgets', () => {
  assert.deepEqual(parseClientPrefix('198.51.100.8/29'), { family: 4, address: '198.51.100.8', len: 29 });
  assert.deepEqual(parseClientPrefix('198.51.100.9/29'), { error: 'has host bits set (the prefix is 198.51.100.8/29)' });
  assert.equal(parseBytes('10GB'), 10e9);
  assert.equal(parseBytes('500mb'), 500e6);
  assert.equal(parseBytes('1.5TB'), 1.5e12);
  assert.equal(parseBytes('20GiB'), 20 * 2 ** 30);
  assert.equal(parseBytes(0), 0);
  assert.equal(parseBytes('0'), 0);
  assert.equal(parseBytes(1000), undefined);
  assert.equal(parseBytes('lots'), undefined);
});

test('keys: insecure_no_auth = true needs no key (benchmarks); keys given with it are still checked', () => {
  const noKeys = parseConfig({ ...LP, private_key: undefined, peer_public_key: undefined, insecure_no_auth: true }, 'x.toml');
  assert.ok(noKeys.isOk(), noKeys.isErr() ? describeError(noKeys.error) : '');
  assert.deepEqual(noKeys.value.auth, { mode: 'insecure-no-auth', privateKeyFile: null, peerPublicKey: null });
  const withKeys = parseConfig({ ...RP, insecure_no_auth: true }, 'x.toml');
  assert.ok(withKeys.isOk() && withKeys.value.auth.mode === 'insecure-no-auth' && withKeys.value.auth.peerPublicKey === RP_PUB);
  const badKey = parseConfig({ ...RP, insecure_no_auth: true, peer_public_key: 'nope' }, 'x.toml');
  assert.ok(badKey.isErr() && badKey.error.kind === 'ConfigInvalid' && badKey.error.path === 'peer_public_key');
  const secure = parseConfig({ ...RP, insecure_no_auth: false }, 'x.toml');
  assert.ok(secure.isOk() && secure.value.auth.mode === 'authenticated');
});

test('loadConfig: a missing file is NotFound, bad TOML names the file, line and column', async () => {
  const missing = await loadConfig('/nonexistent/mpctl.toml');
  assert.ok(missing.isErr() && missing.error.kind === 'NotFound');
  const bad = await loadConfig(fixture('../config.test.ts'));
  assert.ok(bad.isErr() && bad.error.kind === 'ConfigInvalid');
  assert.match(describeError(bad.error), /config\.test\.ts:\d+:\d+: not valid TOML/);
  // a missing quote on line 3: the error points there and quotes that line, not the file's start
  const r = parseTomlText('role = "local"\nlan = "lan"\nremote = "198.51.100.2\n[[link]]\n', 'lp.toml');
  assert.ok(r.isErr());
  assert.equal(describeError(r.error), 'lp.toml:3:23: not valid TOML: control characters are not allowed in strings (got "remote = \\"198.51.100.2")');
});

// ---- bad configs --------------------------------------------------------------------------------

const LP = {
  ...KEYS,
  role: 'local',
  lan: 'lan',
  client: ['198.51.100.10/32', '2001:db8:100::10/128'],
  gateway: ['198.51.100.1', '2001:db8:100::1'],
  remote: '198.51.100.2',
  link: [
    { name: 'dsl', interface: 'wan1', gateway: '100.64.1.254' },
    { name: '4g', interface: 'wan2', gateway: '100.64.2.254' },
  ],
};
const RP = { ...KEYS, role: 'remote', wan: 'wan', client: ['198.51.100.10/32', '2001:db8:100::10/128'] };

const lp = (patch: Record<string, unknown>) => ({ ...LP, ...patch });
const rp = (patch: Record<string, unknown>) => ({ ...RP, ...patch });
/** LP with link[i] patched (`undefined` removes a key) */
const lpLink = (i: number, patch: Record<string, unknown>) => ({
  ...LP,
  link: LP.link.map((l, j) => (j === i ? Object.fromEntries(Object.entries({ ...l, ...patch }).filter(([, v]) => v !== undefined)) : l)),
});
const many = (n: number) => Array.from({ length: n }, (_, i) => ({ interface: `wan${i + 1}`, gateway: `100.64.${i + 1}.254` }));

const BAD: [string, unknown, string, RegExp][] = [
  ['not a table', 'role = "local"', 'lp.toml', /a portal config must be a table/],
  ['no role', {}, 'role', /must be "local" \(LP\) or "remote" \(RP\)/],
  ['unknown role', lp({ role: 'middle' }), 'role', /must be "local"/],
  ['an RP key on an LP', lp({ wan: 'eth0' }), 'wan', /is a Remote Portal key, not valid with role = "local"/],
  ['an LP key on an RP', rp({ link: [] }), 'link', /is a Local Portal key/],
  ['an unknown key', lp({ privatekey: 'x' }), 'privatekey', /unknown key \(expected one of: role, instance/],
  ['an instance with capitals', lp({ instance: 'Home' }), 'instance', /lower-case letters/],
  ['an instance of 17 characters', lp({ instance: 'a'.repeat(17) }), 'instance', /1-16/],
  ['port 0', lp({ port: 0 }), 'port', /integer from 1 to 65535/],
  ['port 70000', rp({ port: 70000 }), 'port', /integer from 1 to 65535/],
  ['port as a string', lp({ port: '7470' }), 'port', /integer from 1 to 65535/],
  ['ip_proto 300', lp({ ip_proto: 300 }), 'ip_proto', /integer from 1 to 255/],
  ['ip_proto of UDP', lp({ ip_proto: 17 }), 'ip_proto', /is UDP; the ip carrier needs a protocol of its own/],
  ['probe_interval too short', lp({ probe_interval: '5ms' }), 'probe_interval', /from 20ms to 1s/],
  ['probe_interval as a bare number', lp({ probe_interval: 100 }), 'probe_interval', /milliseconds from 20ms to 1s/],
  ['no client', lp({ client: undefined }), 'client', /is required: the address\(es\) the client uses/],
  ['client with host bits', rp({ client: '198.51.100.10/24' }), 'client', /host bits set \(the prefix is 198\.51\.100\.0\/24\)/],
  ['client not an address', rp({ client: ['10.0.0.300'] }), 'client[0]', /not an IPv4 or IPv6 prefix/],
  ['client default route', rp({ client: '0.0.0.0/0' }), 'client', /default route/],
  ['two IPv4 clients', rp({ client: ['198.51.100.10/32', '198.51.100.11/32'] }), 'client[1]', /second IPv4 value \(at most one per family\)/],
  ['three clients', rp({ client: ['198.51.100.10', '2001:db8::1', '198.51.100.11'] }), 'client', /at most one IPv4 and one IPv6/],
  ['no lan', lp({ lan: undefined }), 'lan', /is required: an interface name/],
  ['lan with a space', lp({ lan: 'lan 0' }), 'lan', /not an interface name/],
  ['lan of 16 characters', lp({ lan: 'a'.repeat(16) }), 'lan', /1-15 characters/],
  ['no gateway', lp({ gateway: undefined }), 'gateway', /is required/],
  ['no IPv6 gateway for an IPv6 client', lp({ gateway: '198.51.100.1' }), 'gateway', /needs an IPv6 address: the client has 2001:db8:100::10\/128/],
  ['a gateway of a family the client lacks', lp({ client: '198.51.100.10/32', gateway: ['198.51.100.1', 'fe80::1'] }), 'gateway[1]', /is IPv6 but client has no IPv6 prefix/],
  ['the gateway is the client', lp({ gateway: ['198.51.100.10', '2001:db8:100::1'] }), 'gateway[0]', /is the client address itself/],
  ['a gateway with a zone id', lp({ gateway: ['198.51.100.1', 'fe80::1%lan'] }), 'gateway[1]', /not an IPv4 or IPv6 address/],
  ['no remote', lp({ remote: undefined }), 'remote', /is required: the RP's public address/],
  ['remote inside the client prefix', lp({ remote: ['198.51.100.10', '2001:db8:100::2'], client: ['198.51.100.0/28', '2001:db8:100::10/128'] }), 'remote[0]', /inside the client prefix 198\.51\.100\.0\/28/],
  ['a link-local remote', lp({ remote: ['198.51.100.2', 'fe80::2'] }), 'remote[1]', /reachable across the Internet/],
  ['no links', lp({ link: undefined }), 'link', /at least one \[\[link\]\] table is required/],
  ['an empty link array', lp({ link: [] }), 'link', /1 to 16 \[\[link\]\] tables/],
  ['17 links', lp({ link: many(17) }), 'link', /1 to 16/],
  ['a link that is not a table', lp({ link: ['wan1'] }), 'link[0]', /must be a table/],
  ['an unknown link key', lpLink(0, { mtu: 1400 }), 'link[0].mtu', /unknown key \(expected one of: name, interface/],
  ['a link without interface', lpLink(1, { interface: undefined }), 'link[1].interface', /is required/],
  ['a link on lan', lpLink(1, { interface: 'lan' }), 'link[1].interface', /is the lan interface/],
  ['two links on one interface', lpLink(1, { interface: 'wan1' }), 'link[1].interface', /already used by link\[0\] \("dsl"\)/],
  ['two links with one name', lpLink(1, { name: 'dsl' }), 'link[1].name', /already the name of link\[0\]/],
  ['a link name with a space', lpLink(0, { name: 'my dsl' }), 'link[0].name', /1-16 letters/],
  ['a gateway of a family the remote lacks', lpLink(1, { gateway: 'fd00:64:2::fe' }), 'link[1].gateway', /is IPv6 but remote has no IPv6 address/],
  ['a multicast gateway', lpLink(0, { gateway: '224.0.0.1' }), 'link[0].gateway', /not a unicast address/],
  ['source and gateway of different families', lpLink(0, { source: 'fd00:64:1::1' }), 'link[0].source', /is IPv6 but gateway is IPv4/],
  ['a link-local source', lpLink(0, { source: '169.254.0.1' }), 'link[0].source', /not link-local/],
  ['two links with one source', { ...LP, link: [{ interface: 'wan1', source: '100.64.1.1' }, { interface: 'wan2', source: '100.64.1.1' }] }, 'link[1].source', /already the source of link\[0\]/],
  ['a family-less link with a dual-stack remote', lp({ remote: ['198.51.100.2', '2001:db8:100::2'], link: [{ interface: 'ppp0' }] }), 'link[0].source', /is required on a link without gateway when remote has both/],
  ['carrier tcp', lpLink(0, { carrier: 'tcp' }), 'link[0].carrier', /must be "udp" or "ip"/],
  ['metric 256', lpLink(1, { metric: 256 }), 'link[1].metric', /integer from 0 to 255/],
  ['a rate that is not one', lpLink(0, { rate: 'fast' }), 'link[0].rate', /not a rate between 8kbit and 100gbit/],
  ['a rate in megabytes per second (tc\'s mbps)', lpLink(0, { rate: '20 mbps' }), 'link[0].rate', /is in mbps, tc's spelling of megabytes per second: write "20mbit" for 20 mbit\/s \(or "160mbit" if you meant bytes\)/],
  ['a rate in bytes per second', lpLink(0, { rate: '500000bps' }), 'link[0].rate', /write "500000bit"/],
  ['rate "none"', lpLink(0, { rate: 'none' }), 'link[0].rate', /not a rate/],
  ['a delay without unit', lpLink(0, { delay: '10' }), 'link[0].delay', /not a duration up to 10s/],
  ['a budget in furlongs', lpLink(0, { budget: '10 furlongs' }), 'link[0].budget', /not a byte count \(e\.g\. "10GB"/],
  ['a budget as a bare number', lpLink(0, { budget: 5 }), 'link[0].budget', /not a byte count/],
  ['a budget period "weekly"', lpLink(0, { budget: '1GB', budget_period: 'weekly' }), 'link[0].budget_period', /"monthly:N" \(day N, 1-31\)/],
  ['a budget renewing on day 32', lpLink(0, { budget: '1GB', budget_period: 'monthly:32' }), 'link[0].budget_period', /monthly/],
  ['congestion_control "off"', lp({ congestion_control: 'off' }), 'congestion_control', /true or false/],
  ['ack_path "fastest"', lp({ ack_path: 'fastest' }), 'ack_path', /"slowest" .* or "earliest"/],
  ['lan_prefixes as a string', lp({ lan_prefixes: '192.168.1.0/24' }), 'lan_prefixes', /must be an array of at most 4 prefixes/],
  ['five lan_prefixes', lp({ lan_prefixes: ['10.1.0.0/16', '10.2.0.0/16', '10.3.0.0/16', '10.4.0.0/16', '10.5.0.0/16'] }), 'lan_prefixes', /at most 4/],
  ['a lan prefix with host bits', lp({ lan_prefixes: ['192.168.1.1/24'] }), 'lan_prefixes[0]', /host bits set \(the prefix is 192\.168\.1\.0\/24\)/],
  ['a lan prefix that is not one', lp({ lan_prefixes: ['192.168.1.0/24', 'lan'] }), 'lan_prefixes[1]', /not an IPv4 or IPv6 prefix/],
  ['a lan prefix of a family the client lacks', lp({ client: '198.51.100.10/32', gateway: '198.51.100.1', lan_prefixes: ['fd00:1::/64'] }), 'lan_prefixes[0]', /is IPv6 but client has no IPv6 address to translate it to/],
  ['a lan prefix with a routed client prefix', lp({ client: ['198.51.100.8/29', '2001:db8:100::10/128'], lan_prefixes: ['192.168.1.0/24'] }), 'lan_prefixes[0]', /client 198\.51\.100\.8\/29 is not a single address/],
  ['a lan prefix over the client address', lp({ lan_prefixes: ['198.51.100.0/24'] }), 'lan_prefixes[0]', /overlaps the client prefix 198\.51\.100\.10\/32/],
  ['a lan prefix over the RP', lp({ remote: '10.0.0.2', lan_prefixes: ['10.0.0.0/8'] }), 'lan_prefixes[0]', /contains the RP's address 10\.0\.0\.2/],
  ['a lan prefix over a link gateway', lp({ lan_prefixes: ['100.64.0.0/10'] }), 'lan_prefixes[0]', /contains 100\.64\.1\.254 of link\[0\] \("dsl"\)/],
  ['overlapping lan prefixes', lp({ lan_prefixes: ['192.168.0.0/16', '192.168.1.0/24'] }), 'lan_prefixes[1]', /overlaps 192\.168\.0\.0\/16, listed before/],
  ['lan_nat_ports backwards', lp({ lan_nat_ports: '60000-1024' }), 'lan_nat_ports', /port range "lo-hi" of at least 256 ports/],
  ['lan_nat_ports of 10 ports', lp({ lan_nat_ports: '1024-1033' }), 'lan_nat_ports', /at least 256 ports/],
  ['lan_nat_ports as a number', lp({ lan_nat_ports: 1024 }), 'lan_nat_ports', /"lo-hi"/],
  ['lan_prefixes on an RP', rp({ lan_prefixes: ['192.168.1.0/24'] }), 'lan_prefixes', /is a Local Portal key/],
  ['port_forwards without lan_prefixes', lp({ port_forwards: ['tcp/443 -> 192.168.1.10'] }), 'port_forwards', /needs lan_prefixes/],
  ['bond_local without lan_prefixes', lp({ bond_local: true }), 'bond_local', /needs lan_prefixes \(whole-LAN mode\)/],
  ['bond_local as a string', lp({ lan_prefixes: ['192.168.1.0/24'], bond_local: 'yes' }), 'bond_local', /must be true or false/],
  ['shape as a word other than "auto"', lp({ shape: 'yes' }), 'shape', /must be true \(shape every link.*false, or "auto"/],
  ['bond_local on an RP', rp({ bond_local: true }), 'bond_local', /is a Local Portal key/],
  ['port_forwards as a string', lp({ lan_prefixes: ['192.168.1.0/24'], port_forwards: 'tcp/443 -> 192.168.1.10' }), 'port_forwards', /array of at most 64 forwards/],
  ['a forward of sctp', lp({ lan_prefixes: ['192.168.1.0/24'], port_forwards: ['sctp/443 -> 192.168.1.10'] }), 'port_forwards[0]', /must be "tcp\/PORT -> ADDRESS\[:PORT\]"/],
  ['a forward to port 0', lp({ lan_prefixes: ['192.168.1.0/24'], port_forwards: ['tcp/443 -> 192.168.1.10:0'] }), 'port_forwards[0]', /outside 1-65535/],
  ['a forward to a host name', lp({ lan_prefixes: ['192.168.1.0/24'], port_forwards: ['tcp/443 -> nas:443'] }), 'port_forwards[0]', /does not name an IPv4 or IPv6 address/],
  ['a forward outside the LAN', lp({ lan_prefixes: ['192.168.1.0/24'], port_forwards: ['tcp/443 -> 192.168.2.10'] }), 'port_forwards[0]', /leads to 192\.168\.2\.10, which is in no lan_prefixes prefix/],
  ['a forward of the tunnel port', lp({ lan_prefixes: ['192.168.1.0/24'], port_forwards: ['udp/7470 -> 192.168.1.10'] }), 'port_forwards[0]', /is the tunnel port 7470, which stays with the RP/],
  ['a port forwarded twice', lp({ lan_prefixes: ['192.168.1.0/24'], port_forwards: ['tcp/443 -> 192.168.1.10', 'tcp/443 -> 192.168.1.11'] }), 'port_forwards[1]', /forwards tcp\/443 of the IPv4 client address a second time/],
  ['two forwards to one host port', lp({ lan_prefixes: ['192.168.1.0/24'], port_forwards: ['tcp/443 -> 192.168.1.10', 'tcp/8443 -> 192.168.1.10:443'] }), 'port_forwards[1]', /one forward per LAN host and port/],
  ['no wan', rp({ wan: undefined }), 'wan', /is required: an interface name/],
  ['no private_key', lp({ private_key: undefined }), 'private_key', /is required: the path of this portal's private key file \(mpctl genkey\), or insecure_no_auth/],
  ['a relative private_key', rp({ private_key: 'lp.key' }), 'private_key', /must be the absolute path of a private key file/],
  ['private_key as a number', lp({ private_key: 600 }), 'private_key', /absolute path/],
  ['private_key a directory', lp({ private_key: '/etc/mpctl/' }), 'private_key', /absolute path of a private key file/],
  ['no peer_public_key', rp({ peer_public_key: undefined }), 'peer_public_key', /is required: the Local Portal's public key in base64/],
  ['a peer_public_key too short', lp({ peer_public_key: 'QrbaVdtRWCBwdaw+q4cEwgxnP/g3QiW2vVWxBhyhwz=' }), 'peer_public_key', /44 characters of base64/],
  ['a peer_public_key in hex', lp({ peer_public_key: 'a'.repeat(44) }), 'peer_public_key', /not standard base64/],
  ['a peer_public_key with spare bits set', lp({ peer_public_key: 'QrbaVdtRWCBwdaw+q4cEwgxnP/g3QiW2vVWxBhyhwzN=' }), 'peer_public_key', /not a canonical base64/],
  ['a low-order peer_public_key', rp({ peer_public_key: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' }), 'peer_public_key', /low-order point/],
  ['peer_public_key as an array', lp({ peer_public_key: [RP_PUB] }), 'peer_public_key', /must be the Remote Portal's public key in base64/],
  ['insecure_no_auth "yes"', lp({ insecure_no_auth: 'yes' }), 'insecure_no_auth', /true or false/],
  ['forward is a string', rp({ forward: 'srv' }), 'forward', /array of interface names/],
  ['forward lists wan', rp({ forward: ['srv', 'wan'] }), 'forward[1]', /is the wan interface/],
  ['forward lists one twice', rp({ forward: ['srv', 'srv'] }), 'forward[1]', /listed twice/],
  ['single_interface "yes"', rp({ single_interface: 'yes' }), 'single_interface', /true or false/],
  ['a prefix on a single-interface RP', rp({ single_interface: true, client: ['198.51.100.10/32', '2001:db8:100::/64'] }), 'client[1]', /single address on a single-interface RP/],
  ['reserved ports without single_interface', rp({ reserved_ports: [22] }), 'reserved_ports', /set single_interface = true/],
  ['the tunnel port reserved', rp({ single_interface: true, client: '198.51.100.2', reserved_ports: [22, 7470] }), 'reserved_ports[1]', /is the tunnel port/],
  ['port 0 reserved', rp({ single_interface: true, client: '198.51.100.2', reserved_ports: [0] }), 'reserved_ports[0]', /integer from 1 to 65535/],
  ['nine reserved ports', rp({ single_interface: true, client: '198.51.100.2', reserved_ports: [1, 2, 3, 4, 5, 6, 7, 8, 9] }), 'reserved_ports', /at most 8 ports/],
  ['link_names not an array', rp({ link_names: 'dsl' }), 'link_names', /the LP's \[\[link\]\] names in its order/],
  ['a link name twice', rp({ link_names: ['dsl', 'dsl'] }), 'link_names[1]', /listed twice/],
  ['a bad link name', rp({ link_names: ['dsl', 'my link'] }), 'link_names[1]', /1-16 letters/],
  ['17 link names', rp({ link_names: Array.from({ length: 17 }, (_, i) => `l${i}`) }), 'link_names', /at most 16 names/],
];

const clean = (o: unknown) => JSON.parse(JSON.stringify(o)) as unknown; // drops keys set to undefined

for (const [name, raw, path, msg] of BAD) {
  test(`config rejects ${name} at ${path}`, () => {
    const r = parseConfig(clean(raw), 'lp.toml');
    assert.ok(r.isErr(), `accepted: ${JSON.stringify(raw)}`);
    assert.equal(r.error.kind, 'ConfigInvalid');
    assert.ok(r.error.kind === 'ConfigInvalid');
    assert.equal(r.error.path, path, describeError(r.error));
    assert.match(r.error.message, msg);
    // the CLI's line names the key first and quotes the value last
    assert.ok(describeError(r.error).startsWith(`${path}: `));
    const v = r.error.value;
    if (v === undefined || v === null) assert.doesNotMatch(describeError(r.error), /\(got (undefined|null)\)/);
    else assert.ok(describeError(r.error).endsWith(`(got ${JSON.stringify(v)})`));
  });
}

test('the bad-config table is broad', () => {
  assert.ok(BAD.length >= 25);
});
