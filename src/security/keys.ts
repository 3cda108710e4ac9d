// Static keys like WireGuard's: X25519 key pairs written as standard base64 of the raw 32-byte
// keys (44 characters, as `wg genkey` / `wg pubkey` print them), a private key file that only
// its owner can read, and the X25519 operations the handshake needs, behind a small interface
// so tests can count them (handshake.ts, cookie.ts).
//
// node:crypto only handles X25519 keys as KeyObjects (PKCS#8 / SPKI DER); a raw key is the DER
// encoding minus a fixed prefix, so converting is a concatenation, not a parser.

import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { open } from 'node:fs/promises';
import { err, ok, type Result } from 'neverthrow';
import { configInvalid, type MpError } from '../errors.js';

/** Bytes of a raw X25519 key (private or public). */
export const KEY_LEN = 32;
/** Characters of a base64 key: 32 bytes → 43 characters and one '='. */
export const KEY_B64_LEN = 44;

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

/** Randomness: n bytes. Injectable so tests can make handshakes reproducible. */
export type Rng = (n: number) => Buffer;
export const systemRng: Rng = (n) => randomBytes(n);

// ---- raw keys ↔ KeyObjects -----------------------------------------------------------------

export function privateKeyObject(raw: Buffer): KeyObject {
  if (raw.length !== KEY_LEN) throw new Error(`X25519 private key needs ${KEY_LEN} bytes, got ${raw.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
}

export function publicKeyObject(raw: Buffer): KeyObject {
  if (raw.length !== KEY_LEN) throw new Error(`X25519 public key needs ${KEY_LEN} bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: 'der', type: 'spki' });
}

function rawPrivate(k: KeyObject): Buffer {
  return k.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_X25519.length);
}

function rawPublic(k: KeyObject): Buffer {
  return k.export({ format: 'der', type: 'spki' }).subarray(SPKI_X25519.length);
}

// ---- X25519 operations ---------------------------------------------------------------------

/** The X25519 work of a handshake: what a flood makes the responder spend, hence countable. */
export interface X25519 {
  /** A key pair from 32 random bytes (one scalar multiplication). */
  keyPair(rng: Rng): { private: KeyObject; public: Buffer };
  /** The shared secret (one scalar multiplication); throws on a low-order public key. */
  dh(priv: KeyObject, pub: Buffer): Buffer;
}

export const nodeX25519: X25519 = {
  keyPair(rng) {
    const priv = privateKeyObject(rng(KEY_LEN));
    return { private: priv, public: rawPublic(createPublicKey(priv)) };
  },
  dh(priv, pub) {
    return diffieHellman({ privateKey: priv, publicKey: publicKeyObject(pub) });
  },
};

/** A portal's own key pair, ready for the handshake. */
export interface StaticKeys {
  readonly private: KeyObject;
  readonly public: Buffer;
  readonly publicB64: string;
}

export function staticKeys(privateRaw: Buffer): StaticKeys {
  const priv = privateKeyObject(privateRaw);
  const pub = rawPublic(createPublicKey(priv));
  return { private: priv, public: pub, publicB64: pub.toString('base64') };
}

// ---- base64 keys ---------------------------------------------------------------------------

/** A new private key as `wg genkey` prints it. */
export function generatePrivateKey(): string {
  return rawPrivate(generateKeyPairSync('x25519').privateKey).toString('base64');
}

/**
 * A base64 key → its 32 raw bytes. `path` names where it came from (a config key, a file,
 * stdin). A secret key is never quoted back in the error, even a malformed one.
 */
export function parseKey(text: string, path: string, opts: { secret?: boolean } = {}): Result<Buffer, MpError> {
  const shown = opts.secret ? `(${text.length} characters, not shown)` : text;
  const bad = (why: string) => err(configInvalid(path, shown, why));
  if (text.length !== KEY_B64_LEN)
    return bad(`a key is ${KEY_B64_LEN} characters of base64 (32 bytes, as wg genkey/pubkey print), got ${text.length}`);
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text)) return bad('not standard base64 (A-Z a-z 0-9 + / and one trailing =)');
  const raw = Buffer.from(text, 'base64');
  // the 43rd character carries 4 spare bits; a canonical key has them zero
  if (raw.length !== KEY_LEN || raw.toString('base64') !== text) return bad('not a canonical base64 encoding of 32 bytes');
  return ok(raw);
}

/** A peer's public key: also refuses the low-order points, whose shared secret is known to all. */
export function parsePublicKey(text: string, path: string): Result<Buffer, MpError> {
  return parseKey(text, path).andThen((raw) => {
    try {
      nodeX25519.dh(PROBE_KEY, raw);
      return ok(raw);
    } catch {
      return err(configInvalid(path, text, 'not a usable X25519 public key (a low-order point)'));
    }
  });
}

const PROBE_KEY = privateKeyObject(Buffer.alloc(KEY_LEN, 0x42));

/** The public key of a base64 private key, as `wg pubkey` prints it. */
export function publicKeyOf(privateB64: string, path = 'private key'): Result<string, MpError> {
  return parseKey(privateB64, path, { secret: true }).map((raw) => staticKeys(raw).publicB64);
}

// ---- private key files ---------------------------------------------------------------------

const modeText = (m: number) => `0${(m & 0o7777).toString(8).padStart(3, '0')}`;

/**
 * Reads a private key file: one key line (a final newline is fine), a regular file owned by
 * the user running mpctl (uid 0 when root) that nobody else may read or write (mode 600 or
 * stricter). Checks are made on the opened file, not on the path.
 */
export async function readPrivateKeyFile(path: string): Promise<Result<StaticKeys, MpError>> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return err({ kind: 'NotFound', what: path, message: `private key file ${path} does not exist (make one: umask 077; mpctl genkey > ${path})` });
    if (code === 'EACCES') return err({ kind: 'PermissionDenied', message: `cannot read private key file ${path}: permission denied` });
    return err(configInvalid(path, code ?? String(e), 'cannot open the private key file'));
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return err(configInvalid(path, modeText(st.mode), 'the private key file is not a regular file'));
    if (st.mode & 0o077)
      return err(configInvalid(path, modeText(st.mode), `the private key file is accessible by group or others; run: chmod 600 ${path}`));
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid)
      return err(
        configInvalid(path, `uid ${st.uid}`, `the private key file must be owned by ${uid === 0 ? 'root (uid 0)' : `the user running mpctl (uid ${uid})`}; run: chown ${uid} ${path}`),
      );
    // a key line is 44 bytes: anything much longer is not a key file
    const buf = Buffer.alloc(256);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
    if (lines.length !== 1 || bytesRead === buf.length)
      return err(configInvalid(path, `${lines.length} lines`, 'the private key file must hold exactly one key line'));
    return parseKey(lines[0] ?? '', path, { secret: true }).map(staticKeys);
  } finally {
    await fh.close();
  }
}
