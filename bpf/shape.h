/* SPDX-License-Identifier: GPL-2.0 */
/* Per-link shaping (mp_config.shape_handle, mp.h). Without fq on the link devices there is no
 * EDT pacing, so the control plane keeps an htb root on each link device with one class per
 * link at that link's pacing rate (src/run/shaper.ts), and a data packet leaves for link id
 * with skb->priority naming its class: htb queues it there, in the portal, instead of in the
 * ISP's buffer, where the delay-equalising queue the scheduler plans (the fast link ahead of
 * the slow one) would leave a TCP sender's overshoot no room. Measured by hand on 20 Mbit/10 ms
 * + 20 Mbit/60 ms: CUBIC uploads 33-36 Mbit/s against 20-28 without (bench-results/shape/).
 * Only data and parity packets are classified: probes, feedback and the host's own traffic go
 * out unshaped (htb's direct queue), so a probe's round trip is not the data's queue. */
#ifndef MP_SHAPE_H
#define MP_SHAPE_H

#include "mp.h"

static __always_inline void mp_shape(struct __sk_buff *skb, const struct mp_config *cfg, __u32 id)
{
	if (cfg && cfg->shape_handle)
		skb->priority = cfg->shape_handle | ((id & (MP_MAX_LINKS - 1)) + 1);
}

#endif
