// The background portal's log (/run/mpctl/log/<instance>.log) is moved aside when it grew past
// its cap, before a portal starts appending to it, and while it runs (in place): /run is memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rotateLog } from '../src/cli/background.js';

test('rotateLog: under the cap it stays; over it, it becomes <log>.1, replacing the previous one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mpctl-log-'));
  try {
    const log = join(dir, 'p.log');
    await rotateLog(log, 10); // absent: nothing to do
    await writeFile(log, 'short\n');
    await rotateLog(log, 10);
    assert.equal(await readFile(log, 'utf8'), 'short\n');
    await writeFile(log, 'first run, long enough\n');
    await rotateLog(log, 10);
    assert.equal(existsSync(log), false);
    assert.equal(await readFile(`${log}.1`, 'utf8'), 'first run, long enough\n');
    await writeFile(log, 'second run, long enough\n');
    await rotateLog(log, 10);
    assert.equal(await readFile(`${log}.1`, 'utf8'), 'second run, long enough\n', 'one old log kept');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a running portal rotates its own log in place: the writer (appending) carries on at the start, no hole', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mpctl-log-'));
  try {
    const log = join(dir, 'p.log');
    // a child whose stdout is the log opened for appending, as the background process's is
    const child = `
      import { rotateOwnLog } from ${JSON.stringify(new URL('../src/cli/background.ts', import.meta.url).pathname)};
      const stop = await rotateOwnLog(4000, 50);
      for (let i = 0; i < 200; i++) { process.stdout.write('x'.repeat(99) + '\\n'); await new Promise((r) => setTimeout(r, 2)); }
      await new Promise((r) => setTimeout(r, 120));
      process.stdout.write('last\\n');
      stop();`;
    const fh = await open(log, 'a');
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { stdio: ['ignore', fh.fd, 'inherit'] });
    await fh.close();
    assert.equal(await new Promise((r) => p.on('exit', r)), 0);
    const now = await readFile(log, 'utf8');
    const old = await readFile(`${log}.1`, 'utf8');
    assert.ok(now.length < 20_000 && now.endsWith('last\n'), `the log was cut while running (${now.length} bytes)`);
    assert.ok(!now.includes('\0'), 'appending after the truncation left no hole');
    assert.ok(old.length > 4000 && /^(x{99}\n)+$/.test(old), 'the old part is in <log>.1');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
