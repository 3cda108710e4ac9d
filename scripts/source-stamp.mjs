#!/usr/bin/env node
// What the build in dist/ was compiled from: a hash of every file under src/ (path and content)
// and of tsconfig.json and package.json. `npm run build:ts` writes it to dist/.source-stamp;
// bin/mpctl runs dist/ only while the sources still hash to it, so neither tests nor people ever
// run a stale build — whatever the files' times say (a copy that kept older mtimes, a deleted
// file, a changed compiler setting).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The stamp of the sources under `root`. */
export function sourceStamp(root) {
  const h = createHash('sha256');
  const files = readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath ?? d.path, d.name).slice(root.length + 1))
    .sort();
  for (const f of [...files, 'tsconfig.json', 'package.json']) {
    const p = join(root, f);
    h.update(`${f}\0${existsSync(p) ? readFileSync(p).length : -1}\0`);
    if (existsSync(p)) h.update(readFileSync(p));
  }
  return h.digest('hex');
}

export const stampFile = (root) => join(root, 'dist', '.source-stamp');

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  writeFileSync(stampFile(root), `${sourceStamp(root)}\n`);
}
