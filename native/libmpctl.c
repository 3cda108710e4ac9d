/* libmpctl — see libmpctl.h for the conventions. Sections follow the header:
 *   1. error buffer and libbpf log capture
 *   2. objects (open/load/pin, close)
 *   3. tc attach/detach
 *   4. maps
 *   5. bpffs
 *   6. BPF_PROG_TEST_RUN
 *   7. ethtool
 */
#include "libmpctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <poll.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/magic.h>
#include <linux/sockios.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

/* ---- 1. error buffer and libbpf log capture ------------------------------------------------- */

#define ERR_LEN 8192
#define LOG_HEAD 1024 /* first libbpf lines of a call: usually the reason */
#define LOG_TAIL 4096 /* last bytes: the end of a verifier log names the failing insn */

static __thread char err_buf[ERR_LEN];

/* libbpf warnings emitted during the current call, kept as head + tail. */
static __thread char log_head[LOG_HEAD];
static __thread size_t log_head_len;
static __thread char log_tail[LOG_TAIL]; /* ring */
static __thread size_t log_tail_pos;     /* next write index */
static __thread size_t log_tail_total;   /* bytes ever written to the ring */

static bool libbpf_debug;

static void log_reset(void)
{
	log_head_len = 0;
	log_tail_pos = 0;
	log_tail_total = 0;
}

static void log_append(const char *s, size_t n)
{
	while (n && log_head_len < LOG_HEAD - 1) {
		log_head[log_head_len++] = *s++;
		n--;
	}
	log_head[log_head_len] = '\0';
	for (; n; n--) {
		log_tail[log_tail_pos] = *s++;
		log_tail_pos = (log_tail_pos + 1) % LOG_TAIL;
		log_tail_total++;
	}
}

/* Did libbpf (e.g. relaying the kernel's extack message) say this during the current call? */
static bool log_contains(const char *needle)
{
	return log_head_len && strstr(log_head, needle) != NULL;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (libbpf_debug) {
		va_list ap2;
		va_copy(ap2, ap);
		vfprintf(stderr, fmt, ap2);
		va_end(ap2);
	}
	if (level == LIBBPF_DEBUG)
		return 0;
	/* A verifier log arrives as one message: format it whole, its tail is what matters. */
	char line[512];
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n >= (int)sizeof(line)) {
		char *big = malloc((size_t)n + 1);
		if (big) {
			vsnprintf(big, (size_t)n + 1, fmt, ap2);
			log_append(big, (size_t)n);
			free(big);
		} else {
			log_append(line, sizeof(line) - 1);
		}
	} else if (n > 0) {
		log_append(line, (size_t)n);
	}
	va_end(ap2);
	return 0;
}

__attribute__((constructor)) static void mp_init(void)
{
	libbpf_debug = getenv("MPCTL_LIBBPF_DEBUG") != NULL;
	libbpf_set_print(libbpf_print);
}

/* Start of every exported call: forget the previous error and log. */
static void begin(void)
{
	err_buf[0] = '\0';
	log_reset();
}

/* Append the captured libbpf log to err_buf, one line per warning, joined by " | ". */
static void err_append_log(void)
{
	size_t len = strlen(err_buf);
	if (log_head_len == 0 || len + 16 >= ERR_LEN)
		return;
	char joined[LOG_HEAD + LOG_TAIL + 32];
	size_t j = 0;
	for (size_t i = 0; i < log_head_len; i++)
		joined[j++] = log_head[i];
	if (log_tail_total) {
		size_t have = log_tail_total < LOG_TAIL ? log_tail_total : LOG_TAIL;
		size_t start = (log_tail_pos + LOG_TAIL - have) % LOG_TAIL;
		if (log_tail_total > LOG_TAIL) {
			const char *gap = "\n...\n";
			for (const char *g = gap; *g; g++)
				joined[j++] = *g;
		}
		for (size_t i = 0; i < have; i++)
			joined[j++] = log_tail[(start + i) % LOG_TAIL];
	}
	while (j && (joined[j - 1] == '\n' || joined[j - 1] == ' '))
		j--;
	joined[j] = '\0';

	char *out = err_buf + len;
	size_t room = ERR_LEN - len;
	int n = snprintf(out, room, "; ");
	out += n;
	room -= (size_t)n;
	for (size_t i = 0; i < j && room > 4; i++) {
		if (joined[i] == '\n') {
			*out++ = ' ';
			*out++ = '|';
			*out++ = ' ';
			room -= 3;
		} else {
			*out++ = joined[i];
			room--;
		}
	}
	*out = '\0';
}

