/* linkem — the mpctl lab's link emulator: a layer-2 "wire with properties" between two
 * interfaces of one network namespace (the lab's `ispK`, holding veth ends `a` and `b`).
 *
 *   direction up:   frames received on a -> loss/outage -> delay line -> sent out of b
 *   direction down: frames received on b -> loss/outage -> delay line -> sent out of a
 *
 * Design
 * - One AF_PACKET SOCK_RAW socket per interface, bound to its ifindex with ETH_P_ALL (such taps
 *   see frames before tc ingress), promiscuous, PACKET_IGNORE_OUTGOING (we never see what we
 *   send). The socket of `a` receives the up direction and transmits the down direction, and
 *   vice versa. Both use PACKET_VNET_HDR: every frame is carried with its virtio_net_hdr, so a
 *   CHECKSUM_PARTIAL frame from veth keeps NEEDS_CSUM/csum_start/csum_offset and the kernel
 *   completes the checksum (or hands it on as partial) when we send; a GSO frame keeps its
 *   gso_type/gso_size and is segmented by the kernel on send. Transmission goes through the
 *   egress qdisc of the interface (no PACKET_QDISC_BYPASS): the lab's tbf there is the rate
 *   limit and bottleneck queue; its tail drop shows up as ENOBUFS (counted as dropped_queue).
 * - Receive: recvmmsg() batches into per-direction staging buffers (64 KiB each, so GSO frames
 *   fit), then each frame is judged on arrival: oversize, outage (down=1), loss (independent
 *   Bernoulli, loss_ppm), delay line full (limit) — and otherwise copied into a preallocated
 *   2 KiB slot (LIFO free list, so only the peak occupancy is ever touched) or, if larger
 *   (GSO only), into a 64 KiB buffer from a small lazily grown pool. No malloc per packet.
 * - Delay line: a FIFO ring of {release time, length, buffer id} per direction. Release time
 *   = now + delay + jitter, jitter UNIFORM in [-jitter_us, +jitter_us]; then clamped to
 *   >= now and >= the previous release of that direction, so frames are never reordered.
 *   Setting down=1 drops what is still in the line (a cut cable); down=0 lets new frames pass
 *   at once. Parameter changes apply to frames arriving afterwards.
 * - Trace-driven rate (trace=FILE, Mahimahi's format): frames the delay line releases enter a
 *   second FIFO, the rate queue, drained at the trace's delivery opportunities (one per line, ms
 *   timestamps from when the trace was set, looping with the last timestamp as the period). An
 *   opportunity carries 1500 bytes of IP packet (frame minus its 14-byte Ethernet header); a
 *   frame may span opportunities; an opportunity serves only frames already queued at its time
 *   and is wasted otherwise. The rate queue tail-drops at qlimit bytes (tbf's limit), counted as
 *   dropped_queue. A constant `rate` stays tbf's job; both may be set (tbf then caps the trace).
 * - Timing: CLOCK_MONOTONIC, PR_SET_TIMERSLACK 1 ns, and ppoll() with a nanosecond timeout
 *   up to the earliest release (hrtimer-backed). Due frames go out with sendmmsg() batches.
 *   Zero delay: frames are sent in the same loop iteration that received them.
 * - Control: abstract UNIX datagram socket "@mpctl-linkem" (abstract names are per network
 *   namespace, so one per isp namespace). One text request per datagram, one reply datagram
 *   to the sender (which must be bound, e.g. autobind). See linkem.md for the protocol.
 *   `linkem --ctl-send NAME REQUEST` is a tiny client for that socket.
 * - SIGTERM/SIGINT are blocked except inside ppoll(), so they end the loop cleanly (exit 0).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define VNET_LEN     ((uint32_t)sizeof(struct virtio_net_hdr)) /* 10 bytes */
#define SLOT_SIZE    2048u                 /* vnet header + frame, normal frames */
#define MAX_FRAME    (SLOT_SIZE - VNET_LEN) /* 2038: MTU 1500 + VLAN tags + slack */
#define BIG_SIZE     (65536u + VNET_LEN + 64u) /* GSO frames (gso_max_size 64 KiB) */
#define BIG_MAX      256u                  /* GSO buffers per direction */
#define BIG_FLAG     0x80000000u
#define BATCH        64
#define MAX_LIMIT    65536u                /* delay line capacity (packets), power of two */
#define DEF_LIMIT    65536u
#define MAX_DELAY_US 60000000ull           /* 60 s */
#define SOCK_BUF     (8 << 20)
#define CTL_DEFAULT  "mpctl-linkem"
#define OPP_BYTES    1500u                 /* a trace line: one MTU-sized delivery opportunity */
#define ETH_HLEN_    14u
#define MAX_TRACE    (16u << 20)           /* lines */
#define MAX_QLIMIT   (1ull << 32)          /* rate queue limit, bytes */
#define TRACE_PATH   512
#define LATE_NS      2000000ull            /* a frame released later than this after its due time counts as late */

/* A delivery-opportunity trace: ms offsets (non-decreasing), looping every period_ms. */
struct trace { uint32_t *ms; uint32_t n; uint64_t period_ms; char path[TRACE_PATH]; };

