// SPDX-License-Identifier: GPL-2.0
/*
 * encap.c — the sending side: an inner IP packet in, an mpctl packet out of the chosen link.
 *
 * Attached at tc ingress of `lan` on the Local Portal, and of `wan` (after decap) and any
 * forward interface on the Remote Portal; on both, also at the segmentation loop's exit
 * mpf…b (loop.h). A packet's journey:
 *
 *   1. Is it for the tunnel? IPv4/IPv6 from the client (LP) or to the client (RP), not
 *      link-scoped (neighbour discovery, multicast), and on a single-interface RP not for the
 *      portal's own ports; on an LP in whole-LAN mode also from a LAN prefix to outside them
 *      (nat.h: translated to the client address once its link is chosen, step 4). Anything
 *      else passes untouched.
 *   2. Can it be carried whole? A GSO super-packet cannot (one header per segment is needed):
 *      it goes round the segmentation loop (loop.h) and comes back in segments. A packet
 *      larger than inner_mtu (or a GSO packet whose segments will be) goes round the loop to
 *      be fragmented if it is IPv4 without DF, and is answered with ICMP "too big" otherwise
 *      (icmp.h). A piece back from the loop that still does not fit is dropped: nothing goes
 *      round twice.
 *   3. TCP SYNs get their MSS clamped (mss.h).
 *   4. Pick the link where it will arrive first, and take the sequence numbers (schedule.h);
 *      without a valid send key (auth.h) nothing is sent at all.
 *   5. Sign header + inner packet (auth.h), push outer IP (+ UDP) + mp_hdr in front of it.
 *      Pieces back from the loop are signed here like any packet: what goes into the loop
 *      was not signed yet, so nothing is signed twice.
 *   6. Send it out of the link's device; the kernel fills in the MACs (bpf_redirect_neigh).
 *
 * A packet of a redundant class (redundant.h) also goes, before step 5, as copies on the other
 * links schedule() chose for it, if its class's token bucket holds their bytes: each copy is
 * signed for its link with the packet's seq, pushed, sent as a clone (bpf_clone_redirect, the
 * MACs from a FIB lookup) and popped again (mp_red_copy).
 *
 * On a link with MP_LINK_F_FEC, step 5 also adds the packet to its link's parity group, and the
 * group's last packet sends a clone of itself back into its device to become the group's parity:
 * encap takes such a clone first (fec.h), rewrites it, and carries it from step 5 on.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "mp.h"
#include "maps.h"
#include "counters.h"
#include "parse.h"
#include "csum.h"
#include "mss.h"
#include "icmp.h"
#include "loop.h"
#include "schedule.h"
#include "auth.h"
#include "redundant.h"
#define MP_FEC_SENDER
#include "fec.h"
#include "shape.h"
#define MP_NAT_ENCAP
#include "nat.h"

/* How much of the packet step 1-3 read: Ethernet, an IPv4 header with options, TCP options. */
#define ENCAP_WINDOW (ETH_HLEN + 60 + 60)

/* BPF_F_ADJ_ROOM_ENCAP_L2(len) from uapi bpf.h: bytes between the outer L4 and the inner L3 */
#define ADJ_ROOM_ENCAP_L2(len) (((__u64)(len) & BPF_ADJ_ROOM_ENCAP_L2_MASK) << BPF_ADJ_ROOM_ENCAP_L2_SHIFT)

_Static_assert(sizeof(struct mp_hdr) == MP_HDR_LEN, "mp_hdr is MP_HDR_LEN bytes");
_Static_assert((MP_MAX_LINKS & (MP_MAX_LINKS - 1)) == 0, "link ids are masked");

/* Traffic of the local link itself never enters the tunnel, whatever its source: IPv4
 * multicast/broadcast, IPv6 multicast and link-local destinations, and IPv6 neighbour
 * discovery (which may be unicast between global addresses). */
