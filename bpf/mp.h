/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mp.h — the mpctl ABI: wire format, map layouts and drop reasons.
 *
 * This header is the one owner of everything the BPF programs and userland share. The
 * TypeScript mirror (src/datapath/abi.ts) is checked against the compiled object's BTF by
 * test/abi.test.ts, so a layout change here that is not mirrored there fails the tests.
 *
 * Packet on the wire (UDP carrier; the `ip` carrier has no UDP header and uses protocol
 * MP_IPPROTO by default):
 *
 *   outer IPv4/IPv6 | UDP | struct mp_hdr (24 bytes) | inner IPv4/IPv6 packet
 *
 * All multi-byte header fields are big-endian. Map values are host-endian unless named *_be.
 */
#ifndef MP_H
#define MP_H

#define MP_VERSION 1
#define MP_MAX_LINKS 16
#define MP_RESERVED_PORTS 8 /* a single-interface RP's ports that stay local (mp_config) */
#define MP_LAN_PREFIXES 4   /* whole-LAN mode: the LP's LAN prefixes (mp_config.lan) */
#define MP_IPPROTO 253 /* RFC 3692 experimental; configurable per portal */

/* ---- wire format ------------------------------------------------------------------------ */

enum mp_msg_type {
	MP_T_DATA = 1,     /* an inner IP packet follows */
	MP_T_PROBE = 2,    /* liveness probe / probe reply (requests answered by the data path) */
	MP_T_FEEDBACK = 3, /* receiver statistics for congestion control (userland) */
	MP_T_HS_INIT = 4,  /* handshake (userland) */
	MP_T_HS_RESP = 5,
	MP_T_COOKIE = 6,
	MP_T_FEC = 7,      /* XOR parity of a group of a link's data packets (mp.h "loss recovery", bpf/fec.h) */
};

/* ver_type: version in the high nibble, enum mp_msg_type in the low nibble */
#define MP_VER_TYPE(t) ((MP_VERSION << 4) | (t))

struct mp_hdr {
	__u8 ver_type;
	__u8 flags;      /* reserved, 0 */
	__u8 link_id;    /* sender's link index, 0..MP_MAX_LINKS-1 */
	__u8 key_id;     /* session key the tag was made with (authentication, below) */
	__be32 seq;      /* per-direction sequence number: replay window, reordering */
	__be32 link_seq; /* per-link sequence number: per-link loss */
	__be32 ts_us;    /* sender's clock in µs (wraps): one-way delay variation */
	__u8 tag[8];     /* MAC over header (tag zeroed) and inner packet (authentication, below) */
} __attribute__((packed));

#define MP_HDR_LEN 24

/* mp_hdr.flags bits (covered by the MAC). */
enum mp_hdr_flags {
	MP_HDR_F_DP = 1 << 0, /* signed by the data path (BPF), not by userland: a control message
			       * with this flag takes its seq from the data sequence space
			       * (mp_sched.seq) and is checked in replay class 0, not 1 */
	MP_HDR_F_COPY = 1 << 1, /* data of a redundant class (redundant.h): sent on several links
				 * with the same seq; the receiver keeps the first and counts the
				 * others as MP_DROP_DUPLICATE, not MP_DROP_REPLAY. The class index
				 * is in the high nibble (MP_HDR_CLASS) */
	MP_HDR_F_FEC = 1 << 2, /* data packet in a parity group of its link (link_seq / MP_FEC_K):
				* the receiver adds it to the group's XOR (bpf/fec.h) */
};
#define MP_HDR_CLASS_SHIFT 4 /* mp_hdr.flags >> 4: the redundant class of an MP_HDR_F_COPY packet */

/* The body of an MP_T_PROBE message (after mp_hdr; big-endian). Probe v2: one design for
 * liveness, path MTU discovery and budgets.
 *
 * Requests (kind 0). The LP sends one on every link each probe interval; either portal may send
 * them (the RP too, to keep hearing a link whose peer's control plane is gone). The peer answers
 * every authentic request on the same link, to the address and port it came from (that is also
 * how the RP learns a link's NAT endpoint); the answer may be built by the data path itself
 * (MP_HDR_F_DP), so that a portal whose control plane died still answers.
 *
 * Replies (kind 1) echo probe_seq, sent_ns, reply_len and the MP_PROBE_F_PMTU flag, and carry
 * req_len, the outer IP length of the request as it arrived; the other fields are zero.
 *
 * Padding (path MTU discovery, RFC 8899 style). A probe message may be longer than MP_PROBE_LEN:
 * the bytes after struct mp_probe are zero and covered by the MAC like the rest. A request is
 * padded to the outer size under test in the request's direction; reply_len asks the peer to pad
 * its reply to that outer IP length (0 = unpadded), testing the other direction. A padded
 * request with MP_PROBE_F_PMTU set says nothing about liveness when it is lost. pmtu_down and
 * pmtu_up carry the sender's confirmed outer path MTU of the link (0 = not known yet): a request
 * from the LP tells the RP which outer size reaches the LP (pmtu_down: the RP schedules no larger
 * packet on the link) and which reaches the RP (pmtu_up: for status).
 *
 * Budgets of metered links (src/cc/budget-loop.ts): the LP counts both directions of a metered
 * link against its budget; in each request it tells the RP how much the RP may still send on
 * that link this period. With MP_PROBE_F_BUDGET set, budget_kib is that allowance in KiB
 * (rounded down, saturating at 2^32-1 KiB); 0 means spent. The RP then caps its own scheduler
 * (mp_link.budget_bytes = what it sent before the LP counted + the allowance). Without the flag
 * the link has no budget and the RP does not cap it.
 *
 * Admin-down: MP_PROBE_F_ADMIN_DOWN in the LP's requests says the operator took the link out;
 * the RP sends nothing on it either while the flag is set (probes still flow both ways).
 *
 * Capacity trains (src/run/train.ts): each portal measures its direction of a link once it is
 * up. It sends a few dozen padded requests back to back with MP_PROBE_F_TRAIN set; the
 * peer's data path answers each one as it arrives, and the reply's mp_hdr.ts_us is the peer's
 * clock at that moment: the spacing of those times is the link's bottleneck rate in the request's
 * direction (packet-train dispersion). A train's reply carries in rate_bps the peer's count of
 * outer bytes of data and parity the link had delivered when the request arrived (mp_rx.bytes):
 * a train sent while the link carries a flow (a re-train) counts the data that arrived between
 * its packets, which the bottleneck served too. A reply echoes the flag; a train request or reply says
 * nothing about liveness or round trips (it queues behind its train). MP_PROBE_F_UNRATED in the
 * LP's liveness requests says its config names no rate for the link: rate_bps is only the
 * default start, and the RP starts from its own train's measurement. */
