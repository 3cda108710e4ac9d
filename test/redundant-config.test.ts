// `[[redundant]]` classes (README "Redundant mode"): parsing, defaults, errors that name the key and
// quote the value, the data path's encoding, and the dry run's lines (golden file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { parseConfig } from '../src/config/parse.js';
import { describeError } from '../src/errors.js';
import { planPortal } from '../src/plan/plan.js';
import { DEFAULT_POLICY } from '../src/plan/policy.js';
import { dryRunScript } from '../src/plan/dry-run.js';
import { redClassValue } from '../src/apply/datapath.js';
import { encodeRedClass, MP_RED_ALL_LINKS, MP_RED_CLASS } from '../src/datapath/abi.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const LP_TEXT = readFileSync(here('fixtures/lp.toml'), 'utf8');
const withClasses = (toml: string) => parseConfig(parseToml(`${LP_TEXT}\n${toml}`), 'lp.toml');
const error = (toml: string) => {
  const r = withClasses(toml);
  assert.ok(r.isErr(), 'expected a config error');
  return describeError(r.error);
};

const CLASSES = `
[[redundant]]
name = "calls"

[[redundant]]
name = "game"
dscp = ["CS4", 40]
udp_ports = ["3478-3481", 27015]
prefixes = ["203.0.113.0/24", "2001:db8:77::/48"]
links = "all"
cap = "500kbit"
`;

test('[[redundant]]: defaults (DSCP EF and AF41, 2 links, 2mbit) and every criterion', () => {
  const r = withClasses(CLASSES);
  assert.ok(r.isOk(), r.isErr() ? describeError(r.error) : '');
  const [calls, game] = r.value.redundant;
  assert.deepEqual(calls, { id: 0, name: 'calls', dscp: [46, 34], udpPorts: [], prefixes: [], links: 2, capBps: 2_000_000 });
  assert.deepEqual(game, {
    id: 1,
    name: 'game',
    dscp: [32, 40],
    udpPorts: [{ lo: 3478, hi: 3481 }, { lo: 27015, hi: 27015 }],
    prefixes: [{ family: 4, address: '203.0.113.0', len: 24 }, { family: 6, address: '2001:db8:77::', len: 48 }],
    links: 'all',
    capBps: 500_000,
  });
  // no [[redundant]]: none
  assert.deepEqual(withClasses('').map((c) => c.redundant)._unsafeUnwrap(), []);
});

