/* SPDX-License-Identifier: GPL-2.0 */
/*
 * counters.h — the one exit of both programs, and the per-link counters.
 *
 * Every `return` of encap() and decap() goes through mp_exit(verdict, reason): a drop without a
 * reason counter is a bug we cannot see. Reasons are enum mp_drop_reason (mp.h); userland
 * names them (src/datapath/abi.ts, DROP_REASONS).
 */
#ifndef MP_COUNTERS_H
#define MP_COUNTERS_H

#include "maps.h"

/* tc verdicts (linux/pkt_cls.h; not in vmlinux.h) */
#define TC_ACT_UNSPEC (-1) /* not ours: later filters and the stack carry on */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7

static __always_inline int mp_exit(int verdict, enum mp_drop_reason reason)
{
	if (reason != MP_DROP_NONE) {
		__u32 key = reason;
		__u64 *n = bpf_map_lookup_elem(&mp_drops, &key);

		if (n)
			*n += 1; /* per-CPU: no atomics needed */
	}
	return verdict;
}

static __always_inline int mp_pass(void)
{
	return mp_exit(TC_ACT_UNSPEC, MP_DROP_NONE);
}

static __always_inline int mp_drop(enum mp_drop_reason reason)
{
	return mp_exit(TC_ACT_SHOT, reason);
}

/* The result of a bpf_redirect*() helper: TC_ACT_REDIRECT, or TC_ACT_SHOT for bad arguments. */
static __always_inline int mp_redirected(long ret)
{
	if (ret != TC_ACT_REDIRECT)
		return mp_drop(MP_DROP_REDIRECT);
	return mp_exit(TC_ACT_REDIRECT, MP_DROP_NONE);
}

static __always_inline void count_tx(__u32 link_id, __u32 bytes)
{
	struct mp_link_stats *st = bpf_map_lookup_elem(&mp_link_stats, &link_id);

	if (st) {
		st->tx_packets++;
		st->tx_bytes += bytes;
	}
}

static __always_inline void count_rx(__u32 link_id, __u32 bytes)
{
	struct mp_link_stats *st = bpf_map_lookup_elem(&mp_link_stats, &link_id);

	if (st) {
		st->rx_packets++;
		st->rx_bytes += bytes;
	}
}

#endif /* MP_COUNTERS_H */
