// Fixtures of the security tests: fixed key pairs, reproducible randomness and an X25519 that
// counts its work (to prove a flood costs the responder none).
import { createHash } from 'node:crypto';
import { nodeX25519, staticKeys, type Rng, type StaticKeys, type X25519 } from '../../src/security/keys.js';

/** A key pair from a label: the same in every run. */
export function fixedKeys(label: string): StaticKeys {
  return staticKeys(createHash('sha256').update(`mpctl test key ${label}`).digest());
}

/** Deterministic bytes: SHA-256 in counter mode over a seed. */
export function seededRng(seed: string): Rng {
  let counter = 0;
  return (n) => {
    const out: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const block = createHash('sha256').update(`${seed}/${counter++}`).digest();
      out.push(block);
      have += block.length;
    }
    return Buffer.concat(out).subarray(0, n);
  };
}

/** nodeX25519 with counters of key pairs made and DH computed. */
export function countingX25519(): X25519 & { keyPairs: number; dhs: number; total(): number } {
  const c = {
    keyPairs: 0,
    dhs: 0,
    total() {
      return c.keyPairs + c.dhs;
    },
    keyPair(rng: Rng) {
      c.keyPairs++;
      return nodeX25519.keyPair(rng);
    },
    dh(priv: Parameters<X25519['dh']>[0], pub: Buffer) {
      c.dhs++;
      return nodeX25519.dh(priv, pub);
    },
  };
  return c;
}
