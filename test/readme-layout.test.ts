// The README's "## Layout" against the tree: every path it names exists, every folder of src/
// (and below) and every top-level folder is named, and a folder whose files it lists in
// parentheses (`bench/: … (bench.ts, …)`) is listed in full. A move or a new folder that the
// README does not follow fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
/** Not in git: made by scripts/setup.sh (.gitignore), so the Layout may name them unchecked. */
const BUILT = /^(dist|build|node_modules)\/|\.(so|o)$/;

interface Entry {
  /** the path at the start of the line: `src/cli/`, `bin/mpctl`, `src/errors.ts` */
  path: string;
  /** the text after it, continuation lines included */
  text: string;
}

function layout(): Entry[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Layout\n'));
  const block = /```\n([\s\S]*?)\n```/.exec(section)?.[1];
  assert.ok(block, 'README "## Layout" has a code block');
  const entries: Entry[] = [];
  for (const line of block.split('\n')) {
    const m = /^(\S+)\s*(.*)$/.exec(line);
    if (m) entries.push({ path: m[1]!, text: m[2]! });
    else entries.at(-1)!.text += ` ${line.trim()}`;
  }
  return entries;
}

/** Every file and folder under `dir` (relative, folders with a trailing /), build outputs skipped. */
function tree(dir = ''): string[] {
  const out: string[] = [];
  for (const d of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${d.name}` : d.name;
    if (d.name.startsWith('.') || BUILT.test(`${rel}${d.isDirectory() ? '/' : ''}`)) continue;
    if (d.isDirectory()) out.push(`${rel}/`, ...tree(rel));
    else out.push(rel);
  }
  return out;
}

/** File and folder names in an entry's text: `exit.ts`, `bench/`, `fixtures/traces/`, `mpctl@.service`. */
const namesIn = (text: string): string[] =>
  [...text.matchAll(/(?<![\w/.@-])([\w@.-]+(?:\/[\w@.-]+)*(?:\.(?:tsx?|mjs|c|h|sh|md|json|toml|nix|service|mount|so)\b|\/))(?![\w@.-])/g)].map((m) => m[1]!);

const all = tree();
const base = (e: Entry) => (e.path.endsWith('/') ? e.path : `${posix.dirname(e.path)}/`.replace(/^\.\//, ''));

/** Where a name of `e`'s text is: under the entry's folder (at any depth) or from the top. */
function resolve(e: Entry, name: string): string | undefined {
  const b = base(e);
  return [`${b}${name}`, name].find((p) => all.includes(p)) ?? all.find((p) => p.startsWith(b) && p.endsWith(`/${name}`));
}

test('README Layout: every path it names exists', () => {
  const entries = layout();
  assert.ok(entries.length > 20, `${entries.length} entries`);
  const missing: string[] = [];
  for (const e of entries) {
    if (!BUILT.test(e.path) && !existsSync(join(ROOT, e.path))) missing.push(e.path);
    for (const n of namesIn(e.text)) if (!BUILT.test(n) && !resolve(e, n)) missing.push(`${e.path}: ${n}`);
  }
  assert.deepEqual(missing, [], 'named in the Layout, not in the tree');
});

test('README Layout: every folder of src/, every file at the top of src/ and every top-level folder is named', () => {
  const entries = layout();
  const named = new Set<string>();
  const add = (p: string) => {
    // a path names its folders too: `bin/mpctl` names bin/
    for (let at = p.indexOf('/'); at !== -1; at = p.indexOf('/', at + 1)) named.add(p.slice(0, at + 1));
    named.add(p);
  };
  for (const e of entries) {
    add(e.path);
    for (const n of namesIn(e.text)) {
      const p = resolve(e, n);
      if (p) add(p);
    }
  }
  const want = all.filter((p) => (p.startsWith('src/') && (p.endsWith('/') || !p.slice(4).includes('/'))) || /^[^/]+\/$/.test(p));
  assert.ok(want.includes('src/lab/bench/') && want.includes('src/units.ts') && want.includes('bpf/'), want.join(' '));
  assert.deepEqual(want.filter((p) => !named.has(p)), [], 'in the tree, not named in the Layout');
});

test('README Layout: a folder whose files it lists in parentheses is listed in full', () => {
  let lists = 0;
  for (const e of layout()) {
    for (const m of e.text.matchAll(/(?<![\w/.-])([\w-]+\/): [^(]*\(([^)]*)\)/g)) {
      const dir = resolve(e, m[1]!);
      assert.ok(dir && statSync(join(ROOT, dir)).isDirectory(), `${e.path}: ${m[1]} is a folder`);
      const listed = m[2]!.split(/,\s*/).map((s) => s.trim()).sort();
      const files = readdirSync(join(ROOT, dir)).filter((f) => statSync(join(ROOT, dir, f)).isFile()).sort();
      assert.deepEqual(listed, files, `the files of ${dir}`);
      lists++;
    }
  }
  assert.ok(lists >= 1, 'src/lab/ lists bench/');
});
