// The handshake on the wire (handshake.ts does the cryptography, session.ts the timers).
//
// LP (Initiator): an initiation is due with no session, at REKEY_AFTER_MS, every
// HANDSHAKE_TIMEOUT_MS without an answer (1 s, 2 s, 4 s first while no session works:
// handshakeRetryMs), and when every link has gone silent under a session older than
// HANDSHAKE_TIMEOUT_MS (the RP restarted and lost it). Links are down until probes
// flow and probes need a session, so the first initiation and every retry go out on every link;
// a rekey while links are up goes on the preferred up link only (lowest metric, then fastest).
// All copies are one initiation (one ephemeral key, one timestamp); only mac2 differs, since a
// cookie is bound to the link's source address. The first response completes it. A cookie
// reply is taken only if it comes from where that link's initiation went (the RP's address and
// port) and decrypts under the initiation's mac1 (cookie.ts); it is stored for its link and the
// same initiation re-sent there at once with mac2 (at most MAX_COOKIE_RESENDS times per link
// and initiation). A cookie reply never replaces the pending handshake: a forged one (its key
// derives from public values, so anyone who saw the initiation can make one) costs at most a
// useless re-send, and the RP's real response still completes the handshake. Responses and
// cookie replies when no handshake is pending are counted (`unsolicited-*`).
//
// RP (Responder): under load (more initiations per second than LoadMeter allows) an initiation
// without a valid mac2 gets a cookie reply and no X25519 work, and each source is rate-limited
// (cookie.ts). An accepted initiation's session is pending until the LP's first authenticated
// control message under its key id (auth.ts). The answer goes back where the initiation came
// from. Copies of the accepted initiation arriving on other links (within HANDSHAKE_TIMEOUT_MS,
// at most one per link) get the same response again: a response lost on one link does not cost
// a retry, and nobody gets more than MAX_LINKS answers of 112 bytes per 168-byte initiation.
// Cookie replies are capped at COOKIE_REPLIES_PER_S a second in all (the data path's flood.h
// caps what reaches us per source prefix and in all, below this; this is defense in depth).
//
// Refused messages are counted by kind (PortalAuth.reject) and logged through a LogLimiter:
// one line per kind per 10 s, whatever a flood sends.
import { randomInt } from 'node:crypto';
import { decodeHdr, MP_MAX_LINKS, MP_T_COOKIE, MP_T_HS_RESP } from '../datapath/abi.js';
import { consumeCookieReply, cookieUsable, freshCookieSecret, LoadMeter, RateLimiter, sourceId, type Cookie, type CookieSecret } from './cookie.js';
import { consumeInitiation, consumeResponse, createInitiation, describeHandshakeError, newPeer, type HandshakeError, type InitiatorState, type PeerState } from './handshake.js';
import type { StaticKeys } from './keys.js';
import { INIT, mac2Of } from './messages.js';
import { handshakeDue, handshakeRetryMs, HANDSHAKE_TIMEOUT_MS, nextKeyId, retryDue, sessionWorks } from './session.js';
import type { PortalAuth } from './auth.js';
import { LogLimiter } from '../run/log-limit.js';
import { ipToBuffer } from '../netlink/ip.js';

type Log = (msg: string, fields?: Record<string, unknown>) => void;

/** Cookie replies one initiation may cause on one link (forged replies cost at most these). */
export const MAX_COOKIE_RESENDS = 3;
/** The RP's cap on cookie replies, all sources together. */
export const COOKIE_REPLIES_PER_S = 1000;

function refused(auth: PortalAuth, log: LogLimiter, e: HandshakeError, fields: Record<string, unknown> = {}): void {
  auth.reject(e.kind);
  // a cookie reply sent is not worth a line; the rest, one line per kind per 10 s
  if (e.kind !== 'cookie-required') log.line(e.kind, `handshake refused: ${describeHandshakeError(e)}`, fields);
}

