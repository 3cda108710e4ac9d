// The interactive console of a running portal: polls its status (model.ts turns the stream into
// rows), draws it (screen.tsx) and handles the keys. It talks to the portal only through a
// ConsolePort — the pinned maps and published status for reading, the control socket for the
// admin switch — so the same console serves `mpctl up` on a terminal and `mpctl attach`, and
// tests drive it with a recorded stream.
import { useEffect, useRef, useState } from 'react';
import { render, useInput, useStdout } from 'ink';
import type { Result } from 'neverthrow';
import { describeError, type MpError } from '../errors.js';
import type { PortalStatus } from '../run/status.js';
import { emptyModel, step, type Model } from './model.js';
import { Screen, type UiState } from './screen.js';

export interface ConsolePort {
  snapshot(): Promise<Result<PortalStatus, MpError>>;
  setAdmin(linkId: number, down: boolean): Promise<Result<void, MpError>>;
}

/** quit: the user asked to stop the portal; detach: to leave it running; gone: the portal
 *  was stopped from elsewhere (`mpctl down`, systemctl stop) while the console watched it. */
export type ConsoleExit = 'quit' | 'detach' | 'gone';

export interface ConsoleProps {
  port: ConsolePort;
  /** 250: four updates a second */
  intervalMs: number;
  onExit: (how: ConsoleExit) => void;
  /** ask before `q` stops the portal (attached to a portal this process did not start) */
  confirmQuit?: boolean;
}

function useTerminalSize(): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const get = () => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState(get);
  useEffect(() => {
    const on = () => setSize(get());
    stdout.on('resize', on);
    return () => void stdout.off('resize', on);
  }, [stdout]);
  return size;
}

export function Console({ port, intervalMs, onExit, confirmQuit = false }: ConsoleProps) {
  const [model, setModel] = useState<Model>(emptyModel);
  const [ui, setUi] = useState<UiState>({ selected: 0, help: false, message: null, confirm: null });
  const size = useTerminalSize();
  const done = useRef(false);

  useEffect(() => {
    let timer: NodeJS.Timeout | undefined;
    let live = true;
    const poll = async () => {
      const s = await port.snapshot();
      if (!live) return;
      if (s.isOk()) setModel((m) => step(m, s.value));
      else if (s.error.kind === 'NotFound') return exit('gone');
      else setUi((u) => ({ ...u, message: describeError(s.error) }));
      timer = setTimeout(() => void poll(), intervalMs);
    };
    void poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [port, intervalMs]);

  const exit = (how: ConsoleExit) => {
    if (done.current) return;
    done.current = true;
    const note = { quit: 'stopping the portal…', detach: 'detaching…', gone: 'the portal was stopped' }[how];
    setUi((u) => ({ ...u, confirm: null, help: false, message: note }));
    onExit(how);
  };

  // the key handler reads the latest state through refs: Ink re-subscribes it in an effect, and
  // a key that arrives before that effect runs must not see the previous frame's state
  const rows = model.view?.rows ?? [];
  const latest = useRef({ ui, rows, instance: model.view?.instance ?? '' });
  latest.current = { ui, rows, instance: model.view?.instance ?? '' };
  useInput((input, key) => {
    if (done.current) return;
    const { ui, rows } = latest.current;
    if (ui.confirm) {
      if (input === 'y' || input === 'Y') exit('quit');
      else setUi((u) => ({ ...u, confirm: null, message: null }));
      return;
    }
    if (ui.help) {
      // any key closes the help; q and Ctrl-C still act
      if (!(input === 'q' || (key.ctrl && input === 'c'))) {
        setUi((u) => ({ ...u, help: false }));
        return;
      }
    }
    if (input === 'q' || (key.ctrl && input === 'c')) {
      if (confirmQuit) setUi((u) => ({ ...u, help: false, confirm: `Stop portal ${latest.current.instance} and tear it down?` }));
      else exit('quit');
    } else if (input === 'd') exit('detach');
    else if (input === '?') setUi((u) => ({ ...u, help: true }));
    else if (key.upArrow || input === 'k') setUi((u) => ({ ...u, selected: Math.max(0, u.selected - 1) }));
    else if (key.downArrow || input === 'j') setUi((u) => ({ ...u, selected: Math.min(Math.max(0, rows.length - 1), u.selected + 1) }));
    else if (input === 'a') {
      const r = rows[ui.selected];
      if (!r) return;
      const down = r.state !== 'admin-down';
      setUi((u) => ({ ...u, message: `${r.label}: ${down ? 'taking down' : 'bringing up'}…` }));
      void port.setAdmin(r.id, down).then((res) =>
        setUi((u) => ({ ...u, message: res.isOk() ? `${r.label}: admin ${down ? 'down' : 'up'}` : `${r.label}: ${describeError(res.error)}` })),
      );
    }
  });

  return <Screen view={model.view} ui={{ ...ui, selected: Math.min(ui.selected, Math.max(0, rows.length - 1)) }} columns={size.columns} rows={size.rows} />;
}

/** Runs the console on this terminal until the user quits or detaches. */
export async function runConsole(
  port: ConsolePort,
  /** `stdout`/`stdin`: the terminal (default: this process's; tests give an emulated one) */
  opts: { intervalMs?: number; confirmQuit?: boolean; stdout?: NodeJS.WriteStream; stdin?: NodeJS.ReadStream } = {},
): Promise<ConsoleExit> {
  let resolveExit!: (how: ConsoleExit) => void;
  const chosen = new Promise<ConsoleExit>((r) => (resolveExit = r));
  const app = render(<Console port={port} intervalMs={opts.intervalMs ?? 250} onExit={(h) => resolveExit(h)} confirmQuit={opts.confirmQuit} />, {
    exitOnCtrlC: false,
    patchConsole: true,
    ...(opts.stdout ? { stdout: opts.stdout } : {}),
    ...(opts.stdin ? { stdin: opts.stdin } : {}),
    // whole frames: Ink's incremental mode moved the cursor up one line too few after a frame
    // (a 9-line frame, then ESC[8A), so a real terminal kept the header and first row of every
    // frame down the screen (test/console-term.test.ts draws the stream in a terminal
    // emulator). Each frame still goes out inside the terminal's synchronized-output brackets
    // and erases line by line, never the whole screen: no flicker at 4 updates/s.
    incrementalRendering: false,
  });
  const how = await chosen;
  // let the last frame ("stopping…") reach the terminal, then give it back
  await new Promise((r) => setTimeout(r, 50));
  app.unmount();
  await app.waitUntilExit();
  return how;
}
