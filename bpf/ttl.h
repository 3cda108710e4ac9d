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
 * A packet of a family no link has (IPv6 inside IPv4 links, or the reverse) is answered from the
 * portal's own address of that family (mp_config own_v4 / own_v6: the LP's on lan, the RP's on
 * wan) and always through the tunnel, the only way there is: on the LP it goes into the loop
 * marked with loop_mark, and encap (encap.c for_tunnel) takes a marked packet from that address
 * as if it came from the client. No address of the family or no loop: dropped, as before. The
 * answer is counted as MP_DROP_TTL (the packet itself did not go on).
 */
/* Defines a global BPF function: include from decap.c only (one definition per object). */
#ifndef MP_TTL_H
#define MP_TTL_H

#define MP_ICMP_BUILDERS_ONLY
#include "icmp.h"
#include "loop.h"

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

/* Build the answer in place, from src. Returns 0 or the drop reason. */
static __always_inline enum mp_drop_reason te_build(struct __sk_buff *skb, __u8 family, const __u32 *src)
{
	if (family == 4)
		return icmp4_error(skb, ICMP_TIME_EXCEEDED, 0, 0, src);
	return icmp6_error(skb, ICMPV6_TIME_EXCEED, 0, 0, src);
}

/* The inner packet's checks before anything is answered (a time exceeded of a time exceeded is not). */
static __always_inline bool te_may(struct __sk_buff *skb, const struct mp_config *cfg, __u8 family)
{
	struct l3 p;

	return cfg && parse_l3(skb, &p) && !p.truncated && p.family == family && icmp_may_answer(skb, &p);
}

#define MP_TTL_NO_LINK 0x7fff /* mp_icmp_time_exceeded: no link of the family, try _own */

/* The decapsulated inner packet of `family` in skb (arrived on link in_id) has no TTL left:
 * answer it from a link's address. MP_TTL_NO_LINK (nothing done) when no link has the family:
 * then decap calls mp_icmp_time_exceeded_own. Global (noinline) functions, verified once each
 * (and apart: each one's stack adds to decap's, not to the other's). */
__attribute__((noinline)) int mp_icmp_time_exceeded(struct __sk_buff *skb, __u64 in_id, __u64 family)
{
	const struct mp_config *cfg = config_get();
	const struct mp_link *l;
	struct bpf_redir_neigh nh = {};
	enum mp_drop_reason r;
	__u32 src[4];

	if (!cfg || !te_may(skb, cfg, family))
		return mp_drop(MP_DROP_TTL);
	l = own_link(in_id, family);
	if (!l)
		return MP_TTL_NO_LINK;
	if (cfg->role == MP_ROLE_REMOTE && !cfg->loop_ifindex)
		return mp_drop(MP_DROP_TTL);
	__builtin_memcpy(src, l->local.addr, sizeof(src));
	r = te_build(skb, family, src);
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

/* No link of the packet's family: answer from the portal's own address of it (mp_config
 * own_v4 / own_v6), through the tunnel by way of the loop (on the LP marked, see above). */
__attribute__((noinline)) int mp_icmp_time_exceeded_own(struct __sk_buff *skb, __u64 family)
{
	const struct mp_config *cfg = config_get();
	const struct mp_addr *own;
	enum mp_drop_reason r;
	__u32 src[4];

	if (!cfg || !loop_on(cfg))
		return mp_drop(MP_DROP_TTL);
	own = family == 4 ? &cfg->own_v4 : &cfg->own_v6;
	if (own->family != family)
		return mp_drop(MP_DROP_TTL);
	__builtin_memcpy(src, own->addr, sizeof(src));
	r = te_build(skb, family, src);
	if (r != MP_DROP_NONE)
		return mp_drop(r);
	if (cfg->role == MP_ROLE_LOCAL) /* encap takes it from our address only with the mark */
		set_mark(skb, cfg->loop_mark);
	return mp_exit(bpf_redirect(cfg->loop_ifindex, 0), MP_DROP_TTL);
}

#endif /* MP_TTL_H */
