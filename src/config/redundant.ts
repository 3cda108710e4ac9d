// `[[redundant]]` classes (README "Redundant mode"; bpf/redundant.h): latency-critical traffic sent on
// several links at once, the first copy kept by the receiver.
//
//   [[redundant]]
//   name = "calls"                  # for status and metrics (default: class<index>)
//   dscp = ["EF", "AF41"]           # DSCP names (EF, AFxy, CSx, VA, LE) or numbers 0..63
//   udp_ports = ["3478-3481", 5060] # UDP source or destination port (ranges)
//   prefixes = ["203.0.113.0/24"]   # source or destination address
//   links = 2                       # 2..16, or "all" (every usable link)
//   cap = "2mbit"                   # the copies' rate at most (token bucket); the rest goes once
//
// A packet belongs to the first class one of whose criteria matches (DSCP, or a UDP port, or a
// prefix). A class that names none of dscp, udp_ports and prefixes matches DSCP EF and AF41.
import { err, ok, safeTry, type Result } from 'neverthrow';
import { MP_MAX_LINKS, MP_RED_CLASSES, MP_RED_PORT_RANGES, MP_RED_PREFIXES } from '../datapath/abi.js';
import { configInvalid, type MpError } from '../errors.js';
import { formatRate, parseRate, rateProblem } from '../units.js';
import type { Prefix } from './types.js';
import { canonicalAddress, maskAddress } from './values.js';

export interface RedundantClass {
  /** index in the data path (mp_red_class), order in the file */
  id: number;
  name: string;
  /** DSCP values 0..63 */
  dscp: number[];
  /** inclusive UDP port ranges */
  udpPorts: { lo: number; hi: number }[];
  prefixes: Prefix[];
  /** links each packet goes on: 2..16, or 'all' */
  links: number | 'all';
  /** the copies' rate cap in bit/s (outer bytes of the copies) */
  capBps: number;
}

export const REDUNDANT_DEFAULTS = { dscp: ['EF', 'AF41'], links: 2, cap: '2mbit' } as const;
const KEYS = ['name', 'dscp', 'udp_ports', 'prefixes', 'links', 'cap'];
const NAME_RE = /^[\w.-]{1,16}$/;

/** RFC 2474/2597/3246/5865/8622 names. */
export const DSCP_NAMES: Record<string, number> = {
  ...Object.fromEntries([0, 1, 2, 3, 4, 5, 6, 7].map((x) => [`CS${x}`, x * 8])),
  ...Object.fromEntries([1, 2, 3, 4].flatMap((x) => [1, 2, 3].map((y) => [`AF${x}${y}`, x * 8 + y * 2]))),
  EF: 46,
  VA: 44,
  LE: 1,
};

type R<T> = Result<T, MpError>;
const bad = (path: string, value: unknown, message: string) => err(configInvalid(path, value, message));
const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function redundantClasses(v: unknown): R<RedundantClass[]> {
  return safeTry(function* () {
    if (v === undefined) return ok([]);
    if (!Array.isArray(v) || v.length > MP_RED_CLASSES)
      return bad('redundant', v, `must be at most ${MP_RED_CLASSES} [[redundant]] tables`);
    const out: RedundantClass[] = [];
    for (const [i, t] of v.entries()) {
      const c = yield* redundantClass(t, i);
      const twin = out.find((o) => o.name === c.name);
      if (twin) return bad(`redundant[${i}].name`, c.name, `is already the name of redundant[${twin.id}]`);
      out.push(c);
    }
    return ok(out);
  });
}

function redundantClass(t: unknown, id: number): R<RedundantClass> {
  const at = `redundant[${id}]`;
  return safeTry(function* () {
    if (!isTable(t)) return bad(at, t, 'must be a table ([[redundant]])');
    for (const [k, x] of Object.entries(t))
      if (!KEYS.includes(k)) return bad(`${at}.${k}`, x, `unknown key (expected one of: ${KEYS.join(', ')})`);
    const name = t.name ?? `class${id}`;
    if (typeof name !== 'string' || !NAME_RE.test(name))
      return bad(`${at}.name`, t.name, 'must be 1-16 characters of letters, digits, "_", "-" or "."');
    const none = t.dscp === undefined && t.udp_ports === undefined && t.prefixes === undefined;
    const dscp = yield* dscpList(`${at}.dscp`, none ? [...REDUNDANT_DEFAULTS.dscp] : (t.dscp ?? []));
    const udpPorts = yield* portRanges(`${at}.udp_ports`, t.udp_ports ?? []);
    const prefixes = yield* prefixList(`${at}.prefixes`, t.prefixes ?? []);
    if (dscp.length + udpPorts.length + prefixes.length === 0)
      return bad(at, t, 'matches nothing: give dscp, udp_ports or prefixes (or none of them for DSCP EF and AF41)');
    const links = yield* linkCount(`${at}.links`, t.links ?? REDUNDANT_DEFAULTS.links);
    const capRaw = t.cap ?? REDUNDANT_DEFAULTS.cap;
    const cap = typeof capRaw === 'string' || typeof capRaw === 'number' ? parseRate(capRaw) : undefined;
    if (cap === undefined || cap === null)
      return bad(`${at}.cap`, capRaw, `${rateProblem(capRaw, '"2mbit"')}: the copies' rate must be capped`);
    return ok({ id, name, dscp, udpPorts, prefixes, links, capBps: cap });
  });
}

