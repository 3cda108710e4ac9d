/* SPDX-License-Identifier: GPL-2.0 */
/*
 * flood.h — what decap lets through to the portal's socket when someone floods it.
 *
 * Everything decap passes up to userland costs the portal's single Node thread (the one that also
 * runs probes, feedback and liveness) far more than it costs the data path, so the unauthenticated
 * part of it is filtered and rate-limited here, before it reaches a socket:
 *
 * Handshake messages (HS_INIT, HS_RESP, COOKIE: no tag, userland authenticates them).
 *   1. Shape (MP_DROP_HS_MALFORMED): a type this role receives (RP: initiations; LP: responses
 *      and cookie replies), the exact size of that type (src/security/messages.ts: 168, 112,
 *      72 bytes), link_id < MP_MAX_LINKS, and flags, seq, link_seq, ts_us and tag all zero.
 *   2. A source that is a current endpoint of a link (mp_endpoints[id]: on the RP learned only
 *      from authenticated packets, on the LP the RP's configured address; UDP: address and port,
 *      ip carrier: address) takes a token of that link's bucket, HS_PEER_PER_S a second with a
 *      burst of HS_PEER_BURST, and skips the others: a rekey of the real LP (or the RP's answer)
 *      passes whatever else is flooding. Empty: MP_DROP_HS_SOURCE_RATE.
 *   3. Any other source takes a token of its /24 (IPv4) or /48 (IPv6) bucket, HS_PREFIX_PER_S a
 *      second, burst HS_PREFIX_BURST (MP_DROP_HS_SOURCE_RATE), then one of the global bucket,
 *      HS_GLOBAL_PER_S a second, burst HS_GLOBAL_BURST (MP_DROP_HS_GLOBAL_RATE). Each passed
 *      initiation gets at most one cookie reply, so these are also the caps on the RP's
 *      reflection: ≤ HS_GLOBAL_PER_S replies a second to strangers, ≤ HS_PREFIX_PER_S to any
 *      one /24 or /48 (and ≤ HS_PEER_PER_S per link to the LP's own address).
 *   mac1 is not checked here: its key is SHA-256 of the responder's public key, so anyone can
 *   compute a valid one and the buckets are what holds a flood; userland checks it.
 *
 * Outer fragments (MP_DROP_FRAGMENT). The portals never fragment their outer packets (DF, and
 * path MTU discovery), so a fragment to the tunnel port is someone trying to get a forged message
 * reassembled by the stack and delivered to the socket past decap's checks. The first fragment
 * (offset 0: it holds the UDP header, so whose it is is known) is dropped and its (source, IP id)
 * remembered for a while; later fragments of a remembered datagram are dropped too. Later
 * fragments that arrive before their first pass to the stack, which can never complete the
 * datagram without the first and discards them (ipfrag_time).
 *
 * Buckets are GCRA (a token bucket kept as one "theoretical arrival time"): a packet passes when
 * tat - now <= (burst - 1) * interval, and then tat = max(tat, now) + interval. Updates race
 * between CPUs without a lock; a race can let a packet or two more through, never fewer.
 */
#ifndef MP_FLOOD_H
#define MP_FLOOD_H

#include "maps.h"
#include "parse.h"

#define HS_GLOBAL_PER_S 500
#define HS_GLOBAL_BURST 50 /* a burst is worked through before the next probe: keep it short */
#define HS_PREFIX_PER_S 10
#define HS_PREFIX_BURST 10
#define HS_PEER_PER_S 10
#define HS_PEER_BURST 20

#define HS_PREFIX_SOURCES 16384 /* /24s and /48s tracked (least recently used go) */
#define FRAG_DATAGRAMS 4096     /* first fragments remembered (least recently used go) */
#define FRAG_REMEMBER_NS (30ULL * 1000000000ULL) /* the stack's ipfrag_time */

#define NEXTHDR_FRAGMENT 44
#define IP6_OFFSET 0xfff8 /* fragment offset in the IPv6 fragment header's frag_off */
#define IP6_MF 0x0001

