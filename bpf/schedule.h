/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedule.h — which link carries the next packet: the one where it will arrive first.
 *
 *   arrival(link) = max(now, busy_until[link]) + wire_len * 8e9 / rate_bps + owd_us * 1000
 *
 * Sending on the chosen link makes it busy for the packet's serialisation time, so load
 * spreads in proportion to rate, and the one-way delay term keeps packets in order across
 * links of different latency. Only links that are up, whose peer endpoint is known, that have
 * not spent their byte budget, where the packet fits (mp_link.mtu, pmtu.h), and that have the
 * lowest metric among those compete (higher metrics are backup tiers: a backup carries nothing
 * while a lower tier can).
 *
 * Budgets (metered links): mp_sched.sent_bytes[id] counts the outer IP bytes scheduled on each
 * link, under the lock; a link with budget_bytes != 0 and sent_bytes >= budget_bytes is skipped
 * (the packet that crosses the line is the last one). The scan reads sent_bytes before the
 * lock (an aligned u64 load; the stack has no room for the budgets under it), so packets
 * scheduled at that moment on other CPUs may each add one more. Userland raises budget_bytes by each
 * period's allowance (cc/budget.ts, cc/loop.ts). A spent link does not count for its tier,
 * so a backup tier takes over when every primary is down or spent.
 *
 * Pure TCP ACKs and SYN-ACKs (no payload, no FIN/RST; encap.c pure_ack) go the other way
 * round: they take the link where they land LATEST, as long as that is no later than the
 * slowest usable link of the tier would deliver them from an empty queue (ack_arrival_limit). Every round trip then contains the
 * bond's longest one-way delay, including the round trips of data that took the fastest link
 * with an empty queue. Why: a sender whose window is a multiple of its MINIMUM RTT (BBR keeps
 * 2 x bandwidth x min RTT in flight) sees, with ACKs on the fast path, the fast path's RTT as
 * its minimum and never keeps enough in flight to fill a slower link as well: with 20 Mbit/10 ms
 * + 20 Mbit/60 ms one BBR flow got 17.8 Mbit/s, the fast link alone; with its ACKs on the 60 ms
 * link 34.6 Mbit/s (lab, upload, one run each). Where the latest choice would land an ACK less
 * than MP_ACK_SPREAD_NS later than the earliest one (links of about the same delay), ACKs are
 * scheduled like data, so they keep being spread over links. Links with a byte budget (metered)
 * and links flagged MP_LINK_F_NO_ACKS (lossy, or far slower than the best: cc/loop.ts) are
 * not used for ACKs at all, neither for the slowest-link rule nor when ACKs are spread like
 * data, while a link without the flag is usable (README "Benchmarks": with ACKs on a 4 Mbit/150 ms link next
 * to a 30 Mbit/4 ms one, every round trip carried the slow link's delay and loss); config
 * `ack_path = "earliest"` (MP_CFG_ACKS_EARLIEST) turns the slowest-link rule off.
 *
 * Held links (README "The data path outlives its control plane"): rate_bps is the controller's
 * pacing rate of the moment (a probing gain, a drain), live only while the controller runs on
 * feedback. A link flagged MP_LINK_F_HELD (no feedback: the peer's control plane is gone), or
 * any link while our own control plane's heartbeat is older than MP_ALIVE_NS, is planned at
 * hold_kbps instead (98 % of the controller's hold rate, cc/controller.ts holdBps: its bandwidth
 * estimate or, if lower, the median of what the link delivered loaded over the last second;
 * a max filter alone froze one bunched sample: 25.2 Mbit/s on a 20 Mbit/s link), and a packet whose
 * link would then have more than MP_HOLD_QUEUE_NS of modelled queue is dropped
 * (MP_DROP_HOLD_QUEUE): the flow's bottleneck is then the scheduler at the held rates, not the
 * links, so a link whose real rate is a little under its held rate is not overfilled. Without
 * that limit one frozen link ran its 60 ms queue full and the flow fell to 76 % (lab, 2×20).
 *
 * Buffer depth (plan_cap_ms): the equalising backlog lives in the link's own buffer (on
 * 20 Mbit/10 ms + 20 Mbit/60 ms the fast link holds ~50 ms of it so that its packets land with
 * the slow link's), and a buffer holds only so much. A link whose planned backlog
 * (busy_until − now) exceeds the cap its controller learned from the link's losses under a
 * standing queue is full: its arrival counts MP_PLAN_FULL_NS later, so it takes a packet only
 * when every competing link is full too (then the earliest arrival, as without caps), and
 * never a pure ACK while another link has room. The packet it would have taken goes to a link
 * with room, later than its order (reordering, which end hosts tolerate) instead of into a
 * full buffer (a loss, which CUBIC takes for congestion): with the cap the flow's window can
 * grow by the other links' buffers beyond the bond's capacity before a loss, where without it
 * the fast link overflowed as soon as the slow one queued at all (README "mismatch").
 *
 * Userland writes mp_links (rate, delay, state) concurrently; they are read before taking the
 * lock, because no helper may be called while holding a bpf_spin_lock. Under the lock we only
 * compare and advance busy_until and take the sequence numbers.
 */
#ifndef MP_SCHEDULE_H
#define MP_SCHEDULE_H

#include "maps.h"
#include "pmtu.h"

#define MP_DEFAULT_RATE_BPS 1000000ULL /* rate_bps 0 (unknown) counts as 1 Mbit/s */
#define MP_ACK_SLACK_NS 1000000ULL    /* a pure ACK may land this much after the slowest link's floor */
#define MP_ACK_SPREAD_NS 2000000ULL   /* below this gain over the earliest link: schedule like data */
#define MP_PLAN_FULL_NS 10000000000ULL /* a link planned beyond its plan_cap_ms: this much later */

struct pick {
	__u32 id;       /* link id */
	__u32 seq;      /* per-direction sequence number */
	__u32 link_seq; /* per-link sequence number */
	__u32 too_big;  /* no pick: the largest inner packet a usable link carries (0: none usable,
			 * MP_PICK_HELD: the link it would take is held and its queue full) */
};

#define MP_PICK_HELD 0xffffffffU

/* Our control plane's heartbeat is older than MP_ALIVE_NS (0: never written: live). */
static __always_inline bool control_plane_gone(__u64 now)
{
	__u32 zero = 0;
	const struct mp_config *c = bpf_map_lookup_elem(&mp_config, &zero);

	return c && c->alive_ns && now > c->alive_ns + MP_ALIVE_NS;
}

/* Is link l held (see the header)? gone: control_plane_gone(). */
static __always_inline bool link_held(const struct mp_link *l, bool gone)
{
	return l->hold_kbps && (gone || (l->flags & MP_LINK_F_HELD));
}

/* The rate the scheduler plans link l at, bits per second. */
static __always_inline __u64 link_rate(const struct mp_link *l, bool gone)
{
	if (link_held(l, gone))
		return (__u64)l->hold_kbps * 1000;
	return l->rate_bps ? l->rate_bps : MP_DEFAULT_RATE_BPS;
}

/* Bytes the link adds in front of the inner packet: outer IP, UDP (udp carrier), mp_hdr. */
static __always_inline __u32 outer_overhead(const struct mp_link *l)
{
	return (l->local.family == 6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr)) +
	       (l->carrier == MP_CARRIER_UDP ? sizeof(struct udphdr) : 0) + MP_HDR_LEN;
}

/* Can this link carry packets now? Up, with a valid peer endpoint of its own family. */
static __always_inline bool link_usable(const struct mp_link *l, const struct mp_endpoint *ep)
{
	return l->state == MP_LINK_UP && ep->valid && (l->local.family == 4 || l->local.family == 6) &&
	       ep->addr.family == l->local.family;
}

/* What the scan before the lock found: per link, its tier and this packet's costs. */
struct sched_scan {
	__u32 wire_len;                 /* inner packet bytes (the link adds its overhead) */
	__u32 tier;                     /* lowest metric among usable links (0xffff: none) */
	__u16 metric[MP_MAX_LINKS];     /* 0xffff: not usable */
	__u8 id[MP_MAX_LINKS];          /* id[i] == i, as the verifier cannot know (see below) */
	__u32 owd_us[MP_MAX_LINKS];     /* one-way delay */
	__u32 tx_ns[MP_MAX_LINKS];      /* serialisation time of this packet (capped at ~4.3 s) */
	__u8 overhead[MP_MAX_LINKS];    /* outer header bytes the link adds */
	__u8 no_acks[MP_MAX_LINKS];     /* metered or MP_LINK_F_NO_ACKS: pure ACKs avoid it */
	__u32 full;                     /* links (bits) planned beyond their plan_cap_ms */
	__u32 fit_max;                  /* largest inner packet a usable link carries (pmtu.h) */
	__u32 held;                     /* links (bits) planned at their hold rate */
	__u32 gone;                     /* control_plane_gone() */
};

#define SCHED_UNUSABLE 0xffff

/* bpf_loop callback: look at link `index`. A callback is verified once for any index, where an
 * unrolled loop over 16 links would make the verifier walk every combination of them. */
static long sched_scan_link(__u64 index, void *ctx)
{
	struct sched_scan *sc = ctx;
	__u32 key = index;
	const struct mp_link *l = bpf_map_lookup_elem(&mp_links, &key);
	const struct mp_endpoint *ep = bpf_map_lookup_elem(&mp_endpoints, &key);
	__u32 zero = 0;
	const struct mp_sched *s = bpf_map_lookup_elem(&mp_sched, &zero);
	__u32 id = index & (MP_MAX_LINKS - 1); /* in a register: the key's stack slot is opaque */
	__u64 rate, tx;

	if (!l || !ep || !s || !link_usable(l, ep))
		return 0;
	if (l->budget_bytes && s->sent_bytes[id] >= l->budget_bytes)
		return 0; /* spent: as if down */
	if (!pmtu_fits(l, sc->wire_len, outer_overhead(l), &sc->fit_max))
		return 0; /* too big for this link: as if down for this packet */
	rate = link_rate(l, sc->gone);
	if (link_held(l, sc->gone))
		sc->held |= 1U << id;
	tx = (__u64)(sc->wire_len + outer_overhead(l)) * 8000000000ULL / rate;
	sc->metric[id] = l->metric;
	sc->id[id] = id;
	sc->owd_us[id] = l->owd_us;
	sc->tx_ns[id] = tx > 0xffffffffULL ? 0xffffffffU : tx;
	sc->overhead[id] = outer_overhead(l);
	sc->no_acks[id] = l->budget_bytes != 0 || (l->flags & MP_LINK_F_NO_ACKS);
	/* read before the lock, like sent_bytes (no room on the stack for the caps under it) */
	if (l->plan_cap_ms && s->busy_until_ns[id] > bpf_ktime_get_ns() + l->plan_cap_ms * 1000000ULL)
		sc->full |= 1U << id;
	if (l->metric < sc->tier)
		sc->tier = l->metric;
	return 0;
}

/* bpf_loop callback for a pure ACK: link `index` is not for ACKs (metered, MP_LINK_F_NO_ACKS),
 * so it is as if unusable. Only called when a link for ACKs is usable in the tier. */
static long sched_ack_mask(__u64 index, void *ctx)
{
	struct sched_scan *sc = ctx;
	__u32 id = index & (MP_MAX_LINKS - 1);

	if (sc->no_acks[id])
		sc->metric[id] = SCHED_UNUSABLE;
	return 0;
}

/* The latest a pure ACK may land: when the slowest link of the tier that may carry ACKs would
 * deliver it from an empty queue (plus a little slack). 0: no such link, schedule it like data. */
static __always_inline __u64 ack_arrival_limit(const struct sched_scan *sc, __u64 now)
{
	__u32 owd_max = 0, id;
	bool any = false;

#pragma unroll
	for (id = 0; id < MP_MAX_LINKS; id++) {
		if (sc->metric[id] != sc->tier || sc->no_acks[id])
			continue;
		any = true;
		if (sc->owd_us[id] > owd_max)
			owd_max = sc->owd_us[id];
	}
	return any ? now + owd_max * 1000ULL + MP_ACK_SLACK_NS : 0;
}

/* Pick a link for an inner packet of inner_len bytes at time now (pure_ack: a TCP ACK without
 * payload, see the header). false: no link usable, or (out->too_big != 0) none the packet fits. */
static __always_inline bool schedule(__u32 inner_len, bool pure_ack, __u64 now, struct pick *out)
{
	struct sched_scan sc = { .wire_len = inner_len, .tier = SCHED_UNUSABLE, .gone = control_plane_gone(now) };
	__u64 best_arrival = ~0ULL, best_start = 0, best_tx = 0;
	__u64 ack_limit, ack_arrival = 0, ack_start = 0, ack_tx = 0;
	__u32 zero = 0, best = 0, ack = 0, id;
	struct mp_sched *s;

#pragma unroll
	for (id = 0; id < MP_MAX_LINKS; id++)
		sc.metric[id] = SCHED_UNUSABLE;
	bpf_loop(MP_MAX_LINKS, sched_scan_link, &sc, 0);
	out->too_big = sc.fit_max;
	if (sc.tier == SCHED_UNUSABLE)
		return false;
	ack_limit = pure_ack ? ack_arrival_limit(&sc, now) : 0;
	if (ack_limit) /* a pure ACK with a link for ACKs: the others do not compete at all */
		bpf_loop(MP_MAX_LINKS, sched_ack_mask, &sc, 0);

	s = bpf_map_lookup_elem(&mp_sched, &zero);
	if (!s)
		return false;

	bpf_spin_lock(&s->lock);
#pragma unroll
	for (id = 0; id < MP_MAX_LINKS; id++) {
		__u64 start, arrival;

		if (sc.metric[id] != sc.tier) /* unusable, spent, or a backup tier */
			continue;
		start = s->busy_until_ns[id] > now ? s->busy_until_ns[id] : now;
		arrival = start + sc.tx_ns[id] + sc.owd_us[id] * 1000ULL;
		if (sc.full & (1U << id))
			arrival += MP_PLAN_FULL_NS; /* its buffer is full: only if every link's is */
		if (arrival < best_arrival) { /* ties go to the lower id */
			best_arrival = arrival;
			best_start = start;
			best_tx = sc.tx_ns[id];
			/* Not `best = id`: a constant would be tracked exactly through the rest of
			 * encap(), which the verifier would then walk once per possible link. */
			best = sc.id[id];
		}
		/* the latest landing within the limit (ack_limit 0: not a pure ACK) */
		if (!sc.no_acks[id] && arrival - sc.tx_ns[id] <= ack_limit && arrival > ack_arrival) {
			ack_arrival = arrival;
			ack_start = start;
			ack_tx = sc.tx_ns[id];
			ack = sc.id[id];
		}
	}
	if (ack_arrival > best_arrival + MP_ACK_SPREAD_NS) {
		best = ack;
		best_start = ack_start;
		best_tx = ack_tx;
	}
	best &= MP_MAX_LINKS - 1;
	if ((sc.held & (1U << best)) && best_start > now + MP_HOLD_QUEUE_NS) {
		bpf_spin_unlock(&s->lock);
		out->too_big = MP_PICK_HELD;
		return false;
	}
	s->busy_until_ns[best] = best_start + best_tx;
	s->sent_bytes[best] += sc.wire_len + sc.overhead[best];
	out->seq = ++s->seq;
	out->link_seq = ++s->link_seq[best];
	bpf_spin_unlock(&s->lock);

	out->id = best;
	return true;
}

/* Redundant copies (redundant.h): what schedule_copies() has chosen so far. Small: it lives on
 * the stack of a function that encap() calls (512 bytes for the whole chain). */
struct copy_scan {
	__u64 now;
	__u64 min;    /* this round: the earliest arrival found, */
	__u32 at;     /* on this link (MP_MAX_LINKS: none yet) */
	__u32 wire_len;
	__u32 best;   /* the link schedule() picked */
	__u32 copies; /* links chosen (bits) */
	__u32 gone;   /* control_plane_gone() */
};

/* bpf_loop callback, one link of a round: is link `index` usable (any tier; up, endpoint known,
 * budget not spent, the packet fits), not the picked one nor chosen already, and the earliest
 * arrival so far? Reads busy_until without the lock (aligned u64 loads): a copy's link is a
 * choice among near-equals, and mp_red_copy() (encap.c) makes it busy under the lock when it
 * sends. */
static long sched_copy_try(__u64 index, void *ctx)
{
	struct copy_scan *cs = ctx;
	__u32 key = index, zero = 0, fit = 0, id = index & (MP_MAX_LINKS - 1);
	const struct mp_link *l = bpf_map_lookup_elem(&mp_links, &key);
	const struct mp_endpoint *ep = bpf_map_lookup_elem(&mp_endpoints, &key);
	const struct mp_sched *s = bpf_map_lookup_elem(&mp_sched, &zero);
	__u64 busy, arrival, rate;

	if (!l || !ep || !s || id == cs->best || (cs->copies & (1U << id)) || !link_usable(l, ep))
		return 0;
	if (l->budget_bytes && s->sent_bytes[id] >= l->budget_bytes)
		return 0;
	if (!pmtu_fits(l, cs->wire_len, outer_overhead(l), &fit))
		return 0;
	busy = s->busy_until_ns[id];
	rate = link_rate(l, cs->gone);
	arrival = (busy > cs->now ? busy : cs->now) + l->owd_us * 1000ULL +
		  (__u64)(cs->wire_len + outer_overhead(l)) * 8000000000ULL / rate;
	if (arrival < cs->min) {
		cs->min = arrival;
		cs->at = id;
	}
	return 0;
}

/* bpf_loop callback, one round: add the earliest other link; stop when none is left. */
static long sched_copy_link(__u64 index, void *ctx)
{
	struct copy_scan *cs = ctx;

	cs->min = ~0ULL;
	cs->at = MP_MAX_LINKS;
	bpf_loop(MP_MAX_LINKS, sched_copy_try, cs, 0);
	if (cs->at >= MP_MAX_LINKS)
		return 1;
	cs->copies |= 1U << (cs->at & (MP_MAX_LINKS - 1));
	return 0;
}

/* The links (bits) of the copies of an inner packet of inner_len bytes that schedule() put on
 * link best: the next earliest arrivals, `more` of them at most. */
static __always_inline __u32 schedule_copies(__u32 inner_len, __u32 best, __u32 more, __u64 now)
{
	struct copy_scan cs = { .now = now, .wire_len = inner_len, .best = best, .gone = control_plane_gone(now) };

	bpf_loop(more < MP_MAX_LINKS ? more : MP_MAX_LINKS - 1, sched_copy_link, &cs, 0);
	return cs.copies;
}

/* A message of inner_len bytes that must go on link id (a loss-recovery parity, fec.h): the
 * link's queue and byte count grow by it and it takes a data seq, no link_seq (it is outside
 * the link's loss count). false: the link cannot carry it now. */
static __always_inline bool schedule_on(__u32 id, __u32 inner_len, __u64 now, struct pick *out)
{
	__u32 key = id & (MP_MAX_LINKS - 1), zero = 0;
	const struct mp_link *l = bpf_map_lookup_elem(&mp_links, &key);
	const struct mp_endpoint *ep = bpf_map_lookup_elem(&mp_endpoints, &key);
	struct mp_sched *s = bpf_map_lookup_elem(&mp_sched, &zero);
	__u64 rate, tx, start;
	__u32 wire, fit = 0;

	if (!l || !ep || !s || !link_usable(l, ep))
		return false;
	if (l->budget_bytes && s->sent_bytes[key] >= l->budget_bytes)
		return false;
	if (!pmtu_fits(l, inner_len, outer_overhead(l), &fit))
		return false;
	wire = inner_len + outer_overhead(l);
	rate = link_rate(l, control_plane_gone(now));
	tx = (__u64)wire * 8000000000ULL / rate;
	bpf_spin_lock(&s->lock);
	start = s->busy_until_ns[key] > now ? s->busy_until_ns[key] : now;
	s->busy_until_ns[key] = start + tx;
	s->sent_bytes[key] += wire;
	out->seq = ++s->seq;
	bpf_spin_unlock(&s->lock);
	out->id = key;
	out->link_seq = 0;
	out->too_big = 0;
	return true;
}

#endif /* MP_SCHEDULE_H */
