/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ttl.h — an inner packet whose TTL / hop limit expires in the tunnel (decap, MP_CFG_DEC_TTL: the
 * tunnel is one router hop) is answered with ICMP "time exceeded" from the portal's own address,
 * so that tracepath and traceroute see the bond as a hop instead of a silent gap.
 *
 *   RP  (client → server, the client's TTL ran out): from the RP's own address (the local
 *       address of a link of the packet's family), sent into the segmentation loop's device
 *       (mpf…a → mpf…b), where encap takes it back through the tunnel to the client.
 *   LP  (server → client): from the LP's address on a link of that family, out of that link's
 *       device to the sender like any packet of the LP's own (not through the tunnel).
 *
 * No own address of the family (no link of it) or, on the RP, no loop: dropped, as before. The
 * answer is counted as MP_DROP_TTL (the packet itself did not go on).
 */
/* Defines a global BPF function: include from decap.c only (one definition per object). */
#ifndef MP_TTL_H
#define MP_TTL_H

#define MP_ICMP_BUILDERS_ONLY
#include "icmp.h"

/* The first link (the one it arrived on preferred) with a local address of `family`. */
static __always_inline const struct mp_link *own_link(__u32 in_id, __u8 family)
{
	const struct mp_link *l;
	__u32 key = in_id & (MP_MAX_LINKS - 1);

	l = bpf_map_lookup_elem(&mp_links, &key);
	if (l && l->state != MP_LINK_UNUSED && l->local.family == family)
		return l;
#pragma unroll
	for (__u32 id = 0; id < MP_MAX_LINKS; id++) {
		key = id;
		l = bpf_map_lookup_elem(&mp_links, &key);
		if (l && l->state != MP_LINK_UNUSED && l->local.family == family)
			return l;
	}
	return NULL;
}

/* The decapsulated inner packet of `family` in skb (arrived on link in_id) has no TTL left:
 * answer it. A global (noinline) function, verified once. */
__attribute__((noinline)) int mp_icmp_time_exceeded(struct __sk_buff *skb, __u64 in_id, __u64 family)
{
	const struct mp_config *cfg = config_get();
	const struct mp_link *l;
	struct bpf_redir_neigh nh = {};
	enum mp_drop_reason r;
	__u32 src[4];
	struct l3 p;

	if (!cfg || !parse_l3(skb, &p) || p.truncated || p.family != family || !icmp_may_answer(skb, &p))
		return mp_drop(MP_DROP_TTL);
	l = own_link(in_id, p.family);
	if (!l || (cfg->role == MP_ROLE_REMOTE && !cfg->loop_ifindex))
		return mp_drop(MP_DROP_TTL);
	__builtin_memcpy(src, l->local.addr, sizeof(src));
	if (p.family == 4)
		r = icmp4_error(skb, ICMP_TIME_EXCEEDED, 0, 0, src);
	else
		r = icmp6_error(skb, ICMPV6_TIME_EXCEED, 0, 0, src);
	if (r != MP_DROP_NONE)
		return mp_drop(r);
	if (cfg->role == MP_ROLE_REMOTE) /* back through the tunnel, by way of the loop's encap */
		return mp_exit(bpf_redirect(cfg->loop_ifindex, 0), MP_DROP_TTL);
	if (l->nexthop.family == 4) {
		nh.nh_family = AF_INET;
		nh.ipv4_nh = *(const __u32 *)l->nexthop.addr;
	} else if (l->nexthop.family == 6) {
		nh.nh_family = AF_INET6;
		__builtin_memcpy(nh.ipv6_nh, l->nexthop.addr, 16);
	}
	if (!nh.nh_family)
		return mp_exit(bpf_redirect_neigh(l->ifindex, NULL, 0, 0), MP_DROP_TTL);
	return mp_exit(bpf_redirect_neigh(l->ifindex, &nh, sizeof(nh), 0), MP_DROP_TTL);
}

#endif /* MP_TTL_H */
