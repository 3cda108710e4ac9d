// Handshake floods (src/security/cookie.ts): under load the RP answers initiations without a
// valid mac2 with a small cookie reply and no X25519 work; the LP retries with mac2.
//
//   LP 100.64.1.1:40000                                    RP (under load)
//     init (mac2 = 0)          ── 168 B ──────────────▶  mac1 ok, mac2 bad → cookie reply
//     consumeCookieReply       ◀─────────────── 72 B ──   (2 HMACs + 1 AEAD, no DH)
//     init (mac2 = MAC(cookie)) ── 168 B ─────────────▶  mac2 ok, token bucket ok → DH, response
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHdr, MP_T_COOKIE } from '../src/datapath/abi.js';
import {
  consumeCookieReply,
  cookieUsable,
  COOKIE_LATENCY_MS,
  COOKIE_SECRET_MAX_AGE_MS,
  freshCookieSecret,
  LoadMeter,
  RateLimiter,
  sourceId,
  type CookieSecret,
} from '../src/security/cookie.js';
import { consumeInitiation, consumeResponse, createInitiation, newPeer, type HandshakeError } from '../src/security/handshake.js';
import { COOKIE, INIT } from '../src/security/messages.js';
import { countingX25519, fixedKeys, seededRng } from './helpers/security.js';

const lp = fixedKeys('lp');
const rp = fixedKeys('rp');
const T0 = Date.UTC(2025, 0, 1);
const peers = () => new Map([[lp.publicB64, newPeer(lp.public)]]);
const SRC = sourceId('100.64.1.1', 40000);

function cookieRequired(e: HandshakeError): Buffer {
  assert.equal(e.kind, 'cookie-required');
  return (e as Extract<HandshakeError, { kind: 'cookie-required' }>).reply;
}

test('under load: no mac2 → a cookie reply smaller than the request and no X25519 work; the retry with mac2 is accepted', () => {
  const secret = freshCookieSecret(null, T0, seededRng('secret'));
  const x = countingX25519();
  const load = { underLoad: true, secret, source: SRC };

  const first = createInitiation(lp, rp.public, T0, undefined, { linkId: 3 });
  const r1 = consumeInitiation(rp, peers(), first.message, T0, { load, x25519: x });
  assert.ok(r1.isErr());
  const reply = cookieRequired(r1.error);
  assert.equal(x.total(), 0, 'no key pair, no DH for an unproven source');
  assert.equal(reply.length, COOKIE.size);
  assert.ok(reply.length < first.message.length, `cookie reply ${reply.length} B ≥ initiation ${first.message.length} B`);
  assert.equal(decodeHdr(reply).type, MP_T_COOKIE);
  assert.equal(decodeHdr(reply).linkId, 3, 'goes back on the initiation link');

  const cookie = consumeCookieReply(first.state, reply, T0 + 30)._unsafeUnwrap();
  assert.equal(cookie.value.length, 16);

  const retry = createInitiation(lp, rp.public, T0 + 30, undefined, { cookie, after: first.state.timestamp });
  assert.notDeepEqual(retry.message.subarray(INIT.mac2), Buffer.alloc(16), 'mac2 set');
  const r2 = consumeInitiation(rp, peers(), retry.message, T0 + 40, { load, x25519: x });
  assert.ok(r2.isOk(), r2.isErr() ? r2.error.kind : '');
  assert.equal(x.dhs, 4);
  const s = consumeResponse(retry.state, r2.value.response, T0 + 50)._unsafeUnwrap();
  assert.deepEqual(s.lpToRp, r2.value.session.lpToRp);
});