function dscpList(at: string, v: unknown): R<number[]> {
  if (!Array.isArray(v)) return bad(at, v, 'must be an array of DSCP names ("EF", "AF41", "CS5") or numbers 0..63');
  const out: number[] = [];
  for (const [i, x] of v.entries()) {
    const n = typeof x === 'string' ? DSCP_NAMES[x.toUpperCase()] : typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 63 ? x : undefined;
    if (n === undefined) return bad(`${at}[${i}]`, x, 'is not a DSCP name (EF, AF11..AF43, CS0..CS7, VA, LE) or a number 0..63');
    if (out.includes(n)) return bad(`${at}[${i}]`, x, `is listed twice (DSCP ${n})`);
    out.push(n);
  }
  return ok(out);
}

function portRanges(at: string, v: unknown): R<{ lo: number; hi: number }[]> {
  if (!Array.isArray(v) || v.length > MP_RED_PORT_RANGES)
    return bad(at, v, `must be an array of at most ${MP_RED_PORT_RANGES} ports or ranges ("3478-3481", 5060)`);
  const out: { lo: number; hi: number }[] = [];
  const port = (s: string) => (/^\d{1,5}$/.test(s) && Number(s) >= 1 && Number(s) <= 65535 ? Number(s) : undefined);
  for (const [i, x] of v.entries()) {
    let lo: number | undefined;
    let hi: number | undefined;
    if (typeof x === 'number') lo = hi = Number.isInteger(x) ? port(String(x)) : undefined;
    else if (typeof x === 'string') {
      const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(x);
      lo = m ? port(m[1]!) : undefined;
      hi = m ? (m[2] === undefined ? lo : port(m[2])) : undefined;
    }
    if (lo === undefined || hi === undefined) return bad(`${at}[${i}]`, x, 'is not a port 1..65535 or a range "lo-hi"');
    if (lo > hi) return bad(`${at}[${i}]`, x, `is an empty range (${lo} > ${hi})`);
    out.push({ lo, hi });
  }
  return ok(out);
}

function prefixList(at: string, v: unknown): R<Prefix[]> {
  if (!Array.isArray(v) || v.length > MP_RED_PREFIXES)
    return bad(at, v, `must be an array of at most ${MP_RED_PREFIXES} prefixes ("203.0.113.0/24", "2001:db8::/32")`);
  const out: Prefix[] = [];
  for (const [i, x] of v.entries()) {
    const [addr = '', lenStr, ...rest] = typeof x === 'string' ? x.split('/') : [];
    const a = canonicalAddress(addr);
    const max = a?.family === 4 ? 32 : 128;
    const len = lenStr === undefined ? max : /^\d{1,3}$/.test(lenStr) ? Number(lenStr) : NaN;
    if (!a || rest.length > 0 || !(len >= 1 && len <= max))
      return bad(`${at}[${i}]`, x, 'is not an IPv4 or IPv6 prefix (e.g. "203.0.113.0/24", "2001:db8::/32"; /0 is not allowed)');
    const masked = maskAddress(a.address, len);
    if (masked !== a.address) return bad(`${at}[${i}]`, x, `has host bits set (the prefix is ${masked}/${len})`);
    out.push({ family: a.family, address: a.address, len });
  }
  return ok(out);
}

function linkCount(at: string, v: unknown): R<number | 'all'> {
  if (v === 'all') return ok('all');
  if (typeof v === 'number' && Number.isInteger(v) && v >= 2 && v <= MP_MAX_LINKS) return ok(v);
  return bad(at, v, `must be the number of links each packet goes on (2..${MP_MAX_LINKS}) or "all"`);
}

/** One line per class for `--dry-run` and `config check`: what matches, how many links, the cap. */
export function describeRedundant(c: RedundantClass): string {
  const byValue = new Map(Object.entries(DSCP_NAMES).map(([k, v]) => [v, k]));
  const what = [
    ...(c.dscp.length ? [`DSCP ${c.dscp.map((d) => (byValue.has(d) ? `${byValue.get(d)}(${d})` : String(d))).join(' ')}`] : []),
    ...(c.udpPorts.length ? [`UDP port ${c.udpPorts.map((r) => (r.lo === r.hi ? String(r.lo) : `${r.lo}-${r.hi}`)).join(' ')}`] : []),
    ...(c.prefixes.length ? [`address in ${c.prefixes.map((p) => `${p.address}/${p.len}`).join(' ')}`] : []),
  ].join(' or ');
  return `redundant class ${c.id} ${c.name}: ${what}; on ${c.links === 'all' ? 'every usable link' : `${c.links} links`}, copies capped at ${formatRate(c.capBps)}`;
}
