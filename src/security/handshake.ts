// The handshake: Noise IK between the Local Portal (initiator) and the Remote Portal
// (responder), each knowing the other's static X25519 public key in advance.
//
//   Noise_IK_25519_ChaChaPoly_SHA256, prologue "mpctl v1 handshake"
//     <- s
//     ...
//     -> e, es, s, ss     payload: TAI64N timestamp              (MP_T_HS_INIT, 168 bytes)
//     <- e, ee, se        payload: empty (key confirmation)      (MP_T_HS_RESP, 112 bytes)
//
//   init   168 B: header 24 · sender 4 · ephemeral 32 · static 32+16 · timestamp 12+16 · mac1 16 · mac2 16
//   resp   112 B: header 24 · sender 4 · receiver 4 · ephemeral 32 · empty 0+16 · mac1 16 · mac2 16
//   cookie  72 B: header 24 · receiver 4 · nonce 12 · cookie 16+16                      (cookie.ts)
//
// Offsets and each field's meaning: messages.ts. As in WireGuard:
// - a chaining key `ck` and a hash `h`; MixKey is HKDF-SHA256(ck, DH) → (ck, k), MixHash is
//   h = SHA-256(h ‖ data), each AEAD key encrypts one message part with nonce 0 and `h` as
//   associated data. Before `e`, each message's cleartext prefix (mpctl header and indices)
//   is mixed into `h`, so the AEAD tags also authenticate the link id, the key id and indices.
// - the initiation carries a timestamp (TAI64N, wall clock) encrypted under the static-static
//   secret: the responder accepts only a timestamp newer than the last one it accepted from
//   that peer, so a captured initiation cannot be replayed.
// - mac1 (HMAC-SHA256/16 keyed by a hash of the recipient's static public key) lets a portal
//   drop, with one hash, every message from someone who does not know its public key; mac2
//   (keyed by a cookie) proves under load that the sender receives at its source address
//   (cookie.ts) before the responder does any X25519 work.
//
// Outputs: a Session with one SipHash-2-4 key (16 bytes) per direction, LP→RP and RP→LP, from
// HKDF of the final chaining key; the key id the initiator chose (header key_id, 1..255); and
// the creation time. session.ts decides what the data path's key map holds when.
//
// Pure: time (`now`, wall-clock ms: the timestamp must stay monotonic across restarts, as
// Date.now()) and randomness (`rng`) are parameters, X25519 is injectable (`x25519`). Nothing
// here keeps state: a consumed initiation returns the peer's new last timestamp, which the
// caller must store before accepting the next initiation from that peer.

import type { KeyObject } from 'node:crypto';
import { err, ok, type Result } from 'neverthrow';
import { createCookieReply, cookieUsable, mac2Valid, type Cookie, type CookieSecret, type RateLimiter } from './cookie.js';
import { hash, hkdf, open, seal } from './crypto.js';
import { KEY_LEN, nodeX25519, systemRng, type Rng, type StaticKeys, type X25519 } from './keys.js';
import { checkHdr, handshakeHdr, INIT, mac1Key, mac1Valid, mac2Of, RESP, sealMac1, TIMESTAMP_LEN } from './messages.js';
import { HANDSHAKE_TIMEOUT_MS } from './session.js';

export const PROTOCOL_NAME = 'Noise_IK_25519_ChaChaPoly_SHA256';
export const PROLOGUE = 'mpctl v1 handshake';
/** Info of the HKDF that turns the final chaining key into the two SipHash keys. */
const DATA_KEYS_INFO = 'mpctl v1 siphash-2-4 keys lp>rp rp>lp';
/** SipHash-2-4 key bytes. */
export const SIPHASH_KEY_LEN = 16;

// ---- errors --------------------------------------------------------------------------------

/**
 * Why a handshake message was refused. These are per-packet events for the portal's counters
 * and logs (an attacker makes them at will), never a reason to stop: they do not become
 * MpErrors.
 */