/* mp_hs_limits[0]: the global bucket; [1 + id]: link id's endpoint bucket (value: tat in ns) */
#define HS_LIMIT_GLOBAL 0
#define HS_LIMIT_PEER(id) (1 + (id))

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 + MP_MAX_LINKS);
	__type(key, __u32);
	__type(value, __u64);
} mp_hs_limits SEC(".maps");

/* key: family << 56 | the /24 (IPv4) or /48 (IPv6) in the low bits; value: tat in ns */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HS_PREFIX_SOURCES);
	__type(key, __u64);
	__type(value, __u64);
} mp_hs_prefix SEC(".maps");

struct frag_key {
	__u32 saddr[4];
	__u32 id;     /* IPv4: the 16-bit id; IPv6: the fragment header's 32-bit id */
	__u32 family;
};

/* value: bpf_ktime_get_ns() when the first fragment was dropped */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FRAG_DATAGRAMS);
	__type(key, struct frag_key);
	__type(value, __u64);
} mp_frag_ids SEC(".maps");

/* An outer packet's fragmentation, as parse_outer sees it. */
struct frag {
	__u32 id;
	__u8 is;    /* a fragment (IPv4: MF or offset; IPv6: has a fragment header) */
	__u8 later; /* offset != 0: no L4 header */
};

/*
 * Fills f for the packet parsed into p. IPv6: a fragment header right after the fixed header
 * moves p's L4 view past it (p->proto, p->l4_off) and sets p->fragment/later_frag, which
 * parse_l3 leaves 0 for IPv6. false: the fragment header is not whole.
 */
static __always_inline bool frag_parse(struct __sk_buff *skb, struct l3 *p, struct frag *f)
{
	void *data = PKT_DATA(skb), *end = PKT_END(skb);

	f->is = p->fragment;
	f->later = p->later_frag;
	f->id = 0;
	if (p->family == 4) {
		struct iphdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > end)
			return false;
		f->id = bpf_ntohs(ip->id);
		return true;
	}
	if (p->proto != NEXTHDR_FRAGMENT)
		return true;
	struct frag_hdr *fh = data + ETH_HLEN + sizeof(struct ipv6hdr);

	if ((void *)(fh + 1) > end)
		return false;
	f->is = 1;
	f->later = !!(bpf_ntohs(fh->frag_off) & IP6_OFFSET);
	f->id = bpf_ntohl(fh->identification);
	p->proto = fh->nexthdr;
	p->l4_off += sizeof(*fh);
	p->fragment = 1;
	p->later_frag = f->later;
	return true;
}

static __always_inline void frag_key_of(struct frag_key *k, const struct frag *f, __u8 family,
					const __u32 saddr[4])
{
#pragma unroll
	for (int i = 0; i < 4; i++)
		k->saddr[i] = saddr[i];
	k->id = f->id;
	k->family = family;
}

/* A later fragment: is it of a datagram whose first fragment we dropped (recently)? */
static __always_inline bool frag_later_ours(const struct frag *f, __u8 family, const __u32 saddr[4],
					   __u64 now)
{
	struct frag_key k = {};
	__u64 *at;

	frag_key_of(&k, f, family, saddr);
	at = bpf_map_lookup_elem(&mp_frag_ids, &k);
	return at && now - *at < FRAG_REMEMBER_NS;
}

/* The first fragment of one of our datagrams: remember it (its later fragments go too). */
static __always_inline void frag_first_ours(const struct frag *f, __u8 family, const __u32 saddr[4],
					    __u64 now)
{
	struct frag_key k = {};

	frag_key_of(&k, f, family, saddr);
	bpf_map_update_elem(&mp_frag_ids, &k, &now, BPF_ANY);
}

/* GCRA: take a token from the bucket whose tat is *tat. */
static __always_inline bool gcra_take(__u64 *tat, __u64 now, __u64 per_s, __u64 burst)
{
	__u64 interval = 1000000000ULL / per_s;
	__u64 t = *tat;

	if (t < now)
		t = now;
	if (t - now > (burst - 1) * interval)
		return false;
	*tat = t + interval;
	return true;
}

