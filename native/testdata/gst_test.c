/*
 * gst_test.c - drives frgst.c on its own, for the sanitizers
 * (TestGstCSanitizers) and GStreamer's leak tracer: zero-copy and copy
 * runs to the end of stream, a stop in the middle with frames leased, and
 * errors. Prints "ok" and exits 0 when every check holds.
 */
#define _GNU_SOURCE
#include "../frgst.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <gst/gst.h>

static int failures;

#define CHECK(cond)                                                                                                    \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                       \
			failures++;                                                                                    \
		}                                                                                                      \
	} while (0)

static const char *allowed = "video/x-raw, format=(string){ GRAY8, GRAY16_LE, RGB }";

/* run_to_end runs desc with nbuf shared buffers to the end of its stream
 * and returns the frames delivered; *copies gets the copies counted. */
static int run_to_end(const char *desc, int nbuf, uint64_t *copies)
{
	frg_dev *d = NULL;
	frg_caps caps;
	char err[512];
	int st = frg_open(desc, allowed, (int64_t)10000000000, &d, &caps, err, sizeof err);
	if (st != FRG_OK) {
		fprintf(stderr, "open %s: %d %s\n", desc, st, err);
		failures++;
		return -1;
	}
	size_t size = (size_t)caps.size;
	uint8_t *mem = mmap(NULL, size * (size_t)nbuf, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED);
	for (int i = 0; i < nbuf; i++) {
		uint64_t id;
		CHECK(frg_announce(d, mem + (size_t)i * size, size, &id) == FRG_OK);
		CHECK(frg_queue(d, id) == FRG_OK);
	}
	CHECK(frg_start(d) == FRG_OK);
	int frames = 0;
	for (;;) {
		frg_frame_info info;
		st = frg_dequeue(d, (int64_t)10000000000, &info);
		if (st == FRG_ERR_NOT_STARTED)
			break;
		CHECK(st == FRG_OK);
		if (st != FRG_OK)
			break;
		CHECK(info.frame_id == (uint64_t)frames);
		CHECK(info.length == size);
		frames++;
		CHECK(frg_requeue(d, info.buffer) == FRG_OK);
	}
	CHECK(frg_stop(d) == FRG_OK);
	frg_counters c;
	frg_get_counters(d, &c);
	CHECK(c.delivered == (uint64_t)frames && c.next_frame_id == c.delivered && c.in_gst == 0);
	*copies = c.copies;
	CHECK(frg_shutdown(d) == FRG_OK);
	CHECK(frg_close(d) == FRG_OK);
	munmap(mem, size * (size_t)nbuf);
	return frames;
}

/* stop_leased stops a stream with one frame leased and others filled,
 * then closes with the lease outstanding; allocated buffers. */
static void stop_leased(void)
{
	frg_dev *d = NULL;
	frg_caps caps;
	char err[512];
	int st = frg_open("videotestsrc num-buffers=100 ! video/x-raw,format=RGB,width=40,height=30", allowed,
	                  (int64_t)10000000000, &d, &caps, err, sizeof err);
	CHECK(st == FRG_OK);
	if (st != FRG_OK)
		return;
	for (int i = 0; i < 3; i++) {
		uint64_t id;
		void *base;
		CHECK(frg_allocate(d, caps.size, &id, &base) == FRG_OK);
		CHECK(frg_queue(d, id) == FRG_OK);
	}
	CHECK(frg_start(d) == FRG_OK);
	frg_frame_info info;
	CHECK(frg_dequeue(d, (int64_t)10000000000, &info) == FRG_OK);
	CHECK(frg_stop(d) == FRG_OK);
	CHECK(frg_dequeue(d, 0, &info) == FRG_ERR_NOT_STARTED);
	frg_counters c;
	frg_get_counters(d, &c);
	CHECK(c.held == 1 && c.queued == 0 && c.awaiting == 0 && c.in_gst == 1); /* the lease's own reference */
	CHECK(frg_start(d) == FRG_OK); /* a restart with nothing queued: waits */
	CHECK(frg_dequeue(d, 1000000, &info) == FRG_ERR_TIMEOUT);
	CHECK(frg_shutdown(d) == FRG_OK);
	CHECK(frg_dequeue(d, 0, &info) == FRG_ERR_INVALID_HANDLE);
	CHECK(frg_close(d) == FRG_OK);
}

static void errors(void)
{
	frg_dev *d = NULL;
	frg_caps caps;
	char err[512];
	CHECK(frg_open("nosuchelement-xyz", allowed, 1000000000, &d, &caps, err, sizeof err) == FRG_ERR_PIPELINE);
	CHECK(d == NULL && strstr(err, "nosuchelement-xyz") != NULL);
	CHECK(frg_open("videotestsrc ! video/x-raw,format=I420", allowed, (int64_t)10000000000, &d, &caps, err,
	               sizeof err) == FRG_ERR_PIPELINE);
	CHECK(d == NULL && strstr(err, "frameringsink accepts") != NULL);
	CHECK(frg_open("", allowed, 1000000000, &d, &caps, err, sizeof err) == FRG_ERR_INVALID_ARGUMENT);
}

int main(void)
{
	uint64_t copies = 0;
	int n = run_to_end("videotestsrc num-buffers=20 ! video/x-raw,format=GRAY8,width=30,height=20", 3, &copies);
	CHECK(n == 20 && copies == 0);
	n = run_to_end("videotestsrc num-buffers=15 ! video/x-raw,format=GRAY16_LE,width=31,height=7 ! identity "
	               "drop-allocation=true",
	               2, &copies);
	CHECK(n == 15 && copies == 15);
	stop_leased();
	errors();
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	/* Tears GStreamer down: the leak tracer (GST_TRACERS=leaks) reports
	 * here every object still alive. */
	gst_deinit();
	printf("ok\n");
	return 0;
}