const sameAddress = (a: string, b: string): boolean => a === b || ipToBuffer(a).equals(ipToBuffer(b));

export interface InitiatorLinks {
  /** every link id, in config order */
  all: number[];
  /** usable links, preferred first (empty: none is up) */
  up(): number[];
  send(linkId: number, msg: Buffer): void;
  /** where link `linkId`'s handshake messages go: its cookie replies must come from there */
  peer(linkId: number): { address: string; port: number } | undefined;
}

export class Initiator {
  private state: InitiatorState | null = null;
  /** the pending initiation as sent (mac2 zero) */
  private message: Buffer | null = null;
  /** re-sends with a cookie, per link, of the pending initiation */
  private readonly resends = new Map<number, number>();
  private readonly limited: LogLimiter;
  private lastInitiationAt: number | null = null;
  /** initiations in a row without a response (handshakeRetryMs) */
  private unanswered = 0;
  private lastTimestamp: Buffer | null = null;
  private readonly cookies = new Map<number, Cookie>();
  private readonly seed = randomInt(1, 256);

  constructor(
    private readonly auth: PortalAuth,
    private readonly local: StaticKeys,
    private readonly peerPublic: Buffer,
    private readonly links: InitiatorLinks,
    private readonly log: Log,
  ) {
    this.limited = new LogLimiter(log);
  }

  /** Called every probe interval: sends an initiation when one is due. */
  tick(): void {
    const now = this.auth.now();
    const s = this.auth.current();
    const up = this.links.up();
    const lost = s.current !== null && up.length === 0 && now - s.current.createdAt >= HANDSHAKE_TIMEOUT_MS;
    // a session that sends but whose links all went silent is not working either
    const retryMs = handshakeRetryMs(this.unanswered, sessionWorks(s, now) && !lost);
    if (!handshakeDue(s, this.lastInitiationAt, now, retryMs) && !(lost && retryDue(this.lastInitiationAt, now, retryMs))) return;
    const retry = this.state !== null;
    const { message, state } = createInitiation(this.local, this.peerPublic, now, undefined, {
      keyId: nextKeyId(s, this.seed, this.auth.adoptedKeyIds()),
      after: this.lastTimestamp,
      wallMs: Date.now(),
      linkId: up[0] ?? this.links.all[0] ?? 0,
    });
    this.state = state;
    this.message = message;
    this.resends.clear();
    this.lastTimestamp = state.timestamp;
    this.lastInitiationAt = now;
    this.unanswered++;
    const on = retry || up.length === 0 ? this.links.all : [up[0]!];
    for (const id of on) this.sendOn(id, message);
    this.log(`handshake initiation key id ${state.keyId} on link${on.length > 1 ? 's' : ''} ${on.join(',')}`, { keyId: state.keyId, retry });
  }

  /** A handshake message (response or cookie reply) that arrived on `linkId` from `from`. */
  onMessage(linkId: number, msg: Buffer, from: { address: string; port: number }): void {
    const type = decodeHdr(msg).type;
    const st = this.state;
    const what = type === MP_T_HS_RESP ? 'response' : type === MP_T_COOKIE ? 'cookie' : `type-${type}`;
    if (!st || !this.message) {
      // a copy of a response already taken, or an answer to nothing: counted, not logged
      this.auth.reject(`unsolicited-${what}`);
      return;
    }
    const now = this.auth.now();
    if (type === MP_T_HS_RESP) {
      const r = consumeResponse(st, msg, now);
      if (r.isErr()) return refused(this.auth, this.limited, r.error, { link: linkId });
      this.state = null;
      this.message = null;
      this.unanswered = 0;
      this.auth.addSession(r.value);
      return;
    }
    if (type === MP_T_COOKIE) {
      const to = this.links.peer(linkId);
      if (!to || to.port !== from.port || !sameAddress(to.address, from.address)) {
        this.auth.reject('cookie-wrong-source');
        this.limited.line('cookie-wrong-source', 'cookie reply refused: not from where the initiation went', { link: linkId, from: `${from.address}:${from.port}` });
        return;
      }
      const c = consumeCookieReply(st, msg, now);
      if (c.isErr()) return refused(this.auth, this.limited, c.error, { link: linkId });
      // the pending handshake stays: the RP's response to it is still taken
      this.cookies.set(linkId, c.value);
      const n = this.resends.get(linkId) ?? 0;
      if (n >= MAX_COOKIE_RESENDS) {
        this.auth.reject('cookie-resend-limit');
        return;
      }
      this.resends.set(linkId, n + 1);
      this.limited.line('cookie', 'the RP is under load: re-sending the initiation with its cookie', { link: linkId });
      // the same initiation, now with mac2 for this link's source
      this.sendOn(linkId, this.message);
      return;
    }
    this.auth.reject(`unexpected-${what}`);
  }

