// Path MTU discovery on every link, RFC 8899 style (packetization-layer PMTUD with padded probes,
// bpf/mp.h "struct mp_probe"), one search per link and direction, run by the LP:
//
//   up    (LP → RP): a request padded to the size under test; the reply says it arrived (req_len)
//   down  (RP → LP): a short request whose reply_len asks the RP to pad its reply to that size
//
// Size probes carry MP_PROBE_F_PMTU: their loss says nothing about liveness. The result is the
// link's outer path MTU in that direction: the LP's scheduler uses `up` (mp_link.mtu), the RP's
// uses `down`, which the LP sends it in every request (pmtu_down; pmtu_up for its status).
//
//   search     probes of several sizes at once between lo (known to pass) and hi (known to fail):
//              the first round tries the interface MTU and the sizes links usually have (PPPoE
//              1492, 4G 1440-1420, tunnels 1400-1280 ...) so that a real path is found in one
//              round trip; later rounds split what is left evenly until hi - lo <= RESOLUTION.
//   confirmed  a probe at the confirmed size every CONFIRM_MS; the first of them late or lost
//              starts a search below it on suspicion (below), LOSSES of them lost in a row while
//              the link is alive (size-dependent loss) are a shrink; every REPROBE_MS a search
//              above it looks for growth.
//
// A shrink (a black hole: packets above the new size vanish) on a link of round trip R, with
// liveness probes every 100 ms:
//
//   0 .. CONFIRM_MS           the first confirm probe after it is sent
//   + R + ORDER_MS + 4 rttvar it is late: its answer is later than the first reply that could
//                             show it lost (ORDER_MS) would be. A search round goes at once, on
//                             suspicion: the size in use stays, and confirm probes go on
//   + CONFIRM_MS + R + 50-150 the next confirm probe is known lost too (a reply to a later
//     after the first         liveness probe): LOSSES in a row, a shrink; the search on
//                             suspicion becomes the shrink's (else one starts now)
//   + R after the round       its answers; PROVISIONAL_MS on, the largest size that passed is used
//
// so the shrink is used after the phase + max(2 R + ORDER_MS + 4 rttvar, CONFIRM_MS + 2 R + ~100)
// + PROVISIONAL_MS (test/pmtu.test.ts, 25 phases, worst: 0.61 s at R = 20 ms, 0.69 s at 100, 0.92
// s at 300, 1.52 s at 600; 600 ± 10 ms: 1.31-1.55 s). Before the search on suspicion the round
// went only after the second loss was known, a round trip + 0.3 s later (1.62-1.82 s at 600
// ms). An isolated loss (a queue drop) costs one round that finds the size in use again and
// changes nothing (a probe of that size that passes breaks the row); a search on suspicion that
// ends below the size in use before the second loss is known uses nothing either. A metered
// link searches on the LOSSES-th loss only (no rounds on suspicion).
//
// Until the first search ends the link is taken to carry its interface MTU (what the data path
// did before), so a link whose path is fine never loses capacity while it is being probed.
//
// Pure (times are passed in): test/pmtu.test.ts drives it; runtime.ts sends the probes.

/** A probe at the confirmed size goes out this often; LOSSES lost in a row = the path shrank (a
 * probe of that size that passes breaks the row). About 50 kbit/s per direction on a 1500-byte
 * link (0.25 % of 20 Mbit/s), and a search round (24 probes, ~35 kB) per isolated loss (1 %
 * random loss: ~12 kbit/s more); a metered link (a byte budget) confirms every CONFIRM_METERED_MS instead
 * and searches on no suspicion (a shrink is then found within ~25 s). */
export const CONFIRM_MS = 250;
export const CONFIRM_METERED_MS = 10_000;
export const LOSSES = 2;
/** A confirmed path is searched above again this often (growth is found within this); sooner
 * after a shrink or the link's first search (REPROBE_AFTER_SHRINK_MS), in case queue drops or a
 * busy moment and not the path made it lower. */