test('a cookie is bound to its source and to the secret of the last 2 minutes', () => {
  let secret: CookieSecret = freshCookieSecret(null, T0, seededRng('s1'));
  const load = (source: string, sec = secret) => ({ underLoad: true, secret: sec, source });
  const first = createInitiation(lp, rp.public, T0);
  const reply = cookieRequired(consumeInitiation(rp, peers(), first.message, T0, { load: load(SRC) })._unsafeUnwrapErr());
  const cookie = consumeCookieReply(first.state, reply, T0)._unsafeUnwrap();
  const retry = createInitiation(lp, rp.public, T0 + 1, undefined, { cookie, after: first.state.timestamp });

  // the same initiation from another address:port (a spoofer who saw the cookie) is not proven
  const x = countingX25519();
  const other = consumeInitiation(rp, peers(), retry.message, T0 + 1, { load: load(sourceId('100.64.1.1', 40001)), x25519: x });
  assert.equal(other.isErr() && other.error.kind, 'cookie-required');
  assert.equal(x.total(), 0);
  assert.ok(consumeInitiation(rp, peers(), retry.message, T0 + 1, { load: load(SRC) }).isOk());

  // the secret rotates every 2 minutes; a cookie from the old one is refused
  assert.equal(freshCookieSecret(secret, T0 + COOKIE_SECRET_MAX_AGE_MS - 1), secret);
  secret = freshCookieSecret(secret, T0 + COOKIE_SECRET_MAX_AGE_MS, seededRng('s2'));
  assert.notDeepEqual(secret.value, freshCookieSecret(null, T0, seededRng('s1')).value);
  const late = consumeInitiation(rp, peers(), retry.message, T0 + COOKIE_SECRET_MAX_AGE_MS, { load: load(SRC) });
  assert.equal(late.isErr() && late.error.kind, 'cookie-required');

  // and the initiator stops using it 5 s before that could happen
  assert.ok(cookieUsable(cookie, T0 + COOKIE_SECRET_MAX_AGE_MS - COOKIE_LATENCY_MS - 1));
  assert.ok(!cookieUsable(cookie, T0 + COOKIE_SECRET_MAX_AGE_MS - COOKIE_LATENCY_MS));
  const stale = createInitiation(lp, rp.public, T0 + COOKIE_SECRET_MAX_AGE_MS, undefined, { cookie });
  assert.deepEqual(stale.message.subarray(INIT.mac2), Buffer.alloc(16), 'no mac2 from an old cookie');
});

test('not under load, mac2 is not looked at', () => {
  const secret = freshCookieSecret(null, T0);
  const { message } = createInitiation(lp, rp.public, T0);
  assert.ok(consumeInitiation(rp, peers(), message, T0, { load: { underLoad: false, secret, source: SRC } }).isOk());
  assert.ok(consumeInitiation(rp, peers(), message, T0).isOk());
});

test('under load, mac1 is still checked first: junk gets no cookie reply', () => {
  const secret = freshCookieSecret(null, T0);
  const { message } = createInitiation(lp, fixedKeys('someone else').public, T0);
  const r = consumeInitiation(rp, peers(), message, T0, { load: { underLoad: true, secret, source: SRC } });
  assert.equal(r.isErr() && r.error.kind, 'bad-mac1');
});

test('a cookie reply: one byte changed, another handshake, or too late is refused', () => {
  const secret = freshCookieSecret(null, T0);
  const first = createInitiation(lp, rp.public, T0);
  const reply = cookieRequired(
    consumeInitiation(rp, peers(), first.message, T0, { load: { underLoad: true, secret, source: SRC } })._unsafeUnwrapErr(),
  );
  for (let at = 0; at < reply.length; at++) {
    const m = Buffer.from(reply);
    m[at] = (m[at] ?? 0) ^ 0x01;
    const want = at === 0 ? 'malformed' : at >= COOKIE.receiver && at < COOKIE.nonce ? 'unknown-index' : 'decrypt-failed';
    assert.equal(consumeCookieReply(first.state, m, T0)._unsafeUnwrapErr().kind, want, `byte ${at}`);
  }
  const another = createInitiation(lp, rp.public, T0, undefined, { index: first.state.index });
  assert.equal(consumeCookieReply(another.state, reply, T0)._unsafeUnwrapErr().kind, 'decrypt-failed', 'bound to the initiation mac1');
  assert.equal(consumeCookieReply(first.state, reply, T0 + 5001)._unsafeUnwrapErr().kind, 'stale');
  assert.ok(consumeCookieReply(first.state, reply, T0).isOk());
});