test('[[redundant]]: errors name the key and quote the value', () => {
  assert.equal(error('[[redundant]]\ndscp = ["EFF"]'), 'redundant[0].dscp[0]: is not a DSCP name (EF, AF11..AF43, CS0..CS7, VA, LE) or a number 0..63 (got "EFF")');
  assert.equal(error('[[redundant]]\ndscp = [64]'), 'redundant[0].dscp[0]: is not a DSCP name (EF, AF11..AF43, CS0..CS7, VA, LE) or a number 0..63 (got 64)');
  assert.equal(error('[[redundant]]\nudp_ports = ["5000-4000"]'), 'redundant[0].udp_ports[0]: is an empty range (5000 > 4000) (got "5000-4000")');
  assert.equal(error('[[redundant]]\nudp_ports = ["http"]'), 'redundant[0].udp_ports[0]: is not a port 1..65535 or a range "lo-hi" (got "http")');
  assert.equal(error('[[redundant]]\nprefixes = ["203.0.113.1/24"]'), 'redundant[0].prefixes[0]: has host bits set (the prefix is 203.0.113.0/24) (got "203.0.113.1/24")');
  assert.equal(error('[[redundant]]\nlinks = 1'), 'redundant[0].links: must be the number of links each packet goes on (2..16) or "all" (got 1)');
  assert.equal(error('[[redundant]]\ncap = "2mbps"'), 'redundant[0].cap: is in mbps, tc\'s spelling of megabytes per second: write "2mbit" for 2 mbit/s (or "16mbit" if you meant bytes): the copies\' rate must be capped (got "2mbps")');
  assert.equal(error('[[redundant]]\ncap = "none"'), 'redundant[0].cap: is not a rate between 8kbit and 100gbit (e.g. "2mbit"): the copies\' rate must be capped (got "none")');
  assert.equal(error('[[redundant]]\ndscp = []'), 'redundant[0]: matches nothing: give dscp, udp_ports or prefixes (or none of them for DSCP EF and AF41) (got {"dscp":[]})');
  assert.equal(error('[[redundant]]\nport = 5060'), 'redundant[0].port: unknown key (expected one of: name, dscp, udp_ports, prefixes, links, cap) (got 5060)');
  assert.equal(error('[[redundant]]\nname = "a"\n[[redundant]]\nname = "a"'), 'redundant[1].name: is already the name of redundant[0] (got "a")');
  assert.match(error(Array.from({ length: 9 }, () => '[[redundant]]').join('\n')), /^redundant: must be at most 8 \[\[redundant\]\] tables \(got \[\{\},/);
});

test('[[redundant]]: what the data path gets (mp_red_class)', () => {
  const [calls, game] = withClasses(CLASSES)._unsafeUnwrap().redundant;
  const b = encodeRedClass(redClassValue(game!));
  const off = (n: string) => MP_RED_CLASS.fields.find((f) => f.name === n)!.offset;
  assert.equal(b.length, MP_RED_CLASS.size);
  assert.equal(b[off('used')], 1);
  assert.equal(b[off('links')], MP_RED_ALL_LINKS);
  assert.equal(b[off('n_ports')], 2);
  assert.equal(b[off('n_prefixes')], 2);
  assert.equal(b.readBigUInt64LE(off('dscp')), (1n << 32n) | (1n << 40n));
  assert.deepEqual([b.readUInt16LE(off('port_lo')), b.readUInt16LE(off('port_hi')), b.readUInt16LE(off('port_lo') + 2)], [3478, 3481, 27015]);
  assert.equal(b.readBigUInt64LE(off('cap_bytes_per_s')), 62_500n);
  assert.equal(b.readUInt32LE(off('burst_bytes')), 16384, '200 ms of the cap, at least 16 KiB');
  assert.equal(encodeRedClass(redClassValue(calls!)).readUInt32LE(off('burst_bytes')), 50_000);
  assert.ok(encodeRedClass(null).equals(Buffer.alloc(MP_RED_CLASS.size)), 'an unused slot is zero');
});

test('[[redundant]]: the dry run names each class (golden: test/golden/lp-redundant.dry-run.txt)', () => {
  const cfg = withClasses(CLASSES)._unsafeUnwrap();
  const plan = planPortal(cfg, DEFAULT_POLICY, { addresses: { wan2: ['fd00:64:2::1/64'] }, mtus: { lo: 65536, lan: 1500, wan1: 1500, wan2: 1500, wan3: 1500 } })._unsafeUnwrap();
  const text = `${dryRunScript(cfg, plan, 'lp.toml').join('\n')}\n`;
  const file = here('golden/lp-redundant.dry-run.txt');
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
  assert.equal(text, readFileSync(file, 'utf8'), 'lp-redundant.dry-run.txt differs (UPDATE_GOLDEN=1 regenerates it)');
});

test('[[redundant]] counters in status, --json, /metrics and the console', async () => {
  const { statusText } = await import('../src/run/status.js');
  const { exposition } = await import('../src/metrics/exposition.js');
  const { step, emptyModel } = await import('../src/tui/model.js');
  const { validateStatus } = await import('./helpers/status-schema.js');
  const base = JSON.parse(readFileSync(here('fixtures/status-stream.ndjson'), 'utf8').split('\n')[0]!);
  const s = { ...base, redundant: [{ id: 0, name: 'calls', packets: 3000, bytes: 600000, copies: 2990, copyBytes: 735540, capped: 10, single: 0, copyFailed: 0, duplicates: 2980, wins: { '0': 2100, '1': 880 } }] };
  assert.ok(validateStatus(s), JSON.stringify(validateStatus.errors));
  assert.ok(!validateStatus({ ...s, redundant: [{ ...s.redundant[0], wins: { '16': 1 } }] }), 'link ids 0..15 only');
  assert.match(statusText(s), /\n {2}redundant 0 calls: sent 3000 pkts with 2990 copies \(735540 B\), 10 capped; received first on link 0 2100, link 1 880, 2980 duplicates dropped/);
  const m = exposition(s);
  assert.match(m, /\nmpctl_redundant_packets_total\{class="calls",class_id="0"\} 3000\n/);
  assert.match(m, /\nmpctl_redundant_copies_total\{class="calls",class_id="0"\} 2990\n/);
  assert.match(m, /\nmpctl_redundant_uncopied_total\{class="calls",class_id="0",reason="capped"\} 10\n/);
  assert.match(m, /\nmpctl_redundant_first_copy_total\{class="calls",class_id="0",link_id="1",link="[^"]+"\} 880\n/);
  assert.match(m, /\nmpctl_redundant_duplicates_total\{class="calls",class_id="0"\} 2980\n/);
  assert.doesNotMatch(exposition(base), /mpctl_redundant_/, 'no classes: no families');
  const v = step(emptyModel, s).view!;
  assert.equal(v.redundant.length, 1);
  assert.match(v.redundant[0]!, /^calls: sent 3000 \+ 2990 copies \(10 capped\) · first in: \S+ 2100 \S+ 880 · 2980 dup dropped$/);
});