export const REPROBE_MS = 5 * 60_000;
export const REPROBE_AFTER_SHRINK_MS = 30_000;
/** A search round sends every size this many times and counts it as failed only when all of them
 * were lost (RFC 8899's MAX_PROBES, in one round trip): one probe lost to a full queue does not
 * lower the result. */
export const STRIKES = 2;
/** A search ends when the gap between passing and failing sizes is this small. */
export const RESOLUTION = 4;
/** Probes per search round. */
export const ROUND_PROBES = 12;
/** A probe not answered within max(MIN_WAIT_MS, 3 RTT + 50 ms), at most MAX_WAIT_MS, is lost
 * (satellite round trips of 600-900 ms fit). Sooner, as a rule: */
export const MIN_WAIT_MS = 150;
export const MAX_WAIT_MS = 3000;
/** A probe is lost once a reply to any probe on the link sent ORDER_MS + 4 × the round trip's
 * variation (as TCP's RTO: a link that reorders has a varying round trip) or more after it has
 * arrived (liveness probes go every probe interval; a link mostly delivers in order): so a loss
 * is known about one round trip + one probe interval after the probe, whatever the round trip. */
export const ORDER_MS = 50;
/** A search started by size-dependent loss (the size in use no longer passes), or on suspicion
 * and then confirmed by it, uses the largest size its round has seen pass this long after the
 * first answer (or at once when confirmed later), before the round ends: the link carries what
 * fits again one round trip after the search starts. */
export const PROVISIONAL_MS = 30;

/** due() is called at least this often; a longer gap means the caller's event loop stalled (a
 * busy machine), with answers perhaps waiting unread: nothing is judged lost before they are read. */
export const STALL_MS = 200;

/** due() with nothing to send (shared: a call that sends nothing allocates nothing) */
const NOTHING: readonly (readonly [number, number])[] = Object.freeze([]);

/** Outer IP MTUs links commonly have (the first round's guesses below the interface MTU). */
const COMMON = [9000, 1500, 1492, 1480, 1472, 1460, 1454, 1450, 1440, 1420, 1400, 1380, 1360, 1350, 1340, 1320, 1300, 1280, 1240, 1200, 1100, 1000, 800, 576];

export type PmtuMode = 'search' | 'confirmed';

export interface PmtuStatus {
  /** the outer path MTU the scheduler uses */
  mtu: number;
  /** mtu was confirmed by a probe (else: the interface MTU, not yet confirmed) */
  probed: boolean;
  mode: PmtuMode;
  /** searches started by size-dependent loss (the path shrank) */
  shrinks: number;
  /** size probes sent / answered */
  sent: number;
  acked: number;
}

interface Outstanding {
  size: number;
  deadline: number;
  confirm: boolean;
  /** when it was sent */
  at: number;
  /** confirm: a suspicion search was started on it */
  suspected: boolean;
}

/** One direction of one link. */
export class PmtuSearch {
  private mtu: number;
  private probed = false;
  private mode: PmtuMode = 'search';
  /** largest size known to pass, smallest known to fail (search) */
  private lo: number;
  private hi: number;
  private roundEnd: number | null = null;
  private readonly out = new Map<number, Outstanding>();
  private nextConfirm = 0;
  private nextReprobe = 0;
  private lost = 0;
  private shrinks = 0;
  private sent = 0;
  private acked = 0;
  private token = 0;
  private lastDue: number | null = null;
  /** search: probes of each size lost so far */
  private readonly strikes = new Map<number, number>();
  /** the search was started by size-dependent loss */
  private afterShrink = false;
  /** the search looks below the size in use, which failed: when to use its best size so far */
  private shrinking = false;
  private provisionalAt: number | null = null;
  /** the search runs on suspicion (the header): a confirm probe is late or lost, fewer than
   * LOSSES in a row; the size in use stays and is confirmed meanwhile */
  private suspect = false;
  /** when this search's first answer came */
  private answered: number | null = null;
  private readonly confirmMs: number;
  /** a size to try in the next round (what an ICMP "too big" named) */
  private hint: number | null = null;
  /** the round trip of heard replies: smoothed and its mean deviation (RFC 6298) */
  private srtt: number | null = null;
  private rttvar = 0;

