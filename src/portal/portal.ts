// `mpctl up` / `mpctl down` for one portal: config → plan → apply → run, and back.
//
//   up:   read the private key · stale record? clean it · plan from config + the interfaces' addresses and MTUs · load
//         the BPF object (maps pinned) · write its config/link maps · apply the plan (routes,
//         rules, neighbour proxies, sysctls, GRO off, the segmentation loop, clsact, filters)
//         recording an undo log · turn the loop on in the config · start the handshake,
//         probes and liveness · "portal up"
//   down: stop the loop · revert the undo log newest first · unpin · forget the record
// A failed `up` reverts what it did; `up` of a running instance is a no-op.
import { rm, writeFile } from 'node:fs/promises';
import { readlinkSync } from 'node:fs';
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../errors.js';
import type { PortalConfig } from '../config/types.js';
import { openRtnl, type Rtnl } from '../netlink/rtnl.js';
import { bpffsMount, tcAttach, tcDetach } from '../native/libmpctl.js';
import { isAlive } from '../lab/namespaces.js';
import { planPortal, type PlanFacts } from '../plan/plan.js';
import { loadPolicy } from '../plan/policy.js';
import type { Plan } from '../plan/types.js';
import { applyPlan, revertAll, type FilterPort, type Undo } from './apply.js';
import { openDatapath, type Datapath } from './datapath.js';
import { startLocal, startRemote, type AuthSetup, type Runtime } from './runtime.js';
import { loadStaticKeys } from './auth.js';
import { publishFile, type Published } from './status.js';
import { BPFFS_ROOT, pinDir as pinDirOf, readPortalState, removePortalState, writePortalState, type PortalState } from './state.js';

export type Log = (msg: string, fields?: Record<string, unknown>) => void;

export interface RunningPortal {
  state: PortalState;
  plan: Plan;
  runtime: Runtime;
  datapath: Datapath;
  rt: Rtnl;
  stop(): Promise<Result<void, MpError>>;
}

const currentNetns = (): string => readlinkSync('/proc/thread-self/ns/net');

/** What the plan needs from the machine: the interfaces' addresses (links without a `source`)
 *  and MTUs (the tunnel's inner MTU, which the segmentation loop's device takes). */
export async function planFacts(rt: Rtnl): Promise<Result<Required<PlanFacts>, MpError>> {
  const a = await rt.listAddresses();
  if (a.isErr()) return err(a.error);
  const links = await rt.listLinks();
  if (links.isErr()) return err(links.error);
  const addresses: Record<string, string[]> = {};
  for (const x of a.value) if (!x.address.startsWith('fe80:')) (addresses[x.ifname] ??= []).push(x.address);
  return ok({ addresses, mtus: Object.fromEntries(links.value.map((l) => [l.name, l.mtu])) });
}

function filterPort(rt: Rtnl, dp: Datapath | null): FilterPort {
  return {
    attach: async (s) => {
      if (!dp) return err({ kind: 'Bug', message: 'attach without a loaded object' });
      const idx = await rt.linkIndex(s.dev);
      if (idx.isErr()) return err(idx.error);
      return tcAttach({ handle: dp.handle, prog: s.prog, ifindex: idx.value, direction: s.direction, priority: s.priority, tcHandle: s.handle });
    },
    detach: async (u) => {
      const idx = await rt.linkIndex(u.dev);
      if (idx.isErr()) return err(idx.error);
      return tcDetach({ ifindex: idx.value, direction: u.direction, priority: u.priority, tcHandle: u.handle });
    },
  };
}

/** Reverts a dead or stopping portal's record in this namespace and removes its pins and files. */
async function cleanup(rt: Rtnl, st: PortalState, dp: Datapath | null): Promise<Result<void, MpError>> {
  const log = [...st.undo];
  const r = await revertAll({ rt, ns: null, filters: filterPort(rt, dp), record: async (l) => writePortalState({ ...st, undo: l }) }, log);
  dp?.close();
  await rm(st.pinDir, { recursive: true, force: true });
  await removePortalState(st.instance);
  return r;
}

