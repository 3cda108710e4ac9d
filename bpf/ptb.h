/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ptb.h — ICMP "fragmentation needed" (IPv4) and "packet too big" (IPv6) about this portal's own
 * outer packets, seen by decap on the way in (LP: each link's device; RP: wan).
 *
 * A router inside a link's path that cannot forward an outer packet answers with one of these,
 * quoting the packet's headers. The quote names the link: on the LP the outer source address and
 * UDP source port are a link's own (mp_link.local, local_port_be; the ip carrier: its protocol
 * and device), on the RP the destination address and port are a link's endpoint (mp_endpoints).
 * Both must match, and the quoted destination / source must be the peer (LP: the RP's endpoint;
 * RP: its own address of the link), so that an ICMP about someone else's packet teaches nothing.
 *
 * The MTU it names is recorded in mp_rx[link].ptb_mtu (and ptb_count counts them); the packet
 * itself goes on to the kernel unchanged (its route cache learns it too). ICMP is not
 * authenticated: userland takes it only as a hint to search below that size with its own
 * authenticated probes (src/run/pmtu.ts, RFC 8899 4.6), never as the path MTU itself.
 */
/* Defines a global BPF function: include from decap.c only, after ttl.h (icmp.h's constants). */
#ifndef MP_PTB_H
#define MP_PTB_H

static __always_inline bool addr_eq(const __u8 *a, const __u32 b[4], __u8 family)
{
	const __u32 *w = (const __u32 *)a;

	if (family == 4)
		return w[0] == b[0];
	return w[0] == b[0] && w[1] == b[1] && w[2] == b[2] && w[3] == b[3];
}

/* Is the ICMP (family 4) / ICMPv6 (6) message at l4_off an ICMP "too big" about one of our
 * outer packets? Then record it on its link. Returns the link id + 1 it was recorded on, 0 if
 * not (a global function: verified once; its stack adds to decap's, so it keeps little there). */
__attribute__((noinline)) int mp_ptb_learn(struct __sk_buff *skb, __u64 fam, __u64 l4_off)
{
	const struct mp_config *cfg = config_get();
	__u32 qsrc[4] = {}, qdst[4] = {}, mtu, q;
	__be16 ports[2] = {};
	__u8 icmp[8], qproto, vihl;
	bool udp;

	if (!cfg || l4_off > ETH_HLEN + 60 || bpf_skb_load_bytes(skb, l4_off, icmp, sizeof(icmp)))
		return 0;
	q = l4_off + sizeof(icmp); /* the quoted packet's IP header */
	if (fam == 4) {
		if (icmp[0] != ICMP_DEST_UNREACH || icmp[1] != ICMP_FRAG_NEEDED)
			return 0;
		mtu = ((__u32)icmp[6] << 8) | icmp[7];
		if (bpf_skb_load_bytes(skb, q, &vihl, 1) || (vihl >> 4) != 4 || (vihl & 0xf) < 5 ||
		    bpf_skb_load_bytes(skb, q + 9, &qproto, 1) ||
		    bpf_skb_load_bytes(skb, q + 12, qsrc, 4) || bpf_skb_load_bytes(skb, q + 16, qdst, 4))
			return 0;
		q += (vihl & 0xf) * 4;
	} else {
		if (fam != 6 || icmp[0] != ICMPV6_PKT_TOOBIG || icmp[1] != 0)
			return 0;
		mtu = ((__u32)icmp[4] << 24) | ((__u32)icmp[5] << 16) | ((__u32)icmp[6] << 8) | icmp[7];
		if (bpf_skb_load_bytes(skb, q, &vihl, 1) || (vihl >> 4) != 6 ||
		    bpf_skb_load_bytes(skb, q + 6, &qproto, 1) ||
		    bpf_skb_load_bytes(skb, q + 8, qsrc, 16) || bpf_skb_load_bytes(skb, q + 24, qdst, 16))
			return 0;
		q += 40;
	}
	if (!mtu || mtu > 0xffff)
		return 0;
	udp = qproto == IPPROTO_UDP;
	if (!udp && (!cfg->ip_proto || qproto != cfg->ip_proto))
		return 0;
	if (udp && bpf_skb_load_bytes(skb, q, ports, sizeof(ports))) /* source, destination */
		return 0;

#pragma unroll
	for (__u32 id = 0; id < MP_MAX_LINKS; id++) {
		__u32 key = id;
		const struct mp_link *l = bpf_map_lookup_elem(&mp_links, &key);
		const struct mp_endpoint *ep = bpf_map_lookup_elem(&mp_endpoints, &key);
		struct mp_rx *rx;

		if (!l || !ep || l->state == MP_LINK_UNUSED || !ep->valid || l->local.family != fam ||
		    ep->addr.family != fam || !addr_eq(l->local.addr, qsrc, fam) ||
		    !addr_eq(ep->addr.addr, qdst, fam))
			continue;
		if (cfg->role == MP_ROLE_LOCAL) {
			if (udp ? l->carrier != MP_CARRIER_UDP || l->local_port_be != ports[0]
				: l->carrier != MP_CARRIER_IP || l->ifindex != skb->ifindex)
				continue;
		} else if (!udp || ep->port_be != ports[1]) {
			continue; /* the RP sends UDP on every link (decap.c learn_endpoint) */
		}
		rx = bpf_map_lookup_elem(&mp_rx, &key);
		if (!rx)
			return 0;
		rx->ptb_mtu = mtu;
		__sync_fetch_and_add(&rx->ptb_count, 1);
		return id + 1;
	}
	return 0;
}

#endif /* MP_PTB_H */