  /**
   * @param ceiling the interface MTU (nothing larger can be sent)
   * @param floor the outer size of an unpadded probe (known to pass while the link is up)
   */
  constructor(
    private readonly ceiling: number,
    private readonly floor: number,
    private readonly metered = false,
  ) {
    this.confirmMs = metered ? CONFIRM_METERED_MS : CONFIRM_MS;
    this.mtu = ceiling;
    this.lo = floor;
    this.hi = ceiling + 1;
  }

  status(): PmtuStatus {
    return { mtu: this.mtu, probed: this.probed, mode: this.mode, shrinks: this.shrinks, sent: this.sent, acked: this.acked };
  }

  /** Confirmed and nothing under way (no search, no suspicion): due() sends confirm probes only. */
  steady(): boolean {
    return this.mode === 'confirmed' && !this.suspect;
  }

  /** A steady search's next confirm probe goes at the next due() instead of later (the other
   * direction's goes now: PmtuProber.due keeps the two in phase). */
  pullConfirm(now: number): void {
    if (this.steady()) this.nextConfirm = Math.min(this.nextConfirm, now);
  }

  /** The confirmed outer MTU for the peer (0 = not known yet). */
  confirmed(): number {
    return this.probed ? this.mtu : 0;
  }

  /** Probes to send now: [token, size]. rttMs: the link's round trip (null: unknown). lateMs:
   * how far behind its time the caller runs (its timer fired late: the event loop stalled);
   * without it, the time since the previous call is taken (a caller that calls at least every
   * STALL_MS). */
  due(now: number, rttMs: number | null, lateMs?: number): readonly (readonly [number, number])[] {
    const gap = lateMs ?? (this.lastDue === null ? 0 : now - this.lastDue);
    this.lastDue = now;
    if (gap > STALL_MS) {
      // we were not running: answers may be queued unread; give them the time we lost (and
      // start no search on suspicion for what was in flight: a busy moment, not a shrink)
      for (const o of this.out.values()) {
        o.deadline += gap;
        o.suspected = true;
      }
      if (this.roundEnd !== null) this.roundEnd += gap;
      return NOTHING;
    }
    this.expire(now);
    if (this.provisionalAt !== null && now >= this.provisionalAt) {
      this.provisionalAt = null;
      if (this.mode === 'search' && this.shrinking && this.lo > this.floor) this.mtu = this.lo;
    }
    const wait = Math.min(MAX_WAIT_MS, Math.max(MIN_WAIT_MS, 3 * (rttMs ?? 100) + 50));
    if (this.mode === 'confirmed') {
      if (now >= this.nextReprobe && this.mtu < this.ceiling) this.startSearch(now, this.mtu, this.ceiling + 1, 'above');
      else if (this.overdue(now)) this.startSearch(now, this.floor, this.mtu + 1, 'suspect');
    }
    let out: [number, number][] | null = null;
    if (this.mode === 'search' && this.roundEnd === null) {
      const sizes = this.roundSizes();
      if (sizes.length === 0) this.settle(now);
      else {
        this.roundEnd = now + wait;
        this.strikes.clear();
        out = sizes.flatMap((s) => Array.from({ length: STRIKES }, () => this.send(s, false, now, wait)));
      }
    }
    if ((this.mode === 'confirmed' || this.suspect) && now >= this.nextConfirm) {
      this.nextConfirm = now + this.confirmMs;
      (out ??= []).push(this.send(this.mtu, true, now, wait));
    }
    return out ?? NOTHING;
  }

