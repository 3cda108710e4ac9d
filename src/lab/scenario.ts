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
//   [links.down]
//   trace  = "lte.trace"     # Mahimahi delivery opportunities instead of a constant rate
//   schedule = [ { at = "15s", delay = "40ms" }, { at = "30s", delay = "10ms" } ]
//   repeat = "30s"           # the schedule starts over every 30 s
//
// Keys (per link or per direction): rate, delay, jitter, loss (percent), queue, outage (bool),
// trace (file, relative to the scenario file; "none"), schedule (timed changes: `at` plus any
// of the keys before), repeat (the schedule's period),
// mtu (a smaller MTU inside the ISP: 576..9000 or "none"), mtu_icmp (bool, default true: the
// ISP's router answers too-big packets with ICMP; false: they vanish, a path MTU black hole),
// if_mtu (the link's interface MTU on both sides).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { err, ok, type Result } from 'neverthrow';
import { configInvalid, type MpError } from '../errors.js';
import { parseTomlText } from '../config/parse.js';
import { linkNode, MAX_LINKS } from './topology.js';
import {
  DEFAULT_DIR,
  parseDuration,
  parseLoss,
  parseMtu,
  parseQueue,
  parseRate,
  parseSpan,
  parseTrace,
  rateProblem,
  TRACE_OPP_BYTES,
  type DirSettings,
  type LinkSettings,
  type ScheduleStep,
  type TraceInfo,
} from './params.js';

export interface Scenario {
  links: LinkSettings[];
}

/** A change to one direction's settings (from `lab set` flags or a scenario table). */
export type DirPatch = Partial<DirSettings>;

