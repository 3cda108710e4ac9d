// The Noise IK handshake (src/security/handshake.ts) and the session lifecycle
// (src/security/session.ts):
//
//   LP (initiator)                                   RP (responder)
//     createInitiation ── MP_T_HS_INIT 168 B ──────▶ consumeInitiation
//     consumeResponse  ◀────── MP_T_HS_RESP 112 B ──   (peer's last timestamp, session)
//     session: tx lpToRp, rx rpToLp                  session: tx rpToLp, rx lpToRp
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHdr, MP_T_HS_INIT, MP_T_HS_RESP } from '../src/datapath/abi.js';
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  describeHandshakeError,
  newPeer,
  type HandshakeErrorKind,
  type PeerState,
  type Session,
} from '../src/security/handshake.js';
import { INIT, mac1Key, RESP, sealMac1 } from '../src/security/messages.js';
import {
  confirmSession,
  GRACE_MS,
  handshakeDue,
  HANDSHAKE_TIMEOUT_MS,
  installSession,
  keysToInstall,
  nextKeyId,
  NO_SESSIONS,
  REJECT_AFTER_MS,
  REKEY_AFTER_MS,
  rxKeyOf,
  txKeyOf,
  type Sessions,
} from '../src/security/session.js';
import { countingX25519, fixedKeys, seededRng } from './helpers/security.js';

const lp = fixedKeys('lp');
const rp = fixedKeys('rp');
const mallory = fixedKeys('mallory');
const T0 = Date.UTC(2025, 0, 1); // wall clock, ms
const peersOf = (...ps: PeerState[]) => new Map(ps.map((p) => [p.publicB64, p]));
const rpPeers = () => peersOf(newPeer(lp.public));

/** One full handshake at `now`; the RP's peer table is updated as the portal must. */
function handshake(now: number, peers = rpPeers(), opts: { keyId?: number; after?: Buffer | null; linkId?: number } = {}) {
  const { message, state } = createInitiation(lp, rp.public, now, undefined, opts);
  const acc = consumeInitiation(rp, peers, message, now + 10)._unsafeUnwrap();
  peers.set(acc.peer.publicB64, acc.peer);
  const lpSession = consumeResponse(state, acc.response, now + 20)._unsafeUnwrap();
  return { init: message, state, response: acc.response, lpSession, rpSession: acc.session, peers };
}

const kindOf = (r: { isErr(): boolean; error?: unknown } | { isOk(): boolean }) =>
  (r as { isErr(): boolean }).isErr() ? (r as unknown as { error: { kind: HandshakeErrorKind } }).error.kind : 'ok';

test('a full IK exchange gives both sides the same per-direction SipHash keys and key id', () => {
  const { init, response, lpSession, rpSession } = handshake(T0, rpPeers(), { keyId: 7, linkId: 2 });
  assert.equal(init.length, INIT.size);
  assert.equal(response.length, RESP.size);
  assert.equal(decodeHdr(init).type, MP_T_HS_INIT);
  assert.equal(decodeHdr(response).type, MP_T_HS_RESP);
  assert.equal(decodeHdr(init).linkId, 2);
  assert.equal(decodeHdr(response).linkId, 2, 'the response goes back on the initiation link');

  assert.equal(lpSession.lpToRp.length, 16);
  assert.equal(lpSession.rpToLp.length, 16);
  assert.deepEqual(lpSession.lpToRp, rpSession.lpToRp);
  assert.deepEqual(lpSession.rpToLp, rpSession.rpToLp);
  assert.notDeepEqual(lpSession.lpToRp, lpSession.rpToLp);
  assert.deepEqual(txKeyOf(lpSession), rxKeyOf(rpSession));
  assert.deepEqual(txKeyOf(rpSession), rxKeyOf(lpSession));
  assert.equal(lpSession.keyId, 7);
  assert.equal(rpSession.keyId, 7);
  assert.equal(lpSession.peer, rp.publicB64);
  assert.equal(rpSession.peer, lp.publicB64);
  assert.equal(lpSession.localIndex, rpSession.remoteIndex);
  assert.equal(rpSession.localIndex, lpSession.remoteIndex);
  assert.equal(lpSession.createdAt, T0 + 20);
  assert.equal(rpSession.createdAt, T0 + 10);

  // a second handshake derives unrelated keys (fresh ephemerals)
  const again = handshake(T0 + 1000);
  assert.notDeepEqual(again.lpSession.lpToRp, lpSession.lpToRp);
});