struct params { uint64_t delay_us, jitter_us, loss_ppm, limit, qlimit, mtu; bool down; struct trace *trace; };
struct stats {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, dropped_loss, dropped_down, dropped_queue,
      dropped_overflow, dropped_oversize, gso, dropped_socket;
  /* the emulator's own health: frames it released more than LATE_NS after their due time (a
   * starved process: the link then delays more than it was told) and the worst lateness */
  uint64_t late_packets, late_max_ns;
};
struct pkt { uint64_t t; uint32_t len; uint32_t id; }; /* len includes the vnet header */

struct dir {
  const char *name;     /* "up" / "down" */
  const char *rx_if;    /* interface this direction receives on */
  int rx_ifindex, rx_fd, tx_fd;
  struct params p;
  struct stats s;
  struct pkt *q;        /* ring of MAX_LIMIT entries */
  uint32_t head, count;
  uint64_t last_release;
  /* rate queue (trace mode): frames released by the delay line, waiting for opportunities */
  struct pkt *rq;       /* ring of MAX_LIMIT entries */
  uint32_t rq_head, rq_count, rq_part; /* rq_part: bytes of the head frame already delivered */
  uint64_t rq_bytes;    /* IP bytes queued */
  uint64_t t0;          /* trace start (ns) */
  uint64_t opp_cycle;   /* next opportunity: ms[opp_i] + opp_cycle * period */
  uint32_t opp_i;
  uint64_t cur_opp;     /* time (ns) of the opportunity whose bytes are left in `credit` */
  uint32_t credit;
  uint8_t *slots;       /* MAX_LIMIT * SLOT_SIZE, mmap'ed lazily */
  uint32_t *free_slots, nfree;
  uint8_t *big[BIG_MAX];
  uint32_t big_free[BIG_MAX], nbig_free, nbig;
  uint8_t *stage;       /* BATCH * BIG_SIZE receive staging */
  struct mmsghdr rmsg[BATCH], tmsg[BATCH];
  struct iovec riov[BATCH], tiov[BATCH];
};

static struct dir dirs[2];
static const char *if_a = NULL, *if_b = NULL;
static volatile sig_atomic_t stop_flag = 0;
static uint64_t rng[4];

/* ---------- helpers ---------- */

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("linkem: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(code);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rnd(void) { /* xoshiro256** */
  uint64_t r = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
  rng[2] ^= rng[0]; rng[3] ^= rng[1]; rng[1] ^= rng[2]; rng[0] ^= rng[3];
  rng[2] ^= t; rng[3] = rotl(rng[3], 45);
  return r;
}
static uint64_t rnd_below(uint64_t n) { return (uint64_t)(((__uint128_t)rnd() * n) >> 64); }

static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static inline uint8_t *buf_of(struct dir *d, uint32_t id) {
  return (id & BIG_FLAG) ? d->big[id & ~BIG_FLAG] : d->slots + (size_t)id * SLOT_SIZE;
}
static void buf_free(struct dir *d, uint32_t id) {
  if (id & BIG_FLAG) d->big_free[d->nbig_free++] = id & ~BIG_FLAG;
  else d->free_slots[d->nfree++] = id;
}
/* Returns false if no buffer is available (counted as overflow by the caller). */
static bool buf_alloc(struct dir *d, uint32_t len, uint32_t *id) {
  if (len <= SLOT_SIZE) {
    if (!d->nfree) return false;
    *id = d->free_slots[--d->nfree];
    return true;
  }
  if (d->nbig_free) { *id = d->big_free[--d->nbig_free] | BIG_FLAG; return true; }
  if (d->nbig >= BIG_MAX || !(d->big[d->nbig] = malloc(BIG_SIZE))) return false;
  *id = d->nbig++ | BIG_FLAG;
  return true;
}

static void *xmap(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) die(2, "mmap %zu bytes: %s", len, strerror(errno));
  return p;
}

/* ---------- parameters ---------- */

static void trace_free(struct trace *t) {
  if (t) { free(t->ms); free(t); }
}

/* Loads a Mahimahi trace: one non-negative integer (ms) per line, non-decreasing, the last one
 * > 0 (it is the period the trace loops with). Returns NULL or an error message (static). */
