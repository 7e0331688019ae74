/*
 * zerocopy.c - what downstream sees of framesrc's buffers, from inside a
 * GStreamer application (framesrc ! appsink), against a live producer:
 *
 *   1. a zero-copy buffer's memory lies inside the ring's data mapping
 *      (/proc/self/maps: memfd:framering-data:RING), is READONLY and
 *      refuses a writable map; its bytes start with the producer's
 *      pattern stamp;
 *   2. with max-held buffers held by the application, the next buffers
 *      are copies (outside the mapping), counted as copied-quota;
 *   3. a lease goes back only with the memory's last reference: a
 *      gst_buffer_copy shares the memory, and nothing is released until
 *      both are unreffed;
 *   4. after printing "HOLDING n", it waits for a line on stdin (the Go
 *      test looks at the ring with ringctl meanwhile, or kills it), then
 *      releases everything: leases-held drops to 0.
 *
 * usage: zerocopy RING MAX_HELD
 * Exit status 0 when every check passed; failures are printed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include "check.h"

/* data_mapping finds the ring's data segment in this process's maps. */
static int data_mapping(const char *ring, uintptr_t *lo, uintptr_t *hi)
{
	char want[256];
	snprintf(want, sizeof want, "memfd:framering-data:%s ", ring);
	FILE *f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return 0;
	char line[1024];
	int found = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		/* "memfd:NAME (deleted)": match the name followed by a space. */
		size_t n = strlen(line);
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = ' ';
		if (strstr(line, want) != NULL && sscanf(line, "%" SCNxPTR "-%" SCNxPTR, lo, hi) == 2) {
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

static guint64 stat_of(GstElement *src, const char *name)
{
	GstStructure *s = NULL;
	g_object_get(src, "stats", &s, NULL);
	guint64 v = 0;
	if (s == NULL || !gst_structure_get_uint64(s, name, &v))
		fprintf(stderr, "no stat %s\n", name);
	if (s != NULL)
		gst_structure_free(s);
	return v;
}

static guint64 held(GstElement *src)
{
	guint64 v = 0;
	g_object_get(src, "leases-held", &v, NULL);
	return v;
}

int main(int argc, char **argv)
{
	gst_init(&argc, &argv);
	if (argc != 3) {
		fprintf(stderr, "usage: zerocopy RING MAX_HELD\n");
		return 2;
	}
	const char *ring = argv[1];
	int max = atoi(argv[2]);
	if (max < 1 || max > 64) {
		fprintf(stderr, "MAX_HELD: 1..64\n");
		return 2;
	}
	gchar *desc = g_strdup_printf("framesrc name=src ring=%s consumer-name=zerocopy max-held=%d quota-policy=copy "
				      "! appsink name=sink sync=false max-buffers=0 drop=false",
				      ring, max);
	GError *err = NULL;
	GstElement *pipe = gst_parse_launch(desc, &err);
	g_free(desc);
	if (pipe == NULL || err != NULL || !GST_IS_BIN(pipe)) {
		/* A missing element (framesrc not found) is a recoverable parse
		 * error: the result is not the pipeline. */
		fprintf(stderr, "parse: %s\n", err != NULL ? err->message : "not a pipeline");
		return 1;
	}
	GstElement *src = gst_bin_get_by_name(GST_BIN(pipe), "src");
	GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
	if (gst_element_set_state(pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
		fprintf(stderr, "cannot play\n");
		return 1;
	}

	uintptr_t lo = 0, hi = 0;
	int n = max + 2;
	GstSample **samples = g_new0(GstSample *, n);
	for (int i = 0; i < n; i++) {
		samples[i] = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 60 * GST_SECOND);
		if (samples[i] == NULL) {
			fprintf(stderr, "no sample %d\n", i);
			return 1;
		}
		if (i == 0 && !data_mapping(ring, &lo, &hi)) {
			fprintf(stderr, "no memfd:framering-data:%s mapping\n", ring);
			return 1;
		}
		GstBuffer *b = gst_sample_get_buffer(samples[i]);
		CHECK(gst_buffer_n_memory(b) == 1, "sample %d: %u memories", i, gst_buffer_n_memory(b));
		GstMapInfo mi;
		if (!gst_buffer_map(b, &mi, GST_MAP_READ)) {
			CHECK(0, "sample %d: cannot map", i);
			continue;
		}
		uintptr_t p = (uintptr_t)mi.data;
		int inside = p >= lo && p + mi.size <= hi;
		/* "FRPT": the pattern stamp the producer wrote at the frame's start. */
		CHECK(mi.size >= 4 && memcmp(mi.data, "FRPT", 4) == 0, "sample %d: no pattern stamp", i);
		gst_buffer_unmap(b, &mi);
		if (i < max) {
			CHECK(inside, "sample %d: %p not inside the ring's data mapping %p-%p", i, (void *)p, (void *)lo,
			      (void *)hi);
			GstMemory *m = gst_buffer_peek_memory(b, 0);
			CHECK(GST_MEMORY_IS_READONLY(m), "sample %d: slot memory not READONLY", i);
			GstMapInfo wi;
			int writable = gst_memory_map(m, &wi, GST_MAP_WRITE);
			CHECK(!writable, "sample %d: slot memory mapped writable", i);
			if (writable)
				gst_memory_unmap(m, &wi);
		} else {
			CHECK(!inside, "sample %d: beyond max-held, yet inside the ring's mapping", i);
		}
		printf("sample %d: %s at %p (mapping %p-%p)\n", i, inside ? "zero-copy" : "copy", (void *)p, (void *)lo,
		       (void *)hi);
	}
	guint64 h = held(src);
	CHECK(h == (guint64)max, "leases-held %" PRIu64 ", want %d", h, max);
	CHECK(stat_of(src, "zero-copy") == (guint64)max, "zero-copy %" PRIu64, stat_of(src, "zero-copy"));
	CHECK(stat_of(src, "copied-quota") >= 2, "copied-quota %" PRIu64, stat_of(src, "copied-quota"));
	CHECK(stat_of(src, "evictions") == 0, "evicted");

	/* A copy of the buffer shares its memory: the lease stays until the
	 * copy goes too. framesrc keeps reading meanwhile (appsink queues
	 * everything), so a released slot is soon borrowed again: count
	 * releases, which only this program causes (appsink frees nothing
	 * while PLAYING), not leases held. */
	CHECK(stat_of(src, "released") == 0, "released %" PRIu64 " before any unref", stat_of(src, "released"));
	GstBuffer *dup = gst_buffer_copy(gst_sample_get_buffer(samples[0]));
	gst_sample_unref(samples[0]);
	samples[0] = NULL;
	CHECK(stat_of(src, "released") == 0, "released %" PRIu64 " after unref of a shared buffer",
	      stat_of(src, "released"));
	gst_buffer_unref(dup);
	CHECK(stat_of(src, "released") == 1, "released %" PRIu64 " after the last unref", stat_of(src, "released"));
	/* Copies hold no lease. */
	gst_sample_unref(samples[n - 1]);
	samples[n - 1] = NULL;
	CHECK(stat_of(src, "released") == 1, "released %" PRIu64 " after a copy's unref", stat_of(src, "released"));
	/* framesrc never exceeds max-held. */
	CHECK(held(src) <= (guint64)max, "leases-held %" PRIu64 " > max-held %d", held(src), max);

	printf("HOLDING\n");
	fflush(stdout);
	char line[16];
	if (fgets(line, sizeof line, stdin) == NULL)
		fprintf(stderr, "stdin closed\n");

	for (int i = 0; i < n; i++)
		if (samples[i] != NULL)
			gst_sample_unref(samples[i]);
	g_free(samples);
	gst_element_set_state(pipe, GST_STATE_NULL);
	/* Buffers still queued in appsink were freed with it; every lease is back. */
	CHECK(held(src) == 0, "leases-held %" PRIu64 " after the pipeline stopped", held(src));
	CHECK(stat_of(src, "released") == stat_of(src, "zero-copy"), "released %" PRIu64 " of %" PRIu64 " zero-copy",
	      stat_of(src, "released"), stat_of(src, "zero-copy"));
	CHECK(stat_of(src, "revoked") == 0, "revoked leases");
	gst_object_unref(src);
	gst_object_unref(sink);
	gst_object_unref(pipe);
	gst_deinit();
	if (failures > 0)
		return 1;
	printf("RELEASED\n");
	return 0;
}