test('with injected randomness a handshake is reproducible; the responder does 4 DH + 1 key pair', () => {
  const run = () => {
    const { message, state } = createInitiation(lp, rp.public, T0, seededRng('i'));
    const x = countingX25519();
    const acc = consumeInitiation(rp, rpPeers(), message, T0, { rng: seededRng('r'), x25519: x })._unsafeUnwrap();
    return { message, response: acc.response, s: consumeResponse(state, acc.response, T0)._unsafeUnwrap(), x };
  };
  const a = run();
  const b = run();
  assert.deepEqual(a.message, b.message);
  assert.deepEqual(a.response, b.response);
  assert.deepEqual(a.s.lpToRp, b.s.lpToRp);
  assert.equal(a.x.dhs, 4);
  assert.equal(a.x.keyPairs, 1);
});

test('a response is never larger than its request', () => {
  const { init, response } = handshake(T0);
  assert.ok(response.length <= init.length, `response ${response.length} B > initiation ${init.length} B`);
  assert.equal(INIT.size, 168);
  assert.equal(RESP.size, 112);
});

test('wrong peer key: an initiation to another RP public key fails mac1 at the RP', () => {
  const { message } = createInitiation(lp, mallory.public, T0);
  const r = consumeInitiation(rp, rpPeers(), message, T0);
  assert.equal(kindOf(r), 'bad-mac1');
});

test('unknown initiator: a valid static key that is not a configured peer', () => {
  const { message } = createInitiation(mallory, rp.public, T0);
  const r = consumeInitiation(rp, rpPeers(), message, T0);
  assert.equal(kindOf(r), 'unknown-peer');
  assert.ok(r.isErr() && r.error.kind === 'unknown-peer' && r.error.publicKey === mallory.publicB64);
});

test("wrong static key: claiming the LP's public key without its private key is bad-static", () => {
  const impostor = { ...mallory, public: lp.public, publicB64: lp.publicB64 };
  const { message } = createInitiation(impostor, rp.public, T0);
  const r = consumeInitiation(rp, rpPeers(), message, T0);
  assert.equal(kindOf(r), 'bad-static');
  assert.match(describeHandshakeError(r._unsafeUnwrapErr()), /without its private key/);
});

test('the response must come from the RP: another responder key fails at the LP', () => {
  const { message, state } = createInitiation(lp, rp.public, T0);
  // mallory knows the LP's public key and answers as if she were the RP it configured
  const acc = consumeInitiation(rp, rpPeers(), message, T0)._unsafeUnwrap();
  const forged = consumeInitiation({ ...mallory, public: rp.public, publicB64: rp.publicB64 }, rpPeers(), message, T0);
  assert.equal(kindOf(forged), 'decrypt-failed', 'without the RP private key the static does not even decrypt');
  assert.ok(consumeResponse(state, acc.response, T0).isOk());
});

// ---- tampering -----------------------------------------------------------------------------

type Field = { name: string; from: number; to: number };
const INIT_FIELDS: Field[] = [
  { name: 'ver_type', from: 0, to: 1 },
  { name: 'flags', from: 1, to: 2 },
  { name: 'link_id', from: 2, to: 3 },
  { name: 'key_id', from: 3, to: 4 },
  { name: 'seq..tag', from: 4, to: 24 },
  { name: 'sender', from: INIT.sender, to: INIT.ephemeral },
  { name: 'ephemeral', from: INIT.ephemeral, to: INIT.static },
  { name: 'static', from: INIT.static, to: INIT.timestamp },
  { name: 'timestamp', from: INIT.timestamp, to: INIT.mac1 },
  { name: 'mac1', from: INIT.mac1, to: INIT.mac2 },
  { name: 'mac2', from: INIT.mac2, to: INIT.size },
];
const RESP_FIELDS: Field[] = [
  { name: 'ver_type', from: 0, to: 1 },
  { name: 'flags', from: 1, to: 2 },
  { name: 'link_id', from: 2, to: 3 },
  { name: 'key_id', from: 3, to: 4 },
  { name: 'seq..tag', from: 4, to: 24 },
  { name: 'sender', from: RESP.sender, to: RESP.receiver },
  { name: 'receiver', from: RESP.receiver, to: RESP.ephemeral },
  { name: 'ephemeral', from: RESP.ephemeral, to: RESP.empty },
  { name: 'empty', from: RESP.empty, to: RESP.mac1 },
  { name: 'mac1', from: RESP.mac1, to: RESP.mac2 },
  { name: 'mac2', from: RESP.mac2, to: RESP.size },
];

