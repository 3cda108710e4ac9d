// The lab's measuring tools read their commands' output: an iperf3 that fails says why in its
// JSON (stdout), and that reason reaches the error, not stderr's warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { err, ok } from 'neverthrow';
import { run } from '../src/lab/namespaces.js';
import { iperfJson } from '../src/lab/measure.js';

test('run(): a command that fails keeps what it printed on stdout, and its exit code', async () => {
  const r = await run('sh', ['-c', 'echo \'{"error": "unable to connect"}\'; echo "warning: MSS" >&2; exit 1']);
  assert.ok(r.isErr());
  assert.equal(r.error.kind, 'CommandFailed');
  if (r.error.kind !== 'CommandFailed') return;
  assert.equal(r.error.code, 1);
  assert.equal(r.error.stdout?.trim(), '{"error": "unable to connect"}');
  assert.equal(r.error.stderr.trim(), 'warning: MSS');
});

test('iperfJson: the JSON of a run; a failed run\'s own error (with the exit code and stderr), not a parse error', () => {
  assert.deepEqual(iperfJson(ok('{"intervals": []}'))._unsafeUnwrap(), { intervals: [] });
  const failed = iperfJson(err({ kind: 'CommandFailed', cmd: 'ip netns exec c iperf3 -J', code: 1, stderr: 'warning: MSS\n', stdout: '{"error": "control socket has closed unexpectedly"}' }));
  assert.deepEqual(failed._unsafeUnwrapErr(), { kind: 'CommandFailed', cmd: 'iperf3', code: 1, stderr: 'control socket has closed unexpectedly (stderr: warning: MSS)' });
  // JSON without an error but a non-zero exit: the command's failure as it was
  const odd = { kind: 'CommandFailed' as const, cmd: 'iperf3', code: 2, stderr: 'x', stdout: '{"intervals": []}' };
  assert.deepEqual(iperfJson(err(odd))._unsafeUnwrapErr(), odd);
  // nothing parseable: the failure as it was; a clean exit with garbage: named
  const timeout = { kind: 'CommandFailed' as const, cmd: 'iperf3', code: null, stderr: 'killed' };
  assert.deepEqual(iperfJson(err(timeout))._unsafeUnwrapErr(), timeout);
  assert.equal(iperfJson(ok('not json'))._unsafeUnwrapErr().kind, 'CommandFailed');
});
