/* SPDX-License-Identifier: GPL-2.0 */
/*
 * probe.h — the data path answers probe requests itself (mp.h "struct mp_probe",
 * "struct mp_peer_probe"), so that a portal whose control plane is gone (killed, restarting)
 * still answers its peer, and the peer keeps the links up.
 *
 * decap hands every authentic MP_T_PROBE message here (after key, MAC and replay window). A
 * reply (kind 1) goes up to the portal's socket: the requester's round trip and liveness are
 * userland's. A request (kind 0) never goes up:
 *
 *   1. checked: the body holds a struct mp_probe, the link id is one of ours (LP: a configured
 *      link; its device need not be the one the request came in on: probes of an `ip` carrier
 *      link travel over UDP), reply_len asks for no more than a tag covers;
 *   2. recorded in mp_peer_probe[link_id] (userland reads the LP's estimates, budget,
 *      admin-down and path MTUs there); the RP learns where the link is (NAT roaming);
 *   3. turned into its reply in place: cut or grown (zero-padded) to the reply's length, the
 *      body rewritten, signed with the send key (MP_HDR_F_DP, seq from mp_sched.seq), outer
 *      addresses, ports and MAC addresses swapped;
 *   4. sent back out of the device it came in on (bpf_redirect to its egress), counted in
 *      mp_peer_probe[link_id].answered.
 *
 * The reply's IPv4 header keeps the request's length (options stay, as they came); IPv4 UDP
 * goes without checksum as encap's packets do, IPv6 UDP with one. Its bytes past the 64-byte
 * message are zero: that part of the checksum is 0 and is not read.
 *
 * Included by decap.c after `struct outer` and learn_endpoint(), which it uses.
 */
#ifndef MP_PROBE_H
#define MP_PROBE_H

#include "maps.h"
#include "counters.h"
#include "csum.h"
#include "auth.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MP_MAX_LINKS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct mp_peer_probe);
} mp_peer_probe SEC(".maps") __weak;

#define PROBE_BODY (MP_PROBE_LEN - MP_HDR_LEN) /* sizeof(struct mp_probe) */
#define PROBE_ZERO_CHUNK 64                    /* padding bytes zeroed per bpf_loop iteration */

_Static_assert(sizeof(struct mp_probe) == PROBE_BODY, "mp_probe is MP_PROBE_LEN - MP_HDR_LEN bytes");

/* The replay class of an authentic mpctl message of type `type` (mp.h, "authentication"): data
 * and what the data path signs (MP_HDR_F_DP) share the data sequence space, class 0; other
 * control messages are userland's, class 1. */
static __always_inline __u32 replay_class(const struct mp_hdr *h, __u8 type)
{
	return type != MP_T_DATA && !(h->flags & MP_HDR_F_DP);
}

/* The next data sequence number (mp_sched.seq, under its lock, as encap takes it). */
static __always_inline bool data_seq(__u32 *seq)
{
	__u32 zero = 0;
	struct mp_sched *s = bpf_map_lookup_elem(&mp_sched, &zero);

	if (!s)
		return false;
	bpf_spin_lock(&s->lock);
	*seq = ++s->seq;
	bpf_spin_unlock(&s->lock);
	return true;
}

/* bpf_loop state: zero [from, to) of the packet, PROBE_ZERO_CHUNK bytes per iteration. */
struct zero_walk {
	struct __sk_buff *skb;
	__u32 from;
	__u32 to;
	__u32 failed;
};

static long zero_chunk(__u64 index, void *ctx)
{
	struct zero_walk *w = ctx;
	void *data = PKT_DATA(w->skb), *end = PKT_END(w->skb);
	__u32 off = w->from + (__u32)index * PROBE_ZERO_CHUNK, n;
	__u8 *p;

	if (off >= w->to)
		return 1;
	n = w->to - off;
	asm volatile("" : "+r"(off)); /* the bound below is checked on the register used */
	if (off > NH_DIRECT_MAX)      /* never: bounds the offset for the verifier */
		goto fail;
	p = data + off;
#pragma unroll
	for (__u32 i = 0; i < PROBE_ZERO_CHUNK; i++) {
		if (i < n) {
			if ((void *)(p + i + 1) > end)
				goto fail; /* probe_take made it linear */
			p[i] = 0;
		}
	}
	return 0;
fail:
	w->failed = 1;
	return 1;
}

/* The sum (native, csum.h) of n bytes (a multiple of 4) at p. */
static __always_inline __u64 sum_words(const void *p, const int n)
{
	const __u32 *w = p;
	__u64 sum = 0;

#pragma unroll
	for (int i = 0; i < n / 4; i++)
		sum += w[i];
	return sum;
}

/* 3. Zero [from, to) of the packet (linear up to to). Returns 0, or -1 if it could not.
 * A global (noinline) function, verified once rather than for every state of decap that
 * reaches a probe. */
