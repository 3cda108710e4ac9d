// Handshake floods: cookies, a load meter and per-source token buckets (WireGuard §5.4.7).
//
// A responder under load (LoadMeter: more initiations per second than it wants to pay X25519
// for) answers an initiation whose mac2 does not verify with a cookie reply, which is smaller
// than the initiation (72 vs 168 bytes: no amplification) and costs two HMACs and one AEAD:
//
//   cookie = HMAC-SHA256(secret, "address:port" of the initiation's source)[0..16]
//   secret = 32 random bytes, replaced every 2 minutes (freshCookieSecret)
//   reply  = ChaCha20-Poly1305(key, random 12-byte nonce, cookie, ad = init mac1 ‖ reply[0..28])
//   key    = HMAC-SHA256(SHA-256("cookie--" ‖ responder static public), init mac1)
//
// Only someone who knows the responder's public key and sent that initiation (its mac1) can
// read the cookie, and only someone receiving at the source address gets it. The initiator
// keeps the cookie for 115 s and puts mac2 = HMAC(cookie, initiation up to mac2)[0..16] on its
// next initiations; a responder under load does the X25519 work only for those, at most
// `perSecond` per source (RateLimiter). WireGuard encrypts the cookie with XChaCha20, which
// node lacks: the per-initiation key (keyed by mac1, which covers a fresh ephemeral key)
// keeps the random 96-bit nonces from ever meeting under one key.
//
// Everything takes the time explicitly; the two classes hold only their counters.

import { err, ok, type Result } from 'neverthrow';
import { decodeHdr } from '../datapath/abi.js';
import { hash, hmac, MAC_LEN, open, sameBytes, seal } from './crypto.js';
import type { HandshakeError, InitiatorState } from './handshake.js';
import { systemRng, type Rng, type StaticKeys } from './keys.js';
import { checkHdr, COOKIE, COOKIE_LEN, COOKIE_NONCE_LEN, handshakeHdr, INIT, mac2Of } from './messages.js';
import { HANDSHAKE_TIMEOUT_MS } from './session.js';

/** The responder replaces its cookie secret this often. */
export const COOKIE_SECRET_MAX_AGE_MS = 120_000;
/** The initiator stops using a cookie this long before the secret could have changed. */
export const COOKIE_LATENCY_MS = 5_000;

// ---- responder: secret, cookie, mac2 -------------------------------------------------------

export interface CookieSecret {
  readonly value: Buffer;
  readonly bornAt: number;
}

/** The secret to use at `now`: `s`, or a new one when there is none or it is 2 minutes old. */
export function freshCookieSecret(s: CookieSecret | null, now: number, rng: Rng = systemRng): CookieSecret {
  if (s && now >= s.bornAt && now - s.bornAt < COOKIE_SECRET_MAX_AGE_MS) return s;
  return { value: rng(32), bornAt: now };
}

/** The source a cookie is bound to: `198.51.100.10:7470`, `[2001:db8::10]:7470` (port 0 for
 * the `ip` carrier). Give the address in the socket's canonical text. */
