// A portal's sessions and what they mean for its control messages.
//
//   keys:    every change of the sessions (handshake done, RP confirmation, a key expiring) →
//            keysToInstall → the key maps (keys-port.ts); a timer fires at the table's next
//            expiry. The handshake itself is handshake-loop.ts.
//   send:    probes and feedback are signed with the current send key (mac.ts), seq = this
//            portal's own counter per send key from 1 (replay class "control" in bpf/mp.h); no
//            send key, nothing is sent (except handshake messages).
//   receive: a control message must carry a key id we hold, a valid tag and a fresh seq (one
//            ReplayWindow per key id and class: what the peer's data path signed, MP_HDR_F_DP,
//            counts in its data sequence space), else it is dropped and counted by reason — the
//            decap program checks the same, this is defense in depth. On the RP, the first valid
//            message under a pending session's key id confirms it (session.ts confirmSession),
//            and so does a probe request the data path verified and answered (`heard`).
//
// Sessions are timed on the monotonic clock (a wall-clock step must neither expire a session
// early nor keep one from rekeying while the data path's keys, on CLOCK_MONOTONIC, expire);
// only the handshake's timestamp uses the wall clock (handshake-loop.ts).
//
// With `insecure_no_auth` (benchmarks only) there are no sessions: messages go unsigned
// (key id 0) and are taken unchecked.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import type { AuthConfig, PortalConfig } from '../config/types.js';
import { configInvalid } from '../errors.js';
import { decodeHdr, MP_HDR_F_DP, MP_HDR_LEN, MP_REPLAY_CLASSES } from '../datapath/abi.js';
import { readPrivateKeyFile, type StaticKeys } from './keys.js';
import { sign, verify } from './mac.js';
import { ReplayWindow } from './replay.js';
import type { Session } from './handshake.js';
import { confirmSession, expireSessions, installSession, keysToInstall, NO_SESSIONS, type KeySlot, type KeyTable, type Sessions } from './session.js';
import type { KeysPort } from './keys-port.js';
import type { SecurityStatus } from './security-status.js';

type Log = (msg: string, fields?: Record<string, unknown>) => void;

/** Reads `private_key` at `up`; errors name the key and the file. Null when insecure. */
export async function loadStaticKeys(cfg: PortalConfig): Promise<Result<StaticKeys | null, MpError>> {
  const a: AuthConfig = cfg.auth;
  if (a.mode === 'insecure-no-auth') return ok(null);
  const r = await readPrivateKeyFile(a.privateKeyFile);
  if (r.isErr()) {
    const e = r.error;
    if (e.kind === 'ConfigInvalid') return err(configInvalid('private_key', e.value, `${a.privateKeyFile}: ${e.message}`));
    if (e.kind === 'NotFound') return err(configInvalid('private_key', a.privateKeyFile, e.message));
    if (e.kind === 'PermissionDenied') return err({ kind: 'PermissionDenied', message: `private_key: ${e.message}` });
    return err(e);
  }
  if (r.value.publicB64 === a.peerPublicKey)
    return err(configInvalid('peer_public_key', a.peerPublicKey, `is this portal's own public key (from ${a.privateKeyFile}); give the other portal's`));
  return ok(r.value);
}

/** CLOCK_MONOTONIC in ms: bpf_ktime_get_ns() / 1e6. */
export const monoMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

/** The first control seq under an adopted send key (adopt). */
const ADOPTED_SEQ = 0x4000_0000;

export const INSECURE_WARNING =
  'WARNING: insecure_no_auth = true: no handshake, no MAC, no replay protection — anyone who can reach the tunnel port can inject packets. Benchmarks only.';

export class PortalAuth {
  private sessions: Sessions = NO_SESSIONS;
  private table: KeyTable = { tx: null, rx: [], nextChangeAt: null };
  private timer: NodeJS.Timeout | null = null;
  private tx: { slot: KeySlot; seq: number } | null = null;
  private readonly windows = new Map<number, { key: Buffer; window: ReplayWindow }>();
  private stopped = false;
  readonly counters = { handshakes: 0, rekeys: 0, initiationsSent: 0, initiationsReceived: 0, responsesSent: 0, cookiesSent: 0 };
  readonly rejected: Record<string, number> = {};
  private lastHandshakeAt: number | null = null;
  /** key ids of an adopted data path's sessions (adopt) */
  private adopted: number[] = [];

  constructor(
    readonly mode: 'authenticated' | 'insecure-no-auth',
    /** the peer's public key, base64 ('' when none) */
    readonly peer: string,
    private readonly keys: KeysPort,
    private readonly log: Log,
    private readonly clock: () => number = monoMs,
  ) {}

  get authenticated(): boolean {
    return this.mode === 'authenticated';
  }

  now(): number {
    return this.clock();
  }

  current(): Sessions {
    return this.sessions;
  }

