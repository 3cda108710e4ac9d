import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkLiveness, livenessChanges } from '../src/run/liveness.js';

const p = { intervalMs: 100, missed: 3 };

test('a link is up while heard within 3 probe intervals, down after', () => {
  assert.equal(linkLiveness(null, 1000, p), 'down');
  assert.equal(linkLiveness(1000, 1000, p), 'up');
  assert.equal(linkLiveness(1000, 1300, p), 'up');
  assert.equal(linkLiveness(1000, 1301, p), 'down');
});

test('only changes are reported, so the map is written once per transition', () => {
  const heard = new Map<number, number | null>([
    [0, 1000],
    [1, 600],
    [2, null],
  ]);
  const prev = new Map([
    [0, 'up' as const],
    [1, 'up' as const],
  ]);
  assert.deepEqual([...livenessChanges(prev, heard, 1050, p)], [
    [1, 'down'],
    [2, 'down'],
  ]);
  assert.deepEqual([...livenessChanges(new Map([[0, 'up' as const], [1, 'down' as const], [2, 'down' as const]]), heard, 1050, p)], []);
  // links skipped (admin-down) are not judged
  assert.deepEqual([...livenessChanges(prev, heard, 1050, p, new Map(), (id) => id === 1)], [[2, 'down']]);
});

test('a link held down (fast-down) stays down until a probe is heard after the hold', () => {
  assert.equal(linkLiveness(1000, 1050, p, 1020), 'down', 'last heard before the hold ended');
  assert.equal(linkLiveness(1020, 1050, p, 1020), 'down', 'heard at the very moment it was held');
  assert.equal(linkLiveness(1021, 1050, p, 1020), 'up', 'a probe after it brings it back');
  assert.equal(linkLiveness(1021, 1400, p, 1020), 'down', 'and the probe rule still applies');
  const heard = new Map<number, number | null>([
    [0, 1000],
    [1, 1000],
  ]);
  const up = new Map([
    [0, 'down' as const],
    [1, 'down' as const],
  ]);
  assert.deepEqual([...livenessChanges(up, heard, 1010, p, new Map([[1, 1005]]))], [[0, 'up']]);
});