enum mp_probe_flags {
	MP_PROBE_F_BUDGET = 1 << 0,     /* budget_kib holds the RP's allowance on this link */
	MP_PROBE_F_ADMIN_DOWN = 1 << 1, /* the LP took this link out: the RP does not send on it */
	MP_PROBE_F_PMTU = 1 << 2,       /* a size probe (padded request or reply_len): not liveness */
	MP_PROBE_F_TRAIN = 1 << 3,      /* one packet of a capacity train (echoed): not liveness */
	MP_PROBE_F_UNRATED = 1 << 4,    /* LP request: no rate configured for the link (rate_bps a default) */
};

struct mp_probe {
	__u8 kind;         /* 0 request, 1 reply */
	__u8 metric;       /* the link's tier (request) */
	__u8 carrier;      /* enum mp_carrier the sender uses on the link */
	__u8 flags;        /* enum mp_probe_flags (request; a reply echoes MP_PROBE_F_PMTU and _TRAIN) */
	__be32 probe_seq;  /* the requester's probe round, echoed */
	__be64 sent_ns;    /* the requester's clock, echoed: round trip */
	__be64 rate_bps;   /* request: the LP's estimate of the link (the RP's scheduler starts from it);
			    * train reply: mp_rx.bytes of the link when the request arrived */
	__be32 owd_us;     /* request: the LP's one-way delay estimate */
	__be32 budget_kib; /* MP_PROBE_F_BUDGET: KiB the RP may still send on the link this period */
	__be16 reply_len;  /* request: pad the reply to this outer IP length (0 = unpadded); reply: echoed */
	__be16 req_len;    /* reply: outer IP length of the request it answers; request: 0 */
	__be16 pmtu_down;  /* request: confirmed outer path MTU toward the sender (0 = unknown) */
	__be16 pmtu_up;    /* request: confirmed outer path MTU from the sender (0 = unknown) */
} __attribute__((packed));

#define MP_PROBE_LEN (MP_HDR_LEN + 40) /* shortest probe message; longer ones are padded */

/* ---- maps --------------------------------------------------------------------------------- */

enum mp_role {
	MP_ROLE_LOCAL = 1,  /* Local Portal: encap on lan ingress, decap on each link's ingress */
	MP_ROLE_REMOTE = 2, /* Remote Portal: decap + encap on wan ingress, encap on forward ifaces */
};

enum mp_cfg_flags {
	MP_CFG_SINGLE_IF = 1 << 0, /* RP shares its own address with the client */
	MP_CFG_DEC_TTL = 1 << 1,   /* decrement the inner TTL / hop limit on delivery */
	MP_CFG_LOOP_FRAG = 1 << 2, /* the stack routes loop_mark into the loop (loop.h): IPv4 without
				    * DF larger than inner_mtu goes there to be fragmented */
	MP_CFG_NO_AUTH = 1 << 3,   /* INSECURE, benchmarks only (config `insecure_no_auth`): encap
				    * sends key id 0 and a zero tag, decap skips MAC and replay */
	MP_CFG_ACKS_EARLIEST = 1 << 4, /* config `ack_path = "earliest"`: pure TCP ACKs are scheduled
					* like data, not on the slowest link (schedule.h) */
	MP_CFG_LAN_NAT = 1 << 5,   /* LP whole-LAN mode: packets from mp_config.lan are translated to
				    * the client address (nat.h, "whole-LAN mode" below) */
	MP_CFG_BOND_LOCAL = 1 << 6, /* LP `bond_local`: replies translated back to local_v4 / local_v6
				     * go to the LP's own stack (nat.h, "whole-LAN mode" below) */
};

/* An address of either family: IPv4 in the first 4 bytes. */
struct mp_addr {
	__u8 family; /* 4 or 6; 0 = unset */
	__u8 prefix_len;
	__u8 pad[2];
	__u8 addr[16];
};

/* mp_config[0]: the portal's settings, written by userland before attaching. */
/* The data path outlives its control plane (README, of that name): a heartbeat older than this
 * (mp_config.alive_ns) means the control plane is gone, and a held link's modelled queue stays
 * under MP_HOLD_QUEUE_NS: the scheduler, not the link, is then the bottleneck, so a link whose
 * held rate is a little off is not overfilled (its real queue would delay its packets behind
 * the other links' and drop them). */