/* Record a failure: "<formatted context>: <strerror(err)>[; libbpf log]". Returns -err. */
__attribute__((format(printf, 2, 3))) static int fail(int err, const char *fmt, ...)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		err = EINVAL;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err_buf, ERR_LEN, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n < ERR_LEN)
		snprintf(err_buf + n, ERR_LEN - (size_t)n, ": %s", strerror(err));
	err_append_log();
	return -err;
}

const char *mp_last_error(void)
{
	return err_buf;
}

/* ---- 2. objects ----------------------------------------------------------------------------- */

#define MAX_OBJS 64

static struct {
	struct bpf_object *obj;
	char path[PATH_MAX];
} objs[MAX_OBJS];

static struct bpf_object *obj_get(int h, const char *op)
{
	if (h < 0 || h >= MAX_OBJS || !objs[h].obj) {
		fail(EBADF, "%s: no loaded object with handle %d", op, h);
		return NULL;
	}
	return objs[h].obj;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int mp_bpf_open_load(const char *obj_path, const char *pin_maps_dir)
{
	begin();
	int h;
	for (h = 0; h < MAX_OBJS && objs[h].obj; h++)
		;
	if (h == MAX_OBJS)
		return fail(EMFILE, "bpf_object__open_file(%s): all %d object handles in use",
			    obj_path, MAX_OBJS);

	struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
	if (!obj)
		return fail(errno, "bpf_object__open_file(%s)", obj_path);

	int err;
	if (pin_maps_dir && pin_maps_dir[0]) {
		err = mkdir_p(pin_maps_dir);
		if (err) {
			fail(err, "mkdir %s (pin directory for %s)", pin_maps_dir, obj_path);
			goto out_close;
		}
		struct bpf_map *map;
		bpf_object__for_each_map(map, obj) {
			/* .rodata/.data/.bss carry this object's config: never share them. */
			if (bpf_map__is_internal(map))
				continue;
			char pin[PATH_MAX];
			if (snprintf(pin, sizeof(pin), "%s/%s", pin_maps_dir,
				     bpf_map__name(map)) >= (int)sizeof(pin)) {
				err = fail(ENAMETOOLONG, "pin path %s/%s", pin_maps_dir,
					   bpf_map__name(map));
				goto out_close;
			}
			err = bpf_map__set_pin_path(map, pin);
			if (err) {
				fail(err, "bpf_map__set_pin_path(%s, %s) in %s", bpf_map__name(map),
				     pin, obj_path);
				goto out_close;
			}
		}
	}

	err = bpf_object__load(obj);
	if (err) {
		fail(err, "bpf_object__load(%s)", obj_path);
		goto out_close;
	}
	objs[h].obj = obj;
	snprintf(objs[h].path, sizeof(objs[h].path), "%s", obj_path);
	return h;

out_close:
	bpf_object__close(obj);
	return err < 0 ? err : -EINVAL;
}

static void info_forget(int fd); /* the map info cache (section 4) */

int mp_bpf_close(int h)
{
	begin();
	struct bpf_object *obj = obj_get(h, "bpf_object__close");
	if (!obj)
		return -EBADF;
	struct bpf_map *m;
	bpf_object__for_each_map(m, obj)
		info_forget(bpf_map__fd(m));
	bpf_object__close(obj);
	objs[h].obj = NULL;
	objs[h].path[0] = '\0';
	return 0;
}

/* Program prog_name of object h, or -EBADF / -ENOENT with the error recorded. */
static int prog_get(int h, const char *prog_name, const char *op, struct bpf_program **prog)
{
	struct bpf_object *obj = obj_get(h, op);
	if (!obj)
		return -EBADF;
	*prog = bpf_object__find_program_by_name(obj, prog_name);
	if (!*prog)
		return fail(ENOENT, "%s: no program '%s' in %s", op, prog_name, objs[h].path);
	return 0;
}

/* The instructions the verifier walked to accept program prog_name of object h (its
 * "processed" count, kernel 5.16+), or a negative errno. */
int mp_prog_verified_insns(int h, const char *prog_name)
{
	begin();
	struct bpf_program *prog;
	int e = prog_get(h, prog_name, "bpf_obj_get_info_by_fd", &prog);
	if (e)
		return e;
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return fail(errno, "bpf_obj_get_info_by_fd(%s)", prog_name);
	return (int)info.verified_insns;
}

/* ---- 3. tc ---------------------------------------------------------------------------------- */

static const char *dir_name(int egress)
{
	return egress ? "egress" : "ingress";
}

int mp_tc_attach(int h, const char *prog_name, int ifindex, int egress, unsigned priority,
		 unsigned handle)
{
	begin();
	struct bpf_program *prog;
	int err = prog_get(h, prog_name, "bpf_tc_attach", &prog);
	if (err)
		return err;
	if (priority == 0 || priority > 0xffff || handle == 0)
		return fail(EINVAL,
			    "bpf_tc_attach(%s, ifindex %d %s): priority must be 1..65535 and handle "
			    "non-zero (got %u, %u) for an idempotent replace",
			    prog_name, ifindex, dir_name(egress), priority, handle);

	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return fail(err, "bpf_tc_hook_create(ifindex %d %s)", ifindex, dir_name(egress));

	log_reset(); /* -EEXIST above logs a warning that is not a failure */
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(prog),
			    .flags = BPF_TC_F_REPLACE, .priority = priority, .handle = handle);
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		return fail(err, "bpf_tc_attach(%s, ifindex %d %s, pref %u handle 0x%x)",
			    prog_name, ifindex, dir_name(egress), priority, handle);
	return 0;
}

