// SPDX-License-Identifier: GPL-2.0
/*
 * decap.c — the receiving side: an mpctl packet in from a link, the inner IP packet delivered.
 *
 * Attached at tc ingress of each link's device on the Local Portal, and of `wan` on the Remote
 * Portal (before encap). A packet's journey:
 *
 *   1. Is it ours? Outer IPv4/IPv6 + UDP to the tunnel port (RP: port_be; LP: a link's
 *      local_port_be), or the `ip` carrier's protocol. Anything else passes untouched; an ICMP
 *      "too big" about one of our outer packets is recorded on its link first (ptb.h).
 *      Outer fragments of ours are dropped (flood.h).
 *   2. Validate lengths and version/type. Handshake messages (HS_INIT, HS_RESP, COOKIE) pass
 *      up to the portal's socket as they are (they authenticate themselves in userland) if
 *      their shape is right and their source within its rate (flood.h).
 *   3. Authenticate (auth.h): key id, MAC over header + body, replay window (data and control
 *      have a window each) — before anything is recorded, forwarded or passed up. An authentic
 *      probe request is answered here (probe.h); a probe reply or feedback goes up to the
 *      portal's socket (TC_ACT_OK); a data packet's link id and inner packet are checked next.
 *   4. Record: per-link receive state and counters; the RP learns where the link's packets
 *      come from (NAT roaming).
 *   5. Strip the outer headers.
 *   6. Deliver: LP to `lan`; RP by a FIB lookup on the inner packet.
 *
 * Redundant copies (redundant.h) share their seq: the first to arrive passes the replay window
 * and counts as a win of its link, the others are dropped as MP_DROP_DUPLICATE.
 *
 * Loss recovery (fec.h): a data packet of a parity group is added to its group's XOR after
 * step 3; a parity (MP_T_FEC, authenticated like data) that completes its group becomes the
 * lost packet, which enters the replay window and goes on from step 4 (without counting as a
 * packet of the link: the link did lose it) like any data packet. An original that was only
 * late (its link reordered it behind the parity) is dropped as MP_DROP_FEC_LATE and counts as
 * a packet of its link, as a redundant copy that lost the race does.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "mp.h"
#include "maps.h"
#include "counters.h"
#include "parse.h"
#include "csum.h"
#include "auth.h"
#include "flood.h"
#include "ttl.h"
#include "ptb.h"
#include "redundant.h"
#include "fec.h"
#include "nat.h"

/* Ethernet, outer IPv4 with options (60) + UDP, mp_hdr, an inner IPv6 header */
#define DECAP_WINDOW (ETH_HLEN + 60 + 8 + MP_HDR_LEN + 40)

/* The outer packet as far as step 1 needs it. */
struct outer {
	__u8 family;      /* 4 or 6 */
	__u8 udp;         /* UDP carrier (else the ip carrier) */
	__be16 sport_be;  /* UDP source port (0 for the ip carrier) */
	__be16 dport_be;  /* UDP destination port */
	__u16 hdr_off;    /* offset of the mp_hdr */
	__u16 ip_hlen;    /* outer IP header length */
	__u16 end;        /* offset where the datagram ends (Ethernet padding may follow) */
	__u32 saddr[4];   /* outer source address (network order, IPv4 in [0]) */
	struct frag frag; /* an outer fragment (flood.h): ours is dropped */
	__u8 icmp;        /* not ours but ICMP / ICMPv6, whole, at hdr_off (ptb.h) */
};

/* Does link l receive this outer packet? UDP: on its local port; ip carrier: on its device. */
static __always_inline bool link_receives(const struct mp_link *l, const struct outer *o,
					  __u32 ifindex)
{
	if (l->state == MP_LINK_UNUSED)
		return false;
	if (o->udp)
		return l->carrier == MP_CARRIER_UDP && l->local_port_be == o->dport_be;
	return l->carrier == MP_CARRIER_IP && l->ifindex == ifindex;
}

/* LP: is some link listening for this packet? */
static __always_inline bool lp_owns(const struct outer *o, __u32 ifindex)
{
#pragma unroll
	for (__u32 id = 0; id < MP_MAX_LINKS; id++) {
		__u32 key = id;
		const struct mp_link *l = bpf_map_lookup_elem(&mp_links, &key);

		if (l && link_receives(l, o, ifindex))
			return true;
	}
	return false;
}

