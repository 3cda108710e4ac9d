/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nh.h — the packet MAC of mp.h ("authentication"): NH over the body, SipHash-2-4 over the
 * header, the body's length and the two NH sums. Byte for byte the tag src/security/mac.ts
 * computes.
 *
 * The body is read in place by a bpf_loop callback, 256 bytes (16 NH blocks) per iteration
 * (the verifier checks the callback once, whatever the packet length), the tail (< 256 bytes)
 * in the last iteration: its whole blocks, then its last 0..15 bytes zero-padded. A paged skb
 * is made linear first: one bpf_skb_pull_data rather than a bpf_skb_load_bytes per chunk. Per
 * 16-byte block NH costs 8 32-bit additions, 4 64-bit multiplications and 4 additions for both
 * passes, against 4 SipHash compressions (~110 instructions, rotations as shift, shift, or).
 */
#ifndef MP_NH_H
#define MP_NH_H

#include "mp.h"
#include "parse.h"
#include "siphash.h"

#define NH_CHUNK 256           /* body bytes per bpf_loop iteration; divides MP_NH_MAX_BODY */
#define NH_DIRECT_MAX 0x7fff   /* packet offsets stay under 32 KiB for the verifier's ranges */

/* bpf_loop state: both NH sums, the key stream, where the body starts and ends. The callback
 * derives its chunk's offset from its index rather than from a running offset here: a value
 * that changed every iteration, and that the verifier must track exactly (it moves a packet
 * pointer), would keep the callback's states from converging. */
struct nh_walk {
	__u64 a1, a2;
	struct __sk_buff *skb;
	const __u32 *k; /* mp_key.nh */
	__u32 start;
	__u32 len;
	__u32 failed;
};

/* One 16-byte block (words m0..m3) with the key words k[0..7]: pass 1 takes k[0..3], pass 2
 * k[4..7]. */
static __always_inline void nh_block(__u64 *a1, __u64 *a2, __u32 m0, __u32 m1, __u32 m2, __u32 m3,
				     const __u32 *k)
{
	*a1 += (__u64)(__u32)(m0 + k[0]) * (__u32)(m2 + k[2]) +
	       (__u64)(__u32)(m1 + k[1]) * (__u32)(m3 + k[3]);
	*a2 += (__u64)(__u32)(m0 + k[4]) * (__u32)(m2 + k[6]) +
	       (__u64)(__u32)(m1 + k[5]) * (__u32)(m3 + k[7]);
}

/* The whole block at p (in the packet). */
static __always_inline void nh_block_at(__u64 *a1, __u64 *a2, const __u8 *p, const __u32 *k)
{
	__u64 lo = *(const __u64 *)p, hi = *(const __u64 *)(p + 8);

	nh_block(a1, a2, (__u32)lo, (__u32)(lo >> 32), (__u32)hi, (__u32)(hi >> 32), k);
	/* one block at a time: hoisting the loads of all 16 blocks would spill beyond the stack */
	asm volatile("" ::: "memory");
}

/*
 * bpf_loop callback: chunk `index` (256 bytes) of the body, or, once fewer are left, the tail:
 * its whole blocks, and its last 0..15 bytes as a zero-padded block. Returns 1 to stop.
 */