  private send(size: number, confirm: boolean, now: number, wait: number): [number, number] {
    const t = ++this.token;
    this.out.set(t, { size, deadline: now + wait, confirm, at: now, suspected: false });
    this.sent++;
    return [t, size];
  }

  /** When confirm probe `o` is overdue: its answer is later than the first reply that could have
   * shown it lost (a liveness probe sent ORDER_MS + 4 × rttvar after it, one smoothed round
   * trip on), without waiting for that probe to be sent. Infinity: it would start nothing. */
  private overdueAt(o: Outstanding): number {
    if (!o.confirm || o.suspected || o.size !== this.mtu || this.metered || this.mode !== 'confirmed' || this.srtt === null) return Infinity;
    return o.at + this.srtt + ORDER_MS + 4 * this.rttvar;
  }

  /** Is a confirm probe overdue (not suspected before)? Marks it suspected. */
  private overdue(now: number): boolean {
    let any = false;
    for (const o of this.out.values())
      if (now >= this.overdueAt(o)) {
        o.suspected = true;
        any = true;
      }
    return any;
  }

  /** When due() next has something to do: a probe to send, one to judge lost or overdue, a round
   * to end (ms; -Infinity: at once, a search round is waiting to go; Infinity: nothing). */
  nextDue(): number {
    if (this.mode === 'search' && this.roundEnd === null) return -Infinity;
    let t = this.mode === 'confirmed' || this.suspect ? this.nextConfirm : Infinity;
    if (this.mode === 'confirmed' && this.mtu < this.ceiling) t = Math.min(t, this.nextReprobe);
    if (this.roundEnd !== null) t = Math.min(t, this.roundEnd);
    if (this.provisionalAt !== null) t = Math.min(t, this.provisionalAt);
    for (const o of this.out.values()) t = Math.min(t, o.deadline, this.overdueAt(o));
    return t;
  }

  /** The reply to probe `token` arrived (with the size it was sent at). */
  ack(token: number, now: number): void {
    const o = this.out.get(token);
    if (!o) return;
    this.out.delete(token);
    this.acked++;
    if (o.size >= this.mtu) this.lost = 0; // the size in use passed: the row of losses is broken
    if (o.confirm || this.mode !== 'search') return;
    this.answered ??= now;
    if (o.size > this.lo) this.lo = Math.min(o.size, this.hi - 1);
    if (o.size >= this.hi) this.hi = o.size + 1; // passed after all
    if (this.shrinking && this.provisionalAt === null) this.provisionalAt = now + PROVISIONAL_MS;
    this.maybeEndRound(now);
  }

  /** A reply arrived on the link to a probe (of any kind) sent at `sentAt`: every probe sent
   * ORDER_MS or more before it is lost (ORDER_MS). */
  heard(sentAt: number, now: number): void {
    const rtt = now - sentAt;
    if (this.srtt === null) this.srtt = rtt;
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
    this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    const margin = ORDER_MS + 4 * this.rttvar;
    let any = false;
    for (const o of this.out.values())
      if (o.at + margin <= sentAt && o.deadline > now) {
        o.deadline = now;
        any = true;
      }
    if (any) this.expire(now);
  }

  /** The send failed locally (EMSGSIZE: larger than the interface allows). */
  failed(token: number, now: number): void {
    const o = this.out.get(token);
    if (!o) return;
    o.deadline = now;
    this.expire(now);
  }

  /** The link (came back) up: search again above what is confirmed (from the floor when nothing
   * is), keeping the value in use meanwhile. A restart is no evidence that the path shrank, so
   * its result is never below the confirmed value (a search run while the link was dead, or in a
   * busy moment, would find less than the path carries); the confirm probes that follow find a
   * real shrink (LOSSES lost in a row) as they do on a running link. */
  restart(now: number): void {
    this.out.clear();
    this.afterShrink = true; // a result below the ceiling is checked again soon
    this.startSearch(now, this.probed ? this.mtu : this.floor, this.ceiling + 1, 'above');
  }