/* 1. Parse the outer headers and decide whether the packet is ours. */
static __always_inline bool parse_outer(struct __sk_buff *skb, const struct mp_config *cfg,
					struct outer *o)
{
	void *data, *end;
	struct udphdr *uh;
	struct l3 p;
	__u32 daddr[4];

	if (!parse_l3(skb, &p) || !frag_parse(skb, &p, &o->frag))
		return false;
	if (p.proto == (p.family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6) && !p.fragment && !p.truncated) {
		o->icmp = 1; /* not ours: perhaps "too big" about ours (ptb.h) */
		o->family = p.family;
		o->hdr_off = p.l4_off;
		return false;
	}
	if (!load_addr(skb, l3_saddr_off(&p), p.family, o->saddr) ||
	    !load_addr(skb, l3_daddr_off(&p), p.family, daddr))
		return false;
	if (o->frag.later) /* no L4 header: ours if its first fragment was */
		return frag_later_ours(&o->frag, p.family, o->saddr, bpf_ktime_get_ns());
	o->family = p.family;
	o->ip_hlen = p.ihl_bytes;
	o->end = p.truncated ? 0 : ETH_HLEN + p.len; /* 0: truncated, once we know it is ours */
	o->udp = p.proto == IPPROTO_UDP;
	o->sport_be = 0;
	o->dport_be = 0;
	if (o->udp) {
		data = PKT_DATA(skb);
		end = PKT_END(skb);
		if (p.l4_off > ETH_HLEN + 60)
			return false;
		uh = data + p.l4_off;
		if ((void *)(uh + 1) > end)
			return false;
		o->sport_be = uh->source;
		o->dport_be = uh->dest;
		o->hdr_off = p.l4_off + sizeof(*uh);
		/* the UDP length delimits the datagram */
		if (bpf_ntohs(uh->len) >= sizeof(*uh) && p.l4_off + bpf_ntohs(uh->len) <= o->end)
			o->end = p.l4_off + bpf_ntohs(uh->len);
		else
			o->end = 0;
	} else {
		if (!cfg->ip_proto || p.proto != cfg->ip_proto)
			return false;
		o->hdr_off = p.l4_off;
	}

	if (cfg->role == MP_ROLE_LOCAL)
		return lp_owns(o, skb->ifindex);

	/* MP_ROLE_REMOTE: the tunnel port, unless the packet is traffic for the client itself */
	if (o->udp && o->dport_be != cfg->port_be)
		return false;
	if (!(cfg->flags & MP_CFG_SINGLE_IF) &&
	    in_prefix(daddr, p.family == 4 ? &cfg->client_v4 : &cfg->client_v6, p.family))
		return false;
	return true;
}

/* 2. Is the inner packet a whole IPv4/IPv6 packet within the datagram? Returns its family. */
static __always_inline __u8 inner_family(struct __sk_buff *skb, __u32 off, __u32 dgram_end)
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	__u32 room = dgram_end - off; /* caller checked off <= dgram_end */
	__u8 *first;

	if (off > ETH_HLEN + 60 + 8 + MP_HDR_LEN)
		return 0;
	first = data + off;
	if ((void *)(first + 1) > end)
		return 0;
	if ((*first >> 4) == 4) {
		struct iphdr *ip = (void *)first;
		__u32 tot;

		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return 0;
		tot = bpf_ntohs(ip->tot_len);
		return tot >= ip->ihl * 4 && tot <= room ? 4 : 0;
	}
	if ((*first >> 4) == 6) {
		struct ipv6hdr *ip6 = (void *)first;

		if ((void *)(ip6 + 1) > end)
			return 0;
		return sizeof(*ip6) + bpf_ntohs(ip6->payload_len) <= room ? 6 : 0;
	}
	return 0;
}

