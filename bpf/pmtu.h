/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pmtu.h — per-link path MTU in the scheduler: a packet goes only on a link where it fits.
 *
 * mp_link.mtu is the largest outer IP packet the link carries toward the peer (0: unknown, no
 * limit). Userland keeps it: the LP from its interface MTU and path MTU discovery on the link
 * (padded probes, src/run/pmtu.ts), the RP from the LP's probes (pmtu_down: what reaches the
 * LP on the link). An inner packet of inner_len bytes fits link l when inner_len + the link's
 * outer overhead <= l->mtu. The scan (schedule.h) skips a link the packet does not fit, as if it
 * were down for this packet only, and remembers the largest inner packet any usable link carries:
 * a packet that fits no usable link is answered "too big" with that MTU (encap.c), so the
 * sender's path MTU discovery follows the largest link rather than the smallest, and nothing is
 * sent onto a link that would drop it silently.
 */
#ifndef MP_PMTU_H
#define MP_PMTU_H

#define MP_IPV6_MIN_MTU 1280 /* RFC 8200 5: a "too big" below this is ignored by IPv6 senders */
#define MP_PMTU_NONE 0xffffffffU /* fit_max of a scan that saw no link with a known MTU */

/* Does an inner packet of inner_len bytes fit link l, whose outer headers take overhead bytes?
 * Raises *fit_max to the largest inner packet the link carries (MP_PMTU_NONE: no limit). */
static __always_inline bool pmtu_fits(const struct mp_link *l, __u32 inner_len, __u32 overhead,
				      __u32 *fit_max)
{
	__u32 room;

	if (!l->mtu) {
		*fit_max = MP_PMTU_NONE;
		return true;
	}
	room = l->mtu > overhead ? l->mtu - overhead : 0;
	if (room > *fit_max) /* MP_PMTU_NONE stays */
		*fit_max = room;
	return inner_len <= room;
}

/* The MTU a "too big" answer names for a packet of `family` that fit no link: the largest link's
 * room, and for IPv6 never below 1280 (a smaller one would be ignored: the packet is dropped,
 * counted as too_big, and the link too small for IPv6 keeps carrying what fits). */
static __always_inline __u32 pmtu_answer_mtu(__u32 fit_max, __u8 family)
{
	if (family == 6 && fit_max < MP_IPV6_MIN_MTU)
		return MP_IPV6_MIN_MTU;
	return fit_max;
}

#endif /* MP_PMTU_H */
