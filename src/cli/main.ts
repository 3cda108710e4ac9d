// mpctl command table. Each command lives in its own file under commands/; handlers return
// Results and `run` maps errors to messages and exit codes (see exit.ts).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { labCommand } from './commands/lab.js';
import { attachCommand, downCommand, linkCommand, statusCommand, upCommand } from './commands/portal.js';
import { genkeyCommand, pubkeyCommand } from './commands/keys.js';
import { configCommand } from './commands/config.js';

// `mpctl status --watch | head -3`: the reader is gone, so is our reason to run
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

/** The command a usage error is about, for its hint: `mpctl lab bench --help`. */
function usageHint(argv: string[]): string {
  const words: string[] = [];
  for (const w of argv) {
    if (w.startsWith('-')) break;
    words.push(w);
  }
  const known = ['up', 'down', 'status', 'attach', 'link', 'lab', 'genkey', 'pubkey', 'config'];
  if (!known.includes(words[0] ?? '')) return 'mpctl --help';
  const labCommands = ['up', 'down', 'status', 'set', 'exec', 'check', 'bench', 'list'];
  const sub = words[0] === 'lab' && labCommands.includes(words[1] ?? '') ? ` ${words[1]}` : '';
  return `mpctl ${words[0]}${sub} --help`;
}

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
  // a usage error is one line and exit 2 (README "Exit codes"), not the whole help
  .fail((msg: string | null, e: unknown) => {
    // yargs' own errors (and a failed .check()) are YErrors or strings; anything else is ours
    if (e instanceof Error && e.name !== 'YError') throw e;
    const text = (msg ?? (e instanceof Error ? e.message : String(e ?? 'bad usage'))).replace(/:?\n\s*/g, ': ');
    process.stderr.write(`mpctl: ${text}${text.includes('--help') ? '' : ` (${usageHint(hideBin(process.argv))} shows the options)`}\n`);
    process.exit(2);
  })
  .parserConfiguration({ 'populate--': true })
  .help()
  .alias('h', 'help')
  .version()
  .wrap(Math.min(110, process.stdout.columns || 100))
  .parseAsync();