/* 4. Per-link receive state for the feedback userland sends back to the sender. */
static __always_inline void record_rx(__u32 id, const struct mp_hdr *h, __u32 bytes, __u64 now)
{
	struct mp_rx *rx = bpf_map_lookup_elem(&mp_rx, &id);
	__u32 link_seq = bpf_ntohl(h->link_seq);

	if (rx) {
		rx->last_rx_ns = now;
		if ((__s32)(link_seq - rx->max_link_seq) > 0 || !rx->packets)
			rx->max_link_seq = link_seq;
		rx->last_owd_us = (__u32)(now / 1000) - bpf_ntohl(h->ts_us);
		__sync_fetch_and_add(&rx->packets, 1);
		__sync_fetch_and_add(&rx->bytes, bytes);
	}
	count_rx(id, bytes);
}

/* 4. An authentic parity: the link carried its bytes (delivery rate, liveness), but it is no
 * packet of the link's sequence, whose loss count stays what the link lost. */
static __always_inline void record_parity(__u32 id, __u32 bytes, __u64 now)
{
	struct mp_rx *rx = bpf_map_lookup_elem(&mp_rx, &id);

	if (rx) {
		rx->last_rx_ns = now;
		__sync_fetch_and_add(&rx->bytes, bytes);
	}
	count_rx(id, bytes);
}

/* 4. RP: answer this link at the address:port its (authenticated) packets come from. */
static __always_inline void learn_endpoint(__u32 id, const struct outer *o, __u64 now)
{
	struct mp_endpoint *ep = bpf_map_lookup_elem(&mp_endpoints, &id);
	__u32 *a;

	if (!ep)
		return;
	a = (__u32 *)ep->addr.addr;
	/* The RP answers over UDP on every link: a packet of the ip carrier has no port, so it
	 * moves the endpoint's address only and the port stays what the link's probes taught. */
	__be16 port = o->udp ? o->sport_be : ep->port_be;
	if (ep->valid && ep->addr.family == o->family && ep->port_be == port &&
	    a[0] == o->saddr[0] && a[1] == o->saddr[1] && a[2] == o->saddr[2] && a[3] == o->saddr[3])
		return;
	ep->addr.family = o->family;
	ep->addr.prefix_len = o->family == 4 ? 32 : 128;
#pragma unroll
	for (int i = 0; i < 4; i++)
		a[i] = o->saddr[i];
	ep->port_be = port;
	ep->updated_ns = now;
	ep->valid = 1;
}

#include "probe.h" /* after struct outer, link_receives() and learn_endpoint(): it uses them */

/* 6. MP_CFG_DEC_TTL: act as the router hop the tunnel is. Returns false if the TTL expired. */
static __always_inline bool dec_ttl(struct __sk_buff *skb, __u8 family)
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);

	if (family == 4) {
		struct iphdr *ip = data + ETH_HLEN;
		__be16 old, new;

		if ((void *)(ip + 1) > end || ip->ttl <= 1)
			return false;
		old = *(__be16 *)&ip->ttl; /* TTL and protocol share a checksum word */
		ip->ttl--;
		new = *(__be16 *)&ip->ttl;
		bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old, new,
				    sizeof(__u16));
		return true;
	}
	struct ipv6hdr *ip6 = data + ETH_HLEN;

	if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
		return false;
	ip6->hop_limit--;
	return true;
}

/* 6. RP: route the inner packet like the kernel would forward it. */
static __always_inline int forward(struct __sk_buff *skb, __u8 family)
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	struct ethhdr *eth = data;
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	long rc;

	fib.ifindex = skb->ifindex;
	if (family == 4) {
		struct iphdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > end)
			return mp_drop(MP_DROP_BAD_INNER);
		fib.family = AF_INET;
		fib.tos = ip->tos;
		fib.l4_protocol = ip->protocol;
		fib.ipv4_src = ip->saddr;
		fib.ipv4_dst = ip->daddr;
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > end)
			return mp_drop(MP_DROP_BAD_INNER);
		fib.family = AF_INET6;
		fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
		fib.l4_protocol = ip6->nexthdr;
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
	}
	/* tot_len 0: the kernel checks the skb against the egress MTU */
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		data = PKT_DATA(skb);
		end = PKT_END(skb);
		eth = data;
		if ((void *)(eth + 1) > end)
			return mp_drop(MP_DROP_STORE);
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		return mp_redirected(bpf_redirect(fib.ifindex, 0));
	case BPF_FIB_LKUP_RET_NO_NEIGH: /* route known, neighbour not resolved: let it resolve */
		nh.nh_family = fib.family;
		if (fib.family == AF_INET)
			nh.ipv4_nh = fib.ipv4_dst; /* the gateway, or the destination on-link */
		else
			__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, 16);
		return mp_redirected(bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0));
	case BPF_FIB_LKUP_RET_NOT_FWDED: /* addressed to this host: its stack takes it */
		return mp_exit(TC_ACT_OK, MP_DROP_NONE);
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return mp_drop(MP_DROP_TOO_BIG);
	default: /* blackhole, unreachable, prohibit, forwarding disabled, error */
		return mp_drop(MP_DROP_FIB);
	}
}

