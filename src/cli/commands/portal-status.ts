// What `mpctl status` and `mpctl link` do: ask a running portal (its pinned maps, its control
// socket). Kept apart from portal-run.ts so that these load none of what bringing a portal up
// needs: `mpctl status` is what a router's monitoring runs every few seconds.
import type { Arguments } from 'yargs';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../../errors.js';
import { portalStatus, statusText } from '../../run/status.js';
import { controlRequest } from '../../run/control.js';

type Args = Arguments;

export async function runStatus(a: Args): Promise<Result<number, MpError>> {
  const instance = a.instance as string;
  const once = async (): Promise<Result<string, MpError>> =>
    (await portalStatus(instance)).map((s) => (a.json ? JSON.stringify(s, null, a.watch ? 0 : 2) : statusText(s)));
  if (!a.watch) {
    const s = await once();
    if (s.isErr()) return err(s.error);
    console.log(s.value);
    return ok(0);
  }
  const clear = process.stdout.isTTY && !a.json;
  for (;;) {
    const s = await once();
    if (s.isErr()) return err(s.error);
    // on a terminal: home, each line cleared to its end, then the rest of the screen — the
    // text is rewritten in place rather than blanked and redrawn
    process.stdout.write(clear ? `\x1b[H${s.value.replace(/\n/g, '\x1b[K\n')}\x1b[K\n\x1b[J` : `${s.value}\n`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export async function runLink(a: Args): Promise<Result<number, MpError>> {
  const instance = a.instance as string;
  const s = await portalStatus(instance);
  if (s.isErr()) return err(s.error);
  const name = String(a.link);
  const l = s.value.links.find((x) => x.name === name) ?? (/^\d+$/.test(name) ? s.value.links.find((x) => x.id === Number(name)) : undefined);
  if (!l) {
    const unnamed = s.value.role === 'remote' && s.value.links.every((x) => x.name === null);
    const hint = unnamed ? "; give the RP the LP's names with link_names in its config" : '';
    return err({ kind: 'NotFound', what: 'link', message: `portal ${instance} has no link "${name}" (links: ${s.value.links.map((x) => x.name ?? x.id).join(', ') || 'none'}${hint})` });
  }
  const r = await controlRequest(instance, { op: 'admin', link: l.id, down: a.state === 'down' });
  if (r.isErr()) return err(r.error);
  console.log(`portal ${instance}: link ${l.name ?? l.id} admin ${a.state}`);
  return ok(0);
}
