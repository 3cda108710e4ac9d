// Session lifecycle (WireGuard's timers.c), as pure functions of time.
//
//   t = 0     handshake completes: session N (key id k) sends and receives
//   t = 120 s the LP starts a handshake (rekeyDue), retrying every 5 s without a response
//   t ≈ 120 s session N+1 (key id k' ≠ k): the LP sends with it as soon as the response
//             arrives; the RP receives with it at once but sends with it only once a packet
//             under k' arrived (confirmSession: proof the LP has it); N keeps receiving for
//             GRACE_MS after it was replaced, for packets in flight on slow links
//   t = 180 s a session nobody replaced expires: no key, the data path drops (no_key)
//
// keysToInstall(sessions, now) is what the data path's key map must hold at `now`: one key
// to send with, up to three to receive with (current, previous in its grace period, and on
// the RP the unconfirmed new one), each with the time it stops being valid.

import type { Session } from './handshake.js';

/** No session is used after this age, for sending or receiving. */
export const REJECT_AFTER_MS = 180_000;
/**
 * The LP starts a new handshake when its session is this old: 120 s. For tests only, the
 * environment variable MPCTL_REKEY_AFTER_MS (read once, at start) shortens it to anything from
 * 1000 ms (the lab's rekey test runs a flow across several rekeys); other values are ignored.
 */
export const REKEY_AFTER_MS = rekeyAfterMs(process.env.MPCTL_REKEY_AFTER_MS);

export function rekeyAfterMs(env: string | undefined): number {
  const v = env === undefined || !/^\d+$/.test(env) ? NaN : Number(env);
  return v >= 1000 && v <= 120_000 ? v : 120_000;
}
/** A replaced session still receives this long (packets in flight on the slowest link). */
export const GRACE_MS = 10_000;
/** The initiator retries after this long without a response; an older answer is stale. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/** Without a working session (a portal's start, the RP restarted) the first retries come sooner:
 * 1 s, 2 s, 4 s, then every HANDSHAKE_TIMEOUT_MS. An LP that starts while its RP is still
 * loading (both started at once at boot, or the RP restarting) is through within a second of
 * the RP's start, not up to 5 s after it; a link slower than the retry only loses the answer to
 * an initiation a retry replaced, and the longer retries after it are answered. */
export const HANDSHAKE_FIRST_RETRY_MS = 1_000;

/** How long the LP waits for an answer to its `unanswered`-th initiation in a row before the next
 * one; `working`: it sends under an unexpired session whose links answer (a rekey of it retries
 * slowly). */
export function handshakeRetryMs(unanswered: number, working: boolean): number {
  if (working || unanswered < 1) return HANDSHAKE_TIMEOUT_MS;
  return Math.min(HANDSHAKE_TIMEOUT_MS, HANDSHAKE_FIRST_RETRY_MS * 2 ** Math.min(unanswered - 1, 8));
}

/** The key this side sends with: the LP (initiator) sends LP→RP. */
export const txKeyOf = (s: Session): Buffer => (s.role === 'initiator' ? s.lpToRp : s.rpToLp);
/** The key this side receives with. */
export const rxKeyOf = (s: Session): Buffer => (s.role === 'initiator' ? s.rpToLp : s.lpToRp);

export interface Sessions {
  /** Sends and receives. */
  readonly current: Session | null;
  /** The session `current` replaced; receives until `previousUntil`. */
  readonly previous: Session | null;
  readonly previousUntil: number;
  /** RP only: a completed handshake the LP has not used yet; receives, does not send. */
  readonly pending: Session | null;
}

export const NO_SESSIONS: Sessions = Object.freeze({ current: null, previous: null, previousUntil: 0, pending: null });

const expired = (s: Session, now: number) => now - s.createdAt >= REJECT_AFTER_MS;

function promote(s: Sessions, session: Session, now: number): Sessions {
  return {
    current: session,
    previous: s.current,
    previousUntil: s.current ? Math.min(now + GRACE_MS, s.current.createdAt + REJECT_AFTER_MS) : 0,
    pending: null,
  };
}

/**
 * Adds a completed handshake's session. The initiator's is confirmed by the response and
 * replaces `current` at once; the responder's waits in `pending` for confirmSession.
 */
export function installSession(s: Sessions, session: Session, now: number): Sessions {
  if (session.role === 'initiator') return promote(s, session, now);
  return { ...s, pending: session };
}

