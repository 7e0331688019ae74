/*
 * frcat: read frames from a framering ring and check the test pattern.
 *
 * An example program on libframering (framering.h), and the consumer the
 * tests run against the Go producer (clients/c/clients_test.go). It
 * attaches (consumer, lossy or lossless, borrowing or peeking; or observer),
 * reads N frames, verifies each frame's pattern stamp and Sum64 checksum
 * (docs/LAYOUT.md Appendix A), prints one line per frame, and detaches.
 *
 * Usage: frcat [-n N] [-m lossless|lossy] [-p hold|peek] [-O] [-N name]
 *              [-w ms] [-t ms] [-s start] [-i] [-L] [-K] [-R] [-W] SOCKET|RING
 *   -n N      frames to deliver (default 100)
 *   -m MODE   lossless (default): every sequence number in order;
 *             lossy: always the newest frame, counting the skipped ones
 *   -p PROTO  hold (default): borrow each frame (a lease);
 *             peek: read it optimistically and validate it afterwards
 *   -O        attach as an observer (no table entry, no holds): peek only
 *   -N NAME   name shown in the consumer table (default "frcat")
 *   -w MS     longest futex sleep in milliseconds (default 100)
 *   -t MS     how long each wait for the next frame may take before it is
 *             counted as a timeout and retried (default 10000; -1: forever)
 *   -s SEQ    first sequence number wanted (default 0: the next one)
 *   -i        also require each frame's id to equal its sequence number
 *   -L        the latency mode's short scheduler slice for the thread that
 *             waits for frames (fr_latency_thread(0): 0.1 ms, Linux 6.12+)
 *   -K        after N frames, borrow the newest frame, print "holding ..."
 *             and wait to be killed (for crash tests)
 *   -R        when the producer goes away, attach again (lossless from the
 *             new producer's first frame) until N frames are delivered
 *   -W        after detaching, wait for stdin to close before exiting (for
 *             tests: the producer then sees the connection end, and its bye,
 *             before it sees the process exit)
 *   The last argument is a socket path if it contains a '/', else a ring
 *   name.
 *
 * Output (stdout), one line each:
 *   attached entry=E role=R mode=M proto=P epoch=X producer_pid=P slots=S capacity=C
 *            index=I quota=Q heartbeat_age_ms=A cursor=C
 *   waiting seq=S waiters=0xMASK          (the first time it sleeps)
 *   frame seq=S id=I width=W height=H stride=B format=0xF length=L slot=K sum=X ok|BAD(why)
 *   torn seq=S                            (a peeked frame changed while it was read)
 *   reattached epoch=X cursor=C           (-R)
 *   holding seq=S slot=K                  (-K)
 *   done delivered=D skipped=S missed=M torn=T bad=B cursor=C start=S0 timeouts=N end=REASON
 *            (timeouts: waits for the next frame (-t) that ended without one)
 *
 * Exit status: 0 when N frames were delivered and every one verified (and,
 * for a lossless consumer, none was missed); 1 a frame failed verification,
 * or a lossless consumer missed one; 2 usage; 3 attach failed; 4 the ring
 * ended first (closed, producer gone, evicted).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "framering.h"
#include "pattern.h"

enum { EXIT_OK = 0, EXIT_BAD = 1, EXIT_USAGE = 2, EXIT_ATTACH = 3, EXIT_ENDED = 4 };

/* ---- Options and events ---- */

struct cat {
	fr_ring *r;
	int said_waiting;
};

/* on_event prints the first sleep with our waiter bit (the tests check
 * that the producer can wake us) and reports everything else on stderr. */
static void on_event(void *arg, int event, const char *msg)
{
	struct cat *c = arg;
	if (event == FR_EVENT_SLEEP) {
		if (c->said_waiting || c->r == NULL)
			return;
		c->said_waiting = 1;
		fr_counters n;
		fr_ring_stats s;
		fr_get_counters(c->r, &n);
		fr_get_ring_stats(c->r, &s);
		printf("waiting seq=%" PRIu64 " waiters=%#" PRIx64 "\n", n.cursor, s.waiters);
		fflush(stdout);
		return;
	}
	fprintf(stderr, "frcat: %s\n", msg);
}

static void usage(void)
{
	fprintf(stderr, "usage: frcat [-n N] [-m lossless|lossy] [-p hold|peek] [-O] [-N name] [-w ms] [-t ms] [-s start] [-i] [-L] "
			"[-K] [-R] [-W] SOCKET|RING\n");
	exit(EXIT_USAGE);
}