static __always_inline bool link_scoped(struct __sk_buff *skb, const struct l3 *p)
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	__u32 dst[4];
	__u8 *type;

	if (!load_addr(skb, l3_daddr_off(p), p->family, dst))
		return true;
	if (p->family == 4) /* 224.0.0.0/4 multicast, 240.0.0.0/4 and the broadcast */
		return (bpf_ntohl(dst[0]) >> 28) >= 0xe;
	if ((bpf_ntohl(dst[0]) >> 24) == 0xff || (bpf_ntohl(dst[0]) >> 22) == (0xfe80 >> 6))
		return true; /* ff00::/8, fe80::/10 */
	if (p->proto != IPPROTO_ICMPV6 || p->l4_off > ETH_HLEN + 40)
		return false;
	type = data + p->l4_off;
	if ((void *)(type + 1) > end)
		return true;
	return *type >= 133 && *type <= 137; /* RS, RA, NS, NA, redirect */
}

/* 1. Is this packet for the tunnel? */
static __noinline bool for_tunnel(struct __sk_buff *skb, const struct mp_config *cfg,
				       const struct l3 *p)
{
	const struct mp_addr *client = p->family == 4 ? &cfg->client_v4 : &cfg->client_v6;
	const struct mp_addr *own;
	__u32 addr[4];
	__u16 dport;

	if (link_scoped(skb, p))
		return false;
	if (cfg->role == MP_ROLE_LOCAL) { /* from the client */
		if (!load_addr(skb, l3_saddr_off(p), p->family, addr))
			return false;
		if (in_prefix(addr, client, p->family))
			return true;
		/* or the LP's own "time exceeded" of a family no link has, back from the loop (ttl.h) */
		own = p->family == 4 ? &cfg->own_v4 : &cfg->own_v6;
		return cfg->loop_mark && skb->mark == cfg->loop_mark && own->family == p->family &&
		       in_prefix(addr, own, p->family);
	}

	/* MP_ROLE_REMOTE: to the client */
	if (!load_addr(skb, l3_daddr_off(p), p->family, addr) || !in_prefix(addr, client, p->family))
		return false;
	if (!(cfg->flags & MP_CFG_SINGLE_IF))
		return true;
	/* The client shares the portal's address: its tunnel and reserved ports stay here. */
	if (cfg->ip_proto && p->proto == cfg->ip_proto)
		return false;
	dport = l4_dport(skb, p);
	if (!dport)
		return true;
	if (dport == cfg->port_be)
		return false;
#pragma unroll
	for (int i = 0; i < MP_RESERVED_PORTS; i++)
		if (cfg->reserved_ports[i] && bpf_htons(cfg->reserved_ports[i]) == dport)
			return false;
	return true;
}

/* 5. Push the outer headers for link l and write them, with the (signed) mpctl header hdr.
 * Inlined once per (family, carrier) so that every offset is a constant. Returns 0 or a drop
 * reason. */
