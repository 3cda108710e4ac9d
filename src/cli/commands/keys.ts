// `mpctl genkey`, `mpctl pubkey`: static keys as WireGuard's `wg genkey` / `wg pubkey` make them.
//
//   (umask 077; mpctl genkey > lp.key)
//   mpctl pubkey < lp.key > lp.pub
import { fstatSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { err, ok } from 'neverthrow';
import { generatePrivateKey, publicKeyOf } from '../../security/keys.js';
import { run } from '../run.js';

/** When stdout is a file others can read (the shell created it under a umask such as 022). */
function keyFileWarning(): string | null {
  let mode: number;
  try {
    const st = fstatSync(1);
    if (!st.isFile()) return null;
    mode = st.mode & 0o777;
  } catch {
    return null;
  }
  if ((mode & 0o077) === 0) return null;
  return `warning: the key file is readable by ${mode & 0o007 ? 'everyone' : 'its group'} (mode ${mode.toString(8).padStart(3, '0')}, from the umask): chmod 600 it, or create it with (umask 077; mpctl genkey > lp.key)`;
}

export const genkeyCommand: CommandModule = {
  command: 'genkey',
  describe: 'print a new private key (base64 X25519); store it with mode 600: (umask 077; mpctl genkey > lp.key)',
  handler: () =>
    run(async () => {
      if (process.stdout.isTTY) process.stderr.write('warning: writing a private key to a terminal\n');
      const w = keyFileWarning();
      if (w) process.stderr.write(`${w}\n`);
      process.stdout.write(`${generatePrivateKey()}\n`);
      return ok(0);
    }),
};

async function readStdin(limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(String(c));
    chunks.push(b);
    n += b.length;
    if (n > limit) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}

export const pubkeyCommand: CommandModule = {
  command: 'pubkey',
  describe: 'read a private key on stdin and print its public key: mpctl pubkey < lp.key',
  handler: () =>
    run(async () => {
      const text = (await readStdin(1024)).replace(/\r?\n$/, '');
      const pub = publicKeyOf(text, 'stdin');
      if (pub.isErr()) return err(pub.error);
      process.stdout.write(`${pub.value}\n`);
      return ok(0);
    }),
};