#define MP_ALIVE_NS 500000000
#define MP_HOLD_QUEUE_NS 100000000

struct mp_config {
	__u32 role;        /* enum mp_role */
	__u32 flags;       /* enum mp_cfg_flags */
	__u32 lan_ifindex; /* LP: where decapsulated packets are delivered */
	__u32 wan_ifindex; /* RP: where encapsulated packets leave */
	__be16 port_be;    /* RP: tunnel UDP port it listens on; LP: the RP's port */
	__u16 mss_v4;      /* TCP MSS clamp for inner IPv4 SYNs (0 = off) */
	__u16 mss_v6;      /* TCP MSS clamp for inner IPv6 SYNs (0 = off) */
	__u16 inner_mtu;   /* largest inner packet that fits every link (0 = no check) */
	__u8 ip_proto;     /* protocol number of the `ip` carrier (0: not used) */
	__u8 pad[3];
	struct mp_addr client_v4; /* the client's address (prefix): LP matches src, RP matches dst */
	struct mp_addr client_v6;
	__u16 reserved_ports[MP_RESERVED_PORTS]; /* single-interface RP: these TCP/UDP ports stay local (0 = unused) */
	__u32 loop_ifindex; /* the segmentation loop's entry device mpf…a (loop.h); 0 = no loop */
	__u32 loop_mark;    /* skb->mark of a packet sent into the loop; 0 = no loop */
	/* The portal's own address of each family (family 0: none), for ICMP "time exceeded" about
	 * an inner packet of a family no link has (ttl.h): LP an address of lan, RP of wan. */
	struct mp_addr own_v4;
	struct mp_addr own_v6;
	/* The control plane's heartbeat: bpf_ktime_get_ns() (CLOCK_MONOTONIC) when it last wrote
	 * it, every probe interval. Older than MP_ALIVE_NS: the estimates in mp_links are frozen
	 * at whatever the controllers last wrote (a probing gain, a drain), so the scheduler uses
	 * each link's hold_kbps instead (schedule.h). 0: never written (no heartbeat: live). */
	__u64 alive_ns;
	/* LP whole-LAN mode (MP_CFG_LAN_NAT, nat.h): the LAN's prefixes (family 0: unused); a packet
	 * from one of them to an address outside all of them is translated to the client address of
	 * its family (client_v4 / client_v6, a single address), a port in [nat_port_lo, nat_port_hi]
	 * (host order; the tunnel port is never handed out) */
	struct mp_addr lan[MP_LAN_PREFIXES];
	__u16 nat_port_lo;
	__u16 nat_port_hi;
	__u32 pad2;
	/* LP `bond_local` (MP_CFG_BOND_LOCAL): the LP's own traffic leaves through the bond from its
	 * address on a LAN prefix (local_v4 / local_v6; family 0: none), translated as a LAN host's;
	 * decap delivers a packet translated back to one of them at the ingress of local_ifindex
	 * (the bond device mpl…a, where the LP's route to the sender points), addressed to
	 * local_mac, its MAC (the stack takes no unicast frame addressed to another) */
	__u32 local_ifindex;
	__u8 local_mac[6];
	__u8 pad3[2];
	struct mp_addr local_v4;
	struct mp_addr local_v6;
	/* Per-link shaping (shape.h): the major handle (<< 16) of the htb root qdisc the control
	 * plane keeps on the link devices, one class per link (minor: link id + 1) at the link's
	 * pacing rate, so the queue that equalises the links' delays sits in the portal, not in the
	 * ISP's buffer. A data packet for link id leaves with skb->priority = shape_handle | (id + 1),
	 * which htb takes as its class; everything else (probes, feedback, the host's traffic) is
	 * left unclassified and goes out unshaped. 0: off (skb->priority untouched). */
	__u32 shape_handle;
};

enum mp_link_state {
	MP_LINK_UNUSED = 0,
	MP_LINK_UP = 1,
	MP_LINK_DOWN = 2,       /* liveness: no authenticated packet for ~3 probe intervals */
	MP_LINK_ADMIN_DOWN = 3, /* taken down by the operator */
};

enum mp_carrier {
	MP_CARRIER_UDP = 0,
	MP_CARRIER_IP = 1,
};

/* mp_links[id]: one per link id, written by userland (the scheduler's inputs). */
/* mp_link.flags */
enum mp_link_flags {
	/* Pure TCP ACKs avoid this link while a link without the flag is usable: the congestion
	 * controller saw it lose packets at random or found it far slower than the best link
	 * (cc/loop.ts). An ACK lost there costs the end host a window cut, an ACK there sets the
	 * round trip of a link that carries little data (schedule.h). */
	MP_LINK_F_NO_ACKS = 1 << 0,
	/* Loss recovery (README "Loss recovery", bpf/fec.h): every MP_FEC_K data packets on this link are
	 * followed by an MP_T_FEC parity on the same link, from which the receiver rebuilds one lost
	 * packet of the group. Set by userland on links that lose packets at random (cc/loop.ts). */
	MP_LINK_F_FEC = 1 << 1,
	/* Held (README "The data path outlives its control plane"): the controller has no live
	 * feedback for this link (the peer's control plane is gone), so its rate is not a live
	 * estimate: the scheduler plans the link at hold_kbps and keeps its modelled queue under
	 * MP_HOLD_QUEUE_NS (schedule.h). The same applies to every link with a hold_kbps while
	 * this portal's own control plane is gone (mp_config.alive_ns). */
	MP_LINK_F_HELD = 1 << 2,
};

