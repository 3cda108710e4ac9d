// Packaging without the tools it targets: there is no `nix` here, so flake.nix is parsed by
// test/helpers/nix.ts (a real Nix-expression parser: syntax only, no evaluation — unknown
// variables, wrong option types or a nixpkgs attribute that does not exist would pass) and its
// outputs' shape is checked; the systemd units are checked by `systemd-analyze verify` (unknown
// keys, bad values) and `systemd-analyze security --offline`, and the NixOS module's service
// must carry the same hardening and capabilities as contrib/systemd/mpctl@.service.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { keysOf, lookup, parseNix, stringList, NixSyntaxError, type Node } from './helpers/nix.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const flake = parseNix(readFileSync(here('../flake.nix'), 'utf8'));
const unit = readFileSync(here('../contrib/systemd/mpctl@.service'), 'utf8');
/** [Service] keys of the unit file with their values (comments and blank lines skipped). */
const serviceKeys = new Map(
  unit
    .split('[Service]')[1]!
    .split('[Install]')[0]!
    .split('\n')
    .filter((l) => /^[A-Z]\w*=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
);

test('nix parser: accepts the language and refuses broken syntax', () => {
  const ok = [
    `{ a = 1; b.c = "x\${toString (1 + 2)}y"; inherit (x) d e; "q r" = [ 1 ./p /abs/p <nixpkgs> https://x.org/a ]; }`,
    `let f = { a, b ? 2, ... }@args: a + b; in f { a = 1; }`,
    `x: y: if x -> y then !x || y && x == y else x // { z = -1; }`,
    `rec { a = b.c or null; d = a ? e; g = ''\n  ''$not ''\${interp} \${ "nested \${ "deep" }" } '''quote\n''; }`,
    `with import <nixpkgs> { }; assert true; [ (a.b or c) ({ x }: x) ]`,
    `/* block */ # line\n { a = [ 1 2 ] ++ [ 3 ]; b = 6 / 2 * 3; c = 6/2; d = ~/x; }`,
  ];
  for (const src of ok) assert.doesNotThrow(() => parseNix(src), src);
  const bad: [string, RegExp][] = [
    ['{ a = 1; ', /expected "}" before the end of file/],
    ['{ a = 1 }', /expected ";"/],
    ['{ a = "x; }', /unterminated string/],
    ["{ a = ''x; }", /unterminated ''string''/],
    ['let a = 1; a', /expected "=", found end of file/],
    ['let a = 1; b = 2;', /expected "in" before the end of file/],
    ['{ a = [ 1 2 ; }', /expected ";"|unterminated list|unexpected/],
    ['{ a = "${1 + }"; }', /unexpected/],
    ['a == b == c', /not associative/],
    ['{ a = 1; } }', /after the expression/],
    ['if a then b', /expected "else"/],
    ['{ a, b }: ', /unexpected end of file/],
    ['/* open', /unterminated comment/],
  ];
  for (const [src, re] of bad) assert.throws(() => parseNix(src), (e: unknown) => e instanceof NixSyntaxError && re.test(e.message), src);
});

test('flake.nix parses and has packages.default, devShells.default and nixosModules.default (services.mpctl)', () => {
  assert.deepEqual(keysOf(flake), ['description', 'inputs', 'outputs']);
  const outputs = lookup(flake, 'outputs')!;
  assert.equal(outputs.t, 'lambda');
  assert.deepEqual((outputs as Extract<Node, { t: 'lambda' }>).formals?.names, ['self', 'nixpkgs']);
  assert.deepEqual(keysOf(outputs), ['packages', 'devShells', 'nixosModules']);
  // packages = forAll (pkgs: { default = pkgs.buildNpmPackage { … }; })
  const pkg = lookup(lookup(outputs, 'packages')!, 'default')!;
  assert.ok(pkg.t === 'app' && pkg.f.t === 'select' && pkg.f.path.join('.') === 'buildNpmPackage', 'buildNpmPackage');
  for (const k of ['pname', 'version', 'src', 'npmDeps', 'nativeBuildInputs', 'buildInputs', 'buildPhase', 'installPhase', 'meta']) assert.ok(keysOf(pkg).includes(k), `package ${k}`);
  const build = JSON.stringify(lookup(pkg, 'buildPhase'));
  for (const step of ['make -C native', 'make -C bpf', 'tsc -p tsconfig.json', 'vmlinux.h']) assert.ok(build.includes(step), `buildPhase: ${step}`);
  const install = JSON.stringify(lookup(pkg, 'installPhase'));
  for (const f of ['dist build bin policy package.json node_modules', 'mpctl@.service', 'run-mpctl-bpf.mount']) assert.ok(install.includes(f), `installPhase: ${f}`);
  assert.ok(lookup(lookup(outputs, 'devShells')!, 'default'), 'devShells.default');

  const mod = lookup(outputs, 'nixosModules.default')!;
  assert.equal(mod.t, 'lambda');
  assert.deepEqual((mod as Extract<Node, { t: 'lambda' }>).formals, { names: ['config', 'lib', 'pkgs'], ellipsis: true });
  assert.deepEqual(keysOf(mod), ['options', 'config']);
  assert.deepEqual(keysOf(lookup(mod, 'options.services.mpctl')!), ['enable', 'role', 'configFile', 'package']);
  assert.ok(JSON.stringify(lookup(mod, 'options.services.mpctl.role')).includes('"local"'), 'role: enum local/remote');
  const svc = lookup(mod, 'config.systemd.services.mpctl.serviceConfig')!;
  const exec = JSON.stringify(lookup(svc, 'ExecStart'));
  for (const w of [' up ', '--config', '--no-tui']) assert.ok(exec.includes(w), `ExecStart has ${w}`);
  assert.ok(lookup(mod, 'config.systemd.mounts'), 'the bpffs mount unit');
});

test('the NixOS service has the hardening and capabilities of contrib/systemd/mpctl@.service', () => {
  const outputs = lookup(flake, 'outputs')!;
  const svc = lookup(outputs, 'nixosModules.default.config.systemd.services.mpctl.serviceConfig')!;
  const moduleKeys = new Set(keysOf(svc));
  for (const k of serviceKeys.keys()) assert.ok(moduleKeys.has(k), `module sets ${k} like the unit`);
  for (const k of moduleKeys) assert.ok(serviceKeys.has(k), `the unit sets ${k} like the module`);
  // capabilities: the let-bound list in the flake, the same words in the unit
  const caps = stringList(lookup({ t: 'attrs', rec: false, bindings: (outputs as Extract<Node, { t: 'lambda' }>).body.t === 'let' ? ((outputs as Extract<Node, { t: 'lambda' }>).body as Extract<Node, { t: 'let' }>).bindings : [] }, 'capabilities'));
  assert.deepEqual(caps, ['CAP_NET_ADMIN', 'CAP_BPF', 'CAP_PERFMON']);
  assert.deepEqual(serviceKeys.get('CapabilityBoundingSet')!.split(' '), caps);
  assert.ok(!unit.match(/^CapabilityBoundingSet=.*CAP_SYS_ADMIN/m), 'no CAP_SYS_ADMIN');
  assert.equal(serviceKeys.get('ProtectSystem'), 'strict');
  assert.equal(serviceKeys.get('NoNewPrivileges'), 'yes');
});

test('systemd-analyze verify and security --offline accept the units', (t) => {
  if (spawnSync('systemd-analyze', ['--version']).status !== 0) return t.skip('no systemd-analyze on this host');
  const dir = mkdtempSync(`${tmpdir()}/mpctl-units-`);
  try {
    // verify wants ExecStart's binary to exist: point it at one that does
    writeFileSync(`${dir}/mpctl@.service`, unit.replaceAll('/usr/local/bin/mpctl', '/bin/true'));
    writeFileSync(`${dir}/run-mpctl-bpf.mount`, readFileSync(here('../contrib/systemd/run-mpctl-bpf.mount')));
    const v = spawnSync('systemd-analyze', ['verify', '--man=no', `${dir}/mpctl@lp.service`, `${dir}/run-mpctl-bpf.mount`], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    const complaints = v.stderr.split('\n').filter((l) => l.includes(dir));
    assert.deepEqual(complaints, [], 'no unknown keys or bad values');
    const s = spawnSync('systemd-analyze', ['security', '--offline=yes', `${dir}/mpctl@lp.service`], { encoding: 'utf8' });
    const level = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(s.stdout + s.stderr)?.[1]);
    console.log(`systemd-analyze security: exposure ${level} (0 best, 10 worst)`);
    assert.ok(level <= 4.5, `exposure ${level}`);
    // the checker itself must notice a broken unit
    writeFileSync(`${dir}/bad@.service`, '[Service]\nExecStart=/bin/true\nProtectSystem=sometimes\n');
    const b = spawnSync('systemd-analyze', ['verify', '--man=no', `${dir}/bad@x.service`], { encoding: 'utf8' });
    assert.match(b.stderr, /bad@\.service:3: Failed to parse/, 'verify reports a bad value');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(existsSync(here('../contrib/systemd/mpctl@.service')));
});
