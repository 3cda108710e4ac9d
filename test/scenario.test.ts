// Scenario/flag validation: every bad value is rejected with the key's path and the value quoted.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { defaultScenario, parseDirPatch, parseScenario } from '../src/lab/scenario.js';
import { nominalBps, parseDuration, parseLoss, parseQueue, parseRate, parseTrace, queueBytes } from '../src/lab/params.js';
import { hasSchedule, runTimeline, timeline } from '../src/lab/timeline.js';
import { ok } from 'neverthrow';
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

// ---- MTU keys (src/lab/mtu.ts) ----------------------------------------------------------------

test('mtu keys: per link, per direction, numbers or strings, "none"; mtu_icmp defaults to true', () => {
  const r = parseScenario(
    { links: [{ if_mtu: 1280 }, { mtu: '1400', up: { mtu_icmp: false }, down: { mtu: 1280 } }, { up: { if_mtu: 'none' }, down: { mtu: 0 } }] },
    'x',
  );
  assert.ok(r.isOk(), JSON.stringify(r));
  const [a, b, c] = r.value.links;
  assert.deepEqual([a!.up.ifMtu, a!.down.ifMtu, a!.up.mtu, a!.up.mtuIcmp], [1280, 1280, null, true], 'if_mtu on the link: both directions');
  assert.deepEqual([b!.up.mtu, b!.up.mtuIcmp, b!.down.mtu, b!.down.mtuIcmp], [1400, false, 1280, true], 'a direction overrides the link');
  assert.deepEqual([c!.up.ifMtu, c!.down.mtu], [null, null], '"none" and 0: no setting');
  assert.deepEqual(parseDirPatch({ mtu: 576, mtu_icmp: false, if_mtu: 9000 }, (k) => k)._unsafeUnwrap(), { mtu: 576, mtuIcmp: false, ifMtu: 9000 }, 'the bounds are allowed');
});

const BAD_MTU: [unknown, string, string][] = [
  [{ links: [{ mtu: 575 }] }, 'links[0].mtu', '575'],
  [{ links: [{ mtu: '9001' }] }, 'links[0].mtu', '"9001"'],
  [{ links: [{ if_mtu: '1500b' }] }, 'links[0].if_mtu', '"1500b"'],
  [{ links: [{ up: { if_mtu: 1280.5 } }] }, 'links[0].up.if_mtu', '1280.5'],
  [{ links: [{ down: { mtu: -1 } }] }, 'links[0].down.mtu', '-1'],
  [{ links: [{ down: { mtu_icmp: 'yes' } }] }, 'links[0].down.mtu_icmp', '"yes"'],
  [{ links: [{ mtu: true }] }, 'links[0].mtu', 'true'],
  [{ links: [{ schedule: [{ at: '1s', mtu: 100 }] }] }, 'links[0].schedule[0].mtu', '100'],
];

for (const [raw, path, got] of BAD_MTU) {
  test(`scenario rejects ${JSON.stringify(raw)} at ${path}, quoting the value`, () => {
    const r = parseScenario(raw, 'file.toml');
    assert.ok(r.isErr());
    assert.ok(r.error.kind === 'ConfigInvalid' && r.error.path === path, `path ${JSON.stringify(r.error)}`);
    const text = describeError(r.error);
    assert.ok(text.startsWith(`${path}: `), text);
    assert.ok(text.endsWith(`(got ${got})`), text);
  });
}

// `mpctl lab set` parses its MTU flags before it looks for the lab: a bad value is a usage error
// (exit 2) naming the flag and quoting the value. Root only (asRoot answers a non-root shell first).
const MPCTL = join(import.meta.dirname, '..', 'bin', 'mpctl');
const asRoot = process.getuid?.() === 0 ? false : 'not root';
for (const [flags, line] of [
  [['--mtu', '100'], 'mpctl: --mtu: is not an MTU from 576 to 9000 (or "none") (got "100")'],
  [['--mtu', '9001', '--no-mtu-icmp'], 'mpctl: --mtu: is not an MTU from 576 to 9000 (or "none") (got "9001")'],
  [['--if-mtu', '1500b'], 'mpctl: --if-mtu: is not an MTU from 576 to 9000 (or "none") (got "1500b")'],
  [['--if-mtu', ''], 'mpctl: --if-mtu: is not an MTU from 576 to 9000 (or "none") (got "")'],
] as const) {
  test(`mpctl lab set isp1 ${flags.join(' ')}: exit 2, the flag and the value`, { skip: asRoot }, () => {
    const r = spawnSync(process.execPath, [MPCTL, 'lab', 'set', 'isp1', '--name', 'no-such-lab', ...flags], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.stderr.trim(), line);
    assert.equal(r.status, 2);
  });
}