struct mp_link {
	__u32 ifindex;      /* egress device of the outer packet */
	__u8 state;         /* enum mp_link_state */
	__u8 carrier;       /* enum mp_carrier */
	__u8 metric;        /* tier: a higher metric carries nothing while a lower one is up */
	__u8 flags;         /* enum mp_link_flags (set by userland with the estimates) */
	__u32 mtu;          /* outer MTU of the link (userland derives inner_mtu from it) */
	__u32 owd_us;       /* one-way delay estimate */
	__u64 rate_bps;     /* pacing rate estimate, bits per second (0 = unknown: treated as 1 Mbit/s) */
	struct mp_addr local;   /* outer source address */
	struct mp_addr nexthop; /* gateway for bpf_redirect_neigh (family 0: on-link / FIB) */
	__be16 local_port_be;   /* outer UDP source port */
	__u16 plan_cap_ms;  /* the most backlog the scheduler plans on the link, ms (0: no cap): a
			     * little under the buffer depth the controller learned from the link's
			     * losses under a standing queue (cc/controller.ts depthUs). A link
			     * planned beyond it takes a packet only when every link is (schedule.h) */
	__u32 hold_kbps;    /* what the scheduler plans the link at while held (MP_LINK_F_HELD, or
			     * the control plane gone): a margin under the controller's hold rate (its
			     * bandwidth estimate, or the link's median loaded delivery if lower),
			     * kbit/s (0: no estimate: rate_bps as it is, no queue limit) */
	__u64 budget_bytes; /* metered link: the scheduler sends nothing more once
			     * mp_sched.sent_bytes[id] reaches this (0 = no budget). Userland
			     * raises it at each budget period (cc/budget.ts). */
};

/* mp_endpoints[id]: where the peer receives on this link. LP: static (the RP). RP: learned
 * by decap from the link's (authenticated) packets — NAT roaming. */
struct mp_endpoint {
	struct mp_addr addr;
	__be16 port_be;   /* 0 for the `ip` carrier */
	__u8 valid;       /* 0: the link is not used (as if down) */
	__u8 pad;
	__u64 updated_ns; /* bpf_ktime_get_ns() of the last update (RP: when the peer roamed) */
};

/* mp_sched[0]: the sender's shared state, under a spin lock. */
struct mp_sched {
	struct bpf_spin_lock lock;
	__u32 seq; /* last per-direction sequence number sent */
	__u64 busy_until_ns[MP_MAX_LINKS];
	__u32 link_seq[MP_MAX_LINKS];
	__u64 sent_bytes[MP_MAX_LINKS]; /* outer IP bytes scheduled on each link since up (budgets) */
};

/* mp_link_stats[id]: per-CPU counters of the data path. Bytes are outer IP packet bytes (no
 * Ethernet header), the unit of rate_bps, on both the sending and the receiving side. */
struct mp_link_stats {
	__u64 tx_packets;
	__u64 tx_bytes;
	__u64 rx_packets;
	__u64 rx_bytes;
};

/* mp_rx[id]: receiver state per link (one writer per packet; races only blur statistics). */
struct mp_rx {
	__u64 last_rx_ns;    /* bpf_ktime_get_ns() of the last valid packet on this link: liveness */
	__u32 max_link_seq;  /* highest per-link sequence seen */
	__u32 last_owd_us;   /* receiver clock (µs) minus sender ts_us of the last packet */
	__u64 packets;
	__u64 bytes;         /* outer IP packet bytes, as mp_link_stats */
	/* ICMP "fragmentation needed" / "packet too big" about this portal's own outer packets on
	 * the link (decap, bpf/ptb.h; not authenticated: userland takes it only as a hint to probe) */
	__u32 ptb_mtu;       /* the MTU the last one named */
	__u32 ptb_count;     /* how many arrived */
};

/* mp_peer_probe[link_id]: the data path answers probe requests itself (bpf/probe.h), so that a
 * portal whose control plane died still answers. Decap verifies a request (key, MAC, replay
 * class 1), records it here, and sends the reply back out of the device it came in on: kind 1,
 * probe_seq, sent_ns and reply_len echoed, req_len = the request's outer IP length as it
 * arrived, every other field 0, zero-padded to reply_len outer bytes if set (never shorter than
 * unpadded), signed with the send key with MP_HDR_F_DP (seq from mp_sched.seq, link_seq 0),
 * addresses, ports and MAC addresses swapped, TTL / hop limit 64, IPv4 DF. Requests go no
 * further; replies (kind 1) go up to the portal's socket. Userland reads the requests it needs
 * (the RP: the LP's estimates, budget, admin-down, path MTUs) from this map.
 * BPF_F_MMAPABLE: userland may read it as memory. One writer per request; a reader may see a
 * request half-written while the next one arrives (requests = the count after the write). */
struct mp_peer_probe {
	struct mp_hdr hdr;    /* the last authentic request's header as it arrived (big-endian) */
	struct mp_probe req;  /* and its body (big-endian) */
	__u64 rx_ns;          /* bpf_ktime_get_ns() when it arrived */
	__u64 requests;       /* authentic requests taken on this link */
	__u64 answered;       /* replies the data path sent for them */
	struct mp_addr from;  /* the request's outer source address */
	__be16 port_be;       /* its UDP source port (0: the ip carrier) */
	__u16 req_len;        /* its outer IP length */
	__u32 pad[2];
};

