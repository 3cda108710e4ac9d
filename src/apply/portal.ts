// `mpctl up` / `mpctl down` for one portal: config → plan → apply → run, and back.
//
//   up:   read the private key · stale record? clean it · plan from config + the interfaces' addresses and MTUs · load
//         the BPF object (maps pinned) · write its config/link maps · apply the plan (routes,
//         rules, neighbour proxies, sysctls, GRO off, the segmentation loop, clsact, filters)
//         recording an undo log · turn the loop on in the config · start the handshake,
//         probes and liveness · "portal up"
//   down: stop the loop · revert the undo log newest first · unpin · forget the record
// A failed `up` reverts what it did; `up` of a running instance is a no-op; `up` of an instance
// whose process died adopts its running data path (hitless restart, `adoptable`).
import { rm } from 'node:fs/promises';
import { existsSync, readlinkSync } from 'node:fs';
import { err, ok, type Result } from 'neverthrow';
import { describeError, type MpError } from '../errors.js';
import type { PortalConfig } from '../config/types.js';
import { openRtnl, type Rtnl } from '../netlink/rtnl.js';
import { bpffsMount, tcAttach, tcDetach } from '../native/libmpctl.js';
import { isAlive } from '../proc.js';
import { planPortal, type PlanFacts } from '../plan/plan.js';
import { loadPolicy } from '../plan/policy.js';
import type { Plan } from '../plan/types.js';
import { applyPlan, revertAll, type FilterPort, type Undo } from './apply.js';
import { objectId, openDatapath, type Datapath } from './datapath.js';
import * as abi from '../datapath/abi.js';
import { sweepNat } from '../run/nat.js';
import { startLocal, startRemote, type AuthSetup, type Runtime } from '../run/runtime.js';
import { loadStaticKeys } from '../security/auth.js';
import { publish, PUBLISH_MS, readPublished, type Published } from '../run/status.js';
import { BPFFS_ROOT, pinDir as pinDirOf, readPortalState, removePortalState, writePortalState, type PortalState } from './state.js';

export type Log = (msg: string, fields?: Record<string, unknown>) => void;

