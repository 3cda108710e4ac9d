// Packaging without the tools it targets: flake.nix is parsed by `nix-instantiate --parse` and
// evaluated by `nix-instantiate --eval` against a small stand-in for nixpkgs
// (test/fixtures/flake-eval.nix; there is no nixpkgs and no network here, so a nixpkgs attribute
// that does not exist upstream or a wrong option type still passes); the systemd units — the
// shipped one and the one the NixOS module generates — are checked by `systemd-analyze verify`
// (unknown keys, bad values) and `systemd-analyze security --offline`, and the module's service
// must carry the same hardening and capabilities as contrib/systemd/mpctl@.service.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { evalFlake, hasNix, nixParseError, unitSection } from './helpers/nix.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const FLAKE = here('../flake.nix');
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

// nix-instantiate is Debian's nix-bin (scripts/setup.sh installs it)
const noNix = !hasNix() && 'no nix-instantiate (apt install nix-bin, or scripts/setup.sh)';

type Service = { serviceConfig: Record<string, string | boolean | string[]>; [k: string]: unknown };
type Flake = {
  outputs: string[];
  package: Record<string, unknown>;
  devShell: { packages: string[] };
  options: string[];
  roles: string[];
  service: Service;
  mounts: { where: string; type: string }[];
};
const flake = () => evalFlake(FLAKE) as Flake;