test('under load, a proven source is held to its token bucket before any X25519 work', () => {
  const secret = freshCookieSecret(null, T0);
  const limiter = new RateLimiter({ perSecond: 20, burst: 5, maxSources: 16 });
  const x = countingX25519();
  const load = { underLoad: true, secret, source: SRC, limiter };
  const first = createInitiation(lp, rp.public, T0);
  const reply = cookieRequired(consumeInitiation(rp, peers(), first.message, T0, { load })._unsafeUnwrapErr());
  const cookie = consumeCookieReply(first.state, reply, T0)._unsafeUnwrap();
  let after = first.state.timestamp;
  const kinds: string[] = [];
  const ps = peers();
  for (let i = 0; i < 8; i++) {
    const m = createInitiation(lp, rp.public, T0 + 1, undefined, { cookie, after });
    after = m.state.timestamp;
    const r = consumeInitiation(rp, ps, m.message, T0 + 1, { load, x25519: x });
    if (r.isOk()) ps.set(r.value.peer.publicB64, r.value.peer);
    kinds.push(r.isOk() ? 'ok' : r.error.kind);
  }
  assert.deepEqual(kinds, ['ok', 'ok', 'ok', 'ok', 'ok', 'rate-limited', 'rate-limited', 'rate-limited']);
  assert.equal(x.dhs, 5 * 4, 'refused ones cost no DH');
});

test('token bucket: burst, refill at the rate, per source, bounded table', () => {
  const rl = new RateLimiter({ perSecond: 20, burst: 5, maxSources: 3 });
  const a = '198.51.100.7:1000';
  const b = '198.51.100.8:1000';
  const allowed = (src: string, now: number, n: number) => Array.from({ length: n }, () => rl.allow(src, now)).filter(Boolean).length;
  assert.equal(allowed(a, 0, 10), 5, 'a burst of 5');
  assert.equal(allowed(b, 0, 10), 5, 'another source has its own bucket');
  assert.equal(allowed(a, 49, 1), 0, 'a token every 50 ms');
  assert.equal(allowed(a, 50, 2), 1);
  assert.equal(allowed(a, 1050, 100), 5, 'never more than the burst, however long it waited');
  // one second at 100 initiations/s from one source: 20 pass (+ nothing left from the burst)
  let n = 0;
  for (let t = 2000; t < 3000; t += 10) if (rl.allow(a, t)) n++;
  assert.ok(n >= 20 && n <= 25, `${n} passed`);
  // the table is bounded: a new source is refused while every tracked one is busy
  assert.equal(allowed('198.51.100.9:1', 3000, 1), 1);
  rl.allow(b, 3000);
  assert.equal(rl.size, 3);
  assert.equal(allowed('198.51.100.10:1', 3000, 1), 0, 'table full of active sources');
  // ... and accepted once idle ones are forgotten
  assert.equal(allowed('198.51.100.10:1', 10_000, 1), 1);
  rl.prune(20_000);
  assert.equal(rl.size, 0);
  // the clock going back never adds tokens
  assert.equal(allowed(a, 30_000, 5), 5);
  assert.equal(allowed(a, 29_000, 1), 0);
});

test('load meter: under load above N initiations/s and for a second after', () => {
  const m = new LoadMeter(50, 1000);
  for (let t = 0; t < 1000; t += 25) m.record(t); // 40/s
  assert.equal(m.underLoad(1000), false);
  for (let t = 1000; t < 2000; t += 10) m.record(t); // 100/s
  assert.equal(m.underLoad(1999), true);
  assert.equal(m.underLoad(2500), true, 'holds');
  assert.equal(m.underLoad(3200), false, 'quiet again');
  assert.equal(new LoadMeter(50).underLoad(0), false);
});

test('sourceId: IPv6 in brackets', () => {
  assert.equal(sourceId('100.64.1.1', 7470), '100.64.1.1:7470');
  assert.equal(sourceId('2001:db8::1', 7470), '[2001:db8::1]:7470');
});
