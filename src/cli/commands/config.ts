// `mpctl config check <file>`: validate a portal config without touching the system and print
// what it means — the role, addresses, keys (with this portal's public key to give to the
// peer), probes, metrics and one line per link. The interfaces themselves are checked by
// `mpctl up ... --dry-run` on the portal's host (it reads their addresses and MTUs).
//
// Exit codes: 0 valid · 2 invalid (the message names the key and quotes the value; also a
// private key file that is missing, malformed or readable by others) · 3 the config file does
// not exist · 5 the private key file is not readable (run as root).
// (What it does: config-run.ts, loaded when it runs.)
import type { CommandModule } from 'yargs';
import { run } from '../run.js';

export const configCommand: CommandModule = {
  command: 'config <action> <file>',
  describe: 'check a portal configuration and print what it means (mpctl config check lp.toml)',
  builder: (y) =>
    y
      .positional('action', { choices: ['check'] as const, demandOption: true })
      .positional('file', { type: 'string', demandOption: true, describe: 'portal configuration (TOML)' })
      .option('skip-keys', { type: 'boolean', default: false, describe: 'do not read private_key (checking a config away from its host)' }),
  handler: (a) => run(async () => (await import('./config-run.js')).runConfigCheck(a)),
};