int mp_tc_detach(int ifindex, int egress, unsigned priority, unsigned handle)
{
	begin();
	if (priority == 0 || priority > 0xffff || handle == 0)
		return fail(EINVAL, "bpf_tc_detach(ifindex %d %s): bad priority/handle %u/%u",
			    ifindex, dir_name(egress), priority, handle);
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .priority = priority, .handle = handle);
	int err = bpf_tc_detach(&hook, &opts);
	/* -ENOENT: the filter is gone. -EINVAL with "Parent Qdisc doesn't exists": clsact is gone. */
	if (err == -ENOENT || (err == -EINVAL && log_contains("Parent Qdisc"))) {
		log_reset();
		return 0;
	}
	if (err)
		return fail(err, "bpf_tc_detach(ifindex %d %s, pref %u handle 0x%x)", ifindex,
			    dir_name(egress), priority, handle);
	return 0;
}

int mp_tc_hook_destroy(int ifindex)
{
	begin();
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int err = bpf_tc_hook_destroy(&hook);
	/* No clsact: -ENOENT if the device never had an ingress/clsact qdisc, -EINVAL "Invalid
	 * handle" if it had one before (the slot now holds the noop qdisc, handle 0). */
	if (err == -ENOENT || (err == -EINVAL && log_contains("Invalid handle"))) {
		log_reset();
		return 0;
	}
	if (err)
		return fail(err, "bpf_tc_hook_destroy(ifindex %d clsact)", ifindex);
	return 0;
}

/* ---- 4. maps -------------------------------------------------------------------------------- */

int mp_map_fd(int h, const char *map_name)
{
	begin();
	struct bpf_object *obj = obj_get(h, "bpf_object__find_map_fd_by_name");
	if (!obj)
		return -EBADF;
	int fd = bpf_object__find_map_fd_by_name(obj, map_name);
	if (fd < 0)
		return fail(ENOENT, "no map '%s' in %s", map_name, objs[h].path);
	return fd;
}

/* A map's info by fd, kept after the first query: every lookup and update checks the caller's
 * buffers against it, and a second system call per lookup was half of the control plane's
 * idle cost. An entry is forgotten when its fd is closed through this library (mp_close_fd,
 * mp_bpf_close) or handed out again (mp_obj_get); fds are never closed behind its back. */
#define INFO_CACHE 1024
static struct {
	bool valid;
	struct bpf_map_info info;
} info_cache[INFO_CACHE];

static void info_forget(int fd)
{
	if (fd >= 0 && fd < INFO_CACHE)
		info_cache[fd].valid = false;
}

static int map_info(int map_fd, struct bpf_map_info *info, const char *op)
{
	if (map_fd >= 0 && map_fd < INFO_CACHE && info_cache[map_fd].valid) {
		*info = info_cache[map_fd].info;
		return 0;
	}
	memset(info, 0, sizeof(*info));
	__u32 len = sizeof(*info);
	int err = bpf_obj_get_info_by_fd(map_fd, info, &len);
	if (err)
		return fail(err, "%s: bpf_obj_get_info_by_fd(fd %d)", op, map_fd);
	if (map_fd >= 0 && map_fd < INFO_CACHE) {
		info_cache[map_fd].info = *info;
		info_cache[map_fd].valid = true;
	}
	return 0;
}

static bool is_percpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

/* Size of the value buffer the kernel reads/writes for one element. */
static size_t value_len_needed(const struct bpf_map_info *info)
{
	if (!is_percpu(info->type))
		return info->value_size;
	int ncpus = libbpf_num_possible_cpus();
	return (size_t)((info->value_size + 7) & ~7u) * (size_t)(ncpus > 0 ? ncpus : 1);
}

/* Check caller buffers against the map; value_len < 0 means "no value buffer". */
static int check_sizes(int map_fd, unsigned key_len, long value_len, const char *op)
{
	struct bpf_map_info info;
	int err = map_info(map_fd, &info, op);
	if (err)
		return err;
	if (key_len != info.key_size)
		return fail(EINVAL, "%s(map '%s' fd %d): key is %u bytes, map key_size is %u", op,
			    info.name, map_fd, key_len, info.key_size);
	if (value_len >= 0 && (size_t)value_len != value_len_needed(&info))
		return fail(EINVAL,
			    "%s(map '%s' fd %d): value buffer is %ld bytes, map needs %zu%s", op,
			    info.name, map_fd, value_len, value_len_needed(&info),
			    is_percpu(info.type) ? " (round_up(value_size, 8) * possible CPUs)"
						 : "");
	return 0;
}