__attribute__((noinline)) int mp_probe_pad(struct __sk_buff *skb, __u64 from, __u64 to)
{
	struct zero_walk zw = {};

	if (!skb || from > to || to > NH_DIRECT_MAX)
		return -1;
	zw.skb = skb;
	zw.from = from;
	zw.to = to;
	bpf_loop((zw.to - zw.from + PROBE_ZERO_CHUNK - 1) / PROBE_ZERO_CHUNK, zero_chunk, &zw, 0);
	return zw.failed ? -1 : 0;
}

/* The probe's outer packet as mp_probe_turn needs it, in one argument (a global function
 * takes five): family, UDP carrier, outer IP header length, offset of the mp_hdr. */
#define PROBE_TURN_ARG(o) ((__u64)(o)->family | (__u64)(o)->udp << 8 | (__u64)(o)->ip_hlen << 16 | \
			   (__u64)(o)->hdr_off << 32)

/* 3. The outer headers of the reply, in place (the skb is linear up to its end): addresses,
 * ports and MACs swapped, the reply's lengths. outer: PROBE_TURN_ARG; ip_len: the reply's
 * outer IP length. Returns 0, or -1 if it could not. A global (noinline) function, verified
 * once. */
__attribute__((noinline)) int mp_probe_turn(struct __sk_buff *skb, __u64 outer, __u64 ip_len)
{
	void *data, *end;
	/* 64-bit: a 32-bit copy's bound would not hold for the register the offsets use */
	__u64 ip_hlen = (outer >> 16) & 0xffff, hdr_off = outer >> 32;
	__u32 a;
	__u8 family = outer & 0xff, udp = (outer >> 8) & 0xff;
	struct ethhdr *eth;
	struct udphdr *uh;
	__u16 *w;
	__u64 sum;

	if (!skb || ip_len > 0xffff)
		return -1;
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	eth = data;
	asm volatile("" : "+r"(ip_hlen), "+r"(hdr_off)); /* bounds checked on the registers used */
	if (ip_hlen > 60 || hdr_off > ETH_HLEN + 60 + 8 || data + hdr_off + MP_PROBE_LEN > end ||
	    (void *)(eth + 1) > end)
		return -1;
	w = (__u16 *)eth; /* MACs: three 16-bit words each */
#pragma unroll
	for (int i = 0; i < 3; i++) {
		__u16 t = w[i];

		w[i] = w[i + 3];
		w[i + 3] = t;
	}

	if (family == 4) {
		struct iphdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > end)
			return -1;
		a = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = a;
		ip->tot_len = bpf_htons(ip_len);
		ip->id = 0;
		ip->frag_off = bpf_htons(IP_DF); /* path MTU discovery: never fragmented */
		ip->ttl = 64;
		ip->check = 0;
		w = (__u16 *)ip; /* the header with its options */
		sum = 0;
#pragma unroll
		for (__u32 i = 0; i < 30; i++)
			if (2 * i < ip_hlen && (void *)(w + i + 1) <= end)
				sum += w[i];
		ip->check = ~csum16(sum);
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		__u32 *s, *d;

		if ((void *)(ip6 + 1) > end)
			return -1;
		s = (__u32 *)&ip6->saddr;
		d = (__u32 *)&ip6->daddr;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			a = s[i];
			s[i] = d[i];
			d[i] = a;
		}
		ip6->payload_len = bpf_htons(ip_len - sizeof(*ip6));
		ip6->hop_limit = 64;
	}
	if (!udp)
		return 0;

	uh = data + ETH_HLEN + ip_hlen;
	if ((void *)(uh + 1) > end)
		return -1;
	a = uh->source;
	uh->source = uh->dest;
	uh->dest = a;
	uh->len = bpf_htons(ip_len - ip_hlen);
	uh->check = 0; /* optional over IPv4, as encap sends */
	if (family == 6) {
		/* RFC 8200 8.1: pseudo-header, UDP header, the message; the zero padding adds 0 */
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > end)
			return -1;
		sum = sum_words(&ip6->saddr, 32) + bpf_htonl(ip_len - ip_hlen) + bpf_htonl(IPPROTO_UDP) +
		      sum_words(uh, sizeof(*uh)) + sum_words(data + hdr_off, MP_PROBE_LEN);
		uh->check = ~csum16(sum) ?: 0xffff;
	}
	return 0;
}

/*
 * An authentic probe (header *h at o->hdr_off, body up to o->end): a reply goes up to the
 * portal's socket, a request is recorded and answered here. Returns the verdict.
 */