static long nh_chunk(__u64 index, void *ctx)
{
	struct nh_walk *w = ctx;
	void *data = PKT_DATA(w->skb), *end = PKT_END(w->skb);
	__u32 rel = (__u32)index * NH_CHUNK; /* offset in the body */
	__u32 off = w->start + rel, left, blocks, rem;
	const __u8 *p, *q;
	const __u32 *k;
	__u64 a1 = w->a1, a2 = w->a2, lo = 0, hi = 0;

	if (rel >= w->len)
		return 1; /* the body was a whole number of chunks: nothing left */
	/* never true for rel < len <= MP_NH_MAX_BODY; tells the verifier where the key words are
	 * (the bound is checked on the register the key pointer is then computed from) */
	asm volatile("" : "+r"(index));
	if (index > MP_NH_MAX_BODY / NH_CHUNK - 1 || off > NH_DIRECT_MAX)
		goto fail;
	k = w->k + index * (NH_CHUNK / 4);
	p = data + off;
	left = w->len - rel;
	if (left >= NH_CHUNK) {
		if ((void *)(p + NH_CHUNK) > end)
			goto fail; /* mp_mac made it linear */
#pragma unroll
		for (int i = 0; i < NH_CHUNK / 16; i++)
			nh_block_at(&a1, &a2, p + 16 * i, k + 4 * i);
		w->a1 = a1;
		w->a2 = a2;
		return 0;
	}
	blocks = left / 16;
	rem = left % 16;
#pragma unroll
	for (__u32 i = 0; i < NH_CHUNK / 16 - 1; i++) {
		if (i < blocks) {
			if ((void *)(p + 16 * (i + 1)) > end)
				goto fail;
			nh_block_at(&a1, &a2, p + 16 * i, k + 4 * i);
		}
	}
	if (rem) {
		asm volatile("" : "+r"(blocks)); /* keep the mask: the verifier cannot see left < 256 */
		blocks &= NH_CHUNK / 16 - 1;
		q = p + 16 * blocks;
#pragma unroll
		for (__u32 j = 0; j < 8; j++) {
			if (j < rem) {
				if ((void *)(q + j + 1) > end)
					goto fail;
				lo |= (__u64)q[j] << (8 * j);
			}
		}
#pragma unroll
		for (__u32 j = 8; j < 15; j++) {
			if (j < rem) {
				if ((void *)(q + j + 1) > end)
					goto fail;
				hi |= (__u64)q[j] << (8 * (j - 8));
			}
		}
		nh_block(&a1, &a2, (__u32)lo, (__u32)(lo >> 32), (__u32)hi, (__u32)(hi >> 32),
			 k + 4 * blocks);
	}
	w->a1 = a1;
	w->a2 = a2;
	return 1;
fail:
	w->failed = 1;
	return 1;
}

/* What mp_mac is asked (the body's place) and answers (the tag): a global function takes five
 * arguments at most. */
struct mp_mac_job {
	__u32 body_off;
	__u32 body_len;
	__u64 tag;
};

/*
 * The tag of the message whose header is *h (its tag ignored) and whose body is the
 * j->body_len bytes at j->body_off in the skb, under key *k, into j->tag. Returns 0, or -1 for
 * no tag (the body is longer than MP_NH_MAX_BODY, or the skb is shorter than the caller said,
 * or could not be made linear). May pull data into the linear part: packet pointers are
 * invalid afterwards.
 *
 * A global (noinline) function, verified once on its own: inlined, its bpf_loop callback was
 * walked again for every state of every caller that reached it (decap: 44 % of its verifier
 * work). __weak: both units define it, libbpf's linker keeps one.
 */
__attribute__((noinline)) __weak int mp_mac(struct __sk_buff *skb, const struct mp_key *k,
					    const struct mp_hdr *h, struct mp_mac_job *j)
{
	struct nh_walk w = {};
	struct sip s;
	__u64 hw[2];
	__u32 body_off, body_len;

	if (!skb || !k || !h || !j)
		return -1;
	body_off = j->body_off;
	body_len = j->body_len;
	if (body_len > MP_NH_MAX_BODY || body_off > NH_DIRECT_MAX - body_len)
		return -1;
	/* Whole chunks are read in place: a paged skb's data is pulled into its linear part first.
	 * One copy is cheaper than a bpf_skb_load_bytes per chunk, and the rest of the path takes
	 * a linear skb as well. */
	if (PKT_DATA(skb) + body_off + body_len > PKT_END(skb) &&
	    bpf_skb_pull_data(skb, body_off + body_len))
		return -1;
	w.skb = skb;
	w.k = k->nh;
	w.start = body_off;
	w.len = body_len;
	/* every whole chunk, then the tail (possibly empty) */
	bpf_loop(body_len / NH_CHUNK + 1, nh_chunk, &w, 0);
	if (w.failed)
		return -1;

	sip_init(&s, k->key);
	__builtin_memcpy(hw, h, sizeof(hw)); /* ver_type .. ts_us: the first 16 bytes */
	sip_word(&s, hw[0]);
	sip_word(&s, hw[1]);
	sip_word(&s, 0); /* the tag, zeroed */
	sip_word(&s, body_len);
	sip_word(&s, w.a1);
	sip_word(&s, w.a2);
	j->tag = sip_final(&s, (__u64)(MP_HDR_LEN + 24) << 56); /* 48 bytes, no tail */
	return 0;
}

#endif /* MP_NH_H */
