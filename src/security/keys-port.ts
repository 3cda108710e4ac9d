// The session keys in the data path: what session.ts keysToInstall says the maps must hold,
// written into mp_tx_key[0] and mp_rx_keys[key_id] (bpf/mp.h), with the replay windows of a
// key id zeroed before a new key goes into its slot (a new session starts a fresh window) and
// slots no longer listed cleared. Expiry: the portal times sessions on CLOCK_MONOTONIC in ms
// (auth.ts monoMs), the maps hold bpf_ktime_get_ns() ns: `until` is converted at write.
//
// Order of writes: receive keys first (a key the peer may already use is accepted before
// anything sends with the new one), the send key last.
import { ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import * as abi from '../datapath/abi.js';
import type { KeySlot, KeyTable } from './session.js';

export interface KeysPort {
  /** Makes the key maps hold `t` (idempotent). */
  install(t: KeyTable): Result<void, MpError>;
  /** What the maps hold now (an adopted data path's sessions), on the session clock `nowMs`. */
  read?(nowMs: number): Result<KeyTable, MpError>;
}

export type KeyMap = 'tx' | 'rx' | 'replay';
export interface KeyWrite {
  map: KeyMap;
  index: number;
  value: Buffer;
}

/** What the maps hold, per slot: the key bytes and when it expires (the session clock, ms). */
export interface Installed {
  tx: KeySlot | null;
  rx: ReadonlyMap<number, KeySlot>;
}
export const NOTHING_INSTALLED: Installed = { tx: null, rx: new Map() };

const same = (a: KeySlot | null | undefined, b: KeySlot | null | undefined) =>
  a === b || (!!a && !!b && a.keyId === b.keyId && a.until === b.until && a.key.equals(b.key));

/** The map writes that take the maps from `prev` to `t`, at session-clock time `nowMs` = CLOCK_MONOTONIC `monoNs`. */
export function keyWrites(prev: Installed, t: KeyTable, nowMs: number, monoNs: bigint): { writes: KeyWrite[]; installed: Installed } {
  const expires = (until: number) => monoNs + BigInt(Math.max(0, Math.round(until - nowMs))) * 1_000_000n;
  const encode = (s: KeySlot) => abi.encodeKey({ key: s.key, expiresNs: expires(s.until), id: s.keyId, valid: true });
  const writes: KeyWrite[] = [];
  const rx = new Map<number, KeySlot>();
  for (const s of t.rx) {
    rx.set(s.keyId, s);
    const old = prev.rx.get(s.keyId);
    if (same(old, s)) continue;
    if (!old || !old.key.equals(s.key))
      for (const cls of [abi.MP_REPLAY_DATA, abi.MP_REPLAY_CONTROL]) writes.push({ map: 'replay', index: abi.replayIndex(s.keyId, cls), value: abi.emptyReplay() });
    writes.push({ map: 'rx', index: s.keyId, value: encode(s) });
  }
  for (const id of prev.rx.keys()) if (!rx.has(id)) writes.push({ map: 'rx', index: id, value: abi.encodeKey(abi.NO_KEY) });
  if (!same(prev.tx, t.tx)) writes.push({ map: 'tx', index: 0, value: t.tx ? encode(t.tx) : abi.encodeKey(abi.NO_KEY) });
  return { writes, installed: { tx: t.tx, rx } };
}

/** The valid, unexpired slots among `values` (mp_tx_key[0] first, then mp_rx_keys by id), as a
 * KeyTable on the session clock: `nowMs` there is CLOCK_MONOTONIC `monoNs`. */
export function tableOf(tx: Buffer | null, rx: readonly (Buffer | null)[], nowMs: number, monoNs: bigint): KeyTable {
  const slot = (b: Buffer | null): KeySlot | null => {
    if (!b) return null;
    const k = abi.decodeKey(b);
    if (!k.valid || k.id === 0 || k.expiresNs <= monoNs) return null;
    return { keyId: k.id, key: k.key, until: nowMs + Number((k.expiresNs - monoNs) / 1_000_000n) };
  };
  const rxs = rx.map(slot).filter((x): x is KeySlot => x !== null);
  return { tx: slot(tx), rx: rxs, nextChangeAt: null };
}

/** A KeysPort over the pinned maps; `write` is mapUpdate on the right fd, `lookup` a lookup. */
export function mapKeysPort(
  write: (map: KeyMap, index: number, value: Buffer) => Result<void, MpError>,
  lookup?: (map: 'tx' | 'rx', index: number) => Result<Buffer | null, MpError>,
): KeysPort {
  let installed = NOTHING_INSTALLED;
  return {
    ...(lookup
      ? {
          read: (nowMs: number) => {
            const mono = process.hrtime.bigint();
            const tx = lookup('tx', 0);
            if (tx.isErr()) return tx.map(() => ({ tx: null, rx: [], nextChangeAt: null }));
            const rx: (Buffer | null)[] = [];
            for (let id = 1; id < abi.MP_KEY_IDS; id++) {
              const r = lookup('rx', id);
              if (r.isErr()) return r.map(() => ({ tx: null, rx: [], nextChangeAt: null }));
              rx.push(r.value);
            }
            return ok(tableOf(tx.value, rx, nowMs, mono));
          },
        }
      : {}),
    install: (t) => {
      const mono = process.hrtime.bigint();
      const w = keyWrites(installed, t, Number(mono / 1_000_000n), mono);
      for (const x of w.writes) {
        const r = write(x.map, x.index, x.value);
        if (r.isErr()) {
          // what is in the maps now is unknown: rewrite everything next time
          installed = { tx: null, rx: new Map([...installed.rx.keys()].map((id) => [id, { keyId: id, key: Buffer.alloc(0), until: 0 }])) };
          return r;
        }
      }
      installed = w.installed;
      return ok(undefined);
    },
  };
}