function flipped(msg: Buffer, at: number): Buffer {
  const m = Buffer.from(msg);
  m[at] = (m[at] ?? 0) ^ 0x01;
  return m;
}

test('initiation: one byte changed anywhere is refused (mac1 first; with mac1 recomputed, the AEAD)', () => {
  const { message } = createInitiation(lp, rp.public, T0, undefined, { keyId: 7 });
  // as sent, mac1 catches everything before it; mac2 is not looked at when not under load
  const plain: Record<string, HandshakeErrorKind | 'ok'> = { ver_type: 'malformed', mac2: 'ok' };
  // an attacker who knows the RP public key recomputes mac1: the handshake hash covers the rest
  const remac: Record<string, HandshakeErrorKind | 'ok'> = {
    ver_type: 'malformed',
    flags: 'decrypt-failed',
    link_id: 'decrypt-failed',
    key_id: 'decrypt-failed',
    'seq..tag': 'decrypt-failed',
    sender: 'decrypt-failed',
    ephemeral: 'decrypt-failed',
    static: 'decrypt-failed',
    timestamp: 'bad-static',
    mac1: 'bad-mac1',
    mac2: 'ok',
  };
  for (const f of INIT_FIELDS)
    for (let at = f.from; at < f.to; at++) {
      const m = flipped(message, at);
      const got = kindOf(consumeInitiation(rp, rpPeers(), m, T0));
      assert.equal(got, plain[f.name] ?? 'bad-mac1', `${f.name} byte ${at}`);
      if (at < INIT.mac1) sealMac1(m, INIT.mac1, mac1Key(rp.public));
      assert.equal(kindOf(consumeInitiation(rp, rpPeers(), m, T0)), remac[f.name], `${f.name} byte ${at}, mac1 recomputed`);
    }
  assert.equal(kindOf(consumeInitiation(rp, rpPeers(), message.subarray(0, INIT.size - 1), T0)), 'malformed');
  assert.equal(kindOf(consumeInitiation(rp, rpPeers(), Buffer.concat([message, Buffer.alloc(1)]), T0)), 'malformed');
  assert.equal(kindOf(consumeInitiation(rp, rpPeers(), message, T0)), 'ok');
});

test('response: one byte changed anywhere is refused at the LP', () => {
  const { message, state } = createInitiation(lp, rp.public, T0, undefined, { keyId: 7 });
  const { response } = consumeInitiation(rp, rpPeers(), message, T0)._unsafeUnwrap();
  const plain: Record<string, HandshakeErrorKind | 'ok'> = { ver_type: 'malformed', receiver: 'unknown-index', mac2: 'ok' };
  const remac: Record<string, HandshakeErrorKind | 'ok'> = {
    ver_type: 'malformed',
    flags: 'decrypt-failed',
    link_id: 'decrypt-failed',
    key_id: 'malformed',
    'seq..tag': 'decrypt-failed',
    sender: 'decrypt-failed',
    receiver: 'unknown-index',
    ephemeral: 'decrypt-failed',
    empty: 'decrypt-failed',
    mac1: 'bad-mac1',
    mac2: 'ok',
  };
  for (const f of RESP_FIELDS)
    for (let at = f.from; at < f.to; at++) {
      const m = flipped(response, at);
      assert.equal(kindOf(consumeResponse(state, m, T0)), plain[f.name] ?? 'bad-mac1', `${f.name} byte ${at}`);
      if (at < RESP.mac1) sealMac1(m, RESP.mac1, mac1Key(lp.public));
      assert.equal(kindOf(consumeResponse(state, m, T0)), remac[f.name], `${f.name} byte ${at}, mac1 recomputed`);
    }
  assert.equal(kindOf(consumeResponse(state, response, T0)), 'ok');
});

// ---- replay and staleness ------------------------------------------------------------------

