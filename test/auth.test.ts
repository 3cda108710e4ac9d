// The portal's authentication wiring without BPF: the key maps' writes (keys-port.ts), the
// userland replay window, and an LP-side and an RP-side object (auth.ts + handshake-loop.ts)
// running the handshake over real UDP sockets on loopback, then exchanging signed control
// messages: forged, replayed and unknown-key messages are refused and counted, the RP confirms
// its pending session on the LP's first message, a rekey keeps the old key receiving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { ok } from 'neverthrow';
import * as abi from '../src/datapath/abi.js';
import { PortalAuth } from '../src/security/auth.js';
import { Initiator, MAX_COOKIE_RESENDS, Responder } from '../src/security/handshake-loop.js';
import { LogLimiter } from '../src/run/log-limit.js';
import { createCookieReply, freshCookieSecret } from '../src/security/cookie.js';
import { INIT } from '../src/security/messages.js';
import { keyWrites, NOTHING_INSTALLED, tableOf, type KeysPort } from '../src/security/keys-port.js';
import { encodeProbe, decodeProbe } from '../src/run/probe.js';
import { sign } from '../src/security/mac.js';
import { createInitiation } from '../src/security/handshake.js';
import { generatePrivateKey, staticKeys, type StaticKeys } from '../src/security/keys.js';
import { REPLAY_WINDOW, ReplayWindow } from '../src/security/replay.js';
import { GRACE_MS, HANDSHAKE_TIMEOUT_MS, handshakeRetryMs, nextKeyId, REKEY_AFTER_MS, rekeyAfterMs, type KeyTable } from '../src/security/session.js';

test('replay window: each seq once, 2047 behind the top still accepted, 2048 behind refused', () => {
  const w = new ReplayWindow();
  assert.ok(w.accept(1000)); // the first one sets the top, whatever it is
  assert.ok(!w.accept(1000));
  assert.ok(w.accept(999));
  assert.ok(w.accept(1005));
  assert.ok(w.accept(1001), 'reordered, within the window');
  assert.ok(!w.accept(1001));
  assert.ok(w.accept(1005 + REPLAY_WINDOW));
  assert.ok(w.accept(1005 + 1), 'exactly WINDOW−1 behind the top');
  assert.ok(!w.accept(1005), 'WINDOW behind the top');
  assert.ok(w.accept(1_000_000), 'a jump clears the window');
  assert.ok(!w.accept(1_000_000 - REPLAY_WINDOW));
  assert.ok(w.accept(1_000_000 - REPLAY_WINDOW + 1));
});

const slot = (keyId: number, byte: number, until: number) => ({ keyId, key: Buffer.alloc(16, byte), until });

test('key maps: replay windows zeroed before a new key, unchanged slots untouched, dropped ones cleared', () => {
  const now = 1_000_000;
  const mono = 5_000_000_000n;
  const t1: KeyTable = { tx: slot(7, 1, now + 180_000), rx: [slot(7, 2, now + 180_000)], nextChangeAt: now + 180_000 };
  const a = keyWrites(NOTHING_INSTALLED, t1, now, mono);
  assert.deepEqual(
    a.writes.map((w) => `${w.map}[${w.index}]`),
    ['replay[14]', 'replay[15]', 'rx[7]', 'tx[0]'],
    'windows of key id 7 (data, control), then its receive key, then the send key',
  );
  assert.ok(a.writes.slice(0, 2).every((w) => w.value.equals(abi.emptyReplay())));
  const rx = abi.decodeKey(a.writes[2]!.value);
  assert.deepEqual(rx, { key: Buffer.alloc(16, 2), expiresNs: mono + 180_000_000_000n, id: 7, valid: true });
  // the same table again: nothing to write
  assert.deepEqual(keyWrites(a.installed, t1, now + 5, mono + 5_000_000n).writes, []);
  // rekey: new key id 8 receives, 7 stays in its grace period with a shorter expiry (no reset)
  const t2: KeyTable = { tx: slot(8, 3, now + 300_000), rx: [slot(8, 4, now + 300_000), slot(7, 2, now + 130_000)], nextChangeAt: now + 130_000 };
  const b = keyWrites(a.installed, t2, now + 120_000, mono + 120_000_000_000n);
  assert.deepEqual(b.writes.map((w) => `${w.map}[${w.index}]`), ['replay[16]', 'replay[17]', 'rx[8]', 'rx[7]', 'tx[0]']);
  assert.equal(abi.decodeKey(b.writes[3]!.value).expiresNs, mono + 130_000_000_000n);
  // 7 expires: its slot is cleared; a later session reusing id 8 with another key resets 8's windows
  const t3: KeyTable = { tx: slot(8, 5, now + 400_000), rx: [slot(8, 6, now + 400_000)], nextChangeAt: now + 400_000 };
  const c = keyWrites(b.installed, t3, now + 140_000, mono + 140_000_000_000n);
  assert.deepEqual(c.writes.map((w) => `${w.map}[${w.index}]`), ['replay[16]', 'replay[17]', 'rx[8]', 'rx[7]', 'tx[0]']);
  assert.equal(abi.decodeKey(c.writes[3]!.value).valid, false);
  // no session at all: the send key is cleared too
  const d = keyWrites(c.installed, { tx: null, rx: [], nextChangeAt: null }, now, mono);
  assert.deepEqual(d.writes.map((w) => `${w.map}[${w.index}]`), ['rx[8]', 'tx[0]']);
  assert.equal(abi.decodeKey(d.writes[1]!.value).valid, false);
});

