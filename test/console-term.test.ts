// The console as a terminal draws it: Ink's output stream goes into @xterm/headless (a terminal
// emulator, xterm.js without a screen) at 80 and 120 columns while the recorded status stream
// plays, and the emulated screen must hold exactly one frame — one header, one column-title
// line, each link once, the help box whole. A cursor movement one line short (a frame followed
// by ESC[8A for nine lines) leaves stale lines that only an emulator shows: the raw stream
// looks plausible.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PassThrough, Writable } from 'node:stream';
import { ok } from 'neverthrow';
import xterm from '@xterm/headless';
import type { PortalStatus } from '../src/run/status.js';
import { loadConsole } from '../src/tui/load.js';

const stream: PortalStatus[] = readFileSync(new URL('./fixtures/status-stream.ndjson', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as PortalStatus);

/** A terminal of `cols` × `rows`: what is written to `stdout` is drawn on `term`. */
function emulated(cols: number, rows: number) {
  // convertEol: the pty's onlcr (a \n also returns the carriage, as the kernel's tty does)
  const term = new xterm.Terminal({ cols, rows, allowProposedApi: true, convertEol: true });
  let pending = Promise.resolve();
  const stdout = Object.assign(
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        const data = chunk.toString();
        pending = pending.then(() => new Promise<void>((r) => term.write(data, r)));
        cb();
      },
    }),
    { isTTY: true, columns: cols, rows },
  ) as unknown as NodeJS.WriteStream;
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => stdin, ref: () => stdin, unref: () => stdin }) as unknown as NodeJS.ReadStream & PassThrough;
  const screen = async (): Promise<string[]> => {
    await pending;
    const b = term.buffer.active;
    return Array.from({ length: rows }, (_, y) => b.getLine(b.viewportY + y)?.translateToString(true) ?? '');
  };
  return { stdout, stdin, screen };
}

for (const cols of [80, 120]) {
  test(`the console on an emulated ${cols}-column terminal shows one whole frame, frame after frame`, { timeout: 60_000 }, async () => { // the first loads Ink and xterm cold: 6 s alone, >20 s on a loaded machine
    const { runConsole } = await loadConsole();
    const t = emulated(cols, 40);
    let i = 0;
    const port = { snapshot: async () => ok(stream[Math.min(i++, stream.length - 1)]!), setAdmin: async () => ok(undefined) };
    const done = runConsole(port, { intervalMs: 40, stdout: t.stdout, stdin: t.stdin });
    const frames: string[][] = [];
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    for (let k = 0; k < 9; k++) {
      await sleep(60);
      frames.push(await t.screen());
    }
    t.stdin.write('?'); // the help box in place of the table
    for (let waited = 0; !(await t.screen()).some((l) => l.includes('│ Keys')); waited += 20) {
      assert.ok(waited < 3000, 'the help box appears');
      await sleep(20);
    }
    for (let k = 0; k < 3; k++) {
      frames.push(await t.screen());
      await sleep(60);
    }
    t.stdin.write('\x1b'); // close the help
    await new Promise((r) => setTimeout(r, 100));
    t.stdin.write('d');
    assert.equal(await done, 'detach');
    const names = stream[0]!.links.map((l) => l.name!);
    for (const [k, screen] of frames.entries()) {
      const text = screen.join('\n');
      const count = (re: RegExp) => screen.filter((l) => re.test(l)).length;
      if (!text.includes('oprec-lp')) continue; // before the first snapshot
      assert.equal(count(/oprec-lp/), 1, `frame ${k}: one header\n${text}`);
      assert.equal(count(/\? help · a admin down\/up/), 1, `frame ${k}: one footer\n${text}`);
      for (const l of screen) assert.ok([...l].length <= cols, `frame ${k}: a line wider than the terminal`);
      if (k <= 8) {
        assert.equal(count(/^\s*LINK\s+(DEV\s+)?STATE\b/), 1, `frame ${k}: one column-title line\n${text}`);
        for (const n of names) assert.equal(count(new RegExp(`^[▸ ] ${n}\\s`)), 1, `frame ${k}: link ${n} once\n${text}`);
      } else {
        // the help box in place of the table: whole, with its top and bottom borders
        assert.equal(count(/^╭─+╮$/), 1, `frame ${k}: the help box's top border\n${text}`);
        assert.equal(count(/^╰─+╯$/), 1, `frame ${k}: the help box's bottom border\n${text}`);
        assert.equal(count(/^\s*LINK\s/), 0, `frame ${k}: nothing of the table is left\n${text}`);
      }
    }
  });
}
