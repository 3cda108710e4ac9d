/* SPDX-License-Identifier: GPL-2.0 */
/*
 * auth.h — per-packet authentication (mp.h, "authentication"): encap signs, decap verifies.
 *
 *   encap: key = mp_tx_key[0] (valid, not expired, else MP_DROP_NO_KEY); the header carries
 *          its id, tag = the MAC of header (tag zeroed) + inner packet (nh.h).
 *   decap: key = mp_rx_keys[key_id] (else MP_DROP_NO_KEY), tag (else MP_DROP_BAD_MAC), replay
 *          window of (key_id, class) (else MP_DROP_REPLAY), in that order, and before anything
 *          is recorded or forwarded: a forged packet never touches a window, and only a packet
 *          that verified can move one.
 *
 * MP_CFG_NO_AUTH (config `insecure_no_auth`, benchmarks only) turns both off: key id 0 and a
 * zero tag on the way out, nothing checked on the way in.
 */
#ifndef MP_AUTH_H
#define MP_AUTH_H

#include "maps.h"
#include "nh.h"
#include "replay.h"

static __always_inline bool auth_off(const struct mp_config *cfg)
{
	return cfg->flags & MP_CFG_NO_AUTH;
}

/* A key slot usable at `now`: written, of the id asked for, not expired. */
static __always_inline bool key_usable(const struct mp_key *k, __u8 id, __u64 now)
{
	return k && k->valid && id && k->id == id && now < k->expires_ns;
}

/* encap: the key to sign with, or NULL (drop MP_DROP_NO_KEY). */
static __always_inline const struct mp_key *tx_key(__u64 now)
{
	__u32 zero = 0;
	const struct mp_key *k = bpf_map_lookup_elem(&mp_tx_key, &zero);

	return k && key_usable(k, k->id, now) ? k : NULL;
}

/* encap: sign *h (every other field written) for the body_len bytes at body_off. */
static __always_inline bool auth_sign(struct __sk_buff *skb, const struct mp_key *k,
				      struct mp_hdr *h, __u32 body_off, __u32 body_len)
{
	struct mp_mac_job j = { .body_off = body_off, .body_len = body_len };

	h->key_id = k->id;
	if (mp_mac(skb, k, h, &j))
		return false;
	__builtin_memcpy(h->tag, &j.tag, sizeof(j.tag));
	return true;
}

/*
 * decap: authenticate the message whose header is *h and whose body is the body_len bytes at
 * body_off; cls is its replay class (MP_REPLAY_CLASSES: 0 data, 1 control). Returns
 * MP_DROP_NONE or the reason to drop it.
 */
static __always_inline enum mp_drop_reason auth_verify(struct __sk_buff *skb, const struct mp_hdr *h,
						       __u32 body_off, __u32 body_len, __u32 cls,
						       __u64 now)
{
	__u32 id = h->key_id;
	const struct mp_key *k = bpf_map_lookup_elem(&mp_rx_keys, &id);
	struct mp_mac_job j = { .body_off = body_off, .body_len = body_len };
	__u64 got;

	if (!key_usable(k, h->key_id, now))
		return MP_DROP_NO_KEY;
	if (mp_mac(skb, k, h, &j))
		return MP_DROP_TRUNCATED;
	__builtin_memcpy(&got, h->tag, sizeof(got));
	if (j.tag != got)
		return MP_DROP_BAD_MAC;
	if (!replay_accept(id * MP_REPLAY_CLASSES + cls, bpf_ntohl(h->seq)))
		return MP_DROP_REPLAY;
	return MP_DROP_NONE;
}

#endif /* MP_AUTH_H */