static __always_inline int probe_take(struct __sk_buff *skb, const struct mp_config *cfg,
				      const struct outer *o, const struct mp_hdr *h, __u64 now)
{
	__u32 body_off = o->hdr_off + MP_HDR_LEN, body_len = o->end - body_off;
	__u32 id = h->link_id, head = o->hdr_off - ETH_HLEN, ip_len, req_len = o->end - ETH_HLEN;
	const struct mp_key *key = NULL;
	struct mp_peer_probe *pp;
	const struct mp_link *l;
	struct mp_probe p;
	struct mp_hdr rh;
	__u32 seq;

	/* 1. checked */
	if (body_len < PROBE_BODY || bpf_skb_load_bytes(skb, body_off, &p, sizeof(p)))
		return mp_drop(MP_DROP_BAD_PROBE);
	if (p.kind == 1)
		return mp_exit(TC_ACT_OK, MP_DROP_NONE); /* a reply: the requester is userland */
	if (p.kind != 0)
		return mp_drop(MP_DROP_BAD_PROBE);
	if (id >= MP_MAX_LINKS)
		return mp_drop(MP_DROP_BAD_LINK);
	if (cfg->role == MP_ROLE_LOCAL) { /* one of our links (probes go over UDP on every carrier) */
		l = bpf_map_lookup_elem(&mp_links, &id);
		if (!l || l->state == MP_LINK_UNUSED)
			return mp_drop(MP_DROP_BAD_LINK);
	}
	/* the reply's outer IP length: reply_len, never shorter than the unpadded reply */
	ip_len = bpf_ntohs(p.reply_len);
	if (ip_len < head + MP_PROBE_LEN)
		ip_len = head + MP_PROBE_LEN;
	if (ip_len - head - MP_HDR_LEN > MP_NH_MAX_BODY)
		return mp_drop(MP_DROP_BAD_PROBE);

	/* 2. recorded */
	pp = bpf_map_lookup_elem(&mp_peer_probe, &id);
	if (pp) {
		__builtin_memcpy(&pp->hdr, h, sizeof(*h));
		__builtin_memcpy(&pp->req, &p, sizeof(p));
		pp->rx_ns = now;
		pp->from.family = o->family;
		pp->from.prefix_len = o->family == 4 ? 32 : 128;
		__builtin_memcpy(pp->from.addr, o->saddr, sizeof(pp->from.addr));
		pp->port_be = o->sport_be;
		pp->req_len = req_len;
		__sync_fetch_and_add(&pp->requests, 1);
	}
	if (cfg->role == MP_ROLE_REMOTE)
		learn_endpoint(id, o, now);

	/* 3. the reply, in place: its length, zero padding, body, signed header, outer headers */
	if (!auth_off(cfg) && !(key = tx_key(now)))
		return mp_drop(MP_DROP_NO_KEY);
	if (!data_seq(&seq))
		return mp_drop(MP_DROP_STORE);
	if (bpf_skb_change_tail(skb, ETH_HLEN + ip_len, 0) ||
	    (PKT_DATA(skb) + ETH_HLEN + ip_len > PKT_END(skb) && bpf_skb_pull_data(skb, ETH_HLEN + ip_len)))
		return mp_drop(MP_DROP_ADJUST_ROOM);
	if (mp_probe_pad(skb, body_off + PROBE_BODY, ETH_HLEN + ip_len))
		return mp_drop(MP_DROP_STORE);

	/* echoed: carrier, probe_seq, sent_ns, reply_len and the PMTU and TRAIN flags (the
	 * requester tells a size probe's or a capacity train's answer by them; a train's reply says
	 * when its request arrived in rh.ts_us below, and in rate_bps how many data bytes the link
	 * had delivered by then); request-only fields 0 */
	p.kind = 1;
	p.metric = 0;
	p.flags &= MP_PROBE_F_PMTU | MP_PROBE_F_TRAIN;
	p.rate_bps = 0;
	if (p.flags & MP_PROBE_F_TRAIN) {
		/* the outer bytes of data (and parity) the link delivered so far: the requester counts
		 * what arrived between its train's packets (a train during a flow, train.ts) */
		struct mp_rx *rx = bpf_map_lookup_elem(&mp_rx, &id);

		if (rx)
			p.rate_bps = bpf_cpu_to_be64(rx->bytes);
	}
	p.owd_us = 0;
	p.budget_kib = 0;
	p.req_len = bpf_htons(req_len);
	p.pmtu_down = 0;
	p.pmtu_up = 0;
	if (bpf_skb_store_bytes(skb, body_off, &p, sizeof(p), 0))
		return mp_drop(MP_DROP_STORE);

	rh.ver_type = MP_VER_TYPE(MP_T_PROBE);
	rh.flags = MP_HDR_F_DP;
	rh.link_id = id;
	rh.key_id = 0; /* MP_CFG_NO_AUTH: key id 0 and a zero tag */
	rh.seq = bpf_htonl(seq);
	rh.link_seq = 0; /* not a data packet: the peer's per-link loss count does not see it */
	rh.ts_us = bpf_htonl((__u32)(now / 1000));
	__builtin_memset(rh.tag, 0, sizeof(rh.tag));
	if (key && !auth_sign(skb, key, &rh, body_off, ip_len - head - MP_HDR_LEN))
		return mp_drop(MP_DROP_TRUNCATED);
	if (bpf_skb_store_bytes(skb, o->hdr_off, &rh, sizeof(rh), 0) || mp_probe_turn(skb, PROBE_TURN_ARG(o), ip_len))
		return mp_drop(MP_DROP_STORE);

	/* 4. back where it came from */
	if (pp)
		__sync_fetch_and_add(&pp->answered, 1);
	return mp_redirected(bpf_redirect(skb->ifindex, 0));
}

#endif /* MP_PROBE_H */
