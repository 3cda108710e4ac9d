// The policy-routing template of the portals: policy/routing.toml (commented there), read at
// run time relative to the package root so an administrator can move mpctl's tables and rules.
// DEFAULT_POLICY mirrors the shipped file; test/plan.test.ts keeps the two equal.
import { readFile } from 'node:fs/promises';
import { packagePath } from '../paths.js';
import { err, ok, type Result } from 'neverthrow';
import { parse as parseToml } from 'smol-toml';
import { configInvalid, type MpError } from '../errors.js';
import { MAX_LINKS } from '../config/parse.js';

export interface Policy {
  /** routing table of link i: tableBase + i */
  tableBase: number;
  /** priority of `from <source of link i> lookup <table of link i>`: rulePriority + i */
  rulePriority: number;
  /** priority of `fwmark <mark of link i> lookup <table of link i>`: fwmarkPriority + i */
  fwmarkPriority: number;
  /** fwmark of link i: fwmarkBase + i (matched exactly) */
  fwmarkBase: number;
  /** routing table of the segmentation loop: `default dev mpf…a` */
  loopTable: number;
  /** priority of `fwmark <loopMark> lookup <loopTable>` */
  loopPriority: number;
  /** fwmark of a packet the data path sends into the segmentation loop (matched exactly) */
  loopMark: number;
}

export const DEFAULT_POLICY: Policy = {
  tableBase: 201,
  rulePriority: 10100,
  fwmarkPriority: 10000,
  fwmarkBase: 0x6d70_0000,
  loopTable: 200,
  loopPriority: 10050,
  loopMark: 0x6d70_0100,
};

/** `policy/routing.toml` of this package (same path from src/plan/ under tsx and dist/plan/ built). */
export const POLICY_FILE = packagePath('policy', 'routing.toml');

/** The kernel's reserved tables (RT_TABLE_DEFAULT, MAIN, LOCAL) and its main/default rule priorities. */
const RESERVED_TABLES = [253, 254, 255];
const MAIN_RULE_PRIORITY = 32766;
const U32_MAX = 0xffff_ffff;

const KEYS: Record<string, Record<string, keyof Policy>> = {
  tables: { base: 'tableBase', loop: 'loopTable' },
  rules: { fwmark: 'fwmarkPriority', source: 'rulePriority', loop: 'loopPriority' },
  marks: { base: 'fwmarkBase', loop: 'loopMark' },
};

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parsePolicy(raw: unknown, source: string): Result<Policy, MpError> {
  if (!isTable(raw)) return err(configInvalid(source, raw, 'a policy must be a table'));
  const out: Partial<Policy> = {};
  for (const [section, t] of Object.entries(raw)) {
    const keys = KEYS[section];
    if (!keys) return err(configInvalid(section, t, `unknown section (expected one of: ${Object.keys(KEYS).join(', ')})`));
    if (!isTable(t)) return err(configInvalid(section, t, 'must be a table'));
    for (const [k, v] of Object.entries(t)) {
      const field = keys[k];
      if (!field) return err(configInvalid(`${section}.${k}`, v, `unknown key (expected one of: ${Object.keys(keys).join(', ')})`));
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v + MAX_LINKS - 1 > U32_MAX)
        return err(configInvalid(`${section}.${k}`, v, `must be an integer from 1 to ${U32_MAX - MAX_LINKS + 1}`));
      out[field] = v;
    }
  }
  for (const [section, keys] of Object.entries(KEYS))
    for (const [k, field] of Object.entries(keys))
      if (out[field] === undefined) return err(configInvalid(`${section}.${k}`, undefined, 'is required'));
  const p = out as Policy;
  const span = (base: number) => `${base}..${base + MAX_LINKS - 1}`;
  const hit = RESERVED_TABLES.find((t) => t >= p.tableBase && t < p.tableBase + MAX_LINKS);
  if (hit !== undefined)
    return err(configInvalid('tables.base', p.tableBase, `puts the link tables ${span(p.tableBase)} over the kernel's table ${hit}`));
  for (const [k, prio] of [['rules.fwmark', p.fwmarkPriority], ['rules.source', p.rulePriority]] as const)
    if (prio + MAX_LINKS - 1 >= MAIN_RULE_PRIORITY)
      return err(configInvalid(k, prio, `rules ${span(prio)} must come before the main table's rule (${MAIN_RULE_PRIORITY})`));
  if (Math.abs(p.fwmarkPriority - p.rulePriority) < MAX_LINKS)
    return err(configInvalid('rules.source', p.rulePriority, `overlaps the fwmark rules ${span(p.fwmarkPriority)}`));
  const within = (v: number, base: number) => v >= base && v < base + MAX_LINKS;
  if (RESERVED_TABLES.includes(p.loopTable) || within(p.loopTable, p.tableBase))
    return err(configInvalid('tables.loop', p.loopTable, `must be none of the kernel's tables (${RESERVED_TABLES.join(', ')}) nor a link table (${span(p.tableBase)})`));
  if (p.loopPriority >= MAIN_RULE_PRIORITY)
    return err(configInvalid('rules.loop', p.loopPriority, `must come before the main table's rule (${MAIN_RULE_PRIORITY})`));
  for (const [k, base] of [['rules.fwmark', p.fwmarkPriority], ['rules.source', p.rulePriority]] as const)
    if (within(p.loopPriority, base)) return err(configInvalid('rules.loop', p.loopPriority, `is inside the ${k} rules ${span(base)}`));
  if (within(p.loopMark, p.fwmarkBase))
    return err(configInvalid('marks.loop', p.loopMark, `is one of the link marks ${span(p.fwmarkBase)}`));
  return ok(p);
}

export async function loadPolicy(file: string = POLICY_FILE): Promise<Result<Policy, MpError>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return err({ kind: 'NotFound', what: 'policy', message: `cannot read the policy-routing template ${file}` });
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    return err(configInvalid(file, text.slice(0, 40), `not valid TOML: ${(e as Error).message.split('\n')[0]}`));
  }
  return parsePolicy(raw, file);
}
