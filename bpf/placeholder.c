// SPDX-License-Identifier: GPL-2.0
/* placeholder — proves the toolchain (clang -> vmlinux.h -> libbpf load -> tc attach -> map
 * read) until bpf/encap.c and bpf/decap.c replace it. Counts every packet it sees and passes it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#ifndef TC_ACT_OK
#define TC_ACT_OK 0
#endif

struct placeholder_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct placeholder_stats);
} placeholder_stats SEC(".maps");

SEC("tc")
int placeholder(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct placeholder_stats *st = bpf_map_lookup_elem(&placeholder_stats, &key);

	if (st) {
		__sync_fetch_and_add(&st->packets, 1);
		__sync_fetch_and_add(&st->bytes, skb->len);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
