// What `mpctl lab …` does (its commands and options: lab.ts, which loads this module only when
// one of them runs).
import type { Arguments } from 'yargs';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../../errors.js';
import { labDown, labExec, labSchedule, labSet, labStatus, labUp, listLabs, type Direction } from '../../lab/lab.js';
import { renderStatus } from '../../lab/render.js';
import { labCheck, renderCheck } from '../../lab/check.js';
import { BENCHES, renderBench, runBench, writeSummary } from '../../lab/bench/bench.js';
import { defaultScenario, loadScenario, parseDirPatch, uniformScenario, type Scenario } from '../../lab/scenario.js';

type Args = Arguments;

async function scenarioFrom(a: { scenario?: string; links?: number }): Promise<Result<Scenario, MpError>> {
  if (a.scenario && a.links !== undefined)
    return err({ kind: 'ConfigInvalid', path: '--links', value: a.links, message: 'use either --scenario or --links, not both' });
  if (a.scenario) return loadScenario(a.scenario);
  if (a.links !== undefined) return uniformScenario(a.links);
  return ok(defaultScenario());
}

export async function runLabUp(a: Args): Promise<Result<number, MpError>> {
  const sc = await scenarioFrom(a as { scenario?: string; links?: number });
  if (sc.isErr()) return err(sc.error);
  const r = await labUp({ name: a.name as string, scenario: sc.value, bond: a.bond as boolean, singleInterface: a.singleInterface as boolean, ipv6Underlay: a.ipv6Underlay as boolean, ipCarrier: a.ipCarrier as boolean, lan: a.lan as boolean, routedHosts: a.routedHosts as boolean, ...(a.shape !== undefined ? { shape: a.shape as boolean } : {}) });
  if (r.isErr()) return err(r.error);
  const s = await labStatus(a.name as string);
  if (s.isErr()) return err(s.error);
  console.log(a.json ? JSON.stringify(s.value, null, 2) : renderStatus(s.value));
  return ok(0);
}

export async function runLabDown(a: Args): Promise<Result<number, MpError>> {
  const names = a.all ? await listLabs() : [a.name as string];
  for (const n of names) {
    const r = await labDown(n);
    if (r.isErr()) return err(r.error);
    console.log(r.value.removed.length ? `lab ${n}: removed ${r.value.removed.length} namespaces` : `lab ${n}: nothing to remove`);
  }
  return ok(0);
}

export async function runLabStatus(a: Args): Promise<Result<number, MpError>> {
  const s = await labStatus(a.name as string);
  if (s.isErr()) return err(s.error);
  console.log(a.json ? JSON.stringify(s.value, null, 2) : renderStatus(s.value));
  return ok(0);
}

export async function runLabSet(a: Args): Promise<Result<number, MpError>> {
  if (a.down && a.up) return err({ kind: 'ConfigInvalid', path: '--down', value: true, message: '--down and --up exclude each other' });
  const raw: Record<string, unknown> = {};
  for (const k of ['rate', 'delay', 'jitter', 'loss', 'queue', 'trace', 'mtu'] as const) if (a[k] !== undefined) raw[k] = a[k];
  if (a['if-mtu'] !== undefined) raw.if_mtu = a['if-mtu'];
  if (a['mtu-icmp'] !== undefined) raw.mtu_icmp = a['mtu-icmp'];
  if (a.down) raw.outage = true;
  if (a.up) raw.outage = false;
  if (Object.keys(raw).length === 0)
    return err({ kind: 'ConfigInvalid', path: 'lab set', value: a.link, message: 'nothing to change: give --rate, --delay, --jitter, --loss, --queue, --trace, --mtu, --mtu-icmp, --if-mtu, --down or --up' });
  const patch = parseDirPatch(raw, (k) => (k === 'outage' ? (a.down ? '--down' : '--up') : `--${k.replace('_', '-')}`));
  if (patch.isErr()) return err(patch.error);
  const dirs: Direction[] = a.dir === 'both' ? ['up', 'down'] : [a.dir as Direction];
  const r = await labSet({ name: a.name as string, node: a.link as string, dirs, patch: patch.value });
  if (r.isErr()) return err(r.error);
  return ok(0);
}

export async function runLabExec(a: Args): Promise<Result<number, MpError>> {
  const argv = [...((a.cmd as string[] | undefined) ?? []), ...((a['--'] as string[] | undefined) ?? [])].map(String);
  return labExec(a.name as string, a.node as string, argv);
}

export async function runLabCheck(a: Args): Promise<Result<number, MpError>> {
  const r = await labCheck(a.name as string, a.seconds as number);
  if (r.isErr()) return err(r.error);
  console.log(a.json ? JSON.stringify(r.value, null, 2) : renderCheck(r.value));
  return ok(r.value.endToEnd.every((e) => e.ok) ? 0 : 1);
}

export async function runLabBench(a: Args): Promise<Result<number, MpError>> {
  const names = (a.names as string[] | undefined)?.length ? (a.names as string[]) : [...BENCHES];
  for (const n of names) {
    const only = (a.only as string | undefined)?.split(',').filter(Boolean);
    const r = await runBench(n, a.runs as number, a.out as string, a.seconds as number | undefined, only);
    if (r.isErr()) return err(r.error);
    console.log(`${renderBench(r.value.report)}
  → ${r.value.file}${r.value.plot ? `, ${r.value.plot}` : ''}`);
  }
  const s = await writeSummary(a.out as string);
  console.log(`  → ${s.file}`);
  return ok(0);
}

export async function runLabSchedule(a: Args): Promise<Result<number, MpError>> {
  const r = await labSchedule(a.name as string, (line) => console.log(`${new Date().toISOString()} ${line}`));
  if (r.isErr()) return err(r.error);
  console.log(`schedule done: ${r.value} changes`);
  return ok(0);
}

export async function runLabList(): Promise<Result<number, MpError>> {
  for (const n of await listLabs()) console.log(n);
  return ok(0);
}