int mp_map_info(int map_fd, unsigned *type, unsigned *key_size, unsigned *value_size,
		unsigned *max_entries, char *name_out, unsigned name_len)
{
	begin();
	struct bpf_map_info info;
	int err = map_info(map_fd, &info, "mp_map_info");
	if (err)
		return err;
	if (type)
		*type = info.type;
	if (key_size)
		*key_size = info.key_size;
	if (value_size)
		*value_size = info.value_size;
	if (max_entries)
		*max_entries = info.max_entries;
	if (name_out && name_len)
		snprintf(name_out, name_len, "%s", info.name);
	return 0;
}

int mp_map_update(int map_fd, const void *key, unsigned key_len, const void *value,
		  unsigned value_len, unsigned long long flags)
{
	begin();
	int err = check_sizes(map_fd, key_len, value_len, "bpf_map_update_elem");
	if (err)
		return err;
	err = bpf_map_update_elem(map_fd, key, value, flags);
	if (err)
		return fail(err, "bpf_map_update_elem(fd %d, flags 0x%llx)", map_fd, flags);
	return 0;
}

int mp_map_lookup(int map_fd, const void *key, unsigned key_len, void *value, unsigned value_len)
{
	begin();
	int err = check_sizes(map_fd, key_len, value_len, "bpf_map_lookup_elem");
	if (err)
		return err;
	err = bpf_map_lookup_elem(map_fd, key, value);
	if (err)
		return fail(err, "bpf_map_lookup_elem(fd %d)", map_fd);
	return 0;
}

int mp_map_delete(int map_fd, const void *key, unsigned key_len)
{
	begin();
	int err = check_sizes(map_fd, key_len, -1, "bpf_map_delete_elem");
	if (err)
		return err;
	err = bpf_map_delete_elem(map_fd, key);
	if (err)
		return fail(err, "bpf_map_delete_elem(fd %d)", map_fd);
	return 0;
}

int mp_map_next_key(int map_fd, const void *key, void *next, unsigned key_len)
{
	begin();
	int err = check_sizes(map_fd, key_len, -1, "bpf_map_get_next_key");
	if (err)
		return err;
	err = bpf_map_get_next_key(map_fd, key, next);
	if (err)
		return fail(err, "bpf_map_get_next_key(fd %d)", map_fd);
	return 0;
}

/* Elements 0..count-1 of an array map (per-CPU too) in one BPF_MAP_LOOKUP_BATCH system call;
 * a kernel without batch lookups for the map gets one lookup per element. */
int mp_map_lookup_array(int map_fd, unsigned count, void *values, unsigned values_len)
{
	begin();
	struct bpf_map_info info;
	int err = map_info(map_fd, &info, "mp_map_lookup_array");
	if (err)
		return err;
	if (info.type != BPF_MAP_TYPE_ARRAY && info.type != BPF_MAP_TYPE_PERCPU_ARRAY)
		return fail(EINVAL, "mp_map_lookup_array: map '%s' (fd %d) is not an array", info.name, map_fd);
	size_t one = value_len_needed(&info);
	if (count == 0 || count > info.max_entries || (size_t)values_len != one * count)
		return fail(EINVAL, "mp_map_lookup_array(map '%s' fd %d): %u elements (max %u) in %u bytes, need %zu each",
			    info.name, map_fd, count, info.max_entries, values_len, one);
	__u32 keys[count];
	__u32 out_batch = 0, n = count;
	err = bpf_map_lookup_batch(map_fd, NULL, &out_batch, keys, values, &n, NULL);
	if ((err == 0 || errno == ENOENT) && n == count)
		return 0;
	for (__u32 k = 0; k < count; k++) { /* no batch support: one by one */
		err = bpf_map_lookup_elem(map_fd, &k, (char *)values + one * k);
		if (err)
			return fail(err, "bpf_map_lookup_elem(fd %d, key %u)", map_fd, k);
	}
	return 0;
}