export type HandshakeError =
  /** wrong size, version or type; a key id of 0; a low-order ephemeral key */
  | { kind: 'malformed'; message: string }
  /** mac1 does not verify: the sender does not know our public key, or the message changed */
  | { kind: 'bad-mac1' }
  /** under load, mac2 is missing or wrong: send `reply` (a cookie reply) and do nothing else */
  | { kind: 'cookie-required'; reply: Buffer }
  /** under load, this source sent more initiations than its token bucket allows */
  | { kind: 'rate-limited'; source: string }
  /** the initiator's static key decrypted but is not a configured peer */
  | { kind: 'unknown-peer'; publicKey: string }
  /** the initiator claims a configured static key but does not hold its private key (the
   * payload under the static-static secret does not decrypt) */
  | { kind: 'bad-static'; peer: string }
  /** the timestamp is not newer than the last accepted one from that peer: a replay */
  | { kind: 'replayed-timestamp'; peer: string }
  /** an AEAD tag does not verify (tampered, or a different key pair on the other side) */
  | { kind: 'decrypt-failed'; what: string }
  /** a response or cookie reply to a handshake this state is not (receiver index) */
  | { kind: 'unknown-index'; index: number; expected: number }
  /** a response or cookie reply arriving after the initiation timed out */
  | { kind: 'stale'; ageMs: number };

export type HandshakeErrorKind = HandshakeError['kind'];

export function describeHandshakeError(e: HandshakeError): string {
  switch (e.kind) {
    case 'malformed':
      return `malformed handshake message: ${e.message}`;
    case 'bad-mac1':
      return 'mac1 does not verify (sender does not know our public key, or the message was altered)';
    case 'cookie-required':
      return 'under load: answered with a cookie reply (mac2 missing or invalid)';
    case 'rate-limited':
      return `under load: too many initiations from ${e.source}`;
    case 'unknown-peer':
      return `initiation from an unknown static key ${e.publicKey}`;
    case 'bad-static':
      return `initiation claims the static key of ${e.peer} without its private key`;
    case 'replayed-timestamp':
      return `replayed initiation from ${e.peer} (timestamp not newer than the last accepted)`;
    case 'decrypt-failed':
      return `handshake ${e.what} does not decrypt (altered, or the peer uses another key)`;
    case 'unknown-index':
      return `handshake message for index ${e.index}, expected ${e.expected}`;
    case 'stale':
      return `handshake answer ${e.ageMs} ms after the initiation (limit ${HANDSHAKE_TIMEOUT_MS} ms)`;
  }
}

const fail = <T>(e: HandshakeError): Result<T, HandshakeError> => err(e);

// ---- outputs -------------------------------------------------------------------------------

/** What a completed handshake gives the data path. The initiator is always the LP. */
export interface Session {
  readonly role: 'initiator' | 'responder';
  /** 1..255, chosen by the initiator; carried in every data packet's key_id. */
  readonly keyId: number;
  /** SipHash-2-4 key of packets LP → RP (16 bytes). */
  readonly lpToRp: Buffer;
  /** SipHash-2-4 key of packets RP → LP (16 bytes). */
  readonly rpToLp: Buffer;
  /** When the handshake completed on this side (ms, the caller's `now`). */
  readonly createdAt: number;
  /** The peer's static public key, base64. */
  readonly peer: string;
  /** The link the initiation arrived on / the response was sent on. */
  readonly linkId: number;
  readonly localIndex: number;
  readonly remoteIndex: number;
}

/** A configured peer as the responder knows it. */
export interface PeerState {
  readonly publicKey: Buffer;
  readonly publicB64: string;
  /** The newest accepted initiation timestamp (TAI64N), null before the first. */
  readonly lastTimestamp: Buffer | null;
}

export function newPeer(publicKey: Buffer): PeerState {
  return { publicKey, publicB64: publicKey.toString('base64'), lastTimestamp: null };
}

/** The initiator's half-done handshake, kept until the response (or a cookie reply) arrives. */
export interface InitiatorState {
  readonly local: StaticKeys;
  readonly peerPublic: Buffer;
  readonly ephemeral: KeyObject;
  readonly ck: Buffer;
  readonly h: Buffer;
  readonly index: number;
  readonly keyId: number;
  readonly linkId: number;
  readonly createdAt: number;
  /** The timestamp sent: pass it as `after` to the next createInitiation. */
  readonly timestamp: Buffer;
  /** The initiation's mac1: associated data of a cookie reply to it. */
  readonly mac1: Buffer;
}

// ---- timestamps ----------------------------------------------------------------------------

const TAI64_EPOCH = 0x400000000000000an; // 2^62 + 10 s (TAI − UTC in 1972), as WireGuard