/** Keys of a change (a scenario's settings, a schedule step, `lab set`). */
const PATCH_KEYS = ['rate', 'delay', 'jitter', 'loss', 'queue', 'outage', 'trace', 'mtu', 'mtu_icmp', 'if_mtu'] as const;
/** Keys of a direction table: a change plus its schedule. */
const DIR_KEYS = [...PATCH_KEYS, 'schedule', 'repeat'] as const;
const LINK_KEYS = [...DIR_KEYS, 'label', 'up', 'down'] as const;
const STEP_KEYS = ['at', ...PATCH_KEYS] as const;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates the direction keys of `raw` into a patch; unknown keys are errors. */
export function parseDirPatch(
  raw: Record<string, unknown>,
  keyPath: (key: string) => string,
  allowed: readonly string[] = PATCH_KEYS,
  baseDir = process.cwd(),
): Result<DirPatch, MpError> {
  const p: DirPatch = {};
  for (const [k, v] of Object.entries(raw)) {
    const at = keyPath(k);
    if (!allowed.includes(k)) return err(configInvalid(at, v, `unknown key (expected one of: ${allowed.join(', ')})`));
    if (k === 'up' || k === 'down' || k === 'label' || k === 'at') continue;
    if (k === 'schedule') {
      const sch = parseSchedule(v, at, baseDir);
      if (sch.isErr()) return err(sch.error);
      p.schedule = sch.value;
      continue;
    }
    if (k === 'trace') {
      const t = loadTrace(v, at, baseDir);
      if (t.isErr()) return err(t.error);
      p.trace = t.value;
      continue;
    }
    if (k === 'repeat') {
      const r = parseSpan(v as string);
      if (r === undefined || r === 0) return err(configInvalid(at, v, 'is not a period up to a day (e.g. "60s", "2min")'));
      p.repeatUs = r;
      continue;
    }
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
        if (r === undefined) return err(configInvalid(at, v, rateProblem(v, '"20mbit", "none"')));
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

/** `trace = "file"`: a Mahimahi trace file, read and checked now (linkem reads it again). */
export function loadTrace(v: unknown, at: string, baseDir: string): Result<TraceInfo | null, MpError> {
  if (typeof v !== 'string' || v.trim() === '') return err(configInvalid(at, v, 'must be a trace file name or "none"'));
  if (v === 'none') return ok(null);
  const file = resolve(baseDir, v);
  if (/[\s,]/.test(file)) return err(configInvalid(at, v, 'the trace file\'s path must not contain spaces or commas'));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return err(configInvalid(at, v, `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`));
  }
  const t = parseTrace(text);
  if (typeof t === 'string') return err(configInvalid(at, v, `is not a Mahimahi trace: ${t}`));
  return ok({ file, lines: t.lines, periodMs: t.periodMs, meanBps: Math.round((t.lines * TRACE_OPP_BYTES * 8) / t.periodMs) * 1000 });
}

/** `schedule = [{ at = "15s", delay = "40ms" }, …]`: steps in time order, each a change. */
function parseSchedule(v: unknown, at: string, baseDir: string): Result<ScheduleStep[], MpError> {
  if (!Array.isArray(v)) return err(configInvalid(at, v, 'must be an array of { at = "15s", <key> = <value>, … }'));
  const out: ScheduleStep[] = [];
  for (const [i, step] of v.entries()) {
    const sat = `${at}[${i}]`;
    if (!isObj(step)) return err(configInvalid(sat, step, 'must be a table with `at` and the settings to change'));
    const when = step.at === undefined ? undefined : parseSpan(step.at as string);
    if (when === undefined) return err(configInvalid(`${sat}.at`, step.at, 'is not a time from the start of the schedule (e.g. "15s", "500ms")'));
    const prev = out[out.length - 1];
    if (prev && when < prev.atUs) return err(configInvalid(`${sat}.at`, step.at, 'is before the previous step'));
    const p = parseDirPatch(step, (k) => `${sat}.${k}`, STEP_KEYS, baseDir);
    if (p.isErr()) return err(p.error);
    if (Object.keys(p.value).length === 0) return err(configInvalid(sat, step, 'changes nothing (give a setting next to `at`)'));
    out.push({ atUs: when, patch: p.value });
  }
  return ok(out);
}

export function defaultLink(k: number, label = `link${k}`): LinkSettings {
  return { node: linkNode(k), label, up: { ...DEFAULT_DIR }, down: { ...DEFAULT_DIR } };
}

export function parseScenario(raw: unknown, source: string, baseDir = process.cwd()): Result<Scenario, MpError> {
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
    const both = parseDirPatch(l, (k) => `${at}.${k}`, LINK_KEYS, baseDir);
    if (both.isErr()) return err(both.error);
    if (l.label !== undefined && (typeof l.label !== 'string' || !/^[\w.-]{1,16}$/.test(l.label)))
      return err(configInvalid(`${at}.label`, l.label, 'must be 1-16 letters, digits, ".", "_" or "-"'));
    const link = defaultLink(i + 1, typeof l.label === 'string' ? l.label : undefined);
    for (const dir of ['up', 'down'] as const) {
      let d = applyPatch(link[dir], both.value);
      const sub = l[dir];
      if (sub !== undefined) {
        if (!isObj(sub)) return err(configInvalid(`${at}.${dir}`, sub, 'must be a table'));
        const p = parseDirPatch(sub, (k) => `${at}.${dir}.${k}`, DIR_KEYS, baseDir);
        if (p.isErr()) return err(p.error);
        d = applyPatch(d, p.value);
      }
      const last = d.schedule[d.schedule.length - 1];
      if (d.repeatUs !== null && (!last || d.repeatUs <= last.atUs))
        return err(configInvalid(`${at}${sub !== undefined && isObj(sub) && 'repeat' in sub ? `.${dir}` : ''}.repeat`, d.repeatUs / 1e6 + 's', last ? 'must be longer than the last step\'s `at`' : 'needs a schedule'));
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
  if (extname(file) !== '.json') return parseTomlText(text, file).andThen((raw) => parseScenario(raw, file));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return err(configInvalid(file, undefined, `not valid JSON: ${(e as Error).message.split('\n')[0]}`));
  }
  return parseScenario(raw, file, dirname(resolve(file)));
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
