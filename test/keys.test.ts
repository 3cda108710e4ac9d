// Static keys: base64 X25519 as wg genkey/pubkey, key files only their owner can read, and
// the genkey / pubkey commands as processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeError } from '../src/errors.js';
import {
  generatePrivateKey,
  nodeX25519,
  parseKey,
  parsePublicKey,
  publicKeyOf,
  readPrivateKeyFile,
  staticKeys,
} from '../src/security/keys.js';

// RFC 7748 §6.1: Alice's and Bob's X25519 keys and their shared secret (hex)
const ALICE_PRIV = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const ALICE_PUB = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const BOB_PRIV = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb';
const BOB_PUB = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

test('genkey → pubkey: 44-character base64 keys whose DH agrees both ways', () => {
  const a = generatePrivateKey();
  const b = generatePrivateKey();
  assert.match(a, /^[A-Za-z0-9+/]{43}=$/);
  assert.notEqual(a, b);
  const pa = publicKeyOf(a)._unsafeUnwrap();
  const pb = publicKeyOf(b)._unsafeUnwrap();
  assert.equal(pa.length, 44);
  assert.equal(publicKeyOf(a)._unsafeUnwrap(), pa, 'pubkey is a function of the private key');
  const ka = staticKeys(parseKey(a, 'a')._unsafeUnwrap());
  const kb = staticKeys(parseKey(b, 'b')._unsafeUnwrap());
  assert.equal(ka.publicB64, pa);
  assert.deepEqual(nodeX25519.dh(ka.private, kb.public), nodeX25519.dh(kb.private, ka.public));
});

