/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nat.h — whole-LAN mode: the LP translates its LAN to the client address (mp.h "whole-LAN
 * mode"; README "Whole-LAN mode").
 *
 * encap (lan ingress) calls mp_nat_encap() on a packet from a LAN prefix to an address outside
 * them, after the link is chosen and before anything is signed: its source address becomes the
 * client address of its family and its source port (echo id) the flow's port of the client
 * address. decap (link ingress) calls mp_nat_decap() on a decapsulated packet to the client address
 * of a family with LAN prefixes, before delivering it to lan: a port forward's or a flow's LAN
 * address and port replace its destination. Both are global functions: each is verified once,
 * on its own stack frame (encap's is full).
 *
 * Why here and not in the kernel's conntrack: the mapping lives in the LP's maps, shared by
 * every link, so a flow keeps its address and port when the scheduler moves it to another link
 * or a link dies, and nothing but the data path sees a packet (no nftables, no conntrack
 * module, no second pass through the stack).
 *
 * encap.c defines MP_NAT_ENCAP before including it (mp_nat_encap), decap.c does not (mp_nat_decap):
 * the two units are linked into one object, where each global function must be defined once.
 */
#ifndef MP_NAT_H
#define MP_NAT_H

#include "mp.h"
#include "maps.h"
#include "parse.h"

#define NAT_ICMP_ECHOREPLY 0
#define NAT_ICMP_ECHO 8
#define NAT_ICMPV6_ECHO_REQUEST 128
#define NAT_ICMPV6_ECHO_REPLY 129
#define NAT_ICMP_ERROR 0x100 /* mp_nat_encap/decap(): an ICMP error, for mp_nat_icmp_error[_out]() (no drop reason) */
#define NAT_NOT_LOCAL 0x200  /* mp_nat_local(): not to the LP's own address, deliver to lan (no verdict) */

/* Is address a (load_addr's form) inside one of the LAN prefixes? */
static __always_inline bool in_lan(const struct mp_config *cfg, const __u32 a[4], __u8 family)
{
#pragma unroll
	for (int i = 0; i < MP_LAN_PREFIXES; i++)
		if (in_prefix(a, &cfg->lan[i], family))
			return true;
	return false;
}

/* Does the LP translate packets of this family? */
static __always_inline bool nat_family(const struct mp_config *cfg, __u8 family)
{
	if (cfg->role != MP_ROLE_LOCAL || !(cfg->flags & MP_CFG_LAN_NAT))
		return false;
#pragma unroll
	for (int i = 0; i < MP_LAN_PREFIXES; i++)
		if (cfg->lan[i].family == family)
			return true;
	return false;
}

/* encap step 1: from the LAN to outside it? (The caller has ruled out link-scoped traffic.) */
static __always_inline bool nat_wants(struct __sk_buff *skb, const struct mp_config *cfg, const struct l3 *p)
{
	__u32 a[4];

	if (!nat_family(cfg, p->family))
		return false;
	if (!load_addr(skb, l3_saddr_off(p), p->family, a) || !in_lan(cfg, a, p->family))
		return false;
	return load_addr(skb, l3_daddr_off(p), p->family, a) && !in_lan(cfg, a, p->family);
}

/* Where a packet's translated port (or echo id) and its L4 checksum are. */
struct nat_l4 {
	__u32 port_off;  /* packet offset of the port / id translated */
	__u32 csum_off;  /* packet offset of the L4 checksum */
	__u64 csum_flag; /* BPF_F_MARK_MANGLED_0 for UDP (a checksum 0 stays 0), else 0 */
	bool pseudo;     /* the checksum covers the addresses (all but ICMPv4) */
};

/* The L4 header of a packet to translate: out (from the LAN: its source port, an echo request's
 * id) or in (to the client address: its destination port, an echo reply's id). */
static __always_inline enum mp_drop_reason nat_l4(struct __sk_buff *skb, const struct l3 *p, bool out,
						  struct nat_l4 *n)
{
	enum mp_drop_reason none = out ? MP_DROP_NAT_PROTO : MP_DROP_NAT_MISS;
	__u32 need;
	__u8 type;

	n->pseudo = true;
	n->csum_flag = 0;
	switch (p->proto) {
	case IPPROTO_TCP:
		n->port_off = p->l4_off + (out ? 0 : 2);
		n->csum_off = p->l4_off + 16;
		need = 20;
		break;
	case IPPROTO_UDP:
		n->port_off = p->l4_off + (out ? 0 : 2);
		n->csum_off = p->l4_off + 6;
		n->csum_flag = BPF_F_MARK_MANGLED_0;
		need = 8;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((p->proto == IPPROTO_ICMP) != (p->family == 4))
			return none;
		if (bpf_skb_load_bytes(skb, p->l4_off, &type, 1))
			return none;
		if (p->family == 4 ? type != (out ? NAT_ICMP_ECHO : NAT_ICMP_ECHOREPLY)
				   : type != (out ? NAT_ICMPV6_ECHO_REQUEST : NAT_ICMPV6_ECHO_REPLY))
			return none;
		n->port_off = p->l4_off + 4;
		n->csum_off = p->l4_off + 2;
		n->pseudo = p->proto == IPPROTO_ICMPV6;
		need = 8;
		break;
	default:
		return none;
	}
	if (p->l4_off + need > ETH_HLEN + p->len)
		return none;
	return MP_DROP_NONE;
}

/* A TCP packet's flags (byte 13 of its header); 0 for anything else. */
static __always_inline __u8 nat_tcp_flags(struct __sk_buff *skb, const struct l3 *p)
{
	__u8 f = 0;

	if (p->proto == IPPROTO_TCP && bpf_skb_load_bytes(skb, p->l4_off + 13, &f, 1))
		return 0;
	return f;
}

/* Replace the address at packet offset off (from -> to, load_addr's form) and fix the IPv4
 * header checksum and, with csum_off, the L4 checksum over the pseudo-header. */
static __always_inline bool nat_set_addr(struct __sk_buff *skb, const struct l3 *p, __u32 off, __u32 from[4],
					 __u32 to[4], __u32 csum_off, __u64 csum_flag)
{
	__s64 d;

	if (p->family == 4) {
		if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), from[0], to[0], 4))
			return false;
		if (csum_off && bpf_l4_csum_replace(skb, csum_off, from[0], to[0], BPF_F_PSEUDO_HDR | csum_flag | 4))
			return false;
		return !bpf_skb_store_bytes(skb, off, to, 4, 0);
	}
	if (csum_off) {
		d = bpf_csum_diff(from, 16, to, 16, 0);
		if (d < 0 || bpf_l4_csum_replace(skb, csum_off, 0, d, BPF_F_PSEUDO_HDR | csum_flag))
			return false;
	}
	return !bpf_skb_store_bytes(skb, off, to, 16, 0);
}