int mp_map_dump(int map_fd, void *keys, unsigned keys_len, void *values, unsigned values_len, unsigned max)
{
	begin();
	struct bpf_map_info info;
	int err = map_info(map_fd, &info, "mp_map_dump");
	if (err)
		return err;
	if (is_percpu(info.type) || info.type == BPF_MAP_TYPE_ARRAY)
		return fail(EINVAL, "mp_map_dump: map '%s' (fd %d) is not a shared hash map", info.name, map_fd);
	if ((size_t)keys_len != (size_t)info.key_size * max || (size_t)values_len != (size_t)info.value_size * max)
		return fail(EINVAL, "mp_map_dump(map '%s' fd %d): %u elements need %zu key and %zu value bytes, got %u and %u",
			    info.name, map_fd, max, (size_t)info.key_size * max, (size_t)info.value_size * max, keys_len, values_len);
	unsigned got = 0;
	__u32 batch = 0;
	bool first = true;
	while (got < max) {
		__u32 n = max - got;
		err = bpf_map_lookup_batch(map_fd, first ? NULL : &batch, &batch, (char *)keys + (size_t)got * info.key_size,
					   (char *)values + (size_t)got * info.value_size, &n, NULL);
		first = false;
		if (err && errno != ENOENT)
			break; /* EINVAL/ENOTSUPP: no batches for this map; ENOSPC: a bucket beyond max */
		got += n;
		if (err) /* ENOENT: the last batch */
			return (int)got;
	}
	if (got >= max)
		return (int)got;
	/* one by one from the start */
	got = 0;
	char *prev = NULL;
	while (got < max) {
		char *k = (char *)keys + (size_t)got * info.key_size;
		if (bpf_map_get_next_key(map_fd, prev, k))
			break;
		if (bpf_map_lookup_elem(map_fd, k, (char *)values + (size_t)got * info.value_size) == 0) {
			prev = k;
			got++;
		}
		/* deleted meanwhile: its slot is overwritten by the next key */
	}
	return (int)got;
}

/* ---- BPF_F_MMAPABLE arrays: read as memory, no system call per read ------------------------- */

#define MP_MMAPS 32
static struct {
	void *p;
	size_t len;
} mmaps[MP_MMAPS];

int mp_map_mmap(int map_fd)
{
	begin();
	struct bpf_map_info info;
	int err = map_info(map_fd, &info, "mp_map_mmap");
	if (err)
		return err;
	if (info.type != BPF_MAP_TYPE_ARRAY || !(info.map_flags & BPF_F_MMAPABLE))
		return fail(EINVAL, "mp_map_mmap: map '%s' (fd %d) is not a BPF_F_MMAPABLE array", info.name, map_fd);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = ((size_t)((info.value_size + 7) & ~7u) * info.max_entries + page - 1) / page * page;
	for (int i = 0; i < MP_MMAPS; i++) {
		if (mmaps[i].p)
			continue;
		void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, map_fd, 0);
		if (p == MAP_FAILED)
			return fail(errno, "mmap(map '%s' fd %d, %zu bytes)", info.name, map_fd, len);
		mmaps[i].p = p;
		mmaps[i].len = len;
		return i;
	}
	return fail(ENOSPC, "mp_map_mmap: more than %d maps mapped", MP_MMAPS);
}

int mp_mmap_read(int h, unsigned off, void *out, unsigned len)
{
	begin();
	if (h < 0 || h >= MP_MMAPS || !mmaps[h].p || (size_t)off + len > mmaps[h].len)
		return fail(EINVAL, "mp_mmap_read(%d, %u, %u): out of the mapping", h, off, len);
	memcpy(out, (const char *)mmaps[h].p + off, len);
	return 0;
}

int mp_munmap(int h)
{
	begin();
	if (h < 0 || h >= MP_MMAPS || !mmaps[h].p)
		return fail(EINVAL, "mp_munmap(%d): not mapped", h);
	munmap(mmaps[h].p, mmaps[h].len);
	mmaps[h].p = NULL;
	return 0;
}

/* ---- one call per control-loop tick: every read it needs, into one shared area ------------- */

#define MP_TICK_AREA (256u * 1024u)
#define MP_TICK_OPS 16

static unsigned char tick_area[MP_TICK_AREA] __attribute__((aligned(64)));
static struct {
	int kind; /* 0: array map elements 0..count-1 (mp_map_lookup_array); 1: a mapping's bytes */
	int fd;   /* map fd, or mp_map_mmap handle */
	unsigned count, off, len;
} tick_ops[MP_TICK_OPS];
static unsigned tick_n;

void *mp_tick_area(void)
{
	return tick_area;
}

unsigned mp_tick_area_len(void)
{
	return MP_TICK_AREA;
}

