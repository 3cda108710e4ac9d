// Link liveness: pure functions of "when did we last hear from this link" → up/down.
// A link is marked down once it has been silent for `missed` probe intervals (default 3) and up
// again as soon as a probe (or its reply) arrives. A busy link can be called down sooner from
// the data (fast-down.ts); such a link is *held* down until a probe heard after `heldUntil`.
// Times are in milliseconds.

export interface LivenessParams {
  intervalMs: number;
  missed: number;
}

export const DEFAULT_LIVENESS: LivenessParams = { intervalMs: 100, missed: 3 };

export type LinkLiveness = 'up' | 'down';

/** State of one link at `nowMs`, given the time of the last authenticated packet (null: never)
 * and, for a link held down, the time a probe must be heard after. */
export function linkLiveness(lastHeardMs: number | null, nowMs: number, p: LivenessParams = DEFAULT_LIVENESS, heldUntilMs?: number): LinkLiveness {
  if (lastHeardMs === null) return 'down';
  if (heldUntilMs !== undefined && lastHeardMs <= heldUntilMs) return 'down';
  return nowMs - lastHeardMs <= p.intervalMs * p.missed ? 'up' : 'down';
}

/** The links whose state changed between `prev` and now: what must be written to the map.
 * `skip`: links not to judge (the portal's admin-down ones), without a filtered copy of
 * `lastHeard` each probe round. */
export function livenessChanges(
  prev: ReadonlyMap<number, LinkLiveness>,
  lastHeard: ReadonlyMap<number, number | null>,
  nowMs: number,
  p: LivenessParams = DEFAULT_LIVENESS,
  heldUntil: ReadonlyMap<number, number> = new Map(),
  skip: (id: number) => boolean = () => false,
): Map<number, LinkLiveness> {
  const out = new Map<number, LinkLiveness>();
  for (const [id, last] of lastHeard) {
    if (skip(id)) continue;
    const s = linkLiveness(last, nowMs, p, heldUntil.get(id));
    if (prev.get(id) !== s) out.set(id, s);
  }
  return out;
}
