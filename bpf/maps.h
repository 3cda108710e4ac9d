/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maps.h — the maps of the portal object, shared by encap and decap.
 *
 * encap.c and decap.c are compiled separately and statically linked into one object
 * (build/bpf/mpctl.o, see the Makefile), so that every hook of a portal uses the same maps.
 * Both units include this header; each map is a __weak definition, which libbpf's linker
 * merges into one map (it checks that the definitions agree). Value layouts live in mp.h.
 */
#ifndef MP_MAPS_H
#define MP_MAPS_H

#include "mp.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mp_config);
} mp_config SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MP_MAX_LINKS);
	__type(key, __u32);
	__type(value, struct mp_link);
} mp_links SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MP_MAX_LINKS);
	__type(key, __u32);
	__type(value, struct mp_endpoint);
} mp_endpoints SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mp_sched);
} mp_sched SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MP_MAX_LINKS);
	__type(key, __u32);
	__type(value, struct mp_link_stats);
} mp_link_stats SEC(".maps") __weak;

/* BPF_F_MMAPABLE: the feedback loop reads it as memory every 20 ms (no system call) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MP_MAX_LINKS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct mp_rx);
} mp_rx SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MP_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} mp_drops SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mp_loop_stats);
} mp_loop_stats SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mp_key);
} mp_tx_key SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MP_KEY_IDS);
	__type(key, __u32);
	__type(value, struct mp_key);
} mp_rx_keys SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MP_KEY_IDS * MP_REPLAY_CLASSES);
	__type(key, __u32);
	__type(value, struct mp_replay);
} mp_replay SEC(".maps") __weak;

/* redundant mode (mp.h, redundant.h) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MP_RED_CLASSES);
	__type(key, __u32);
	__type(value, struct mp_red_class);
} mp_red_class SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MP_RED_CLASSES);
	__type(key, __u32);
	__type(value, struct mp_red_bucket);
} mp_red_bucket SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MP_RED_CLASSES);
	__type(key, __u32);
	__type(value, struct mp_red_stats);
} mp_red_stats SEC(".maps") __weak;

/* loss recovery (bpf/fec.h) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MP_MAX_LINKS * MP_FEC_TX_SLOTS);
	__type(key, __u32);
	__type(value, struct mp_fec_acc);
} mp_fec_tx SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MP_MAX_LINKS * MP_FEC_RX_SLOTS);
	__type(key, __u32);
	__type(value, struct mp_fec_acc);
} mp_fec_rx SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mp_fec_stats);
} mp_fec_stats SEC(".maps") __weak;

/* whole-LAN mode (mp.h, nat.h) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MP_NAT_ENTRIES);
	__type(key, struct mp_nat_key);
	__type(value, struct mp_nat_val);
} mp_nat_out SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MP_NAT_ENTRIES);
	__type(key, struct mp_nat_key);
	__type(value, struct mp_nat_val);
} mp_nat_in SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MP_NAT_FORWARDS);
	__type(key, struct mp_nat_key);
	__type(value, struct mp_nat_val);
} mp_nat_fwd SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MP_NAT_FORWARDS);
	__type(key, struct mp_nat_key);
	__type(value, struct mp_nat_val);
} mp_nat_fwd_out SEC(".maps") __weak;

/* BTF anchor: clang puts an enum into BTF only when a variable or map has it in its type, and
 * test/abi.test.ts compares mp.h's enums with src/datapath/abi.ts. libbpf skips this section
 * ("unrecognized data section"), so it costs nothing at load time. */
struct mp_abi_enums {
	enum mp_msg_type msg_type;
	enum mp_role role;
	enum mp_cfg_flags cfg_flags;
	enum mp_link_state link_state;
	enum mp_link_flags link_flags;
	enum mp_carrier carrier;
	enum mp_drop_reason drop_reason;
	enum mp_probe_flags probe_flags;
	enum mp_hdr_flags hdr_flags;
	enum mp_nat_flags nat_flags;
	enum mp_nat_state nat_state;
	struct mp_hdr hdr;
	struct mp_probe probe;
};
struct mp_abi_enums mp_abi SEC(".mp_abi") __weak;

/* mp_config[0], or NULL before the map exists (never: it is an array). role 0 = unwritten. */
static __always_inline const struct mp_config *config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&mp_config, &zero);
}

#endif /* MP_MAPS_H */