test('nix-instantiate --parse accepts flake.nix and refuses broken syntax', { skip: noNix }, () => {
  assert.equal(nixParseError(FLAKE), null);
  const dir = mkdtempSync(`${tmpdir()}/mpctl-nix-`);
  try {
    const text = readFileSync(FLAKE, 'utf8');
    for (const [from, to, re] of [
      ['"aarch64-linux" ];', '"aarch64-linux" ]', /syntax error, unexpected '=', expecting ';'/],
      ['forAll = f:', 'forAll = g:', /undefined variable 'f'/],
    ] as const) {
      assert.ok(text.includes(from));
      writeFileSync(`${dir}/flake.nix`, text.replace(from, to));
      assert.match(nixParseError(`${dir}/flake.nix`) ?? '', re);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('flake.nix evaluates to packages.default, devShells.default and nixosModules.default (services.mpctl)', { skip: noNix }, () => {
  const f = flake();
  assert.deepEqual(f.outputs, ['devShells', 'nixosModules', 'packages']);
  const pkg = f.package;
  for (const k of ['pname', 'version', 'src', 'npmDeps', 'nativeBuildInputs', 'buildInputs', 'buildPhase', 'installPhase', 'meta']) assert.ok(k in pkg, `package ${k}`);
  // the clang wrapper's hardening flags break `clang -target bpf -Werror`
  assert.deepEqual(pkg.hardeningDisable, ['zerocallusedregs', 'stackprotector']);
  const build = String(pkg.buildPhase);
  for (const step of ['make -C native', 'make -C bpf', 'tsc -p tsconfig.json', '/nix/store/linux-dev/vmlinux format c > build/bpf/vmlinux.h']) assert.ok(build.includes(step), `buildPhase: ${step}`);
  const install = String(pkg.installPhase);
  for (const x of ['dist build bin policy package.json node_modules', 'mpctl@.service', 'run-mpctl-bpf.mount']) assert.ok(install.includes(x), `installPhase: ${x}`);
  assert.ok(f.devShell.packages.includes('/nix/store/nodejs_20'), 'devShells.default has Node 20');
  assert.deepEqual(f.options, ['configFile', 'enable', 'package', 'role']);
  assert.deepEqual(f.roles, ['local', 'remote']);
  assert.equal(f.service.serviceConfig.ExecStart, '/nix/store/mpctl/bin/mpctl up local --config /etc/mpctl/lp.toml --no-tui');
  assert.equal((evalFlake(FLAKE, 'remote') as Flake).service.serviceConfig.ExecStart, '/nix/store/mpctl/bin/mpctl up remote --config /etc/mpctl/lp.toml --no-tui');
  assert.deepEqual(f.mounts.map((m) => [m.where, m.type]), [['/run/mpctl/bpf', 'bpf']], 'the bpffs mount unit');
});

test('the NixOS service has the hardening and capabilities of contrib/systemd/mpctl@.service', { skip: noNix }, () => {
  const svc = flake().service.serviceConfig;
  const moduleKeys = new Set(Object.keys(svc));
  for (const k of serviceKeys.keys()) assert.ok(moduleKeys.has(k), `module sets ${k} like the unit`);
  for (const k of moduleKeys) assert.ok(serviceKeys.has(k), `the unit sets ${k} like the module`);
  assert.deepEqual(svc.CapabilityBoundingSet, ['CAP_NET_ADMIN', 'CAP_BPF', 'CAP_PERFMON']);
  assert.deepEqual(serviceKeys.get('CapabilityBoundingSet')!.split(' '), svc.CapabilityBoundingSet);
  assert.ok(!unit.match(/^CapabilityBoundingSet=.*CAP_SYS_ADMIN/m), 'no CAP_SYS_ADMIN');
  assert.equal(serviceKeys.get('ProtectSystem'), 'strict');
  assert.equal(serviceKeys.get('NoNewPrivileges'), 'yes');
  // ProtectSystem=strict leaves /var read-only: the budget usage needs its state directory
  assert.equal(serviceKeys.get('StateDirectory'), 'mpctl');
  assert.equal(svc.StateDirectory, 'mpctl');
});

test('the unit the NixOS module generates passes systemd-analyze verify', { skip: noNix }, (t) => {
  if (spawnSync('systemd-analyze', ['--version']).status !== 0) return t.skip('no systemd-analyze on this host');
  const s = flake().service;
  const dir = mkdtempSync(`${tmpdir()}/mpctl-nixunit-`);
  try {
    const svc = { ...s.serviceConfig, ExecStart: String(s.serviceConfig.ExecStart).replace('/nix/store/mpctl/bin/mpctl', '/bin/true'), ExecStopPost: '/bin/true', ExecReload: '/bin/true' };
    const text = [
      unitSection('Unit', { Description: String(s.description), Wants: s.wants as string[], After: s.after as string[], Requires: s.requires as string[] }),
      unitSection('Service', svc),
      unitSection('Install', { WantedBy: s.wantedBy as string[] }),
    ].join('\n\n');
    writeFileSync(`${dir}/mpctl.service`, `${text}\n`);
    writeFileSync(`${dir}/run-mpctl-bpf.mount`, readFileSync(here('../contrib/systemd/run-mpctl-bpf.mount')));
    const v = spawnSync('systemd-analyze', ['verify', '--man=no', `${dir}/mpctl.service`, `${dir}/run-mpctl-bpf.mount`], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    assert.deepEqual(v.stderr.split('\n').filter((l) => l.includes(dir)), [], 'no unknown keys or bad values');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the unit tears down after a clean stop only: not after a crash, nor after a reload (exit 75: hitless re-exec)', () => {
  assert.equal(serviceKeys.get('ExecReload'), '/bin/kill -USR2 $MAINPID');
  assert.deepEqual([serviceKeys.get('SuccessExitStatus'), serviceKeys.get('RestartForceExitStatus'), serviceKeys.get('Restart')], ['75', '75', 'on-failure']);
  // ExecStopPost's script as systemd hands it to sh ($$ → $, %i → the instance), mpctl → echo
  const line = serviceKeys.get('ExecStopPost')!;
  const script = line.slice(line.indexOf("'") + 1, line.lastIndexOf("'")).replaceAll('$$', '$').replaceAll('%i', 'lp').replace('exec /usr/local/bin/mpctl', 'echo');
  const post = (env: Record<string, string>) => spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', ...env } }).stdout.trim();
  assert.equal(post({ SERVICE_RESULT: 'success', EXIT_CODE: 'exited', EXIT_STATUS: '0' }), 'down --config /etc/mpctl/lp.toml', '`systemctl stop`: everything removed');
  assert.equal(post({ SERVICE_RESULT: 'success', EXIT_CODE: 'exited', EXIT_STATUS: '75' }), '', '`systemctl reload`: the data path stays for the restart to adopt');
  assert.equal(post({ SERVICE_RESULT: 'signal', EXIT_CODE: 'killed', EXIT_STATUS: 'KILL' }), '', 'killed: Restart= adopts');
  assert.equal(post({ SERVICE_RESULT: 'exit-code', EXIT_CODE: 'exited', EXIT_STATUS: '1' }), '', 'failed: Restart= adopts');
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

test('README "Deploying on two machines" installs what scripts/setup.sh installs to build and run', () => {
  const setup = readFileSync(here('../scripts/setup.sh'), 'utf8');
  const list = (name: string) => /^\S+=\((.*)\)$/m.exec(setup.split('\n').find((l) => l.startsWith(`${name}=(`)) ?? '')?.[1]?.split(/\s+/) ?? [];
  const pkgs = list('PKGS');
  assert.ok(pkgs.includes('gcc') && pkgs.includes('git') && pkgs.includes('libelf-dev') && pkgs.includes('zlib1g-dev'), pkgs.join(' '));
  const readme = readFileSync(here('../README.md'), 'utf8');
  const deploy = readme.slice(readme.indexOf('## Deploying on two machines'));
  const apt = /^\s*apt install (.*)$/m.exec(deploy)?.[1]?.split(/\s+/) ?? [];
  assert.deepEqual([...apt].sort(), [...pkgs].sort(), 'the README\'s apt line is setup.sh\'s PKGS');
  // Debian 12 and Ubuntu 24.04 ship Node 18: the README says where Node 20 comes from
  assert.match(deploy, /Node\.js 20 or newer with npm: the `nodejs` of Debian 12 and of Ubuntu 24\.04 is 18/);
  assert.match(setup, /-lt 20/, 'setup.sh refuses an older Node');
  // the README's first paragraph (what the demo and test commands install) names them all, and
  // what the lab and the tests add
  const top = /\(apt:([^;]*);/.exec(readme.slice(0, readme.indexOf('\n# mpctl')))?.[1] ?? '';
  const named = top.replace('and for the lab and the tests', ',').split(/[\s,]+/).filter(Boolean);
  assert.deepEqual(named.sort(), [...pkgs, ...list('TEST_PKGS')].sort(), 'the README\'s first paragraph lists setup.sh\'s PKGS and TEST_PKGS');
});
