/* SPDX-License-Identifier: GPL-2.0 */
/*
 * loop.h — the segmentation loop: packets encap cannot carry as they are go once through the
 * kernel, which cuts them to wire size, and come back to encap in pieces.
 *
 * Every inner packet needs its own outer header (its own sequence number and, later, MAC), so
 * encap never carries a GSO super-packet, nor a packet larger than inner_mtu. Two kinds of
 * those must still get through, and the kernel already knows how to cut them:
 *
 *   GSO super-packet (gso_segs > 1: GRO forced on, LRO, a local or veth TSO sender)
 *       → bpf_redirect to the egress of mpf…a, whose tx checksumming is off: every GSO type
 *         then needs software segmentation (netif_skb_features/harmonize_features), which
 *         validate_xmit_skb does before the veth sees it. No routing, so it works wherever
 *         the packet is going (even to the portal's own address on a single-interface RP).
 *         If its segments will be too big, it is treated as one too big packet instead
 *         (below, or ICMP), as ip_forward would: segmenting cannot make them fit.
 *   IPv4 without DF, larger than inner_mtu (MP_CFG_LOOP_FRAG)
 *       → back to the stack (TC_ACT_OK) with skb->mark = loop_mark. A policy rule routes that
 *         mark into mpf…a (plan.ts, policy/routing.toml), whose MTU is inner_mtu: ip_forward
 *         fragments it. Redirecting does not: redirect skips IP output, and the veth passes
 *         (or silently drops) oversized frames whole. The forward decrements the TTL once.
 *
 * Both come out of mpf…b, where encap is attached too: the mark, which a veth keeps within one
 * namespace, tells it that these are back. It clears the mark (the outer packet must not be
 * routed into the loop by bpf_redirect_neigh's FIB lookup) and carries them as any packet.
 * Anything that comes back still GSO or still too big is dropped as MP_DROP_LOOP: nothing goes
 * round twice. mpf…b's MTU is large so that the veth never drops what encap should count.
 * rp_filter never sees the pieces: encap takes them at mpf…b's tc ingress, before routing.
 *
 * IPv6 is never fragmented on the way (only its source may): oversized IPv6 is answered with
 * "packet too big" (icmp.h); only IPv6 GSO goes round the loop.
 *
 * A single-interface RP shares its address with the client, so a marked packet to the client
 * would be delivered to the RP itself (the local table's rule 0 comes before the loop's rule).
 * There the packet goes into the loop addressed to a stand-in, 192.0.0.8 (the IPv4 dummy
 * address, RFC 7600), which the loop's rule routes like any other; each piece gets the client's
 * address back at mpf…b. Only the IP header checksum follows the address: the L4 checksum,
 * left as it was, is right again once the address is (and the kernel does not look at it in
 * between: it forwards, and completes a CHECKSUM_PARTIAL one before fragmenting from the
 * partial sum the sender made for the real address).
 */
#ifndef MP_LOOP_H
#define MP_LOOP_H

#include "counters.h"
#include "parse.h"

#define MP_LOOP_STANDIN_V4 0xc0000008 /* 192.0.0.8 */

/* skb->mark = mark, as one store at a constant offset from the context (see parse.h on clang
 * and "dereference of modified ctx ptr"). */
static __always_inline void set_mark(struct __sk_buff *skb, __u32 mark)
{
	asm volatile("*(u32 *)(%[skb] + %[off]) = %[m]"
		     :
		     : [skb] "r"(skb), [off] "i"(offsetof(struct __sk_buff, mark)), [m] "r"(mark)
		     : "memory");
}

static __always_inline bool loop_on(const struct mp_config *cfg)
{
	return cfg->loop_ifindex && cfg->loop_mark;
}

/* Is this packet back from the loop? Then it loses the mark. */
static __always_inline bool loop_returned(struct __sk_buff *skb, const struct mp_config *cfg)
{
	if (!cfg->loop_mark || skb->mark != cfg->loop_mark)
		return false;
	set_mark(skb, 0);
	return true;
}

/* The loop's counters (per-CPU: plain increments). */
static __always_inline struct mp_loop_stats *loop_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&mp_loop_stats, &zero);
}

/* A GSO super-packet: into the loop to be segmented, or dropped if there is none. */
static __always_inline int loop_segment(struct __sk_buff *skb, const struct mp_config *cfg)
{
	struct mp_loop_stats *st;

	if (!loop_on(cfg))
		return mp_drop(MP_DROP_GSO);
	set_mark(skb, cfg->loop_mark);
	if ((st = loop_stats()))
		st->gso++;
	return mp_redirected(bpf_redirect(cfg->loop_ifindex, 0));
}

/*
 * The L3 length of the segments a GSO packet will be cut into: its headers and gso_size bytes
 * of payload. 0 when unknown (neither TCP nor UDP right after the IP header): then the loop
 * cuts it and its pieces are checked when they come back.
 */
static __always_inline __u32 gso_segment_len(struct __sk_buff *skb, const struct l3 *p)
{
	__u32 hdrs = p->l4_off - ETH_HLEN;
	__u8 doff;

	if (p->proto == IPPROTO_UDP)
		return hdrs + sizeof(struct udphdr) + skb->gso_size;
	if (p->proto != IPPROTO_TCP || bpf_skb_load_bytes(skb, p->l4_off + 12, &doff, 1))
		return 0;
	return hdrs + (doff >> 4) * 4 + skb->gso_size;
}

/* IPv4 without DF, too big: back to the stack, which routes the mark into the loop. */
static __always_inline bool loop_can_fragment(const struct mp_config *cfg, const struct l3 *p)
{
	return loop_on(cfg) && (cfg->flags & MP_CFG_LOOP_FRAG) && p->family == 4 && !p->df;
}

/* Rewrite the IPv4 destination (and the header checksum): `from` is what is there now. */
static __always_inline bool set_v4_dst(struct __sk_buff *skb, __be32 from, __be32 to)
{
	return !bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, daddr), &to, sizeof(to), 0) &&
	       !bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), from, to, sizeof(to));
}

static __always_inline int loop_fragment(struct __sk_buff *skb, const struct mp_config *cfg)
{
	struct mp_loop_stats *st = loop_stats();
	__be32 dst;

	if (cfg->flags & MP_CFG_SINGLE_IF) { /* see the header: to the stand-in */
		if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, daddr), &dst, sizeof(dst)) ||
		    !set_v4_dst(skb, dst, bpf_htonl(MP_LOOP_STANDIN_V4)))
			return mp_drop(MP_DROP_STORE);
	}
	set_mark(skb, cfg->loop_mark);
	if (st)
		st->frag++;
	return mp_exit(TC_ACT_OK, MP_DROP_NONE);
}

/* Single-interface RP: a piece back from the loop, addressed to the stand-in, gets the
 * client's address back (before encap asks whether it is for the tunnel). */
static __always_inline void loop_restore_dst(struct __sk_buff *skb, const struct mp_config *cfg,
					     const struct l3 *p)
{
	__be32 dst;

	if (!(cfg->flags & MP_CFG_SINGLE_IF) || p->family != 4 || !cfg->loop_mark ||
	    skb->mark != cfg->loop_mark)
		return;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, daddr), &dst, sizeof(dst)) ||
	    dst != bpf_htonl(MP_LOOP_STANDIN_V4))
		return;
	set_v4_dst(skb, dst, *(const __be32 *)cfg->client_v4.addr);
}

/* A piece that came back fits: it is carried like any packet from here on. */
static __always_inline void loop_count_back(void)
{
	struct mp_loop_stats *st = loop_stats();

	if (st)
		st->back++;
}

#endif /* MP_LOOP_H */
