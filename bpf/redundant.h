/* SPDX-License-Identifier: GPL-2.0 */
/*
 * redundant.h — redundant mode (mp.h, "redundant mode"): latency-critical packets on several
 * links at once, the first copy kept.
 *
 *   encap: red_classify() finds the packet's class (mp_red_class, first match); schedule.h
 *          picks the scheduled link as for any packet and the copies' links (the best other
 *          usable links by arrival, any tier); red_charge() takes the copies' bytes from the
 *          class's token bucket, or none go (capped); encap.c's mp_red_copy() signs, pushes and
 *          sends each copy (bpf_clone_redirect) before the packet itself goes on its link.
 *   decap: an authentic MP_HDR_F_COPY packet whose seq the replay window already saw is a
 *          duplicate (MP_DROP_DUPLICATE); the first is delivered and counted as a win of its link.
 *
 * Without authentication (MP_CFG_NO_AUTH) decap has no replay window: every copy is delivered.
 */
#ifndef MP_REDUNDANT_H
#define MP_REDUNDANT_H

#include "maps.h"
#include "parse.h"

#define RED_NONE 0xff /* red_classify(): no class */

/* What the class test looks at. */
struct red_pkt {
	__u8 family;
	__u8 dscp;
	__u8 udp;
	__u8 cls;       /* result: the first class that matched (RED_NONE: none) */
	__u16 sport;    /* host order, UDP only */
	__u16 dport;
	__u32 saddr[4];
	__u32 daddr[4];
};

static __always_inline bool red_port_in(const struct mp_red_class *c, __u32 i, __u16 port)
{
	return i < c->n_ports && port >= c->port_lo[i] && port <= c->port_hi[i];
}

static __always_inline bool red_prefix_in(const struct mp_red_class *c, __u32 i, const struct red_pkt *k)
{
	const struct mp_addr *p = &c->prefix[i];

	return i < c->n_prefixes && p->family == k->family &&
	       (in_prefix(k->saddr, p, k->family) || in_prefix(k->daddr, p, k->family));
}

/* bpf_loop callback: does class `index` match? Stops at the first that does. */
static long red_match(__u64 index, void *ctx)
{
	struct red_pkt *k = ctx;
	__u32 key = index;
	const struct mp_red_class *c = bpf_map_lookup_elem(&mp_red_class, &key);

	if (!c || !c->used)
		return 0;
	if ((c->dscp >> (k->dscp & 63)) & 1)
		goto hit;
	if (k->udp) {
#pragma unroll
		for (__u32 i = 0; i < MP_RED_PORT_RANGES; i++)
			if (red_port_in(c, i, k->sport) || red_port_in(c, i, k->dport))
				goto hit;
	}
#pragma unroll
	for (__u32 i = 0; i < MP_RED_PREFIXES; i++)
		if (red_prefix_in(c, i, k))
			goto hit;
	return 0;
hit:
	k->cls = index & (MP_RED_CLASSES - 1);
	return 1;
}

_Static_assert((MP_RED_CLASSES & (MP_RED_CLASSES - 1)) == 0, "class ids are masked");
_Static_assert(MP_RED_CLASSES <= 16, "the class fits the high nibble of mp_hdr.flags");

/* The packet's class, or RED_NONE. Fragments after the first have no ports (DSCP and prefixes
 * still match). */
static __always_inline __u8 red_classify(struct __sk_buff *skb, const struct l3 *p)
{
	struct red_pkt k = { .family = p->family, .cls = RED_NONE };
	__u8 b[2];
	__be16 ports[2];

	if (bpf_skb_load_bytes(skb, ETH_HLEN, b, sizeof(b)))
		return RED_NONE;
	k.dscp = p->family == 4 ? b[1] >> 2 : ((b[0] & 0x0f) << 2) | (b[1] >> 6);
	if (!load_addr(skb, l3_saddr_off(p), p->family, k.saddr) ||
	    !load_addr(skb, l3_daddr_off(p), p->family, k.daddr))
		return RED_NONE;
	if (p->proto == IPPROTO_UDP && !p->later_frag && !bpf_skb_load_bytes(skb, p->l4_off, ports, sizeof(ports))) {
		k.udp = 1;
		k.sport = bpf_ntohs(ports[0]);
		k.dport = bpf_ntohs(ports[1]);
	}
	bpf_loop(MP_RED_CLASSES, red_match, &k, 0);
	return k.cls;
}

static __always_inline struct mp_red_stats *red_stats(__u32 cls)
{
	return bpf_map_lookup_elem(&mp_red_stats, &cls);
}

/* Take `bytes` (the copies' outer bytes) from class cls's bucket; false: not enough tokens. */
static __always_inline bool red_charge(__u32 cls, __u64 bytes, __u64 now)
{
	const struct mp_red_class *c = bpf_map_lookup_elem(&mp_red_class, &cls);
	struct mp_red_bucket *b = bpf_map_lookup_elem(&mp_red_bucket, &cls);
	__u64 rate, burst, tokens, add;
	bool ok = false;

	if (!c || !b)
		return false;
	rate = c->cap_bytes_per_s;
	burst = c->burst_bytes;
	bpf_spin_lock(&b->lock);
	if (!b->last_ns) {
		tokens = burst;
	} else {
		tokens = b->tokens;
		add = now > b->last_ns ? (now - b->last_ns) : 0;
		/* rate < 2^34 (16 GB/s) and add capped at 10 s: the product fits in 64 bits */
		if (add > 10000000000ULL)
			add = 10000000000ULL;
		tokens += add * rate / 1000000000ULL;
	}
	if (tokens > burst)
		tokens = burst;
	if (tokens >= bytes) {
		tokens -= bytes;
		ok = true;
	}
	b->tokens = tokens;
	b->last_ns = now;
	bpf_spin_unlock(&b->lock);
	return ok;
}

/* decap: the first copy of a redundant packet arrived on link id. */
static __always_inline void red_count_win(const struct mp_hdr *h, __u32 id)
{
	struct mp_red_stats *st;

	if (!(h->flags & MP_HDR_F_COPY))
		return;
	st = red_stats((h->flags >> MP_HDR_CLASS_SHIFT) & (MP_RED_CLASSES - 1));
	if (st)
		st->wins[id & (MP_MAX_LINKS - 1)]++;
}

/* decap: a later copy of a redundant packet. */
static __always_inline void red_count_duplicate(const struct mp_hdr *h)
{
	struct mp_red_stats *st = red_stats((h->flags >> MP_HDR_CLASS_SHIFT) & (MP_RED_CLASSES - 1));

	if (st)
		st->duplicates++;
}

#endif /* MP_REDUNDANT_H */