SEC("tc")
int decap(struct __sk_buff *skb)
{
	const struct mp_config *cfg = config_get();
	const struct mp_link *l;
	enum mp_drop_reason r;
	struct outer o = {};
	struct mp_hdr h;
	void *data, *end;
	__u32 id, outer_len, cls;
	bool parity;
	__u8 family;
	__u64 now;

	if (!cfg || !cfg->role) /* not configured yet: stay out of the way */
		return mp_pass();

	/* 1. ours? */
	pull_headers(skb, DECAP_WINDOW);
	if (!parse_outer(skb, cfg, &o)) {
		if (o.icmp) /* "too big" about our own packets: the link's path MTU (ptb.h) */
			mp_ptb_learn(skb, o.family, o.hdr_off);
		return mp_pass();
	}
	if (o.frag.is) {
		if (!o.frag.later)
			frag_first_ours(&o.frag, o.family, o.saddr, bpf_ktime_get_ns());
		return mp_drop(MP_DROP_FRAGMENT);
	}

	/* 2. validate */
	if (skb->gso_segs > 1) /* UDP GRO merged several of our packets: one header would be read */
		return mp_drop(MP_DROP_GSO);
	if (!o.end || o.hdr_off > ETH_HLEN + 60 + 8 || o.hdr_off + MP_HDR_LEN > o.end)
		return mp_drop(MP_DROP_TRUNCATED);
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	if (data + o.hdr_off + MP_HDR_LEN > end)
		return mp_drop(MP_DROP_TRUNCATED);
	__builtin_memcpy(&h, data + o.hdr_off, MP_HDR_LEN);
	if ((h.ver_type >> 4) != MP_VERSION)
		return mp_drop(MP_DROP_BAD_VERSION);
	switch (h.ver_type & 0xf) {
	case MP_T_FEC:
		cls = MP_REPLAY_DATA_CLASS;
		break;
	case MP_T_DATA:
	case MP_T_PROBE:
	case MP_T_FEEDBACK:
		cls = replay_class(&h, h.ver_type & 0xf);
		break;
	case MP_T_HS_INIT:
	case MP_T_HS_RESP:
	case MP_T_COOKIE: /* to the portal's socket (userland authenticates these), within limits */
		r = flood_handshake(cfg, &h, o.end - o.hdr_off, o.family, o.saddr, o.udp, o.sport_be,
				    bpf_ktime_get_ns());
		return r == MP_DROP_NONE ? mp_pass() : mp_drop(r);
	default:
		return mp_drop(MP_DROP_BAD_VERSION);
	}

	/* 3. authenticate */
	now = bpf_ktime_get_ns();
	if (!auth_off(cfg)) {
		r = auth_verify(skb, &h, o.hdr_off + MP_HDR_LEN, o.end - o.hdr_off - MP_HDR_LEN, cls, now);
		if (r == MP_DROP_REPLAY && (h.ver_type & 0xf) == MP_T_DATA &&
		    ((h.flags & MP_HDR_F_COPY) || ((h.flags & MP_HDR_F_FEC) && fec_rebuilt(&h)))) {
			/* a redundant copy whose first came on another link (redundant.h), or an
			 * original whose parity rebuilt it first (fec.h). Authentic, and its link
			 * delivered it: recorded for liveness and per-link loss (else it would count
			 * as lost on its link) */
			id = h.link_id;
			l = id < MP_MAX_LINKS ? bpf_map_lookup_elem(&mp_links, &id) : NULL;
			if (l && l->state != MP_LINK_UNUSED)
				record_rx(id, &h, o.end - ETH_HLEN, now);
			if (!(h.flags & MP_HDR_F_COPY))
				return mp_drop(MP_DROP_FEC_LATE);
			red_count_duplicate(&h);
			return mp_drop(MP_DROP_DUPLICATE);
		}
		if (r != MP_DROP_NONE)
			return mp_drop(r);
	}
	if ((h.ver_type & 0xf) == MP_T_PROBE) /* requests are answered here (probe.h) */
		return probe_take(skb, cfg, &o, &h, now);
	parity = (h.ver_type & 0xf) == MP_T_FEC;
	if ((h.ver_type & 0xf) != MP_T_DATA && !parity) /* authentic feedback: up to the portal's socket */
		return mp_exit(TC_ACT_OK, MP_DROP_NONE);

	id = h.link_id;
	if (id >= MP_MAX_LINKS)
		return mp_drop(MP_DROP_BAD_LINK);
	l = bpf_map_lookup_elem(&mp_links, &id);
	if (!l || l->state == MP_LINK_UNUSED ||
	    (cfg->role == MP_ROLE_LOCAL && !link_receives(l, &o, skb->ifindex)))
		return mp_drop(MP_DROP_BAD_LINK);
	outer_len = o.end - ETH_HLEN;
	if (parity) { /* loss recovery: the lost packet of its group, or nothing */
		record_parity(id, outer_len, now);
		struct fec_job fj = { .id = id, .off = o.hdr_off + MP_HDR_LEN, .end = o.end, .replay = !auth_off(cfg) };

		r = mp_fec_rebuild(skb, &h, &fj);
		if (r != MP_DROP_NONE)
			return mp_drop(r);
		o.end = fj.end;
		fec_count_rebuilt();
	} else if (h.flags & MP_HDR_F_FEC) {
		mp_fec_join(skb, id, &h, o.hdr_off + MP_HDR_LEN, o.end - o.hdr_off - MP_HDR_LEN);
	}
	family = inner_family(skb, o.hdr_off + MP_HDR_LEN, o.end);
	if (!family)
		return mp_drop(parity ? MP_DROP_FEC_BAD : MP_DROP_BAD_INNER);

	/* 4. record (a parity was, above) */
	if (!parity) {
		record_rx(id, &h, outer_len, now);
		red_count_win(&h, id);
	}
	if (cfg->role == MP_ROLE_REMOTE)
		learn_endpoint(id, &o, now);

	/* 5. strip outer IP (+ UDP) + mp_hdr; the DECAP flag names the inner family */
	if (bpf_skb_adjust_room(skb, -(__s32)(o.hdr_off - ETH_HLEN + MP_HDR_LEN), BPF_ADJ_ROOM_MAC,
				family == 4 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV4
					    : BPF_F_ADJ_ROOM_DECAP_L3_IPV6))
		return mp_drop(MP_DROP_ADJUST_ROOM);
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	if (data + ETH_HLEN > end)
		return mp_drop(MP_DROP_STORE);
	((struct ethhdr *)data)->h_proto = bpf_htons(family == 4 ? ETH_P_IP : ETH_P_IPV6);

	/* 6. deliver */
	if ((cfg->flags & MP_CFG_DEC_TTL) && !dec_ttl(skb, family)) { /* ttl.h */
		int v = mp_icmp_time_exceeded(skb, id, family);

		if (v == MP_TTL_NO_LINK)
			v = mp_icmp_time_exceeded_own(skb, family);
		if (v == TC_ACT_REDIRECT) /* answered: a partial checksum in the quote (icmp.h) */
			icmp_fix_quote(skb);
		return v;
	}
	if (cfg->role == MP_ROLE_LOCAL) {
		int n = mp_nat_decap(skb); /* whole-LAN mode: to the LAN host (nat.h) */

		if (n == NAT_ICMP_ERROR)
			n = mp_nat_icmp_error(skb);
		if (n != MP_DROP_NONE)
			return mp_drop((enum mp_drop_reason)n);
		if (cfg->flags & MP_CFG_BOND_LOCAL) { /* a reply to the LP's own traffic (nat.h) */
			n = mp_nat_local(skb);
			if (n != NAT_NOT_LOCAL)
				return n;
		}
		return mp_redirected(bpf_redirect_neigh(cfg->lan_ifindex, NULL, 0, 0));
	}
	return forward(skb, family);
}
