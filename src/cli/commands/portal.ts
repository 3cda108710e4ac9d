// `mpctl up local|remote`, `mpctl down`, `mpctl status`, `mpctl attach`, `mpctl link`.
//
// `up` on a terminal (stdin and stdout TTYs, no --no-tui) starts the portal as a background
// process (background.ts) and shows the console (src/tui/) until `q` (stop the portal, tear
// down) or `d` (detach: the portal keeps running; `mpctl attach` shows the console again,
// `mpctl down` stops it). Otherwise `up` runs the portal in the foreground with log lines
// (`time msg key=value ...`), as systemd wants it.
//
// Exit codes (src/cli/exit.ts): 0 stopped cleanly or detached · 1 runtime failure or an
// incomplete teardown · 2 bad usage/config · 3 not found · 4 conflict · 5 not root · 70 bug.
import { closeSync, writeSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../../errors.js';
import type { PortalConfig } from '../../config/types.js';
import { loadConfig } from '../../config/parse.js';
import { planPortal } from '../../plan/plan.js';
import { loadPolicy } from '../../plan/policy.js';
import { checkInterfaces, dryRunScript } from '../../plan/dry-run.js';
import { loadStaticKeys } from '../../security/auth.js';
import { openRtnl } from '../../netlink/rtnl.js';
import { planFacts, portalDown, portalUp, type RunningPortal } from '../../apply/portal.js';
import { portalStatus, statusText } from '../../run/status.js';
import { logFile, readPortalState } from '../../apply/state.js';
import { controlRequest, serveControl } from '../../run/control.js';
import { serveMetrics } from '../../metrics/server.js';
import { isAlive } from '../../proc.js';
import type { ConsolePort } from '../../tui/console.js';
import { loadConsole } from '../../tui/load.js';
import { rotateOwnLog, startInBackground } from '../background.js';
import { EXIT } from '../exit.js';
import { instanceOption } from '../options.js';
import { run } from '../run.js';

/** Structured log lines for systemd / files: `time msg key=value ...`. */
function logLine(msg: string, fields: Record<string, unknown> = {}): void {
  const kv = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  process.stdout.write(`${new Date().toISOString()} ${msg}${kv.length ? ` ${kv.join(' ')}` : ''}\n`);
}

/** The host checks `up` makes first (key file, interfaces), then the plan as a script; changes nothing. */
async function dryRun(cfg: PortalConfig, configFile: string): Promise<Result<number, MpError>> {
  const keys = await loadStaticKeys(cfg);
  if (keys.isErr()) return err(keys.error);
  // the plan needs the interfaces' addresses and MTUs; read them, change nothing
  const rt = openRtnl(null);
  if (rt.isErr()) return err(rt.error);
  const facts = await planFacts(rt.value);
  rt.value.close();
  if (facts.isErr()) return err(facts.error);
  const present = checkInterfaces(cfg, facts.value.mtus);
  if (present.isErr()) return err(present.error);
  const policy = await loadPolicy();
  if (policy.isErr()) return err(policy.error);
  const plan = planPortal(cfg, policy.value, facts.value);
  if (plan.isErr()) return err(plan.error);
  for (const l of dryRunScript(cfg, plan.value, configFile)) console.log(l);
  return ok(0);
}

/** The run loop's administrative switch, for the control socket (the loop logs the change). */
const adminSwitch = (p: RunningPortal) => async (linkId: number, down: boolean) => p.runtime.setAdmin(linkId, down);

/** The portal in this process, until SIGINT/SIGTERM (tear down) or SIGUSR2 (hand over: exit 75,
 * the data path left running for the next `up`): what systemd and the background process run. */
async function runForeground(cfg: PortalConfig, configFile: string, readyFd: number | undefined): Promise<Result<number, MpError>> {
  const up = await portalUp(cfg, configFile, logLine);
  if (up.isErr()) return err(up.error);
  if (up.value === 'already-up') {
    logLine('portal already up', { instance: cfg.instance });
    return ok(0);
  }
  const p = up.value;
  const stopRotating = await rotateOwnLog(); // the log of a background or lab portal
  const control = await serveControl(cfg.instance, { setAdmin: adminSwitch(p) });
  if (control.isErr()) logLine('control socket unavailable: admin down/up will not work', { error: control.error });
  const services: { close(): Promise<void> }[] = control.isOk() ? [control.value] : [];
  if (cfg.metricsListen) {
    const m = await serveMetrics(cfg.metricsListen, () => portalStatus(cfg.instance));
    if (m.isErr()) {
      // asked for explicitly: an endpoint that cannot bind is a failed `up`, not a warning
      for (const s of services) await s.close();
      await p.stop();
      return err(m.error);
    }
    services.push(m.value);
    logLine('metrics', { listen: `${cfg.metricsListen.host.includes(':') ? `[${cfg.metricsListen.host}]` : cfg.metricsListen.host}:${m.value.port}`, path: '/metrics' });
  }
  if (readyFd !== undefined) {
    try {
      writeSync(readyFd, `ready ${process.pid}\n`);
      closeSync(readyFd);
    } catch {
      /* the console that started us is gone: keep running */
    }
  }
  // run until asked to stop; tear down on SIGINT/SIGTERM
  const code = await new Promise<number>((resolve) => {
    const stop = async (sig: string) => {
      logLine('stopping', { signal: sig });
      stopRotating();
      for (const s of services) await s.close();
      const r = await p.stop();
      if (r.isErr()) logLine('teardown incomplete', { error: r.error });
      resolve(r.isErr() ? 1 : 0);
    };
    // SIGUSR2: end this process, leave the data path to the next `up` (hitless re-exec)
    const handOver = async () => {
      logLine('leaving the data path running for the next `mpctl up` to adopt', { signal: 'SIGUSR2' });
      stopRotating();
      for (const s of services) await s.close();
      await p.handOver();
      resolve(EXIT.handover);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGUSR2', () => void handOver());
  });
  logLine('portal down', { instance: cfg.instance });
  return ok(code);
}

function consolePort(instance: string): ConsolePort {
  return {
    snapshot: () => portalStatus(instance),
    setAdmin: (link, down) => controlRequest(instance, { op: 'admin', link, down }),
  };
}

/** The console against the running portal `instance`; `q` stops it, `d` leaves it running. */
async function attach(instance: string, confirmQuit: boolean, child?: Promise<number>): Promise<Result<number, MpError>> {
  // the terminal going away (SIGHUP) or a SIGTERM to the console: stop the portal as `q` would
  let onSignal!: () => void;
  const signalled = new Promise<'quit'>((r) => (onSignal = () => r('quit')));
  process.once('SIGHUP', onSignal);
  process.once('SIGTERM', onSignal);
  const { runConsole } = await loadConsole();
  const how = await Promise.race([runConsole(consolePort(instance), { confirmQuit }), signalled]);
  process.off('SIGHUP', onSignal);
  process.off('SIGTERM', onSignal);
  if (how === 'gone') {
    process.stdout.write(`portal ${instance} was stopped from elsewhere\n`);
    return ok(0);
  }
  if (how === 'detach') {
    const st = await readPortalState(instance);
    const pid = st.isOk() ? st.value.pid : '?';
    process.stdout.write(
      `portal ${instance} keeps running in the background (pid ${pid}, log ${logFile(instance)})\n` +
        `  mpctl attach -i ${instance}    the console again\n  mpctl status -i ${instance}    its state\n  mpctl down -i ${instance}      stop it and tear down\n`,
    );
    return ok(0);
  }
  process.stdout.write(`stopping portal ${instance}…\n`);
  const r = await portalDown(instance);
  if (r.isErr()) return err(r.error);
  // the portal we started tells by its exit code whether its teardown was complete
  const code = child ? await Promise.race([child, new Promise<number>((res) => setTimeout(() => res(0), 2000))]) : 0;
  if (code !== 0) {
    process.stderr.write(`mpctl: portal ${instance} stopped, but its teardown was incomplete (exit code ${code}); see ${logFile(instance)}\n`);
    return ok(1);
  }
  process.stdout.write(`portal ${instance}: down\n`);
  return ok(0);
}

export const upCommand: CommandModule = {
  command: 'up [role]',
  describe: 'bring up a portal (local: next to the client network; remote: on the server; default: the config\'s role); a console on a terminal, log lines otherwise',
  builder: (y) =>
    y
      .positional('role', { choices: ['local', 'remote'] as const, describe: 'must match the config\'s role when given' })
      .option('config', { alias: 'c', type: 'string', demandOption: true, describe: 'portal configuration (TOML)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan as ip/tc/sysctl lines and change nothing' })
      .option('tui', { type: 'boolean', default: true, describe: 'the interactive console on a terminal (--no-tui: foreground with log lines)' })
      .option('ready-fd', { type: 'number', hidden: true, describe: 'write "ready <pid>" to this fd once up (used by the console)' }),
  handler: (a) =>
    run(async () => {
      const cfg = await loadConfig(a.config as string);
      if (cfg.isErr()) return err(cfg.error);
      if (a.role !== undefined && cfg.value.role !== a.role)
        return err({ kind: 'ConfigInvalid', path: 'role', value: cfg.value.role, message: `the config is for a ${cfg.value.role} portal, not ${a.role}` });
      if (a.dryRun) return dryRun(cfg.value, a.config as string);
      const interactive = a.tui && process.stdout.isTTY && process.stdin.isTTY && a.readyFd === undefined;
      if (!interactive) return runForeground(cfg.value, a.config as string, a.readyFd as number | undefined);
      const instance = cfg.value.instance;
      const prev = await readPortalState(instance);
      if (prev.isOk() && isAlive(prev.value.pid)) {
        process.stderr.write(`portal ${instance} is already up (pid ${prev.value.pid}): attaching\n`);
        return attach(instance, true);
      }
      process.stdout.write(`starting portal ${instance}…\n`);
      const started = await startInBackground(cfg.value.role, a.config as string, instance);
      if (!started.ok) {
        process.stderr.write(started.output);
        process.stderr.write(`mpctl: the portal did not come up (exit code ${started.code}); log: ${started.log}\n`);
        return ok(started.code || 1);
      }
      return attach(instance, false, started.exited);
    }),
};

export const attachCommand: CommandModule = {
  command: 'attach',
  describe: 'the interactive console of a running portal (q stops the portal after a confirmation, d detaches again)',
  builder: (y) => instanceOption(y, true),
  handler: (a) =>
    run(async () => {
      if (!process.stdout.isTTY || !process.stdin.isTTY)
        return err({ kind: 'ConfigInvalid', path: 'attach', value: null, message: 'needs a terminal; use mpctl status --watch instead' });
      const st = await readPortalState(a.instance as string);
      if (st.isErr()) return err(st.error);
      return attach(a.instance as string, true);
    }),
};

export const linkCommand: CommandModule = {
  command: 'link <link> <state>',
  describe: 'take a link of a running portal administratively down, or bring it back up (mpctl link dsl down -i local)',
  builder: (y) =>
    instanceOption(y, true)
      .positional('link', { type: 'string', demandOption: true, describe: "link name (the LP's [[link]] name; on the RP from its link_names) or number" })
      .positional('state', { choices: ['down', 'up'] as const, demandOption: true, describe: 'down: the scheduler stops using the link; up: it is used again once its probes answer' }),
  handler: (a) =>
    run(async () => {
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
    }),
};

export const downCommand: CommandModule = {
  command: 'down',
  describe: 'stop a portal and remove everything it set up (safe to repeat)',
  builder: (y) =>
    instanceOption(y, false)
      .option('config', { alias: 'c', type: 'string', describe: 'the portal configuration it was started with (or give --instance)' })
      .check((a) => Boolean(a.config || a.instance) || 'give --config or --instance'),
  handler: (a) =>
    run(async () => {
      let instance = a.instance as string | undefined;
      if (!instance) {
        const cfg = await loadConfig(a.config as string);
        if (cfg.isErr()) return err(cfg.error);
        instance = cfg.value.instance;
      }
      const r = await portalDown(instance);
      if (r.isErr()) return err(r.error);
      console.log(r.value === 'not-up' ? `portal ${instance}: not up, nothing to do` : `portal ${instance}: down`);
      return ok(0);
    }),
};

export const statusCommand: CommandModule = {
  command: 'status',
  describe: "show a running portal's links, counters and drops (reads its pinned maps; --json: docs/status-json.md)",
  builder: (y) =>
    instanceOption(y, true)
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object (a stable schema, docs/status-json.md)' })
      .option('watch', { alias: 'w', type: 'boolean', default: false, describe: 'refresh every second until Ctrl-C (with --json: one object per line)' }),
  handler: (a) =>
    run(async () => {
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
    }),
};