static const char *trace_load(const char *path, struct trace **out) {
  static char msg[640];
  if (strlen(path) >= TRACE_PATH) { snprintf(msg, sizeof msg, "trace: path too long '%.64s...'", path); return msg; }
  FILE *f = fopen(path, "re");
  if (!f) { snprintf(msg, sizeof msg, "trace: cannot read '%s' (%s)", path, strerror(errno)); return msg; }
  struct trace *t = calloc(1, sizeof *t);
  uint32_t cap = 0;
  char line[64];
  uint64_t lineno = 0, prev = 0;
  const char *e = NULL;
  while (!e && fgets(line, sizeof line, f)) {
    lineno++;
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = 0;
    if (!l) continue;
    uint64_t v = 0;
    bool okv = l <= 10;
    for (size_t k = 0; okv && k < l; k++) {
      if (line[k] < '0' || line[k] > '9') okv = false;
      else v = v * 10 + (uint64_t)(line[k] - '0');
    }
    if (!okv || v > UINT32_MAX) { snprintf(msg, sizeof msg, "trace: '%s' line %" PRIu64 ": '%.20s' is not a millisecond timestamp", path, lineno, line); e = msg; break; }
    if (v < prev) { snprintf(msg, sizeof msg, "trace: '%s' line %" PRIu64 ": %" PRIu64 " is before the previous line's %" PRIu64, path, lineno, v, prev); e = msg; break; }
    if (t->n >= MAX_TRACE) { snprintf(msg, sizeof msg, "trace: '%s' has more than %u lines", path, MAX_TRACE); e = msg; break; }
    if (t->n == cap) {
      cap = cap ? cap * 2 : 4096;
      uint32_t *m = realloc(t->ms, sizeof(uint32_t) * cap);
      if (!m) { snprintf(msg, sizeof msg, "trace: out of memory"); e = msg; break; }
      t->ms = m;
    }
    t->ms[t->n++] = (uint32_t)v;
    prev = v;
  }
  fclose(f);
  if (!e && (t->n == 0 || t->ms[t->n - 1] == 0)) {
    snprintf(msg, sizeof msg, "trace: '%s' has no opportunity after 0 ms (the last line is the period)", path);
    e = msg;
  }
  if (e) { trace_free(t); return e; }
  t->period_ms = t->ms[t->n - 1];
  snprintf(t->path, sizeof t->path, "%s", path);
  *out = t;
  return NULL;
}

/* Parse "key=value" tokens separated by spaces or commas into *p. Returns NULL or an error
 * message (static buffer). Nothing is applied by the caller unless every token is valid. */
static const char *parse_params(char *s, struct params *p) {
  static char msg[256];
  char *save = NULL;
  struct trace *orig = p->trace; /* a trace loaded here replaces it; the caller owns both */
  for (char *tok = strtok_r(s, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok) {
      snprintf(msg, sizeof msg, "expected key=value, got '%.64s'", tok);
      return msg;
    }
    *eq = 0;
    const char *key = tok, *val = eq + 1;
    uint64_t max, *dst = NULL;
    if (!strcmp(key, "trace")) {
      struct trace *t = NULL;
      if (*val && strcmp(val, "none")) {
        const char *e = trace_load(val, &t);
        if (e) return e;
      }
      if (p->trace != orig) trace_free(p->trace);
      p->trace = t;
      continue;
    }
    if (!strcmp(key, "delay_us")) { dst = &p->delay_us; max = MAX_DELAY_US; }
    else if (!strcmp(key, "jitter_us")) { dst = &p->jitter_us; max = MAX_DELAY_US; }
    else if (!strcmp(key, "loss_ppm")) { dst = &p->loss_ppm; max = 1000000; }
    else if (!strcmp(key, "limit")) { dst = &p->limit; max = MAX_LIMIT; }
    else if (!strcmp(key, "qlimit")) { dst = &p->qlimit; max = MAX_QLIMIT; }
    else if (!strcmp(key, "mtu")) { dst = &p->mtu; max = 65535; }
    else if (!strcmp(key, "down")) { max = 1; }
    else {
      snprintf(msg, sizeof msg, "unknown key '%.32s' (keys: delay_us jitter_us loss_ppm down limit trace qlimit mtu)", key);
      return msg;
    }
    bool okv = *val && strlen(val) <= 12;
    uint64_t v = 0;
    for (const char *c = val; okv && *c; c++) {
      if (*c < '0' || *c > '9') okv = false;
      else v = v * 10 + (uint64_t)(*c - '0');
    }
    if (!okv || v > max || (dst == &p->limit && v < 1)) {
      snprintf(msg, sizeof msg, "%s: invalid value '%.32s' (expected an integer %d..%" PRIu64 ")", key,
               val, dst == &p->limit ? 1 : 0, max);
      return msg;
    }
    if (dst) *dst = v;
    else p->down = v != 0;
  }
  return NULL;
}

static void flush_line(struct dir *d) { /* the cable is cut: drop everything in flight */
  while (d->count) {
    buf_free(d, d->q[d->head].id);
    d->head = (d->head + 1) & (MAX_LIMIT - 1);
    d->count--;
    d->s.dropped_down++;
  }
  while (d->rq_count) {
    buf_free(d, d->rq[d->rq_head].id);
    d->rq_head = (d->rq_head + 1) & (MAX_LIMIT - 1);
    d->rq_count--;
    d->s.dropped_down++;
  }
  d->rq_bytes = 0;
  d->rq_part = 0;
  d->last_release = 0;
}

/* A new trace starts now: its first line is that many ms from now. */
static void trace_restart(struct dir *d) {
  d->t0 = now_ns();
  d->opp_cycle = 0;
  d->opp_i = 0;
  d->credit = 0;
  d->cur_opp = 0;
}

static void apply_params(struct dir *d, const struct params *np) {
  bool was_down = d->p.down;
  struct trace *old = d->p.trace;
  d->p = *np;
  if (old != d->p.trace) {
    trace_free(old);
    trace_restart(d);
  }
  if (!was_down && d->p.down) flush_line(d);
}

/* ---------- data path ---------- */

static void check_iface(struct dir *d, int e) {
  /* ENETDOWN after `ip link set down` is transient; a vanished interface ends the emulator. */
  if (e == ENODEV || e == ENXIO || (int)if_nametoindex(d->rx_if) != d->rx_ifindex) {
    fprintf(stderr, "linkem: interface %s is gone, exiting\n", d->rx_if);
    exit(0);
  }
}

