// The CLI as a process: usage errors (one line, exit 2), typed options, a non-root shell that
// meets a root portal (exit 5, not "not up"), `status --watch | head -3` leaving quietly, and
// bin/mpctl never running a stale build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bpfClose, bpffsMount, bpfOpenLoad } from '../src/native/libmpctl.js';
import { BPFFS_ROOT } from '../src/plan/pins.js';

const ROOT = join(import.meta.dirname, '..');
const MPCTL = join(ROOT, 'bin', 'mpctl');
const cli = (args: string[], o: { env?: Record<string, string>; uid?: number } = {}) =>
  spawnSync(MPCTL, args, {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...o.env },
    ...(o.uid !== undefined ? { uid: o.uid, gid: o.uid } : {}),
  });

const USAGE: [string[], RegExp][] = [
  [['status'], /^mpctl: Missing required argument: instance \(mpctl status --help shows the options\)$/],
  [['frob'], /^mpctl: Unknown argument: frob \(mpctl --help shows the options\)$/],
  [['status', '-i', 'Home'], /^mpctl: --instance must be 1-16 lower-case letters.*\(got "Home"\) \(mpctl status --help/],
  [['down'], /^mpctl: give --config or --instance \(mpctl down --help/],
  [['link', 'dsl', 'sideways', '-i', 'local'], /^mpctl: Invalid values: Argument: state, Given: "sideways", Choices: "down", "up" \(mpctl link --help/],
  [['lab', 'bench', '--runs', '0'], /^mpctl: --runs must be an integer from 1 to 100 \(mpctl lab bench --help/],
  [['lab', 'bench', 'nosuch'], /^mpctl: no benchmark "nosuch" \(benchmarks: 2x20,/],
  [['lab', 'up', '--links', 'many'], /^mpctl: --links must be an integer from 1 to 16/],
  [['lab', 'up', '--shape', '--no-routed-hosts'], /^mpctl: --shape needs routed hosts \(drop --no-routed-hosts\)/],
  [['lab', 'check', '--seconds', '0'], /^mpctl: --seconds must be a number above 0/],
  [['lab', 'frob'], /^mpctl: give a lab command: up, down/],
];

for (const [args, msg] of USAGE) {
  test(`usage error: mpctl ${args.join(' ')} is one line and exit 2`, () => {
    const r = cli(args);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trimEnd(), msg);
  });
}

test('an absent value is never quoted as (got undefined) or (got null)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpctl-cli-'));
  try {
    writeFileSync(join(dir, 'lp.toml'), 'role = "local"\ninsecure_no_auth = true\n');
    const r = cli(['config', 'check', join(dir, 'lp.toml')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^mpctl: client: is required/);
    assert.doesNotMatch(r.stderr, /\(got (undefined|null)\)/);
    const a = cli(['attach', '-i', 'local']); // stdin and stdout are pipes here
    assert.equal(a.status, 2);
    assert.equal(a.stderr, 'mpctl: attach: needs a terminal; use mpctl status --watch instead\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A portal record as root leaves it (/run/mpctl/portal is 0700), with a live pid: this process.
const asRoot = process.getuid?.() === 0;
test('a non-root shell is told it lacks permission (exit 5), not that the portal is down', { skip: !asRoot && 'needs root to set up the record and drop to nobody' }, () => {
  const run = mkdtempSync(join(tmpdir(), 'mpctl-cli-run-'));
  try {
    chmodSync(run, 0o755);
    mkdirSync(join(run, 'portal', 'x'), { recursive: true, mode: 0o700 });
    chmodSync(join(run, 'portal'), 0o700);
    writeFileSync(join(run, 'portal', 'x', 'state.json'), JSON.stringify({ version: 1, instance: 'x', role: 'local', pid: process.pid, undo: [] }));
    const env = { MPCTL_RUN_DIR: run };
    for (const args of [['status', '-i', 'x'], ['down', '-i', 'x'], ['link', 'dsl', 'down', '-i', 'x']]) {
      const r = cli(args, { env, uid: 65534 });
      assert.equal(r.status, 5, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^mpctl: cannot read .*state\.json: permission denied \(portals run as root; run mpctl as root\)\n$/);
    }
    const lab = cli(['lab', 'up', '--name', 'nonroot'], { env, uid: 65534 });
    assert.equal(lab.status, 5, lab.stderr);
    assert.equal(lab.stderr, 'mpctl: the lab creates network namespaces and emulated links: run it as root\n');
    // a record that is not one is a conflict, never "not up" (up would overwrite its undo log)
    writeFileSync(join(run, 'portal', 'x', 'state.json'), '{"version": 1, "undo": [');
    const bad = cli(['down', '-i', 'x'], { env });
    assert.equal(bad.status, 4, bad.stderr);
    assert.match(bad.stderr, /is not a portal record; it may hold the undo log/);
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

// `mpctl status --watch | head -3`: head leaves after three lines, the next frame's write meets a
// closed pipe (EPIPE) and mpctl leaves quietly with 0 — no stack trace. The portal is a record with
// this process's pid and the maps of build/bpf/mpctl.o pinned where its record says.
test('status --watch into a pipe that closes (| head -3) exits 0 without a word on stderr', { skip: !asRoot && 'needs root to pin the maps' }, () => {
  const run = mkdtempSync(join(tmpdir(), 'mpctl-cli-epipe-'));
  const pin = join(BPFFS_ROOT, `test-epipe-${process.pid}`);
  const mounted = bpffsMount(BPFFS_ROOT);
  assert.ok(mounted.isOk(), JSON.stringify(mounted));
  const obj = bpfOpenLoad(join(ROOT, 'build', 'bpf', 'mpctl.o'), pin);
  assert.ok(obj.isOk(), JSON.stringify(obj));
  try {
    mkdirSync(join(run, 'portal', 'x'), { recursive: true });
    const record = { version: 1, instance: 'x', role: 'local', pid: process.pid, configFile: join(run, 'none.toml'), startedAt: new Date().toISOString(), netns: '', pinDir: pin, undo: [] };
    writeFileSync(join(run, 'portal', 'x', 'state.json'), JSON.stringify(record));
    const r = spawnSync('bash', ['-c', `set -o pipefail; '${MPCTL}' status --watch -i x | head -3`], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, MPCTL_RUN_DIR: run },
    });
    assert.equal(r.stdout.split('\n').length, 4, `three lines through head: ${r.stdout}`);
    assert.match(r.stdout, /^portal x \(local\) pid \d+/);
    assert.equal(r.stderr, '', 'no stack trace, no error');
    assert.equal(r.status, 0, 'pipefail: mpctl itself exited 0');
  } finally {
    bpfClose(obj.value);
    rmSync(pin, { recursive: true, force: true });
    rmSync(run, { recursive: true, force: true });
  }
});

test('bin/mpctl runs the build only while the sources are what it was built from', () => {
  const root = mkdtempSync(join(tmpdir(), 'mpctl-stale-'));
  try {
    for (const d of ['bin', 'scripts', 'dist/cli', 'src/cli', 'src/x']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(MPCTL, join(root, 'bin', 'mpctl'));
    copyFileSync(join(ROOT, 'scripts', 'source-stamp.mjs'), join(root, 'scripts', 'source-stamp.mjs'));
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    writeFileSync(join(root, 'package.json'), '{"type": "module"}\n');
    writeFileSync(join(root, 'dist', 'cli', 'main.js'), "console.log('dist');\n");
    writeFileSync(join(root, 'src', 'cli', 'main.ts'), "const from: string = 'src';\nconsole.log(from);\n");
    writeFileSync(join(root, 'src', 'x', 'gone.ts'), 'export {};\n');
    const build = () => execFileSync(process.execPath, [join(root, 'scripts', 'source-stamp.mjs')]);
    const at = (f: string, s: number) => utimesSync(join(root, f), s, s);
    const which = () => spawnSync(process.execPath, [join(root, 'bin', 'mpctl')], { encoding: 'utf8' }).stdout.trim();
    assert.equal(which(), 'src', 'a build without a stamp: the sources');
    build();
    assert.equal(which(), 'dist', 'a current build is used');
    // an edit that kept an old time (a copy with cp -p, tar, rsync -t): mtimes would miss it
    const old = Date.now() / 1000 - 3600;
    writeFileSync(join(root, 'src', 'cli', 'main.ts'), "const from: string = 'src';\nconsole.log(from); // edited\n");
    at('src/cli/main.ts', old);
    assert.equal(which(), 'src', 'an edited source wins, whatever its time');
    build();
    assert.equal(which(), 'dist');
    rmSync(join(root, 'src', 'x', 'gone.ts'));
    assert.equal(which(), 'src', 'a deleted source: the build is stale');
    build();
    writeFileSync(join(root, 'package.json'), '{"type": "module", "x": 1}\n');
    assert.equal(which(), 'src', 'package.json changed: the build is stale');
    rmSync(join(root, 'dist'), { recursive: true });
    assert.equal(which(), 'src', 'no build: the sources');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('every command but the bench plots starts without vega (an --omit=optional install)', () => {
  // a copy of the package whose node_modules lacks the optional vega and vega-lite
  const root = mkdtempSync(join(tmpdir(), 'mpctl-novega-'));
  try {
    for (const d of ['bin', 'src', 'policy', 'build']) cpSync(join(ROOT, d), join(root, d), { recursive: true });
    copyFileSync(join(ROOT, 'package.json'), join(root, 'package.json'));
    mkdirSync(join(root, 'node_modules'));
    for (const p of readdirSync(join(ROOT, 'node_modules')))
      if (p !== 'vega' && p !== 'vega-lite' && !p.startsWith('.')) symlinkSync(join(ROOT, 'node_modules', p), join(root, 'node_modules', p));
    const mpctl = (args: string[]) => spawnSync(process.execPath, [join(root, 'bin', 'mpctl'), ...args], { encoding: 'utf8', timeout: 60_000 });
    const status = mpctl(['status', '-i', 'nosuch']);
    assert.equal(status.stderr, 'mpctl: portal "nosuch" is not up\n');
    assert.equal(status.status, 3);
    assert.equal(mpctl(['lab', 'bench', '--help']).status, 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