test('lab set flags name the flag in errors', () => {
  const r = parseDirPatch({ rate: 'quick' }, (k) => `--${k}`);
  assert.ok(r.isErr());
  assert.equal(describeError(r.error), '--rate: is not a rate between 8kbit and 100gbit (e.g. "20mbit", "none") (got "quick")');
});

// ---- traces and schedules --------------------------------------------------------------------

const TRACES = new URL('./fixtures/traces/', import.meta.url).pathname;

test('trace = "file" reads a Mahimahi trace relative to the scenario and keeps its mean', () => {
  const r = parseScenario({ links: [{ delay: '8ms', down: { trace: 'lte-down.trace' }, up: { trace: 'const-12mbit.trace' } }] }, 'x', TRACES);
  assert.ok(r.isOk(), JSON.stringify(r));
  const l = r.value.links[0]!;
  assert.equal(l.up.trace?.meanBps, 12e6);
  assert.equal(l.up.trace?.periodMs, 1000);
  assert.equal(l.up.trace?.file, `${TRACES}const-12mbit.trace`);
  assert.ok(l.down.trace!.meanBps > 2e6 && l.down.trace!.meanBps < 40e6);
  assert.equal(l.down.rateBps, null);
  assert.equal(nominalBps(l.up), 12e6);
});

test('parseTrace: non-decreasing ms, the last line is the period', () => {
  assert.deepEqual(parseTrace('1\n1\n2\n\n'), { lines: 3, periodMs: 2 });
  assert.match(parseTrace('1\n0\n') as string, /line 2: 0 is before/);
  assert.match(parseTrace('1\nx\n') as string, /line 2: "x" is not a millisecond/);
  assert.match(parseTrace('0\n0\n') as string, /no delivery opportunity after 0 ms/);
  assert.match(parseTrace('') as string, /no delivery opportunity/);
});

test('schedule = [...] with repeat: steps in order, each a change', () => {
  const r = parseScenario(
    { links: [{ rate: '30mbit', delay: '20ms', schedule: [{ at: '0s', delay: '20ms' }, { at: '15s', delay: '45ms', rate: '15mbit' }], repeat: '30s', down: { schedule: [{ at: '1.5s', outage: true }] } }] },
    'x',
  );
  assert.ok(r.isOk(), JSON.stringify(r));
  const l = r.value.links[0]!;
  assert.deepEqual(l.up.schedule, [
    { atUs: 0, patch: { delayUs: 20_000 } },
    { atUs: 15_000_000, patch: { delayUs: 45_000, rateBps: 15e6 } },
  ]);
  assert.equal(l.up.repeatUs, 30e6);
  assert.deepEqual(l.down.schedule, [{ atUs: 1_500_000, patch: { down: true } }]);
});