static int rx_batch(struct dir *d) {
  for (int i = 0; i < BATCH; i++) d->rmsg[i].msg_hdr.msg_flags = 0;
  int n = recvmmsg(d->rx_fd, d->rmsg, BATCH, MSG_DONTWAIT, NULL);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) check_iface(d, errno);
    return 0;
  }
  uint64_t now = now_ns();
  for (int i = 0; i < n; i++) {
    uint8_t *buf = d->stage + (size_t)i * BIG_SIZE;
    uint32_t len = d->rmsg[i].msg_len;
    if (len < VNET_LEN) continue;
    const struct virtio_net_hdr *vh = (const void *)buf;
    uint32_t flen = len - VNET_LEN;
    bool gso = vh->gso_type != VIRTIO_NET_HDR_GSO_NONE;
    d->s.rx_packets++;
    d->s.rx_bytes += flen;
    if (gso) d->s.gso++;
    if ((d->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) || (!gso && flen > MAX_FRAME)) { d->s.dropped_oversize++; continue; }
    /* a smaller MTU inside the path that drops silently (a PMTU black hole): the IP packet,
     * or each segment of a GSO frame, longer than mtu */
    if (d->p.mtu && (gso ? (uint64_t)vh->hdr_len + vh->gso_size : flen) > d->p.mtu + ETH_HLEN) { d->s.dropped_oversize++; continue; }
    if (d->p.down) { d->s.dropped_down++; continue; }
    if (d->p.loss_ppm && rnd_below(1000000) < d->p.loss_ppm) { d->s.dropped_loss++; continue; }
    uint32_t id;
    if (d->count >= d->p.limit || !buf_alloc(d, len, &id)) { d->s.dropped_overflow++; continue; }
    memcpy(buf_of(d, id), buf, len);
    uint64_t t = now + d->p.delay_us * 1000;
    if (d->p.jitter_us) {
      uint64_t j = d->p.jitter_us * 1000;
      t = t + rnd_below(2 * j + 1) - j;          /* uniform in [-j, +j] (unsigned wrap ok) */
      if ((int64_t)(t - now) < 0) t = now;
    }
    if (t < d->last_release) t = d->last_release; /* never reorder */
    d->last_release = t;
    struct pkt *pk = &d->q[(d->head + d->count) & (MAX_LIMIT - 1)];
    pk->t = t; pk->len = len; pk->id = id;
    d->count++;
  }
  return n;
}

/* Sends d->tiov[0..n) in order; every frame is either sent or counted as a drop. */
static void xmit(struct dir *d, uint32_t n) {
  uint32_t i = 0;
  while (i < n) {
    int r = sendmmsg(d->tx_fd, &d->tmsg[i], n - i, MSG_DONTWAIT);
    if (r > 0) {
      for (uint32_t k = i; k < i + (uint32_t)r; k++) {
        d->s.tx_packets++;
        d->s.tx_bytes += d->tiov[k].iov_len - VNET_LEN;
      }
      i += (uint32_t)r;
      /* sendmmsg stops at the first failing frame and, having sent some, loses its errno.
       * Do not offer that frame again (a tail drop is final): count it as a queue drop. */
      if (i < n) { d->s.dropped_queue++; i++; }
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else { /* frame i failed: count it and carry on with the rest */
      int e = errno;
      if (e == EMSGSIZE || e == EINVAL) d->s.dropped_oversize++;
      else if (e == ENETDOWN || e == ENXIO || e == ENODEV) d->s.dropped_down++;
      else d->s.dropped_queue++; /* ENOBUFS: qdisc tail drop; EAGAIN: socket send buffer */
      i++;
    }
  }
}

/* IP bytes of a queued frame: what a trace's 1500-byte opportunity carries. */
static inline uint32_t ip_bytes(const struct pkt *pk) {
  uint32_t f = pk->len - VNET_LEN;
  return f > ETH_HLEN_ ? f - ETH_HLEN_ : 1;
}

static inline uint64_t opp_time(const struct dir *d) {
  const struct trace *t = d->p.trace;
  return d->t0 + (d->opp_cycle * t->period_ms + t->ms[d->opp_i]) * 1000000ull;
}

/* Moves the next opportunity to the first one at or after `t` (those before are wasted: no
 * frame that was queued then is left) and returns its time. */
static uint64_t next_opp(struct dir *d, uint64_t t) {
  const struct trace *tr = d->p.trace;
  if (opp_time(d) >= t) return opp_time(d);
  uint64_t need = (t - d->t0 + 999999ull) / 1000000ull; /* first ms offset >= t */
  d->opp_cycle = need / tr->period_ms;
  uint64_t r = need % tr->period_ms;
  uint32_t lo = 0, hi = tr->n - 1; /* ms[n-1] = period > r: the lower bound exists */
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (tr->ms[mid] >= r) hi = mid;
    else lo = mid + 1;
  }
  d->opp_i = lo;
  return opp_time(d);
}

/* Whether the rate queue's frame `pk` (queued at pk->t) completes by `now`; consumes the
 * opportunities it needs. Without a trace everything goes at once. */