/* The map key of a packet's own end (addr: its source out, its destination in) and L4 port or
 * echo id. false: the port could not be read. */
static __always_inline bool nat_key(struct __sk_buff *skb, const struct l3 *p, const struct nat_l4 *n,
				    const __u32 addr[4], struct mp_nat_key *k)
{
	k->family = p->family;
	k->proto = p->proto;
	__builtin_memcpy(k->addr, addr, 16);
	return !bpf_skb_load_bytes(skb, n->port_off, &k->port_be, 2);
}

static __always_inline bool nat_set_port(struct __sk_buff *skb, const struct nat_l4 *n, __be16 from, __be16 to)
{
	if (from == to)
		return true;
	if (bpf_l4_csum_replace(skb, n->csum_off, from, to, n->csum_flag | 2))
		return false;
	return !bpf_skb_store_bytes(skb, n->port_off, &to, 2, 0);
}

static __always_inline bool same_addr(const __u8 a[16], const __u8 b[16])
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b; /* 4-aligned in both structs */

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* bond_local: is a (load_addr's form) the LP's own source of its bonded traffic? */
static __always_inline bool nat_is_local(const struct mp_config *cfg, const __u32 a[4], __u8 family)
{
	if (!(cfg->flags & MP_CFG_BOND_LOCAL))
		return false;
	return in_prefix(a, family == 4 ? &cfg->local_v4 : &cfg->local_v6, family);
}

/* Mapping timeouts (mp.h): the timeout of a reverse entry of protocol proto, in seconds. */
static __always_inline __u32 nat_timeout(__u8 proto, __u8 state)
{
	if (proto == IPPROTO_TCP)
		return state == MP_NAT_S_EST ? MP_NAT_TCP_EST_S : MP_NAT_TCP_TRANS_S;
	return proto == IPPROTO_UDP ? MP_NAT_UDP_S : MP_NAT_ICMP_S;
}

static __always_inline __u32 nat_now(void)
{
	return bpf_ktime_get_ns() / 1000000000ULL;
}

static __always_inline bool nat_expired(const struct mp_nat_val *v, __u8 proto, __u32 now)
{
	return now - v->last_s > nat_timeout(proto, v->state);
}

/* A packet of the flow passed (either way): its time, and for TCP its state by its flags. */
static __always_inline void nat_touch(struct mp_nat_val *v, __u8 proto, __u8 tcp_flags, __u32 now)
{
	__u8 st = v->state;

	if (v->last_s != now) /* one store a second, not one per packet */
		v->last_s = now;
	if (proto != IPPROTO_TCP)
		return;
	if (tcp_flags & (TCPHDR_FIN | TCPHDR_RST))
		st = MP_NAT_S_CLOSING;
	else if (tcp_flags & TCPHDR_SYN)
		st = (tcp_flags & TCPHDR_ACK) || st != MP_NAT_S_CLOSING ? st : MP_NAT_S_OPENING;
	else if (st == MP_NAT_S_OPENING)
		st = MP_NAT_S_EST;
	if (st != v->state)
		v->state = st;
}

#ifdef MP_NAT_ENCAP /* encap's alone */
/* A new flow wants client port rk, which a mapping holds: if that one expired, the new flow
 * (its reverse entry v) takes the port over, and the old flow's entry in mp_nat_out goes if it
 * still names the port. So does the flow's own mapping whose mp_nat_out entry was evicted (the
 * reverse entry names the flow itself): it gets its port back. 0: taken over. A global
 * function: nat_mapping() tries MP_NAT_TRIES ports, unrolled. */
__noinline int mp_nat_reclaim(struct mp_nat_key *rk, struct mp_nat_val *v, __u32 now)
{
	struct mp_nat_key old = {};
	struct mp_nat_val *cur, *o;

	if (!rk || !v)
		return -1;
	cur = bpf_map_lookup_elem(&mp_nat_in, rk);
	if (!cur)
		return -1;
	if (!nat_expired(cur, rk->proto, now) && !(cur->port_be == v->port_be && same_addr(cur->addr, v->addr)))
		return -1;
	old.family = rk->family;
	old.proto = rk->proto;
	old.port_be = cur->port_be;
	__builtin_memcpy(old.addr, cur->addr, 16);
	o = bpf_map_lookup_elem(&mp_nat_out, &old);
	if (o && o->port_be == rk->port_be)
		bpf_map_delete_elem(&mp_nat_out, &old);
	return bpf_map_update_elem(&mp_nat_in, rk, v, BPF_EXIST) ? -1 : 0;
}

/* The mapping of flow k (a LAN address and port) to ext (the client address): the one it has,
 * its reverse entry restored if evicted; or a new one. NULL: no port free. */
static __always_inline struct mp_nat_val *nat_mapping(const struct mp_config *cfg, const struct mp_nat_key *k,
						      const __u32 ext[4], __u8 tcp_flags)
{
	struct mp_nat_val v = {}, *out, *back;
	struct mp_nat_key rk = {};
	__u32 lo = cfg->nat_port_lo, hi = cfg->nat_port_hi, want = bpf_ntohs(k->port_be), port, now = nat_now();

	rk.family = k->family;
	rk.proto = k->proto;
	__builtin_memcpy(rk.addr, ext, 16);
	__builtin_memcpy(v.addr, k->addr, 16);
	v.port_be = k->port_be;
	nat_touch(&v, k->proto, tcp_flags, now);

	out = bpf_map_lookup_elem(&mp_nat_out, k);
	if (out) {
		rk.port_be = out->port_be;
		back = bpf_map_lookup_elem(&mp_nat_in, &rk); /* also keeps it recently used */
		if (back && back->port_be == k->port_be && same_addr(back->addr, k->addr)) {
			nat_touch(back, k->proto, tcp_flags, now);
			return out;
		}
		if (!back && !bpf_map_update_elem(&mp_nat_in, &rk, &v, BPF_NOEXIST))
			return out;
		/* its port went to another flow while the reverse entry was evicted: a new one */
		bpf_map_delete_elem(&mp_nat_out, k);
	}
	bool ids = k->proto == IPPROTO_ICMP || k->proto == IPPROTO_ICMPV6;

	if (ids) { /* echo ids are no ports: any will do, the tunnel's port too */
		lo = 1;
		hi = 0xffff;
	}
	if (hi < lo)
		return NULL;
#pragma unroll
	for (int i = 0; i < MP_NAT_TRIES; i++) {
		/* the LAN port itself first (what a host behind no NAT would have), then at random */
		port = i == 0 && want >= lo && want <= hi ? want : lo + bpf_get_prandom_u32() % (hi - lo + 1);
		rk.port_be = bpf_htons(port);
		if ((rk.port_be == cfg->port_be && !ids) || bpf_map_lookup_elem(&mp_nat_fwd, &rk))
			continue; /* the tunnel's port, a forward's */
		if (bpf_map_update_elem(&mp_nat_in, &rk, &v, BPF_NOEXIST) && mp_nat_reclaim(&rk, &v, now))
			continue; /* taken, and not expired */
		{
			struct mp_nat_val o = {};

			__builtin_memcpy(o.addr, ext, 16);
			o.port_be = rk.port_be;
			if (bpf_map_update_elem(&mp_nat_out, k, &o, BPF_NOEXIST)) /* another CPU was first */
				bpf_map_delete_elem(&mp_nat_in, &rk);
		}
		return bpf_map_lookup_elem(&mp_nat_out, k);
	}
	return NULL;
}

#endif /* MP_NAT_ENCAP: mp_nat_reclaim, nat_mapping */

/* Where a packet to the client address's port k goes: a port forward's LAN host, else a flow's.
 * false: neither. */
static __always_inline bool nat_inbound(const struct mp_nat_key *k, __u32 lan[4], __be16 *port, bool touch,
					__u8 tcp_flags)
{
	struct mp_nat_val *m = bpf_map_lookup_elem(&mp_nat_fwd, k);
	__u32 now;

	if (!m) {
		m = bpf_map_lookup_elem(&mp_nat_in, k);
		if (!m)
			return false;
		now = nat_now();
		if (nat_expired(m, k->proto, now)) /* the flow is gone: its port is free */
			return false;
		if (touch) /* a flow's reply keeps it, an ICMP error about it does not */
			nat_touch(m, k->proto, tcp_flags, now);
	}
	__builtin_memcpy(lan, m->addr, 16);
	*port = m->port_be;
	return true;
}

/* Which client port a LAN host's port k has: its port forward's, else its flow's (none is made
 * here). false: neither. */
static __always_inline bool nat_outbound(const struct mp_nat_key *k, __u32 ext[4], __be16 *port)
{
	struct mp_nat_val *m = bpf_map_lookup_elem(&mp_nat_fwd_out, k);

	if (!m)
		m = bpf_map_lookup_elem(&mp_nat_out, k);
	if (!m)
		return false;
	__builtin_memcpy(ext, m->addr, 16);
	*port = m->port_be;
	return true;
}

/* An ICMP / ICMPv6 error (destination unreachable, fragmentation needed / packet too big, time
 * exceeded, parameter problem)? Its quote names the flow, not its header. */
static __always_inline bool nat_icmp_error(struct __sk_buff *skb, const struct l3 *p)
{
	__u8 type;

	if (p->proto != (p->family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6) || bpf_skb_load_bytes(skb, p->l4_off, &type, 1))
		return false;
	if (p->family == 4)
		return type == 3 || type == 11 || type == 12;
	return type >= 1 && type <= 4;
}

/* An ICMP error about one of the LAN's flows, translated with its quote. In (decap, to the
 * client address): the quote is the flow's packet as it left, from the client address and port
 * (or echo id); the outer destination and the quote's source become the LAN host's, the quote's
 * port the LAN port. Out (encap, from a LAN host): the quote is a packet the host received, to
 * its LAN address and port; the outer source and the quote's destination become the client
 * address, the quote's port the client port (of a forward or a flow; none is made for an error).
 * The quoted IPv4 header's checksum and the ICMP checksum follow; the quoted L4 checksum is left
 * (receivers do not check it). Returns 0 or a drop reason (MP_DROP_NAT_MISS in,
 * MP_DROP_NAT_PROTO out: not about a flow of the NAT). */
static __always_inline int nat_icmp_xlate(struct __sk_buff *skb, const bool out)
{
	const enum mp_drop_reason none = out ? MP_DROP_NAT_PROTO : MP_DROP_NAT_MISS;
	struct mp_nat_key k = {};
	__u32 outer[4], to[4], qaddr[4];
	__u32 q, qihl, ql4, csum, qport_off, qaddr_off, outer_off;
	__u8 b0, qproto, qtype;
	__be16 qcheck_old, qcheck_new, port;
	struct l3 p;
	__s64 d;

	if (!parse_l3(skb, &p) || p.truncated)
		return none;
	outer_off = out ? l3_saddr_off(&p) : l3_daddr_off(&p);
	if (!load_addr(skb, outer_off, p.family, outer))
		return none;
	csum = p.l4_off + 2;
	q = p.l4_off + 8; /* the quoted IP header */
	if (bpf_skb_load_bytes(skb, q, &b0, 1))
		return none;
	if (p.family == 4) {
		if ((b0 >> 4) != 4 || (b0 & 0xf) < 5)
			return none;
		qihl = (b0 & 0xf) * 4;
		qaddr_off = q + (out ? 16 : 12);
		if (bpf_skb_load_bytes(skb, q + 9, &qproto, 1) || bpf_skb_load_bytes(skb, qaddr_off, qaddr, 4))
			return none;
		qaddr[1] = qaddr[2] = qaddr[3] = 0;
	} else {
		if ((b0 >> 4) != 6)
			return none;
		qihl = 40;
		qaddr_off = q + (out ? 24 : 8);
		if (bpf_skb_load_bytes(skb, q + 6, &qproto, 1) || bpf_skb_load_bytes(skb, qaddr_off, qaddr, 16))
			return none;
	}
	ql4 = q + qihl;
	if (ql4 > ETH_HLEN + 60 + 8 + 60)
		return none; /* bound for the verifier; beyond any IPv4 header */
	/* the flow: the quote's port on the NAT's side, or (in) an echo request's id */
	if (qproto == IPPROTO_TCP || qproto == IPPROTO_UDP) {
		qport_off = ql4 + (out ? 2 : 0);
	} else if (!out && qproto == (p.family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6)) {
		if (bpf_skb_load_bytes(skb, ql4, &qtype, 1) || qtype != (p.family == 4 ? NAT_ICMP_ECHO : NAT_ICMPV6_ECHO_REQUEST))
			return none;
		qport_off = ql4 + 4;
	} else {
		return none;
	}
	k.family = p.family;
	k.proto = qproto;
	__builtin_memcpy(k.addr, qaddr, 16);
	if (bpf_skb_load_bytes(skb, qport_off, &k.port_be, 2))
		return none;
	/* the quote is about the error's own end (the client address in, the LAN host out) */
	if (qaddr[0] != outer[0] || qaddr[1] != outer[1] || qaddr[2] != outer[2] || qaddr[3] != outer[3])
		return none;
	if (!(out ? nat_outbound(&k, to, &port) : nat_inbound(&k, to, &port, false, 0)))
		return none;

	if (p.family == 4) {
		/* the outer address: IPv4 header checksum only (ICMP has no pseudo-header) */
		if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), outer[0], to[0], 4) ||
		    bpf_skb_store_bytes(skb, outer_off, to, 4, 0))
			return MP_DROP_STORE;
		/* the quote's address and its header checksum; the ICMP checksum covers both */
		if (bpf_skb_load_bytes(skb, q + 10, &qcheck_old, 2))
			return none;
		{
			__u32 sum = (__u16)~qcheck_old;

			/* RFC 1624: HC' = ~(~HC + ~m + m') over the address's two 16-bit words */
			sum += (__u16)~(qaddr[0] & 0xffff) + (__u16)~(qaddr[0] >> 16) + (to[0] & 0xffff) + (to[0] >> 16);
			sum = (sum & 0xffff) + (sum >> 16);
			sum = (sum & 0xffff) + (sum >> 16);
			qcheck_new = ~sum;
		}
		if (bpf_l4_csum_replace(skb, csum, qaddr[0], to[0], 4) ||
		    bpf_l4_csum_replace(skb, csum, qcheck_old, qcheck_new, 2) ||
		    bpf_skb_store_bytes(skb, qaddr_off, to, 4, 0) || bpf_skb_store_bytes(skb, q + 10, &qcheck_new, 2, 0))
			return MP_DROP_STORE;
	} else {
		/* ICMPv6: the outer address is in the pseudo-header, the quote's in the body */
		d = bpf_csum_diff(outer, 16, to, 16, 0);
		if (d < 0 || bpf_l4_csum_replace(skb, csum, 0, d, BPF_F_PSEUDO_HDR) ||
		    bpf_skb_store_bytes(skb, outer_off, to, 16, 0))
			return MP_DROP_STORE;
		d = bpf_csum_diff(qaddr, 16, to, 16, 0);
		if (d < 0 || bpf_l4_csum_replace(skb, csum, 0, d, 0) || bpf_skb_store_bytes(skb, qaddr_off, to, 16, 0))
			return MP_DROP_STORE;
	}
	if (port != k.port_be &&
	    (bpf_l4_csum_replace(skb, csum, k.port_be, port, 2) || bpf_skb_store_bytes(skb, qport_off, &port, 2, 0)))
		return MP_DROP_STORE;
	return MP_DROP_NONE;
}