export async function portalUp(cfg: PortalConfig, configFile: string, log: Log): Promise<Result<RunningPortal | 'already-up', MpError>> {
  // a key problem is found before anything changes
  const keys = await loadStaticKeys(cfg);
  if (keys.isErr()) return err(keys.error);
  const prev = await readPortalState(cfg.instance);
  const rtR = openRtnl(null);
  if (rtR.isErr()) return err(rtR.error);
  const rt = rtR.value;
  const fail = (e: MpError) => {
    rt.close();
    return err(e);
  };
  if (prev.isOk()) {
    if (isAlive(prev.value.pid) && prev.value.pid !== process.pid) {
      rt.close();
      return ok('already-up');
    }
    log('cleaning up after a portal that did not stop cleanly', { pid: prev.value.pid });
    const c = await cleanup(rt, prev.value, null);
    if (c.isErr()) return fail(c.error);
  }
  const facts = await planFacts(rt);
  if (facts.isErr()) return fail(facts.error);
  const policy = await loadPolicy();
  if (policy.isErr()) return fail(policy.error);
  const plan = planPortal(cfg, policy.value, facts.value);
  if (plan.isErr()) return fail(plan.error);

  const mounted = bpffsMount(BPFFS_ROOT);
  if (mounted.isErr()) return fail(mounted.error);
  const pinDir = pinDirOf(cfg.instance);
  await rm(pinDir, { recursive: true, force: true });
  const state: PortalState = {
    version: 1,
    instance: cfg.instance,
    role: cfg.role,
    pid: process.pid,
    configFile,
    startedAt: new Date().toISOString(),
    netns: currentNetns(),
    pinDir,
    undo: [],
  };
  await writePortalState(state);
  const dp = await openDatapath(pinDir, cfg, rt, facts.value.addresses, (msg) => log(msg));
  if (dp.isErr()) {
    await cleanup(rt, state, null);
    return fail(dp.error);
  }
  const undo: Undo[] = [];
  const applied = await applyPlan(
    { rt, ns: null, filters: filterPort(rt, dp.value), record: async (l) => writePortalState({ ...state, undo: l }) },
    plan.value.steps,
    undo,
  );
  if (applied.isErr()) {
    await cleanup(rt, { ...state, undo }, dp.value);
    return fail(applied.error);
  }
  state.undo = applied.value;
  // the segmentation loop's entry exists now: tell encap where it is (bpf/loop.h)
  const loop = plan.value.loop;
  const loopIndex = await rt.linkIndex(loop.dev);
  const loopOn = loopIndex.andThen((ifindex) => dp.value.setLoop({ ifindex, mark: loop.mark, routed: loop.routed }));
  if (loopOn.isErr()) {
    await cleanup(rt, state, dp.value);
    return fail(loopOn.error);
  }
  const statePort = dp.value.linkStatePort();
  const authSetup: AuthSetup = {
    local: keys.value,
    peer: cfg.auth.mode === 'authenticated' ? Buffer.from(cfg.auth.peerPublicKey, 'base64') : null,
    keys: dp.value.keysPort(),
  };
  const runtime =
    cfg.role === 'local' ? await startLocal(cfg, dp.value.sources, statePort, authSetup, log, dp.value.ifMtus) : await startRemote(cfg, statePort, authSetup, log);
  if (runtime.isErr()) {
    await cleanup(rt, state, dp.value);
    return fail(runtime.error);
  }
  // publish the loop's view for `mpctl status` (read-only, from any shell)
  const publish = setInterval(() => {
    const published: Published = {
      links: runtime.value.status(),
      feedback: runtime.value.feedback(),
      badControl: runtime.value.badControl(),
      security: runtime.value.security(),
    };
    void writeFile(publishFile(cfg.instance), JSON.stringify(published)).catch(() => {});
  }, 250);
  let stopped = false;
  const running: RunningPortal = {
    state,
    plan: plan.value,
    runtime: runtime.value,
    datapath: dp.value,
    rt,
    stop: async () => {
      if (stopped) return ok(undefined);
      stopped = true;
      clearInterval(publish);
      await runtime.value.stop();
      const r = await cleanup(rt, { ...state, undo: state.undo }, dp.value);
      rt.close();
      return r;
    },
  };
  log('portal up', { instance: cfg.instance, role: cfg.role, links: cfg.role === 'local' ? cfg.links.length : undefined, pins: pinDir });
  return ok(running);
}

/**
 * Stops the portal `instance`: asks its process to tear down (SIGTERM) and waits; if the process
 * is gone, reverts its record here. Returns what happened.
 */
export async function portalDown(instance: string, timeoutMs = 10_000): Promise<Result<'not-up' | 'stopped' | 'cleaned', MpError>> {
  const st = await readPortalState(instance);
  if (st.isErr()) return ok('not-up');
  if (isAlive(st.value.pid) && st.value.pid !== process.pid) {
    process.kill(st.value.pid, 'SIGTERM');
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if ((await readPortalState(instance)).isErr() && !isAlive(st.value.pid)) return ok('stopped');
      await new Promise((r) => setTimeout(r, 20));
    }
    if (isAlive(st.value.pid)) process.kill(st.value.pid, 'SIGKILL');
  }
  const again = await readPortalState(instance);
  if (again.isErr()) return ok('stopped');
  if (again.value.netns !== currentNetns())
    return err({ kind: 'Conflict', what: 'namespace', message: `portal "${instance}" ran in another network namespace (${again.value.netns}); run mpctl down there` });
  const rtR = openRtnl(null);
  if (rtR.isErr()) return err(rtR.error);
  try {
    const c = await cleanup(rtR.value, again.value, null);
    return c.map(() => 'cleaned' as const);
  } finally {
    rtR.value.close();
  }
}