static __always_inline bool bucket_take(__u32 index, __u64 now, __u64 per_s, __u64 burst)
{
	__u64 *tat = bpf_map_lookup_elem(&mp_hs_limits, &index);

	return tat && gcra_take(tat, now, per_s, burst);
}

/* The /24 or /48 of a source address (network order words, as load_addr) as a map key. */
static __always_inline __u64 prefix_key(__u8 family, const __u32 saddr[4])
{
	if (family == 4)
		return (4ULL << 56) | (bpf_ntohl(saddr[0]) >> 8);
	return (6ULL << 56) | ((__u64)bpf_ntohl(saddr[0]) << 16) | (bpf_ntohl(saddr[1]) >> 16);
}

static __always_inline bool prefix_take(__u8 family, const __u32 saddr[4], __u64 now)
{
	__u64 key = prefix_key(family, saddr);
	__u64 *tat = bpf_map_lookup_elem(&mp_hs_prefix, &key);
	__u64 first;

	if (tat)
		return gcra_take(tat, now, HS_PREFIX_PER_S, HS_PREFIX_BURST);
	first = now + 1000000000ULL / HS_PREFIX_PER_S;
	bpf_map_update_elem(&mp_hs_prefix, &key, &first, BPF_ANY);
	return true;
}

/* The link whose endpoint the source is (UDP: address and port; ip carrier: address), or -1. */
static __always_inline int endpoint_of(__u8 family, const __u32 saddr[4], __u8 udp, __be16 sport_be)
{
#pragma unroll
	for (__u32 id = 0; id < MP_MAX_LINKS; id++) {
		__u32 key = id;
		const struct mp_endpoint *ep = bpf_map_lookup_elem(&mp_endpoints, &key);
		const __u32 *a;

		if (!ep || !ep->valid || ep->addr.family != family || (udp && ep->port_be != sport_be))
			continue;
		a = (const __u32 *)ep->addr.addr;
		if (a[0] == saddr[0] && a[1] == saddr[1] && a[2] == saddr[2] && a[3] == saddr[3])
			return id;
	}
	return -1;
}

/* The size of a handshake message of `type` that a portal of `role` receives; 0: it receives
 * none of that type. */
static __always_inline __u32 hs_size(__u32 role, __u8 type)
{
	if (role == MP_ROLE_REMOTE)
		return type == MP_T_HS_INIT ? 168 : 0;
	if (type == MP_T_HS_RESP)
		return 112;
	return type == MP_T_COOKIE ? 72 : 0;
}

/*
 * A handshake message with header *h, msg_len bytes long (header included), from saddr:sport:
 * MP_DROP_NONE to pass it up to the socket, or why not.
 */
static __always_inline enum mp_drop_reason flood_handshake(const struct mp_config *cfg,
							  const struct mp_hdr *h, __u32 msg_len,
							  __u8 family, const __u32 saddr[4], __u8 udp,
							  __be16 sport_be, __u64 now)
{
	__u64 tag;
	int id;

	__builtin_memcpy(&tag, h->tag, sizeof(tag));
	if (msg_len != hs_size(cfg->role, h->ver_type & 0xf) || h->link_id >= MP_MAX_LINKS ||
	    h->flags || h->seq || h->link_seq || h->ts_us || tag)
		return MP_DROP_HS_MALFORMED;
	id = endpoint_of(family, saddr, udp, sport_be);
	if (id >= 0 && id < MP_MAX_LINKS)
		return bucket_take(HS_LIMIT_PEER(id), now, HS_PEER_PER_S, HS_PEER_BURST)
			       ? MP_DROP_NONE
			       : MP_DROP_HS_SOURCE_RATE;
	if (!prefix_take(family, saddr, now))
		return MP_DROP_HS_SOURCE_RATE;
	if (!bucket_take(HS_LIMIT_GLOBAL, now, HS_GLOBAL_PER_S, HS_GLOBAL_BURST))
		return MP_DROP_HS_GLOBAL_RATE;
	return MP_DROP_NONE;
}

#endif /* MP_FLOOD_H */
