// What `mpctl up|attach|link|down|status` do (their options: portal.ts, which loads this module
// only when one of them runs).
import { closeSync, writeSync } from 'node:fs';
import type { Arguments } from 'yargs';
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
import { portalStatus } from '../../run/status.js';
import { logFile, readPortalState } from '../../apply/state.js';
import { controlRequest, serveControl } from '../../run/control.js';
import { serveMetrics } from '../../metrics/server.js';
import { isAlive } from '../../proc.js';
import type { ConsolePort } from '../../tui/console.js';
import { loadConsole } from '../../tui/load.js';
import { rotateOwnLog, startInBackground } from '../background.js';
import { EXIT } from '../exit.js';

type Args = Arguments;

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

export async function runUp(a: Args): Promise<Result<number, MpError>> {
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
}

export async function runAttach(a: Args): Promise<Result<number, MpError>> {
  if (!process.stdout.isTTY || !process.stdin.isTTY)
    return err({ kind: 'ConfigInvalid', path: 'attach', value: null, message: 'needs a terminal; use mpctl status --watch instead' });
  const st = await readPortalState(a.instance as string);
  if (st.isErr()) return err(st.error);
  return attach(a.instance as string, true);
}


export async function runDown(a: Args): Promise<Result<number, MpError>> {
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
}

