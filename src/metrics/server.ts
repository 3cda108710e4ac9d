// The portal's Prometheus endpoint (`metrics_listen = "127.0.0.1:9472"`): GET /metrics reads the
// same pinned maps and published status as `mpctl status` at scrape time and answers in the
// text exposition format. Off unless configured; bind it to loopback or a management address.
import { createServer, type Server } from 'node:http';
import { err, ok, type Result } from 'neverthrow';
import { describeError, type MpError } from '../errors.js';
import type { PortalStatus } from '../run/status.js';
import { exposition } from './exposition.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsServer {
  /** the bound address (port 0 in the config picks a free one: tests) */
  port: number;
  close(): Promise<void>;
}

export async function serveMetrics(
  listen: { host: string; port: number },
  snapshot: () => Promise<Result<PortalStatus, MpError>>,
): Promise<Result<MetricsServer, MpError>> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('mpctl portal metrics: /metrics\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    void snapshot().then((s) => {
      if (s.isErr()) {
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end(`${describeError(s.error)}\n`);
        return;
      }
      const body = exposition(s.value);
      res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) }).end(req.method === 'HEAD' ? undefined : body);
    });
  });
  server.keepAliveTimeout = 5000;
  const e = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    server.once('error', resolve);
    server.listen({ host: listen.host, port: listen.port, exclusive: true }, () => resolve(null));
  });
  const where = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
  if (e)
    return err(
      e.code === 'EADDRINUSE'
        ? { kind: 'Conflict', what: 'metrics_listen', message: `metrics_listen ${where} is in use by another process` }
        : e.code === 'EADDRNOTAVAIL'
          ? { kind: 'ConfigInvalid', path: 'metrics_listen', value: where, message: 'is not an address of this host' }
          : { kind: 'CommandFailed', cmd: `listen ${where}`, code: null, stderr: e.message },
    );
  const addr = server.address();
  return ok({
    port: typeof addr === 'object' && addr ? addr.port : listen.port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}