static __always_inline enum mp_drop_reason push_outer(struct __sk_buff *skb, const struct mp_link *l,
						      const struct mp_endpoint *ep,
						      const struct mp_hdr *hdr, __u8 ip_proto,
						      bool have_sum, __u64 inner,
						      const bool v6, const bool udp, const bool copy)
{
	const __u32 ip_len = v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	const __u32 l4_len = udp ? sizeof(struct udphdr) : 0;
	const __u32 hlen = ip_len + l4_len + MP_HDR_LEN;
	/* A redundant copy (mp_red_copy) is pushed as plain room: the kernel refuses to mark an skb
	 * encapsulated twice (-EALREADY) and no flag undoes the mark when the copy's headers are
	 * popped, so the packet itself could not be encapsulated after its copies. Copies are never
	 * GSO, and a partial inner checksum keeps its offset from the head (the room goes in front
	 * of the inner packet, which does not move). */
	const __u64 flags = copy ? 0
				 : (v6 ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 : BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) |
					   (udp ? BPF_F_ADJ_ROOM_ENCAP_L4_UDP : 0) | ADJ_ROOM_ENCAP_L2(MP_HDR_LEN);
	const __u32 *src = (const __u32 *)l->local.addr, *dst = (const __u32 *)ep->addr.addr;
	__u32 inner_len = skb->len - ETH_HLEN;
	void *data, *end;
	struct ethhdr *eth;
	struct mp_hdr *h;
	__u64 sum;

	if (bpf_skb_adjust_room(skb, hlen, BPF_ADJ_ROOM_MAC, flags))
		return MP_DROP_ADJUST_ROOM;
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	eth = data;
	if (data + ETH_HLEN + hlen > end)
		return MP_DROP_STORE;
	h = data + ETH_HLEN + ip_len + l4_len;

	__builtin_memcpy(h, hdr, MP_HDR_LEN);

	if (v6) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		__u32 *w = (__u32 *)ip6, *s = (__u32 *)&ip6->saddr, *d = (__u32 *)&ip6->daddr;

		eth->h_proto = bpf_htons(ETH_P_IPV6);
		w[0] = bpf_htonl(0x60000000);
		ip6->payload_len = bpf_htons(l4_len + MP_HDR_LEN + inner_len);
		ip6->nexthdr = udp ? IPPROTO_UDP : ip_proto;
		ip6->hop_limit = 64;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			s[i] = src[i];
			d[i] = dst[i];
		}
		if (udp) {
			struct udphdr *uh = (void *)(ip6 + 1);
			const __u32 *m = (const __u32 *)h;

			uh->source = l->local_port_be;
			uh->dest = ep->port_be;
			uh->len = ip6->payload_len;
			uh->check = 0;
			/* IPv6 needs a UDP checksum (RFC 8200 8.1); derive it if the inner allows */
			if (have_sum) {
				sum = inner + bpf_htonl(sizeof(*uh) + MP_HDR_LEN + inner_len) +
				      bpf_htonl(IPPROTO_UDP) + uh->source + uh->dest + uh->len;
#pragma unroll
				for (int i = 0; i < 4; i++)
					sum += (__u64)src[i] + dst[i];
#pragma unroll
				for (int i = 0; i < MP_HDR_LEN / 4; i++)
					sum += m[i];
				uh->check = ~csum16(sum) ?: 0xffff;
			}
		}
	} else {
		struct iphdr *ip = data + ETH_HLEN;

		eth->h_proto = bpf_htons(ETH_P_IP);
		*(__u8 *)ip = 0x45;
		ip->tos = 0;
		ip->tot_len = bpf_htons(hlen + inner_len);
		ip->id = 0;
		ip->frag_off = bpf_htons(IP_DF);
		ip->ttl = 64;
		ip->protocol = udp ? IPPROTO_UDP : ip_proto;
		ip->check = 0;
		ip->saddr = src[0];
		ip->daddr = dst[0];
		ip->check = ipv4_hdr_csum(ip);
		if (udp) {
			struct udphdr *uh = (void *)(ip + 1);

			uh->source = l->local_port_be;
			uh->dest = ep->port_be;
			uh->len = bpf_htons(l4_len + MP_HDR_LEN + inner_len);
			uh->check = 0; /* optional over IPv4; the peer's decap consumes it at tc */
		}
	}
	count_tx(hdr->link_id, hlen + inner_len);
	return MP_DROP_NONE;
}

/* 5. push_outer() for link l's family and carrier: a subprogram of its own (its own stack
 * frame: encap() and the functions it calls share 512 bytes), called by encap() and by
 * mp_red_copy(). An outer IPv6 UDP checksum is derived from the inner packet's (csum.h), unless
 * the body is opaque (a loss-recovery parity: no IP packet to derive it from). */
static __noinline enum mp_drop_reason push_link(struct __sk_buff *skb, const struct mp_link *l,
						const struct mp_endpoint *ep, const struct mp_hdr *hdr,
						bool opaque)
{
	const struct mp_config *cfg = config_get();
	__u64 inner = 0;
	bool have_sum;
	struct l3 p;

	if (!cfg || !l || !ep || !hdr)
		return MP_DROP_NO_CONFIG;
	if (l->local.family == 6) {
		if (l->carrier == MP_CARRIER_UDP) {
			have_sum = !opaque && parse_l3(skb, &p) && !p.truncated && inner_sum(skb, &p, &inner);
			return push_outer(skb, l, ep, hdr, 0, have_sum, inner, true, true, false);
		}
		return push_outer(skb, l, ep, hdr, cfg->ip_proto, false, 0, true, false, false);
	}
	if (l->carrier == MP_CARRIER_UDP)
		return push_outer(skb, l, ep, hdr, 0, false, 0, false, true, false);
	return push_outer(skb, l, ep, hdr, cfg->ip_proto, false, 0, false, false, false);
}

