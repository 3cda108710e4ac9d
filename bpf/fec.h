/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fec.h — loss recovery inside the bond (README "Running a bond", Loss recovery): XOR parity over groups of a link's
 * data packets, so that a link's random loss does not reach the end hosts as congestion.
 *
 * Sender (encap), on a link with MP_LINK_F_FEC: every data packet of at most MP_FEC_MAX inner
 * bytes carries MP_HDR_F_FEC and is XORed (zero-padded) into its group's accumulator,
 * mp_fec_tx[link * 2 + (group & 1)], group = link_seq / MP_FEC_K, with its length and seq. The
 * group's last packet (link_seq % MP_FEC_K == MP_FEC_K - 1) asks for the parity: a clone of it
 * goes back into the device it came from (bpf_clone_redirect, BPF_F_INGRESS) with skb->mark =
 * MP_FEC_MARK | link << 1 | (group & 1). encap takes the clone first thing, rewrites it into the
 * accumulator's bytes (its header says which group, mp.h) and sends it as an MP_T_FEC message
 * on the same link (schedule_on: the link's queue and byte count include it). A clone, because a tc program can
 * send one packet per skb; the device's ingress, because encap's step 6 (bpf_redirect_neigh)
 * resolves the link's next hop, which bpf_clone_redirect to the link does not. The two slots per
 * link let group g + 1 fill while g's parity waits in the backlog.
 *
 * Receiver (decap): every authentic data packet with MP_HDR_F_FEC is XORed into
 * mp_fec_rx[link * 4 + (group & 3)]. An authentic parity whose group misses exactly one packet
 * (count == the packets seen + 1) is XORed with that accumulator in place: the result is the
 * lost inner packet (trimmed to its length; its seq enters the replay window), which decap then
 * delivers as any data packet. A link may reorder (a sender or receiver whose packets of one
 * link cross two CPUs, a radio link's retransmissions): the parity then comes before a packet
 * that was only late. The original coming after its rebuild is dropped as MP_DROP_FEC_LATE
 * (the accumulator remembers the seq it rebuilt), not as a replay, and counts as delivered by
 * its link; a rebuild whose seq the window already saw (the packet came, but two CPUs adding at
 * once lost it from the accumulator) is MP_DROP_FEC_SPARE. Other parities are dropped as
 * MP_DROP_FEC_SPARE.
 *
 * Why parity and not retransmission or duplication (README, "Loss recovery"): duplication of a
 * lossy link's packets halves what it can carry (2 × 20 Mbit with 1 % loss on one: at most 75 %
 * of the sum), retransmission needs a NACK from the receiver's data path and a store of every
 * packet sent, both a round trip late; one parity per 4 packets costs 1/5 of the link and
 * leaves a loss of p × (1 − (1 − p)^4) ≈ 0.039 % at p = 1 %, with no round trip (groups of 8
 * cost 1/9 but left 0.077 %, too much for one CUBIC flow: README). Per link and on
 * the same link: a link's packets arrive in order, so the parity comes after its group, and the
 * lossy link pays for its own protection.
 *
 * Checksums: the bytes are XORed as the sender's stack hands them over. A packet whose L4
 * checksum is left to offload (CHECKSUM_PARTIAL: a veth or a local sender) holds the
 * pseudo-header sum there; the rebuilt one has the same bytes and inherits the parity's state,
 * which is that of its group's last packet: right when the group's packets share the state and
 * header layout, which a flow's packets do.
 */
#ifndef MP_FEC_H
#define MP_FEC_H

#include "maps.h"
#include "parse.h"
#include "loop.h"
#include "csum.h"
#include "replay.h"

#define MP_FEC_MARK 0x6d70fe00U /* | link << 1 | (group & 1): a parity request (low 5 bits) */
#define MP_FEC_MARK_MASK 0xffffffe0U
#define FEC_CHUNK 256
#define MP_REPLAY_DATA_CLASS 0 /* mp.h: data and parities share replay class 0 */

_Static_assert((MP_FEC_K & (MP_FEC_K - 1)) == 0, "link_seq wraps at 2^32: groups must divide it");
_Static_assert(MP_FEC_MAX % FEC_CHUNK == 0, "whole chunks");
_Static_assert(MP_MAX_LINKS <= 16, "the link id fits the mark's 4 bits");

enum fec_op {
	FEC_XOR_IN = 0, /* acc ^= packet (a data packet joins its group) */
	FEC_STORE = 1,  /* packet = acc (the sender writes the parity) */
	FEC_XOR_OUT = 2, /* packet ^= acc (the receiver rebuilds the lost packet) */
};

/* bpf_loop state: the packet range [off, off + len) and the accumulator. The packet is linear
 * (the caller pulled it) and writable where it is written. */
struct fec_walk {
	struct __sk_buff *skb;
	struct mp_fec_acc *acc;
	__u32 off;
	__u32 len;
	__u32 op;
	__u32 failed;
};

static __always_inline void fec_word(__u64 *a, __u8 *p, __u32 op)
{
	if (op == FEC_XOR_IN)
		*a ^= *(__u64 *)p;
	else if (op == FEC_STORE)
		*(__u64 *)p = *a;
	else
		*(__u64 *)p ^= *a;
}

static __always_inline void fec_byte(__u8 *a, __u8 *p, __u32 op)
{
	if (op == FEC_XOR_IN)
		*a ^= *p;
	else if (op == FEC_STORE)
		*p = *a;
	else
		*p ^= *a;
}

/* bpf_loop callback: chunk `index` (256 bytes) of the range, or the tail. 1 stops. */
static long fec_chunk(__u64 index, void *ctx)
{
	struct fec_walk *w = ctx;
	void *data = PKT_DATA(w->skb), *end = PKT_END(w->skb);
	__u32 rel = (__u32)index * FEC_CHUNK, off = w->off + rel, left, words, rem, op = w->op;
	__u8 *p, *a;

	if (rel >= w->len)
		return 1;
	asm volatile("" : "+r"(index));
	if (index >= MP_FEC_MAX / FEC_CHUNK || off > 0x7fff)
		goto fail;
	a = w->acc->bytes + index * FEC_CHUNK;
	p = data + off;
	left = w->len - rel;
	if (left >= FEC_CHUNK) {
		if ((void *)(p + FEC_CHUNK) > end)
			goto fail;
#pragma unroll
		for (int i = 0; i < FEC_CHUNK / 8; i++)
			fec_word((__u64 *)(a + 8 * i), p + 8 * i, op);
		return 0;
	}
	words = left / 8;
	rem = left % 8;
#pragma unroll
	for (__u32 i = 0; i < FEC_CHUNK / 8 - 1; i++) {
		if (i < words) {
			if ((void *)(p + 8 * (i + 1)) > end)
				goto fail;
			fec_word((__u64 *)(a + 8 * i), p + 8 * i, op);
		}
	}
	asm volatile("" : "+r"(words));
	words &= FEC_CHUNK / 8 - 1;
	p += 8 * words;
	a += 8 * words;
#pragma unroll
	for (__u32 j = 0; j < 7; j++) {
		if (j < rem) {
			if ((void *)(p + j + 1) > end)
				goto fail;
			fec_byte(a + j, p + j, op);
		}
	}
	return 1;
fail:
	w->failed = 1;
	return 1;
}

/* Apply op to the len bytes at off (len <= MP_FEC_MAX). */
static __always_inline bool fec_walk(struct __sk_buff *skb, struct mp_fec_acc *acc, __u32 off, __u32 len,
				     __u32 op)
{
	struct fec_walk w = { .skb = skb, .acc = acc, .off = off, .len = len, .op = op };

	if (len > MP_FEC_MAX || off > 0x7fff)
		return false;
	if (PKT_DATA(skb) + off + len > PKT_END(skb) && bpf_skb_pull_data(skb, off + len))
		return false;
	bpf_loop(len / FEC_CHUNK + 1, fec_chunk, &w, 0);
	return !w.failed;
}

/* bpf_loop callback: zero 256 bytes of an accumulator. */
static long fec_zero_chunk(__u64 index, void *ctx)
{
	struct mp_fec_acc *acc = ((struct fec_walk *)ctx)->acc;
	__u64 *a;

	asm volatile("" : "+r"(index));
	if (index >= MP_FEC_MAX / FEC_CHUNK)
		return 1;
	a = (__u64 *)(acc->bytes + index * FEC_CHUNK);
#pragma unroll
	for (int i = 0; i < FEC_CHUNK / 8; i++)
		a[i] = 0;
	return 0;
}

/* The accumulator of link `id`'s group `group` in map `m` with `slots` entries per link, emptied
 * for the group if it held an older one. */
static __always_inline struct mp_fec_acc *fec_acc(void *m, __u32 slots, __u32 id, __u32 group)
{
	__u32 key = (id & (MP_MAX_LINKS - 1)) * slots + (group & (slots - 1));
	struct mp_fec_acc *acc = bpf_map_lookup_elem(m, &key);
	struct fec_walk w = {};

	if (!acc || acc->group == group)
		return acc;
	w.acc = acc;
	bpf_loop(MP_FEC_MAX / FEC_CHUNK, fec_zero_chunk, &w, 0);
	acc->group = group;
	acc->count = 0;
	acc->seq_xor = 0;
	acc->max_len = 0;
	acc->taint = 0;
	acc->rebuilt = 0;
	return acc;
}

/* Add the packet at off (len bytes, seq) to acc. */
static __always_inline void fec_add(struct __sk_buff *skb, struct mp_fec_acc *acc, __u32 off, __u32 len,
				    __u32 seq)
{
	if (len > MP_FEC_MAX || !fec_walk(skb, acc, off, len, FEC_XOR_IN)) {
		acc->taint = 1;
		return;
	}
	acc->count++;
	acc->seq_xor ^= seq;
	if (len > acc->max_len)
		acc->max_len = len;
}

static __always_inline struct mp_fec_stats *fec_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&mp_fec_stats, &zero);
}

