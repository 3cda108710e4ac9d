// Scenario/flag validation: every bad value is rejected with the key's path and the value quoted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultScenario, parseDirPatch, parseScenario } from '../src/lab/scenario.js';
import { parseDuration, parseLoss, parseQueue, parseRate, queueBytes } from '../src/lab/params.js';
import { describeError } from '../src/errors.js';

test('units parse as tc/netem users expect', () => {
  assert.equal(parseRate('20mbit'), 20e6);
  assert.equal(parseRate('500kbit'), 500e3);
  assert.equal(parseRate('1.5gbit'), 1.5e9);
  assert.equal(parseRate('12.5mbps'), undefined, "tc's bytes/s spelling is refused (nobody means megabytes)");
  assert.equal(parseRate('none'), null);
  assert.equal(parseRate('20 furlongs'), undefined);
  assert.equal(parseRate('1bit'), undefined);
  assert.equal(parseDuration('40ms'), 40_000);
  assert.equal(parseDuration('1.5ms'), 1500);
  assert.equal(parseDuration('250us'), 250);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('40'), undefined);
  assert.equal(parseDuration('11s'), undefined);
  assert.equal(parseLoss('2%'), 20_000);
  assert.equal(parseLoss(0.5), 5_000);
  assert.equal(parseLoss('101%'), undefined);
  assert.deepEqual(parseQueue('100pkt'), { kind: 'packets', n: 100 });
  assert.deepEqual(parseQueue('64kb'), { kind: 'bytes', n: 65536 });
  assert.deepEqual(parseQueue('50ms'), { kind: 'time', us: 50_000 });
  assert.equal(queueBytes({ kind: 'time', us: 50_000 }, 20e6), 125_000);
  assert.equal(queueBytes({ kind: 'packets', n: 1 }, 20e6), 2 * 1514);
});

test('the embedded default scenario is valid: three unequal links', () => {
  const s = defaultScenario();
  assert.equal(s.links.length, 3);
  assert.deepEqual(s.links.map((l) => l.node), ['isp1', 'isp2', 'isp3']);
  assert.equal(s.links[0]!.up.rateBps, 20e6);
});

test('per-direction tables override the link-wide values', () => {
  const r = parseScenario({ links: [{ rate: '20mbit', delay: '10ms', up: { rate: '5mbit' } }] }, 'x');
  assert.ok(r.isOk());
  const l = r.value.links[0]!;
  assert.equal(l.up.rateBps, 5e6);
  assert.equal(l.down.rateBps, 20e6);
  assert.equal(l.up.delayUs, 10_000);
});

const BAD: [unknown, string, RegExp][] = [
  [{}, 'links', /1 to 16 links/],
  [{ links: [] }, 'links', /1 to 16/],
  [{ links: [{ rate: 'fast' }] }, 'links[0].rate', /not a rate/],
  [{ links: [{ delay: '10' }] }, 'links[0].delay', /not a duration/],
  [{ links: [{ jitter: -1 }] }, 'links[0].jitter', /not a duration/],
  [{ links: [{ loss: '150%' }] }, 'links[0].loss', /loss percentage/],
  [{ links: [{ queue: 'big' }] }, 'links[0].queue', /queue size/],
  [{ links: [{ outage: 'yes' }] }, 'links[0].outage', /true or false/],
  [{ links: [{ rate: '1mbit' }, { up: { delay: 'soon' } }] }, 'links[1].up.delay', /not a duration/],
  [{ links: [{ up: 3 }] }, 'links[0].up', /must be a table/],
  [{ links: [{ colour: 'red' }] }, 'links[0].colour', /unknown key/],
  [{ links: [{ label: 'has space' }] }, 'links[0].label', /letters/],
  [{ links: [{}], extra: 1 }, 'extra', /unknown key/],
];

for (const [raw, path, msg] of BAD) {
  test(`scenario rejects ${JSON.stringify(raw)} at ${path}`, () => {
    const r = parseScenario(raw, 'file.toml');
    assert.ok(r.isErr());
    assert.equal(r.error.kind, 'ConfigInvalid');
    assert.ok(r.error.kind === 'ConfigInvalid' && r.error.path === path, `path ${JSON.stringify(r.error)}`);
    assert.match(describeError(r.error), msg);
    assert.match(describeError(r.error), new RegExp(path.replace(/[[\].]/g, '\\$&')));
  });
}

test('lab set flags name the flag in errors', () => {
  const r = parseDirPatch({ rate: 'quick' }, (k) => `--${k}`);
  assert.ok(r.isErr());
  assert.equal(describeError(r.error), '--rate: is not a rate between 8kbit and 100gbit (e.g. "20mbit", "none") (got "quick")');
});
