// The Prometheus exposition of a portal's status (src/metrics/): names, types, units and values
// from the recorded lab stream, and the HTTP endpoint. The endpoint of a live portal is scraped
// in the lab by test/console-pty.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ok, err } from 'neverthrow';
import type { PortalStatus } from '../src/run/status.js';
import { exposition } from '../src/metrics/exposition.js';
import { CONTENT_TYPE, serveMetrics } from '../src/metrics/server.js';
import { parseConfig } from '../src/config/parse.js';
import { parseExposition, valueOf } from './helpers/prom.js';

const stream = readFileSync(new URL('./fixtures/status-stream.ndjson', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as PortalStatus);
const security = { mode: 'authenticated' as const, peer: 'k', keyId: 2, sessionAgeMs: 61_500, lastHandshakeAtMs: 1795631794740, handshakes: 3, rekeys: 2, initiationsSent: 3, initiationsReceived: 0, responsesSent: 0, cookiesSent: 0, rejected: { 'bad-mac1': 1 } };

test('exposition: per-link gauges and counters in base units, drops by reason, session state', () => {
  const s = { ...stream[5]!, security, links: stream[5]!.links.map((l) => (l.id === 1 ? { ...l, name: 'we"ird\\name', state: 'admin-down' as const } : l.id === 2 ? { ...l, budget: { limitBytes: 2e10, leftBytes: 123_456, exhausted: false, usedBytes: 7_000 } } : { ...l, budget: null })) };
  const p = parseExposition(exposition(s));
  const dsl = s.links[0]!;
  assert.equal(valueOf(p, 'mpctl_link_tx_bytes_total', { link: 'dsl', link_id: '0' }), dsl.tx.bytes);
  assert.equal(valueOf(p, 'mpctl_link_rx_packets_total', { link: 'dsl' }), dsl.rx.packets);
  assert.equal(valueOf(p, 'mpctl_link_rate_bps', { link: 'dsl' }), dsl.rateBps);
  assert.equal(valueOf(p, 'mpctl_link_rtt_seconds', { link: 'dsl' }), dsl.rttMs! / 1000);
  assert.equal(valueOf(p, 'mpctl_link_one_way_delay_seconds', { link: 'sat' }), s.links[2]!.owdUs / 1e6);
  assert.equal(valueOf(p, 'mpctl_link_up', { link: 'dsl' }), 1);
  assert.equal(valueOf(p, 'mpctl_link_up', { link: 'we"ird\\name' }), 0, 'label values are escaped and read back');
  assert.equal(valueOf(p, 'mpctl_link_admin_down', { link_id: '1' }), 1);
  assert.equal(valueOf(p, 'mpctl_link_budget_remaining_bytes', { link: 'sat' }), 123_456);
  assert.equal(valueOf(p, 'mpctl_link_budget_limit_bytes', { link: 'sat' }), 2e10);
  assert.equal(valueOf(p, 'mpctl_link_budget_used_bytes', { link: 'sat' }), 7_000);
  assert.equal(valueOf(p, 'mpctl_link_budget_remaining_bytes', { link: 'dsl' }), undefined, 'no budget: no series');
  assert.equal(valueOf(p, 'mpctl_link_shape_rate_bps', { link: 'dsl' }), undefined, 'not shaped: no series');
  const shaped = parseExposition(exposition({ ...s, links: s.links.map((l) => ({ ...l, shapeBps: 19_600_000 + l.id })) }));
  assert.equal(valueOf(shaped, 'mpctl_link_shape_rate_bps', { link: 'sat' }), 19_600_002);
  // the controller's jitter average, seconds; a status from before it (the recorded stream) has none
  assert.equal(valueOf(p, 'mpctl_link_jitter_seconds', { link: 'dsl' }), undefined, 'no jitter in the status: no series');
  const jit = parseExposition(exposition({ ...s, links: s.links.map((l) => ({ ...l, cc: l.cc && { ...l.cc, jitterMs: 2.5 + l.id, jittery: l.id === 2 } })) }));
  assert.equal(valueOf(jit, 'mpctl_link_jitter_seconds', { link: 'sat' }), 0.0045);
  assert.equal(jit.types.get('mpctl_link_jitter_seconds'), 'gauge');
  // the buffer depth learned (no series until one) and the random loss
  assert.equal(valueOf(p, 'mpctl_link_random_loss_ratio', { link: 'dsl' }), undefined, 'none in the status: no series');
  const learned = parseExposition(exposition({ ...s, links: s.links.map((l) => ({ ...l, cc: l.cc && { ...l.cc, depthMs: l.id === 0 ? 44.5 : null, randomLossPct: 0.5 } })) }));
  assert.equal(valueOf(learned, 'mpctl_link_buffer_depth_seconds', { link: 'dsl' }), 0.0445);
  assert.equal(valueOf(learned, 'mpctl_link_buffer_depth_seconds', { link: 'sat' }), undefined, 'no depth learned: no series');
  assert.equal(valueOf(learned, 'mpctl_link_random_loss_ratio', { link: 'sat' }), 0.005);
  assert.equal(learned.types.get('mpctl_link_buffer_depth_seconds'), 'gauge');
  assert.equal(valueOf(p, 'mpctl_drops_total', { reason: 'bad_mac' }), 0);
  assert.equal(p.samples.filter((x) => x.name === 'mpctl_drops_total').length, Object.keys(s.drops).length);
  assert.equal(valueOf(p, 'mpctl_handshakes_total'), 3);
  assert.equal(valueOf(p, 'mpctl_session_age_seconds'), 61.5);
  assert.equal(valueOf(p, 'mpctl_session_established'), 1);
  assert.equal(valueOf(p, 'mpctl_rejected_messages_total', { reason: 'bad-mac1' }), 1);
  assert.equal(valueOf(p, 'mpctl_portal_info', { instance: 'oprec-lp', role: 'local' }), 1);
  assert.equal(p.types.get('mpctl_link_tx_bytes_total'), 'counter');
  assert.equal(p.types.get('mpctl_link_up'), 'gauge');
  // throughput the way Prometheus computes rate(): counter difference over time
  const a = parseExposition(exposition(stream[3]!));
  const b = parseExposition(exposition(stream[4]!));
  const mbps = ((valueOf(b, 'mpctl_link_tx_bytes_total', { link: 'sat' })! - valueOf(a, 'mpctl_link_tx_bytes_total', { link: 'sat' })!) * 8) / ((stream[4]!.time - stream[3]!.time) / 1000) / 1e6;
  assert.ok(mbps > 25 && mbps < 31, `sat ${mbps} Mbit/s`);
  // without a published security status the session families are absent, not zero
  assert.equal(valueOf(parseExposition(exposition(stream[0]!)), 'mpctl_handshakes_total'), undefined);
  // whole-LAN mode: the NAT's mappings by protocol; without it, no series
  const nat = parseExposition(exposition({ ...s, nat: { mappings: 12, tcp: 8, udp: 3, icmp: 1, expired: 2 } }));
  assert.equal(valueOf(nat, 'mpctl_nat_mappings', { proto: 'tcp' }), 8);
  assert.equal(valueOf(nat, 'mpctl_nat_mappings', { proto: 'icmp' }), 1);
  assert.equal(valueOf(nat, 'mpctl_nat_expired_mappings'), 2);
  assert.equal(nat.types.get('mpctl_nat_mappings'), 'gauge');
  assert.equal(valueOf(p, 'mpctl_nat_mappings', { proto: 'tcp' }), undefined);
});

test('metrics endpoint: GET /metrics with the exposition content type, 404, 405, 503 when the portal is gone', async (t) => {
  let gone = false;
  const m = await serveMetrics({ host: '127.0.0.1', port: 0 }, async () =>
    gone ? err({ kind: 'NotFound', what: 'portal', message: 'portal "x" is not up' }) : ok({ ...stream[4]!, security }),
  );
  assert.ok(m.isOk());
  t.after(() => m._unsafeUnwrap().close());
  const base = `http://127.0.0.1:${m._unsafeUnwrap().port}`;
  const r = await fetch(`${base}/metrics`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), CONTENT_TYPE);
  const p = parseExposition(await r.text());
  assert.equal(valueOf(p, 'mpctl_link_tx_bytes_total', { link: '4g' }), stream[4]!.links[1]!.tx.bytes);
  assert.equal((await fetch(`${base}/nope`)).status, 404);
  assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
  gone = true;
  const g = await fetch(`${base}/metrics`);
  assert.equal(g.status, 503);
  assert.match(await g.text(), /not up/);
  // a second endpoint on the same address is refused with a message naming the key
  const again = await serveMetrics({ host: '127.0.0.1', port: m._unsafeUnwrap().port }, async () => ok(stream[0]!));
  assert.ok(again.isErr() && again.error.kind === 'Conflict' && /metrics_listen 127\.0\.0\.1:\d+ is in use/.test(again.error.message));
});

test('config: metrics_listen is optional, an address literal and a port', () => {
  const base = { role: 'remote', wan: 'eth0', client: '203.0.113.7', insecure_no_auth: true };
  const c = (v: unknown) => parseConfig({ ...base, metrics_listen: v }, 't');
  assert.equal(parseConfig(base, 't')._unsafeUnwrap().metricsListen, undefined, 'off by default');
  assert.deepEqual(c('127.0.0.1:9472')._unsafeUnwrap().metricsListen, { host: '127.0.0.1', port: 9472 });
  assert.deepEqual(c('[::1]:9100')._unsafeUnwrap().metricsListen, { host: '::1', port: 9100 });
  for (const bad of ['localhost:9472', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '::1:9472', 9472]) {
    const r = c(bad);
    assert.ok(r.isErr() && r.error.kind === 'ConfigInvalid' && r.error.path === 'metrics_listen', `refused: ${JSON.stringify(bad)}`);
  }
});