/* ---- sender (encap.c defines MP_FEC_SENDER: its global functions live in one unit) ---- */
#ifdef MP_FEC_SENDER

/* encap: the inner packet (after the Ethernet header) with seq / link_seq on link id joins its
 * group; at the group's last packet a parity is requested (a clone back into the device).
 * A global (noinline) function, verified once rather than for every state of encap. */
__attribute__((noinline)) int mp_fec_add_tx(struct __sk_buff *skb, __u64 id, __u64 seq, __u64 link_seq)
{
	__u32 group = (__u32)link_seq / MP_FEC_K, mark;
	struct mp_fec_acc *acc = fec_acc(&mp_fec_tx, MP_FEC_TX_SLOTS, id, group);

	if (!skb || !acc)
		return 0;
	fec_add(skb, acc, ETH_HLEN, skb->len - ETH_HLEN, seq);
	if ((__u32)link_seq % MP_FEC_K != MP_FEC_K - 1 || acc->taint || !acc->count)
		return 0;
	mark = skb->mark;
	set_mark(skb, MP_FEC_MARK | (id & (MP_MAX_LINKS - 1)) << 1 | (group & 1));
	bpf_clone_redirect(skb, skb->ifindex, BPF_F_INGRESS);
	set_mark(skb, mark);
	return 1;
}