/* mp_loop_stats[0]: per-CPU counters of the segmentation loop (loop.h). Not drops: packets that
 * took the detour through the kernel to be cut to wire size. */
struct mp_loop_stats {
	__u64 gso;  /* GSO super-packets sent into the loop to be segmented */
	__u64 frag; /* IPv4 packets without DF sent into the loop to be fragmented */
	__u64 back; /* segments and fragments that came back out of the loop and were carried */
};

/* ---- redundant mode (README "Redundant mode", bpf/redundant.h) -----------------------------
 *
 * Latency-critical traffic (calls, games) is sent on several links at once: the scheduled link
 * and copies on the other best usable links (earliest arrival first, any tier), each copy
 * encapsulated and signed for its own link (link_id, link_seq) with the SAME seq, flagged
 * MP_HDR_F_COPY with the class in the high nibble of mp_hdr.flags. The receiver's replay window
 * keeps the first copy and drops the rest as MP_DROP_DUPLICATE.
 *
 * mp_red_class[i] (written by userland; classes are tried in index order, the first match wins):
 * a packet matches when its DSCP bit is set in dscp, or it is UDP with source or destination
 * port in one of the port ranges, or its source or destination address is in one of the
 * prefixes. The copies' bytes (outer IP bytes of every copy, not of the packet on its scheduled
 * link) are charged to a token bucket of cap_bytes_per_s, burst_bytes deep (mp_red_bucket[i]):
 * a packet whose copies do not fit is sent on its scheduled link only (counted `capped`). */
#define MP_RED_CLASSES 8
#define MP_RED_PORT_RANGES 4
#define MP_RED_PREFIXES 4
#define MP_RED_ALL_LINKS 0xff /* mp_red_class.links: every usable link */

struct mp_red_class {
	__u8 used;        /* 0: empty slot */
	__u8 links;       /* links a packet is sent on: 2..MP_MAX_LINKS, or MP_RED_ALL_LINKS */
	__u8 n_ports;     /* port ranges in use */
	__u8 n_prefixes;  /* prefixes in use */
	__u32 pad;
	__u64 dscp;       /* bit d set: DSCP d (0..63) matches */
	__u16 port_lo[MP_RED_PORT_RANGES]; /* UDP source or destination port in [lo, hi] */
	__u16 port_hi[MP_RED_PORT_RANGES];
	struct mp_addr prefix[MP_RED_PREFIXES]; /* source or destination address in the prefix */
	__u64 cap_bytes_per_s; /* the copies' byte rate */
	__u32 burst_bytes;     /* the bucket's depth */
	__u32 pad2;
};

/* mp_red_bucket[i]: class i's token bucket (data path state; userland writes it zeroed). */
struct mp_red_bucket {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 tokens;  /* bytes of copies that may be sent now */
	__u64 last_ns; /* when tokens were last refilled (0: never: starts full) */
};

/* mp_red_stats[i]: per-CPU counters of class i. The sender counts packets, bytes, copies,
 * copy_bytes, capped, single and copy_failed; the receiver counts wins and duplicates of the
 * peer's copies (each portal counts its own sending direction and its own receiving one). */
struct mp_red_stats {
	__u64 packets;     /* sent: packets of the class */
	__u64 bytes;       /* sent: their inner bytes */
	__u64 copies;      /* sent: copies (beyond the packet on its scheduled link) */
	__u64 copy_bytes;  /* sent: outer IP bytes of the copies */
	__u64 capped;      /* sent: packets without copies because the bucket was empty */
	__u64 single;      /* sent: packets without copies because no other link was usable */
	__u64 copy_failed; /* sent: copies that could not be sent (no neighbour, redirect failed) */
	__u64 duplicates;  /* received: copies that arrived after the first (MP_DROP_DUPLICATE) */
	__u64 wins[MP_MAX_LINKS]; /* received: the first copy came on this link */
};

/* ---- whole-LAN mode: NAT in the LP's data path (README "Whole-LAN mode", bpf/nat.h) ---------
 *
 * encap translates a packet from a LAN prefix (mp_config.lan) to an address outside them: its
 * source address becomes the client address of its family and its source port (TCP, UDP) or
 * echo id (ICMP / ICMPv6 echo request) a port of the client address, from mp_nat_out; a flow
 * without one gets one (the LAN port itself if free and in range, else random ports of the
 * range, MP_NAT_TRIES of them; none free: MP_DROP_NAT_PORTS) and its reverse entry in mp_nat_in.
 * The range is [nat_port_lo, nat_port_hi] without the tunnel port for TCP and UDP, 1-65535 for
 * echo ids.
 * Decap (LP) translates a packet to the client address back: mp_nat_fwd (port forwards,
 * written by userland), else mp_nat_in; neither: MP_DROP_NAT_MISS. The mapping depends on the
 * LAN address and port only (RFC 4787 endpoint-independent mapping and filtering), and lives
 * in the LP, whatever link a packet takes: a flow keeps its port when it moves links.
 * IPv4 fragments after the first carry no port: out, only their address is translated; in,
 * they are dropped (MP_DROP_NAT_FRAG). ICMP errors are translated with their quote, both ways
 * (about no mapping: MP_DROP_NAT_MISS in, MP_DROP_NAT_PROTO out). Other protocols and ICMP
 * other than echo requests and errors from the LAN: MP_DROP_NAT_PROTO. Checksums are updated incrementally (IPv4 header, TCP/UDP/ICMPv6 with the
 * pseudo-header, ICMP; a UDP checksum 0 stays 0).
 *
 * Keys: mp_nat_out by (family, proto, LAN port, LAN address); mp_nat_in and mp_nat_fwd by
 * (family, proto, client port, client address); values the other side. proto is the L4
 * protocol (IPPROTO_ICMP / IPPROTO_ICMPV6 for echo, port = the id). mp_nat_out and mp_nat_in
 * are LRU hashes: a full table evicts the least recently used mapping; every outgoing packet
 * refreshes both entries of its flow (and restores a reverse entry that was evicted).
 * bond_local (MP_CFG_BOND_LOCAL): the LP's own packets come to encap from the bond device
 * (mpl…b's ingress) with its address on a LAN prefix as source and are translated like any LAN
 * host's; decap delivers what is translated back to mp_config.local_v4 / local_v6 at the ingress
 * of mp_config.local_ifindex instead of lan. */
