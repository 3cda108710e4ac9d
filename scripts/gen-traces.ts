// Generates the lab's cellular traces in test/fixtures/traces (Mahimahi's format: one line per
// 1500-byte delivery opportunity, millisecond timestamps, the last line is the period the
// trace loops with). Fixed seeds: running it again writes the same files.
//
//   node --import tsx scripts/gen-traces.ts
//
// The LTE-like model: a log-normal rate that drifts back to its mean (an Ornstein-Uhlenbeck
// process on log(rate), stepped every 50 ms), fades (a drop to 2-4 Mbit/s for 0.3-1.5 s, about
// one every 8 s) and the base station's scheduling: opportunities come in grants every 1-4 ms,
// several in the same millisecond, as in traces captured on real networks.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OUT = join(import.meta.dirname, '..', 'test', 'fixtures', 'traces');

/** splitmix64 → uniform [0, 1): small, seedable, the same everywhere. */
function rng(seed: number): () => number {
  let x = BigInt(seed);
  const M = (1n << 64n) - 1n;
  return () => {
    x = (x + 0x9e3779b97f4a7c15n) & M;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    z ^= z >> 31n;
    return Number(z >> 11n) / 2 ** 53;
  };
}

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

interface Lte {
  seed: number;
  seconds: number;
  minMbit: number;
  maxMbit: number;
  meanMbit: number;
}

function lte(o: Lte): number[] {
  const r = rng(o.seed);
  const mu = Math.log(o.meanMbit);
  let x = mu;
  let fadeUntil = -1;
  let fadeMbit = 0;
  let credit = 0;
  let nextGrant = 0;
  const out: number[] = [];
  for (let ms = 1; ms <= o.seconds * 1000; ms++) {
    if (ms % 50 === 0) {
      x += 0.6 * (mu - x) * 0.05 + 0.5 * Math.sqrt(0.05) * gauss(r);
      if (fadeUntil < ms && r() < 0.05 / 8) {
        fadeUntil = ms + 300 + Math.floor(r() * 1200);
        fadeMbit = 2 + 2 * r();
      }
    }
    const mbit = fadeUntil >= ms ? fadeMbit : Math.min(o.maxMbit, Math.max(o.minMbit, Math.exp(x)));
    credit += (mbit * 1e6) / (1500 * 8) / 1000;
    if (ms >= nextGrant) {
      for (; credit >= 1; credit--) out.push(ms);
      nextGrant = ms + 1 + Math.floor(r() * 4);
    }
  }
  if (out[out.length - 1] !== o.seconds * 1000) out.push(o.seconds * 1000); // the period
  return out;
}

const constant = (mbit: number, ms: number): number[] => {
  const perMs = (mbit * 1e6) / (1500 * 8) / 1000;
  const out: number[] = [];
  let credit = 0;
  for (let t = 1; t <= ms; t++) for (credit += perMs; credit >= 1 - 1e-9; credit--) out.push(t);
  return out;
};

const files: [string, number[], string][] = [
  ['const-12mbit.trace', constant(12, 1000), 'constant 12 Mbit/s: one opportunity a millisecond'],
  ['lte-down.trace', lte({ seed: 1, seconds: 30, minMbit: 2, maxMbit: 40, meanMbit: 18 }), 'LTE-like downlink, 2-40 Mbit/s, 30 s'],
  ['lte-up.trace', lte({ seed: 2, seconds: 30, minMbit: 2, maxMbit: 12, meanMbit: 6 }), 'LTE-like uplink, 2-12 Mbit/s, 30 s'],
  ['lte-short.trace', lte({ seed: 3, seconds: 5, minMbit: 2, maxMbit: 40, meanMbit: 18 }), 'LTE-like, 2-40 Mbit/s, 5 s (the accuracy test measures whole periods)'],
];
for (const [name, ms, what] of files) {
  writeFileSync(join(OUT, name), `${ms.join('\n')}\n`);
  const period = ms[ms.length - 1]!;
  console.log(`${name}: ${what}; ${ms.length} opportunities in ${period} ms = mean ${((ms.length * 12000) / period / 1000).toFixed(2)} Mbit/s`);
}