#ifdef MP_NAT_ENCAP
/* encap: translate a packet from the LAN (nat_wants) to the client address. Returns 0, a drop
 * reason, or NAT_ICMP_ERROR: an ICMP error, which mp_nat_icmp_error_out() translates. */
__noinline int mp_nat_encap(struct __sk_buff *skb)
{
	const struct mp_config *cfg = config_get();
	const struct mp_addr *client;
	struct mp_nat_key k = {};
	struct mp_nat_val *m;
	__u32 src[4], ext[4];
	struct nat_l4 n;
	enum mp_drop_reason r;
	__be16 port;
	struct l3 p;

	if (!cfg || !parse_l3(skb, &p) || p.truncated)
		return MP_DROP_NAT_PROTO;
	client = p.family == 4 ? &cfg->client_v4 : &cfg->client_v6;
	if (client->family != p.family)
		return MP_DROP_NAT_PROTO;
	__builtin_memcpy(ext, client->addr, 16);
	if (p.family == 4)
		ext[1] = ext[2] = ext[3] = 0;
	if (!load_addr(skb, l3_saddr_off(&p), p.family, src))
		return MP_DROP_NAT_PROTO;
	if (p.later_frag) /* no port here: its first fragment's mapping holds for it */
		return nat_set_addr(skb, &p, l3_saddr_off(&p), src, ext, 0, 0) ? MP_DROP_NONE : MP_DROP_STORE;
	if (nat_icmp_error(skb, &p)) /* the caller calls mp_nat_icmp_error_out(): a frame less deep */
		return NAT_ICMP_ERROR;
	r = nat_l4(skb, &p, true, &n);
	if (r != MP_DROP_NONE)
		return r;
	if (!nat_key(skb, &p, &n, src, &k))
		return MP_DROP_NAT_PROTO;
	m = bpf_map_lookup_elem(&mp_nat_fwd_out, &k); /* a port forward's server answering */
	if (!m)
		m = nat_mapping(cfg, &k, ext, nat_tcp_flags(skb, &p));
	if (!m)
		return MP_DROP_NAT_PORTS;
	port = m->port_be;
	if (!nat_set_addr(skb, &p, l3_saddr_off(&p), src, ext, n.pseudo ? n.csum_off : 0, n.csum_flag) ||
	    !nat_set_port(skb, &n, k.port_be, port))
		return MP_DROP_STORE;
	return MP_DROP_NONE;
}

