// Where mpctl's own files are: the package root (the directory holding mpctl's package.json),
// found from this module's location so it works from src/ (tsx) and dist/ alike.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name === 'mpctl') return (root = dir);
      } catch {
        /* unreadable: keep walking up */
      }
    }
    const up = dirname(dir);
    if (up === dir) return (root = process.cwd());
    dir = up;
  }
}

export const packagePath = (...parts: string[]): string => join(packageRoot(), ...parts);