#define MP_NAT_ENTRIES 65536 /* mp_nat_out, mp_nat_in */
#define MP_NAT_FORWARDS 64   /* mp_nat_fwd, mp_nat_fwd_out */
#define MP_NAT_TRIES 8       /* ports tried for a new flow */
/* Mapping timeouts (README "Whole-LAN mode"). A flow's reverse entry (mp_nat_in) holds when its
 * last packet passed, either way (last_s, seconds of bpf_ktime_get_ns()), and for TCP its state.
 * A mapping idle longer than its timeout is expired: its port counts as free for a new flow
 * (nat.h takes it over), a packet to it from the Internet is MP_DROP_NAT_MISS, and the control
 * plane deletes it when it sweeps the table (every MP_NAT_SWEEP_S). A packet of the flow itself
 * from the LAN before then keeps it (nobody took the port). The figures are the minimums of the
 * NAT behaviour RFCs: */
#define MP_NAT_TCP_EST_S 7440   /* established TCP: RFC 5382 REQ-5, at least 2 h 4 min */
#define MP_NAT_TCP_TRANS_S 240  /* TCP opening (only a SYN seen) or closing (FIN or RST seen): the
				 * "transitory" timeout of RFC 5382 REQ-5 and RFC 7857 2.2 (RST), at least 4 min */
#define MP_NAT_UDP_S 300        /* UDP: RFC 4787 REQ-5, at least 2 min, 5 min recommended */
#define MP_NAT_ICMP_S 60        /* ICMP / ICMPv6 echo: RFC 5508 REQ-1, at least 60 s */
#define MP_NAT_SWEEP_S 10       /* how often the control plane deletes expired mappings and counts them */
struct mp_nat_key {
	__u8 family;    /* 4 or 6 */
	__u8 proto;     /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6 */
	__be16 port_be; /* port, or echo id */
	__u8 addr[16];  /* IPv4 in the first 4 bytes, the rest 0 */
};
enum mp_nat_flags {
	MP_NAT_F_FORWARD = 1 << 0, /* a port forward (mp_nat_fwd, mp_nat_fwd_out), written by userland */
};
enum mp_nat_state {
	MP_NAT_S_OPENING = 0, /* TCP: nothing but a SYN seen yet (transitory); other protocols: always */
	MP_NAT_S_EST = 1,     /* TCP: a packet without SYN, FIN or RST seen after the SYN */
	MP_NAT_S_CLOSING = 2, /* TCP: a FIN or RST seen (transitory); a SYN without ACK opens it again */
};
struct mp_nat_val {
	__u8 addr[16];
	__be16 port_be;
	__u8 flags;     /* enum mp_nat_flags */
	__u8 state;     /* enum mp_nat_state (mp_nat_in of a TCP flow) */
	__u32 last_s;   /* mp_nat_in: bpf_ktime_get_ns() / 10^9 at the flow's last packet (0: long ago) */
};

/* ---- authentication (README "Running a bond") -----------------------------------------------
 *
 * Every data and control (probe, feedback) message carries key_id != 0, a per-direction seq and
 * a 64-bit tag, hash-then-PRF (UMAC's and Adiantum's NH, finished by SipHash-2-4):
 *
 *   tag = SipHash-2-4(k, hdr || le64(len(body)) || le64(NH(K, body)) || le64(NH(K + 16, body)))
 *
 * hdr is the 24-byte mp_hdr with its tag zeroed; the body is everything after it up to the end
 * of the datagram (UDP length, or the outer IP length for the `ip` carrier). NH(K, body): the
 * body zero-padded to a multiple of 16 bytes, as little-endian u32 words m0..m3 per 16-byte
 * block i, sums (mod 2^64) (u64)(u32)(m0 + K[4i]) * (u32)(m2 + K[4i+2]) +
 * (u64)(u32)(m1 + K[4i+1]) * (u32)(m3 + K[4i+3]); the second pass uses the key words 4 further
 * on (Toeplitz). NH is 2^-32-almost-universal per pass for equal-length bodies, so the pair is
 * 2^-64 and, the length being in the PRF input, so are bodies of different lengths: a forgery
 * succeeds with probability <= 2^-64 + SipHash's PRF advantage per attempt (RFC 4418 §6,
 * Adiantum §5). The tag is SipHash's output in little-endian byte order; k (mp_key.key) is the
 * 16-byte session key, k0 || k1 read little-endian.
 *
 * K (mp_key.nh) is expanded from k in userland (src/datapath/abi.ts encodeKey): its 8-byte
 * word j is SipHash-2-4(k, le64(j)). k is also the PRF key: its PRF inputs are 48 bytes long,
 * the expansion's 8, so the two uses never share an input. Why: SipHash over every byte cost
 * 0.63-0.68 ns/byte in BPF (no rotate instruction) and a third of the unshaped throughput; NH
 * is 2 multiplications per 8 bytes: 0.24-0.27 ns/byte, throughput 0.81-0.88 of unauthenticated
 * (README.md).
 * Bodies longer than MP_NH_MAX_BODY (jumbo frames' 9000 fit) have no tag: encap drops them
 * (MP_DROP_TRUNCATED), decap too; userland caps inner_mtu there (src/plan/mtu.ts). src/security/mac.ts is the userland implementation (probes,
 * feedback, tests).
 *
 * Handshake messages (HS_INIT, HS_RESP, COOKIE) carry no tag: they authenticate themselves
 * (src/security/messages.ts) and pass up to the portal's socket, filtered and rate-limited by
 * flood.h (shape, per-source and global buckets) so that a flood cannot fill it.
 *
 * Decap checks, before anything is recorded or forwarded: key (mp_rx_keys[key_id] valid and not
 * expired, else MP_DROP_NO_KEY), tag (else MP_DROP_BAD_MAC), then the replay window of
 * (key_id, class) (else MP_DROP_REPLAY). Class 0 is data (seq from mp_sched.seq, encap) and
 * control messages signed by the data path (MP_HDR_F_DP: probe replies, probe.h), class 1
 * control (seq from the portal's own counter per key: userland signs probes and feedback). A key
 * id's two windows are reset by userland (written zeroed) before the key is installed, so a new
 * session starts with a fresh window and no clock is shared between the portals.
 */
