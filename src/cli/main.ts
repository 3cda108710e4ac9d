// mpctl command table. Each command lives in its own file under commands/; handlers return
// Results and `run` maps errors to messages and exit codes (see exit.ts).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { labCommand } from './commands/lab.js';
import { attachCommand, downCommand, linkCommand, statusCommand, upCommand } from './commands/portal.js';
import { genkeyCommand, pubkeyCommand } from './commands/keys.js';
import { configCommand } from './commands/config.js';

await yargs(hideBin(process.argv))
  .scriptName('mpctl')
  .usage('$0 <command> [options]\n\nmpctl bonds several Internet links into one (Local Portal ⇄ Remote Portal, eBPF data path).')
  .command(upCommand)
  .command(downCommand)
  .command(statusCommand)
  .command(attachCommand)
  .command(linkCommand)
  .command(labCommand)
  .command(genkeyCommand)
  .command(pubkeyCommand)
  .command(configCommand)
  .demandCommand(1, 'give a command (mpctl --help lists them)')
  .strict()
  .parserConfiguration({ 'populate--': true })
  .help()
  .alias('h', 'help')
  .version()
  .wrap(Math.min(110, process.stdout.columns || 100))
  .parseAsync();