/* encap: is this a parity request (fec_tx's clone)? Returns its link id and takes the mark. */
static __always_inline bool fec_parity_request(struct __sk_buff *skb, __u32 *id, __u32 *slot)
{
	__u32 mark = skb->mark;

	if ((mark & MP_FEC_MARK_MASK) != MP_FEC_MARK)
		return false;
	*id = (mark >> 1) & (MP_MAX_LINKS - 1);
	*slot = mark & 1;
	set_mark(skb, 0);
	return true;
}

/* encap: rewrite the request into the parity of link id's group in slot, and fill in what
 * its header says about the group (mp.h). Returns the parity's length after the Ethernet
 * header, 0 if there is none to send. A global (noinline) function, verified once. */
__attribute__((noinline)) int mp_fec_build_parity(struct __sk_buff *skb, __u64 id, __u64 slot, struct mp_hdr *h)
{
	__u32 key = (id & (MP_MAX_LINKS - 1)) * MP_FEC_TX_SLOTS + (slot & 1), len;
	struct mp_fec_acc *acc = bpf_map_lookup_elem(&mp_fec_tx, &key);
	struct mp_fec_stats *st;

	if (!skb || !h || !acc || acc->taint || !acc->count || acc->count > MP_FEC_K || !acc->max_len ||
	    acc->max_len > MP_FEC_MAX)
		return 0;
	len = acc->max_len;
	h->link_seq = bpf_htonl(acc->group);
	h->ts_us = bpf_htonl(acc->seq_xor);
	h->flags = MP_HDR_F_FEC | acc->count << MP_HDR_FEC_COUNT_SHIFT;
	if (bpf_skb_change_tail(skb, ETH_HLEN + len, 0) || bpf_skb_pull_data(skb, ETH_HLEN + len))
		return 0;
	if (!fec_walk(skb, acc, ETH_HLEN, len, FEC_STORE))
		return 0;
	st = fec_stats();
	if (st)
		st->parity_tx++;
	return len;
}