/* 2. Too big for the tunnel: IPv4 without DF goes round the segmentation loop to be fragmented
 * (where the loop is routed); anything else is answered with ICMP "too big" (icmp.h). */
static __always_inline int too_big(struct __sk_buff *skb, const struct mp_config *cfg, const struct l3 *p,
				   __u32 mtu)
{
	int v;

	if (loop_can_fragment(cfg, p))
		return loop_fragment(skb, cfg);
	v = mp_icmp_too_big(skb, pmtu_answer_mtu(mtu, p->family));
	if (v == TC_ACT_REDIRECT) /* answered: a partial checksum in the quote (icmp.h) */
		icmp_fix_quote(skb);
	return v;
}

/* 6. Out of the link's device; the neighbour subsystem resolves the next hop's MAC. */
/* A TCP segment that only acknowledges: ACK set, no FIN or RST, no payload — pure ACKs and
 * SYN-ACKs (schedule.h sends these on the slowest link). The SYN-ACK too, because it gives the
 * connecting side its first RTT sample, which a sender like BBR keeps as its minimum RTT for
 * ten seconds: taken on the fast link it would hold that side's window to the fast link's
 * round trip (one BBR upload over 20 Mbit/10 ms + 20 Mbit/60 ms: 8.2 Mbit/s with only the
 * ACKs moved, min RTT 21 ms from the handshake). A SYN alone, data, FIN and RST go like data.
 * Fragments are not pure ACKs. */
static __always_inline bool pure_ack(struct __sk_buff *skb, const struct l3 *p)
{
	__u8 b[2]; /* data offset, flags */

	if (p->proto != IPPROTO_TCP || p->fragment || p->later_frag)
		return false;
	if (bpf_skb_load_bytes(skb, p->l4_off + 12, b, sizeof(b)))
		return false;
	return (b[1] & (TCPHDR_ACK | TCPHDR_FIN | TCPHDR_RST)) == TCPHDR_ACK &&
	       p->len == (__u32)(p->l4_off - ETH_HLEN) + (b[0] >> 4) * 4;
}

static __always_inline int send(const struct mp_link *l)
{
	struct bpf_redir_neigh nh = {};

	if (l->nexthop.family == 4) {
		nh.nh_family = AF_INET;
		nh.ipv4_nh = *(const __u32 *)l->nexthop.addr;
		return mp_redirected(bpf_redirect_neigh(l->ifindex, &nh, sizeof(nh), 0));
	}
	if (l->nexthop.family == 6) {
		nh.nh_family = AF_INET6;
		__builtin_memcpy(nh.ipv6_nh, l->nexthop.addr, 16);
		return mp_redirected(bpf_redirect_neigh(l->ifindex, &nh, sizeof(nh), 0));
	}
	return mp_redirected(bpf_redirect_neigh(l->ifindex, NULL, 0, 0)); /* FIB lookup */
}


/* Redundant copies (redundant.h). encap() and the functions it calls share 512 bytes of stack,
 * and schedule()'s scan takes most of it, so the copies are global functions (each verified
 * once, on its own frame) in a shallow chain: encap() -> mp_red_send() -> mp_red_plan() (class,
 * links, cap) | mp_red_copy() per copy -> mp_red_inner_sum(). */

/* Bits of mp_red_copy()'s `arg`: link id (0..15), header flags, the inner family. */
#define RED_ARG_FLAGS_SHIFT 8
#define RED_ARG_INNER_V6 (1U << 16) /* the inner packet is IPv6 */
/* mp_red_plan()'s result: the copies' links (bits 0..15), the class, the inner family. */
#define RED_PLAN_CLASS_SHIFT 16
#define RED_PLAN_V6 (1U << 24)

enum red_copy_rc {
	RED_COPY_SENT = 0,
	RED_COPY_FAILED = 1, /* this copy did not go; the packet is as it was */
	RED_COPY_BROKEN = 2, /* the copy's headers could not be popped: the packet must be dropped */
};

/* schedule() (schedule.h) as a global function: its scan lives on its own frame. */
__noinline int mp_schedule(__u32 inner_len, __u32 pure_ack, __u64 now, struct pick *out)
{
	if (!out)
		return 0;
	return schedule(inner_len, pure_ack, now, out);
}

