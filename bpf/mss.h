/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mss.h — clamp the MSS option of TCP SYNs so that full-size segments fit the tunnel.
 *
 * Every packet grows by the outer headers, and adjust_room does not check the egress MTU: a
 * 1500-byte inner packet would be dropped silently by the link. The SYN (and SYN-ACK, from the
 * other portal) announces the largest segment a peer will send, so lowering it there keeps TCP
 * within inner_mtu without any ICMP.
 */
/* Defines a global BPF function: include from encap.c only (one definition per object). */
#ifndef MP_MSS_H
#define MP_MSS_H

#include "parse.h"

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOLEN_MSS 4
#define TCP_MAX_OPT_BYTES 40

/* If the TCP segment at l4_off is a SYN with an MSS option above mss, lower it to mss and fix
 * the TCP checksum. Other packets are left alone. Returns 1 if it clamped.
 *
 * A global (noinline) function: the verifier checks it once on its own, not for every state
 * of encap(). The options are read with bpf_skb_load_bytes rather than packet pointers, so
 * the walking offset never has to be known exactly and the verifier's states stay few. The
 * data and checksum change together, so skb->csum (CHECKSUM_COMPLETE) stays right. */
__attribute__((noinline)) int mp_clamp_mss(struct __sk_buff *skb, __u64 l4_off, __u64 mss)
{
	__u8 b[4]; /* doff/flags, or an option's kind, length and first two value bytes */
	__u64 opt, opt_end;
	__be16 old, new;

	if (!mss || mss > 0xffff)
		return 0;
	if (bpf_skb_load_bytes(skb, l4_off + 12, b, 2)) /* data offset, flags */
		return 0;
	if (!(b[1] & TCPHDR_SYN) || (b[0] >> 4) <= 5)
		return 0;
	opt = l4_off + sizeof(struct tcphdr);
	opt_end = l4_off + (b[0] >> 4) * 4;

	/* Walk the options: each iteration consumes at least one byte of at most 40. */
	for (int i = 0; i < TCP_MAX_OPT_BYTES; i++) {
		if (opt >= opt_end || bpf_skb_load_bytes(skb, opt, b, 1))
			return 0;
		if (b[0] == TCPOPT_EOL)
			return 0;
		if (b[0] == TCPOPT_NOP) {
			opt++;
			continue;
		}
		if (opt + 2 > opt_end || bpf_skb_load_bytes(skb, opt, b, 2) || b[1] < 2 ||
		    opt + b[1] > opt_end)
			return 0; /* malformed */
		if (b[0] == TCPOPT_MSS && b[1] == TCPOLEN_MSS) {
			if (bpf_skb_load_bytes(skb, opt + 2, &old, sizeof(old)) || bpf_ntohs(old) <= mss)
				return 0;
			new = bpf_htons(mss);
			if (bpf_skb_store_bytes(skb, opt + 2, &new, sizeof(new), 0))
				return 0;
			bpf_l4_csum_replace(skb, l4_off + offsetof(struct tcphdr, check), old, new,
					    sizeof(new));
			return 1;
		}
		opt += b[1];
	}
	return 0;
}

/* Clamp the MSS of the packet parsed into p if it is a TCP SYN. mss 0: off. */
static __always_inline void clamp_mss(struct __sk_buff *skb, const struct l3 *p, __u16 mss)
{
	if (mss && p->proto == IPPROTO_TCP && !p->later_frag)
		mp_clamp_mss(skb, p->l4_off, mss);
}

#endif /* MP_MSS_H */