  /** A completed handshake: the initiator's session sends at once, the responder's waits. */
  addSession(s: Session): void {
    const now = this.clock();
    const live = expireSessions(this.sessions, now);
    this.counters.handshakes++;
    if (live.current) this.counters.rekeys++;
    this.lastHandshakeAt = Date.now();
    this.log(`session key id ${s.keyId} ${s.role === 'initiator' ? 'in use' : 'pending until the LP uses it'}`, { keyId: s.keyId, rekey: live.current !== null });
    this.apply(installSession(live, s, now));
  }

  reject(kind: string): void {
    this.rejected[kind] = (this.rejected[kind] ?? 0) + 1;
  }

  /**
   * An adopted data path's keys (hitless restart): its sessions go on, without their handshake
   * state, until the next handshake replaces them or they expire. Received control messages are
   * checked against them; ours are signed with its send key from a control seq of 2^30 on: far
   * ahead of whatever the previous process sent under it (messages per key lifetime: ~10^4), so
   * the peer's window takes them, and still "ahead" of its top (serial arithmetic, < 2^31).
   */
  adopt(t: KeyTable): void {
    if (!this.authenticated || (!t.tx && t.rx.length === 0)) return;
    this.table = t;
    this.adopted = [...new Set([...(t.tx ? [t.tx.keyId] : []), ...t.rx.map((s) => s.keyId)])];
    if (t.tx) this.tx = { slot: t.tx, seq: ADOPTED_SEQ };
    this.log(`adopted the data path's keys: send key id ${t.tx?.keyId ?? 'none'}, receive key ids ${t.rx.map((s) => s.keyId).join(',') || 'none'}`, {});
  }

  /** Key ids an adopted data path still holds (a new session must not reuse them). */
  adoptedKeyIds(): number[] {
    return this.adopted;
  }

  /** Signs a control message for sending; null: no send key (send nothing). */
  sign(msg: Buffer): Buffer | null {
    if (!this.authenticated) return msg;
    const slot = this.table.tx;
    if (!slot || slot.until <= this.clock()) return null;
    if (!this.tx || this.tx.slot.keyId !== slot.keyId || !this.tx.slot.key.equals(slot.key)) this.tx = { slot, seq: 0 };
    this.tx.seq++;
    return sign(msg, slot.key, slot.keyId, this.tx.seq);
  }

  /** Whether a received control message is authentic and fresh (if not, it is counted). */
  check(msg: Buffer): boolean {
    if (!this.authenticated) return true;
    if (msg.length < MP_HDR_LEN) {
      this.reject('malformed');
      return false;
    }
    const h = decodeHdr(msg);
    const now = this.clock();
    const slot = this.table.rx.find((s) => s.keyId === h.keyId && s.until > now);
    if (!slot) {
      this.reject('no_key');
      return false;
    }
    if (!verify(msg, slot.key)) {
      this.reject('bad_mac');
      return false;
    }
    const index = h.keyId * MP_REPLAY_CLASSES + (h.flags & MP_HDR_F_DP ? 0 : 1); // bpf/mp.h classes
    let w = this.windows.get(index);
    if (!w || !w.key.equals(slot.key)) {
      w = { key: slot.key, window: new ReplayWindow() };
      this.windows.set(index, w);
    }
    if (!w.window.accept(h.seq)) {
      this.reject('replay');
      return false;
    }
    this.heard(h.keyId);
    return true;
  }

  /** An authentic message under key id `keyId` (checked here, or by the data path): on the RP,
   * the LP using a pending session's key confirms it. */
  heard(keyId: number): void {
    if (this.sessions.pending?.keyId !== keyId) return;
    this.log(`session key id ${keyId} confirmed by the LP: sending with it`, { keyId });
    this.apply(confirmSession(this.sessions, keyId, this.clock()));
  }

  status(): SecurityStatus {
    const now = this.clock();
    const cur = expireSessions(this.sessions, now).current;
    return {
      mode: this.mode,
      peer: this.peer,
      keyId: this.table.tx && this.table.tx.until > now ? this.table.tx.keyId : null,
      sessionAgeMs: cur ? now - cur.createdAt : null,
      lastHandshakeAtMs: this.lastHandshakeAt,
      ...this.counters,
      rejected: { ...this.rejected },
    };
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** New sessions → the key maps, and a timer for the next expiry. */
  private apply(next: Sessions): void {
    if (this.stopped) return;
    const now = this.clock();
    this.sessions = expireSessions(next, now);
    this.table = keysToInstall(this.sessions, now);
    for (const i of this.windows.keys()) if (!this.table.rx.some((s) => s.keyId === Math.floor(i / MP_REPLAY_CLASSES))) this.windows.delete(i);
    const r = this.keys.install(this.table);
    if (r.isErr()) this.log('writing session keys failed', { error: r.error });
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const at = this.table.nextChangeAt;
    if (at !== null) {
      this.timer = setTimeout(() => this.apply(this.sessions), Math.max(0, at - now) + 1);
      this.timer.unref();
    }
  }
}