int mp_tick_add(int kind, int fd, unsigned count, unsigned off, unsigned len)
{
	begin();
	if (tick_n >= MP_TICK_OPS)
		return fail(ENOSPC, "mp_tick_add: more than %d reads", MP_TICK_OPS);
	if ((size_t)off + len > MP_TICK_AREA || off % 8)
		return fail(EINVAL, "mp_tick_add: %u bytes at %u do not fit the %u-byte area (8-aligned)", len, off, MP_TICK_AREA);
	if (kind == 0) {
		struct bpf_map_info info;
		int err = map_info(fd, &info, "mp_tick_add");
		if (err)
			return err;
		if (count == 0 || (size_t)len != value_len_needed(&info) * count)
			return fail(EINVAL, "mp_tick_add(map '%s' fd %d): %u elements in %u bytes, need %zu each",
				    info.name, fd, count, len, value_len_needed(&info));
	} else if (kind != 1 || fd < 0 || fd >= MP_MMAPS || !mmaps[fd].p || len > mmaps[fd].len) {
		return fail(EINVAL, "mp_tick_add: kind %d, handle %d, %u bytes: not a read of a mapping", kind, fd, len);
	}
	tick_ops[tick_n].kind = kind;
	tick_ops[tick_n].fd = fd;
	tick_ops[tick_n].count = count;
	tick_ops[tick_n].off = off;
	tick_ops[tick_n].len = len;
	return (int)tick_n++;
}

void mp_tick_clear(void)
{
	tick_n = 0;
}

int mp_tick(void)
{
	begin();
	for (unsigned i = 0; i < tick_n; i++) {
		int err = tick_ops[i].kind == 0
				  ? mp_map_lookup_array(tick_ops[i].fd, tick_ops[i].count, tick_area + tick_ops[i].off, tick_ops[i].len)
				  : mp_mmap_read(tick_ops[i].fd, 0, tick_area + tick_ops[i].off, tick_ops[i].len);
		if (err)
			return err;
	}
	return 0;
}

int mp_obj_get(const char *pinned_path)
{
	begin();
	int fd = bpf_obj_get(pinned_path);
	if (fd < 0)
		return fail(errno, "bpf_obj_get(%s)", pinned_path);
	info_forget(fd);
	return fd;
}

int mp_close_fd(int fd)
{
	begin();
	info_forget(fd);
	if (close(fd))
		return fail(errno, "close(fd %d)", fd);
	return 0;
}

int mp_set_pmtu_probe(int fd, int family)
{
	begin();
	int v = IP_PMTUDISC_PROBE; /* == IPV6_PMTUDISC_PROBE */
	int level = family == 6 ? IPPROTO_IPV6 : IPPROTO_IP;
	int opt = family == 6 ? IPV6_MTU_DISCOVER : IP_MTU_DISCOVER;

	if (setsockopt(fd, level, opt, &v, sizeof(v)))
		return fail(errno, "setsockopt(fd %d, %s, PMTUDISC_PROBE)", fd,
			    family == 6 ? "IPV6_MTU_DISCOVER" : "IP_MTU_DISCOVER");
	return 0;
}

int mp_num_possible_cpus(void)
{
	begin();
	int n = libbpf_num_possible_cpus();
	if (n < 0)
		return fail(n, "libbpf_num_possible_cpus");
	return n;
}

/* ---- 5. bpffs ------------------------------------------------------------------------------- */

int mp_bpffs_mount(const char *path)
{
	begin();
	struct statfs st;
	if (statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	int err = mkdir_p(path);
	if (err)
		return fail(err, "mkdir -p %s", path);
	if (mount("bpf", path, "bpf", 0, "mode=0700"))
		return fail(errno, "mount -t bpf bpf %s", path);
	return 1;
}

/* ---- 6. BPF_PROG_TEST_RUN ------------------------------------------------------------------- */

int mp_prog_test_run_ctx(int h, const char *prog_name, const void *data_in, unsigned len_in,
			 void *data_out, unsigned *len_out, const void *ctx_in, unsigned ctx_len_in,
			 void *ctx_out, unsigned *ctx_len_out, unsigned *retval, unsigned repeat,
			 unsigned *duration_ns)
{
	begin();
	struct bpf_program *prog;
	int err = prog_get(h, prog_name, "bpf_prog_test_run_opts", &prog);
	if (err)
		return err;
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data_in, .data_size_in = len_in,
			    .data_out = data_out, .data_size_out = len_out ? *len_out : 0,
			    .ctx_in = ctx_len_in ? ctx_in : NULL, .ctx_size_in = ctx_len_in,
			    .ctx_out = ctx_out, .ctx_size_out = ctx_len_out ? *ctx_len_out : 0,
			    .repeat = (int)(repeat ? repeat : 1));
	if (!data_out)
		opts.data_size_out = 0;
	if (!ctx_out || !opts.ctx_size_out) {
		opts.ctx_out = NULL;
		opts.ctx_size_out = 0;
	}
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
	if (len_out)
		*len_out = opts.data_size_out;
	if (ctx_len_out)
		*ctx_len_out = opts.ctx_size_out;
	if (retval)
		*retval = opts.retval;
	if (duration_ns)
		*duration_ns = opts.duration;
	if (err)
		return fail(err, "bpf_prog_test_run_opts(%s in %s, %u bytes in, %u out, ctx %u bytes)",
			    prog_name, objs[h].path, len_in, opts.data_size_out, ctx_len_in);
	return 0;
}