/** TAI64N of a wall-clock time in ms: 8 bytes of seconds, 4 of nanoseconds, big-endian. */
export function tai64n(nowMs: number): Buffer {
  const secs = Math.floor(nowMs / 1000);
  const b = Buffer.alloc(TIMESTAMP_LEN);
  b.writeBigUInt64BE(TAI64_EPOCH + BigInt(secs), 0);
  b.writeUInt32BE(Math.min(999_999_999, Math.floor((nowMs - secs * 1000) * 1e6)), 8);
  return b;
}

/** tai64n(now), or 1 ns after `after` if that is not newer (same ms, clock stepped back). */
export function nextTimestamp(nowMs: number, after?: Buffer | null): Buffer {
  const t = tai64n(nowMs);
  if (!after || Buffer.compare(t, after) > 0) return t;
  let secs = after.readBigUInt64BE(0);
  let ns = after.readUInt32BE(8) + 1;
  if (ns >= 1e9) [secs, ns] = [secs + 1n, 0];
  const b = Buffer.alloc(TIMESTAMP_LEN);
  b.writeBigUInt64BE(secs, 0);
  b.writeUInt32BE(ns, 8);
  return b;
}

// ---- Noise symmetric state -----------------------------------------------------------------

const NONCE0 = Buffer.alloc(12);
const EMPTY = Buffer.alloc(0);
// the protocol name is exactly 32 bytes: it is h, and ck starts equal to it
const H0 = Buffer.from(PROTOCOL_NAME);
const H1 = hash(H0, Buffer.from(PROLOGUE));

/** ck and h after the prologue and the pre-message `<- s`. */
function start(responderStatic: Buffer): { ck: Buffer; h: Buffer } {
  return { ck: H0, h: hash(H1, responderStatic) };
}

function mixKey(ck: Buffer, dh: Buffer): { ck: Buffer; k: Buffer } {
  const out = hkdf(ck, dh, 2 * KEY_LEN);
  return { ck: out.subarray(0, KEY_LEN), k: out.subarray(KEY_LEN) };
}

function split(ck: Buffer): { lpToRp: Buffer; rpToLp: Buffer } {
  const out = hkdf(ck, EMPTY, 2 * SIPHASH_KEY_LEN, DATA_KEYS_INFO);
  return { lpToRp: out.subarray(0, SIPHASH_KEY_LEN), rpToLp: out.subarray(SIPHASH_KEY_LEN) };
}

// ---- initiator: -> e, es, s, ss ------------------------------------------------------------

export interface InitiationOptions {
  /** The link the initiation goes out on (header link_id). Default 0. */
  linkId?: number;
  /** The new session's key id, 1..255 (session.ts nextKeyId). Default: random. */
  keyId?: number;
  /** Sender index. Default: random. */
  index?: number;
  /** The previous initiation's timestamp: this one is made newer. */
  after?: Buffer | null;
  /** Wall-clock ms for the timestamp (Date.now()), when `now` is on another clock (a portal
   * times its sessions on the monotonic clock). Default: `now`. */
  wallMs?: number;
  /** A cookie from the responder's cookie reply: sets mac2 while it is fresh. */
  cookie?: Cookie | null;
  x25519?: X25519;
}

/**
 * A new initiation to the responder whose static public key is `peerPublic` (32 raw bytes,
 * validated with parsePublicKey). Keep `state` for consumeResponse / consumeCookieReply.
 */
export function createInitiation(
  local: StaticKeys,
  peerPublic: Buffer,
  now: number,
  rng: Rng = systemRng,
  opts: InitiationOptions = {},
): { message: Buffer; state: InitiatorState } {
  const x = opts.x25519 ?? nodeX25519;
  const keyId = opts.keyId ?? 1 + (rng(1).readUInt8(0) % 255);
  if (!Number.isInteger(keyId) || keyId < 1 || keyId > 255) throw new Error(`key id must be 1..255, got ${keyId}`);
  const index = opts.index ?? rng(4).readUInt32BE(0);
  const linkId = opts.linkId ?? 0;

  const msg = Buffer.alloc(INIT.size);
  handshakeHdr(INIT.type, linkId, keyId).copy(msg, 0);
  msg.writeUInt32BE(index >>> 0, INIT.sender);
  let { ck, h } = start(peerPublic);
  h = hash(h, msg.subarray(0, INIT.ephemeral));

  // e
  const e = x.keyPair(rng);
  e.public.copy(msg, INIT.ephemeral);
  h = hash(h, e.public);
  // es
  let k: Buffer;
  ({ ck, k } = mixKey(ck, x.dh(e.private, peerPublic)));
  // s
  const encStatic = seal(k, NONCE0, local.public, h);
  encStatic.copy(msg, INIT.static);
  h = hash(h, encStatic);
  // ss
  ({ ck, k } = mixKey(ck, x.dh(local.private, peerPublic)));
  // payload: timestamp
  const timestamp = nextTimestamp(opts.wallMs ?? now, opts.after);
  const encTs = seal(k, NONCE0, timestamp, h);
  encTs.copy(msg, INIT.timestamp);
  h = hash(h, encTs);

  sealMac1(msg, INIT.mac1, mac1Key(peerPublic));
  if (opts.cookie && cookieUsable(opts.cookie, now)) mac2Of(msg, INIT.mac2, opts.cookie.value).copy(msg, INIT.mac2);

  const mac1 = Buffer.from(msg.subarray(INIT.mac1, INIT.mac2));
  return {
    message: msg,
    state: { local, peerPublic, ephemeral: e.private, ck, h, index: index >>> 0, keyId, linkId, createdAt: now, timestamp, mac1 },
  };
}