static int do_attach(fr_options *o, struct cat *c, int quiet)
{
	char err[256] = "";
	o->error_buf = err;
	o->error_buf_size = sizeof err;
	int rc = fr_attach(o, &c->r);
	if (rc != FR_OK && !quiet)
		fprintf(stderr, "frcat: attach: %s (%s): %s\n", fr_strerror(rc), fr_error_name(rc), err);
	return rc;
}

static void print_attached(fr_ring *r, const char *proto)
{
	fr_info i;
	fr_health h;
	fr_counters n;
	fr_get_info(r, &i);
	fr_get_health(r, &h);
	fr_get_counters(r, &n);
	printf("attached entry=%d role=%s mode=%s proto=%s epoch=%016" PRIx64 " producer_pid=%" PRIu32 " slots=%" PRIu32
	       " capacity=%" PRIu64 " index=%" PRIu32 " quota=%" PRIu32 " heartbeat_age_ms=%" PRId64 " cursor=%" PRIu64 "\n",
	       (int)i.entry, i.role == FR_ROLE_OBSERVER ? "observer" : "consumer",
	       i.mode == FR_MODE_LOSSLESS ? "lossless" : "lossy", proto, i.epoch, i.producer_pid, i.slots, i.slot_capacity,
	       i.index_count, i.hold_quota, h.heartbeat_age_ns / 1000000, n.cursor);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	uint64_t want = 100;
	int peek = 0, id_is_seq = 0, latency = 0, hold_at_end = 0, reattach = 0, wait_stdin = 0;
	long next_ms = 10000;
	fr_options o;
	fr_options_init(&o);
	o.name = "frcat";
	o.mode = FR_MODE_LOSSLESS;
	int opt;
	while ((opt = getopt(argc, argv, "n:m:p:ON:w:t:s:iLKRW")) != -1) {
		char *end;
		switch (opt) {
		case 'n':
			errno = 0;
			want = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || want == 0)
				usage();
			break;
		case 'm':
			if (strcmp(optarg, "lossless") == 0)
				o.mode = FR_MODE_LOSSLESS;
			else if (strcmp(optarg, "lossy") == 0)
				o.mode = FR_MODE_LOSSY;
			else
				usage();
			break;
		case 'p':
			if (strcmp(optarg, "hold") == 0)
				peek = 0;
			else if (strcmp(optarg, "peek") == 0)
				peek = 1;
			else
				usage();
			break;
		case 'O':
			o.role = FR_ROLE_OBSERVER;
			peek = 1;
			break;
		case 'N':
			o.name = optarg;
			break;
		case 'w': {
			errno = 0;
			long ms = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || ms <= 0 || ms > INT_MAX)
				usage();
			o.futex_timeout_ms = (int32_t)ms;
			break;
		}
		case 't':
			errno = 0;
			next_ms = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || next_ms < -1 || next_ms == 0 || next_ms > INT_MAX)
				usage();
			break;
		case 's':
			errno = 0;
			o.start = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0')
				usage();
			break;
		case 'i':
			id_is_seq = 1;
			break;
		case 'L':
			latency = 1;
			break;
		case 'K':
			hold_at_end = 1;
			break;
		case 'R':
			reattach = 1;
			break;
		case 'W':
			wait_stdin = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || (o.role == FR_ROLE_OBSERVER && hold_at_end))
		usage();
	if (strchr(argv[optind], '/') != NULL)
		o.socket_path = argv[optind];
	else
		o.ring = argv[optind];
	if (peek)
		o.flags |= FR_OPT_PEEK;
	struct cat c = {NULL, 0};
	o.log = on_event;
	o.log_arg = &c;
	o.flags |= FR_OPT_TRACE_SLEEP; /* the "waiting" line */
	const char *proto = peek ? "peek" : "hold";

	if (do_attach(&o, &c, 0) != FR_OK)
		return EXIT_ATTACH;
	print_attached(c.r, proto);
	fr_counters start;
	fr_get_counters(c.r, &start);
	if (latency) {
		/* As the Go consumers do: without it, only slower. */
		int rc = fr_latency_thread(0);
		if (rc != FR_OK)
			fprintf(stderr, "frcat: latency mode without its short slice: %s (%s)\n", fr_strerror(rc),
				strerror(errno));
	}

	uint64_t delivered = 0, bad = 0, torn = 0, skipped = 0, missed = 0, timeouts = 0;
	int end = FR_OK;
	while (delivered < want) {
		fr_lease l;
		fr_frame f;
		int rc = fr_next(c.r, (int)next_ms, &l, &f);
		if (rc == FR_ERR_TIMEOUT) {
			timeouts++;
			continue;
		}
		if ((rc == FR_ERR_PRODUCER_GONE || rc == FR_ERR_CLOSED) && reattach) {
			/* A new producer of the same ring: every frame it still has. */
			fr_counters n;
			fr_get_counters(c.r, &n);
			skipped += n.skipped;
			missed += n.missed;
			torn += n.torn;
			fr_detach(c.r);
			c.r = NULL;
			c.said_waiting = 0;
			o.start = 1;
			for (int tries = 0;; tries++) {
				rc = do_attach(&o, &c, 1);
				if (rc == FR_OK)
					break;
				if ((rc != FR_ERR_NO_SUCH_RING && rc != FR_ERR_PRODUCER_GONE) || tries > 2000) {
					fprintf(stderr, "frcat: re-attach: %s\n", fr_strerror(rc));
					return EXIT_ATTACH;
				}
				struct timespec ts = {0, 5000000};
				nanosleep(&ts, NULL);
			}
			fr_info i;
			fr_counters n2;
			fr_get_info(c.r, &i);
			fr_get_counters(c.r, &n2);
			printf("reattached epoch=%016" PRIx64 " cursor=%" PRIu64 "\n", i.epoch, n2.cursor);
			fflush(stdout);
			continue;
		}
		if (rc != FR_OK) {
			end = rc;
			break;
		}
		struct verdict v = verify(&f, id_is_seq);
		if (peek && fr_peek_check(c.r, &f) != FR_OK) {
			/* The frame changed while we read it: what we computed is void. */
			printf("torn seq=%" PRIu64 "\n", f.seq);
			continue;
		}
		delivered++;
		if (!v.ok)
			bad++;
		printf("frame seq=%" PRIu64 " id=%" PRIu64 " width=%" PRIu32 " height=%" PRIu32 " stride=%" PRIu32
		       " format=%#010" PRIx32 " length=%" PRIu64 " slot=%" PRIu32 " sum=%016" PRIx64 " %s%s%s\n",
		       f.seq, f.frame_id, f.width, f.height, f.stride, f.format, f.length, f.slot, v.sum,
		       v.ok ? "ok" : "BAD(", v.ok ? "" : v.why, v.ok ? "" : ")");
		if (l != FR_NO_LEASE) {
			int rr = fr_release(c.r, l);
			if (rr != FR_OK)
				fprintf(stderr, "frcat: release %" PRIu64 ": %s\n", f.seq, fr_strerror(rr));
		}
	}
	fflush(stdout);

	if (hold_at_end && end == FR_OK) {
		/* Take a hold on the newest frame and wait to be killed: the
		 * producer must reclaim it (docs/LAYOUT.md 11.1). */
		for (;;) {
			uint64_t p;
			if ((end = fr_wait(c.r, 0, -1, &p)) != FR_OK)
				break;
			fr_lease l;
			fr_frame f;
			if (fr_borrow(c.r, p, &l, &f) == FR_OK) {
				printf("holding seq=%" PRIu64 " slot=%" PRIu32 "\n", f.seq, f.slot);
				fflush(stdout);
				for (;;)
					pause();
			}
		}
	}

	fr_counters n;
	fr_get_counters(c.r, &n);
	skipped += n.skipped;
	missed += n.missed;
	torn += n.torn;
	printf("done delivered=%" PRIu64 " skipped=%" PRIu64 " missed=%" PRIu64 " torn=%" PRIu64 " bad=%" PRIu64
	       " cursor=%" PRIu64 " start=%" PRIu64 " timeouts=%" PRIu64 " end=%s\n",
	       delivered, skipped, missed, torn, bad, n.cursor, start.cursor, timeouts, end == FR_OK ? "ok" : fr_error_name(end));
	fflush(stdout);
	fr_detach(c.r);
	if (wait_stdin)
		while (getchar() != EOF) {
		}
	if (bad != 0 || (o.mode == FR_MODE_LOSSLESS && o.role != FR_ROLE_OBSERVER && missed != 0))
		return EXIT_BAD;
	if (delivered < want)
		return EXIT_ENDED;
	return EXIT_OK;
}