  /** Taken over from a running data path (hitless restart): `mtu` is what it schedules by, so
   * it is the confirmed value, checked by the confirm probes from now on like any other; no
   * search (one would start from the interface MTU and, in the busy moment of a restart, might
   * find less). Growth is looked for at the next reprobe. */
  seed(mtu: number, now: number): void {
    if (!(mtu > this.floor)) return;
    this.out.clear();
    this.strikes.clear();
    this.lo = Math.min(mtu, this.ceiling);
    this.hi = this.ceiling + 1;
    this.roundEnd = null;
    this.afterShrink = false;
    this.suspect = false;
    this.settle(now);
  }

  /** Size-dependent loss seen elsewhere (an ICMP "too big" naming `mtu`): search at once, `mtu`
   * among the first round's sizes. Not below it only: ICMP is not authenticated, so the search
   * spans up to the size in use, and a forged one costs a search, never a smaller MTU. */
  tooBig(mtu: number, now: number): boolean {
    if (mtu >= this.mtu || mtu < this.floor) return false;
    if (this.mode === 'search' && this.shrinking) return false; // a search down to the floor runs already
    this.shrinks++;
    this.afterShrink = true;
    this.startSearch(now, this.floor, this.mtu + 1, 'shrink');
    this.hint = mtu;
    return true;
  }

  /** above: for growth (or after a restart), never below lo; shrink: the size in use was lost (or
   * said not to pass), see PROVISIONAL_MS; suspect: it may have been (the header) */
  private startSearch(now: number, lo: number, hi: number, kind: 'above' | 'shrink' | 'suspect'): void {
    this.shrinking = kind === 'shrink';
    this.suspect = kind === 'suspect';
    this.answered = null;
    this.provisionalAt = null;
    this.hint = null;
    this.mode = 'search';
    this.strikes.clear();
    this.lo = lo;
    this.hi = hi;
    this.roundEnd = null;
    if (kind !== 'suspect') for (const [t, o] of this.out) if (o.confirm) this.out.delete(t);
    void now;
  }

  /** Sizes to try in (lo, hi): the first round's guesses, then an even split. */
  private roundSizes(): number[] {
    const { lo, hi } = this;
    if (hi - lo <= RESOLUTION) return [];
    const inside = (s: number) => s > lo && s < hi;
    const out = new Set<number>();
    out.add(hi - 1);
    if (this.hint !== null && inside(this.hint)) out.add(this.hint);
    this.hint = null;
    for (const c of COMMON) if (out.size < ROUND_PROBES && inside(c) && c <= this.ceiling) out.add(c);
    const n = ROUND_PROBES - out.size;
    for (let i = 1; i <= n; i++) {
      const s = Math.round(lo + ((hi - lo) * i) / (n + 1));
      if (inside(s)) out.add(s);
    }
    return [...out].sort((a, b) => b - a);
  }

  private expire(now: number): void {
    for (const [t, o] of this.out) {
      if (o.deadline > now) continue;
      this.out.delete(t);
      if (o.confirm) {
        if (o.size === this.mtu && (this.mode === 'confirmed' || this.suspect)) this.confirmLost(o, now);
        continue;
      }
      if (this.mode !== 'search' || o.size <= this.lo || o.size >= this.hi) continue;
      const n = (this.strikes.get(o.size) ?? 0) + 1;
      this.strikes.set(o.size, n);
      if (n >= STRIKES) this.hi = o.size;
    }
    this.maybeEndRound(now);
  }

