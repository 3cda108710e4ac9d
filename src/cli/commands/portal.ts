// `mpctl up local|remote`, `mpctl down`, `mpctl status`: run a portal in the foreground.
import type { CommandModule } from 'yargs';
import { err, ok } from 'neverthrow';
import { loadConfig } from '../../config/parse.js';
import { planPortal } from '../../plan/plan.js';
import { loadPolicy } from '../../plan/policy.js';
import { renderPlan } from '../../plan/render.js';
import { openRtnl } from '../../netlink/rtnl.js';
import { planFacts, portalDown, portalUp } from '../../portal/portal.js';
import { portalStatus } from '../../portal/status.js';
import { run } from '../run.js';

/** Structured log lines for systemd / files: `time level msg key=value ...`. */
function logLine(msg: string, fields: Record<string, unknown> = {}): void {
  const kv = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  process.stdout.write(`${new Date().toISOString()} ${msg}${kv.length ? ` ${kv.join(' ')}` : ''}\n`);
}

export const upCommand: CommandModule = {
  command: 'up <role>',
  describe: 'bring up a portal (local: next to the client network; remote: on the server) and run it in the foreground',
  builder: (y) =>
    y
      .positional('role', { choices: ['local', 'remote'] as const, demandOption: true })
      .option('config', { alias: 'c', type: 'string', demandOption: true, describe: 'portal configuration (TOML)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan as ip/tc/sysctl lines and change nothing' })
      .option('tui', { type: 'boolean', default: true, describe: 'interactive view on a terminal (--no-tui: log lines)' }),
  handler: (a) =>
    run(async () => {
      const cfg = await loadConfig(a.config as string);
      if (cfg.isErr()) return err(cfg.error);
      if (cfg.value.role !== a.role)
        return err({ kind: 'ConfigInvalid', path: 'role', value: cfg.value.role, message: `the config is for a ${cfg.value.role} portal, not ${a.role}` });
      if (a.dryRun) {
        // the plan needs the interfaces' addresses and MTUs; read them, change nothing
        const rt = openRtnl(null);
        if (rt.isErr()) return err(rt.error);
        const facts = await planFacts(rt.value);
        rt.value.close();
        if (facts.isErr()) return err(facts.error);
        const policy = await loadPolicy();
        if (policy.isErr()) return err(policy.error);
        const plan = planPortal(cfg.value, policy.value, facts.value);
        if (plan.isErr()) return err(plan.error);
        for (const l of renderPlan(plan.value, 'up')) console.log(l);
        return ok(0);
      }
      const up = await portalUp(cfg.value, a.config as string, logLine);
      if (up.isErr()) return err(up.error);
      if (up.value === 'already-up') {
        logLine('portal already up', { instance: cfg.value.instance });
        return ok(0);
      }
      const p = up.value;
      // run until asked to stop; tear down on SIGINT/SIGTERM
      const code = await new Promise<number>((resolve) => {
        const stop = async (sig: string) => {
          logLine('stopping', { signal: sig });
          const r = await p.stop();
          if (r.isErr()) logLine('teardown incomplete', { error: r.error });
          resolve(r.isErr() ? 1 : 0);
        };
        process.once('SIGINT', () => void stop('SIGINT'));
        process.once('SIGTERM', () => void stop('SIGTERM'));
      });
      logLine('portal down', { instance: cfg.value.instance });
      return ok(code);
    }),
};

export const downCommand: CommandModule = {
  command: 'down',
  describe: 'stop a portal and remove everything it set up (safe to repeat)',
  builder: (y) =>
    y
      .option('config', { alias: 'c', type: 'string', describe: 'the portal configuration it was started with' })
      .option('instance', { alias: 'i', type: 'string', describe: 'or its instance name (default: the role)' })
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
  describe: "show a running portal's links, counters and drops (reads its pinned maps)",
  builder: (y) =>
    y
      .option('instance', { alias: 'i', type: 'string', demandOption: true, describe: 'instance name (default in configs: the role)' })
      .option('json', { type: 'boolean', default: false }),
  handler: (a) =>
    run(async () => {
      const s = await portalStatus(a.instance as string);
      if (s.isErr()) return err(s.error);
      console.log(a.json ? JSON.stringify(s.value, null, 2) : s.value.text);
      return ok(0);
    }),
};
