// A non-root shell next to a root portal, below the CLI: isAlive takes EPERM (the process is
// there, it is not ours) for alive, and writePortalState reports a directory it cannot write as an
// err Result instead of throwing. test/cli.test.ts covers the CLI's exit 5, where the record's read
// fails before isAlive is asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from '../src/proc.js';

const ROOT = join(import.meta.dirname, '..');
const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/** Runs `code` (an ES module body, tsx on) as nobody and returns what it printed as JSON. */
function asNobody(code: string, env: Record<string, string> = {}): unknown {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
    uid: NOBODY,
    gid: NOBODY,
  });
  assert.equal(r.status, 0, `child as nobody: ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}

/** A pid that existed and is gone (reaped). */
function deadPid(): number {
  const r = spawnSync('true');
  assert.equal(r.status, 0);
  return r.pid!;
}

test('isAlive: a process we may not signal (EPERM, a root portal seen by a non-root shell) is alive', () => {
  const dead = deadPid();
  if (!asRoot) {
    assert.throws(() => process.kill(1, 0), { code: 'EPERM' });
    assert.equal(isAlive(1), true);
    assert.equal(isAlive(dead), false);
    return;
  }
  // pid 1 is root's: nobody's signal 0 gets EPERM
  const seen = asNobody(
    `const { isAlive } = await import(${JSON.stringify(join(ROOT, 'src', 'proc.ts'))});
     let code = null; try { process.kill(1, 0); } catch (e) { code = e.code; }
     console.log(JSON.stringify({ code, one: isAlive(1), self: isAlive(process.pid), dead: isAlive(${dead}) }));`,
  );
  assert.deepEqual(seen, { code: 'EPERM', one: true, self: true, dead: false });
  assert.equal(isAlive(process.pid), true);
  assert.equal(isAlive(dead), false, 'ESRCH: gone');
});

test('isAlive: a process that exited and waits to be reaped (a zombie) is not alive; its parent is', async () => {
  // sh starts `true` in the background and becomes `sleep`, which never reaps it
  const parent = spawn('sh', ['-c', 'true & exec sleep 5'], { stdio: 'ignore' });
  try {
    const children = () => readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    const state = (pid: number) => { const s = readFileSync(`/proc/${pid}/stat`, 'utf8'); return s.charAt(s.lastIndexOf(')') + 2); };
    let zombie: number | undefined;
    for (let i = 0; i < 200 && zombie === undefined; i++) {
      zombie = children().find((c) => state(c) === 'Z');
      if (zombie === undefined) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(zombie !== undefined, 'the background child exited and stays unreaped');
    assert.doesNotThrow(() => process.kill(zombie!, 0), 'signal 0 still finds it');
    assert.equal(isAlive(zombie), false);
    assert.equal(isAlive(parent.pid!), true);
  } finally {
    parent.kill('SIGKILL');
  }
});

test('writePortalState: a run directory it cannot write is an err Result, not a throw', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpctl-state-'));
  try {
    const record = { version: 1, instance: 'x', role: 'local', pid: process.pid, configFile: '/etc/mpctl/x.toml', startedAt: '', netns: '', pinDir: '', undo: [] };
    // a file where the run directory should be: mkdir fails for root too (ENOTDIR)
    writeFileSync(join(dir, 'file'), '');
    process.env.MPCTL_RUN_DIR = join(dir, 'file', 'run');
    const { writePortalState } = await import('../src/apply/state.js');
    const r = await writePortalState(record as Parameters<typeof writePortalState>[0]);
    assert.ok(r.isErr(), 'an err Result');
    assert.equal(r.error.kind, 'NativeFailed');
    assert.match(JSON.stringify(r.error), /ENOTDIR/);
    assert.match(JSON.stringify(r.error), /file\/run\/portal\/x\/state\.json/);
    if (!asRoot) return;
    // a non-root shell and root's run directory (0755): permission denied, as a Result
    const run = join(dir, 'run');
    mkdirSync(run);
    chmodSync(dir, 0o755);
    chmodSync(run, 0o755);
    const seen = asNobody(
      `const { writePortalState } = await import(${JSON.stringify(join(ROOT, 'src', 'apply', 'state.ts'))});
       let out;
       try { const r = await writePortalState(${JSON.stringify(record)}); out = r.isErr() ? { err: r.error } : { ok: true }; }
       catch (e) { out = { threw: String(e) }; }
       console.log(JSON.stringify(out));`,
      { MPCTL_RUN_DIR: run },
    );
    assert.deepEqual(seen, { err: { kind: 'PermissionDenied', message: `cannot write ${run}/portal/x/state.json: permission denied (portals run as root; run mpctl as root)` } });
  } finally {
    delete process.env.MPCTL_RUN_DIR;
    rmSync(dir, { recursive: true, force: true });
  }
});