export interface RunningPortal {
  state: PortalState;
  plan: Plan;
  runtime: Runtime;
  datapath: Datapath;
  rt: Rtnl;
  stop(): Promise<Result<void, MpError>>;
  /** Ends the control plane only: the data path runs on, pinned, with the record (undo log) left
   * for the next `up` of the instance to adopt (hitless re-exec: `systemctl reload`). */
  handOver(): Promise<void>;
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
      if (!dp || dp.handle === null) return err({ kind: 'Bug', message: 'attach without a loaded object' });
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

/** Reverts a dead or stopping portal's record in this namespace and removes its pins and files.
 *  What could not be reverted stays in the record (UndoIncomplete), for the next `down`. */
async function cleanup(rt: Rtnl, st: PortalState, dp: Datapath | null): Promise<Result<void, MpError>> {
  const log = [...st.undo];
  const r = await revertAll({ rt, ns: null, filters: filterPort(rt, dp), record: async (l) => writePortalState({ ...st, undo: l }) }, log);
  dp?.close();
  await rm(st.pinDir, { recursive: true, force: true });
  if (r.isOk()) await removePortalState(st.instance);
  return r;
}

/** A dead portal's record whose data path may be adopted rather than torn down: same namespace,
 * role and config file, its maps still pinned, its filters in its undo log. */
function adoptable(prev: PortalState, cfg: PortalConfig, configFile: string): boolean {
  return (
    prev.netns === currentNetns() &&
    prev.role === cfg.role &&
    prev.configFile === configFile &&
    prev.pinDir === pinDirOf(cfg.instance) &&
    existsSync(`${prev.pinDir}/mp_config`) &&
    prev.undo.some((u) => u.kind === 'bpfFilter')
  );
}

/**
 * LP, adopted: each link's path MTUs for its new searches to start from (PmtuProber.seed): up as
 * the running data path schedules by it (mp_link.mtu), down (which the LP's data path does not
 * hold: it tells the RP) as the dead process last published it, when it had confirmed it.
 */
async function adoptedPmtus(instance: string, up: Map<number, number>, log: Log): Promise<Map<number, { up: number; down: number }>> {
  const last = await readPublished(instance);
  const down = new Map<number, number>();
  for (const l of last?.links ?? []) if (l.pmtu && 'down' in l.pmtu && l.pmtu.down.probed) down.set(l.id, l.pmtu.down.mtu);
  const seeds = new Map([...new Set([...up.keys(), ...down.keys()])].map((id) => [id, { up: up.get(id) ?? 0, down: down.get(id) ?? 0 }]));
  if (seeds.size > 0)
    log(`path MTUs taken over from the running data path (up/down): ${[...seeds].map(([id, m]) => `link ${id} ${m.up}/${m.down || '?'}`).join(', ')}`, { links: Object.fromEntries(seeds) });
  return seeds;
}

export async function portalUp(cfg: PortalConfig, configFile: string, log: Log): Promise<Result<RunningPortal | 'already-up', MpError>> {
  // a key problem is found before anything changes
  const keys = await loadStaticKeys(cfg);
  if (keys.isErr()) return err(keys.error);
  const prev = await readPortalState(cfg.instance);
  // only "no record" means "not up": an unreadable one must not be overwritten (it is the undo log)
  if (prev.isErr() && prev.error.kind !== 'NotFound') return err(prev.error);
  const rtR = openRtnl(null);
  if (rtR.isErr()) return err(rtR.error);
  const rt = rtR.value;
  const fail = (e: MpError) => {
    rt.close();
    return err(e);
  };
  const object = objectId();
  if (object.isErr()) return fail(object.error);
  let adopt: PortalState | null = null;
  if (prev.isOk()) {
    if (isAlive(prev.value.pid) && prev.value.pid !== process.pid) {
      rt.close();
      return ok('already-up');
    }
    const fits = adoptable(prev.value, cfg, configFile);
    if (fits && prev.value.object === object.value) {
      adopt = prev.value;
      log('adopting the running data path of a portal that did not stop (hitless restart)', { pid: prev.value.pid });
    } else {
      if (fits)
        log(`not adopting the running data path: it was loaded from another BPF object (${prev.value.object ?? 'not recorded'}; this mpctl's is ${object.value}): an upgrade; replacing it, its flows pause while it is loaded again`, { pid: prev.value.pid, was: prev.value.object ?? null, object: object.value });
      log('cleaning up after a portal that did not stop cleanly', { pid: prev.value.pid });
      const c = await cleanup(rt, prev.value, null);
      if (c.isErr()) return fail(c.error);
    }
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
  if (!adopt) await rm(pinDir, { recursive: true, force: true });
  const state: PortalState = {
    version: 1,
    instance: cfg.instance,
    role: cfg.role,
    pid: process.pid,
    configFile,
    startedAt: new Date().toISOString(),
    netns: currentNetns(),
    pinDir,
    object: object.value,
    undo: adopt ? adopt.undo : [],
  };
  const saved = await writePortalState(state);
  if (saved.isErr()) return fail(saved.error);
  const dp = await openDatapath(pinDir, cfg, rt, facts.value.addresses, adopt !== null, (msg) => log(msg));
  if (dp.isErr()) {
    await cleanup(rt, state, null);
    return fail(dp.error);
  }
  if (!adopt) {
    // adopted: what the previous process applied is in place, its undo log is ours
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
  }
  // the segmentation loop's entry exists now: tell encap where it is (bpf/loop.h)
  const loop = plan.value.loop;
  const loopIndex = await rt.linkIndex(loop.dev);
  const loopOn = loopIndex.andThen((ifindex) => dp.value.setLoop({ ifindex, mark: loop.mark, routed: loop.routed }));
  if (loopOn.isErr()) {
    await cleanup(rt, state, dp.value);
    return fail(loopOn.error);
  }
  // bond_local: the bond device exists now: tell decap where the LP's own replies go (bpf/nat.h)
  const bl = plan.value.bondLocal;
  if (bl) {
    const links = await rt.listLinks();
    const dev = links.andThen((ls) => {
      const l = ls.find((x) => x.name === bl.dev);
      return l ? ok(l) : err<never, MpError>({ kind: 'NotFound', what: 'interface', message: `no interface ${bl.dev} (bond_local)` });
    });
    const on = dev.andThen((l) => dp.value.setBondLocal({ ifindex: l.index, mac: l.mac, ...(bl.v4 ? { v4: bl.v4 } : {}), ...(bl.v6 ? { v6: bl.v6 } : {}) }));
    if (on.isErr()) {
      await cleanup(rt, state, dp.value);
      return fail(on.error);
    }
  }
  const statePort = dp.value.linkStatePort();
  const authSetup: AuthSetup = {
    local: keys.value,
    peer: cfg.auth.mode === 'authenticated' ? Buffer.from(cfg.auth.peerPublicKey, 'base64') : null,
    keys: dp.value.keysPort(),
    adopted: adopt !== null,
  };
  const seeds = adopt && cfg.role === 'local' ? await adoptedPmtus(cfg.instance, dp.value.adoptedMtus, log) : new Map();
  const runtime =
    cfg.role === 'local' ? await startLocal(cfg, dp.value.sources, statePort, authSetup, log, dp.value.ifMtus, seeds) : await startRemote(cfg, statePort, authSetup, log);
  if (runtime.isErr()) {
    await cleanup(rt, state, dp.value);
    return fail(runtime.error);
  }
  // publish the loop's view for `mpctl status` (read-only, from any shell); its time is the
  // control plane's last sign of life when it dies, its packet count gives `status` a rate
  let publishFailed = false;
  const publishing = setInterval(() => {
    let packets = 0;
    const links = runtime.value.status();
    for (const l of links) {
      const c = statePort.counters(l.id);
      if (c.isOk() && c.value) packets += Number(c.value.txPackets + c.value.rxPackets);
    }
    const published: Published = {
      time: Date.now(),
      packets,
      links,
      feedback: runtime.value.feedback(),
      badControl: runtime.value.badControl(),
      security: runtime.value.security(),
    };
    // a failed write leaves the last one (status shows its age): said once, and once it works again
    const w = publish(cfg.instance, published);
    if (w.isErr() && !publishFailed) log('status file write failed (status shows the last one)', { error: describeError(w.error) });
    else if (w.isOk() && publishFailed) log('status file written again');
    publishFailed = w.isErr();
  }, PUBLISH_MS);
  // whole-LAN mode: delete the mappings idle past their timeouts (the data path already counts
  // them as free), every MP_NAT_SWEEP_S (src/run/nat.ts)
  const sweeping =
    cfg.role === 'local' && cfg.lanPrefixes.length > 0
      ? setInterval(() => {
          const r = sweepNat(dp.value.maps.natIn, dp.value.maps.natOut, abi.natNowS());
          if (r.isErr()) log('NAT sweep failed', { error: describeError(r.error) });
        }, abi.MP_NAT_SWEEP_S * 1000)
      : undefined;
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
      clearInterval(publishing);
      clearInterval(sweeping);
      await runtime.value.stop();
      const r = await cleanup(rt, { ...state, undo: state.undo }, dp.value);
      rt.close();
      return r;
    },
    handOver: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(publishing);
      clearInterval(sweeping);
      await runtime.value.stop();
      dp.value.close();
      rt.close();
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
  if (st.isErr()) return st.error.kind === 'NotFound' ? ok('not-up') : err(st.error);
  if (isAlive(st.value.pid) && st.value.pid !== process.pid) {
    try {
      process.kill(st.value.pid, 'SIGTERM');
    } catch {
      return err({ kind: 'PermissionDenied', message: `cannot stop portal "${instance}" (pid ${st.value.pid}): permission denied (run mpctl as root)` });
    }
    const until = Date.now() + timeoutMs;
    // until it exits; a record it leaves behind holds what its teardown could not undo
    while (Date.now() < until && isAlive(st.value.pid)) await new Promise((r) => setTimeout(r, 20));
    if (isAlive(st.value.pid)) process.kill(st.value.pid, 'SIGKILL');
  }
  const again = await readPortalState(instance);
  if (again.isErr()) return again.error.kind === 'NotFound' ? ok('stopped') : err(again.error);
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

