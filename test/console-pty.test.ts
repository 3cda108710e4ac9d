// `mpctl up local` on a real pseudo-terminal inside the lab, with traffic flowing: the console
// shows both links up with non-zero rates; its Prometheus endpoint is scraped and parsed and
// `status --json` validated against the schema; `a` takes a link down and up; `d` detaches
// (the portal keeps running and keeps probing); `mpctl attach` asks before `q` and exits when
// `mpctl down` from another shell stops the portal; `up` again and `q` stops and tears down,
// without a single full-screen clear (no flicker). `mpctl attach` at 80 and 120 columns: its
// output drawn by @xterm/headless (a terminal emulator) holds one whole frame — a cursor
// movement one line short leaves stale header and link lines only an emulator shows. `mpctl link
// l2 down` on the LP takes l2 out both ways: the RP sends (almost) none of a download on it, and
// uses it again after `link l2 up`. The RP takes the LP's link names (`mpctl link l2 down` there).
//
//   client ── lp ═╦═ isp1 (20 Mbit, 10 ms) ═╦═ inet ── rp ── server (iperf3 -s)
//                 ╚═ isp2 (20 Mbit, 15 ms) ═╝
//   the lab starts both portals; the test stops the lab's LP and runs its own `mpctl up local`
//   under `script` (util-linux) in the lp namespace, typing keys into the pty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mpctlPath } from '../src/lab/lab.js';
import { iperf } from '../src/lab/measure.js';
import { run } from '../src/lab/namespaces.js';
import { parseScenario } from '../src/lab/scenario.js';
import { portalInstance } from '../src/lab/bond.js';
import { labDir } from '../src/lab/state.js';
import { nsName } from '../src/lab/topology.js';
import { withLab } from './helpers/lab.js';
import { labStatus, waitFor as waitUntil } from './helpers/wait.js';
import { parseExposition, valueOf } from './helpers/prom.js';
import { validateStatus } from './helpers/status-schema.js';
import { existsSync } from 'node:fs';
import xterm from '@xterm/headless';
import { readFile, writeFile } from 'node:fs/promises';
import { logFile } from '../src/apply/state.js';

const scenario = parseScenario({ links: [{ label: 'l1', rate: '20mbit', delay: '10ms', queue: '60ms' }, { label: 'l2', rate: '20mbit', delay: '15ms', queue: '60ms' }] }, 't')._unsafeUnwrap();

/** The screen as text: escape sequences removed, the last frame's lines. */
const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b[()][A-Z0-9]/g, '');

interface Pty {
  p: ChildProcessWithoutNullStreams;
  out: () => string;
  exited: Promise<number | null>;
}

function pty(ns: string, cmd: string, cols = 120): Pty {
  // script gives the command a pty; COLUMNS/LINES size it (no terminal to ask)
  // CI=true as on our CI machine and on CI VMs that script set-up: Ink must still draw live
  // frames on a terminal (it drew nothing until exit there, and this test timed out in CI)
  const env = { ...process.env, CI: 'true' };
  const p = spawn('ip', ['netns', 'exec', ns, 'script', '-qfec', `stty cols ${cols} rows 30; ${cmd}`, '/dev/null'], { stdio: 'pipe', env });
  let buf = '';
  p.stdout.on('data', (d: Buffer) => (buf += d.toString()));
  p.stderr.on('data', (d: Buffer) => (buf += d.toString()));
  return { p, out: () => buf, exited: new Promise((r) => p.once('exit', (c) => r(c))) };
}

