// Where mpctl's own files are: the package root (the directory holding package.json), found
// from this module's location so it works from src/ (tsx) and dist/ alike.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('mpctl: cannot find the package root (package.json)');
    dir = up;
  }
  return (root = dir);
}

export const packagePath = (...parts: string[]): string => join(packageRoot(), ...parts);