/* The same without a context (struct __sk_buff in/out). */
int mp_prog_test_run(int h, const char *prog_name, const void *data_in, unsigned len_in,
		     void *data_out, unsigned *len_out, unsigned *retval, unsigned repeat,
		     unsigned *duration_ns)
{
	return mp_prog_test_run_ctx(h, prog_name, data_in, len_in, data_out, len_out, NULL, 0, NULL,
				    NULL, retval, repeat, duration_ns);
}

/*
 * Many packets, one call (the fuzz tests run millions): packet i is lens[i] bytes of `data`
 * (the packets back to back), run once each; its verdict goes to retvals[i]. The output
 * packets are not kept. Stops at the first failing run (the error names its index).
 */
int mp_prog_test_run_batch(int h, const char *prog_name, const void *data, const unsigned *lens,
			   unsigned n, int *retvals)
{
	begin();
	struct bpf_program *prog;
	const unsigned char *p = data;
	int err = prog_get(h, prog_name, "bpf_prog_test_run_opts", &prog);
	if (err)
		return err;
	int fd = bpf_program__fd(prog);
	for (unsigned i = 0; i < n; i++) {
		DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p, .data_size_in = lens[i],
				    .repeat = 1);
		err = bpf_prog_test_run_opts(fd, &opts);
		if (err)
			return fail(err, "bpf_prog_test_run_opts(%s in %s, packet %u of %u, %u bytes)",
				    prog_name, objs[h].path, i, n, lens[i]);
		retvals[i] = (int)opts.retval;
		p += lens[i];
	}
	return 0;
}

/* ---- 7. ethtool ----------------------------------------------------------------------------- */

static const struct {
	const char *name;
	__u32 get, set;
} features[] = {
	{ "gro", ETHTOOL_GGRO, ETHTOOL_SGRO },
	{ "gso", ETHTOOL_GGSO, ETHTOOL_SGSO },
	{ "tso", ETHTOOL_GTSO, ETHTOOL_STSO },
	{ "sg", ETHTOOL_GSG, ETHTOOL_SSG },
	{ "tx-csum", ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM },
	{ "rx-csum", ETHTOOL_GRXCSUM, ETHTOOL_SRXCSUM },
};

/* One legacy ETHTOOL_* ioctl on a socket of the calling thread's current netns. */
static int ethtool_ioctl(const char *ifname, const char *feature, bool set, int on)
{
	const char *op = set ? "ethtool set" : "ethtool get";
	__u32 cmd = 0;
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		if (!strcmp(features[i].name, feature))
			cmd = set ? features[i].set : features[i].get;
	if (!cmd)
		return fail(EINVAL,
			    "%s %s on %s: unknown feature (gro, gso, tso, sg, tx-csum, rx-csum)",
			    op, feature, ifname);
	if (strlen(ifname) >= IFNAMSIZ)
		return fail(EINVAL, "%s %s: interface name '%s' too long", op, feature, ifname);

	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return fail(errno, "%s %s on %s: socket", op, feature, ifname);
	struct ethtool_value ev = { .cmd = cmd, .data = on ? 1 : 0 };
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	ifr.ifr_data = (void *)&ev;
	int rc = ioctl(sock, SIOCETHTOOL, &ifr);
	int saved = errno;
	close(sock);
	if (rc < 0)
		return fail(saved, "%s %s%s on %s", op, feature, set ? (on ? " on" : " off") : "",
			    ifname);
	return set ? 0 : (ev.data ? 1 : 0);
}

int mp_ethtool_set(const char *ifname, const char *feature, int on)
{
	begin();
	return ethtool_ioctl(ifname, feature, true, on);
}

int mp_ethtool_get(const char *ifname, const char *feature)
{
	begin();
	return ethtool_ioctl(ifname, feature, false, 0);
}

