// iox_bench: the Eclipse iceoryx baseline for frbench, on the iceoryx C
// binding (Debian's libiceoryx-binding-c-dev 2.0.3). One program, two
// roles, each its own process registered with a running RouDi:
//
//   iox_bench pub PAYLOAD FRAMES WARMUP INTERVAL_NS DURATION_NS
//   iox_bench sub WAIT READ PAYLOAD QUEUE WARMUP CAP_NS
//                                  (WAIT: waitset|poll, READ: lease|words)
//
// The publisher loans a chunk (zero-copy: the chunk lives in RouDi's
// shared memory pools), writes every byte of it (a 16 KiB pattern copied
// in, as frbench's ring producer fills a frame), stamps the frame number
// in word 0 and its CLOCK_MONOTONIC time in word 1 just before it
// publishes, and paces with clock_nanosleep(TIMER_ABSTIME) at INTERVAL_NS
// (0: flat out, for DURATION_NS after the warm-up, or FRAMES frames).
// Then it publishes a stop chunk (frame number UINT64_MAX).
// The subscriber waits on a WaitSet (the futex wake-up the ring's futex
// rows compare with) or busy-polls take_chunk (with sched_yield between
// empty polls), reads the chunk (READ
// words: the same eight-accumulator word sum as frbench's every-byte
// rows), releases it, and prints, when INTERVAL_NS was paced, one line
// per measured frame: its one-way latency in ns; and at the end a line
// "total FRAMES FIRST_NS LAST_NS LOST SUM" over the frames after the
// warm-up (LOST: frame numbers it never saw). Both sides use lossless
// policies (the publisher waits for a full queue), as the ring's
// throughput rows. Exit status 0 on success.
#define _GNU_SOURCE
#include <inttypes.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iceoryx_binding_c/log.h"
#include "iceoryx_binding_c/publisher.h"
#include "iceoryx_binding_c/runtime.h"
#include "iceoryx_binding_c/subscriber.h"
#include "iceoryx_binding_c/wait_set.h"

#define STOP UINT64_MAX
#define FILL_CHUNK (16 * 1024)

static int64_t now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void sleep_until(int64_t t) {
	struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
	}
}

static uint64_t word_sum(const unsigned char *b, size_t n) {
	uint64_t a[8] = {0};
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		uint64_t w[8];
		memcpy(w, b + i, 64);
		a[0] += w[0], a[1] += w[1], a[2] += w[2], a[3] += w[3];
		a[4] += w[4], a[5] += w[5], a[6] += w[6], a[7] += w[7];
	}
	for (; i < n; i++)
		a[0] += b[i];
	return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

static void *loan(iox_pub_t pub, uint32_t size) {
	void *p = NULL;
	// Every chunk of the pool in flight (lossless backpressure): retry.
	while (iox_pub_loan_chunk(pub, &p, size) != AllocationResult_SUCCESS)
		sched_yield();
	return p;
}

static int publisher(int argc, char **argv) {
	if (argc != 7) {
		fprintf(stderr, "usage: iox_bench pub PAYLOAD FRAMES WARMUP INTERVAL_NS DURATION_NS\n");
		return 2;
	}
	long payload = atol(argv[2]), frames = atol(argv[3]), warmup = atol(argv[4]);
	int64_t interval = atoll(argv[5]), duration = atoll(argv[6]);
	if (payload < 64 || payload % 8 != 0 || payload > UINT32_MAX || frames <= 0 || warmup < 0 || interval < 0 || duration <= 0) {
		fprintf(stderr, "iox_bench pub: bad arguments\n");
		return 2;
	}
	static unsigned char pat[FILL_CHUNK + 4096];
	for (size_t i = 0; i < sizeof pat; i++)
		pat[i] = (unsigned char)(i * 7 + (i >> 9));
	// A loan that finds every chunk in flight is retried; iceoryx would log each.
	iox_set_loglevel(Iceoryx_LogLevel_Fatal);
	char name[64];
	snprintf(name, sizeof name, "frbench-pub-%d", (int)getpid());
	iox_runtime_init(name);
	iox_pub_options_t opts;
	iox_pub_options_init(&opts);
	opts.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	iox_pub_storage_t storage;
	iox_pub_t pub = iox_pub_init(&storage, "frbench", "frames", "frame", &opts);
	int64_t deadline = now_ns() + 20000000000LL;
	while (!iox_pub_has_subscribers(pub)) {
		if (now_ns() > deadline) {
			fprintf(stderr, "iox_bench pub: no subscriber within 20 s\n");
			iox_pub_deinit(pub);
			return 1;
		}
		usleep(1000);
	}
	int64_t start = now_ns() + interval, end = 0;
	// Paced, the run ends at its planned time even when filling a frame
	// takes longer than the interval (32 MiB): as the ring's producer does,
	// and before the subscriber's cap.
	int64_t paced_end = start + (warmup + frames) * interval;
	if (interval > 0 && paced_end > start + warmup * interval + duration)
		paced_end = start + warmup * interval + duration;
	for (long i = 0; i < warmup + frames; i++) {
		if (interval > 0) {
			if (i > warmup && now_ns() > paced_end)
				break;
			sleep_until(start + i * interval);
		} else if (i == warmup)
			end = now_ns() + duration;
		else if (i > warmup && now_ns() > end)
			break;
		unsigned char *p = loan(pub, (uint32_t)payload);
		const unsigned char *src = pat + (i % 509) * 8;
		for (long off = 0; off < payload; off += FILL_CHUNK)
			memcpy(p + off, src, (size_t)(payload - off < FILL_CHUNK ? payload - off : FILL_CHUNK));
		uint64_t *w = (uint64_t *)p;
		w[0] = (uint64_t)i;
		w[1] = (uint64_t)now_ns();
		iox_pub_publish_chunk(pub, p);
	}
	uint64_t *w = loan(pub, (uint32_t)payload);
	w[0] = STOP;
	iox_pub_publish_chunk(pub, w);
	// Leave only once the subscriber has gone (it has the stop chunk).
	deadline = now_ns() + 10000000000LL;
	while (iox_pub_has_subscribers(pub) && now_ns() < deadline)
		usleep(1000);
	iox_pub_deinit(pub);
	return 0;
}