/* Scratch for red_fill_macs()'s FIB lookup, off the stack. Not ABI: only encap.c uses it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_fib_lookup);
} mp_red_fib SEC(".maps");

/* Fill in the MACs of an outer packet for link l (bpf_clone_redirect, unlike
 * bpf_redirect_neigh, sends the frame as it is): the next hop's (or, without one, the peer's
 * route from the link's source address: the plan's policy rule) neighbour entry, which the
 * link's probes keep resolved. A forwarding lookup from the device the packet came in on
 * (lan, wan: the plan turns forwarding on there); an output lookup would need forwarding on
 * the link's device too (BPF_FIB_LKUP_RET_FWD_DISABLED). */
static __always_inline bool red_fill_macs(struct __sk_buff *skb, const struct mp_link *l,
					  const struct mp_endpoint *ep)
{
	const struct mp_addr *to = l->nexthop.family ? &l->nexthop : &ep->addr;
	__u32 zero = 0;
	struct bpf_fib_lookup *fib = bpf_map_lookup_elem(&mp_red_fib, &zero);
	void *data, *end;
	struct ethhdr *eth;

	if (!fib)
		return false;
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->ifindex = skb->ifindex;
	if (l->local.family == 4) {
		fib->family = AF_INET;
		fib->ipv4_src = *(const __u32 *)l->local.addr;
		fib->ipv4_dst = *(const __u32 *)to->addr;
	} else {
		fib->family = AF_INET6;
		__builtin_memcpy(fib->ipv6_src, l->local.addr, 16);
		__builtin_memcpy(fib->ipv6_dst, to->addr, 16);
	}
	if (bpf_fib_lookup(skb, fib, sizeof(*fib), 0) != BPF_FIB_LKUP_RET_SUCCESS ||
	    fib->ifindex != l->ifindex)
		return false;
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	eth = data;
	if ((void *)(eth + 1) > end)
		return false;
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	return true;
}

static __always_inline void red_count_copy(__u32 cls, bool sent, __u32 bytes)
{
	struct mp_red_stats *st = red_stats(cls & (MP_RED_CLASSES - 1));

	if (!st)
		return;
	if (sent) {
		st->copies++;
		st->copy_bytes += bytes;
	} else {
		st->copy_failed++;
	}
}

/* The inner packet's checksum contribution for an outer IPv6 UDP checksum (csum.h inner_sum):
 * the 16-bit sum | 1 << 16, or 0 when it cannot be derived (the outer checksum stays 0). */
__noinline int mp_red_inner_sum(struct __sk_buff *skb)
{
	__u64 sum = 0;
	struct l3 p;

	if (!parse_l3(skb, &p) || p.truncated || !inner_sum(skb, &p, &sum))
		return 0;
	return (sum & 0xffff) | (1 << 16);
}

/* Send one copy of the (inner, unsigned) packet in skb on link arg & 15 with sequence number
 * seq and header flags arg >> 8, then take its headers off again. Returns enum red_copy_rc. */
