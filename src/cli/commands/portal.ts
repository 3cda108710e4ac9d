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
import type { CommandModule } from 'yargs';
import { instanceOption } from '../options.js';
import { run } from '../run.js';

// the commands' work and what it needs (the data path's bindings, netlink, the console) is
// loaded when a command runs, not to parse one: `--help` loads none of it, `mpctl status` and
// `mpctl link` only what asks a running portal (portal-status.ts)
const handlers = () => import('./portal-run.js');
const queries = () => import('./portal-status.js');

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
  handler: (a) => run(async () => (await handlers()).runUp(a)),
};

export const attachCommand: CommandModule = {
  command: 'attach',
  describe: 'the interactive console of a running portal (q stops the portal after a confirmation, d detaches again)',
  builder: (y) => instanceOption(y, true),
  handler: (a) => run(async () => (await handlers()).runAttach(a)),
};

export const linkCommand: CommandModule = {
  command: 'link <link> <state>',
  describe: 'take a link of a running portal administratively down, or bring it back up (mpctl link dsl down -i local)',
  builder: (y) =>
    instanceOption(y, true)
      .positional('link', { type: 'string', demandOption: true, describe: "link name (the LP's [[link]] name; on the RP from its link_names) or number" })
      .positional('state', { choices: ['down', 'up'] as const, demandOption: true, describe: 'down: the scheduler stops using the link; up: it is used again once its probes answer' }),
  handler: (a) => run(async () => (await queries()).runLink(a)),
};

export const downCommand: CommandModule = {
  command: 'down',
  describe: 'stop a portal and remove everything it set up (safe to repeat)',
  builder: (y) =>
    instanceOption(y, false)
      .option('config', { alias: 'c', type: 'string', describe: 'the portal configuration it was started with (or give --instance)' })
      .check((a) => Boolean(a.config || a.instance) || 'give --config or --instance'),
  handler: (a) => run(async () => (await handlers()).runDown(a)),
};

export const statusCommand: CommandModule = {
  command: 'status',
  describe: "show a running portal's links, counters and drops (reads its pinned maps; --json: docs/status-json.md)",
  builder: (y) =>
    instanceOption(y, true)
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object (a stable schema, docs/status-json.md)' })
      .option('watch', { alias: 'w', type: 'boolean', default: false, describe: 'refresh every second until Ctrl-C (with --json: one object per line)' }),
  handler: (a) => run(async () => (await queries()).runStatus(a)),
};