test('adoption (hitless restart): the key maps read back as a table; the adopted send key signs from control seq 2^30, the peer takes it, and received messages verify', () => {
  const now = 1_000_000;
  const mono = 5_000_000_000n;
  const t: KeyTable = { tx: slot(7, 1, now + 90_000), rx: [slot(7, 2, now + 90_000), slot(6, 3, now + 5_000)], nextChangeAt: null };
  const w = keyWrites(NOTHING_INSTALLED, t, now, mono).writes;
  const tx = w.find((x) => x.map === 'tx')!.value;
  const rx = Array.from({ length: 255 }, (_, i) => w.find((x) => x.map === 'rx' && x.index === i + 1)?.value ?? null);
  rx[8] = abi.encodeKey({ key: Buffer.alloc(16, 9), expiresNs: mono - 1n, id: 9, valid: true }); // expired: left out
  const back = tableOf(tx, rx, now + 10, mono + 10_000_000n);
  assert.deepEqual(back, { tx: slot(7, 1, now + 90_000), rx: [slot(6, 3, now + 5_000), slot(7, 2, now + 90_000)], nextChangeAt: null });

  const quiet = () => {};
  const keys: KeysPort = { install: () => ok(undefined) };
  const a = new PortalAuth('authenticated', 'peer', keys, quiet, () => now);
  a.adopt(back);
  const m = a.sign(encodeProbe({ linkId: 0, reply: false, metric: 0, carrier: 0, probeSeq: 1, sentNs: 1n, rateBps: 0n, owdUs: 0 }, 0))!;
  assert.deepEqual([abi.decodeHdr(m).keyId, abi.decodeHdr(m).seq], [7, 2 ** 30 + 1]);
  assert.deepEqual(a.adoptedKeyIds().sort(), [6, 7]);
  assert.equal(nextKeyId(a.current(), 7, a.adoptedKeyIds()), 8, 'a new session does not reuse an adopted key id (seed 7 would pick 7)');
  // the peer's window had seen seq 5000 under key 7: 2^30 + 1 is ahead of it
  const peer = new ReplayWindow();
  assert.ok(peer.accept(5000) && peer.accept(2 ** 30 + 1));
  // a message from the peer under the adopted receive key 6 verifies (once)
  const fromPeer = sign(encodeProbe({ linkId: 0, reply: true, metric: 0, carrier: 0, probeSeq: 1, sentNs: 1n, rateBps: 0n, owdUs: 0 }, 0), Buffer.alloc(16, 3), 6, 77);
  assert.ok(a.check(fromPeer));
  assert.ok(!a.check(fromPeer), 'replay');
  a.stop();
});

test('MPCTL_REKEY_AFTER_MS shortens the rekey time for tests, nothing else', () => {
  assert.equal(REKEY_AFTER_MS, process.env.MPCTL_REKEY_AFTER_MS ? rekeyAfterMs(process.env.MPCTL_REKEY_AFTER_MS) : 120_000);
  assert.equal(rekeyAfterMs('4000'), 4000);
  for (const bad of [undefined, '', '999', '-5', '4e3', '200000', 'soon']) assert.equal(rekeyAfterMs(bad), 120_000, String(bad));
});

