// The running portal's publication for `mpctl status` (src/run/status.ts publish /
// readPublished): written whole (a temporary file renamed over the last), read back as written,
// and a write that cannot happen is an error naming the file, not a throw.
//   node --import tsx --test test/publish.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'mpctl-publish-'));
process.env.MPCTL_RUN_DIR = dir;
const { publish, publishFile, readPublished } = await import('../src/run/status.js');

const sample = (time: number) => ({
  time,
  packets: 42,
  links: [],
  feedback: { fbSent: 1, fbHeard: 2, fbDup: 0, fbBad: 0 },
  badControl: 0,
  security: { mode: 'insecure-no-auth' } as never,
});

test('publish: the status file is replaced whole and reads back as written; no temporary file stays', async () => {
  try {
    mkdirSync(join(dir, 'portal', 'p1'), { recursive: true });
    assert.ok(publish('p1', sample(1)).isOk());
    assert.ok(publish('p1', sample(2)).isOk());
    const back = await readPublished('p1');
    assert.equal(back?.time, 2);
    assert.equal(back?.packets, 42);
    assert.equal(existsSync(`${publishFile('p1')}.tmp`), false);
  } finally {
    rmSync(join(dir, 'portal', 'p1'), { recursive: true, force: true });
  }
});

test('publish: a portal directory that is gone is an error naming the file (the caller keeps running)', async () => {
  const r = publish('gone', sample(3));
  assert.ok(r.isErr());
  assert.match(JSON.stringify(r.error), /portal\/gone\/runtime\.json/);
  assert.equal(await readPublished('gone'), null);
  rmSync(dir, { recursive: true, force: true });
});