test('known vector: RFC 7748 keys give their public keys and shared secret', () => {
  assert.equal(publicKeyOf(b64(ALICE_PRIV))._unsafeUnwrap(), b64(ALICE_PUB));
  assert.equal(publicKeyOf(b64(BOB_PRIV))._unsafeUnwrap(), b64(BOB_PUB));
  // as `wg pubkey` prints it
  assert.equal(publicKeyOf(b64(ALICE_PRIV))._unsafeUnwrap(), 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=');
  const alice = staticKeys(Buffer.from(ALICE_PRIV, 'hex'));
  assert.equal(nodeX25519.dh(alice.private, Buffer.from(BOB_PUB, 'hex')).toString('hex'), SHARED);
});

test('keys of the wrong length or alphabet are refused; a private key is never quoted back', () => {
  const good = b64(ALICE_PUB);
  const cases: [string, RegExp][] = [
    ['', /44 characters/],
    [good.slice(0, 43), /44 characters/],
    [`${good}A`, /44 characters/],
    [`${good.slice(0, 42)}==`, /standard base64/],
    [`${good.slice(0, 10)}-${good.slice(11)}`, /standard base64/], // base64url is not wg's alphabet
    [`${good.slice(0, 10)} ${good.slice(11)}`, /standard base64/],
    [`${good.slice(0, 42)}n=`, /canonical/], // spare bits set: decodes, but not as written
  ];
  for (const [text, why] of cases) {
    const r = parseKey(text, 'peer.public_key');
    assert.ok(r.isErr(), JSON.stringify(text));
    assert.equal(r.error.kind, 'ConfigInvalid');
    assert.match(describeError(r.error), why);
    assert.match(describeError(r.error), /^peer\.public_key: /);
  }
  const secret = `${b64(ALICE_PRIV).slice(0, 40)}`;
  const r = publicKeyOf(secret, 'private_key');
  assert.ok(r.isErr());
  assert.doesNotMatch(describeError(r.error), new RegExp(secret.slice(0, 12).replace(/[+/]/g, '\\$&')));
  assert.match(describeError(r.error), /not shown/);
});

test('a low-order public key is refused (its shared secret is known to everyone)', () => {
  const r = parsePublicKey(Buffer.alloc(32).toString('base64'), 'peer.public_key');
  assert.ok(r.isErr());
  assert.match(describeError(r.error), /low-order/);
  assert.ok(parsePublicKey(b64(BOB_PUB), 'peer.public_key').isOk());
});

test('private key files: 0600 read, 0644 / 0620 refused naming the mode, one key line only', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mpctl-keys-'));
  try {
    const key = b64(ALICE_PRIV);
    const file = join(dir, 'lp.key');
    await writeFile(file, `${key}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    const ok = await readPrivateKeyFile(file);
    assert.ok(ok.isOk(), ok.isErr() ? describeError(ok.error) : '');
    assert.equal(ok.value.publicB64, b64(ALICE_PUB));

    for (const mode of [0o644, 0o620, 0o604, 0o640]) {
      await chmod(file, mode);
      const r = await readPrivateKeyFile(file);
      assert.ok(r.isErr(), mode.toString(8));
      assert.equal(r.error.kind, 'ConfigInvalid');
      const msg = describeError(r.error);
      assert.ok(msg.includes(file), msg);
      assert.ok(msg.includes(`0${mode.toString(8)}`), msg);
      assert.match(msg, /chmod 600/);
    }

    await chmod(file, 0o400); // stricter than 600 is fine
    assert.ok((await readPrivateKeyFile(file)).isOk());

    const two = join(dir, 'two.key');
    await writeFile(two, `${key}\n${key}\n`, { mode: 0o600 });
    const r2 = await readPrivateKeyFile(two);
    assert.ok(r2.isErr());
    assert.match(describeError(r2.error), /exactly one key line/);

    const crlf = join(dir, 'crlf.key');
    await writeFile(crlf, `${key}\r\n`, { mode: 0o600 });
    assert.ok((await readPrivateKeyFile(crlf)).isOk());

    const junk = join(dir, 'junk.key');
    await writeFile(junk, 'not a key\n', { mode: 0o600 });
    const r3 = await readPrivateKeyFile(junk);
    assert.ok(r3.isErr());
    assert.doesNotMatch(describeError(r3.error), /not a key/);

    const missing = await readPrivateKeyFile(join(dir, 'none.key'));
    assert.ok(missing.isErr());
    assert.equal(missing.error.kind, 'NotFound');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a private key file owned by another user is refused (root: must be uid 0)', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mpctl-keys-'));
  try {
    const file = join(dir, 'lp.key');
    await writeFile(file, `${b64(ALICE_PRIV)}\n`, { mode: 0o600 });
    await chown(file, 65534, 65534);
    const r = await readPrivateKeyFile(file);
    assert.ok(r.isErr());
    assert.match(describeError(r.error), /owned by root \(uid 0\).*\(got "uid 65534"\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ---- the commands, as processes -------------------------------------------------------------

const MPCTL = join(import.meta.dirname, '..', 'bin', 'mpctl');
const cli = (args: string[], input?: string) => spawnSync(MPCTL, args, { input, encoding: 'utf8' });

test('mpctl genkey | mpctl pubkey; garbage on stdin is exit 2', () => {
  const gen = cli(['genkey']);
  assert.equal(gen.status, 0, gen.stderr);
  assert.equal(gen.stderr, '', 'no warning when stdout is not a terminal');
  const priv = gen.stdout.trim();
  assert.match(priv, /^[A-Za-z0-9+/]{43}=$/);

  const pub = cli(['pubkey'], gen.stdout);
  assert.equal(pub.status, 0, pub.stderr);
  assert.equal(pub.stdout, `${publicKeyOf(priv)._unsafeUnwrap()}\n`);

  const known = cli(['pubkey'], `${b64(ALICE_PRIV)}\n`);
  assert.equal(known.stdout, `${b64(ALICE_PUB)}\n`);

  for (const garbage of ['hello\n', '', `${priv}\n${priv}\n`]) {
    const bad = cli(['pubkey'], garbage);
    assert.equal(bad.status, 2, bad.stderr);
    assert.equal(bad.stdout, '');
    assert.match(bad.stderr, /^mpctl: stdin: /);
  }
});

test('mpctl genkey on a terminal warns on stderr and prints only the key', { skip: !existsSync('/usr/bin/script') && 'needs script(1) for a pty' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mpctl-keys-'));
  try {
    const errFile = join(dir, 'stderr');
    // script(1) gives the command a pseudo-terminal as stdout; stderr goes to a file
    const r = spawnSync('/usr/bin/script', ['-qec', `${MPCTL} genkey 2>${errFile}`, '/dev/null'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.trim(), /^[A-Za-z0-9+/]{43}=$/);
    assert.equal(readFileSync(errFile, 'utf8'), 'warning: writing a private key to a terminal\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('mpctl genkey into a file others can read warns (the umask); under umask 077 it is quiet', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mpctl-keys-'));
  try {
    for (const [umask, warning] of [
      ['022', /^warning: the key file is readable by everyone \(mode 644, from the umask\): chmod 600 it/],
      ['027', /^warning: the key file is readable by its group \(mode 640/],
      ['077', /^$/],
    ] as const) {
      const key = join(dir, `k${umask}`);
      const r = spawnSync('/bin/sh', ['-c', `umask ${umask}; exec "$0" genkey > "$1"`, MPCTL, key], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, warning, `umask ${umask}`);
      assert.match(readFileSync(key, 'utf8').trim(), /^[A-Za-z0-9+/]{43}=$/, 'the key is written all the same');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
