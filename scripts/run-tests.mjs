// The suite's runner (scripts/test.sh): node's test runner through its run() API, which keeps
// the order it is given (the `--test` command line sorts its files), two files at a time: the
// unit files first, side by side; then the files that run a lab or portals, or measure time,
// which take test/helpers/serial.ts's lock and so run one at a time, each after the unit files
// still running beside it are done. One stream, one spec report, one summary; the exit code is 1
// when a test failed. Run as `node --import tsx scripts/run-tests.mjs [files…]` (the test files'
// processes inherit `--import tsx`); without files, every test/*.test.ts.
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { serialFile as serial } from '../test/helpers/serial.ts';

const root = resolve(new URL('..', import.meta.url).pathname);
const given = process.argv.slice(2);
const files = (given.length > 0 ? given : readdirSync(`${root}/test`).filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${f}`)).map((f) => resolve(f));
const ordered = [...files.filter((f) => !serial(f)), ...files.filter(serial)];

const stream = run({ files: ordered, concurrency: 2 });
stream.on('test:fail', (e) => {
  if (!e.skip && !e.todo) process.exitCode = 1;
});
// each file's time in its top-level tests (their own durations: the events of a file's process
// reach this one in bursts), printed after the summary, the slowest first: where the suite's
// time goes
const spent = new Map();
for (const ev of ['test:pass', 'test:fail']) {
  stream.on(ev, (d) => {
    if (d?.nesting !== 0 || typeof d.file !== 'string') return;
    spent.set(d.file, (spent.get(d.file) ?? 0) + (d.details?.duration_ms ?? 0) / 1000);
  });
}
stream
  .compose(spec)
  .on('end', () => {
    const rows = [...spent].map(([f, t]) => [f.slice(root.length + 1), t]).sort((a, b) => b[1] - a[1]);
    process.stdout.write(`ℹ files, slowest first (s): ${rows.slice(0, 25).map(([f, t]) => `${f.replace(/^test\/|\.test\.ts$/g, '')} ${t.toFixed(1)}`).join(', ')}\n`);
  })
  .pipe(process.stdout, { end: false });