#endif /* MP_FEC_SENDER */

/* ---- receiver ---- */

static __always_inline void fec_count_rebuilt(void)
{
	struct mp_fec_stats *st = fec_stats();

	if (st)
		st->rebuilt++;
}

/* ---- receiver (its global functions are decap.c's: not built in the sender's unit) ---- */

#ifndef MP_FEC_SENDER
/* decap: an authentic data packet with MP_HDR_F_FEC (inner packet at off, len bytes) of link
 * id joins its group. A global (noinline) function, verified once rather than for every
 * state of decap. Returns 0. */
__attribute__((noinline)) int mp_fec_join(struct __sk_buff *skb, __u64 id, const struct mp_hdr *h, __u64 off,
					__u64 len)
{
	struct mp_fec_acc *acc;

	if (!skb || !h)
		return 0;
	acc = fec_acc(&mp_fec_rx, MP_FEC_RX_SLOTS, id, bpf_ntohl(h->link_seq) / MP_FEC_K);
	if (acc)
		fec_add(skb, acc, off, len, bpf_ntohl(h->seq));
	return 0;
}
#endif /* !MP_FEC_SENDER */

/* The length an inner packet's IP header at off gives (0: not IPv4/IPv6, or an IPv4 header
 * whose checksum is wrong: a spoiled group, which the length alone would rarely show). */
static __always_inline __u32 fec_ip_len(struct __sk_buff *skb, __u32 off)
{
	struct iphdr ip;
	__u8 *b = (__u8 *)&ip;

	if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
		return 0;
	if ((b[0] >> 4) == 4)
		return b[0] != 0x45 || ipv4_hdr_csum(&ip) == 0 ? (__u32)b[2] << 8 | b[3] : 0; /* options: unchecked */
	if ((b[0] >> 4) == 6)
		return 40 + ((__u32)b[4] << 8 | b[5]);
	return 0;
}

/* decap: the receive accumulator of link id's group `group`, as it is (fec_acc empties it for a
 * new group; the parity and a late original only read it). */
static __always_inline struct mp_fec_acc *fec_rx_slot(__u32 id, __u32 group)
{
	__u32 key = (id & (MP_MAX_LINKS - 1)) * MP_FEC_RX_SLOTS + (group & (MP_FEC_RX_SLOTS - 1));

	return bpf_map_lookup_elem(&mp_fec_rx, &key);
}