static bool serve(struct dir *d, const struct pkt *pk, uint64_t now) {
  if (!d->p.trace) return true;
  for (;;) {
    if (d->credit && pk->t <= d->cur_opp) {
      uint32_t rem = ip_bytes(pk) - d->rq_part;
      if (rem <= d->credit) { d->credit -= rem; d->rq_part = 0; return true; }
      d->rq_part += d->credit;
      d->credit = 0;
      continue;
    }
    uint64_t T = next_opp(d, pk->t);
    if (T > now) return false;
    d->cur_opp = T;
    d->credit = OPP_BYTES;
    if (++d->opp_i == d->p.trace->n) { d->opp_i = 0; d->opp_cycle++; }
  }
}

/* When the rate queue's head can next make progress (UINT64_MAX: empty). */
static uint64_t rq_wake(struct dir *d) {
  if (!d->rq_count) return UINT64_MAX;
  if (!d->p.trace) return 0;
  const struct pkt *pk = &d->rq[d->rq_head];
  if (d->credit && pk->t <= d->cur_opp) return 0;
  return next_opp(d, pk->t);
}

/* Counts a frame released at `now` against its due time `t`. */
static inline void lateness(struct dir *d, uint64_t t, uint64_t now) {
  uint64_t late = now - t;
  if (late > LATE_NS) d->s.late_packets++;
  if (late > d->s.late_max_ns) d->s.late_max_ns = late;
}

static void tx_due(struct dir *d, uint64_t now) {
  if (!d->p.trace && !d->rq_count) { /* the usual path: the delay line straight to the qdisc */
    while (d->count && d->q[d->head].t <= now) {
      uint32_t n = 0;
      while (n < BATCH && n < d->count) {
        struct pkt *pk = &d->q[(d->head + n) & (MAX_LIMIT - 1)];
        if (pk->t > now) break;
        lateness(d, pk->t, now);
        d->tiov[n].iov_base = buf_of(d, pk->id);
        d->tiov[n].iov_len = pk->len;
        n++;
      }
      xmit(d, n);
      for (uint32_t k = 0; k < n; k++) {
        buf_free(d, d->q[d->head].id);
        d->head = (d->head + 1) & (MAX_LIMIT - 1);
        d->count--;
      }
    }
    return;
  }
  /* trace mode: released frames join the rate queue (tail drop at qlimit bytes) */
  while (d->count && d->q[d->head].t <= now) {
    struct pkt pk = d->q[d->head];
    d->head = (d->head + 1) & (MAX_LIMIT - 1);
    d->count--;
    uint32_t b = ip_bytes(&pk);
    if (d->p.trace && d->p.qlimit && d->rq_bytes + b > d->p.qlimit) { buf_free(d, pk.id); d->s.dropped_queue++; continue; }
    if (d->rq_count >= MAX_LIMIT) { buf_free(d, pk.id); d->s.dropped_overflow++; continue; }
    d->rq[(d->rq_head + d->rq_count) & (MAX_LIMIT - 1)] = pk;
    d->rq_count++;
    d->rq_bytes += b;
  }
  for (;;) {
    uint32_t n = 0;
    while (n < BATCH && n < d->rq_count) {
      struct pkt *pk = &d->rq[(d->rq_head + n) & (MAX_LIMIT - 1)];
      if (!serve(d, pk, now)) break;
      d->tiov[n].iov_base = buf_of(d, pk->id);
      d->tiov[n].iov_len = pk->len;
      n++;
    }
    if (!n) return;
    xmit(d, n);
    for (uint32_t k = 0; k < n; k++) {
      struct pkt *pk = &d->rq[d->rq_head];
      d->rq_bytes -= ip_bytes(pk);
      buf_free(d, pk->id);
      d->rq_head = (d->rq_head + 1) & (MAX_LIMIT - 1);
      d->rq_count--;
    }
    if (n < BATCH) return;
  }
}

/* ---------- control ---------- */

static void sock_drops(struct dir *d) {
  struct tpacket_stats st;
  socklen_t l = sizeof st;
  if (getsockopt(d->rx_fd, SOL_PACKET, PACKET_STATISTICS, &st, &l) == 0) d->s.dropped_socket += st.tp_drops;
}

static void json_str(char *o, size_t n, const char *s) { /* names and paths: quotes and controls become _ */
  size_t k = 0;
  for (; *s && k + 1 < n; s++) o[k++] = (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) ? '_' : *s;
  o[k] = 0;
}