#define MP_KEY_IDS 256       /* key ids 1..255 on the wire; 0 = unauthenticated (handshake) */
#define MP_REPLAY_WORDS 33   /* bitmap words per window: 33 × 64 − 64 = 2048 seqs fully tracked */
#define MP_REPLAY_WINDOW 2048 /* seq accepted if not seen and top − seq < MP_REPLAY_WINDOW */
#define MP_REPLAY_CLASSES 2  /* 0 data, 1 control */
#define MP_NH_MAX_BODY 9216  /* longest body with a tag (a multiple of 256, nh.h's chunk) */
#define MP_NH_KEY_WORDS ((MP_NH_MAX_BODY + 16) / 4) /* NH key stream: 16 bytes for the 2nd pass */

/* mp_tx_key[0]: the key encap sends with; mp_rx_keys[key_id]: keys decap accepts. */
struct mp_key {
	__u8 key[16];      /* the session key: SipHash-2-4 key of the PRF */
	__u64 expires_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) after which it is not used */
	__u8 id;           /* the key id (tx: written into mp_hdr.key_id; rx: equals the index) */
	__u8 valid;        /* 0: slot empty (encap: drop MP_DROP_NO_KEY; decap: same) */
	__u8 pad[6];
	__u32 nh[MP_NH_KEY_WORDS]; /* NH key stream expanded from key (little-endian words) */
};

/* mp_replay[key_id * MP_REPLAY_CLASSES + class]: a sliding window as WireGuard's
 * (noise_replay_counter) over a ring of MP_REPLAY_WORDS * 64 bits: bit `pos` is top, the bit
 * k places before it (mod the ring) is seq top - k, set = seen. The ring position is kept
 * rather than derived from seq (seq % 2112) so that the window stays consistent when seq wraps
 * at 2^32 (2^32 is not a multiple of 2112); seqs compare by serial-number arithmetic (bpf/replay.h). */
struct mp_replay {
	struct bpf_spin_lock lock;
	__u32 top;    /* highest seq accepted */
	__u32 any;    /* 0 until the first packet: then any seq is accepted and becomes top */
	__u32 pos;    /* ring bit index of top, 0..MP_REPLAY_WORDS*64-1 */
	__u64 bits[MP_REPLAY_WORDS];
};

/* ---- drop reasons: mp_drops[reason] per-CPU counters; src/datapath/abi.ts names them ---- */

