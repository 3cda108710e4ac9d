/* SPDX-License-Identifier: GPL-2.0 */
/*
 * siphash.h — SipHash-2-4 of an mpctl message in the skb: the packet MAC of mp.h
 * ("authentication"), byte for byte the tag src/security/mac.ts computes.
 *
 * The message is the 24-byte mp_hdr with its tag zeroed, then the body (the inner packet, or a
 * control message's payload) to the end of the datagram. The header is three 8-byte words
 * (the third is the tag, absorbed as 0), so the body starts word-aligned and is read in place
 * by a bpf_loop callback, 64 bytes per iteration (the verifier checks the callback once,
 * whatever the packet length), the tail (< 64 bytes) in the last iteration. A paged skb is
 * made linear first: one bpf_skb_pull_data instead of a bpf_skb_load_bytes per chunk (which
 * cost 0.71-0.79 ns/byte in all against 0.63-0.68 in place, PROG_TEST_RUN, test/datapath).
 * What remains is SipHash itself: 2 rounds of 14 operations per 8 bytes, with rotations the
 * JIT emits as shift, shift, or. Messages up to 32 KiB (SIP_DIRECT_MAX) can be hashed.
 *
 * The caller passes the header as a struct mp_hdr: encap signs before the header is pushed
 * (the tag then goes into the header it writes), decap verifies with the copy it already took.
 */
#ifndef MP_SIPHASH_H
#define MP_SIPHASH_H

#include "mp.h"
#include "parse.h"

#define SIP_CHUNK 64          /* bytes per bpf_loop iteration (256 measured no faster) */
#define SIP_DIRECT_MAX 0x7fff /* end of the hashed bytes: the verifier's packet ranges stay
			       * under 64 KiB */

struct sip {
	__u64 v0, v1, v2, v3;
};

#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static __always_inline void sip_round(struct sip *s)
{
	s->v0 += s->v1;
	s->v1 = SIP_ROTL(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = SIP_ROTL(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = SIP_ROTL(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = SIP_ROTL(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = SIP_ROTL(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = SIP_ROTL(s->v2, 32);
}

/* Absorb one little-endian message word (2 compression rounds). */
static __always_inline void sip_word(struct sip *s, __u64 m)
{
	s->v3 ^= m;
	sip_round(s);
	sip_round(s);
	s->v0 ^= m;
}

/* k0 = key bytes 0..7, k1 = bytes 8..15, both little-endian (BPF runs little-endian here). */
static __always_inline void sip_init(struct sip *s, const __u8 *key)
{
	__u64 k0, k1;

	__builtin_memcpy(&k0, key, 8);
	__builtin_memcpy(&k1, key + 8, 8);
	s->v0 = 0x736f6d6570736575ULL ^ k0;
	s->v1 = 0x646f72616e646f6dULL ^ k1;
	s->v2 = 0x6c7967656e657261ULL ^ k0;
	s->v3 = 0x7465646279746573ULL ^ k1;
}

/* The last word (the message's remaining bytes, its length's low byte on top), 4 rounds. */
static __always_inline __u64 sip_final(struct sip *s, __u64 last)
{
	sip_word(s, last);
	s->v2 ^= 0xff;
	sip_round(s);
	sip_round(s);
	sip_round(s);
	sip_round(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/* bpf_loop state: the hash state, where the body starts and ends. The callback derives its
 * chunk's offset from its index rather than from a running offset here: a value that changed
 * every iteration, and that the verifier must track exactly (it moves a packet pointer), would
 * keep the callback's states from converging. */
struct sip_walk {
	struct sip s;
	struct __sk_buff *skb;
	__u32 start;
	__u32 end;
	__u64 last;   /* the final word, once the tail is in */
	__u32 failed;
};

/*
 * bpf_loop callback: absorb chunk `index` (64 bytes), or, once fewer are left, the tail: its
 * whole words, and its last 0..7 bytes as the final word (zero-padded). Returns 1 to stop.
 */
static long sip_chunk(__u64 index, void *ctx)
{
	struct sip_walk *w = ctx;
	void *data = PKT_DATA(w->skb), *end = PKT_END(w->skb);
	__u32 off = w->start + (__u32)index * SIP_CHUNK;
	const __u8 *p = data + (off & SIP_DIRECT_MAX), *q;
	__u32 left = w->end - off, words, rem;
	struct sip s = w->s;
	__u64 last = 0;

	if (off > SIP_DIRECT_MAX || off > w->end)
		goto fail;
	if (left >= SIP_CHUNK) {
		if ((void *)(p + SIP_CHUNK) > end)
			goto fail; /* mp_mac made it linear */
#pragma unroll
		for (int i = 0; i < SIP_CHUNK / 8; i++)
			sip_word(&s, *(const __u64 *)(p + 8 * i));
		w->s = s;
		return 0;
	}
	/* the tail: its whole words, then its last 0..7 bytes as the final word, zero-padded */
	words = left / 8;
	rem = left % 8;
#pragma unroll
	for (__u32 i = 0; i < SIP_CHUNK / 8 - 1; i++) {
		if (i < words) {
			if ((void *)(p + 8 * (i + 1)) > end)
				goto fail;
			sip_word(&s, *(const __u64 *)(p + 8 * i));
		}
	}
	q = p + (words & (SIP_CHUNK / 8 - 1)) * 8;
#pragma unroll
	for (__u32 j = 0; j < 7; j++) {
		if (j < rem) {
			if ((void *)(q + j + 1) > end)
				goto fail;
			last |= (__u64)q[j] << (8 * j);
		}
	}
	w->s = s;
	w->last = last;
	return 1;
fail:
	w->failed = 1;
	return 1;
}

/*
 * The tag of the message whose header is *h (its tag ignored) and whose body is the body_len
 * bytes at body_off in the skb, under the 16-byte key. false: the body could not be read (the
 * skb is shorter than the caller said, or could not be made linear, or ends beyond 32 KiB).
 * May pull data into the linear part: packet pointers are invalid afterwards.
 */
static __always_inline bool mp_mac(struct __sk_buff *skb, const __u8 *key, const struct mp_hdr *h,
				   __u32 body_off, __u32 body_len, __u64 *tag)
{
	struct sip_walk w = { .skb = skb, .start = body_off, .end = body_off + body_len };
	__u64 hw[2];

	if (body_len > SIP_DIRECT_MAX || body_off > SIP_DIRECT_MAX - body_len)
		return false;
	/* Whole chunks are read in place: a paged skb's data is pulled into its linear part first.
	 * One copy is cheaper than a bpf_skb_load_bytes per chunk, and the rest of the path takes
	 * a linear skb as well. */
	if (PKT_DATA(skb) + body_off + body_len > PKT_END(skb) &&
	    bpf_skb_pull_data(skb, body_off + body_len))
		return false;
	sip_init(&w.s, key);
	__builtin_memcpy(hw, h, sizeof(hw)); /* ver_type .. ts_us: the first 16 bytes */
	sip_word(&w.s, hw[0]);
	sip_word(&w.s, hw[1]);
	sip_word(&w.s, 0); /* the tag, zeroed */

	/* every whole chunk, then the tail (possibly empty) */
	bpf_loop(body_len / SIP_CHUNK + 1, sip_chunk, &w, 0);
	if (w.failed)
		return false;
	*tag = sip_final(&w.s, w.last | (__u64)((MP_HDR_LEN + body_len) & 0xff) << 56);
	return true;
}

#endif /* MP_SIPHASH_H */
