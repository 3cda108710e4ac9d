// The background portal's log (/run/mpctl/log/<instance>.log) is moved aside when it grew past
// its cap, before a portal starts appending to it: /run is memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
