// The lab's measuring tools read their commands' output: an iperf3 that fails says why in its
// JSON (stdout), and that reason reaches the error, not stderr's warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { err, ok } from 'neverthrow';
import { run } from '../src/lab/namespaces.js';
import { iperfJson, perSecond } from '../src/lab/measure.js';

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

test("perSecond: each interval's rate; a last one under half a second (iperf3's closing milliseconds) is left out", () => {
  const iv = (start: number, end: number, bps: number) => ({ sum: { start, end, bits_per_second: bps } });
  const whole = [iv(0, 1, 42e6), iv(1, 2, 49.6e6), iv(2, 3.0001, 47.6e6), iv(3.0001, 4, 43.2e6)];
  assert.deepEqual(perSecond([...whole, iv(4, 4.004, 1.5e6)]), [42e6, 49.6e6, 47.6e6, 43.2e6]);
  assert.deepEqual(perSecond(whole), [42e6, 49.6e6, 47.6e6, 43.2e6], 'whole seconds all kept');
  // a short interval elsewhere is not iperf3's tail: kept, as is a run of one interval
  assert.deepEqual(perSecond([iv(0, 0.3, 1e6), iv(0.3, 1.3, 2e6)]), [1e6, 2e6]);
  assert.deepEqual(perSecond([iv(0, 0.2, 1e6)]), [1e6]);
  assert.deepEqual(perSecond([{}, iv(1, 2, 3e6)]), [0, 3e6], 'an interval without a sum reads 0');
});