/**
 * RP: a packet that passed the MAC under `keyId` arrived. If that is the pending session, the
 * LP has it: it becomes current (and sends), the old one receives for GRACE_MS more.
 */
export function confirmSession(s: Sessions, keyId: number, now: number): Sessions {
  if (!s.pending || s.pending.keyId !== keyId || expired(s.pending, now)) return s;
  return promote(s, s.pending, now);
}

/** Drops what is no longer valid at `now` (keysToInstall already ignores it). */
export function expireSessions(s: Sessions, now: number): Sessions {
  const current = s.current && !expired(s.current, now) ? s.current : null;
  const previous = s.previous && now < s.previousUntil ? s.previous : null;
  const pending = s.pending && !expired(s.pending, now) ? s.pending : null;
  if (current === s.current && previous === s.previous && pending === s.pending) return s;
  return { current, previous, previousUntil: previous ? s.previousUntil : 0, pending };
}

/**
 * LP: whether to send an initiation now: no session or one due for rekeying, and no
 * initiation sent in the last `retryMs` (`lastInitiationAt`, null: none yet; handshakeRetryMs).
 */
export function handshakeDue(s: Sessions, lastInitiationAt: number | null, now: number, retryMs = HANDSHAKE_TIMEOUT_MS): boolean {
  const cur = s.current && !expired(s.current, now) ? s.current : null;
  if (cur && now - cur.createdAt < REKEY_AFTER_MS) return false;
  return retryDue(lastInitiationAt, now, retryMs);
}

/** No initiation sent in the last `retryMs` (null: none yet; a clock that went back counts as due). */
export const retryDue = (lastInitiationAt: number | null, now: number, retryMs: number): boolean =>
  lastInitiationAt === null || now - lastInitiationAt >= retryMs || now < lastInitiationAt;

/** Whether the LP has a session it sends with that is not expired. */
export const sessionWorks = (s: Sessions, now: number): boolean => s.current !== null && !expired(s.current, now);

/** The key id for the LP's next handshake: the one after current's, 1..255 cycling, never one
 * still installed. The first one is random (`seed`) so a restarted LP rarely reuses one the RP
 * still holds. */
export function nextKeyId(s: Sessions, seed = 1, avoid: readonly number[] = []): number {
  const used = new Set([...[s.current, s.previous, s.pending].filter((x): x is Session => x !== null).map((x) => x.keyId), ...avoid]);
  let id = s.current ? s.current.keyId : ((Math.max(1, Math.floor(seed)) - 2 + 255) % 255) + 1;
  for (let i = 0; i < 255; i++) {
    id = (id % 255) + 1;
    if (!used.has(id)) return id;
  }
  throw new Error('no free key id (at most 3 are ever in use)');
}

// ---- what the data path holds --------------------------------------------------------------

export interface KeySlot {
  /** 1..255: the key_id of packets made with this key. */
  readonly keyId: number;
  /** SipHash-2-4 key, 16 bytes. */
  readonly key: Buffer;
  /** When it stops being valid (ms, the caller's clock): the map must not hold it after. */
  readonly until: number;
}

export interface KeyTable {
  /** The key outgoing packets carry, or null: nothing may be sent (drop, no_key). */
  readonly tx: KeySlot | null;
  /** The keys incoming packets may carry, newest first, at most one per key id. */
  readonly rx: readonly KeySlot[];
  /** When this table changes next without any event (a key expires), or null. */
  readonly nextChangeAt: number | null;
}

export function keysToInstall(s: Sessions, now: number): KeyTable {
  const slot = (x: Session, key: Buffer, until: number): KeySlot => ({ keyId: x.keyId, key, until });
  const live = expireSessions(s, now);
  const tx = live.current ? slot(live.current, txKeyOf(live.current), live.current.createdAt + REJECT_AFTER_MS) : null;
  const rx: KeySlot[] = [];
  const add = (x: Session | null, until: number) => {
    if (x && !rx.some((r) => r.keyId === x.keyId)) rx.push(slot(x, rxKeyOf(x), until));
  };
  if (live.pending) add(live.pending, live.pending.createdAt + REJECT_AFTER_MS);
  if (live.current) add(live.current, live.current.createdAt + REJECT_AFTER_MS);
  if (live.previous) add(live.previous, live.previousUntil);
  const ends = [tx, ...rx].filter((x): x is KeySlot => x !== null).map((x) => x.until);
  return { tx, rx, nextChangeAt: ends.length ? Math.min(...ends) : null };
}