enum mp_drop_reason {
	MP_DROP_NONE = 0,
	MP_DROP_TRUNCATED = 1,     /* shorter than its headers claim */
	MP_DROP_BAD_VERSION = 2,   /* mpctl header version/type unknown */
	MP_DROP_BAD_LINK = 3,      /* link id out of range or unused */
	MP_DROP_BAD_INNER = 4,     /* inner packet is not IPv4/IPv6 or its length is wrong */
	MP_DROP_NO_LINK = 5,       /* encap: no link is up */
	MP_DROP_TOO_BIG = 6,       /* inner packet larger than the inner MTU (answered with ICMP) */
	MP_DROP_ADJUST_ROOM = 7,   /* bpf_skb_adjust_room failed */
	MP_DROP_STORE = 8,         /* writing headers failed */
	MP_DROP_REDIRECT = 9,      /* redirect failed */
	MP_DROP_FIB = 10,          /* no route for the decapsulated packet */
	MP_DROP_TTL = 11,          /* inner TTL / hop limit expired */
	MP_DROP_GSO = 12,          /* GSO packet that could not be segmented (no loop, or decap) */
	MP_DROP_NO_CONFIG = 13,    /* mp_config not written yet */
	MP_DROP_BAD_MAC = 14,      /* auth: tag does not verify */
	MP_DROP_REPLAY = 15,       /* auth: replayed or too old */
	MP_DROP_NO_KEY = 16,       /* auth: unknown key id */
	MP_DROP_LOOP = 17,         /* back from the segmentation loop and still GSO or too big */
	MP_DROP_FRAGMENT = 18,     /* an outer IP fragment to the tunnel port (flood.h) */
	MP_DROP_HS_MALFORMED = 19, /* handshake message of a type this role never receives, of the
				    * wrong size, or with reserved header fields set (flood.h) */
	MP_DROP_HS_SOURCE_RATE = 20, /* handshake message over its source's rate: the /24 or /48,
				      * or the link whose endpoint it comes from (flood.h) */
	MP_DROP_HS_GLOBAL_RATE = 21, /* handshake message over the global rate (flood.h) */
	MP_DROP_BAD_PROBE = 22,    /* authentic probe shorter than struct mp_probe, of an unknown kind,
				    * or asking for a reply longer than a tag covers (probe.h) */
	MP_DROP_DUPLICATE = 23,    /* a redundant copy (MP_HDR_F_COPY) whose seq already arrived on
				    * another link: the replay window kept the first (redundant.h) */
	MP_DROP_FEC_SPARE = 24,    /* a parity not used: its group lost nothing, or more than one packet,
				    * or the receiver did not see the group (bpf/fec.h) */
	MP_DROP_FEC_BAD = 25,      /* a parity that is malformed, or rebuilds no valid inner packet */
	MP_DROP_HOLD_QUEUE = 26,   /* the link the packet would take is held (no live estimate) and
				    * its modelled queue is over MP_HOLD_QUEUE_NS (schedule.h) */
	MP_DROP_NAT_PORTS = 27,    /* whole-LAN mode: no free port for a new flow (nat.h) */
	MP_DROP_NAT_MISS = 28,     /* whole-LAN mode: to the client address, but no mapping or forward */
	MP_DROP_NAT_FRAG = 29,     /* whole-LAN mode: an IPv4 fragment after the first to the client
				    * address (no port to find its LAN host by) */
	MP_DROP_NAT_PROTO = 30,    /* whole-LAN mode: from the LAN, a protocol the NAT does not translate
				    * (not TCP, UDP or an ICMP echo request), or a malformed header */
	MP_DROP_FEC_LATE = 31,     /* the original of a packet its group's parity already rebuilt (its
				    * link reordered them): delivered once, not lost (bpf/fec.h) */
	MP_DROP_MAX = 32,
};

/* ---- loss recovery: XOR forward error correction (README "Loss recovery", bpf/fec.h) -------------
 *
 * On a link with MP_LINK_F_FEC, the data packets with link_seq in [g * MP_FEC_K, (g + 1) *
 * MP_FEC_K) form group g; they carry MP_HDR_F_FEC. After the group's last packet the sender sends
 * on the same link one MP_T_FEC message: its body is the XOR of the group's inner packets, each
 * zero-padded to the longest (so it is as long as the longest, and fits wherever they did), and
 * its header says what it covers:
 *   seq       a data seq of its own (replay class 0)
 *   link_seq  the group g (the parity is outside the link's loss count)
 *   ts_us     the XOR of the covered packets' seqs
 *   flags     MP_HDR_F_FEC | count << MP_HDR_FEC_COUNT_SHIFT: how many packets it covers
 * A receiver that saw all but one packet of the group rebuilds that one (its bytes; its length
 * from its IP header; its seq) and delivers it; its seq enters the replay window, so a late
 * original (a link that reordered the parity ahead of it) is dropped as MP_DROP_FEC_LATE, and a
 * parity whose rebuilt seq the window already saw is MP_DROP_FEC_SPARE. Inner packets longer than MP_FEC_MAX are not covered (their
 * group gets no parity). */
#define MP_FEC_K 4       /* data packets per parity group (a power of 2: link_seq wraps; README) */
#define MP_FEC_MAX 1536  /* longest inner packet a group may hold (a multiple of 256) */
#define MP_FEC_TX_SLOTS 2 /* mp_fec_tx entries per link (group & 1) */
#define MP_FEC_RX_SLOTS 4 /* mp_fec_rx entries per link (group & 3) */
#define MP_HDR_FEC_COUNT_SHIFT 4 /* MP_T_FEC: mp_hdr.flags >> 4 = packets covered (1..MP_FEC_K) */

/* mp_fec_tx[link * MP_FEC_TX_SLOTS + (group & 1)] (sender) and mp_fec_rx[link * MP_FEC_RX_SLOTS +
 * (group & 3)] (receiver): one group's XOR so far. Written without a lock (helpers read the
 * packet); two CPUs adding to one group at once can spoil its parity: the rebuilt packet then
 * fails the inner checks (MP_DROP_FEC_BAD) or the end host's checksum, a loss as without FEC. */
struct mp_fec_acc {
	__u32 group;
	__u32 count;   /* packets added */
	__u32 seq_xor;
	__u32 max_len; /* the longest packet added */
	__u32 taint;   /* a packet longer than MP_FEC_MAX was in the group: no parity */
	__u32 rebuilt; /* receiver: the group's parity rebuilt a packet, whose seq is rebuilt_seq */
	__u32 rebuilt_seq;
	__u32 pad;
	__u8 bytes[MP_FEC_MAX];
};

/* mp_fec_stats[0]: per-CPU counters of loss recovery. */
struct mp_fec_stats {
	__u64 parity_tx; /* parity messages sent */
	__u64 parity_rx; /* authentic parity messages received */
	__u64 rebuilt;   /* lost packets rebuilt and delivered */
};

#endif /* MP_H */