__noinline int mp_red_copy(struct __sk_buff *skb, __u32 arg, __u32 seq, __u32 ts_us)
{
	const struct mp_config *cfg = config_get();
	__u32 id = arg & (MP_MAX_LINKS - 1), zero = 0;
	__u8 flags = arg >> RED_ARG_FLAGS_SHIFT;
	bool inner_v6 = arg & RED_ARG_INNER_V6;
	const struct mp_link *l = bpf_map_lookup_elem(&mp_links, &id);
	const struct mp_endpoint *ep = bpf_map_lookup_elem(&mp_endpoints, &id);
	struct mp_sched *s = bpf_map_lookup_elem(&mp_sched, &zero);
	const struct mp_key *key = NULL;
	__u32 inner_len = skb->len - ETH_HLEN, hlen, link_seq, *lseq;
	__u64 now = bpf_ktime_get_ns(), rate, tx, start, *busy, *sent;
	enum mp_drop_reason r;
	struct mp_hdr hdr;
	void *data, *end;
	int sum;

	if (!cfg || !l || !ep || !s || !link_usable(l, ep))
		return RED_COPY_FAILED;
	if (!auth_off(cfg) && !(key = tx_key(now)))
		return RED_COPY_FAILED;
	hlen = outer_overhead(l);
	rate = l->rate_bps ? l->rate_bps : MP_DEFAULT_RATE_BPS;
	tx = (__u64)(inner_len + hlen) * 8000000000ULL / rate;
	/* pointers, not the index, under the lock: a spilled pointer keeps its bounds */
	asm volatile("" : "+r"(id)); /* the bound again, after any spill: clang knows it holds */
	id &= MP_MAX_LINKS - 1;
	busy = &s->busy_until_ns[id];
	sent = &s->sent_bytes[id];
	lseq = &s->link_seq[id];
	bpf_spin_lock(&s->lock);
	start = *busy > now ? *busy : now;
	*busy = start + tx;
	*sent += inner_len + hlen;
	link_seq = ++*lseq;
	bpf_spin_unlock(&s->lock);

	hdr.ver_type = MP_VER_TYPE(MP_T_DATA);
	hdr.flags = flags;
	hdr.link_id = id;
	hdr.key_id = 0;
	hdr.seq = bpf_htonl(seq);
	hdr.link_seq = bpf_htonl(link_seq);
	hdr.ts_us = bpf_htonl(ts_us);
	__builtin_memset(hdr.tag, 0, sizeof(hdr.tag));
	if (key && !auth_sign(skb, key, &hdr, ETH_HLEN, inner_len))
		return RED_COPY_FAILED;
	if (l->local.family == 6) {
		if (l->carrier == MP_CARRIER_UDP) {
			sum = mp_red_inner_sum(skb);
			r = push_outer(skb, l, ep, &hdr, 0, sum != 0, sum & 0xffff, true, true, true);
		} else {
			r = push_outer(skb, l, ep, &hdr, cfg->ip_proto, false, 0, true, false, true);
		}
	} else {
		if (l->carrier == MP_CARRIER_UDP)
			r = push_outer(skb, l, ep, &hdr, 0, false, 0, false, true, true);
		else
			r = push_outer(skb, l, ep, &hdr, cfg->ip_proto, false, 0, false, false, true);
	}
	if (r == MP_DROP_ADJUST_ROOM) /* nothing was pushed */
		return RED_COPY_FAILED;
	mp_shape(skb, cfg, id); /* the clone leaves in its link's class (shape.h) */
	if (r == MP_DROP_NONE && red_fill_macs(skb, l, ep) && bpf_clone_redirect(skb, l->ifindex, 0) == 0)
		r = MP_DROP_NONE;
	else
		r = MP_DROP_REDIRECT;
	red_count_copy(flags >> MP_HDR_CLASS_SHIFT, r == MP_DROP_NONE, inner_len + hlen);

	/* take the copy's outer headers off: the packet is the inner one again */
	if (bpf_skb_adjust_room(skb, -(__s32)hlen, BPF_ADJ_ROOM_MAC, 0))
		return RED_COPY_BROKEN;
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	if (data + ETH_HLEN > end)
		return RED_COPY_BROKEN;
	((struct ethhdr *)data)->h_proto = bpf_htons(inner_v6 ? ETH_P_IPV6 : ETH_P_IP);
	return r == MP_DROP_NONE ? RED_COPY_SENT : RED_COPY_FAILED;
}

/* A packet that goes on link `best`: its class (redundant.h) and the links of its copies,
 * chosen by schedule_copies() and paid for from the class's bucket. Returns the copies' links
 * (bits) | class << RED_PLAN_CLASS_SHIFT | RED_PLAN_V6, or 0: no copies (no class, or counted
 * `single` or `capped`). */
__noinline int mp_red_plan(struct __sk_buff *skb, __u32 best)
{
	__u32 inner_len = skb->len - ETH_HLEN, copies, n, cls;
	const struct mp_red_class *c;
	struct mp_red_stats *st;
	__u64 now;
	struct l3 p;

	if (!parse_l3(skb, &p) || p.truncated)
		return 0;
	cls = red_classify(skb, &p);
	if (cls == RED_NONE)
		return 0;
	cls &= MP_RED_CLASSES - 1;
	c = bpf_map_lookup_elem(&mp_red_class, &cls);
	st = red_stats(cls);
	if (!c || !st)
		return 0;
	now = bpf_ktime_get_ns();
	st->packets++;
	st->bytes += inner_len;
	copies = schedule_copies(inner_len, best & (MP_MAX_LINKS - 1),
				 c->links == MP_RED_ALL_LINKS ? MP_MAX_LINKS - 1 : c->links - 1, now);
	n = __builtin_popcount(copies);
	if (!n) {
		st->single++;
		return 0;
	}
	/* the copies' outer bytes, counted with the largest overhead (outer IPv6 + UDP) */
	if (!red_charge(cls, (__u64)n * (inner_len + sizeof(struct ipv6hdr) + sizeof(struct udphdr) + MP_HDR_LEN), now)) {
		st->capped++;
		return 0;
	}
	return copies | cls << RED_PLAN_CLASS_SHIFT | (p.family == 6 ? RED_PLAN_V6 : 0);
}

