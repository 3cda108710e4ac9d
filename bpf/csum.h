/* SPDX-License-Identifier: GPL-2.0 */
/*
 * csum.h — Internet checksums (RFC 1071) computed in the program.
 *
 * Sums are kept "native": 16/32-bit words are loaded from network-order memory as they lie and
 * added in a 64-bit accumulator; a value that is not in memory (a length, a protocol number)
 * is added as the native load of its network-order image, i.e. bpf_htons()/bpf_htonl() of it.
 * Folding and complementing such a sum and storing the 16-bit result as it lies gives the
 * right bytes on the wire, whatever the host byte order (RFC 1071 section 2(B)).
 */
#ifndef MP_CSUM_H
#define MP_CSUM_H

#include "parse.h"

/* Fold a native sum to 16 bits (one's complement addition, end-around carry). */
static __always_inline __u16 csum16(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* Checksum of a 20-byte IPv4 header whose check field is 0. */
static __always_inline __u16 ipv4_hdr_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u64 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	return ~csum16(sum);
}

/* bpf_loop state of sum_packet: the words at [off, off + len) (len a multiple of 4). */
struct sum_walk {
	struct __sk_buff *skb;
	__u64 sum;
	__u32 off;
	__u32 len;
};

/* bpf_loop callback: word `index`. 1 stops (the last word, or one outside the packet). */
static long sum_word(__u64 index, void *ctx)
{
	struct sum_walk *w = ctx;
	void *data = PKT_DATA(w->skb), *end = PKT_END(w->skb);
	__u32 rel = (__u32)index * 4, at;
	__u32 *p;

	if (rel + 4 > w->len)
		return 1;
	at = w->off + rel;
	asm volatile("" : "+r"(at)); /* the bound below is checked on the register used */
	if (at > 0x7fff)
		return 1;
	p = data + at;
	if ((void *)(p + 1) > end)
		return 1;
	w->sum += *p;
	return 0;
}

/* Native sum of `len` packet bytes from `off` (both within the linear data; len <= max_len):
 * its 32-bit words in a bpf_loop (a bounded loop is walked by the verifier once per word and per
 * state that reaches it: half of decap's verification), then the 0-3 byte tail. Only the ICMP
 * error path uses it. */
static __always_inline __u64 sum_packet(struct __sk_buff *skb, __u32 off, __u32 len, __u32 max_len,
					__u64 sum)
{
	struct sum_walk w = { .skb = skb, .off = off, .len = len & ~3u };
	void *data, *end;
	__u32 tail;

	if (len > max_len || off > 128)
		return sum;
	bpf_loop(max_len / 4, sum_word, &w, 0);
	sum += w.sum;
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	tail = off + (len & ~3u);
	if (len & 2) {
		__u16 *h = data + tail;

		if ((void *)(h + 1) <= end)
			sum += *h;
		tail += 2;
	}
	if (len & 1) {
		__u8 *b = data + tail;

		/* the odd byte is the high-order byte of a zero-padded word: its native load */
		if ((void *)(b + 1) <= end)
			sum += bpf_ntohs(((__u16)*b) << 8);
	}
	return sum;
}

/*
 * One's complement sum of a whole inner packet, derived from the checksums it already carries
 * instead of reading its payload (the trick the kernel's UDP tunnels call "local checksum
 * offload"): a valid IPv4 header sums to 0, and a TCP/UDP/ICMPv6 segment with a valid checksum
 * sums to minus its pseudo-header, an ICMP message to 0. So the outer UDP checksum over IPv6
 * costs a few adds. If the inner checksum is still to be filled by offload (CHECKSUM_PARTIAL),
 * it is valid by the time the packet leaves, and so is ours.
 * Returns false where that does not hold (fragments, UDP without checksum, other protocols,
 * IPv6 extension headers): the caller sends checksum 0 then.
 */
static __always_inline bool inner_sum(struct __sk_buff *skb, const struct l3 *p, __u64 *out)
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);
	__u32 off = p->l4_off;
	__u64 pseudo = 0;

	if (p->family == 4) {
		struct iphdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > end || p->fragment)
			return false;
		if (p->proto == IPPROTO_ICMP) {
			*out = 0;
			return true;
		}
		if (p->proto == IPPROTO_UDP) {
			struct udphdr *udp;

			if (off > ETH_HLEN + 60)
				return false;
			udp = data + off;
			if ((void *)(udp + 1) > end || udp->check == 0)
				return false;
		} else if (p->proto != IPPROTO_TCP) {
			return false;
		}
		pseudo = (__u64)ip->saddr + ip->daddr +
			 bpf_htonl((p->proto << 16) | (p->len - p->ihl_bytes));
		*out = (__u16)~csum16(pseudo);
		return true;
	}

	/* IPv6: the addresses appear in the header and in the pseudo-header and cancel out */
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	const __u32 *w = (const __u32 *)ip6;

	if ((void *)(ip6 + 1) > end)
		return false;
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP && p->proto != IPPROTO_ICMPV6)
		return false;
	if (p->proto == IPPROTO_UDP) { /* RFC 6935 zero-checksum tunnels: no valid sum */
		struct udphdr *udp = (void *)(ip6 + 1);

		if ((void *)(udp + 1) > end || udp->check == 0)
			return false;
	}
	pseudo = (__u64)bpf_htonl(p->len - sizeof(*ip6)) + bpf_htonl(p->proto);
	*out = csum16((__u64)w[0] + w[1] + (__u16)~csum16(pseudo));
	return true;
}

#endif /* MP_CSUM_H */
