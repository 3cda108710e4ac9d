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
 *      portal's own ports. Anything else passes untouched.
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
#define MP_FEC_SENDER
#include "fec.h"

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
static __always_inline bool for_tunnel(struct __sk_buff *skb, const struct mp_config *cfg,
				       const struct l3 *p)
{
	const struct mp_addr *client = p->family == 4 ? &cfg->client_v4 : &cfg->client_v6;
	__u32 addr[4];
	__u16 dport;

	if (link_scoped(skb, p))
		return false;
	if (cfg->role == MP_ROLE_LOCAL) /* from the client */
		return load_addr(skb, l3_saddr_off(p), p->family, addr) &&
		       in_prefix(addr, client, p->family);

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
	for (int i = 0; i < 8; i++)
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
						      const bool v6, const bool udp)
{
	const __u32 ip_len = v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	const __u32 l4_len = udp ? sizeof(struct udphdr) : 0;
	const __u32 hlen = ip_len + l4_len + MP_HDR_LEN;
	const __u64 flags = (v6 ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 : BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) |
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

/* 2. Too big for the tunnel: IPv4 without DF goes round the segmentation loop to be fragmented
 * (where the loop is routed); anything else is answered with ICMP "too big" (icmp.h). */
static __always_inline int too_big(struct __sk_buff *skb, const struct mp_config *cfg, const struct l3 *p,
				   __u32 mtu)
{
	if (loop_can_fragment(cfg, p))
		return loop_fragment(skb, cfg);
	return mp_icmp_too_big(skb, pmtu_answer_mtu(mtu, p->family));
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
	__u64 now, inner = 0;
	bool have_sum, back, fec = false, parity = false;
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
	if (!for_tunnel(skb, cfg, &p))
		return mp_pass();

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
	if (!schedule(skb->len - ETH_HLEN, !(cfg->flags & MP_CFG_ACKS_EARLIEST) && pure_ack(skb, &p), now, &pk)) {
		if (!pk.too_big) /* fits no usable link (pmtu.h): answered at the largest one's MTU */
			return mp_drop(MP_DROP_NO_LINK);
		return back ? mp_drop(MP_DROP_LOOP) : too_big(skb, cfg, &p, pk.too_big);
	}
	l = bpf_map_lookup_elem(&mp_links, &pk.id);
	ep = bpf_map_lookup_elem(&mp_endpoints, &pk.id);
	if (!l || !ep || !link_usable(l, ep)) /* changed by userland since: rare */
		return mp_drop(MP_DROP_NO_LINK);

	/* 5. sign, push the outer headers */
	fec = (l->flags & MP_LINK_F_FEC) && skb->len - ETH_HLEN <= MP_FEC_MAX;
	hdr.ver_type = MP_VER_TYPE(MP_T_DATA);
	hdr.flags = fec ? MP_HDR_F_FEC : 0;
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
	if (l->local.family == 6) {
		if (l->carrier == MP_CARRIER_UDP) {
			have_sum = !parity && inner_sum(skb, &p, &inner);
			r = push_outer(skb, l, ep, &hdr, 0, have_sum, inner, true, true);
		} else {
			r = push_outer(skb, l, ep, &hdr, cfg->ip_proto, false, 0, true, false);
		}
	} else {
		if (l->carrier == MP_CARRIER_UDP)
			r = push_outer(skb, l, ep, &hdr, 0, false, 0, false, true);
		else
			r = push_outer(skb, l, ep, &hdr, cfg->ip_proto, false, 0, false, false);
	}
	if (r != MP_DROP_NONE)
		return mp_drop(r);

	/* 6. send */
	return send(l);
}

char LICENSE[] SEC("license") = "GPL";
