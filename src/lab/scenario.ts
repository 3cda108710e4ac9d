// Lab scenarios: how many links and each link's per-direction settings, from a JSON or TOML file,
// from CLI flags, or the embedded default. Validation names the offending key and quotes the value.
//
//   # scenario.toml
//   [[links]]
//   label  = "dsl"
//   rate   = "20mbit"        # both directions …
//   delay  = "10ms"
//   [links.up]              # … unless overridden per direction (up = lp → rp)
//   rate   = "5mbit"
//
// Keys (per link or per direction): rate, delay, jitter, loss (percent), queue, outage (bool),
// mtu (a smaller MTU inside the ISP: 576..9000 or "none"), mtu_icmp (bool, default true: the
// ISP's router answers too-big packets with ICMP; false: they vanish, a path MTU black hole),
// if_mtu (the link's interface MTU on both sides).
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { err, ok, type Result } from 'neverthrow';
import { configInvalid, type MpError } from '../errors.js';
import { linkNode, MAX_LINKS } from './topology.js';
import {
  DEFAULT_DIR,
  parseDuration,
  parseLoss,
  parseMtu,
  parseQueue,
  parseRate,
  type DirSettings,
  type LinkSettings,
} from './params.js';

export interface Scenario {
  links: LinkSettings[];
}

/** A change to one direction's settings (from `lab set` flags or a scenario table). */
export type DirPatch = Partial<DirSettings>;

const DIR_KEYS = ['rate', 'delay', 'jitter', 'loss', 'queue', 'outage', 'mtu', 'mtu_icmp', 'if_mtu'] as const;
const LINK_KEYS = [...DIR_KEYS, 'label', 'up', 'down'] as const;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates the direction keys of `raw` into a patch; unknown keys are errors. */
export function parseDirPatch(
  raw: Record<string, unknown>,
  keyPath: (key: string) => string,
  allowed: readonly string[] = DIR_KEYS,
): Result<DirPatch, MpError> {
  const p: DirPatch = {};
  for (const [k, v] of Object.entries(raw)) {
    const at = keyPath(k);
    if (!allowed.includes(k)) return err(configInvalid(at, v, `unknown key (expected one of: ${allowed.join(', ')})`));
    if (k === 'up' || k === 'down' || k === 'label') continue;
    if (k === 'outage' || k === 'mtu_icmp') {
      if (typeof v !== 'boolean') return err(configInvalid(at, v, 'must be true or false'));
      if (k === 'outage') p.down = v;
      else p.mtuIcmp = v;
      continue;
    }
    if (typeof v !== 'string' && typeof v !== 'number') return err(configInvalid(at, v, 'must be a string or number'));
    switch (k) {
      case 'rate': {
        const r = parseRate(v);
        if (r === undefined) return err(configInvalid(at, v, 'is not a rate between 8kbit and 100gbit (e.g. "20mbit", "none")'));
        p.rateBps = r;
        break;
      }
      case 'delay':
      case 'jitter': {
        const d = parseDuration(v);
        if (d === undefined) return err(configInvalid(at, v, 'is not a duration up to 10s (e.g. "40ms", "250us")'));
        if (k === 'delay') p.delayUs = d;
        else p.jitterUs = d;
        break;
      }
      case 'loss': {
        const l = parseLoss(v);
        if (l === undefined) return err(configInvalid(at, v, 'is not a loss percentage between 0 and 100 (e.g. "2%")'));
        p.lossPpm = l;
        break;
      }
      case 'mtu':
      case 'if_mtu': {
        const m = parseMtu(v);
        if (m === undefined) return err(configInvalid(at, v, 'is not an MTU from 576 to 9000 (or "none")'));
        if (k === 'mtu') p.mtu = m;
        else p.ifMtu = m;
        break;
      }
      case 'queue': {
        const q = parseQueue(v);
        if (q === undefined) return err(configInvalid(at, v, 'is not a queue size (e.g. "100pkt", "64kb", "50ms")'));
        p.queue = q;
        break;
      }
    }
  }
  return ok(p);
}

