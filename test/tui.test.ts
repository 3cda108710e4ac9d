// The console (src/tui/) from a recorded status stream: test/fixtures/status-stream.ndjson is
// `mpctl status --json --watch` of a lab LP (dsl 20 Mbit/10 ms, 4g 10 Mbit/25 ms, sat 30 Mbit/
// 40 ms) while one iperf3 TCP flow ran client → server; isp2 (4g) was cut after ~5 s and
// restored ~4 s later. Frames are rendered with ink-testing-library and asserted as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createElement as h } from 'react';
import { render } from 'ink-testing-library';
import { ok, err, type Result } from 'neverthrow';
import type { PortalStatus } from '../src/run/status.js';
import type { MpError } from '../src/errors.js';
import { replay, step, emptyModel } from '../src/tui/model.js';
import { Screen, layout, type UiState } from '../src/tui/screen.js';
import { Console, type ConsoleExit, type ConsolePort } from '../src/tui/console.js';
import { fmtBps, sparkline } from '../src/tui/format.js';

const stream: PortalStatus[] = readFileSync(new URL('./fixtures/status-stream.ndjson', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as PortalStatus);
const ui: UiState = { selected: 0, help: false, message: null, confirm: null };
const frameOf = (n: number, columns = 100, rows = 24, u: UiState = ui) => {
  const r = render(h(Screen, { view: replay(stream.slice(0, n)).view, ui: u, columns, rows }));
  const f = r.lastFrame() ?? '';
  r.unmount();
  return f;
};
const rowOf = (frame: string, name: string) => frame.split('\n').find((l) => l.slice(0, 14).includes(` ${name} `)) ?? '';
const mbit = (s: string) => Number(/([\d.]+) Mb\/s/.exec(s)?.[1] ?? NaN);
const until = async (f: () => boolean, what: string, ms = 3000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('view-model: throughput from counter differences, states, totals', () => {
  assert.ok(stream.length >= 10, 'the recording has 10+ snapshots');
  const first = replay(stream.slice(0, 1)).view!;
  assert.equal(first.rows.length, 3);
  assert.deepEqual(first.rows.map((r) => r.label), ['dsl', '4g', 'sat']);
  assert.equal(first.rows[0]!.txBps, null, 'no throughput from a single snapshot');
  const v = replay(stream.slice(0, 4)).view!;
  const [dsl, g4, sat] = v.rows;
  // one TCP flow filled every link close to its emulated rate
  assert.ok(dsl!.txBps! > 17e6 && dsl!.txBps! < 21e6, `dsl tx ${dsl!.txBps}`);
  assert.ok(g4!.txBps! > 8e6 && g4!.txBps! < 11e6, `4g tx ${g4!.txBps}`);
  assert.ok(sat!.txBps! > 26e6 && sat!.txBps! < 31e6, `sat tx ${sat!.txBps}`);
  assert.equal(v.totals.txBps, dsl!.txBps! + g4!.txBps! + sat!.txBps!);
  assert.equal(v.totals.usableBps, v.rows.reduce((a, r) => a + r.rateBps, 0));
  assert.equal(dsl!.history.length, 3, 'one sample per snapshot after the first');
  // the 4g link was cut: down, and its throughput falls to zero
  const cut = replay(stream.slice(0, 8)).view!;
  assert.equal(cut.rows[1]!.state, 'down');
  assert.equal(cut.rows[1]!.txBps, 0);
  assert.equal(cut.totals.usableBps, cut.rows[0]!.rateBps + cut.rows[2]!.rateBps, 'a down link does not count as usable');
  // a counter that goes back (portal restarted) gives no throughput rather than a negative one
  const back = step(replay(stream.slice(0, 3)), { ...stream[3]!, links: stream[3]!.links.map((l) => ({ ...l, tx: { packets: 0, bytes: 0 } })) });
  assert.equal(back.view!.rows[0]!.txBps, null);
});

test('view-model: backup tier, admin-down, drops with deltas', () => {
  const tiered = stream.map((s) => ({ ...s, links: s.links.map((l) => (l.name === 'sat' ? { ...l, metric: 1 } : l)) }));
  const v = replay(tiered.slice(0, 3)).view!;
  assert.equal(v.rows[2]!.state, 'backup', 'up with a higher metric than another up link');
  assert.equal(v.totals.usableBps, v.rows[0]!.rateBps + v.rows[1]!.rateBps);
  assert.equal(v.totals.allBps, v.totals.usableBps + v.rows[2]!.rateBps);
  const s1 = { ...stream[1]!, drops: { ...stream[1]!.drops, replay: 5, bad_mac: 1 } };
  const s2 = { ...stream[2]!, drops: { ...stream[2]!.drops, replay: 9, bad_mac: 1 }, links: stream[2]!.links.map((l) => (l.id === 0 ? { ...l, state: 'admin-down' as const } : l)) };
  const d = step(step(emptyModel, s1), s2).view!;
  assert.deepEqual(d.drops, [
    { reason: 'replay', count: 9, delta: 4 },
    { reason: 'bad_mac', count: 1, delta: 0 },
  ]);
  assert.equal(d.rows[0]!.state, 'admin-down');
});

test('view-model: a spent budget takes a link out like the scheduler does, and the backup tier in', () => {
  const metered = stream.map((s) => ({
    ...s,
    links: s.links.map((l) =>
      l.name === 'dsl' ? { ...l, budget: { limitBytes: 2_000_000, leftBytes: 0, exhausted: true } } : l.name === 'sat' ? { ...l, metric: 1, budget: null } : { ...l, budget: null },
    ),
  }));
  const v = replay(metered.slice(0, 3)).view!;
  assert.deepEqual(v.rows.map((r) => r.state), ['spent', 'up', 'backup']);
  assert.equal(v.rows[0]!.budgetLeftBytes, 0);
  assert.equal(v.totals.usableBps, v.rows[1]!.rateBps, 'a spent link is not usable');
  const allSpent = metered.map((s) => ({ ...s, links: s.links.map((l) => (l.name === '4g' ? { ...l, budget: { limitBytes: 1e9, leftBytes: 0, exhausted: true } } : l)) }));
  assert.deepEqual(replay(allSpent.slice(0, 3)).view!.rows.map((r) => r.state), ['spent', 'spent', 'up'], 'every primary spent: the backup carries');
  const r = render(h(Screen, { view: v, ui, columns: 100, rows: 24 }));
  assert.match(rowOf(r.lastFrame()!, 'dsl'), /dsl\s+wan1\s+spent/);
  r.unmount();
});

test('frames: one row per link with state, rate, RTT, throughput and a sparkline; totals; drops', () => {
  const f = frameOf(6);
  assert.match(f, /^mpctl oprec-lp \(Local Portal\) · pid \d+ · up /);
  for (const t of ['LINK', 'DEV', 'STATE', 'MET', 'RATE', 'RTT', 'LOSS', 'TX', 'RX', 'TX+RX']) assert.ok(f.includes(t), `column ${t}`);
  const dsl = rowOf(f, 'dsl');
  assert.match(dsl, /dsl\s+wan1\s+up\s+0\s+[\d.]+ Mb\/s\s+[\d.]+ ms\s+[\d.]+ %\s+[\d.]+ Mb\/s\s+[\d.]+ [kM]b\/s\s+[▁▂▃▄▅▆▇█ ]+$/);
  assert.ok(mbit(dsl.split(/ %\s+/)[1]!) > 17, `dsl tx in the frame: ${dsl}`);
  assert.match(rowOf(f, 'sat'), /[▅▆▇█]/, 'the busiest link has tall bars');
  assert.match(f, /total tx [\d.]+ Mb\/s · rx [\d.]+ (k|M)b\/s · links in use [\d.]+ Mb\/s \(\d+ %\)/);
  const share = Number(/\((\d+) %\)/.exec(f)![1]);
  // the controllers' rates trail the measured throughput by a feedback round or two, so the
  // share may pass 100 % for a moment; with one TCP flow it must not be small
  assert.ok(share > 60, `total vs sum of link rates: ${share} %`);
  assert.match(f, /drops none/);
  assert.match(f, /session: not published/);
  assert.match(f, /\? help · a admin down\/up · d detach · q quit/);
  assert.match(rowOf(frameOf(8), '4g'), /4g\s+wan2\s+down/);
  assert.match(frameOf(8), /links in use [\d.]+ Mb\/s \(\d+ %\) · all links/);
});

test('frames: fit the terminal — narrow widths drop columns, short heights scroll to the selection', () => {
  for (const w of [40, 60, 80, 100, 140]) {
    const f = frameOf(5, w, 24);
    for (const line of f.split('\n')) assert.ok([...line].length <= w, `width ${w}: "${line}" is ${[...line].length}`);
  }
  assert.ok(!frameOf(5, 80).includes('DEV'), 'no interface column at 80');
  assert.equal(layout(60).spark, 0, 'no sparkline at 60');
  const short = frameOf(5, 100, 9, { ...ui, selected: 2 });
  assert.ok(short.split('\n').length <= 9, `at most 9 lines:\n${short}`);
  assert.match(short, /▸ sat/);
  assert.match(short, /… 1 more/);
  assert.equal(sparkline([1, 2, 4, 8], 6), '  ▁▂▄█');
  assert.equal(fmtBps(19_250_000), '19.3 Mb/s');
});

test('frames: the session line from the published security status', () => {
  const withSec = stream.slice(0, 3).map((s) => ({
    ...s,
    security: { mode: 'authenticated' as const, peer: 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=', keyId: 3, sessionAgeMs: 42_000, lastHandshakeAtMs: null, handshakes: 4, rekeys: 3, initiationsSent: 4, initiationsReceived: 0, responsesSent: 0, cookiesSent: 0, rejected: { bad_mac: 2 } },
  }));
  const r = render(h(Screen, { view: replay(withSec).view, ui, columns: 140, rows: 24 }));
  assert.match(r.lastFrame()!, /session authenticated · peer hSDwCYkwp1R0i33ctD73Wg2\/Og0mOBr066SpjqqbTmo= · key 3 · age 42 s · 4 handshakes · 3 rekeys · rejected bad_mac 2/);
  r.unmount();
});

/** A port that replays the recording (then holds the last snapshot) and records admin calls. */
function recordedPort(admin: [number, boolean][], fail = false): ConsolePort {
  let i = 0;
  return {
    snapshot: async () => ok(stream[Math.min(i++, stream.length - 1)]!),
    setAdmin: async (id, down): Promise<Result<void, MpError>> => {
      admin.push([id, down]);
      return fail ? err({ kind: 'NotFound', what: 'portal', message: 'portal "x" is not running' }) : ok(undefined);
    },
  };
}

const key = { up: '\u001B[A', down: '\u001B[B', esc: '\u001B' };

test('frames: a dead control plane shows in the header, with what the data path still forwards', () => {
  const last = stream.at(-1)!;
  const dead: PortalStatus = { ...last, running: false, controlPlane: { running: false, lastSeenMs: Date.UTC(2026, 11, 2, 14, 3, 7) }, dataPath: { forwarding: true, packetsLastSecond: 5405 } };
  const r = render(h(Screen, { view: replay([...stream, dead]).view, ui, columns: 200, rows: 24 }));
  const head = (r.lastFrame() ?? '').split('\n')[0]!;
  r.unmount();
  assert.match(head, /CONTROL PLANE NOT RUNNING since 14:03:07 · data path forwarding, 5405 packets in the last second/);
  assert.doesNotMatch(frameOf(stream.length, 200), /NOT RUNNING/, 'not while it runs');
});

test('console: help overlay, selection with arrows and j/k, admin toggle, detach and quit', async (t) => {
  const admin: [number, boolean][] = [];
  const exits: ConsoleExit[] = [];
  const r = render(h(Console, { port: recordedPort(admin), intervalMs: 5, onExit: (e: ConsoleExit) => exits.push(e) }));
  t.after(() => r.unmount());
  const frame = () => r.lastFrame() ?? '';
  await until(() => /Mb\/s\s+[▁▂▃▄▅▆▇█ ]+$/m.test(frame()), 'a frame with throughput');
  assert.match(frame(), /▸ dsl/);
  r.stdin.write('?');
  await until(() => frame().includes('Keys'), 'the help overlay');
  assert.match(frame(), /a {12}take the selected link administratively down/);
  assert.ok(!frame().includes('TX+RX'), 'the overlay replaces the table');
  r.stdin.write('x');
  await until(() => !frame().includes('Keys'), 'help closed by any key');
  r.stdin.write('j');
  await until(() => /▸ 4g/.test(frame()), 'j selects the next link');
  r.stdin.write(key.down);
  await until(() => /▸ sat/.test(frame()), '↓ selects the next link');
  r.stdin.write(key.down);
  await new Promise((res) => setTimeout(res, 30));
  assert.match(frame(), /▸ sat/, 'the selection stops at the last link');
  r.stdin.write('k');
  r.stdin.write(key.up);
  await until(() => /▸ dsl/.test(frame()), 'k and ↑ go back');
  r.stdin.write('j');
  await until(() => /▸ 4g/.test(frame()), 'select 4g');
  r.stdin.write('a');
  await until(() => frame().includes('4g: admin down'), 'the admin result');
  assert.deepEqual(admin, [[1, true]]);
  assert.deepEqual(exits, []);
  r.stdin.write('d');
  await until(() => exits.length > 0, 'detach');
  assert.deepEqual(exits, ['detach']);
  await until(() => /detaching/.test(frame()), 'the detaching note');
  r.stdin.write('q');
  await new Promise((res) => setTimeout(res, 30));
  assert.deepEqual(exits, ['detach'], 'one exit only');
  r.unmount();

  const r2 = render(h(Console, { port: recordedPort(admin), intervalMs: 5, onExit: (e: ConsoleExit) => exits.push(e) }));
  t.after(() => r2.unmount());
  r2.stdin.write('q');
  await until(() => exits.length === 2, 'quit');
  assert.equal(exits[1], 'quit');
  await until(() => /stopping the portal/.test(r2.lastFrame() ?? ''), 'the stopping note');
  r2.unmount();
});

test('console: attached (confirmQuit) asks before q stops the portal; admin errors are shown', async (t) => {
  const admin: [number, boolean][] = [];
  const exits: ConsoleExit[] = [];
  const r = render(h(Console, { port: recordedPort(admin, true), intervalMs: 5, onExit: (e: ConsoleExit) => exits.push(e), confirmQuit: true }));
  t.after(() => r.unmount());
  const frame = () => r.lastFrame() ?? '';
  await until(() => frame().includes('dsl'), 'first frame');
  r.stdin.write('a');
  await until(() => frame().includes('dsl: portal "x" is not running'), 'the error of the admin request');
  r.stdin.write('q');
  await until(() => /Stop portal oprec-lp and tear it down\? \[y\/N\]/.test(frame()), 'the question');
  r.stdin.write('n');
  await until(() => !frame().includes('[y/N]'), 'answer no');
  assert.deepEqual(exits, []);
  r.stdin.write('q');
  await until(() => frame().includes('[y/N]'), 'asked again');
  r.stdin.write('y');
  await until(() => exits.length === 1, 'quit');
  assert.deepEqual(exits, ['quit']);
  r.unmount();
});

test('console: exits with "gone" when the portal is stopped elsewhere (status: not found)', async (t) => {
  const exits: ConsoleExit[] = [];
  let n = 0;
  const port: ConsolePort = {
    snapshot: async () => (n++ < 3 ? ok(stream[n]!) : err({ kind: 'NotFound', what: 'portal', message: 'portal "oprec-lp" is not up' })),
    setAdmin: async () => ok(undefined),
  };
  const r = render(h(Console, { port, intervalMs: 5, onExit: (e: ConsoleExit) => exits.push(e) }));
  t.after(() => r.unmount());
  await until(() => exits.length > 0, 'the exit');
  assert.deepEqual(exits, ['gone']);
  await until(() => /the portal was stopped/.test(r.lastFrame() ?? ''), 'the note');
});
