/* SPDX-License-Identifier: GPL-2.0 */
/*
 * siphash.h — SipHash-2-4 (Aumasson & Bernstein) over whole 8-byte words: the PRF that
 * finishes the packet MAC (nh.h, mp.h "authentication"), byte for byte src/security/siphash.ts.
 * The caller absorbs its words with sip_word and ends with sip_final (the message's last 0..7
 * bytes zero-padded, its length's low byte on top).
 */
#ifndef MP_SIPHASH_H
#define MP_SIPHASH_H

#include "mp.h" /* the types, __always_inline */

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

#endif /* MP_SIPHASH_H */