test('a replayed initiation is refused: its timestamp is not newer than the last accepted', () => {
  const peers = rpPeers();
  const first = createInitiation(lp, rp.public, T0);
  const second = createInitiation(lp, rp.public, T0 + 5000, undefined, { after: first.state.timestamp });
  const a = consumeInitiation(rp, peers, first.message, T0)._unsafeUnwrap();
  peers.set(a.peer.publicB64, a.peer);
  assert.equal(kindOf(consumeInitiation(rp, peers, first.message, T0 + 1)), 'replayed-timestamp');
  const b = consumeInitiation(rp, peers, second.message, T0 + 5000)._unsafeUnwrap();
  peers.set(b.peer.publicB64, b.peer);
  // an older initiation that arrives late is a replay too
  assert.equal(kindOf(consumeInitiation(rp, peers, first.message, T0 + 6000)), 'replayed-timestamp');
  assert.equal(kindOf(consumeInitiation(rp, peers, second.message, T0 + 6000)), 'replayed-timestamp');
  assert.match(describeHandshakeError(consumeInitiation(rp, peers, second.message, T0)._unsafeUnwrapErr()), /replayed/);
});

test('initiations in the same millisecond (or after the clock stepped back) stay monotonic with `after`', () => {
  const peers = rpPeers();
  let after: Buffer | null = null;
  for (const now of [T0, T0, T0 - 60_000, T0 + 1]) {
    const { message, state } = createInitiation(lp, rp.public, now, undefined, { after });
    after = state.timestamp;
    const acc = consumeInitiation(rp, peers, message, now);
    assert.ok(acc.isOk(), `at ${now - T0} ms: ${acc.isErr() ? describeHandshakeError(acc.error) : ''}`);
    peers.set(acc.value.peer.publicB64, acc.value.peer);
  }
});

test('a response after the handshake timeout is stale; a session is gone after 180 s', () => {
  const { message, state } = createInitiation(lp, rp.public, T0);
  const { response } = consumeInitiation(rp, rpPeers(), message, T0)._unsafeUnwrap();
  assert.equal(kindOf(consumeResponse(state, response, T0 + HANDSHAKE_TIMEOUT_MS + 1)), 'stale');
  const s = consumeResponse(state, response, T0 + HANDSHAKE_TIMEOUT_MS)._unsafeUnwrap();

  const set = installSession(NO_SESSIONS, s, s.createdAt);
  const before = keysToInstall(set, s.createdAt + REJECT_AFTER_MS - 1);
  assert.equal(before.tx?.keyId, s.keyId);
  assert.equal(before.nextChangeAt, s.createdAt + REJECT_AFTER_MS);
  const after = keysToInstall(set, s.createdAt + REJECT_AFTER_MS);
  assert.equal(after.tx, null, 'an expired session sends nothing');
  assert.deepEqual(after.rx, []);
  assert.equal(after.nextChangeAt, null);
});

// ---- key ids and rekeying ------------------------------------------------------------------

test('key ids of consecutive sessions differ, cycle through 1..255 and skip every installed one', () => {
  let lpSet: Sessions = NO_SESSIONS;
  let after: Buffer | null = null;
  const peers = rpPeers();
  const seen: number[] = [];
  for (let i = 0; i < 300; i++) {
    const now = T0 + i * REKEY_AFTER_MS;
    const keyId = nextKeyId(lpSet, 250);
    const h = handshake(now, peers, { keyId, after });
    after = h.state.timestamp;
    assert.equal(h.rpSession.keyId, keyId);
    lpSet = installSession(lpSet, h.lpSession, now);
    if (lpSet.previous) assert.notEqual(lpSet.current?.keyId, lpSet.previous.keyId);
    seen.push(keyId);
  }
  assert.deepEqual(seen.slice(0, 7), [250, 251, 252, 253, 254, 255, 1]);
  assert.ok(!seen.includes(0));
  // never one still installed, even a pending one on the RP
  const s = (keyId: number): Session => ({ ...handshake(T0).lpSession, keyId });
  const crowded: Sessions = { current: s(9), previous: s(10), previousUntil: T0 + GRACE_MS, pending: s(11) };
  assert.equal(nextKeyId(crowded), 12);
});

/**
 * Two portals: handshake messages take `owd` one way, data packets `dataOwd` (another link).
 * At every 10 ms one packet each way: is the sender's tx key among the receiver's rx keys when
 * it arrives? Rekey as the LP's timer says; the RP confirms when the LP's first packet under
 * the new key arrives.
 */