#ifndef MP_FEC_SENDER
/* What mp_fec_rebuild is asked and answers (a global function takes five arguments at most). */
struct fec_job {
	__u32 id;     /* the parity's link */
	__u32 off;    /* where its body starts */
	__u32 end;    /* where its body ends; answered: where the rebuilt packet ends */
	__u32 seq;    /* answered: the rebuilt packet's seq */
	__u32 replay; /* the seq enters the replay window of h's key (authentication is on) */
};

/*
 * decap: an authentic parity (header h) of link j->id, body at j->off up to j->end. Rebuilds the
 * lost packet of its group in place (j->end becomes the rebuilt packet's end, j->seq its seq;
 * with j->replay, the seq enters the replay window of h's key) or returns the reason to drop
 * the parity. A global (noinline) function, verified once.
 */
__attribute__((noinline)) int mp_fec_rebuild(struct __sk_buff *skb, const struct mp_hdr *h, struct fec_job *j)
{
	struct mp_fec_stats *st = fec_stats();
	__u32 count, group, len, max_len, id, off, *end, *seq;
	bool replay;
	struct mp_fec_acc *acc;

	if (!skb || !h || !j)
		return MP_DROP_FEC_BAD;
	count = h->flags >> MP_HDR_FEC_COUNT_SHIFT;
	group = bpf_ntohl(h->link_seq);
	id = j->id;
	off = j->off;
	end = &j->end;
	seq = &j->seq;
	replay = j->replay;
	if (st)
		st->parity_rx++;
	if (!(h->flags & MP_HDR_F_FEC) || !count || count > MP_FEC_K || *end <= off)
		return MP_DROP_FEC_BAD;
	max_len = *end - off;
	if (max_len > MP_FEC_MAX)
		return MP_DROP_FEC_BAD;
	acc = fec_rx_slot(id, group);
	if (!acc)
		return MP_DROP_FEC_BAD;
	if (acc->group != group || acc->taint || acc->count + 1 != count)
		return MP_DROP_FEC_SPARE; /* nothing lost, more than one, or a group we did not see */
	if (!fec_walk(skb, acc, off, max_len, FEC_XOR_OUT))
		return MP_DROP_FEC_BAD;
	acc->count++; /* rebuilt: a second copy of this parity is spare */
	len = fec_ip_len(skb, off);
	if (len < 20 || len > max_len)
		return MP_DROP_FEC_BAD;
	*seq = bpf_ntohl(h->ts_us) ^ acc->seq_xor;
	/* the group's packets were sent before their parity, and not a window earlier: anything
	 * else is a spoiled group, whose seq must not move the replay window */
	if ((__s32)(bpf_ntohl(h->seq) - *seq) <= 0 || bpf_ntohl(h->seq) - *seq >= MP_REPLAY_WINDOW)
		return MP_DROP_FEC_BAD;
	if (replay && !replay_accept(h->key_id * MP_REPLAY_CLASSES + MP_REPLAY_DATA_CLASS, *seq))
		return MP_DROP_FEC_SPARE; /* it came after all; the accumulator missed it */
	acc->rebuilt = 1;
	acc->rebuilt_seq = *seq;
	if (len < max_len && bpf_skb_change_tail(skb, off + len, 0))
		return MP_DROP_FEC_BAD;
	*end = off + len;
	return MP_DROP_NONE;
}
#endif /* !MP_FEC_SENDER */

/* decap: did the parity of h's group (an authentic data packet with MP_HDR_F_FEC that the
 * replay window refused) rebuild this very packet before it came? */
static __always_inline bool fec_rebuilt(const struct mp_hdr *h)
{
	__u32 group = bpf_ntohl(h->link_seq) / MP_FEC_K;
	struct mp_fec_acc *acc;

	if (h->link_id >= MP_MAX_LINKS)
		return false;
	acc = fec_rx_slot(h->link_id, group);
	return acc && acc->group == group && acc->rebuilt && acc->rebuilt_seq == bpf_ntohl(h->seq);
}

#endif /* MP_FEC_H */
