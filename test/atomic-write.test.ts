// Status files are replaced whole (src/apply/state.ts writeFileAtomic): a reader that polls
// runtime.json while the portal rewrites it every 250 ms must never see half a file. With the
// former in-place writeFile, 7 of 1,000 reads failed to parse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/apply/state.js';

test('writeFileAtomic: 1,000 reads during back-to-back rewrites all parse; no temporary file is left', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mpctl-atomic-'));
  const file = join(dir, 'runtime.json');
  try {
    const doc = (i: number) => JSON.stringify({ i, links: Array.from({ length: 100 }, (_, k) => ({ id: k, note: 'x'.repeat(100) })) });
    await writeFileAtomic(file, doc(0));
    let stop = false;
    const writer = (async () => {
      for (let i = 1; !stop; i++) await writeFileAtomic(file, doc(i));
    })();
    let bad = 0;
    for (let r = 0; r < 1000; r++) {
      try {
        JSON.parse(await readFile(file, 'utf8'));
      } catch {
        bad++;
      }
    }
    stop = true;
    await writer;
    assert.equal(bad, 0, `${bad} of 1000 reads saw a partial file`);
    assert.deepEqual(await readdir(dir), ['runtime.json']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