// ---- responder: consume the initiation, <- e, ee, se ---------------------------------------

export interface ResponderOptions {
  rng?: Rng;
  x25519?: X25519;
  /** Responder's index in the response. Default: random. */
  index?: number;
  /** The link the response goes out on. Default: the initiation's link. */
  linkId?: number;
  /**
   * Set when the portal is under load (cookie.ts LoadMeter): then an initiation without a
   * valid mac2 for `source` (its address:port, cookie.ts sourceId) gets a cookie reply and
   * no X25519 work, and `limiter` bounds the initiations per source that pass.
   */
  load?: { underLoad: boolean; secret: CookieSecret; source: string; limiter?: RateLimiter };
}

export interface Accepted {
  /** The peer with its new last timestamp: store it before consuming another initiation. */
  readonly peer: PeerState;
  /** The response, to send back on `session.linkId` to the initiation's source. */
  readonly response: Buffer;
  readonly session: Session;
}

/**
 * Checks an initiation and answers it. In order, cheapest first: size/type, mac1, (under load)
 * mac2 and the per-source rate limit, then the X25519 work: the initiator's static key must
 * decrypt, be a configured peer, prove its private key and carry a fresh timestamp.
 */
export function consumeInitiation(
  local: StaticKeys,
  knownPeers: ReadonlyMap<string, PeerState>,
  message: Buffer,
  now: number,
  opts: ResponderOptions = {},
): Result<Accepted, HandshakeError> {
  const hdr = checkHdr(message, INIT.type, INIT.size);
  if (typeof hdr === 'string') return fail({ kind: 'malformed', message: hdr });
  if (!mac1Valid(message, INIT.mac1, mac1Key(local.public))) return fail({ kind: 'bad-mac1' });
  const rng = opts.rng ?? systemRng;
  const load = opts.load;
  if (load?.underLoad) {
    if (!mac2Valid(load.secret, load.source, message))
      return fail({ kind: 'cookie-required', reply: createCookieReply(local, load.secret, message, load.source, rng) });
    if (load.limiter && !load.limiter.allow(load.source, now)) return fail({ kind: 'rate-limited', source: load.source });
  }
  if (hdr.keyId === 0) return fail({ kind: 'malformed', message: 'key id 0 is reserved' });
  const x = opts.x25519 ?? nodeX25519;

  let { ck, h } = start(local.public);
  h = hash(h, message.subarray(0, INIT.ephemeral));
  // e
  const ePub = message.subarray(INIT.ephemeral, INIT.ephemeral + KEY_LEN);
  h = hash(h, ePub);
  // es
  let k: Buffer;
  let es: Buffer;
  try {
    es = x.dh(local.private, ePub);
  } catch {
    return fail({ kind: 'malformed', message: 'the ephemeral key is a low-order point' });
  }
  ({ ck, k } = mixKey(ck, es));
  // s
  const encStatic = message.subarray(INIT.static, INIT.timestamp);
  const sPub = open(k, NONCE0, encStatic, h);
  if (!sPub) return fail({ kind: 'decrypt-failed', what: 'static key' });
  h = hash(h, encStatic);
  const peer = knownPeers.get(sPub.toString('base64'));
  if (!peer) return fail({ kind: 'unknown-peer', publicKey: sPub.toString('base64') });
  // ss
  let ss: Buffer;
  try {
    ss = x.dh(local.private, peer.publicKey);
  } catch {
    return fail({ kind: 'bad-static', peer: peer.publicB64 });
  }
  ({ ck, k } = mixKey(ck, ss));
  // payload: timestamp
  const encTs = message.subarray(INIT.timestamp, INIT.mac1);
  const timestamp = open(k, NONCE0, encTs, h);
  if (!timestamp) return fail({ kind: 'bad-static', peer: peer.publicB64 });
  h = hash(h, encTs);
  if (peer.lastTimestamp && Buffer.compare(timestamp, peer.lastTimestamp) <= 0)
    return fail({ kind: 'replayed-timestamp', peer: peer.publicB64 });

  // the response
  const initiatorIndex = message.readUInt32BE(INIT.sender);
  const index = (opts.index ?? rng(4).readUInt32BE(0)) >>> 0;
  const linkId = opts.linkId ?? hdr.linkId;
  const resp = Buffer.alloc(RESP.size);
  handshakeHdr(RESP.type, linkId, hdr.keyId).copy(resp, 0);
  resp.writeUInt32BE(index, RESP.sender);
  resp.writeUInt32BE(initiatorIndex, RESP.receiver);
  h = hash(h, resp.subarray(0, RESP.ephemeral));
  // e
  const e = x.keyPair(rng);
  e.public.copy(resp, RESP.ephemeral);
  h = hash(h, e.public);
  // ee, se
  ({ ck } = mixKey(ck, x.dh(e.private, ePub)));
  ({ ck, k } = mixKey(ck, x.dh(e.private, peer.publicKey)));
  // payload: empty
  const encEmpty = seal(k, NONCE0, EMPTY, h);
  encEmpty.copy(resp, RESP.empty);
  sealMac1(resp, RESP.mac1, mac1Key(peer.publicKey));

  const keys = split(ck);
  return ok({
    peer: { ...peer, lastTimestamp: timestamp },
    response: resp,
    session: {
      role: 'responder',
      keyId: hdr.keyId,
      ...keys,
      createdAt: now,
      peer: peer.publicB64,
      linkId: hdr.linkId,
      localIndex: index,
      remoteIndex: initiatorIndex,
    },
  });
}