export function sourceId(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export function cookieOf(secret: CookieSecret, source: string): Buffer {
  return hmac(secret.value, Buffer.from(source)).subarray(0, COOKIE_LEN);
}

/** Whether an initiation's mac2 proves it came from `source` within the secret's lifetime. */
export function mac2Valid(secret: CookieSecret, source: string, init: Buffer): boolean {
  return sameBytes(mac2Of(init, INIT.mac2, cookieOf(secret, source)), init.subarray(INIT.mac2, INIT.mac2 + MAC_LEN));
}

const COOKIE_LABEL = Buffer.from('cookie--');

function replyKey(responderPublic: Buffer, initMac1: Buffer): Buffer {
  return hmac(hash(COOKIE_LABEL, responderPublic), initMac1);
}

/** The cookie reply to an initiation (already checked for size, type and mac1). */
export function createCookieReply(local: StaticKeys, secret: CookieSecret, init: Buffer, source: string, rng: Rng = systemRng): Buffer {
  const msg = Buffer.alloc(COOKIE.size);
  handshakeHdr(COOKIE.type, decodeHdr(init).linkId, 0).copy(msg, 0);
  msg.writeUInt32BE(init.readUInt32BE(INIT.sender), COOKIE.receiver);
  const nonce = rng(COOKIE_NONCE_LEN);
  nonce.copy(msg, COOKIE.nonce);
  const mac1 = init.subarray(INIT.mac1, INIT.mac1 + MAC_LEN);
  const ad = Buffer.concat([mac1, msg.subarray(0, COOKIE.nonce)]);
  seal(replyKey(local.public, mac1), nonce, cookieOf(secret, source), ad).copy(msg, COOKIE.cookie);
  return msg;
}

// ---- initiator: the cookie reply -----------------------------------------------------------

export interface Cookie {
  readonly value: Buffer;
  readonly receivedAt: number;
}

export function cookieUsable(c: Cookie, now: number): boolean {
  return now >= c.receivedAt && now - c.receivedAt < COOKIE_SECRET_MAX_AGE_MS - COOKIE_LATENCY_MS;
}

/**
 * The cookie in a reply to the initiation of `state`. Then send a new initiation with
 * `{ cookie }` (the responder may have rotated its secret or rate-limits the old one).
 */
export function consumeCookieReply(state: InitiatorState, msg: Buffer, now: number): Result<Cookie, HandshakeError> {
  const hdr = checkHdr(msg, COOKIE.type, COOKIE.size);
  if (typeof hdr === 'string') return err({ kind: 'malformed', message: hdr });
  const receiver = msg.readUInt32BE(COOKIE.receiver);
  if (receiver !== state.index) return err({ kind: 'unknown-index', index: receiver, expected: state.index });
  if (now - state.createdAt > HANDSHAKE_TIMEOUT_MS) return err({ kind: 'stale', ageMs: now - state.createdAt });
  const ad = Buffer.concat([state.mac1, msg.subarray(0, COOKIE.nonce)]);
  const nonce = msg.subarray(COOKIE.nonce, COOKIE.cookie);
  const value = open(replyKey(state.peerPublic, state.mac1), nonce, msg.subarray(COOKIE.cookie, COOKIE.size), ad);
  if (!value) return err({ kind: 'decrypt-failed', what: 'cookie reply' });
  return ok({ value, receivedAt: now });
}

// ---- load and rate limits ------------------------------------------------------------------

/**
 * Initiations per second, over a sliding one-second window; under load while above
 * `perSecond` and for `holdMs` after.
 */
export class LoadMeter {
  private second = -Infinity;
  private cur = 0;
  private prev = 0;
  private until = -Infinity;

  constructor(
    readonly perSecond = 50,
    readonly holdMs = 1_000,
  ) {}

  /** Counts one initiation received at `now`. */
  record(now: number): void {
    this.roll(now);
    this.cur++;
    if (this.rate(now) > this.perSecond) this.until = now + this.holdMs;
  }

  underLoad(now: number): boolean {
    this.roll(now);
    return now < this.until || this.rate(now) > this.perSecond;
  }

  private rate(now: number): number {
    const into = (now - this.second * 1000) / 1000;
    return this.cur + this.prev * (1 - into);
  }

  private roll(now: number): void {
    const s = Math.floor(now / 1000);
    if (s === this.second) return;
    this.prev = s === this.second + 1 ? this.cur : 0;
    this.cur = 0;
    this.second = s;
  }
}

export interface RateLimits {
  /** Tokens added per second per source. */
  readonly perSecond: number;
  /** Bucket size: initiations a quiet source may send at once. */
  readonly burst: number;
  /** Sources tracked at most; when full (after dropping idle ones) a new source is refused. */
  readonly maxSources: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { perSecond: 20, burst: 5, maxSources: 4096 };

/** A token bucket per source (sourceId). Under load, only sources with a valid mac2 reach it,
 * so its table holds addresses that really receive, not spoofed ones. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(readonly limits: RateLimits = DEFAULT_RATE_LIMITS) {}

  /** Takes a token for `source` at `now`; false when its bucket is empty. */
  allow(source: string, now: number): boolean {
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= this.limits.maxSources) {
        this.prune(now);
        if (this.buckets.size >= this.limits.maxSources) return false;
      }
      b = { tokens: this.limits.burst, at: now };
      this.buckets.set(source, b);
    }
    this.refill(b, now);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets sources whose bucket is full again (they are as if never seen). */
  prune(now: number): void {
    for (const [src, b] of this.buckets) {
      this.refill(b, now);
      if (b.tokens >= this.limits.burst) this.buckets.delete(src);
    }
  }

  get size(): number {
    return this.buckets.size;
  }

  private refill(b: { tokens: number; at: number }, now: number): void {
    const dt = Math.max(0, now - b.at);
    b.tokens = Math.min(this.limits.burst, b.tokens + (dt / 1000) * this.limits.perSecond);
    b.at = Math.max(b.at, now);
  }
}