/* Before the packet goes on its scheduled link `best` with sequence number seq: its class's
 * copies. Returns the header flags the packet itself carries (0: no copy went; a lone packet
 * arriving twice is a replay), or -1: drop it. */
__noinline int mp_red_send(struct __sk_buff *skb, __u32 best, __u32 seq)
{
	__u32 plan = mp_red_plan(skb, best), flags, arg, ts_us, outcomes = 0;

	if (!(plan & 0xffff))
		return 0;
	flags = MP_HDR_F_COPY | (((plan >> RED_PLAN_CLASS_SHIFT) & (MP_RED_CLASSES - 1)) << MP_HDR_CLASS_SHIFT);
	arg = flags << RED_ARG_FLAGS_SHIFT | (plan & RED_PLAN_V6 ? RED_ARG_INNER_V6 : 0);
	ts_us = bpf_ktime_get_ns() / 1000;
	/* not unrolled, no branch on the outcome: one path per link for the verifier */
#pragma clang loop unroll(disable)
	for (__u32 id = 0; id < MP_MAX_LINKS; id++)
		if (plan & (1U << id))
			outcomes |= 1U << (mp_red_copy(skb, arg | id, seq, ts_us) & 3);
	if (outcomes & (1U << RED_COPY_BROKEN))
		return -1;
	return outcomes & (1U << RED_COPY_SENT) ? flags : 0;
}

