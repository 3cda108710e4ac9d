/* SPDX-License-Identifier: GPL-2.0 */
/*
 * parse.h — where the headers of a packet are, bounds-checked.
 *
 * Both programs run at tc ingress, so a packet starts with its Ethernet header. Offsets are
 * from the start of the Ethernet header (skb->data). Every helper that changes the packet
 * (adjust_room, pull_data, *_csum_replace, change_tail) invalidates packet pointers, so the
 * helpers below take the skb and look the pointers up again rather than keeping them.
 */
#ifndef MP_PARSE_H
#define MP_PARSE_H

#include <bpf/bpf_endian.h>

/* uapi constants that vmlinux.h (BTF) cannot carry */
#define ETH_HLEN 14
#define ETH_ALEN 6
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_ICMPV6 58
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define TCPHDR_FIN 0x01 /* TCP flag bits (byte 13 of the header) */
#define TCPHDR_SYN 0x02
#define TCPHDR_RST 0x04
#define TCPHDR_ACK 0x10
#define AF_INET 2
#define AF_INET6 10

/* skb->data / skb->data_end, loaded by one instruction each: left to itself, clang may keep
 * `skb + offsetof(data)` in a register across calls, which the verifier rejects
 * ("dereference of modified ctx ptr"). */
static __always_inline void *pkt_data(struct __sk_buff *skb)
{
	void *p;

	asm volatile("%[p] = *(u32 *)(%[skb] + %[off])"
		     : [p] "=r"(p)
		     : [skb] "r"(skb), [off] "i"(offsetof(struct __sk_buff, data)));
	return p;
}

static __always_inline void *pkt_end(struct __sk_buff *skb)
{
	void *p;

	asm volatile("%[p] = *(u32 *)(%[skb] + %[off])"
		     : [p] "=r"(p)
		     : [skb] "r"(skb), [off] "i"(offsetof(struct __sk_buff, data_end)));
	return p;
}
#define PKT_DATA(skb) pkt_data(skb)
#define PKT_END(skb) pkt_end(skb)

/* An IPv4 or IPv6 packet after the Ethernet header (the inner packet at encap). IPv6
 * extension headers are not walked: `proto` is the fixed header's next header. */
struct l3 {
	__u8 family;     /* 4 or 6 */
	__u8 proto;      /* L4 protocol (IPv4 protocol / IPv6 next header) */
	__u8 df;         /* IPv4: don't fragment; IPv6: 1 (only the source fragments) */
	__u8 fragment;   /* IPv4: part of a fragmented datagram (MF or offset) */
	__u8 later_frag; /* IPv4: offset != 0, so no L4 header here */
	__u8 ihl_bytes;  /* IPv4 header length (20..60); 40 for IPv6 */
	__u8 truncated;  /* the length in the header exceeds the packet (or the header itself) */
	__u16 l4_off;    /* offset of the L4 header */
	__u32 len;       /* L3 packet length per its header */
};

/* Make the first `want` bytes (or the whole packet if shorter) direct-accessible. Cheap when
 * they already are; otherwise linearises them (paged skbs from real NICs). */
static __always_inline void pull_headers(struct __sk_buff *skb, __u32 want)
{
	__u32 len = skb->len;

	if (want > len)
		want = len;
	if (want > 0xffff) /* bound for the verifier; never taken */
		return;
	if (PKT_DATA(skb) + want <= PKT_END(skb))
		return;
	bpf_skb_pull_data(skb, want);
}

/* Parse Ethernet + IPv4/IPv6 header. false: not IP, or the header is not whole. A header
 * whose length field disagrees with the packet is parsed with p->truncated set. */
static __always_inline bool parse_l3(struct __sk_buff *skb, struct l3 *p)
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	struct ethhdr *eth = data;
	__u32 avail = skb->len - ETH_HLEN; /* bytes after the Ethernet header */

	if ((void *)(eth + 1) > end)
		return false;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u16 frag;

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
			return false;
		p->family = 4;
		p->proto = ip->protocol;
		p->ihl_bytes = ip->ihl * 4;
		p->l4_off = ETH_HLEN + p->ihl_bytes;
		p->len = bpf_ntohs(ip->tot_len);
		frag = bpf_ntohs(ip->frag_off);
		p->df = !!(frag & IP_DF);
		p->fragment = !!(frag & (IP_MF | IP_OFFSET));
		p->later_frag = !!(frag & IP_OFFSET);
		p->truncated = p->len < p->ihl_bytes || p->len > avail;
		return true;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->version != 6)
			return false;
		p->family = 6;
		p->proto = ip6->nexthdr;
		p->ihl_bytes = sizeof(*ip6);
		p->l4_off = ETH_HLEN + sizeof(*ip6);
		p->len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		p->df = 1;
		p->fragment = 0;
		p->later_frag = 0;
		p->truncated = p->len > avail;
		return true;
	}
	return false;
}

/* Offsets of the source / destination address of the packet parsed into p. */
static __always_inline __u32 l3_saddr_off(const struct l3 *p)
{
	return p->family == 4 ? ETH_HLEN + offsetof(struct iphdr, saddr)
			      : ETH_HLEN + offsetof(struct ipv6hdr, saddr);
}

static __always_inline __u32 l3_daddr_off(const struct l3 *p)
{
	return p->family == 4 ? ETH_HLEN + offsetof(struct iphdr, daddr)
			      : ETH_HLEN + offsetof(struct ipv6hdr, daddr);
}

/* Copy the address at packet offset `off` (4 or 16 bytes) into a[4] (zero-filled for IPv4). */
static __always_inline bool load_addr(struct __sk_buff *skb, __u32 off, __u8 family, __u32 a[4])
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	__u32 *w;

	if (off > 64) /* bound for the verifier: addresses sit in the first IP header */
		return false;
	w = data + off;
	a[1] = a[2] = a[3] = 0;
	if (family == 4) {
		if ((void *)(w + 1) > end)
			return false;
		a[0] = w[0];
		return true;
	}
	if ((void *)(w + 4) > end)
		return false;
	a[0] = w[0];
	a[1] = w[1];
	a[2] = w[2];
	a[3] = w[3];
	return true;
}

/* Is address a (network order, as load_addr) inside prefix p? A prefix of another family or
 * an unset one (family 0) matches nothing. */
static __always_inline bool in_prefix(const __u32 a[4], const struct mp_addr *p, __u8 family)
{
	const __u32 *w = (const __u32 *)p->addr; /* 4-aligned in every map value */
	__u32 plen = p->prefix_len;

	if (p->family != family)
		return false;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 bits, mask;

		if (family == 4 && i > 0)
			break;
		bits = plen > 32 * i ? plen - 32 * i : 0;
		if (bits > 32)
			bits = 32;
		mask = bits ? bpf_htonl(0xffffffffu << (32 - bits)) : 0;
		if ((a[i] ^ w[i]) & mask)
			return false;
	}
	return true;
}

/* Destination port (network order) of a TCP/UDP packet, or 0 if it has none here. */
static __always_inline __u16 l4_dport(struct __sk_buff *skb, const struct l3 *p)
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	__u32 off = p->l4_off;
	__u16 *ports;

	if ((p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP) || p->later_frag)
		return 0;
	if (off > ETH_HLEN + 60)
		return 0;
	ports = data + off;
	if ((void *)(ports + 2) > end)
		return 0;
	return ports[1];
}

#endif /* MP_PARSE_H */