static int subscriber(int argc, char **argv) {
	if (argc != 8) {
		fprintf(stderr, "usage: iox_bench sub WAIT READ PAYLOAD QUEUE WARMUP CAP_NS\n");
		return 2;
	}
	bool poll = strcmp(argv[2], "poll") == 0, words = strcmp(argv[3], "words") == 0;
	long payload = atol(argv[4]), queue = atol(argv[5]), warmup = atol(argv[6]);
	int64_t cap = atoll(argv[7]);
	if ((!poll && strcmp(argv[2], "waitset") != 0) || (!words && strcmp(argv[3], "lease") != 0) || payload < 64 || queue <= 0 ||
	    warmup < 0 || cap <= 0) {
		fprintf(stderr, "iox_bench sub: bad arguments\n");
		return 2;
	}
	iox_set_loglevel(Iceoryx_LogLevel_Fatal);
	char name[64];
	snprintf(name, sizeof name, "frbench-sub-%d", (int)getpid());
	iox_runtime_init(name);
	iox_sub_options_t opts;
	iox_sub_options_init(&opts);
	opts.queueCapacity = (uint64_t)queue;
	opts.historyRequest = 0;
	opts.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	iox_sub_storage_t storage;
	iox_sub_t sub = iox_sub_init(&storage, "frbench", "frames", "frame", &opts);
	iox_ws_storage_t wsStorage;
	iox_ws_t ws = NULL;
	if (!poll) {
		ws = iox_ws_init(&wsStorage);
		if (iox_ws_attach_subscriber_state(ws, sub, SubscriberState_HAS_DATA, 1, NULL) != WaitSetResult_SUCCESS) {
			fprintf(stderr, "iox_bench sub: attach to the WaitSet failed\n");
			return 1;
		}
	}
	// Latencies are buffered and printed at the end: printing in the loop
	// would put stdio between frames.
	size_t nlat = 0, caplat = 1 << 16;
	int64_t *lat = malloc(caplat * sizeof *lat);
	if (lat == NULL)
		return 1;
	int64_t deadline = now_ns() + cap, first = 0, last = 0;
	uint64_t sum = 0, expect = 0, lost = 0, got = 0;
	int status = 0;
	for (;;) {
		const void *chunk = NULL;
		if (iox_sub_take_chunk(sub, &chunk) != ChunkReceiveResult_SUCCESS) {
			if (now_ns() > deadline) {
				fprintf(stderr, "iox_bench sub: no stop frame before the cap\n");
				status = 1;
				break;
			}
			if (!poll) {
				iox_notification_info_t info[2];
				uint64_t missed = 0;
				struct timespec to = {.tv_sec = 0, .tv_nsec = 100000000};
				iox_ws_timed_wait(ws, to, info, 2, &missed);
			} else {
				// Busy-poll, yielding the CPU between empty polls: a
				// spinner that never yields starved the publisher on a
				// shared 2-core VM (64 KiB flat out: ~570 fps against
				// ~35,000 with the yield).
				sched_yield();
			}
			continue;
		}
		int64_t t = now_ns();
		const uint64_t *w = chunk;
		uint64_t seq = w[0];
		if (seq == STOP) {
			iox_sub_release_chunk(sub, chunk);
			break;
		}
		int64_t stamp = (int64_t)w[1];
		if (words)
			sum += word_sum(chunk, (size_t)payload);
		iox_sub_release_chunk(sub, chunk);
		if (seq > expect)
			lost += seq - expect;
		expect = seq + 1;
		if (seq < (uint64_t)warmup)
			continue;
		if (got == 0)
			first = t;
		last = t;
		got++;
		if (nlat == caplat) {
			int64_t *n = realloc(lat, 2 * caplat * sizeof *lat);
			if (n == NULL)
				return 1;
			lat = n, caplat *= 2;
		}
		lat[nlat++] = t - stamp;
	}
	if (ws != NULL) {
		iox_ws_detach_subscriber_state(ws, sub, SubscriberState_HAS_DATA);
		iox_ws_deinit(ws);
	}
	iox_sub_deinit(sub);
	for (size_t i = 0; i < nlat; i++)
		printf("%" PRId64 "\n", lat[i]);
	printf("total %" PRIu64 " %" PRId64 " %" PRId64 " %" PRIu64 " %" PRIu64 "\n", got, first, last, lost, sum);
	free(lat);
	return status;
}

int main(int argc, char **argv) {
	if (argc >= 2 && strcmp(argv[1], "pub") == 0)
		return publisher(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "sub") == 0)
		return subscriber(argc, argv);
	fprintf(stderr, "usage: iox_bench pub|sub ...\n");
	return 2;
}
