/* SPDX-License-Identifier: GPL-2.0 */
/*
 * icmp.h — answer an inner packet that does not fit the tunnel with ICMP "fragmentation
 * needed" (IPv4 with DF) or ICMPv6 "packet too big", so the sender's path MTU discovery
 * learns inner_mtu instead of seeing a silent loss.
 *
 * The answer is built in place from the packet itself and sent back out of the device it
 * came in on: trim it to the quote, insert the new IP + ICMP header after the Ethernet header,
 * swap the MACs, and source it from the portal's own address of the packet's family (mp_config
 * own_v4 / own_v6: the LP's on lan, the RP's on wan, the side the packet came from), as a router
 * on the path would, so tracepath shows the portal, not the destination, where the MTU drops;
 * from the address the packet was going to only when the portal has none of that family.
 */
/* Defines a global BPF function: include from encap.c only (one definition per object); another
 * file defines MP_ICMP_BUILDERS_ONLY first for the builders alone (ttl.h). */
#ifndef MP_ICMP_H
#define MP_ICMP_H

#include "counters.h"
#include "csum.h"

#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMP_TIME_EXCEEDED 11
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMP_ERR_V4_MAX 576  /* RFC 1812 4.3.2.3: an ICMP error is at most 576 bytes */
#define ICMP_ERR_V6_MAX 1280 /* RFC 4443 2.4(c): as much as fits the minimum IPv6 MTU */
#define ICMP_HLEN 8
#define ICMP_QUOTE_V4 (ICMP_ERR_V4_MAX - sizeof(struct iphdr) - ICMP_HLEN)    /* 548 */
#define ICMP_QUOTE_V6 (ICMP_ERR_V6_MAX - sizeof(struct ipv6hdr) - ICMP_HLEN) /* 1232 */

/* RFC 1122 3.2.2 / RFC 4443 2.4(e): never answer an ICMP error, nor a later fragment. */
static __always_inline bool icmp_may_answer(struct __sk_buff *skb, const struct l3 *p)
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	__u32 off = p->l4_off;
	__u8 *type;

	if (p->later_frag)
		return false;
	if (p->proto != (p->family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6))
		return true;
	if (off > ETH_HLEN + 60)
		return false;
	type = data + off;
	if ((void *)(type + 1) > end)
		return false;
	if (p->family == 6)
		return *type >= 128; /* informational */
	return *type == 0 || *type == 8 || (*type >= 13 && *type <= 18); /* echo, timestamp, ... */
}

/* Trim the packet to the quote and open room for the new headers. Returns the quote length,
 * or 0 with the drop reason in *reason. */
static __always_inline __u32 icmp_make_room(struct __sk_buff *skb, __u32 max_quote, __u32 hdrs,
					    enum mp_drop_reason *reason)
{
	__u32 quote = skb->len - ETH_HLEN;

	if (quote > max_quote)
		quote = max_quote;
	if (quote != skb->len - ETH_HLEN && bpf_skb_change_tail(skb, ETH_HLEN + quote, 0)) {
		*reason = MP_DROP_STORE;
		return 0;
	}
	if (bpf_skb_adjust_room(skb, hdrs, BPF_ADJ_ROOM_MAC, 0)) {
		*reason = MP_DROP_ADJUST_ROOM;
		return 0;
	}
	/* the checksum below reads the whole quote directly */
	if (bpf_skb_pull_data(skb, skb->len)) {
		*reason = MP_DROP_STORE;
		return 0;
	}
	return quote;
}