// ---- initiator: consume the response -------------------------------------------------------

export function consumeResponse(
  state: InitiatorState,
  message: Buffer,
  now: number,
  opts: { x25519?: X25519 } = {},
): Result<Session, HandshakeError> {
  const hdr = checkHdr(message, RESP.type, RESP.size);
  if (typeof hdr === 'string') return fail({ kind: 'malformed', message: hdr });
  const receiver = message.readUInt32BE(RESP.receiver);
  if (receiver !== state.index) return fail({ kind: 'unknown-index', index: receiver, expected: state.index });
  if (!mac1Valid(message, RESP.mac1, mac1Key(state.local.public))) return fail({ kind: 'bad-mac1' });
  if (now - state.createdAt > HANDSHAKE_TIMEOUT_MS) return fail({ kind: 'stale', ageMs: now - state.createdAt });
  if (hdr.keyId !== state.keyId) return fail({ kind: 'malformed', message: `key id ${hdr.keyId}, the initiation proposed ${state.keyId}` });
  const x = opts.x25519 ?? nodeX25519;

  let { ck, h } = state;
  h = hash(h, message.subarray(0, RESP.ephemeral));
  // e
  const ePub = message.subarray(RESP.ephemeral, RESP.ephemeral + KEY_LEN);
  h = hash(h, ePub);
  // ee, se
  let k: Buffer;
  try {
    ({ ck } = mixKey(ck, x.dh(state.ephemeral, ePub)));
  } catch {
    return fail({ kind: 'malformed', message: 'the ephemeral key is a low-order point' });
  }
  ({ ck, k } = mixKey(ck, x.dh(state.local.private, ePub)));
  // payload: empty
  if (!open(k, NONCE0, message.subarray(RESP.empty, RESP.mac1), h)) return fail({ kind: 'decrypt-failed', what: 'response' });

  return ok({
    role: 'initiator',
    keyId: state.keyId,
    ...split(ck),
    createdAt: now,
    peer: state.peerPublic.toString('base64'),
    linkId: hdr.linkId,
    localIndex: state.index,
    remoteIndex: message.readUInt32BE(RESP.sender),
  });
}
