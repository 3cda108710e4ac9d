// Scalar values of a portal config: interface names, addresses, prefixes, byte counts. Each
// checker returns the normalised value or undefined; config/parse.ts turns undefined into a
// ConfigInvalid error naming the key. Rates and durations are src/units.ts's.
import { bufferToIp, ipFamily, ipToBuffer } from '../netlink/ip.js';
import type { Family, Prefix } from './types.js';

/** Linux dev_valid_name(): 1-15 bytes, not `.`/`..`, no `/`, `:` or whitespace. */
export function isIfname(s: unknown): s is string {
  return typeof s === 'string' && /^[^/:\s]{1,15}$/.test(s) && s !== '.' && s !== '..';
}

/** The canonical text of an address (lower case, RFC 5952 zero compression), or undefined. */
export function canonicalAddress(s: unknown): { family: Family; address: string } | undefined {
  if (typeof s !== 'string' || s.includes('%')) return undefined; // no zone ids: the interface is given separately
  const family = ipFamily(s);
  if (family === null) return undefined;
  return { family, address: bufferToIp(ipToBuffer(s)) };
}

/** A unicast address a host can have: not unspecified, loopback, multicast or (IPv4) class E/broadcast. */
export function isUnicast(address: string): boolean {
  const b = ipToBuffer(address);
  if (b.length === 4) return b[0] !== 0 && b[0] !== 127 && b[0]! < 224;
  if (b[0] === 0xff) return false;
  const last = b[15]!;
  return !(b.subarray(0, 15).every((x) => x === 0) && (last === 0 || last === 1));
}

/** fe80::/10 and 169.254.0.0/16: usable as a gateway on a given interface, never as an outer source. */
export function isLinkLocal(address: string): boolean {
  const b = ipToBuffer(address);
  return b.length === 4 ? b[0] === 169 && b[1] === 254 : b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
}

/** `198.51.100.10/32`, `2001:db8::/48`, or a bare address (host length). Host bits must be zero. */
export function parseClientPrefix(s: unknown): Prefix | { error: string } {
  if (typeof s !== 'string') return { error: 'must be a prefix such as "198.51.100.10/32" or "2001:db8:100::/64"' };
  const [addr = '', lenStr, ...rest] = s.split('/');
  const a = canonicalAddress(addr);
  const max = a?.family === 4 ? 32 : 128;
  if (!a || rest.length > 0 || (lenStr !== undefined && (!/^\d{1,3}$/.test(lenStr) || Number(lenStr) > max)))
    return { error: 'is not an IPv4 or IPv6 prefix (e.g. "198.51.100.10/32", "2001:db8:100::/64")' };
  const len = lenStr === undefined ? max : Number(lenStr);
  if (len === 0) return { error: 'is a default route, not a client address' };
  if (!isUnicast(a.address)) return { error: 'is not a unicast address' };
  const masked = maskAddress(a.address, len);
  if (masked !== a.address) return { error: `has host bits set (the prefix is ${masked}/${len})` };
  return { family: a.family, address: a.address, len };
}

/** `address` with every bit after the first `len` cleared. */
export function maskAddress(address: string, len: number): string {
  const b = ipToBuffer(address);
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    b[i] = b[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return bufferToIp(b);
}

export function prefixContains(p: Prefix, address: string): boolean {
  return ipFamily(address) === p.family && maskAddress(address, p.len) === p.address;
}

export const formatPrefix = (p: Prefix): string => `${p.address}/${p.len}`;

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * A byte budget: `10GB`, `500MB`, `1.5TB` (decimal, as ISPs count data caps), `20GiB` (binary),
 * or 0 / "0" for none. Case-insensitive.
 */
export function parseBytes(s: unknown): number | undefined {
  if (s === 0 || s === '0') return 0;
  if (typeof s !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/.exec(s.trim().toLowerCase());
  const unit = m ? BYTE_UNITS[m[2]!] : undefined;
  if (!m || unit === undefined) return undefined;
  const v = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(v) ? v : undefined;
}
