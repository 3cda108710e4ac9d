// The suite's runner (scripts/test.sh): node's test runner through its run() API, which keeps
// the order it is given (the `--test` command line sorts its files), two files at a time: the
// unit files first, side by side; then the files that run a lab or portals, or measure time,
// which take test/helpers/serial.ts's lock and so run one at a time, each after the unit files
// still running beside it are done. One spec report and its summary; the exit code is 1 when a
// test failed. Run as `node --import tsx scripts/run-tests.mjs [files…]` (the test files'
// processes inherit `--import tsx`); without files, every test/*.test.ts.
//
// A second chance, for the lab's timing only: when nothing but lab files failed, and at most
// AGAIN_MAX of them, each of those files runs once more, alone, after the others (a second
// report and summary), and the suite passes only if every one of them passes then. This shared
// 2-CPU machine's host takes the CPUs away in bursts (steal: 1-24 % of each second measured
// during a lab test, printed here for each pass), and the link emulators' timing with them: a
// flow under its bound in one run clears it in the next. A property that is really lost fails
// both times; a unit file never gets a second run, nor a suite where many lab files failed.
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { serialFile as serial } from '../test/helpers/serial.ts';

const AGAIN_MAX = 5;
/** A failure reported without its file: never run again. */
const UNKNOWN = '(no file)';

const root = resolve(new URL('..', import.meta.url).pathname);
const given = process.argv.slice(2);
const files = (given.length > 0 ? given : readdirSync(`${root}/test`).filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${f}`)).map((f) => resolve(f));
/** A file as the report names it: from the repository's root. */
const rel = (f) => (f.startsWith(`${root}/`) ? f.slice(root.length + 1) : f);
const ordered = [...files.filter((f) => !serial(f)), ...files.filter(serial)];

/** The CPU time the host took from this machine (steal) as a share of all, since `from`. */
const cpuTimes = () => readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
const stealShare = (from) => {
  const d = cpuTimes().map((v, i) => v - (from[i] ?? 0));
  const all = d.reduce((a, b) => a + b, 0);
  return all > 0 ? (d[7] ?? 0) / all : 0;
};

/** Runs `list`, `concurrency` files at a time, into one spec report; resolves with the files that
 * had a failing test. */
function pass(list, concurrency) {
  return new Promise((done) => {
    const failed = new Set();
    const from = cpuTimes();
    const stream = run({ files: list, concurrency });
    // each file's time in its top-level tests (their own durations: the events of a file's
    // process reach this one in bursts): where the suite's time goes
    const spent = new Map();
    stream.on('test:fail', (d) => {
      if (!d.skip && !d.todo) failed.add(typeof d.file === 'string' ? d.file : UNKNOWN);
    });
    for (const ev of ['test:pass', 'test:fail']) {
      stream.on(ev, (d) => {
        if (d?.nesting !== 0 || typeof d.file !== 'string') return;
        spent.set(d.file, (spent.get(d.file) ?? 0) + (d.details?.duration_ms ?? 0) / 1000);
      });
    }
    stream
      .compose(spec)
      .on('end', () => {
        const rows = [...spent].map(([f, t]) => [rel(f), t]).sort((a, b) => b[1] - a[1]);
        process.stdout.write(`ℹ files, slowest first (s): ${rows.slice(0, 25).map(([f, t]) => `${f.replace(/^test\/|\.test\.ts$/g, '')} ${t.toFixed(1)}`).join(', ')}\n`);
        process.stdout.write(`ℹ the host's steal: ${(stealShare(from) * 100).toFixed(1)} % of the CPUs' time\n`);
        done(failed);
      })
      .pipe(process.stdout, { end: false });
  });
}

const failed = await pass(ordered, 2);
const again = [...failed];
if (again.length === 0) process.exitCode = 0;
else if (again.length > AGAIN_MAX || !again.every((f) => f !== UNKNOWN && serial(f))) process.exitCode = 1;
else {
  const names = again.map(rel).join(', ');
  process.stdout.write(`\nℹ again, each alone: ${names} (lab files only failed, ${again.length} of them: the lab's timing gets a second run; the suite passes only if they all pass now)\n\n`);
  const still = await pass(again, 1);
  process.exitCode = still.size === 0 ? 0 : 1;
  process.stdout.write(still.size === 0 ? `ℹ passed on the second run: ${names}\n` : `ℹ failed twice: ${[...still].map(rel).join(', ')}\n`);
}