  /** Confirm probe `o` at the size in use was lost: the first of a row starts a suspicion search
   * (unless one ran on it), the LOSSES-th is a shrink. */
  private confirmLost(o: Outstanding, now: number): void {
    if (++this.lost < LOSSES) {
      if (this.mode === 'confirmed' && !o.suspected && !this.metered) this.startSearch(now, this.floor, this.mtu + 1, 'suspect');
      return;
    }
    this.lost = 0;
    this.shrinks++;
    this.afterShrink = true;
    if (this.suspect) {
      // the search on suspicion becomes the shrink's: what its round has seen pass is used
      this.suspect = false;
      this.shrinking = true;
      for (const [t, x] of this.out) if (x.confirm) this.out.delete(t);
      if (this.answered !== null) this.provisionalAt = Math.max(now, this.answered + PROVISIONAL_MS);
    } else {
      // the size itself is tried again (twice): queue drops, not the path, may have lost them
      this.startSearch(now, this.floor, this.mtu + 1, 'shrink');
    }
  }

  private maybeEndRound(now: number): void {
    if (this.mode !== 'search' || this.roundEnd === null) return;
    const pending = [...this.out.values()].some((o) => !o.confirm);
    if (pending && now < this.roundEnd) return;
    this.roundEnd = null;
    if (this.hi - this.lo <= RESOLUTION) this.settle(now);
  }

  private settle(now: number): void {
    this.mode = 'confirmed';
    this.shrinking = false;
    this.provisionalAt = null;
    for (const [t, o] of this.out) if (!o.confirm) this.out.delete(t);
    if (this.suspect) {
      // not confirmed by LOSSES in a row (yet): the size in use stays, as do the confirm probes'
      // schedule, the loss count and the reprobe; if the next loss confirms, a search follows
      this.suspect = false;
      return;
    }
    this.mtu = this.lo;
    this.probed = this.lo > this.floor;
    if (!this.probed) this.mtu = this.floor; // nothing but unpadded probes pass
    this.lost = 0;
    this.nextConfirm = now + this.confirmMs;
    this.nextReprobe = now + (this.afterShrink ? REPROBE_AFTER_SHRINK_MS : REPROBE_MS);
    this.afterShrink = false;
  }
}

/** A size probe to send: a request on link `linkId` with probe_seq `seq`, padded so that its outer
 * IP packet is `size` bytes (up) or asking for a reply of that size (down). */
export interface SizeProbe {
  linkId: number;
  seq: number;
  dir: 'up' | 'down';
  size: number;
}

/** Size probes' probe_seq space: the top half, apart from the liveness rounds' counter. */
const SEQ_BASE = 0x8000_0000;

const DIRS = ['up', 'down'] as const;
const NONE: readonly SizeProbe[] = Object.freeze([]) as readonly SizeProbe[];

/** The LP's searches on every link, both directions, and the size probes in flight. */
export class PmtuProber {
  private readonly links = new Map<number, { up: PmtuSearch; down: PmtuSearch }>();
  private readonly inFlight = new Map<number, { linkId: number; dir: 'up' | 'down'; token: number; size: number; at: number }>();
  private seq = 0;

  /** ceiling: the link's interface MTU; floor: the outer size of its unpadded probe; metered:
   * confirm less often (CONFIRM_METERED_MS) */
  addLink(id: number, ceiling: number, floor: number, metered = false): void {
    this.links.set(id, { up: new PmtuSearch(ceiling, floor, metered), down: new PmtuSearch(ceiling, floor, metered) });
  }

  /** Link `id`'s confirmed MTUs, taken over from a running data path (PmtuSearch.seed). */
  seed(id: number, mtus: { up: number; down: number }, now: number): void {
    const l = this.links.get(id);
    l?.up.seed(mtus.up, now);
    l?.down.seed(mtus.down, now);
  }

  /** The link came (back) up: search both directions again (above what is confirmed). */
  restart(id: number, now: number): void {
    const l = this.links.get(id);
    l?.up.restart(now);
    l?.down.restart(now);
  }