static int dir_json(char *o, size_t n, struct dir *d) {
  const struct stats *s = &d->s;
  char tpath[TRACE_PATH];
  json_str(tpath, sizeof tpath, d->p.trace ? d->p.trace->path : "");
  return snprintf(o, n,
      "{\"delay_us\":%" PRIu64 ",\"jitter_us\":%" PRIu64 ",\"loss_ppm\":%" PRIu64 ",\"down\":%s,\"limit\":%" PRIu64
      ",\"trace\":%s%s%s,\"qlimit\":%" PRIu64 ",\"mtu\":%" PRIu64
      ",\"stats\":{\"rx_packets\":%" PRIu64 ",\"rx_bytes\":%" PRIu64 ",\"tx_packets\":%" PRIu64 ",\"tx_bytes\":%" PRIu64
      ",\"dropped_loss\":%" PRIu64 ",\"dropped_down\":%" PRIu64 ",\"dropped_queue\":%" PRIu64
      ",\"dropped_overflow\":%" PRIu64 ",\"dropped_oversize\":%" PRIu64 ",\"dropped_socket\":%" PRIu64
      ",\"gso\":%" PRIu64 ",\"queued\":%u,\"rq_queued\":%u,\"rq_bytes\":%" PRIu64
      ",\"late_packets\":%" PRIu64 ",\"late_max_us\":%" PRIu64 "}}",
      d->p.delay_us, d->p.jitter_us, d->p.loss_ppm, d->p.down ? "true" : "false", d->p.limit,
      d->p.trace ? "\"" : "", d->p.trace ? tpath : "null", d->p.trace ? "\"" : "", d->p.qlimit, d->p.mtu, s->rx_packets,
      s->rx_bytes, s->tx_packets, s->tx_bytes, s->dropped_loss, s->dropped_down, s->dropped_queue,
      s->dropped_overflow, s->dropped_oversize, s->dropped_socket, s->gso, d->count, d->rq_count, d->rq_bytes,
      s->late_packets, s->late_max_ns / 1000);
}


static void handle_cmd(char *req, char *out, size_t outsz) {
  size_t l = strlen(req);
  while (l && (req[l - 1] == '\n' || req[l - 1] == '\r' || req[l - 1] == ' ')) req[--l] = 0;
  char *save = NULL, *cmd = strtok_r(req, " \t", &save);
  if (!cmd) { snprintf(out, outsz, "error empty request"); return; }
  if (!strcmp(cmd, "get")) {
    char ea[IF_NAMESIZE * 2], eb[IF_NAMESIZE * 2];
    json_str(ea, sizeof ea, if_a);
    json_str(eb, sizeof eb, if_b);
    sock_drops(&dirs[0]);
    sock_drops(&dirs[1]);
    int k = snprintf(out, outsz, "{\"pid\":%d,\"a\":\"%s\",\"b\":\"%s\",\"up\":", (int)getpid(), ea, eb);
    k += dir_json(out + k, outsz - (size_t)k, &dirs[0]);
    k += snprintf(out + k, outsz - (size_t)k, ",\"down\":");
    k += dir_json(out + k, outsz - (size_t)k, &dirs[1]);
    snprintf(out + k, outsz - (size_t)k, "}");
  } else if (!strcmp(cmd, "reset-stats")) {
    for (int i = 0; i < 2; i++) {
      sock_drops(&dirs[i]); /* reading resets the kernel counter */
      memset(&dirs[i].s, 0, sizeof dirs[i].s);
    }
    snprintf(out, outsz, "ok");
  } else if (!strcmp(cmd, "set")) {
    char *which = strtok_r(NULL, " \t", &save);
    bool up = which && (!strcmp(which, "up") || !strcmp(which, "both"));
    bool dn = which && (!strcmp(which, "down") || !strcmp(which, "both"));
    if (!up && !dn) { snprintf(out, outsz, "error set: direction must be up, down or both"); return; }
    char *rest = save ? save : (char *)"";
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", rest);
    struct params pu = dirs[0].p, pd = dirs[1].p;
    const char *e = parse_params(rest, &pu);
    if (!e) e = parse_params(copy, &pd);
    /* each direction loaded its own copy of a new trace: keep only what is applied */
    if (e || !up) { if (pu.trace != dirs[0].p.trace) trace_free(pu.trace); }
    if (e || !dn) { if (pd.trace != dirs[1].p.trace) trace_free(pd.trace); }
    if (e) { snprintf(out, outsz, "error %s", e); return; }
    if (up) apply_params(&dirs[0], &pu);
    if (dn) apply_params(&dirs[1], &pd);
    snprintf(out, outsz, "ok");
  } else {
    snprintf(out, outsz, "error unknown command '%.32s' (commands: set get reset-stats)", cmd);
  }
}

static void ctl_serve(int fd) {
  char req[4096], reply[4096];
  for (;;) {
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, req, sizeof req - 1, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
    if (n < 0) return;
    req[n] = 0;
    handle_cmd(req, reply, sizeof reply);
    if (fl > sizeof(sa_family_t)) /* unbound senders cannot get a reply */
      sendto(fd, reply, strlen(reply), MSG_DONTWAIT, (struct sockaddr *)&from, fl);
  }
}

static socklen_t abstract_addr(struct sockaddr_un *sa, const char *name) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  size_t l = strlen(name);
  if (l == 0 || l > sizeof sa->sun_path - 1) die(2, "bad control socket name '%s'", name);
  memcpy(sa->sun_path + 1, name, l); /* sun_path[0] = 0: abstract namespace */
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + l);
}

/* `linkem --ctl-send NAME REQUEST`: exit 0 on ok/JSON, 1 on "error ...", 2 if nobody listens,
 * 3 on timeout (1 s). */