SEC("tc")
int encap(struct __sk_buff *skb)
{
	const struct mp_config *cfg = config_get();
	const struct mp_key *key = NULL;
	const struct mp_endpoint *ep;
	const struct mp_link *l;
	enum mp_drop_reason r;
	struct mp_hdr hdr;
	struct pick pk;
	struct l3 p;
	__u64 now;
	bool back, fec = false, parity = false, nat = false;
	int red_flags = 0;
	__u32 slot, len;

	if (!cfg || !cfg->role) /* not configured yet: stay out of the way */
		return mp_pass();

	/* a loss-recovery parity to build and send (fec.h) */
	if (fec_parity_request(skb, &pk.id, &slot)) {
		now = bpf_ktime_get_ns();
		if (!auth_off(cfg) && !(key = tx_key(now)))
			return mp_drop(MP_DROP_NO_KEY);
		hdr.ver_type = MP_VER_TYPE(MP_T_FEC);
		hdr.key_id = 0;
		hdr.link_id = pk.id;
		__builtin_memset(hdr.tag, 0, sizeof(hdr.tag));
		len = mp_fec_build_parity(skb, pk.id, slot, &hdr);
		if (!len)
			return mp_drop(MP_DROP_FEC_BAD);
		if (!schedule_on(pk.id, len, now, &pk))
			return mp_drop(MP_DROP_NO_LINK);
		hdr.seq = bpf_htonl(pk.seq);
		l = bpf_map_lookup_elem(&mp_links, &pk.id);
		ep = bpf_map_lookup_elem(&mp_endpoints, &pk.id);
		if (!l || !ep)
			return mp_drop(MP_DROP_NO_LINK);
		parity = true;
		goto sign;
	}

	/* 1. for the tunnel? */
	pull_headers(skb, ENCAP_WINDOW);
	if (!parse_l3(skb, &p) || p.truncated)
		return mp_pass(); /* a malformed packet is the stack's to drop and count */
	loop_restore_dst(skb, cfg, &p);
	if (!for_tunnel(skb, cfg, &p)) {
		/* whole-LAN mode: from the LAN to the Internet (nat.h) */
		if (!nat_wants(skb, cfg, &p) || link_scoped(skb, &p))
			return mp_pass();
		nat = true;
	}

	/* 2. can it be carried whole? */
	back = loop_returned(skb, cfg); /* nothing goes round twice */
	if (skb->gso_segs > 1) {
		if (back)
			return mp_drop(MP_DROP_LOOP);
		if (cfg->inner_mtu && gso_segment_len(skb, &p) > cfg->inner_mtu)
			return too_big(skb, cfg, &p, cfg->inner_mtu);
		return loop_segment(skb, cfg);
	}
	if (cfg->inner_mtu && skb->len - ETH_HLEN > cfg->inner_mtu)
		return back ? mp_drop(MP_DROP_LOOP) : too_big(skb, cfg, &p, cfg->inner_mtu);
	if (back)
		loop_count_back();

	/* 3. make TCP fit */
	clamp_mss(skb, &p, p.family == 4 ? cfg->mss_v4 : cfg->mss_v6);

	/* 4. pick a link (only with a key to sign with: no sequence number is spent otherwise) */
	now = bpf_ktime_get_ns();
	if (!auth_off(cfg) && !(key = tx_key(now)))
		return mp_drop(MP_DROP_NO_KEY);
	if (!mp_schedule(skb->len - ETH_HLEN, !(cfg->flags & MP_CFG_ACKS_EARLIEST) && pure_ack(skb, &p), now, &pk)) {
		if (!pk.too_big) /* fits no usable link (pmtu.h): answered at the largest one's MTU */
			return mp_drop(MP_DROP_NO_LINK);
		if (pk.too_big == MP_PICK_HELD)
			return mp_drop(MP_DROP_HOLD_QUEUE);
		return back ? mp_drop(MP_DROP_LOOP) : too_big(skb, cfg, &p, pk.too_big);
	}
	l = bpf_map_lookup_elem(&mp_links, &pk.id);
	ep = bpf_map_lookup_elem(&mp_endpoints, &pk.id);
	if (!l || !ep || !link_usable(l, ep)) /* changed by userland since: rare */
		return mp_drop(MP_DROP_NO_LINK);

	/* whole-LAN mode: the client address and the flow's port (nat.h). Here, not at step 1: an
	 * ICMP "too big" above answers the LAN host itself. */
	if (nat) {
		int n = mp_nat_encap(skb);

		if (n == NAT_ICMP_ERROR)
			n = mp_nat_icmp_error_out(skb);
		if (n != MP_DROP_NONE)
			return mp_drop((enum mp_drop_reason)n);
	}

	/* a redundant class (redundant.h): the copies first, while the packet is the inner one */
	red_flags = mp_red_send(skb, pk.id, pk.seq);
	if (red_flags < 0)
		return mp_drop(MP_DROP_ADJUST_ROOM);

	/* 5. sign, push the outer headers */
	fec = (l->flags & MP_LINK_F_FEC) && skb->len - ETH_HLEN <= MP_FEC_MAX;
	hdr.ver_type = MP_VER_TYPE(MP_T_DATA);
	hdr.flags = red_flags | (fec ? MP_HDR_F_FEC : 0);
	hdr.link_id = pk.id;
	hdr.key_id = 0; /* MP_CFG_NO_AUTH: key id 0 and a zero tag */
	hdr.seq = bpf_htonl(pk.seq);
	hdr.link_seq = bpf_htonl(pk.link_seq);
	hdr.ts_us = bpf_htonl((__u32)(now / 1000));
	__builtin_memset(hdr.tag, 0, sizeof(hdr.tag));
sign:
	if (key && !auth_sign(skb, key, &hdr, ETH_HLEN, skb->len - ETH_HLEN))
		return mp_drop(MP_DROP_TRUNCATED);
	if (fec) /* after signing: a paged packet is linear now */
		mp_fec_add_tx(skb, pk.id, pk.seq, pk.link_seq);
	r = push_link(skb, l, ep, &hdr, parity);
	if (r != MP_DROP_NONE)
		return mp_drop(r);

	/* 6. send, in the link's class where the links are shaped (shape.h) */
	mp_shape(skb, cfg, pk.id);
	return send(l);
}

char LICENSE[] SEC("license") = "GPL";