const BAD_TIMED: [unknown, string, RegExp][] = [
  [{ links: [{ trace: 'nope.trace' }] }, 'links[0].trace', /cannot read .*nope\.trace/],
  [{ links: [{ up: { trace: 42 } }] }, 'links[0].up.trace', /trace file name/],
  [{ links: [{ trace: 'const 12.trace' }] }, 'links[0].trace', /spaces or commas/],
  [{ links: [{ schedule: { at: '1s' } }] }, 'links[0].schedule', /must be an array/],
  [{ links: [{ schedule: [{ delay: '5ms' }] }] }, 'links[0].schedule[0].at', /not a time/],
  [{ links: [{ schedule: [{ at: 'soon', delay: '5ms' }] }] }, 'links[0].schedule[0].at', /not a time/],
  [{ links: [{ schedule: [{ at: '2s', delay: '5ms' }, { at: '1s', delay: '6ms' }] }] }, 'links[0].schedule[1].at', /before the previous step/],
  [{ links: [{ schedule: [{ at: '1s' }] }] }, 'links[0].schedule[0]', /changes nothing/],
  [{ links: [{ schedule: [{ at: '1s', colour: 'red' }] }] }, 'links[0].schedule[0].colour', /unknown key/],
  [{ links: [{ down: { schedule: [{ at: '1s', rate: 'fast' }] } }] }, 'links[0].down.schedule[0].rate', /not a rate/],
  [{ links: [{ schedule: [{ at: '1s', schedule: [] }] }] }, 'links[0].schedule[0].schedule', /unknown key/],
  [{ links: [{ schedule: [{ at: '10s', delay: '1ms' }], repeat: '5s' }] }, 'links[0].repeat', /longer than the last step/],
  [{ links: [{ repeat: '5s' }] }, 'links[0].repeat', /needs a schedule/],
  [{ links: [{ repeat: 'often' }] }, 'links[0].repeat', /not a period/],
];

for (const [raw, path, msg] of BAD_TIMED) {
  test(`scenario rejects ${JSON.stringify(raw)} at ${path}`, () => {
    const r = parseScenario(raw, 'file.toml', TRACES);
    assert.ok(r.isErr());
    assert.ok(r.error.kind === 'ConfigInvalid' && r.error.path === path, `path ${JSON.stringify(r.error)}`);
    assert.match(describeError(r.error), msg);
    // the value is quoted when there is one; an absent key has none (never "(got undefined)")
    if (r.error.kind === 'ConfigInvalid' && r.error.value !== undefined && r.error.value !== null) assert.match(describeError(r.error), /\(got /);
    else assert.doesNotMatch(describeError(r.error), /\(got /);
  });
}

test('the time line merges the directions of a link and unrolls repeats', () => {
  const sc = parseScenario(
    {
      links: [
        { label: 'a', schedule: [{ at: '0s', delay: '20ms' }, { at: '1s', delay: '40ms' }], repeat: '2s' },
        { label: 'b', up: { schedule: [{ at: '1s', outage: true }, { at: '1.5s', outage: false }] } },
      ],
    },
    'x',
  )._unsafeUnwrap();
  const tl = [...timeline(sc.links, 4e6)].map((c) => `${c.atUs / 1e6} ${c.node} ${c.dirs.join('+')} ${JSON.stringify(c.patch)}`);
  assert.deepEqual(tl, [
    '0 isp1 up+down {"delayUs":20000}',
    '1 isp1 up+down {"delayUs":40000}',
    '1 isp2 up {"down":true}',
    '1.5 isp2 up {"down":false}',
    '2 isp1 up+down {"delayUs":20000}',
    '3 isp1 up+down {"delayUs":40000}',
    '4 isp1 up+down {"delayUs":20000}',
  ]);
  assert.equal(hasSchedule(sc.links), true);
  assert.equal(hasSchedule(defaultScenario().links), false);
});

test('runTimeline applies each change at its time, in order', async () => {
  const sc = parseScenario({ links: [{ schedule: [{ at: '50ms', delay: '1ms' }, { at: '150ms', delay: '2ms' }] }] }, 'x')._unsafeUnwrap();
  const seen: [number, number][] = [];
  // the test runner keeps the event loop busy for ~100 ms after it starts: wait that out
  await new Promise((r) => setTimeout(r, 10));
  const t0 = performance.now();
  const r = await runTimeline(sc.links, { apply: async (c) => (seen.push([performance.now() - t0, c.patch.delayUs!]), ok(undefined)) });
  assert.equal(r._unsafeUnwrap(), 2);
  assert.deepEqual(seen.map(([, d]) => d), [1000, 2000]);
  // Node timers may fire a millisecond or two early (a 150 ms change seen at 148.7 ms)
  assert.ok(seen[0]![0] >= 47 && seen[0]![0] < 120 && seen[1]![0] >= 147 && seen[1]![0] < 250, JSON.stringify(seen));
});