// ---- LP and RP objects over loopback UDP -----------------------------------------------------

/** Records what the data path would hold. */
class FakeKeys implements KeysPort {
  table: KeyTable = { tx: null, rx: [], nextChangeAt: null };
  installs = 0;
  install(t: KeyTable) {
    this.table = t;
    this.installs++;
    return ok(undefined);
  }
}

async function udp(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

const nextMessage = (s: Socket, ms = 2000) =>
  new Promise<Buffer>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no message')), ms);
    s.once('message', (m) => {
      clearTimeout(t);
      resolve(m);
    });
  });

const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

interface Pair {
  lp: { auth: PortalAuth; keys: FakeKeys; hs: Initiator; socks: Socket[]; up: number[] };
  rp: { auth: PortalAuth; keys: FakeKeys; hs: Responder; sock: Socket };
  clock: { now: number };
  close(): void;
}

/** An LP with two links (two sockets) and an RP with one socket, on 127.0.0.1. */
async function pair(o: { rpKnowsLp?: Buffer; lpKnowsRp?: Buffer } = {}): Promise<Pair> {
  const clock = { now: Date.now() };
  const lpKeys: StaticKeys = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const rpKeys: StaticKeys = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const log = () => {};
  const rpSock = await udp();
  const lpSocks = [await udp(), await udp()];
  const rpPort = rpSock.address().port;
  const lpPeer = o.lpKnowsRp ?? rpKeys.public;
  const rpPeer = o.rpKnowsLp ?? lpKeys.public;
  const lk = new FakeKeys();
  const lauth = new PortalAuth('authenticated', lpPeer.toString('base64'), lk, log, () => clock.now);
  const up: number[] = [];
  const hs = new Initiator(lauth, lpKeys, lpPeer, { all: [0, 1], up: () => up, send: (id, m) => lpSocks[id]!.send(m, rpPort, '127.0.0.1'), peer: () => ({ address: '127.0.0.1', port: rpPort }) }, log);
  lpSocks.forEach((s, id) => s.on('message', (m, r) => (abi.decodeHdr(m).type === abi.MP_T_HS_RESP || abi.decodeHdr(m).type === abi.MP_T_COOKIE) && hs.onMessage(id, m, r)));
  const rk = new FakeKeys();
  const rauth = new PortalAuth('authenticated', rpPeer.toString('base64'), rk, log, () => clock.now);
  const rhs = new Responder(rauth, rpKeys, rpPeer, log);
  rpSock.on('message', (m, r) => abi.decodeHdr(m).type === abi.MP_T_HS_INIT && rhs.onInitiation(m, r.address, r.port, (b) => rpSock.send(b, r.port, r.address)));
  return {
    lp: { auth: lauth, keys: lk, hs, socks: lpSocks, up },
    rp: { auth: rauth, keys: rk, hs: rhs, sock: rpSock },
    clock,
    close: () => {
      lauth.stop();
      rauth.stop();
      for (const s of [rpSock, ...lpSocks]) s.close();
    },
  };
}

const probe = (linkId: number, reply = false) =>
  encodeProbe({ linkId, reply, metric: 0, carrier: abi.MP_CARRIER_UDP, probeSeq: 1, sentNs: 1n, rateBps: 1n, owdUs: 1 }, 0);