  /** Size probes due on link `id` now (lateMs: PmtuSearch.due). */
  due(id: number, now: number, rttMs: number | null, lateMs?: number): readonly SizeProbe[] {
    const l = this.links.get(id);
    if (!l) return NONE;
    for (const [s, f] of this.inFlight) if (now - f.at > 2 * MAX_WAIT_MS) this.inFlight.delete(s);
    let out: SizeProbe[] | null = null;
    const add = (dir: 'up' | 'down', probes: readonly (readonly [number, number])[]) => {
      for (const [token, size] of probes) {
        out ??= [];
        const seq = (SEQ_BASE + (this.seq++ % SEQ_BASE)) >>> 0;
        this.inFlight.set(seq, { linkId: id, dir, token, size, at: now });
        out.push({ linkId: id, seq, dir, size });
      }
    };
    for (const dir of DIRS) add(dir, l[dir].due(now, rttMs, lateMs));
    // both directions confirmed and steady, one confirm probe due: the other direction's goes
    // with it (sooner than its own time by less than CONFIRM_MS, once), so the two stay in phase
    // and go as one request (runtime.ts confirmPair; their searches settled apart otherwise sent
    // them in rounds of their own: two datagrams each way per link where one does)
    const one = out as SizeProbe[] | null;
    if (one?.length === 1 && l.up.steady() && l.down.steady()) {
      const other = one[0]!.dir === 'up' ? 'down' : 'up';
      l[other].pullConfirm(now);
      add(other, l[other].due(now, rttMs, lateMs));
    }
    return out ?? NONE;
  }

  /** When due() next has something to do on link `id` (PmtuSearch.nextDue, both directions). */
  nextDue(id: number): number {
    const l = this.links.get(id);
    return l ? Math.min(l.up.nextDue(), l.down.nextDue()) : Infinity;
  }

  /** A reply to a size probe (probe_seq `seq`) arrived on link `id`: its outer length as it
   * arrived, and the request's (req_len). Returns false if it answers no probe in flight. */
  reply(id: number, seq: number, replyOuter: number, reqLen: number, now: number): boolean {
    const f = this.inFlight.get(seq);
    if (!f || f.linkId !== id) return false;
    this.inFlight.delete(seq);
    const whole = f.dir === 'up' ? reqLen === f.size : replyOuter === f.size;
    const l = this.links.get(id);
    if (l && whole) l[f.dir].ack(f.token, now);
    this.heard(id, f.at, now);
    return true;
  }

  /** A reply to a probe sent at `sentAt` arrived on link `id` (liveness or size): the link's
   * probes sent well before it are lost (PmtuSearch.heard). */
  heard(id: number, sentAt: number, now: number): void {
    const l = this.links.get(id);
    l?.up.heard(sentAt, now);
    l?.down.heard(sentAt, now);
  }

  /** ICMP "too big" about our outer packets on link `id` named `mtu` (bpf/ptb.h): not
   * authenticated, so only a hint: the LP→RP search looks below it (RFC 8899 4.6.2). Returns
   * whether a search started. */
  tooBig(id: number, mtu: number, now: number): boolean {
    return this.links.get(id)?.up.tooBig(mtu, now) ?? false;
  }

  /** Sending probe `seq` failed locally (EMSGSIZE). */
  failed(seq: number, now: number): void {
    const f = this.inFlight.get(seq);
    if (!f) return;
    this.inFlight.delete(seq);
    this.links.get(f.linkId)?.[f.dir].failed(f.token, now);
  }

  /** Outer path MTUs in use (the scheduler's) and confirmed (0 = not yet: for the requests). */
  mtus(id: number): { up: number; down: number; confirmedUp: number; confirmedDown: number } | null {
    const l = this.links.get(id);
    if (!l) return null;
    return { up: l.up.status().mtu, down: l.down.status().mtu, confirmedUp: l.up.confirmed(), confirmedDown: l.down.confirmed() };
  }

  status(id: number): { up: PmtuStatus; down: PmtuStatus } | null {
    const l = this.links.get(id);
    return l ? { up: l.up.status(), down: l.down.status() } : null;
  }
}