/* encap: an ICMP error from a LAN host about a packet it received (nat_icmp_xlate, out). */
__noinline int mp_nat_icmp_error_out(struct __sk_buff *skb)
{
	return nat_icmp_xlate(skb, true);
}
#else
/* decap (LP): an ICMP error to the client address about a LAN flow (nat_icmp_xlate, in). */
__noinline int mp_nat_icmp_error(struct __sk_buff *skb)
{
	return nat_icmp_xlate(skb, false);
}

/* decap (LP): a packet to the client address of a family with LAN prefixes goes to the LAN host
 * of its port forward or its flow. Returns 0 (translated, or not for the NAT), a drop reason, or
 * NAT_ICMP_ERROR: an ICMP error, which mp_nat_icmp_error() translates. */
__noinline int mp_nat_decap(struct __sk_buff *skb)
{
	const struct mp_config *cfg = config_get();
	struct mp_nat_key k = {};
	__u32 dst[4], lan[4];
	struct nat_l4 n;
	enum mp_drop_reason r;
	__be16 port;
	struct l3 p;

	if (!cfg || !parse_l3(skb, &p) || p.truncated || !nat_family(cfg, p.family))
		return MP_DROP_NONE;
	if (!load_addr(skb, l3_daddr_off(&p), p.family, dst) ||
	    !in_prefix(dst, p.family == 4 ? &cfg->client_v4 : &cfg->client_v6, p.family))
		return MP_DROP_NONE;
	if (p.later_frag)
		return MP_DROP_NAT_FRAG;
	if (nat_icmp_error(skb, &p)) /* the caller calls mp_nat_icmp_error(): a frame less deep */
		return NAT_ICMP_ERROR;
	r = nat_l4(skb, &p, false, &n);
	if (r != MP_DROP_NONE)
		return r;
	if (!nat_key(skb, &p, &n, dst, &k))
		return MP_DROP_NAT_MISS;
	if (!nat_inbound(&k, lan, &port, true, nat_tcp_flags(skb, &p)))
		return MP_DROP_NAT_MISS;
	if (!nat_set_addr(skb, &p, l3_daddr_off(&p), dst, lan, n.pseudo ? n.csum_off : 0, n.csum_flag) ||
	    !nat_set_port(skb, &n, k.port_be, port))
		return MP_DROP_STORE;
	return MP_DROP_NONE;
}

