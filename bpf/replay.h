/* SPDX-License-Identifier: GPL-2.0 */
/*
 * replay.h — the per-(key id, class) sliding replay window of mp.h: WireGuard's algorithm
 * (noise_replay_counter / RFC 6479) over MP_REPLAY_WORDS 64-bit words.
 *
 * A seq is accepted when it is ahead of top (serial-number arithmetic: (s32)(seq - top) > 0,
 * so the window keeps working when seq wraps at 2^32), or when it is less than
 * MP_REPLAY_WINDOW behind top and not seen yet. Advancing top clears the words between the old
 * top's word and the new one; the one word more than the window needs (33 × 64 − 64 = 2048)
 * is what lets whole words be cleared without losing a seq still inside the window.
 *
 * Bits are a ring: `pos` is top's bit, and seq top − k is bit pos − k (mod the ring). Keeping
 * pos (rather than seq % ring) is what makes the wrap at 2^32 safe: 2^32 is no multiple of
 * 2112, so seq % ring jumps there, and a window straddling the wrap would clear or test the
 * wrong word.
 *
 * All of it runs under the entry's bpf_spin_lock: the two classes of a key id are separate
 * entries, and CPUs receiving the same direction's packets serialise here. No helper calls
 * are allowed under the lock, so everything is inline and unrolled.
 */
#ifndef MP_REPLAY_H
#define MP_REPLAY_H

#include "maps.h"

#define MP_REPLAY_BITS (MP_REPLAY_WORDS * 64)

_Static_assert(MP_REPLAY_BITS - 64 >= MP_REPLAY_WINDOW, "the ring tracks the whole window");

/* A word index the verifier can see is in bits[]: clang knows it is and would drop the check,
 * so the value goes through an empty asm first. Out of range (never) yields MP_REPLAY_WORDS. */
static __always_inline __u32 replay_word(__u32 w)
{
	asm volatile("" : "+r"(w));
	return w < MP_REPLAY_WORDS ? w : MP_REPLAY_WORDS;
}

/* Under r->lock: accept seq (and remember it) or refuse it. */
static __always_inline bool replay_update(struct mp_replay *r, __u32 seq)
{
	__u32 pos = r->pos, from, to, word;
	__u64 mask;
	__s32 d;

	if (pos >= MP_REPLAY_BITS) /* not written by us: start the ring over */
		pos = 0;
	if (!r->any) { /* a fresh window: the first seq is top */
#pragma unroll
		for (int i = 0; i < MP_REPLAY_WORDS; i++)
			r->bits[i] = 0;
		r->any = 1;
		r->top = seq;
		r->pos = 0;
		r->bits[0] = 1;
		return true;
	}

	d = (__s32)(seq - r->top);
	if (d > 0) { /* ahead: advance top, forget the words it passes */
		from = pos / 64;
		if ((__u32)d >= MP_REPLAY_BITS) {
#pragma unroll
			for (int i = 0; i < MP_REPLAY_WORDS; i++)
				r->bits[i] = 0;
			pos = 0;
		} else {
			pos += d;                 /* < 2 × MP_REPLAY_BITS */
			to = pos / 64 - from;     /* words entered: 0..MP_REPLAY_WORDS */
#pragma unroll
			for (__u32 i = 1; i <= MP_REPLAY_WORDS; i++) {
				word = from + i;
				if (word >= MP_REPLAY_WORDS)
					word -= MP_REPLAY_WORDS;
				word = replay_word(word);
				if (i <= to && word < MP_REPLAY_WORDS)
					r->bits[word] = 0;
			}
			if (pos >= MP_REPLAY_BITS)
				pos -= MP_REPLAY_BITS;
		}
		r->top = seq;
		r->pos = pos;
		word = replay_word(pos / 64);
		if (word < MP_REPLAY_WORDS)
			r->bits[word] |= 1ULL << (pos % 64);
		return true;
	}

	/* at or behind top: inside the window and unseen? */
	if ((__u32)-d >= MP_REPLAY_WINDOW)
		return false;
	pos = pos >= (__u32)-d ? pos - (__u32)-d : pos + MP_REPLAY_BITS - (__u32)-d;
	word = replay_word(pos / 64);
	if (word >= MP_REPLAY_WORDS)
		return false;
	mask = 1ULL << (pos % 64);
	if (r->bits[word] & mask)
		return false;
	r->bits[word] |= mask;
	return true;
}

/* Is seq fresh in window `index` of mp_replay (key_id * MP_REPLAY_CLASSES + class)? Marks it
 * seen if so. */
static __always_inline bool replay_accept(__u32 index, __u32 seq)
{
	struct mp_replay *r = bpf_map_lookup_elem(&mp_replay, &index);
	bool ok;

	if (!r)
		return false;
	bpf_spin_lock(&r->lock);
	ok = replay_update(r, seq);
	bpf_spin_unlock(&r->lock);
	return ok;
}

#endif /* MP_REPLAY_H */