static int ctl_send(const char *name, const char *req) {
  struct sockaddr_un sa, self = {.sun_family = AF_UNIX};
  socklen_t sl = abstract_addr(&sa, name);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&self, sizeof(sa_family_t)) < 0) /* autobind */
    die(2, "control socket: %s", strerror(errno));
  if (sendto(fd, req, strlen(req), 0, (struct sockaddr *)&sa, sl) < 0)
    die(2, "no link emulator at @%s in this network namespace (%s)", name, strerror(errno));
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int r = poll(&pfd, 1, 1000);
  if (r <= 0) { fprintf(stderr, "linkem: no reply from @%s within 1 s\n", name); return 3; }
  static char reply[65536];
  ssize_t n = recv(fd, reply, sizeof reply - 1, 0);
  if (n < 0) die(2, "recv: %s", strerror(errno));
  reply[n] = 0;
  printf("%s\n", reply);
  if (!strncmp(reply, "error", 5)) { fprintf(stderr, "linkem: %s\n", reply); return 1; }
  return 0;
}

/* ---------- setup ---------- */

static int open_if(const char *name, int *ifindex) {
  int idx = (int)if_nametoindex(name);
  if (!idx) die(2, "no such interface '%s' in this network namespace", name);
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); /* bind sets the protocol */
  if (fd < 0) die(2, "AF_PACKET socket: %s%s", strerror(errno), errno == EPERM ? " (needs root / CAP_NET_RAW)" : "");
  int one = 1, sz = SOCK_BUF;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0)
    die(2, "PACKET_VNET_HDR on %s: %s", name, strerror(errno));
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0)
    die(2, "PACKET_IGNORE_OUTGOING on %s: %s", name, strerror(errno));
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = idx};
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) die(2, "bind to %s: %s", name, strerror(errno));
  struct packet_mreq mr = {.mr_ifindex = idx, .mr_type = PACKET_MR_PROMISC};
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
    die(2, "promiscuous mode on %s: %s", name, strerror(errno));
  *ifindex = idx;
  return fd;
}

static void dir_init(struct dir *d, const char *name, const char *rx_if, int rx_idx, int rx_fd, int tx_fd) {
  d->name = name; d->rx_if = rx_if; d->rx_ifindex = rx_idx; d->rx_fd = rx_fd; d->tx_fd = tx_fd;
  d->q = xmap(sizeof(struct pkt) * MAX_LIMIT);
  d->rq = xmap(sizeof(struct pkt) * MAX_LIMIT);
  d->slots = xmap((size_t)SLOT_SIZE * MAX_LIMIT);
  d->free_slots = xmap(sizeof(uint32_t) * MAX_LIMIT);
  for (uint32_t i = 0; i < MAX_LIMIT; i++) d->free_slots[i] = MAX_LIMIT - 1 - i; /* pop low ids first */
  d->nfree = MAX_LIMIT;
  d->stage = xmap((size_t)BIG_SIZE * BATCH);
  for (int i = 0; i < BATCH; i++) {
    d->riov[i] = (struct iovec){.iov_base = d->stage + (size_t)i * BIG_SIZE, .iov_len = BIG_SIZE};
    d->rmsg[i].msg_hdr = (struct msghdr){.msg_iov = &d->riov[i], .msg_iovlen = 1};
    d->tmsg[i].msg_hdr = (struct msghdr){.msg_iov = &d->tiov[i], .msg_iovlen = 1};
  }
}

static void usage(FILE *f) {
  fputs("usage: linkem --a IFNAME --b IFNAME [--ctl NAME] [--seed N] [--rt-prio N] [--up PARAMS] [--down PARAMS]\n"
        "       linkem --ctl-send NAME REQUEST\n"
        "Layer-2 link emulator: frames from a go out of b (direction up), frames from b out of a\n"
        "(direction down), each through its own delay line with delay, uniform jitter, loss, outage.\n"
        "  PARAMS   comma-separated delay_us=N,jitter_us=N,loss_ppm=N,down=0|1,limit=N,\n"
        "           trace=FILE|none (Mahimahi delivery opportunities),qlimit=BYTES (0: none),\n           mtu=N (longer IP packets dropped silently, 0: off)\n"
        "  --ctl    abstract UNIX datagram control socket name (default " CTL_DEFAULT ")\n"
        "  --seed   PRNG seed (default: random)\n"
        "  --rt-prio  run at SCHED_FIFO priority N (1-99) so frames leave on time on a loaded\n"
        "           machine; 0 (default): normal priority. Not permitted: a warning, normal priority\n"
        "Control requests: 'set up|down|both key=value...', 'get', 'reset-stats' (see linkem.md).\n"
        "Prints 'linkem ready' when running; SIGTERM/SIGINT exit 0; setup errors exit 2.\n", f);
}

