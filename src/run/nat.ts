// Whole-LAN mode's mappings as the control plane sees them (bpf/nat.h, mp.h "mapping timeouts"):
// the data path treats a mapping idle past its timeout as free; the running portal deletes such
// mappings every MP_NAT_SWEEP_S (sweepNat), and `mpctl status` / /metrics count the live ones
// (natCount). One batch dump of mp_nat_in per call, into a buffer that grows with the table:
// an idle LAN costs one small system call every 10 s.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import * as abi from '../datapath/abi.js';
import { mapDelete, mapDump, mapLookup, type MapFd } from '../native/libmpctl.js';

/** Live mappings (one per flow: mp_nat_in) by protocol, and expired ones not swept yet. */
export interface NatCount {
  mappings: number;
  tcp: number;
  udp: number;
  icmp: number;
  expired: number;
}

const KEY = abi.MP_NAT_KEY.size;
const VAL = abi.MP_NAT_VAL.size;
/** entries the last dump had room for: the next starts there (the table rarely shrinks fast) */
let room = 1024;

/** Every entry of a NAT map (mp_nat_in), as raw key and value buffers. */
export function natDump(fd: MapFd): Result<{ key: Buffer; val: Buffer }[], MpError> {
  for (;;) {
    const d = mapDump(fd, KEY, VAL, room);
    if (d.isErr()) return err(d.error);
    // full: there may be more (the map holds at most MP_NAT_ENTRIES)
    if (d.value.count === room && room < abi.MP_NAT_ENTRIES) {
      room = Math.min(room * 4, abi.MP_NAT_ENTRIES);
      continue;
    }
    const out: { key: Buffer; val: Buffer }[] = [];
    for (let i = 0; i < d.value.count; i++) out.push({ key: d.value.keys.subarray(i * KEY, (i + 1) * KEY), val: d.value.values.subarray(i * VAL, (i + 1) * VAL) });
    return ok(out);
  }
}

const PROTO = abi.offsetOf(abi.MP_NAT_KEY, 'proto');
const STATE = abi.offsetOf(abi.MP_NAT_VAL, 'state');
const LAST = abi.offsetOf(abi.MP_NAT_VAL, 'last_s');

/** Is this reverse entry idle past its timeout at `now` (seconds, natNowS)? As nat.h nat_expired. */
export function natExpired(key: Buffer, val: Buffer, now: number): boolean {
  return ((now - val.readUInt32LE(LAST)) >>> 0) > abi.natTimeoutS(key.readUInt8(PROTO), val.readUInt8(STATE));
}

export function natCount(entries: { key: Buffer; val: Buffer }[], now: number): NatCount {
  const c: NatCount = { mappings: 0, tcp: 0, udp: 0, icmp: 0, expired: 0 };
  for (const e of entries) {
    if (natExpired(e.key, e.val, now)) {
      c.expired++;
      continue;
    }
    c.mappings++;
    const p = e.key.readUInt8(PROTO);
    if (p === 6) c.tcp++;
    else if (p === 17) c.udp++;
    else c.icmp++;
  }
  return c;
}

/** Deletes the expired mappings: each reverse entry (mp_nat_in) and its flow's entry (mp_nat_out)
 * while that still names the port. Returns the count after the sweep. A flow that sends again
 * afterwards gets its port back if free (nat.h), as if the sweep had come a little later. */
export function sweepNat(natIn: MapFd, natOut: MapFd, now: number): Result<NatCount & { deleted: number }, MpError> {
  const all = natDump(natIn);
  if (all.isErr()) return err(all.error);
  let deleted = 0;
  for (const e of all.value) {
    if (!natExpired(e.key, e.val, now)) continue;
    const k = abi.decodeNatKey(e.key);
    const v = abi.decodeNatVal(e.val, k.family);
    const d = mapDelete(natIn, e.key);
    if (d.isErr()) return err(d.error);
    if (d.value) deleted++;
    const flow = abi.encodeNatKey({ family: k.family, proto: k.proto, port: v.port, addr: v.addr });
    const o = mapLookup(natOut, flow, VAL);
    if (o.isErr()) return err(o.error);
    if (o.value && abi.decodeNatVal(o.value, k.family).port === k.port) {
      const r = mapDelete(natOut, flow);
      if (r.isErr()) return err(r.error);
    }
  }
  const c = natCount(all.value, now);
  return ok({ ...c, expired: 0, deleted });
}