test('loopback: the first initiation goes on every link; both sides get the same keys; the RP sends only after confirmation', async () => {
  const p = await pair();
  try {
    assert.equal(p.lp.auth.sign(probe(0)), null, 'no session: the LP sends no probe');
    p.lp.hs.tick();
    assert.equal(p.lp.auth.counters.initiationsSent, 2, 'one copy per link: links are down until probes flow');
    await until(() => p.lp.auth.status().keyId !== null && p.rp.auth.counters.initiationsReceived === 2);
    await until(() => p.rp.auth.counters.responsesSent === 2);
    const lpT = p.lp.keys.table;
    const rpT = p.rp.keys.table;
    assert.ok(lpT.tx && lpT.rx.length === 1);
    assert.equal(rpT.tx, null, 'RP: pending session receives but does not send');
    assert.deepEqual(rpT.rx.map((s) => [s.keyId, s.key.toString('hex')]), [[lpT.tx.keyId, lpT.tx.key.toString('hex')]]);
    assert.equal(p.rp.auth.status().handshakes, 1, 'the copy on the second link was answered again, not accepted twice');
    assert.deepEqual(p.rp.auth.status().rejected, {});

    // the LP's first signed probe confirms the session; the RP's reply is signed with its tx key
    const m = p.lp.auth.sign(probe(0))!;
    assert.equal(abi.decodeHdr(m).keyId, lpT.tx.keyId);
    assert.equal(abi.decodeHdr(m).seq, 1, 'control seq starts at 1');
    assert.ok(p.rp.auth.check(m));
    assert.ok(p.rp.keys.table.tx, 'RP sends once the LP used the key');
    assert.equal(p.rp.keys.table.tx.key.toString('hex'), lpT.rx[0]!.key.toString('hex'));
    const reply = p.rp.auth.sign(probe(0, true))!;
    assert.ok(p.lp.auth.check(reply));
    assert.ok(decodeProbe(reply)?.reply);

    // defense in depth: forged, replayed and unknown-key messages are refused and counted
    assert.ok(!p.rp.auth.check(m), 'the same probe twice');
    const forged = Buffer.from(p.lp.auth.sign(probe(1))!);
    forged[40] = forged[40]! ^ 1;
    assert.ok(!p.rp.auth.check(forged));
    const noKey = Buffer.from(p.lp.auth.sign(probe(1))!);
    noKey.writeUInt8((abi.decodeHdr(noKey).keyId % 255) + 1, 3);
    assert.ok(!p.rp.auth.check(noKey));
    assert.deepEqual(p.rp.auth.status().rejected, { replay: 1, bad_mac: 1, no_key: 1 });
  } finally {
    p.close();
  }
});