async function waitFor(what: string, f: () => boolean, ms: number, show: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; output:\n${plain(show()).slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The terminal's screen after `raw` (a pty's output: the tty made each \n \r\n already). */
async function emulatedScreen(raw: string, cols: number, rows = 30): Promise<string[]> {
  const term = new xterm.Terminal({ cols, rows, allowProposedApi: true });
  await new Promise<void>((r) => term.write(raw, r));
  const b = term.buffer.active;
  return Array.from({ length: rows }, (_, y) => b.getLine(b.viewportY + y)?.translateToString(true) ?? '');
}

/** One whole frame on the emulated screen: one header, one column-title line, each link once, one footer. */
function assertOneFrame(screen: string[], instance: string, links: string[], cols: number): void {
  const text = screen.join('\n');
  const count = (re: RegExp) => screen.filter((l) => re.test(l)).length;
  assert.equal(count(new RegExp(`mpctl ${instance} \\(Local Portal\\)`)), 1, `${cols} columns: one header\n${text}`);
  assert.equal(count(/^\s*LINK\s+(DEV\s+)?STATE\b/), 1, `${cols} columns: one column-title line\n${text}`);
  for (const n of links) assert.equal(count(new RegExp(`^[▸ ] ${n}\\s`)), 1, `${cols} columns: link ${n} once\n${text}`);
  assert.equal(count(/\? help · a admin down\/up/), 1, `${cols} columns: one footer\n${text}`);
}

/** The last rendered row of link `name`. */
const lastRow = (out: string, name: string) => plain(out).split(/\r?\n|\r/).filter((l) => new RegExp(`^[▸ ] ${name}\\s`).test(l)).at(-1) ?? '';

test('mpctl up local on a pty in the lab: both links up with live rates, metrics; detach, attach, down elsewhere, quit', { timeout: 180_000 }, async () => {
  let logOf = '';
  await withLab(
    scenario,
    async (lab) => {
      const lp = nsName(lab, 'lp');
      const instance = portalInstance(lab, 'lp');
      const mpctl = mpctlPath();
      const down = await run('ip', ['netns', 'exec', lp, mpctl, 'down', '--instance', instance], 20_000);
      assert.ok(down.isOk(), 'stop the LP the lab started');

      // the lab's LP config with the metrics endpoint on (top-level keys go before [[link]])
      const cfg = `${labDir(lab)}/lp-metrics.toml`;
      // … and a 1 GB budget on l1, to see it in status and metrics
      const labCfg = await readFile(`${labDir(lab)}/lp.toml`, 'utf8');
      assert.ok(labCfg.includes('[[link]]\n'));
      await writeFile(cfg, `metrics_listen = "127.0.0.1:9472"\n${labCfg.replace('[[link]]\n', '[[link]]\nbudget = "1GB"\n')}`);
      const t0 = Date.now();
      const t = pty(lp, `${mpctl} up local --config ${cfg}`);
      try {
        await waitFor('both links up', () => /up/.test(lastRow(t.out(), 'l1')) && /up/.test(lastRow(t.out(), 'l2')), 30_000, t.out);
        const flow = iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 6 });
        const rate = (row: string) => Number(/\s([\d.]+) Mb\/s\s+[\d.]+ (?:[kM]b|b)\/s/.exec(row.split(' %')[1] ?? '')?.[1] ?? 0);
        await waitFor('non-zero tx on both links', () => rate(lastRow(t.out(), 'l1')) > 1 && rate(lastRow(t.out(), 'l2')) > 1, 15_000, t.out);
        const rows = [lastRow(t.out(), 'l1'), lastRow(t.out(), 'l2')];
        const total = plain(t.out()).match(/total tx ([\d.]+) Mb\/s[^\n\r]*/g)?.at(-1) ?? '';
        console.log(`console rows:\n${rows.join('\n')}\n${total}`);
        for (const r of rows) assert.match(r, /^[▸ ] l\d\s+\S+\s+up\s/);
        assert.match(plain(t.out()), /session authenticated · peer \S+ · key \d+ · age /, 'the session line');
        const f = await flow;
        assert.ok(f.isOk(), `iperf3: ${JSON.stringify(f.isErr() ? f.error : null)}`);
        console.log(`iperf3 through the bond while the console ran: ${(f._unsafeUnwrap().bps / 1e6).toFixed(1)} Mbit/s`);
        const scrape = await run('ip', ['netns', 'exec', lp, 'curl', '-sfS', 'http://127.0.0.1:9472/metrics']);
        assert.ok(scrape.isOk(), `scrape: ${JSON.stringify(scrape.isErr() ? scrape.error : null)}`);
        const m = parseExposition(scrape._unsafeUnwrap());
        for (const link of ['l1', 'l2']) {
          assert.equal(valueOf(m, 'mpctl_link_up', { link }), 1, `${link} up in the metrics`);
          assert.ok(valueOf(m, 'mpctl_link_tx_bytes_total', { link })! > 1e6, `${link} carried > 1 MB`);
          assert.ok(valueOf(m, 'mpctl_link_rtt_seconds', { link })! > 0.01, `${link} RTT`);
        }
        assert.equal(valueOf(m, 'mpctl_session_established'), 1);
        const left = valueOf(m, 'mpctl_link_budget_remaining_bytes', { link: 'l1' })!;
        assert.ok(left < 1e9 - 1e6 && left > 0.9e9, `l1 budget left ${left}`);
        assert.equal(valueOf(m, 'mpctl_link_budget_remaining_bytes', { link: 'l2' }), undefined);
        assert.ok(valueOf(m, 'mpctl_handshakes_total')! >= 1);
        console.log(`metrics: ${m.samples.length} samples in ${m.types.size} families; l1 tx ${valueOf(m, 'mpctl_link_tx_bytes_total', { link: 'l1' })} B`);

        // `a` on the selected first link: admin-down through the control socket, and back
        t.p.stdin.write('a');
        await waitFor('l1 admin-down', () => /admin-down/.test(lastRow(t.out(), 'l1')), 5000, t.out);
        t.p.stdin.write('a');
        await waitFor('l1 up again', () => /\sup\s/.test(lastRow(t.out(), 'l1')), 5000, t.out);

        t.p.stdin.write('d');
        assert.equal(await t.exited, 0, 'detach exits 0');
        assert.match(plain(t.out()), /keeps running in the background \(pid \d+/);
        const clears = (t.out().match(/\x1b\[2J|\x1b\[3J/g) ?? []).length;
        console.log(`console output while traffic flowed: ${t.out().length} bytes in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${clears} screen clears`);
        assert.equal(clears, 0, 'the frame fits the terminal: Ink never clears the screen (no flicker)');
      } finally {
        t.p.kill();
      }
      // detached: the portal process and its run loop are alive (probes answered, links up)
      const st = await run('ip', ['netns', 'exec', lp, mpctl, 'status', '--instance', instance, '--json']);
      assert.ok(st.isOk(), 'status after detach');
      const s = JSON.parse(st._unsafeUnwrap()) as { running: boolean; links: { state: string; probesHeard: number }[] };
      assert.ok(validateStatus(s), `live status --json against docs/status.schema.json: ${JSON.stringify(validateStatus.errors)}`);
      assert.equal(s.running, true);
      const b = (s as unknown as { links: { budget: { limitBytes: number; leftBytes: number; exhausted: boolean } | null }[] }).links;
      assert.equal(b[0]!.budget?.limitBytes, 1e9);
      assert.equal(b[0]!.budget?.exhausted, false);
      assert.equal(b[1]!.budget, null);
      assert.deepEqual(s.links.map((l) => l.state), ['up', 'up']);
      // the run loop publishes once a second: the count moves within two publications
      const heard = s.links[0]!.probesHeard;
      let now = heard;
      const until = Date.now() + 2500;
      while (now <= heard && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
        now = (JSON.parse((await run('ip', ['netns', 'exec', lp, mpctl, 'status', '--instance', instance, '--json']))._unsafeUnwrap()) as typeof s).links[0]!.probesHeard;
      }
      assert.ok(now > heard, `probes keep going after detach (${heard} → ${now})`);

      // mpctl link from another shell: through the control socket to the run loop
      const ld = await run('ip', ['netns', 'exec', lp, mpctl, 'link', 'l2', 'down', '--instance', instance]);
      assert.ok(ld.isOk() && /link l2 admin down/.test(ld.value), 'mpctl link l2 down');
      const s3 = JSON.parse((await run('ip', ['netns', 'exec', lp, mpctl, 'status', '--instance', instance, '--json']))._unsafeUnwrap()) as typeof s;
      assert.equal(s3.links[1]!.state, 'admin-down');
      // both directions: the LP's probes carry the flag, and the RP stops sending on l2 too
      await waitUntil("the RP holds l2 down from the LP's probes", () => labStatus(lab, 'rp'), (x) => x.links.find((l) => l.id === 1)?.state === 'admin-down', 3000);
      // … and a download (server → client: the RP sends) goes on l1 alone: the RP's per-link tx
      // bytes over the flow (the issue: 28.9 MB in 12 s still went on the admin-down link)
      const download = async () => {
        const tx = async () => (await labStatus(lab, 'rp')).links.map((l) => l.tx.bytes);
        const before = await tx();
        const f = await iperf(lab, { server: { node: 'server', addr: '203.0.113.2' }, client: { node: 'client' }, seconds: 3, reverse: true });
        assert.ok(f.isOk(), `iperf3 -R: ${JSON.stringify(f.isErr() ? f.error : null)}`);
        const after = await tx();
        return { mbps: f.value.bps / 1e6, l1: after[0]! - before[0]!, l2: after[1]! - before[1]! };
      };
      const held = await download();
      console.log(`download with l2 admin-down on the LP: ${held.mbps.toFixed(1)} Mbit/s; RP sent l1 ${held.l1} B, l2 ${held.l2} B`);
      assert.ok(held.l1 > 2e6, `the download went on l1 (${held.l1} B)`);
      assert.ok(held.l2 < held.l1 / 100, `the RP sent (almost) nothing on the admin-down l2: ${held.l2} B against l1's ${held.l1} B`);
      assert.ok((await run('ip', ['netns', 'exec', lp, mpctl, 'link', 'l2', 'up', '--instance', instance])).isOk());
      // `link up`: the RP takes l2 back, and the next download uses it again
      await waitUntil('the RP has l2 up again', () => labStatus(lab, 'rp'), (x) => x.links.find((l) => l.id === 1)?.state === 'up', 3000);
      const back = await download();
      console.log(`download after link l2 up: ${back.mbps.toFixed(1)} Mbit/s; RP sent l1 ${back.l1} B, l2 ${back.l2} B`);
      assert.ok(back.l2 > 0.1 * (back.l1 + back.l2), `l2 carries its part again: ${back.l2} B of ${back.l1 + back.l2} B`);
      const nope = await run('ip', ['netns', 'exec', lp, mpctl, 'link', 'l9', 'down', '--instance', instance]);
      assert.ok(nope.isErr() && nope.error.kind === 'CommandFailed' && nope.error.code === 3 && /has no link "l9" \(links: l1, l2\)/.test(nope.error.stderr), 'unknown link: exit 3');

      // status --watch --json from another shell: one schema-valid object per second
      // (until it printed two lines: mpctl's start-up takes 1-4 s on a loaded 2-CPU machine)
      const w = spawn('ip', ['netns', 'exec', lp, mpctl, 'status', '--instance', instance, '--watch', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let wOut = '';
      w.stdout.on('data', (d: Buffer) => (wOut += d.toString()));
      w.stderr.on('data', (d: Buffer) => (wOut += d.toString()));
      const wExit = new Promise<number | null>((r) => w.once('exit', (c) => r(c)));
      try {
        await waitFor('two --watch lines', () => wOut.split('\n').length > 2, 15_000, () => wOut);
        assert.equal(w.exitCode, null, `--watch runs until stopped: ${wOut}`);
      } finally {
        w.kill('SIGTERM');
      }
      await wExit;
      const watched = wOut.trim().split('\n').filter(Boolean);
      for (const l of watched) assert.ok(validateStatus(JSON.parse(l)), JSON.stringify(validateStatus.errors));
      assert.ok((JSON.parse(watched.at(-1)!) as { time: number }).time - (JSON.parse(watched[0]!) as { time: number }).time >= 900, 'about a second apart');

      // the RP takes the LP's link names (the lab writes its link_names)
      const rp = nsName(lab, 'rp');
      const rpInstance = portalInstance(lab, 'rp');
      const rpLinks = async () => (await labStatus(lab, 'rp')).links;
      const rd = await run('ip', ['netns', 'exec', rp, mpctl, 'link', 'l2', 'down', '--instance', rpInstance]);
      assert.ok(rd.isOk() && /link l2 admin down/.test(rd.value), `mpctl link l2 down on the RP: ${JSON.stringify(rd)}`);
      assert.deepEqual((await rpLinks()).map((l) => [l.name, l.state]), [['l1', 'up'], ['l2', 'admin-down']]);
      assert.ok((await run('ip', ['netns', 'exec', rp, mpctl, 'link', '1', 'up', '--instance', rpInstance])).isOk(), 'and by number');
      assert.notEqual((await rpLinks())[1]!.state, 'admin-down');

      // the screen of `mpctl attach` as a terminal draws it, after frames went by: one frame
      const oneFrameAfterFrames = async (v: Pty, cols: number) => {
        await waitFor('the console', () => /up/.test(lastRow(v.out(), 'l1')), 15_000, v.out);
        const frames = () => (plain(v.out()).match(/\? help · a admin down\/up/g) ?? []).length;
        const seen = frames();
        await waitFor('two more frames', () => frames() >= seen + 2, 5000, v.out);
        assertOneFrame(await emulatedScreen(v.out(), cols), instance, ['l1', 'l2'], cols);
      };
      const narrow = pty(lp, `${mpctl} attach --instance ${instance}`, 80);
      try {
        await oneFrameAfterFrames(narrow, 80);
        narrow.p.stdin.write('d');
        assert.equal(await narrow.exited, 0, 'detach exits 0');
      } finally {
        narrow.p.kill();
      }

      // attach again (120 columns); q asks (n: no); then `mpctl down` from another shell: the console notices
      const a = pty(lp, `${mpctl} attach --instance ${instance}`);
      try {
        await oneFrameAfterFrames(a, 120);
        a.p.stdin.write('q');
        await waitFor('the question', () => /\[y\/N\]/.test(plain(a.out())), 5000, a.out);
        a.p.stdin.write('n');
        const d = await run('ip', ['netns', 'exec', lp, mpctl, 'down', '--instance', instance], 20_000);
        assert.ok(d.isOk(), 'mpctl down from another shell');
        assert.equal(await a.exited, 0, 'the console exits 0 when the portal is stopped elsewhere');
        assert.match(plain(a.out()), /portal \S+ was stopped from elsewhere/);
      } finally {
        a.p.kill();
      }

      // up again and q: the portal stops, tears down, and the console exits 0
      const u = pty(lp, `${mpctl} up local --config ${cfg}`);
      try {
        await waitFor('links up', () => /up/.test(lastRow(u.out(), 'l2')), 30_000, u.out);
        u.p.stdin.write('q');
        assert.equal(await u.exited, 0, 'q exits 0 after a clean teardown');
        assert.match(plain(u.out()), /portal \S+: down/);
        // no full-screen clear after the first frame: Ink rewrote lines in place (no flicker)
        const out = u.out();
        const clears = (out.match(/\x1b\[2J|\x1b\[3J/g) ?? []).length;
        console.log(`console output: ${out.length} bytes for the session, ${clears} screen clears`);
        assert.equal(clears, 0, 'the frame fits the terminal: Ink never clears the screen');
      } finally {
        u.p.kill();
      }
      const gone = await run('ip', ['netns', 'exec', lp, mpctl, 'status', '--instance', instance]);
      assert.ok(gone.isErr(), 'status after q: not up');
      const left = await run('ip', ['netns', 'exec', lp, 'tc', 'filter', 'show', 'dev', 'lan', 'ingress']);
      assert.equal(left.isOk() ? left.value.trim() : 'error', '', 'no filter left on lan');
      logOf = logFile(instance);
      assert.ok(existsSync(logOf), 'down keeps the background portal\'s log (a look at what happened)');
    },
    { bond: true },
  );
  assert.equal(existsSync(logOf), false, 'the lab\'s teardown removes its portals\' logs, even after a failure');
});