static __always_inline void swap_macs(struct ethhdr *eth, const __u8 mac[2 * ETH_ALEN])
{
	__builtin_memcpy(eth->h_dest, mac + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
}

/*
 * A quoted TCP or UDP segment whose checksum its sender left to offload (CHECKSUM_PARTIAL: a
 * local sender or a veth, see csum.h) holds its pseudo-header sum in the checksum field, and the
 * kernel completes it on the way out (skb_checksum_help: csum_start and csum_offset still point
 * at it) after our ICMP checksum was summed over the quote: the receiver then counts the answer
 * as a checksum error and drops it (tracepath / traceroute's UDP probes through the RP: "no
 * reply"). BPF cannot see skb->ip_summed; such a field equals the folded pseudo-header sum, which
 * a completed checksum does only by chance (1 in 65,536: that answer alone is lost then). So the
 * ICMP checksum of an answer built (skb: Ethernet, IP, ICMP, quote) is made to fit the field as
 * the kernel will write it: the one's complement of the quoted L4 bytes' sum (0xffff for 0).
 * Only for TCP and UDP right after the quoted IP header. Called by decap and encap after the
 * answer is built (its own frame, not one more on the builders': their callers' stack is full).
 */
static __attribute__((noinline)) int icmp_fix_quote(struct __sk_buff *skb)
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	struct ethhdr *eth = data;
	__u64 pseudo = 0;
	__u32 q, qhdr, max_len, quote, len, at;
	__u16 *field, *check, f, v;
	__u8 proto;

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + ETH_HLEN + sizeof(struct iphdr) + ICMP_HLEN;

		q = ETH_HLEN + sizeof(struct iphdr) + ICMP_HLEN;
		qhdr = sizeof(struct iphdr);
		max_len = ICMP_QUOTE_V4 - sizeof(struct iphdr);
		/* a TCP/UDP segment without options, not a fragment */
		if ((void *)(ip + 1) > end || *(__u8 *)ip != 0x45 || (ip->frag_off & bpf_htons(0x3fff)))
			return 0;
		proto = ip->protocol;
		pseudo = (__u64)ip->saddr + ip->daddr + bpf_htons(proto) +
			 bpf_htons((__u16)(bpf_ntohs(ip->tot_len) - sizeof(struct iphdr)));
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN + sizeof(struct ipv6hdr) + ICMP_HLEN;
		const __u32 *a;

		q = ETH_HLEN + sizeof(struct ipv6hdr) + ICMP_HLEN;
		qhdr = sizeof(struct ipv6hdr);
		max_len = ICMP_QUOTE_V6 - sizeof(struct ipv6hdr);
		if ((void *)(ip6 + 1) > end)
			return 0;
		a = (const __u32 *)&ip6->saddr;
		proto = ip6->nexthdr;
#pragma unroll
		for (int i = 0; i < 8; i++)
			pseudo += a[i]; /* source, then destination */
		pseudo += (__u64)bpf_htonl(bpf_ntohs(ip6->payload_len)) + bpf_htonl(proto);
	}
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return 0;
	at = proto == IPPROTO_UDP ? 6 : 16;
	quote = skb->len - q;
	len = (quote - qhdr) & 0x7ff; /* a bound the verifier keeps (max_len is below it) */
	if (skb->len <= q + qhdr || len < at + 2 || len > max_len)
		return 0;
	field = data + q + qhdr + at;
	if ((void *)(field + 1) > end)
		return 0;
	f = *field;
	if (f == 0 || f != csum16(pseudo))
		return 0;
	v = ~csum16(sum_packet(skb, q + qhdr, len, max_len, 0));
	if (!v)
		v = 0xffff;
	/* the ICMP checksum, updated for the field's change from f to v (RFC 1624) */
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	check = data + q - ICMP_HLEN + 2;
	if ((void *)(check + 1) > end)
		return 0;
	*check = ~csum16((__u64)(__u16)~*check + (__u16)~f + v);
	return 1;
}

/* An ICMP error (type, code, the 4 bytes after the checksum `word`) about the IPv4 packet in skb,
 * in place, from `src` (NULL: the address the packet was going to, as a router on the path) back
 * to its sender, MACs swapped. Returns 0 or the drop reason. */
static __always_inline enum mp_drop_reason icmp4_error(struct __sk_buff *skb, __u8 type, __u8 code, __be32 word,
						       const __u32 *src)
{
	const __u32 hdrs = sizeof(struct iphdr) + ICMP_HLEN;
	enum mp_drop_reason reason = MP_DROP_STORE;
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct icmphdr *icmp;
	__u8 mac[2 * ETH_ALEN];
	__be32 saddr, daddr;
	__u32 quote;
	__u64 sum;

	if ((void *)(ip + 1) > end)
		return MP_DROP_STORE;
	__builtin_memcpy(mac, eth, sizeof(mac));
	saddr = ip->saddr;
	daddr = src ? src[0] : ip->daddr;

	quote = icmp_make_room(skb, ICMP_QUOTE_V4, hdrs, &reason);
	if (!quote)
		return reason;

	data = PKT_DATA(skb);
	end = PKT_END(skb);
	eth = data;
	ip = data + ETH_HLEN;
	icmp = (void *)(ip + 1);
	if ((void *)(icmp + 1) > end)
		return MP_DROP_STORE;
	swap_macs(eth, mac);
	*(__u8 *)ip = 0x45; /* version 4, 20-byte header */
	ip->tos = 0;
	ip->tot_len = bpf_htons(hdrs + quote);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->check = 0;
	ip->saddr = daddr;
	ip->daddr = saddr;
	ip->check = ipv4_hdr_csum(ip);
	icmp->type = type;
	icmp->code = code;
	icmp->checksum = 0;
	icmp->un.gateway = word;

	sum = sum_packet(skb, ETH_HLEN + sizeof(struct iphdr), ICMP_HLEN + quote,
			 ICMP_HLEN + ICMP_QUOTE_V4, 0);
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	icmp = data + ETH_HLEN + sizeof(struct iphdr);
	if ((void *)(icmp + 1) > end)
		return MP_DROP_STORE;
	icmp->checksum = ~csum16(sum);
	return MP_DROP_NONE;
}

/* ICMP type 3 code 4 with next-hop MTU `mtu`, for the IPv4 packet in skb, from src (NULL: the
 * packet's destination). */
static __always_inline int icmp_frag_needed(struct __sk_buff *skb, __u16 mtu, const __u32 *src)
{
	enum mp_drop_reason r = icmp4_error(skb, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, bpf_htonl(mtu), src);

	if (r != MP_DROP_NONE)
		return mp_drop(r);
	return mp_exit(bpf_redirect(skb->ifindex, 0), MP_DROP_TOO_BIG);
}