/* decap (LP, bond_local): a packet translated (mp_nat_decap, mp_nat_icmp_error) to the LP's own
 * address goes into its stack at the bond device's ingress, where its route back to the sender
 * points (rp_filter, firewalls), addressed to that device's MAC. A global function of its own:
 * decap's frame and the translations' are full. Returns the verdict, or NAT_NOT_LOCAL. */
__noinline int mp_nat_local(struct __sk_buff *skb)
{
	const struct mp_config *cfg = config_get();
	struct ethhdr *eth;
	void *data, *end;
	__u32 dst[4];
	struct l3 p;

	if (!cfg || !parse_l3(skb, &p) || !load_addr(skb, l3_daddr_off(&p), p.family, dst) ||
	    !nat_is_local(cfg, dst, p.family))
		return NAT_NOT_LOCAL;
	data = PKT_DATA(skb);
	end = PKT_END(skb);
	eth = data;
	if ((void *)(eth + 1) > end)
		return mp_drop(MP_DROP_STORE);
	__builtin_memcpy(eth->h_dest, cfg->local_mac, ETH_ALEN);
	return mp_redirected(bpf_redirect(cfg->local_ifindex, BPF_F_INGRESS));
}
#endif /* MP_NAT_ENCAP */

#endif /* MP_NAT_H */