function rekeySeries(owd: number, dataOwd = owd) {
  const peers = rpPeers();
  let lpSet: Sessions = NO_SESSIONS;
  let rpSet: Sessions = NO_SESSIONS;
  let lastInit: number | null = null;
  let after: Buffer | null = null;
  const events: { at: number; apply: () => void }[] = [];
  const lost: string[] = [];
  const inFlight: { at: number; from: 'lp' | 'rp'; keyId: number; key: Buffer; sentAt: number }[] = [];
  const timeline: { t: number; lp: ReturnType<typeof keysToInstall>; rp: ReturnType<typeof keysToInstall> }[] = [];
  const step = 10;
  for (let t = T0; t <= T0 + 300_000; t += step) {
    if (handshakeDue(lpSet, lastInit, t)) {
      lastInit = t;
      const { message, state } = createInitiation(lp, rp.public, t, undefined, { keyId: nextKeyId(lpSet, 1), after });
      after = state.timestamp;
      events.push({
        at: t + owd,
        apply: () => {
          const acc = consumeInitiation(rp, peers, message, t + owd)._unsafeUnwrap();
          peers.set(acc.peer.publicB64, acc.peer);
          rpSet = installSession(rpSet, acc.session, t + owd);
          events.push({
            at: t + 2 * owd,
            apply: () => {
              const s = consumeResponse(state, acc.response, t + 2 * owd)._unsafeUnwrap();
              lpSet = installSession(lpSet, s, t + 2 * owd);
              // the LP's first packet under the new key confirms it at the RP
              const at = t + 2 * owd + dataOwd;
              events.push({ at, apply: () => (rpSet = confirmSession(rpSet, s.keyId, at)) });
            },
          });
        },
      });
    }
    // everything due by now, including what those events schedule (a zero-delay link)
    for (;;) {
      const due = events.filter((e) => e.at <= t).sort((a, b) => a.at - b.at);
      if (due.length === 0) break;
      events.splice(0, events.length, ...events.filter((e) => e.at > t));
      for (const e of due) e.apply();
    }
    const lk = keysToInstall(lpSet, t);
    const rk = keysToInstall(rpSet, t);
    timeline.push({ t: t - T0, lp: lk, rp: rk });
    // a packet sent now must verify when it arrives, against the receiver's table then
    const check = (from: 'lp' | 'rp', tx: typeof lk.tx) => {
      if (!tx) return;
      inFlight.push({ at: t + dataOwd, from, keyId: tx.keyId, key: tx.key, sentAt: t });
    };
    check('lp', lk.tx);
    check('rp', rk.tx);
    for (const c of inFlight.filter((c) => c.at <= t)) {
      const table = c.from === 'lp' ? rk : lk;
      const slot = table.rx.find((r) => r.keyId === c.keyId);
      if (!slot || !slot.key.equals(c.key)) lost.push(`${c.from} packet sent at ${c.sentAt - T0} ms, key ${c.keyId}`);
    }
    inFlight.splice(0, inFlight.length, ...inFlight.filter((c) => c.at > t));
  }
  return { timeline, lost };
}