test('loopback: wrong peer key (LP configured with another RP key) — mac1 fails at the RP, no session anywhere', async () => {
  const other = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const p = await pair({ lpKnowsRp: other.public });
  try {
    p.lp.hs.tick();
    await until(() => p.rp.auth.counters.initiationsReceived === 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(p.rp.auth.status().rejected, { 'bad-mac1': 2 });
    assert.equal(p.rp.auth.counters.responsesSent, 0);
    assert.equal(p.lp.auth.status().keyId, null);
    assert.equal(p.rp.keys.installs, 0, 'nothing installed at the RP');
  } finally {
    p.close();
  }
});

test('loopback: an RP that expects another LP refuses the initiation as an unknown peer', async () => {
  const other = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const p = await pair({ rpKnowsLp: other.public });
  try {
    p.lp.hs.tick();
    await until(() => (p.rp.auth.status().rejected['unknown-peer'] ?? 0) >= 1);
    assert.equal(p.lp.auth.status().keyId, null);
  } finally {
    p.close();
  }
});

test('loopback: retry after 5 s without an answer; rekey at 120 s on the preferred up link; the old key receives for the grace period', async () => {
  const p = await pair();
  try {
    // the RP does not answer the first one (its socket drops it)
    const drop = p.rp.sock.listeners('message');
    p.rp.sock.removeAllListeners('message');
    p.lp.hs.tick();
    await nextMessage(p.rp.sock);
    p.lp.hs.tick();
    assert.equal(p.lp.auth.counters.initiationsSent, 2, 'not again before 5 s');
    for (const l of drop) p.rp.sock.on('message', l as (...a: unknown[]) => void);
    p.clock.now += 5_000;
    p.lp.hs.tick();
    assert.equal(p.lp.auth.counters.initiationsSent, 4, 'the retry goes on every link again');
    await until(() => p.lp.auth.status().keyId !== null);
    const first = p.lp.auth.status().keyId!;
    assert.ok(p.rp.auth.check(p.lp.auth.sign(probe(0))!));

    // links up; at 120 s the LP rekeys on its preferred up link only
    p.lp.up.push(1, 0);
    p.clock.now += REKEY_AFTER_MS - 1;
    p.lp.hs.tick();
    assert.equal(p.lp.auth.counters.initiationsSent, 4, 'not before REKEY_AFTER_MS');
    p.clock.now += 1;
    const before = p.rp.auth.counters.initiationsReceived;
    p.lp.hs.tick();
    assert.equal(p.lp.auth.counters.initiationsSent, 5);
    await until(() => p.lp.auth.status().keyId !== first);
    assert.equal(p.rp.auth.counters.initiationsReceived, before + 1);
    const second = p.lp.auth.status().keyId!;
    assert.notEqual(second, first);
    assert.equal(p.lp.auth.status().rekeys, 1);
    // in flight: the RP still sends under the old key until the LP's first message under the new one
    const old = p.rp.auth.sign(probe(0, true))!;
    assert.equal(abi.decodeHdr(old).keyId, first);
    assert.ok(p.lp.auth.check(old), 'the LP still receives under the previous key');
    assert.ok(p.rp.auth.check(p.lp.auth.sign(probe(0))!));
    assert.equal(abi.decodeHdr(p.rp.auth.sign(probe(0, true))!).keyId, second, 'confirmed: the RP sends with the new key');
    assert.deepEqual(p.rp.keys.table.rx.map((s) => s.keyId), [second, first], 'the old key receives during the grace period');
    const oldKey = p.lp.keys.table.rx.find((s) => s.keyId === first)!.key;
    assert.ok(p.lp.auth.check(sign(probe(0, true), oldKey, first, 500)), 'a late packet under the old key');
    p.clock.now += GRACE_MS;
    assert.ok(!p.lp.auth.check(sign(probe(0, true), oldKey, first, 501)), 'after the grace period the old key is gone');
    assert.equal(p.lp.auth.status().rejected.no_key, 1);
  } finally {
    p.close();
  }
});

test('up reads private_key with its mode checked; errors name the key and the file', async () => {
  const { mkdtemp, writeFile, chmod, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { parseConfig } = await import('../src/config/parse.js');
  const { loadStaticKeys } = await import('../src/security/auth.js');
  const { describeError } = await import('../src/errors.js');
  const dir = await mkdtemp(`${tmpdir()}/mpctl-key-`);
  try {
    const priv = generatePrivateKey();
    const own = staticKeys(Buffer.from(priv, 'base64')).publicB64;
    const peer = staticKeys(Buffer.from(generatePrivateKey(), 'base64')).publicB64;
    const file = `${dir}/rp.key`;
    await writeFile(file, `${priv}\n`, { mode: 0o600 });
    const cfg = (peerKey: string, f = file) =>
      parseConfig({ role: 'remote', wan: 'wan', client: '198.51.100.10', private_key: f, peer_public_key: peerKey }, 'rp.toml')._unsafeUnwrap();
    const good = await loadStaticKeys(cfg(peer));
    assert.equal(good._unsafeUnwrap()?.publicB64, own);
    const self = await loadStaticKeys(cfg(own));
    assert.ok(self.isErr());
    assert.match(describeError(self.error), /^peer_public_key: is this portal's own public key/);
    await chmod(file, 0o644);
    const open = await loadStaticKeys(cfg(peer));
    assert.ok(open.isErr());
    assert.match(describeError(open.error), new RegExp(`^private_key: ${file}: the private key file is accessible by group or others; run: chmod 600 .*\\(got "0644"\\)$`));
    const missing = await loadStaticKeys(cfg(peer, `${dir}/none.key`));
    assert.ok(missing.isErr());
    assert.match(describeError(missing.error), /^private_key: private key file .*none\.key does not exist/);
    const insecure = parseConfig({ role: 'remote', wan: 'wan', client: '198.51.100.10', insecure_no_auth: true }, 'rp.toml')._unsafeUnwrap();
    assert.equal((await loadStaticKeys(insecure))._unsafeUnwrap(), null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('loopback: under a flood of initiations the RP answers with cookies, and the LP gets through with its cookie', async () => {
  const p = await pair();
  const attacker = await udp();
  try {
    // someone who knows the RP's public key (mac1 valid) but not a configured private key
    const rpPublic = Buffer.from(p.lp.auth.peer, 'base64');
    const junk = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
    const rpPort = p.rp.sock.address().port;
    for (let i = 0; i < 120; i++) attacker.send(createInitiation(junk, rpPublic, Date.now()).message, rpPort, '127.0.0.1');
    await until(() => p.rp.auth.counters.initiationsReceived === 120);
    const s = p.rp.auth.status();
    assert.ok(s.cookiesSent >= 60, `cookies instead of X25519 work (${s.cookiesSent} of 120)`);
    assert.ok((s.rejected['unknown-peer'] ?? 0) <= 60, 'only the initiations before the load was noticed cost X25519 work');
    // the LP: first initiation gets a cookie reply, the re-sent one (with mac2) is accepted
    p.lp.hs.tick();
    await until(() => p.lp.auth.status().keyId !== null, 3000);
    assert.ok(p.rp.auth.status().cookiesSent > s.cookiesSent, 'the LP was asked for a cookie too');
    assert.equal(p.rp.auth.status().handshakes, 1);
  } finally {
    attacker.close();
    p.close();
  }
});

test('loopback: when every link goes silent under a session (the RP restarted), the LP handshakes again after 5 s', async () => {
  const p = await pair();
  try {
    p.lp.hs.tick();
    await until(() => p.lp.auth.status().keyId !== null);
    const first = p.lp.auth.status().keyId;
    p.lp.up.push(0);
    p.clock.now += 6_000;
    p.lp.hs.tick();
    assert.equal(p.lp.auth.counters.initiationsSent, 2, 'links up: no handshake before the rekey time');
    p.lp.up.length = 0; // no probe answered any more
    p.lp.hs.tick();
    assert.equal(p.lp.auth.counters.initiationsSent, 4, 'all links down: a new handshake on every link');
    await until(() => p.lp.auth.status().keyId !== first);
    p.lp.hs.tick();
    assert.equal(p.lp.auth.counters.initiationsSent, 4, 'and not again within 5 s');
  } finally {
    p.close();
  }
});

test('cookie race: a forged cookie reply never discards the pending handshake; one from another source is refused; answers to nothing are counted', () => {
  const now = { t: 1_000_000 };
  const lpKeys = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const rpKeys = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const lines: string[] = [];
  const log = (m: string) => void lines.push(m);
  const lauth = new PortalAuth('authenticated', rpKeys.publicB64, new FakeKeys(), log, () => now.t);
  const rauth = new PortalAuth('authenticated', lpKeys.publicB64, new FakeKeys(), log, () => now.t);
  const sent: { link: number; msg: Buffer }[] = [];
  const RP = { address: '198.51.100.2', port: 7470 };
  const hs = new Initiator(lauth, lpKeys, rpKeys.public, { all: [0, 1], up: () => [], send: (link, msg) => void sent.push({ link, msg }), peer: () => RP }, log);
  const rhs = new Responder(rauth, rpKeys, lpKeys.public, log);
  try {
    hs.tick();
    assert.equal(sent.length, 2);
    const init = sent[0]!.msg;
    // anyone who saw the initiation can make a cookie reply that decrypts: its key is
    // HMAC(SHA-256("cookie--" ‖ RP public), mac1), all public
    const forger = { public: rpKeys.public } as StaticKeys;
    const forged = createCookieReply(forger, freshCookieSecret(null, now.t), init, '192.0.2.66:1');
    hs.onMessage(0, forged, { address: '192.0.2.66', port: 7470 });
    assert.equal(lauth.rejected['cookie-wrong-source'], 1, 'not from the RP: refused');
    assert.equal(sent.length, 2, 'and nothing re-sent');
    // spoofed from the RP's address: taken as a cookie, the same initiation re-sent with mac2
    hs.onMessage(0, forged, RP);
    assert.equal(sent.length, 3);
    assert.deepEqual(sent[2]!.msg.subarray(0, INIT.mac2), init.subarray(0, INIT.mac2), 'the same initiation');
    assert.ok(!sent[2]!.msg.subarray(INIT.mac2).equals(Buffer.alloc(16)), 'with mac2');
    for (let i = 0; i < 5; i++) hs.onMessage(0, forged, RP);
    assert.equal(sent.length, 3 + MAX_COOKIE_RESENDS - 1, 'a flood of forged replies costs at most MAX_COOKIE_RESENDS re-sends');
    // the RP's real response to the original initiation still completes the handshake
    let response: Buffer | null = null;
    rhs.onInitiation(init, '100.64.1.1', 7470, (b) => (response = b));
    assert.ok(response);
    hs.onMessage(0, response, RP);
    assert.notEqual(lauth.status().keyId, null, 'session established');
    assert.equal(lauth.rejected['unknown-index'], undefined);
    // copies and answers to nothing: counted by kind
    hs.onMessage(1, response, RP);
    hs.onMessage(1, forged, RP);
    assert.equal(lauth.rejected['unsolicited-response'], 1);
    assert.equal(lauth.rejected['unsolicited-cookie'], 1);
  } finally {
    lauth.stop();
    rauth.stop();
  }
});

test('handshake retries: 1 s, 2 s, 4 s, then every 5 s while no session works; 5 s for a rekey; an answer starts over', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 40].map((n) => handshakeRetryMs(n, false)), [HANDSHAKE_TIMEOUT_MS, 1000, 2000, 4000, 5000, 5000, 5000]);
  assert.deepEqual([1, 2].map((n) => handshakeRetryMs(n, true)), [HANDSHAKE_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS]);
  const now = { t: 1_000_000 };
  const lpKeys = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const rpKeys = staticKeys(Buffer.from(generatePrivateKey(), 'base64'));
  const log = () => {};
  const lauth = new PortalAuth('authenticated', rpKeys.publicB64, new FakeKeys(), log, () => now.t);
  const rauth = new PortalAuth('authenticated', lpKeys.publicB64, new FakeKeys(), log, () => now.t);
  const up: number[] = [];
  const sent: { at: number; msg: Buffer }[] = [];
  const RP = { address: '198.51.100.2', port: 7470 };
  const hs = new Initiator(lauth, lpKeys, rpKeys.public, { all: [0], up: () => up, send: (_l, msg) => void sent.push({ at: now.t, msg }), peer: () => RP }, log);
  const rhs = new Responder(rauth, rpKeys, lpKeys.public, log);
  /** ticks every 100 ms (the probe interval's order) for `ms`; the initiations' times from `t0` */
  const run = (ms: number) => {
    const t0 = now.t;
    const from = sent.length;
    for (const end = now.t + ms; now.t < end; now.t += 100) hs.tick();
    return sent.slice(from).map((s) => s.at - t0);
  };
  const answer = () => {
    let response: Buffer | null = null;
    rhs.onInitiation(sent.at(-1)!.msg, '100.64.1.1', 7470, (b) => (response = b));
    assert.ok(response);
    hs.onMessage(0, response, RP);
  };
  try {
    // a start before the RP listens: nothing answers
    assert.deepEqual(run(18_000), [0, 1000, 3000, 7000, 12_000, 17_000]);
    answer();
    assert.notEqual(lauth.status().keyId, null, 'the sixth initiation answered');
    up.push(0); // its probes answer
    assert.deepEqual(run(5000), [], 'a working session: no initiation');
    // the RP restarts and forgets the session: every link goes silent
    up.length = 0;
    assert.deepEqual(run(8000), [0, 1000, 3000, 7000], 'links silent under a session: the same quick retries, from the first again');
    answer();
    up.push(0);
    // a rekey while the session works retries every 5 s
    now.t += REKEY_AFTER_MS;
    assert.deepEqual(run(11_000), [0, 5000, 10_000]);
  } finally {
    lauth.stop();
    rauth.stop();
  }
});

test('log limiter: one line per reason per window, then a summary with the count', () => {
  const clock = { t: 0 };
  const lines: string[] = [];
  const l = new LogLimiter((m) => void lines.push(m), 10_000, () => clock.t);
  try {
    for (let i = 0; i < 20_000; i++) l.line('malformed', 'handshake refused: malformed');
    l.line('bad-mac1', 'handshake refused: bad mac1');
    assert.deepEqual(lines, ['handshake refused: malformed', 'handshake refused: bad mac1']);
    clock.t = 10_000;
    l.flush();
    assert.deepEqual(lines.slice(2), ['19999 more like this (malformed) not logged in 10 s']);
    l.line('malformed', 'handshake refused: malformed');
    assert.equal(lines.length, 4, 'a new window starts with a line');
  } finally {
    l.stop();
  }
});