int main(int argc, char **argv) {
  const char *ctl = CTL_DEFAULT, *ctl_send_name = NULL;
  char *up_spec = NULL, *down_spec = NULL;
  bool seeded = false;
  uint64_t seed = 0;
  long rt_prio = 0;
  static const struct option opts[] = {
      {"a", required_argument, 0, 'a'},    {"b", required_argument, 0, 'b'},
      {"ctl", required_argument, 0, 'c'},  {"seed", required_argument, 0, 's'},
      {"up", required_argument, 0, 'u'},   {"rt-prio", required_argument, 0, 'r'},
         {"down", required_argument, 0, 'd'},
      {"ctl-send", required_argument, 0, 'S'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'a': if_a = optarg; break;
    case 'b': if_b = optarg; break;
    case 'c': ctl = optarg; break;
    case 's': {
      char *end;
      errno = 0;
      seed = strtoull(optarg, &end, 0);
      if (errno || *end || !*optarg) die(2, "--seed: invalid value '%s'", optarg);
      seeded = true;
      break;
    }
    case 'r': {
      char *end;
      errno = 0;
      rt_prio = strtol(optarg, &end, 10);
      if (errno || *end || !*optarg || rt_prio < 0 || rt_prio > 99) die(2, "--rt-prio: invalid value '%s' (0-99)", optarg);
      break;
    }
    case 'u': up_spec = optarg; break;
    case 'd': down_spec = optarg; break;
    case 'S': ctl_send_name = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (ctl_send_name) {
    if (optind >= argc) die(2, "--ctl-send needs a REQUEST argument");
    char req[4096] = "";
    for (int i = optind; i < argc; i++) {
      if (i > optind) strncat(req, " ", sizeof req - strlen(req) - 1);
      if (strlen(req) + strlen(argv[i]) >= sizeof req - 1) die(2, "request too long");
      strncat(req, argv[i], sizeof req - strlen(req) - 1);
    }
    return ctl_send(ctl_send_name, req);
  }
  if (!if_a || !if_b || optind < argc) { usage(stderr); return 2; }
  if (!strcmp(if_a, if_b)) die(2, "--a and --b must be different interfaces");

  struct params def = {.delay_us = 0, .jitter_us = 0, .loss_ppm = 0, .limit = DEF_LIMIT, .qlimit = 0, .mtu = 0, .down = false, .trace = NULL};
  struct params pu = def, pd = def;
  const char *e;
  if (up_spec && (e = parse_params(up_spec, &pu))) die(2, "--up: %s", e);
  if (down_spec && (e = parse_params(down_spec, &pd))) die(2, "--down: %s", e);

  if (!seeded && getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = now_ns() ^ ((uint64_t)getpid() << 32);
  for (int i = 0; i < 4; i++) rng[i] = splitmix64(&seed);

  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  if (rt_prio > 0) {
    /* A delay line scheduled late releases frames late: on a loaded 2-CPU machine, at normal
     * priority, p99 26 ms late on a 20 ms link (linkem.md). The kernel's real-time throttling
     * (sched_rt_runtime_us, 95 %) still bounds what linkem can take. */
    struct sched_param sp = {.sched_priority = (int)rt_prio};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
      fprintf(stderr, "linkem: --rt-prio %ld: %s (running at normal priority)\n", rt_prio, strerror(errno));
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  sigset_t block, waitmask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &waitmask); /* waitmask = the old mask, used inside ppoll */
  sigdelset(&waitmask, SIGTERM);
  sigdelset(&waitmask, SIGINT);

  struct sockaddr_un csa;
  socklen_t csl = abstract_addr(&csa, ctl);
  int cfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (cfd < 0) die(2, "control socket: %s", strerror(errno));
  if (bind(cfd, (struct sockaddr *)&csa, csl) < 0)
    die(2, "control socket @%s: %s%s", ctl, strerror(errno),
        errno == EADDRINUSE ? " (another linkem runs in this namespace?)" : "");

  int ia, ib;
  int fa = open_if(if_a, &ia), fb = open_if(if_b, &ib);
  dir_init(&dirs[0], "up", if_a, ia, fa, fb);
  dir_init(&dirs[1], "down", if_b, ib, fb, fa);
  dirs[0].p = pu;
  dirs[1].p = pd;
  trace_restart(&dirs[0]);
  trace_restart(&dirs[1]);

  printf("linkem ready\n");
  fflush(stdout);

  struct pollfd pfd[3] = {{.fd = fa, .events = POLLIN}, {.fd = fb, .events = POLLIN}, {.fd = cfd, .events = POLLIN}};
  while (!stop_flag) {
    uint64_t now = now_ns(), next = UINT64_MAX;
    for (int i = 0; i < 2; i++) {
      tx_due(&dirs[i], now);
      if (dirs[i].count && dirs[i].q[dirs[i].head].t < next) next = dirs[i].q[dirs[i].head].t;
      uint64_t w = rq_wake(&dirs[i]);
      if (w < next) next = w;
    }
    struct timespec ts, *tsp = NULL;
    if (next != UINT64_MAX) {
      uint64_t w = next > now ? next - now : 0;
      ts.tv_sec = (time_t)(w / 1000000000ull);
      ts.tv_nsec = (long)(w % 1000000000ull);
      tsp = &ts;
    }
    int r = ppoll(pfd, 3, tsp, &waitmask);
    if (r < 0 && errno != EINTR) die(2, "ppoll: %s", strerror(errno));
    if (stop_flag) break;
    if (r <= 0) continue;
    /* Drain both directions in batches, releasing due frames (zero delay: at once) between. */
    for (int round = 0; round < 16; round++) {
      int got = rx_batch(&dirs[0]) + rx_batch(&dirs[1]);
      now = now_ns();
      tx_due(&dirs[0], now);
      tx_due(&dirs[1], now);
      if (!got) break;
    }
    if (pfd[2].revents & POLLIN) ctl_serve(cfd);
  }
  return 0;
}