/* An ICMPv6 error (type, code, the 4 bytes after the checksum `word`) about the IPv6 packet in
 * skb, in place, from `src` (NULL: the packet's destination) back to its sender. Returns 0 or the
 * drop reason. */
static __always_inline enum mp_drop_reason icmp6_error(struct __sk_buff *skb, __u8 type, __u8 code, __be32 word,
						       const __u32 *src)
{
	const __u32 hdrs = sizeof(struct ipv6hdr) + ICMP_HLEN;
	enum mp_drop_reason reason = MP_DROP_STORE;
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct icmp6hdr *icmp6;
	__u8 mac[2 * ETH_ALEN];
	__u32 saddr[4], daddr[4], *w;
	__u32 quote;
	__u64 sum = 0;

	if ((void *)(ip6 + 1) > end)
		return MP_DROP_STORE;
	__builtin_memcpy(mac, eth, sizeof(mac));
	__builtin_memcpy(saddr, &ip6->saddr, 16);
	if (src)
		__builtin_memcpy(daddr, src, 16);
	else
		__builtin_memcpy(daddr, &ip6->daddr, 16);

	quote = icmp_make_room(skb, ICMP_QUOTE_V6, hdrs, &reason);
	if (!quote)
		return reason;

	data = PKT_DATA(skb);
	end = PKT_END(skb);
	eth = data;
	ip6 = data + ETH_HLEN;
	icmp6 = (void *)(ip6 + 1);
	if ((void *)(icmp6 + 1) > end)
		return MP_DROP_STORE;
	swap_macs(eth, mac);
	w = (__u32 *)ip6;
	w[0] = bpf_htonl(0x60000000); /* version 6, traffic class 0, flow label 0 */
	ip6->payload_len = bpf_htons(ICMP_HLEN + quote);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = 64;
	__builtin_memcpy(&ip6->saddr, daddr, 16);
	__builtin_memcpy(&ip6->daddr, saddr, 16);
	icmp6->icmp6_type = type;
	icmp6->icmp6_code = code;
	icmp6->icmp6_cksum = 0;
	icmp6->icmp6_dataun.un_data32[0] = word;

	/* pseudo-header: source, destination, upper-layer length, next header */
#pragma unroll
	for (int i = 0; i < 4; i++)
		sum += (__u64)saddr[i] + daddr[i];
	sum += (__u64)bpf_htonl(ICMP_HLEN + quote) + bpf_htonl(IPPROTO_ICMPV6);
	sum = sum_packet(skb, ETH_HLEN + sizeof(struct ipv6hdr), ICMP_HLEN + quote,
			 ICMP_HLEN + ICMP_QUOTE_V6, sum);
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	icmp6 = data + ETH_HLEN + sizeof(struct ipv6hdr);
	if ((void *)(icmp6 + 1) > end)
		return MP_DROP_STORE;
	icmp6->icmp6_cksum = ~csum16(sum);
	return MP_DROP_NONE;
}

/* ICMPv6 type 2 ("packet too big") with MTU `mtu`, for the IPv6 packet in skb, from src (NULL:
 * the packet's destination). */
static __always_inline int icmp6_packet_too_big(struct __sk_buff *skb, __u32 mtu, const __u32 *src)
{
	enum mp_drop_reason r = icmp6_error(skb, ICMPV6_PKT_TOOBIG, 0, bpf_htonl(mtu), src);

	if (r != MP_DROP_NONE)
		return mp_drop(r);
	return mp_exit(bpf_redirect(skb->ifindex, 0), MP_DROP_TOO_BIG);
}

#ifndef MP_ICMP_BUILDERS_ONLY
/* The packet is larger than mtu: answer it (and drop it), counted as MP_DROP_TOO_BIG.
 * A global (noinline) function, verified once: the checksum loop over the quote would
 * otherwise be walked for every state of encap(). */
__attribute__((noinline)) int mp_icmp_too_big(struct __sk_buff *skb, __u64 mtu)
{
	const struct mp_config *cfg = config_get();
	const struct mp_addr *own;
	__u32 src[4];
	struct l3 p;

	if (!parse_l3(skb, &p) || p.truncated || !icmp_may_answer(skb, &p))
		return mp_drop(MP_DROP_TOO_BIG);
	own = cfg ? (p.family == 4 ? &cfg->own_v4 : &cfg->own_v6) : NULL;
	if (own && own->family == p.family)
		__builtin_memcpy(src, own->addr, sizeof(src));
	if (p.family == 6)
		return icmp6_packet_too_big(skb, mtu, own && own->family == 6 ? src : NULL);
	if (p.df)
		return icmp_frag_needed(skb, mtu, own && own->family == 4 ? src : NULL);
	/* IPv4 without DF: encap sends it round the segmentation loop to be fragmented (loop.h)
	 * where the loop is routed; here only where it is not (a single-interface RP). */
	return mp_drop(MP_DROP_TOO_BIG);
}
#endif /* MP_ICMP_BUILDERS_ONLY */

#endif /* MP_ICMP_H */
