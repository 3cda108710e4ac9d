/* libmpctl — the small C helper for what Node cannot do by itself: load and attach libbpf
 * objects, read and write BPF maps, run BPF_PROG_TEST_RUN, mount bpffs and flip ethtool
 * offloads. Called from src/native/libmpctl.ts through ffi-rs.
 *
 * Conventions (every function):
 *   - returns int: >= 0 on success, -errno on failure;
 *   - on failure leaves a one-line, human-readable message (the operation, the object path or
 *     interface, strerror and the libbpf warnings seen during the call) in mp_last_error();
 *   - loaded objects are named by small integer handles (an index into a static table), never
 *     by pointers, so nothing that crosses the FFI boundary can dangle;
 *   - anything that talks to the kernel through a socket (tc attach/detach, ethtool) opens that
 *     socket at call time, so it acts in the *calling thread's* current network namespace.
 *
 * Not thread-safe for concurrent use of the same handle table; Node calls it from its main
 * thread only.
 */
#ifndef MPCTL_LIBMPCTL_H
#define MPCTL_LIBMPCTL_H

#ifdef __cplusplus
extern "C" {
#endif

/* Message of the last failed call in this thread ("" if none). Valid until the next call. */
const char *mp_last_error(void);

/* ---- objects ------------------------------------------------------------------------------ */

/* Open and load a BPF ELF object. If pin_maps_dir is non-empty, every map that is not an
 * internal one (.rodata/.data/.bss/.kconfig) gets pin path <dir>/<map name>: an existing pin is
 * reused (maps shared between objects and across runs), a missing one is created. The directory
 * is created if needed and must be on a bpffs. Returns a handle. */
int mp_bpf_open_load(const char *obj_path, const char *pin_maps_dir);
/* Close the object (its program and map fds). Attached tc filters and pins stay. */
int mp_bpf_close(int h);
/* The instructions the verifier walked to accept program prog_name of object h (its
 * "processed" count; kernel 5.16+). */
int mp_prog_verified_insns(int h, const char *prog_name);

/* ---- tc (clsact + cls_bpf direct-action) --------------------------------------------------- */

/* Create the clsact qdisc on ifindex if missing and attach program prog_name of object h at
 * ingress (egress == 0) or egress, with the given priority (1..65535) and handle (!= 0).
 * Replaces a filter with the same priority/handle, so repeating the call is idempotent. */
int mp_tc_attach(int h, const char *prog_name, int ifindex, int egress, unsigned priority,
                 unsigned handle);
/* Remove only that filter. A filter (or clsact hook) that is already gone counts as success. */
int mp_tc_detach(int ifindex, int egress, unsigned priority, unsigned handle);
/* Remove the clsact qdisc with all its filters. Missing counts as success. */
int mp_tc_hook_destroy(int ifindex);

/* ---- maps --------------------------------------------------------------------------------- */

/* fd of map map_name inside object h. Owned by the object: do not close it. */
int mp_map_fd(int h, const char *map_name);
/* Describe a map fd. Any out pointer may be NULL. name_out (if not NULL) gets at most
 * name_len bytes including the terminating NUL. */
int mp_map_info(int map_fd, unsigned *type, unsigned *key_size, unsigned *value_size,
                unsigned *max_entries, char *name_out, unsigned name_len);
/* Element access. key_len/value_len are the sizes of the caller's buffers: they are checked
 * against the map (key_size; value_size, or round_up(value_size, 8) * possible CPUs for per-CPU
 * maps) so a short buffer is rejected with -EINVAL instead of being overrun by the kernel.
 * mp_map_lookup and mp_map_delete return -ENOENT for a missing key. */
int mp_map_update(int map_fd, const void *key, unsigned key_len, const void *value,
                  unsigned value_len, unsigned long long flags);
int mp_map_lookup(int map_fd, const void *key, unsigned key_len, void *value,
                  unsigned value_len);
int mp_map_delete(int map_fd, const void *key, unsigned key_len);
/* The key after `key` (NULL: the first) of a hash map into next (both key_len bytes);
 * -ENOENT after the last. */
int mp_map_next_key(int map_fd, const void *key, void *next, unsigned key_len);
/* Elements 0..count-1 of an array or per-CPU array map into values (count elements of the
 * size mp_map_lookup takes), in one system call where the kernel has batch lookups. */
int mp_map_lookup_array(int map_fd, unsigned count, void *values, unsigned values_len);
/* Every element of a hash map (not per-CPU; LRU too) into keys and values, packed, at most max
 * of them (keys_len = max * key_size, values_len = max * value_size), in BPF_MAP_LOOKUP_BATCH
 * system calls (a kernel without them: one get_next_key + lookup per element). Returns how many.
 * The kernel's LRU does not count these lookups as uses. */
int mp_map_dump(int map_fd, void *keys, unsigned keys_len, void *values, unsigned values_len, unsigned max);
/* A BPF_F_MMAPABLE array map mapped read-only: a handle (>= 0) for mp_mmap_read, which copies
 * len bytes at off (element i of a value_size map is at i * round_up(value_size, 8)) without a
 * system call. mp_munmap releases it. */
int mp_map_mmap(int map_fd);
int mp_mmap_read(int h, unsigned off, void *out, unsigned len);
int mp_munmap(int h);

/* One call per control-loop tick (ffi calls cost ~7 µs each, ~5 more per buffer argument): the
 * reads registered with mp_tick_add (kind 0: elements 0..count-1 of array map fd, as
 * mp_map_lookup_array; kind 1: the first len bytes of mapping handle fd, as mp_mmap_read) land
 * at their offsets in a static area (mp_tick_area, mp_tick_area_len bytes) on every mp_tick.
 * mp_tick_add returns the read's index; mp_tick_clear forgets them all. */
void *mp_tick_area(void);
unsigned mp_tick_area_len(void);
int mp_tick_add(int kind, int fd, unsigned count, unsigned off, unsigned len);
void mp_tick_clear(void);
int mp_tick(void);

/* fd of a pinned object (map). Owned by the caller: close it with mp_close_fd. */
int mp_obj_get(const char *pinned_path);
int mp_close_fd(int fd);
int mp_num_possible_cpus(void);

/* ---- sockets ------------------------------------------------------------------------------ */

/* Path MTU probing on a UDP socket (family 4 or 6): every datagram leaves with DF set (IPv6: is
 * never fragmented) whatever size the kernel has cached for the path, and ICMP "too big" does not
 * make the kernel fragment later ones (IP_PMTUDISC_PROBE / IPV6_PMTUDISC_PROBE). Larger than the
 * interface MTU: the send fails with EMSGSIZE. */
int mp_set_pmtu_probe(int fd, int family);

/* ---- bpffs -------------------------------------------------------------------------------- */

/* mkdir -p path and mount a bpffs there unless one is already mounted.
 * Returns 0 if it already was a bpffs, 1 if mounted now. */
int mp_bpffs_mount(const char *path);

/* ---- BPF_PROG_TEST_RUN -------------------------------------------------------------------- */

/* Run program prog_name of object h on data_in. *len_out is in/out: capacity of data_out on
 * entry, size of the output packet on return (may exceed the capacity: then -ENOSPC and the
 * output is truncated). *duration_ns is the mean duration of one run. */
int mp_prog_test_run(int h, const char *prog_name, const void *data_in, unsigned len_in,
                     void *data_out, unsigned *len_out, unsigned *retval, unsigned repeat,
                     unsigned *duration_ns);
/* The same with a context: for tc programs a struct __sk_buff whose allowed fields (mark,
 * priority, ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs, gso_size, hwtstamp) the
 * kernel copies into the test skb; ifindex > 1 picks the skb's device in the caller's network
 * namespace. ctx_len_in 0: no context. *ctx_len_out is in/out like *len_out (0: not wanted). */
int mp_prog_test_run_ctx(int h, const char *prog_name, const void *data_in, unsigned len_in,
                         void *data_out, unsigned *len_out, const void *ctx_in,
                         unsigned ctx_len_in, void *ctx_out, unsigned *ctx_len_out,
                         unsigned *retval, unsigned repeat, unsigned *duration_ns);

/* Run prog_name once on each of n packets lying back to back in data (packet i: lens[i]
 * bytes); retvals[i] = its verdict. Output packets are discarded. For fuzz tests. */
int mp_prog_test_run_batch(int h, const char *prog_name, const void *data, const unsigned *lens,
                           unsigned n, int *retvals);

/* ---- ethtool (legacy ioctls) -------------------------------------------------------------- */

/* feature: "gro", "gso", "tso", "sg", "tx-csum", "rx-csum". */
int mp_ethtool_set(const char *ifname, const char *feature, int on);
/* Returns 0 or 1. */
int mp_ethtool_get(const char *ifname, const char *feature);

/* ---- packet capture ----------------------------------------------------------------------- */

/* Frames sent and received by ifname (calling thread's namespace) during timeout_ms, at most
 * max_frames: back to back in buf (cap bytes), lengths in lens. Returns how many. For tests. */
int mp_capture(const char *ifname, unsigned timeout_ms, unsigned max_frames, void *buf, unsigned cap,
               unsigned *lens);

/* ---- 9. flood (the lab's attacker) -------------------------------------------------------------
 * Whole IP packets through a raw socket at a rate, IPv4 sources optionally randomised; returns
 * the number sent (test/helpers/attacker.ts). Needs CAP_NET_RAW. */
int mp_flood(int family, const void *pkts, const unsigned *lens, unsigned n, unsigned pps,
	     unsigned duration_ms, unsigned total, unsigned rand_src_bits);

#ifdef __cplusplus
}
#endif

#endif /* MPCTL_LIBMPCTL_H */
