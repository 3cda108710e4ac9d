// scripts/run-tests.mjs, the suite's runner: a lab file that failed once runs once more, alone,
// and the suite passes if it passes then; a lab file that fails twice, or a unit file that fails
// at all, fails the suite (test/fixtures/runner/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const fixture = (f: string) => join(ROOT, 'test/fixtures/runner', f);

function runner(files: string[], mark: string): { code: number | null; out: string } {
  // not as a test file's child (NODE_TEST_CONTEXT): node's run() would refuse to run files
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/run-tests.mjs'), ...files], { cwd: ROOT, encoding: 'utf8', env: { ...env, RUNNER_MARK: mark }, timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('the runner: a lab file failing once passes on its second run; twice, or a unit file once, fails the suite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpctl-runner-'));
  try {
    const once = runner([fixture('lab-flaky.mjs')], join(dir, 'a'));
    assert.equal(once.code, 0, once.out);
    assert.match(once.out, /again, each alone: test\/fixtures\/runner\/lab-flaky\.mjs/);
    assert.match(once.out, /passed on the second run: test\/fixtures\/runner\/lab-flaky\.mjs/);
    assert.match(once.out, /ℹ fail 1\n[\s\S]*ℹ fail 0\n/, 'two summaries: the first run failed, the second passed');
    const twice = runner([fixture('lab-broken.mjs')], join(dir, 'b'));
    assert.equal(twice.code, 1, twice.out);
    assert.match(twice.out, /failed twice: test\/fixtures\/runner\/lab-broken\.mjs/);
    const unit = runner([fixture('unit-broken.mjs'), fixture('lab-flaky.mjs')], join(dir, 'c'));
    assert.equal(unit.code, 1, unit.out);
    assert.doesNotMatch(unit.out, /again, each alone/, 'a unit failure: no second run');
    assert.match(unit.out, /ℹ the host's steal: [\d.]+ % of the CPUs' time/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