export const applyPatch = (d: DirSettings, p: DirPatch): DirSettings => ({ ...d, ...p });

export function defaultLink(k: number, label = `link${k}`): LinkSettings {
  return { node: linkNode(k), label, up: { ...DEFAULT_DIR }, down: { ...DEFAULT_DIR } };
}

export function parseScenario(raw: unknown, source: string): Result<Scenario, MpError> {
  if (!isObj(raw)) return err(configInvalid(source, raw, 'a scenario must be a table with a `links` array'));
  for (const k of Object.keys(raw))
    if (k !== 'links') return err(configInvalid(k, raw[k], 'unknown key (expected: links)'));
  const links = raw.links;
  if (!Array.isArray(links) || links.length < 1 || links.length > MAX_LINKS)
    return err(configInvalid('links', links, `must be an array of 1 to ${MAX_LINKS} links`));
  const out: LinkSettings[] = [];
  for (const [i, l] of links.entries()) {
    const at = `links[${i}]`;
    if (!isObj(l)) return err(configInvalid(at, l, 'must be a table'));
    const both = parseDirPatch(l, (k) => `${at}.${k}`, LINK_KEYS);
    if (both.isErr()) return err(both.error);
    if (l.label !== undefined && (typeof l.label !== 'string' || !/^[\w.-]{1,16}$/.test(l.label)))
      return err(configInvalid(`${at}.label`, l.label, 'must be 1-16 letters, digits, ".", "_" or "-"'));
    const link = defaultLink(i + 1, typeof l.label === 'string' ? l.label : undefined);
    for (const dir of ['up', 'down'] as const) {
      let d = applyPatch(link[dir], both.value);
      const sub = l[dir];
      if (sub !== undefined) {
        if (!isObj(sub)) return err(configInvalid(`${at}.${dir}`, sub, 'must be a table'));
        const p = parseDirPatch(sub, (k) => `${at}.${dir}.${k}`);
        if (p.isErr()) return err(p.error);
        d = applyPatch(d, p.value);
      }
      link[dir] = d;
    }
    out.push(link);
  }
  return ok({ links: out });
}

export async function loadScenario(file: string): Promise<Result<Scenario, MpError>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return err({ kind: 'NotFound', what: 'scenario', message: `cannot read scenario file ${file}` });
  }
  let raw: unknown;
  try {
    raw = extname(file) === '.json' ? JSON.parse(text) : parseToml(text);
  } catch (e) {
    return err(configInvalid(file, text.slice(0, 40), `not valid ${extname(file) === '.json' ? 'JSON' : 'TOML'}: ${(e as Error).message.split('\n')[0]}`));
  }
  return parseScenario(raw, file);
}

/**
 * The embedded default: three unequal links like a small site's DSL, 4G and satellite uplinks.
 * Rates are symmetric so a single iperf3 flow shows the sum in either direction.
 */
export const DEFAULT_SCENARIO_RAW = {
  links: [
    { label: 'dsl', rate: '20mbit', delay: '10ms', queue: '50ms' },
    { label: '4g', rate: '10mbit', delay: '25ms', jitter: '2ms', queue: '80ms' },
    { label: 'sat', rate: '30mbit', delay: '40ms', jitter: '1ms', queue: '50ms' },
  ],
};

export function defaultScenario(): Scenario {
  return parseScenario(DEFAULT_SCENARIO_RAW, 'default scenario')._unsafeUnwrap();
}

/** `--links N` without a file: N identical unshaped links with no delay. */
export function uniformScenario(n: number): Result<Scenario, MpError> {
  if (!Number.isInteger(n) || n < 1 || n > MAX_LINKS) return err(configInvalid('--links', n, `must be 1..${MAX_LINKS}`));
  return ok({ links: Array.from({ length: n }, (_, i) => defaultLink(i + 1)) });
}