test('rekey at 120 s: no packet in flight is lost; the old receive key lasts the grace period, not longer', () => {
  for (const owd of [0, 20, 400]) {
    const { timeline, lost } = rekeySeries(owd);
    assert.deepEqual(lost, [], `owd ${owd} ms`);
    const at = (ms: number) => {
      const e = timeline.find((x) => x.t >= ms);
      if (!e) throw new Error(`no sample at ${ms} ms`);
      return e;
    };
    const first = at(3 * owd + 10);
    const k1 = first.lp.tx?.keyId;
    assert.notEqual(k1, undefined, `owd ${owd}: no key after the first handshake`);
    assert.equal(first.rp.tx?.keyId, k1);
    assert.deepEqual(first.lp.rx.map((r) => r.keyId), [k1]);

    // just before 120 s: one key; the LP starts the rekey at 120 s (+ the first handshake's time)
    const rekeyAt = 2 * owd + REKEY_AFTER_MS; // the first session was made at 2·owd on the LP
    assert.deepEqual(at(rekeyAt - 10).lp.rx.map((r) => r.keyId), [k1]);
    const installed = rekeyAt + 2 * owd; // the new response arrives
    const mid = at(installed + 10);
    const k2 = mid.lp.tx?.keyId;
    assert.notEqual(k2, k1);
    assert.deepEqual(mid.lp.rx.map((r) => r.keyId), [k2, k1], 'old rx key kept');
    // RP: receives both; sends with the old key until the LP's first new-key packet arrives
    if (owd > 0) {
      const rpBefore = at(installed + owd - 10);
      assert.equal(rpBefore.rp.tx?.keyId, k1);
      assert.deepEqual(rpBefore.rp.rx.map((r) => r.keyId), [k2, k1]);
    }
    const confirmed = installed + owd;
    assert.equal(at(confirmed).rp.tx?.keyId, k2);
    // grace: the old rx key is there until GRACE_MS after it was replaced, then gone
    assert.deepEqual(at(installed + GRACE_MS - 10).lp.rx.map((r) => r.keyId), [k2, k1]);
    assert.deepEqual(at(installed + GRACE_MS).lp.rx.map((r) => r.keyId), [k2]);
    assert.deepEqual(at(confirmed + GRACE_MS - 10).rp.rx.map((r) => r.keyId), [k2, k1]);
    assert.deepEqual(at(confirmed + GRACE_MS).rp.rx.map((r) => r.keyId), [k2]);
    const slot = mid.lp.rx.find((r) => r.keyId === k1);
    assert.equal(slot?.until, T0 + installed + GRACE_MS);
  }
});

test('rekey with the handshake on a slow link and data on a fast one (and the reverse): no loss', () => {
  for (const [hs, data] of [
    [400, 10],
    [10, 400],
    [40, 0],
  ] as const) {
    const { timeline, lost } = rekeySeries(hs, data);
    assert.deepEqual(lost, [], `handshake ${hs} ms, data ${data} ms one way`);
    assert.ok(timeline.some((e) => e.lp.rx.length === 2) && timeline.some((e) => e.rp.rx.length === 2), 'a rekey happened');
  }
});

test('without rekeying (the RP never answers) the LP retries every 5 s and stops sending at 180 s', () => {
  const s = { ...handshake(T0).lpSession, createdAt: T0 };
  let set = installSession(NO_SESSIONS, s, T0);
  assert.equal(handshakeDue(NO_SESSIONS, null, T0), true, 'no session: handshake at once');
  assert.equal(handshakeDue(set, T0, T0 + REKEY_AFTER_MS - 1), false);
  assert.equal(handshakeDue(set, T0, T0 + REKEY_AFTER_MS), true);
  assert.equal(handshakeDue(set, T0 + REKEY_AFTER_MS, T0 + REKEY_AFTER_MS + HANDSHAKE_TIMEOUT_MS - 1), false);
  assert.equal(handshakeDue(set, T0 + REKEY_AFTER_MS, T0 + REKEY_AFTER_MS + HANDSHAKE_TIMEOUT_MS), true);
  assert.equal(keysToInstall(set, T0 + REJECT_AFTER_MS - 1).tx?.keyId, s.keyId);
  assert.equal(keysToInstall(set, T0 + REJECT_AFTER_MS).tx, null);
  const late = T0 + REJECT_AFTER_MS + 50;
  set = installSession(set, { ...s, keyId: s.keyId === 1 ? 2 : 1, createdAt: late }, late);
  const k = keysToInstall(set, late);
  assert.equal(k.rx.length, 1, 'an expired session is not kept for a grace period');
});

test('RP: an unconfirmed session receives but never sends until a packet under its key id arrives', () => {
  const h = handshake(T0);
  let set = installSession(NO_SESSIONS, h.rpSession, T0);
  assert.equal(keysToInstall(set, T0).tx, null);
  assert.deepEqual(keysToInstall(set, T0).rx.map((r) => r.keyId), [h.rpSession.keyId]);
  set = confirmSession(set, (h.rpSession.keyId % 255) + 1, T0 + 5); // another key id: nothing
  assert.equal(keysToInstall(set, T0 + 5).tx, null);
  set = confirmSession(set, h.rpSession.keyId, T0 + 5);
  assert.equal(keysToInstall(set, T0 + 5).tx?.keyId, h.rpSession.keyId);
});
