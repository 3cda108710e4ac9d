// `mpctl status --json` against its documented schema (docs/status.schema.json, described in
// docs/status-json.md): the recorded lab stream, the page's own example, and what must fail.
// A live portal's output is validated in test/metrics.test.ts (lab).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { statusText, type PortalStatus } from '../src/run/status.js';
import { DROP_REASONS } from '../src/datapath/abi.js';
import { statusSchema, validateStatus } from './helpers/status-schema.js';

const read = (p: string) => readFileSync(new URL(p, import.meta.url), 'utf8');
const errors = () => JSON.stringify(validateStatus.errors);

const stream = read('./fixtures/status-stream.ndjson')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as PortalStatus);

test('status --json: the recorded lab stream matches the schema', () => {
  for (const s of stream) assert.ok(validateStatus(s), errors());
  // every drop reason of bpf/mp.h is reported, zero included (the recorded stream is from before
  // shape_queue: a new reader keeps working on an older portal's drops)
  assert.deepEqual(Object.keys(stream[0]!.drops), DROP_REASONS.slice(1));
});

test('status --json: the example in docs/status-json.md matches the schema', () => {
  const md = read('../docs/status-json.md');
  const example = /```json\n([\s\S]*?)\n```/.exec(md)?.[1];
  assert.ok(example, 'the page has a json example');
  assert.ok(validateStatus(JSON.parse(example)), errors());
  // every top-level and link field of the schema has a row in the page's tables
  const schema = statusSchema as { properties: Record<string, unknown>; definitions: { link: { properties: Record<string, unknown> }; security: { properties: Record<string, unknown> } } };
  for (const f of [...Object.keys(schema.properties), ...Object.keys(schema.definitions.link.properties), ...Object.keys(schema.definitions.security.properties)])
    assert.ok(md.includes(`\`${f}\``), `docs/status-json.md documents ${f}`);
});

test('status --json: the schema refuses what it does not document', () => {
  const s = stream[3]!;
  assert.ok(validateStatus({ ...s, links: [{ ...s.links[0]!, budget: { limitBytes: 2e10, leftBytes: 5, exhausted: false } }, { ...s.links[1]!, budget: null }] }), errors());
  assert.ok(!validateStatus({ ...s, links: [{ ...s.links[0]!, budget: { leftBytes: 5 } }] }), 'an incomplete budget');
  assert.ok(!validateStatus({ ...s, extra: 1 }), 'an undocumented top-level field');
  assert.ok(!validateStatus({ ...s, links: [{ ...s.links[0]!, state: 'sleepy' }] }), 'an unknown link state');
  assert.ok(!validateStatus({ ...s, links: [{ ...s.links[0]!, tx: { packets: -1, bytes: 0 } }] }), 'a negative counter');
  assert.ok(!validateStatus({ ...s, version: 1 }), 'another version');
  assert.ok(validateStatus({ ...s, nat: { mappings: 12, tcp: 8, udp: 3, icmp: 1, expired: 2 } }), errors());
  assert.ok(!validateStatus({ ...s, nat: { mappings: 12 } }), 'an incomplete nat');
  assert.ok(!validateStatus({ ...s, nat: { mappings: 70000, tcp: 0, udp: 0, icmp: 0, expired: 0 } }), 'more mappings than the table holds');
  assert.match(statusText({ ...s, nat: { mappings: 12, tcp: 8, udp: 3, icmp: 1, expired: 2 } }), /\n {2}NAT: 12 mappings \(TCP 8, UDP 3, ICMP 1\), 2 expired \(freed, deleted at the next sweep\)\n/);
  assert.doesNotMatch(statusText(s), /NAT:/, 'no line without whole-LAN mode');
  // the controller's jitter (a status from before it has none: the recorded stream)
  const jit = { ...s, links: s.links.map((l) => ({ ...l, cc: l.cc && { ...l.cc, jitterMs: l.id === 1 ? 2.34 : 0.2, jittery: l.id === 1 } })) };
  assert.ok(validateStatus(jit), errors());
  assert.match(statusText(jit), /link 1 4g [^\n]*\n {4}cc [^\n]* loss 0\.0 % jitter 2\.3 ms \(jittery\)\n/);
  assert.match(statusText(jit), /link 0 dsl [^\n]*\n {4}cc [^\n]* jitter 0\.2 ms\n/);
  assert.doesNotMatch(statusText(s), /jitter/, 'none without the figure');
  assert.ok(!validateStatus({ ...jit, links: [{ ...jit.links[0]!, cc: { ...jit.links[0]!.cc!, jitterMs: -1 } }] }), 'a negative jitter');
  // the buffer depth learned and the random loss (none in the recorded stream, from before them)
  const learned = { ...s, links: s.links.map((l) => ({ ...l, cc: l.cc && { ...l.cc, depthMs: l.id === 0 ? 44.5 : null, randomLossPct: l.id === 1 ? 0.52 : 0 } })) };
  assert.ok(validateStatus(learned), errors());
  assert.match(statusText(learned), /link 0 dsl [^\n]*\n {4}cc [^\n]* loss 0\.0 % buffer 44\.5 ms\n/);
  assert.match(statusText(learned), /link 1 4g [^\n]*\n {4}cc [^\n]* loss 0\.0 % random loss 0\.52 %\n/, 'no buffer learned: none shown');
  assert.doesNotMatch(statusText(s), /buffer|random loss/, 'none without the figures');
  assert.ok(!validateStatus({ ...learned, links: [{ ...learned.links[1]!, cc: { ...learned.links[1]!.cc!, randomLossPct: 101 } }] }), 'a loss over 100 %');
  assert.ok(!validateStatus({ ...learned, links: [{ ...learned.links[0]!, cc: { ...learned.links[0]!.cc!, depthMs: -1 } }] }), 'a negative depth');
  assert.ok(!validateStatus({ ...s, dataPath: { forwarding: true } }), 'an incomplete dataPath');
  const { security: _, ...noSecurity } = s;
  assert.ok(!validateStatus(noSecurity), 'a missing field');
  assert.ok(
    validateStatus({ ...s, security: { mode: 'authenticated', peer: 'x', keyId: 1, sessionAgeMs: 5, lastHandshakeAtMs: 1, handshakes: 1, rekeys: 0, initiationsSent: 1, initiationsReceived: 0, responsesSent: 0, cookiesSent: 0, rejected: { bad_mac: 2 } } }),
    errors(),
  );
});
