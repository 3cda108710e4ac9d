// The running portal's control socket: a Unix stream socket in the portal's run directory
// (/run/mpctl/portal/<instance>/control.sock; directory 0700, socket 0600, so only root talks
// to it). One JSON request per line, one JSON answer per line:
//
//   → {"op":"admin","link":1,"down":true}      ← {"ok":true}
//   → {"op":"admin","link":9,"down":true}      ← {"ok":false,"error":"link 9: no such link"}
//
// Reading state never needs it (`mpctl status` reads the pinned maps); it exists for the verbs
// that must reach the run loop in the portal process: the console's `a` key and `mpctl link`.
import { createServer, createConnection, type Server } from 'node:net';
import { chmod, rm } from 'node:fs/promises';
import { err, ok, type Result } from 'neverthrow';
import { describeError, type MpError } from '../errors.js';
import { portalDir } from '../apply/state.js';

export const controlSocket = (instance: string): string => `${portalDir(instance)}/control.sock`;

export type ControlRequest = { op: 'admin'; link: number; down: boolean };
type ControlAnswer = { ok: true } | { ok: false; error: string };

export interface ControlHandlers {
  setAdmin(linkId: number, down: boolean): Promise<Result<void, MpError>>;
}

const MAX_LINE = 4096;

function parseRequest(line: string): ControlRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'not JSON';
  }
  const r = v as Partial<ControlRequest> | null;
  if (r?.op === 'admin' && Number.isInteger(r.link) && typeof r.down === 'boolean') return { op: 'admin', link: r.link!, down: r.down };
  return 'unknown request (expected {"op":"admin","link":<id>,"down":<bool>})';
}

async function answer(h: ControlHandlers, line: string): Promise<ControlAnswer> {
  const req = parseRequest(line);
  if (typeof req === 'string') return { ok: false, error: req };
  const r = await h.setAdmin(req.link, req.down);
  return r.isOk() ? { ok: true } : { ok: false, error: describeError(r.error) };
}

export interface ControlServer {
  close(): Promise<void>;
}

export async function serveControl(instance: string, h: ControlHandlers): Promise<Result<ControlServer, MpError>> {
  const path = controlSocket(instance);
  await rm(path, { force: true });
  const server: Server = createServer((c) => {
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_LINE) return void c.destroy();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void answer(h, line).then((a) => c.write(`${JSON.stringify(a)}\n`));
      }
    });
    c.on('error', () => c.destroy());
  });
  const listening = await new Promise<Error | null>((resolve) => {
    server.once('error', resolve);
    server.listen(path, () => resolve(null));
  });
  if (listening) return err({ kind: 'CommandFailed', cmd: `listen ${path}`, code: null, stderr: listening.message });
  await chmod(path, 0o600);
  return ok({
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
}

/** Sends one request to the portal `instance` and waits for its answer. */
export function controlRequest(instance: string, req: ControlRequest, timeoutMs = 3000): Promise<Result<void, MpError>> {
  const path = controlSocket(instance);
  return new Promise((resolve) => {
    const c = createConnection(path);
    let buf = '';
    const done = (r: Result<void, MpError>) => {
      clearTimeout(timer);
      c.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done(err({ kind: 'Timeout', what: path, message: `portal "${instance}" did not answer on ${path}` })), timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${JSON.stringify(req)}\n`));
    c.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let a: ControlAnswer;
      try {
        a = JSON.parse(buf.slice(0, nl)) as ControlAnswer;
      } catch {
        return done(err({ kind: 'Bug', message: `malformed control answer: ${buf.slice(0, 80)}` }));
      }
      done(a.ok ? ok(undefined) : err({ kind: 'Conflict', what: 'control', message: a.error }));
    });
    c.on('error', (e: NodeJS.ErrnoException) =>
      done(
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? err({ kind: 'NotFound', what: 'portal', message: `portal "${instance}" is not running (no control socket at ${path})` })
          : e.code === 'EACCES'
            ? err({ kind: 'PermissionDenied', message: `${path}: permission denied (run as root)` })
            : err({ kind: 'CommandFailed', cmd: `connect ${path}`, code: null, stderr: e.message }),
      ),
    );
  });
}
