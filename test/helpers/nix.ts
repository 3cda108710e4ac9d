// Nix's own parser and evaluator for flake.nix (Debian's nix-bin: nix-instantiate; no nixpkgs
// and no network here): `--parse` checks the syntax, `--eval` of test/fixtures/flake-eval.nix
// computes the outputs with a small stand-in for nixpkgs' lib and packages.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('../fixtures/flake-eval.nix', import.meta.url));

export const hasNix = (): boolean => spawnSync('nix-instantiate', ['--version']).status === 0;

/** `nix-instantiate --parse`: null when the file parses, else Nix's message. */
export function nixParseError(file: string): string | null {
  const r = spawnSync('nix-instantiate', ['--readonly-mode', '--parse', file], { encoding: 'utf8' });
  return r.status === 0 ? null : r.stderr.trim();
}

/** flake.nix's outputs as test/fixtures/flake-eval.nix evaluates them, as JSON. */
export function evalFlake(flake: string, role: 'local' | 'remote' = 'local'): unknown {
  const r = spawnSync(
    'nix-instantiate',
    ['--readonly-mode', '--eval', '--strict', '--json', FIXTURE, '--arg', 'flake', flake, '--argstr', 'role', role],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`nix-instantiate --eval: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as unknown;
}

type Value = string | number | boolean | null | Value[] | { [k: string]: Value };

/** A systemd [Service] section from NixOS serviceConfig values, as NixOS writes it: lists joined
 *  by spaces, booleans as true/false. */
export function unitSection(name: string, values: Record<string, Value>): string {
  const text = (v: Value): string => (Array.isArray(v) ? v.map(text).join(' ') : String(v));
  return [`[${name}]`, ...Object.entries(values).map(([k, v]) => `${k}=${text(v)}`)].join('\n');
}
