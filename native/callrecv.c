/* SPDX-License-Identifier: GPL-2.0 */
/*
 * callrecv — the receiver of `mpctl lab bench redundant`'s call (src/lab/bench/redundant.ts).
 *
 *   callrecv ADDR PORT SECONDS
 *
 * Binds UDP ADDR:PORT (IPv4), prints "listening" (flushed), then takes datagrams that carry a
 * sequence number (u32, big endian, offset 0) and their send time (f64 big endian, ms since the
 * epoch on CLOCK_REALTIME, offset 4: the sender is on the same host) and records each one's
 * one-way delay from the KERNEL's receive timestamp (SO_TIMESTAMPNS, taken when the datagram
 * reached the socket layer), not from when this process got to read it: a receiver that is not
 * scheduled for a few ms on a loaded machine does not add those ms to the delay. Node's dgram
 * has no access to that timestamp (measured: a node receiver added up to 90 ms, p99 18 ms).
 *
 * Ends 3 s after the last datagram, SECONDS + 3 s after the first, or SECONDS + 8 s after the
 * start, and prints {"owd":[[seq,ms,sent],...]} (one line, arrival order; ms: the one-way delay,
 * sent: the datagram's send time, both with 3 decimals).
 * Exit 0; 2 on a setup error (message on stderr).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(clockid_t c)
{
	struct timespec t;

	clock_gettime(c, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double be_double(const unsigned char *p)
{
	uint64_t v = 0;
	double d;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	memcpy(&d, &v, sizeof(d));
	return d;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	size_t cap = 1024, n = 0;
	uint32_t *seqs;
	double *owd, *sent, start, first = -1, last = -1, seconds;
	int fd, one = 1;

	if (argc != 4 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || atoi(argv[2]) <= 0 ||
	    atoi(argv[2]) > 65535 || (seconds = atof(argv[3])) <= 0) {
		fprintf(stderr, "usage: callrecv IPV4ADDR PORT SECONDS\n");
		return 2;
	}
	sa.sin_port = htons(atoi(argv[2]));
	seqs = malloc(cap * sizeof(*seqs));
	owd = malloc(cap * sizeof(*owd));
	sent = malloc(cap * sizeof(*sent));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (!seqs || !owd || !sent || fd < 0 || setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "callrecv: %s:%s: %s\n", argv[1], argv[2], strerror(errno));
		return 2;
	}
	printf("listening\n");
	fflush(stdout);
	start = now_ms(CLOCK_MONOTONIC);
	for (;;) {
		double t = now_ms(CLOCK_MONOTONIC), until = start + (seconds + 8) * 1e3;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		unsigned char buf[2048], ctl[256];
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
		struct cmsghdr *c;
		double stamp = -1;
		ssize_t len;

		if (first >= 0 && first + (seconds + 3) * 1e3 < until)
			until = first + (seconds + 3) * 1e3;
		if (last >= 0 && last + 3e3 < until)
			until = last + 3e3;
		if (t >= until)
			break;
		if (poll(&pfd, 1, (int)(until - t) + 1) <= 0)
			continue;
		len = recvmsg(fd, &m, MSG_DONTWAIT);
		if (len < 12)
			continue;
		for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
				struct timespec ts;

				memcpy(&ts, CMSG_DATA(c), sizeof(ts));
				stamp = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
			}
		if (stamp < 0) /* no kernel stamp: this process's own clock, as a node receiver would */
			stamp = now_ms(CLOCK_REALTIME);
		if (n == cap) {
			cap *= 2;
			seqs = realloc(seqs, cap * sizeof(*seqs));
			owd = realloc(owd, cap * sizeof(*owd));
			sent = realloc(sent, cap * sizeof(*sent));
			if (!seqs || !owd || !sent) {
				fprintf(stderr, "callrecv: out of memory\n");
				return 2;
			}
		}
		seqs[n] = (uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3];
		sent[n] = be_double(buf + 4);
		owd[n] = stamp - sent[n];
		n++;
		last = now_ms(CLOCK_MONOTONIC);
		if (first < 0)
			first = last;
	}
	printf("{\"owd\":[");
	for (size_t i = 0; i < n; i++)
		printf("%s[%u,%.3f,%.3f]", i ? "," : "", seqs[i], owd[i], sent[i]);
	printf("]}\n");
	return 0;
}