/* ---- 8. packet capture ------------------------------------------------------------------------ */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Capture the frames that ifname (of the calling thread's namespace) sends and receives for
 * timeout_ms, at most max_frames of them: back to back in buf (each cut to the room left),
 * their lengths in lens. ETH_P_ALL: a socket bound to ETH_P_IP would not see packets before
 * tc ingress (DESIGN.md). Returns the number of frames.
 */
int mp_capture(const char *ifname, unsigned timeout_ms, unsigned max_frames, void *buf, unsigned cap,
	       unsigned *lens)
{
	begin();
	unsigned ifindex = if_nametoindex(ifname);
	if (!ifindex)
		return fail(errno, "capture: no interface %s", ifname);
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		return fail(errno, "capture on %s: socket(AF_PACKET)", ifname);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)ifindex };
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		int e = errno;
		close(fd);
		return fail(e, "capture on %s: bind", ifname);
	}
	unsigned n = 0, used = 0;
	long long until = now_ms() + timeout_ms;
	while (n < max_frames && used < cap) {
		long long left = until - now_ms();
		if (left <= 0)
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return fail(e, "capture on %s: poll", ifname);
		}
		if (r == 0)
			break;
		ssize_t got = recv(fd, (char *)buf + used, cap - used, 0);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			int e = errno;
			close(fd);
			return fail(e, "capture on %s: recv", ifname);
		}
		lens[n++] = (unsigned)got;
		used += (unsigned)got;
	}
	close(fd);
	return (int)n;
}

/* ---- 9. flood (the lab's attacker) ------------------------------------------------------------ */

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t csum_add(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)(p[n - 1] << 8);
	return s;
}

static uint64_t flood_rng = 0x9e3779b97f4a7c15ULL;
static uint32_t flood_rand(void)
{
	flood_rng ^= flood_rng << 13;
	flood_rng ^= flood_rng >> 7;
	flood_rng ^= flood_rng << 17;
	return (uint32_t)(flood_rng >> 16);
}

/*
 * Send the n whole IP packets of one family (back to back in pkts, lengths in lens) through a
 * raw socket (IP_HDRINCL: source addresses as given, so they may be spoofed), cycling through
 * them at pps a second for duration_ms or until total are sent (0: no count limit). IPv4 only:
 * rand_src_bits > 0 replaces the low bits of each packet's source address with random ones (its
 * header checksum redone; UDP over IPv4 carries checksum 0). Returns the number sent; sends the
 * kernel refused (ENOBUFS) are not counted.
 */
int mp_flood(int family, const void *pkts, const unsigned *lens, unsigned n, unsigned pps,
	     unsigned duration_ms, unsigned total, unsigned rand_src_bits)
{
	begin();
	if (!n || !pps || (family != 4 && family != 6))
		return fail(EINVAL, "flood: family 4 or 6, packets and a rate needed");
	int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (fd < 0)
		return fail(errno, "flood: socket(SOCK_RAW)");
	size_t maxlen = 0;
	for (unsigned i = 0; i < n; i++)
		maxlen = lens[i] > maxlen ? lens[i] : maxlen;
	uint8_t *pkt = malloc(maxlen ? maxlen : 1);
	size_t *offs = malloc(sizeof(size_t) * n);
	if (!pkt || !offs) {
		free(pkt);
		free(offs);
		close(fd);
		return fail(ENOMEM, "flood");
	}
	for (unsigned i = 0, o = 0; i < n; o += lens[i], i++)
		offs[i] = o;
	flood_rng ^= (uint64_t)now_ms() * 0x2545F4914F6CDD1DULL;
	long long start = now_ms();
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned sent = 0, tried = 0;
	for (;;) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		double el = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
		if (now_ms() - start >= (long long)duration_ms || (total && tried >= total))
			break;
		unsigned due = (unsigned)(el * pps) + 1;
		if (total && due > total)
			due = total;
		while (tried < due) {
			unsigned i = tried % n;
			size_t len = lens[i];
			memcpy(pkt, (const uint8_t *)pkts + offs[i], len);
			struct sockaddr_storage ss = { 0 };
			socklen_t sl;
			if (family == 4) {
				struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
				if (len < 20)
					break;
				if (rand_src_bits) {
					uint32_t mask = rand_src_bits >= 32 ? 0xffffffffu : (1u << rand_src_bits) - 1;
					uint32_t s;
					memcpy(&s, pkt + 12, 4);
					s = htonl((ntohl(s) & ~mask) | (flood_rand() & mask));
					memcpy(pkt + 12, &s, 4);
					pkt[10] = pkt[11] = 0;
					uint16_t c = csum_fold(csum_add(0, pkt, (size_t)(pkt[0] & 0xf) * 4));
					pkt[10] = c >> 8;
					pkt[11] = c & 0xff;
				}
				sa->sin_family = AF_INET;
				memcpy(&sa->sin_addr, pkt + 16, 4);
				sl = sizeof(*sa);
			} else {
				struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;
				if (len < 40)
					break;
				sa->sin6_family = AF_INET6;
				memcpy(&sa->sin6_addr, pkt + 24, 16);
				sl = sizeof(*sa);
			}
			tried++;
			if (sendto(fd, pkt, len, 0, (struct sockaddr *)&ss, sl) == (ssize_t)len)
				sent++;
		}
		struct timespec nap = { 0, 50000 };
		nanosleep(&nap, NULL);
	}
	free(pkt);
	free(offs);
	close(fd);
	return (int)sent;
}