  private sendOn(linkId: number, message: Buffer): void {
    const cookie = this.cookies.get(linkId);
    let msg = message;
    if (cookie && cookieUsable(cookie, this.auth.now())) {
      msg = Buffer.from(message);
      mac2Of(msg, INIT.mac2, cookie.value).copy(msg, INIT.mac2);
    }
    this.auth.counters.initiationsSent++;
    this.links.send(linkId, msg);
  }
}

export class Responder {
  private peers: Map<string, PeerState>;
  private secret: CookieSecret | null = null;
  private readonly load = new LoadMeter();
  private readonly limiter = new RateLimiter();
  private readonly cookieCap = new RateLimiter({ perSecond: COOKIE_REPLIES_PER_S, burst: COOKIE_REPLIES_PER_S, maxSources: 1 });
  private readonly limited: LogLimiter;
  /** the last accepted initiation (up to mac2) and its response */
  private last: { init: Buffer; response: Buffer; at: number; sources: Set<string> } | null = null;

  constructor(
    private readonly auth: PortalAuth,
    private readonly local: StaticKeys,
    peerPublic: Buffer,
    log: Log,
  ) {
    this.limited = new LogLimiter(log);
    const p = newPeer(peerPublic);
    this.peers = new Map([[p.publicB64, p]]);
  }

  /** An initiation from `address`:`port`; `reply` sends back there. */
  onInitiation(msg: Buffer, address: string, port: number, reply: (b: Buffer) => void): void {
    const now = this.auth.now();
    this.auth.counters.initiationsReceived++;
    const source = sourceId(address, port);
    const l = this.last;
    if (l && msg.length === INIT.size && now - l.at < HANDSHAKE_TIMEOUT_MS && l.init.equals(msg.subarray(0, INIT.mac2))) {
      // a copy that came over another link
      if (!l.sources.has(source) && l.sources.size < MP_MAX_LINKS) {
        l.sources.add(source);
        this.auth.counters.responsesSent++;
        reply(l.response);
      }
      return;
    }
    this.load.record(now);
    this.secret = freshCookieSecret(this.secret, now);
    const r = consumeInitiation(this.local, this.peers, msg, now, {
      load: { underLoad: this.load.underLoad(now), secret: this.secret, source, limiter: this.limiter },
    });
    if (r.isErr()) {
      if (r.error.kind === 'cookie-required') {
        if (!this.cookieCap.allow('all', now)) {
          this.auth.reject('cookie-cap');
          return;
        }
        this.auth.counters.cookiesSent++;
        reply(r.error.reply);
      }
      return refused(this.auth, this.limited, r.error, { from: source });
    }
    const a = r.value;
    this.peers.set(a.peer.publicB64, a.peer);
    // the receive key goes into the data path before the LP can use it
    this.auth.addSession(a.session);
    this.last = { init: Buffer.from(msg.subarray(0, INIT.mac2)), response: a.response, at: now, sources: new Set([source]) };
    this.auth.counters.responsesSent++;
    reply(a.response);
  }
}
