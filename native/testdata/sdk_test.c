/*
 * sdk_test.c - a C driver for the simulated SDK, built with
 * -fsanitize=address,undefined (and separately -fsanitize=thread) by
 * TestCSanitizers in native/. It exercises every call, every misuse path the
 * header documents, and the acquisition thread under concurrent stop/close.
 * It prints "ok" and exits 0, or names the failed check and exits 1.
 */
#define _GNU_SOURCE
#include "../frsdk.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures;

#define CHECK(cond)                                                              \
	do {                                                                         \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                          \
		}                                                                        \
	} while (0)

#define EXPECT(call, want)                                                             \
	do {                                                                               \
		fr_status got_ = (call);                                                       \
		if (got_ != (want)) {                                                          \
			fprintf(stderr, "%s:%d: %s = %d (%s), want %d (%s)\n", __FILE__, __LINE__, \
				#call, got_, fr_status_string(got_), (want), fr_status_string(want));  \
			failures++;                                                                \
		}                                                                              \
	} while (0)

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static fr_config config(uint32_t w, uint32_t h, uint32_t stride, uint32_t fmt, double rate, uint32_t flags)
{
	fr_config c = {.width = w, .height = h, .stride = stride, .format = fmt, .frame_rate = rate, .flags = flags};
	return c;
}

/* verify checks that buf holds exactly frame id of cfg. */
static int verify(const fr_config *cfg, const uint8_t *buf, uint64_t id)
{
	uint64_t size = (uint64_t)cfg->stride * cfg->height;
	uint8_t *want = malloc(size);
	if (want == NULL)
		return 0;
	int ok = fr_fill_pattern(cfg, want, size, id) == FR_OK && memcmp(want, buf, size) == 0;
	uint64_t stamped;
	memcpy(&stamped, buf + 8, 8);
	ok = ok && stamped == id;
	free(want);
	return ok;
}

static void test_open_errors(void)
{
	fr_handle h;
	fr_config c = config(64, 32, 64, FR_PFNC_MONO8, 0, 0);
	EXPECT(fr_open(NULL, &h), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_open(&c, NULL), FR_ERR_INVALID_ARGUMENT);
	fr_config bad = c;
	bad.format = 42;
	EXPECT(fr_open(&bad, &h), FR_ERR_FORMAT);
	bad.format = 0x010C002Au; /* GigE Vision BayerGR12Packed: not in the table */
	EXPECT(fr_open(&bad, &h), FR_ERR_FORMAT);
	bad = config(65, 32, 130, FR_PFNC_YUV422_8, 0, 0); /* odd width of a 4:2:2 format */
	EXPECT(fr_open(&bad, &h), FR_ERR_GEOMETRY);
	bad = config(65, 32, 81, FR_PFNC_MONO10P, 0, 0); /* 650 bits need 82 bytes */
	EXPECT(fr_open(&bad, &h), FR_ERR_GEOMETRY);
	bad = c;
	bad.width = 0;
	EXPECT(fr_open(&bad, &h), FR_ERR_GEOMETRY);
	bad = c;
	bad.stride = 63;
	EXPECT(fr_open(&bad, &h), FR_ERR_GEOMETRY);
	bad = config(4, 4, 4, FR_PFNC_MONO8, 0, 0); /* 16 bytes < stamp */
	EXPECT(fr_open(&bad, &h), FR_ERR_GEOMETRY);
	bad = c;
	bad.width = FR_MAX_DIMENSION + 1;
	bad.stride = FR_MAX_DIMENSION + 1;
	EXPECT(fr_open(&bad, &h), FR_ERR_GEOMETRY);
	bad = c;
	bad.frame_rate = -1;
	EXPECT(fr_open(&bad, &h), FR_ERR_INVALID_ARGUMENT);
	bad.frame_rate = 0.0 / 0.0;
	EXPECT(fr_open(&bad, &h), FR_ERR_INVALID_ARGUMENT);
	bad = c;
	bad.flags = 2;
	EXPECT(fr_open(&bad, &h), FR_ERR_INVALID_ARGUMENT);
	bad = c;
	bad.reserved = 1;
	EXPECT(fr_open(&bad, &h), FR_ERR_INVALID_ARGUMENT);
}

static void test_config_and_buffers(void)
{
	fr_handle h;
	fr_config c = config(64, 32, 70, FR_PFNC_MONO8, 0, 0);
	EXPECT(fr_open(&c, &h), FR_OK);
	fr_config got;
	EXPECT(fr_get_config(h, &got), FR_OK);
	CHECK(memcmp(&got, &c, sizeof c) == 0);
	EXPECT(fr_get_config(h, NULL), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_set_config(h, NULL), FR_ERR_INVALID_ARGUMENT);

	uint64_t size = 70 * 32;
	uint8_t *mem = malloc(4 * size);
	fr_buffer_id a, b, x;
	EXPECT(fr_announce_buffer(h, NULL, size, &a), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_announce_buffer(h, mem, size, NULL), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_announce_buffer(h, mem, 0, &a), FR_ERR_BUFFER_SIZE);
	EXPECT(fr_announce_buffer(h, mem, size - 1, &a), FR_ERR_BUFFER_SIZE);
	EXPECT(fr_announce_buffer(h, (void *)(UINTPTR_MAX - 10), size, &a), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_announce_buffer(h, mem, size, &a), FR_OK);
	EXPECT(fr_announce_buffer(h, mem + size - 1, size, &x), FR_ERR_OVERLAP);
	EXPECT(fr_announce_buffer(h, mem, size, &x), FR_ERR_OVERLAP);
	EXPECT(fr_announce_buffer(h, mem + size, 2 * size, &b), FR_OK);
	CHECK(a != 0 && b != 0 && a != b);

	/* A geometry that b holds but a does not. */
	fr_config big = config(64, 64, 70, FR_PFNC_MONO8, 0, 0);
	EXPECT(fr_set_config(h, &big), FR_ERR_BUFFER_SIZE);
	fr_config bad = big;
	bad.format = 7;
	EXPECT(fr_set_config(h, &bad), FR_ERR_FORMAT);
	fr_config smaller = config(32, 16, 96, FR_PFNC_MONO16, 100, FR_CONFIG_DEFECTS);
	EXPECT(fr_set_config(h, &smaller), FR_OK);
	EXPECT(fr_get_config(h, &got), FR_OK);
	CHECK(memcmp(&got, &smaller, sizeof c) == 0);
	EXPECT(fr_set_config(h, &c), FR_OK);

	void *p = NULL;
	fr_buffer_id al;
	EXPECT(fr_allocate_buffer(h, 0, &al, &p), FR_ERR_BUFFER_SIZE);
	EXPECT(fr_allocate_buffer(h, size - 1, &al, &p), FR_ERR_BUFFER_SIZE);
	EXPECT(fr_allocate_buffer(h, size, NULL, &p), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_allocate_buffer(h, size, &al, NULL), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_allocate_buffer(h, UINT64_MAX, &al, &p), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_allocate_buffer(h, size, &al, &p), FR_OK);
	CHECK(p != NULL);
	memset(p, 0xAB, size); /* the device's memory is ours to read and write while held */

	/* Buffer state machine misuse. */
	EXPECT(fr_queue_buffer(h, 0), FR_ERR_UNKNOWN_BUFFER);
	EXPECT(fr_queue_buffer(h, a ^ (1ull << 30)), FR_ERR_UNKNOWN_BUFFER); /* wrong generation */
	EXPECT(fr_queue_buffer(h, a ^ (1ull << 50)), FR_ERR_UNKNOWN_BUFFER); /* another device's tag */
	EXPECT(fr_queue_buffer(h, (a & ~0xFFFFFFull) | 4095), FR_ERR_UNKNOWN_BUFFER);
	EXPECT(fr_requeue_buffer(h, a), FR_ERR_BUFFER_STATE);
	EXPECT(fr_requeue_buffer(h, a ^ (1ull << 50)), FR_ERR_UNKNOWN_BUFFER);
	EXPECT(fr_detach_buffer(h, a), FR_ERR_BUFFER_STATE);
	EXPECT(fr_detach_buffer(h, 0), FR_ERR_UNKNOWN_BUFFER);
	EXPECT(fr_queue_buffer(h, a), FR_OK);
	EXPECT(fr_queue_buffer(h, a), FR_ERR_BUFFER_STATE);
	EXPECT(fr_revoke_buffer(h, a), FR_ERR_BUFFER_STATE);
	EXPECT(fr_requeue_buffer(h, a), FR_ERR_BUFFER_STATE);

	fr_counters k;
	EXPECT(fr_get_counters(h, NULL), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_get_counters(h, &k), FR_OK);
	CHECK(k.queued == 1 && k.announced == 3 && k.held == 0 && k.awaiting == 0);

	/* Never started: dequeue reports NOT_STARTED, stop does nothing (and
	 * leaves the queue alone: only stopping a running device discards). */
	fr_frame_info info;
	EXPECT(fr_dequeue(h, 0, &info), FR_ERR_NOT_STARTED);
	EXPECT(fr_dequeue(h, 0, NULL), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_stop(h), FR_OK);
	EXPECT(fr_get_counters(h, &k), FR_OK);
	CHECK(k.queued == 1);

	/* Revoke then reuse: the stale id is refused. */
	EXPECT(fr_revoke_buffer(h, b), FR_OK);
	EXPECT(fr_revoke_buffer(h, b), FR_ERR_UNKNOWN_BUFFER);
	EXPECT(fr_queue_buffer(h, b), FR_ERR_UNKNOWN_BUFFER);
	fr_buffer_id b2;
	EXPECT(fr_announce_buffer(h, mem + size, 2 * size, &b2), FR_OK);
	CHECK(b2 != b);
	EXPECT(fr_queue_buffer(h, b), FR_ERR_UNKNOWN_BUFFER);
	EXPECT(fr_revoke_buffer(h, al), FR_OK); /* unmaps the device's buffer */

	EXPECT(fr_close(h), FR_OK); /* revokes a (queued) and b2 */
	free(mem);
}

static void test_stream_and_leases(void)
{
	/* Every format of the table, with the bytes of a 160-pixel row. */
	static const uint32_t fmts[] = {
		FR_PFNC_MONO8, FR_PFNC_MONO10, FR_PFNC_MONO12, FR_PFNC_MONO16, FR_PFNC_MONO10P, FR_PFNC_MONO12P,
		FR_PFNC_MONO10_PACKED, FR_PFNC_MONO12_PACKED,
		FR_PFNC_BAYER_GR8, FR_PFNC_BAYER_RG8, FR_PFNC_BAYER_GB8, FR_PFNC_BAYER_BG8,
		FR_PFNC_BAYER_GR16, FR_PFNC_BAYER_RG16, FR_PFNC_BAYER_GB16, FR_PFNC_BAYER_BG16,
		FR_PFNC_RGB8, FR_PFNC_BGR8, FR_PFNC_YUV422_8, FR_PFNC_YUV422_8_UYVY};
	static const uint32_t rows[] = {160, 320, 320, 320, 200, 240, 240, 240, 160, 160, 160, 160,
		320, 320, 320, 320, 480, 480, 320, 320};
	for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0]; fi++) {
		fr_config c = config(160, 90, rows[fi] + 7, fmts[fi], 0, FR_CONFIG_DEFECTS);
		fr_config narrow = c;
		narrow.stride = rows[fi] - 1;
		EXPECT(fr_open(&narrow, &(fr_handle){0}), FR_ERR_GEOMETRY);
		fr_handle h;
		EXPECT(fr_open(&c, &h), FR_OK);
		uint64_t size = (uint64_t)c.stride * c.height;
		fr_buffer_id ids[4];
		uint8_t *mem[4];
		for (int i = 0; i < 4; i++) {
			mem[i] = malloc(size + 13);
			memset(mem[i], 0xA5, size + 13);
			EXPECT(fr_announce_buffer(h, mem[i], size + 13, &ids[i]), FR_OK);
			EXPECT(fr_queue_buffer(h, ids[i]), FR_OK);
		}
		EXPECT(fr_start(h), FR_OK);
		EXPECT(fr_start(h), FR_ERR_BUSY);
		EXPECT(fr_set_config(h, &c), FR_ERR_BUSY);
		uint64_t want = 0;
		for (int n = 0; n < 40; n++) {
			fr_frame_info info;
			EXPECT(fr_dequeue(h, 5000000000LL, &info), FR_OK);
			CHECK(info.frame_id == want);
			CHECK(info.size == size && info.width == c.width && info.height == c.height &&
			      info.stride == c.stride && info.format == c.format && info.status == FR_FRAME_COMPLETE);
			int idx = -1;
			for (int i = 0; i < 4; i++)
				if (ids[i] == info.buffer)
					idx = i;
			CHECK(idx >= 0);
			if (idx < 0)
				break;
			CHECK(verify(&c, mem[idx], info.frame_id));
			CHECK(mem[idx][size] == 0xA5); /* nothing past the frame is written */
			EXPECT(fr_revoke_buffer(h, info.buffer), FR_ERR_BUFFER_STATE);
			EXPECT(fr_queue_buffer(h, info.buffer), FR_ERR_BUFFER_STATE);
			if (n % 5 == 0) {
				EXPECT(fr_detach_buffer(h, info.buffer), FR_OK);
				EXPECT(fr_detach_buffer(h, info.buffer), FR_ERR_BUFFER_STATE);
				EXPECT(fr_requeue_buffer(h, info.buffer), FR_ERR_BUFFER_STATE);
				EXPECT(fr_queue_buffer(h, info.buffer), FR_OK);
			} else {
				EXPECT(fr_requeue_buffer(h, info.buffer), FR_OK);
				EXPECT(fr_requeue_buffer(h, info.buffer), FR_ERR_BUFFER_STATE);
			}
			want++;
		}
		/* Hold one frame across stop: it stays delivered, the rest return. */
		fr_frame_info held;
		EXPECT(fr_dequeue(h, 5000000000LL, &held), FR_OK);
		EXPECT(fr_stop(h), FR_OK);
		EXPECT(fr_stop(h), FR_OK);
		fr_counters k;
		EXPECT(fr_get_counters(h, &k), FR_OK);
		CHECK(k.queued == 0 && k.awaiting == 0 && k.held == 1 && k.announced == 4);
		CHECK(k.next_frame_id == k.delivered + k.underruns);
		CHECK(k.underruns == 0); /* rate 0 never loses frames */
		for (int i = 0; i < 4; i++) {
			if (ids[i] == held.buffer) {
				CHECK(verify(&c, mem[i], held.frame_id));
				EXPECT(fr_queue_buffer(h, ids[i]), FR_ERR_BUFFER_STATE);
			} else {
				EXPECT(fr_queue_buffer(h, ids[i]), FR_OK); /* discarded back to us */
			}
		}
		EXPECT(fr_requeue_buffer(h, held.buffer), FR_OK); /* allowed while stopped */
		EXPECT(fr_get_counters(h, &k), FR_OK);
		CHECK(k.queued == 4 && k.held == 0);
		/* Restart: ids keep counting. */
		EXPECT(fr_start(h), FR_OK);
		fr_frame_info info;
		EXPECT(fr_dequeue(h, 5000000000LL, &info), FR_OK);
		CHECK(info.frame_id == k.next_frame_id);
		EXPECT(fr_close(h), FR_OK); /* with a frame dequeued and the thread running */
		for (int i = 0; i < 4; i++)
			free(mem[i]);
	}
}

static void test_underruns(void)
{
	fr_config c = config(64, 16, 64, FR_PFNC_MONO8, 2000, 0);
	fr_handle h;
	EXPECT(fr_open(&c, &h), FR_OK);
	uint64_t size = 64 * 16;
	uint8_t *mem = malloc(2 * size);
	fr_buffer_id ids[2];
	for (int i = 0; i < 2; i++) {
		EXPECT(fr_announce_buffer(h, mem + i * size, size, &ids[i]), FR_OK);
		EXPECT(fr_queue_buffer(h, ids[i]), FR_OK);
	}
	EXPECT(fr_start(h), FR_OK);
	/* Hold everything: frames after the first two are lost. */
	fr_counters k = {0};
	for (int i = 0; i < 5000 && k.underruns < 20; i++) {
		sleep_ms(1);
		EXPECT(fr_get_counters(h, &k), FR_OK);
	}
	CHECK(k.underruns >= 20);
	uint64_t seen = 0, last = 0, gaps = 0;
	for (int n = 0; n < 200; n++) {
		fr_frame_info info;
		fr_status st = fr_dequeue(h, 5000000000LL, &info);
		EXPECT(st, FR_OK);
		if (st != FR_OK)
			break;
		if (seen > 0)
			gaps += info.frame_id - last - 1;
		else
			gaps += info.frame_id;
		CHECK(seen == 0 || info.frame_id > last);
		last = info.frame_id;
		seen++;
		EXPECT(fr_requeue_buffer(h, info.buffer), FR_OK);
		if (n % 50 == 0)
			sleep_ms(5); /* let some frames fall on an empty pool */
	}
	EXPECT(fr_stop(h), FR_OK);
	EXPECT(fr_get_counters(h, &k), FR_OK);
	CHECK(k.delivered == seen + k.discarded);
	CHECK(k.next_frame_id == k.delivered + k.underruns);
	/* Every missing id below the last one seen is an underrun (discards come
	 * only after the last dequeue). */
	CHECK(gaps <= k.underruns);
	CHECK(gaps + (k.next_frame_id - last - 1) == k.underruns + k.discarded);
	EXPECT(fr_close(h), FR_OK);
	free(mem);
}

struct waiter {
	fr_handle h;
	fr_status st;
};

static void *wait_frame(void *arg)
{
	struct waiter *w = arg;
	fr_frame_info info;
	w->st = fr_dequeue(w->h, -1, &info);
	return NULL;
}

static void test_wakeups(void)
{
	fr_config c = config(64, 16, 64, FR_PFNC_MONO8, 1, 0);
	/* Stop wakes a waiter with NOT_STARTED; close wakes one with INVALID_HANDLE. */
	for (int closing = 0; closing < 2; closing++) {
		fr_handle h;
		EXPECT(fr_open(&c, &h), FR_OK);
		EXPECT(fr_start(h), FR_OK);
		struct waiter w = {h, 99};
		pthread_t t;
		pthread_create(&t, NULL, wait_frame, &w);
		sleep_ms(20);
		if (closing) {
			EXPECT(fr_close(h), FR_OK);
		} else {
			EXPECT(fr_stop(h), FR_OK);
		}
		pthread_join(t, NULL);
		CHECK(w.st == (closing ? FR_ERR_INVALID_HANDLE : FR_ERR_NOT_STARTED));
		if (!closing)
			EXPECT(fr_close(h), FR_OK);
	}
	/* A timed wait with nothing queued times out. */
	fr_handle h;
	EXPECT(fr_open(&c, &h), FR_OK);
	EXPECT(fr_start(h), FR_OK);
	fr_frame_info info;
	EXPECT(fr_dequeue(h, 1000000, &info), FR_ERR_TIMEOUT);
	EXPECT(fr_dequeue(h, 0, &info), FR_ERR_TIMEOUT);
	EXPECT(fr_close(h), FR_OK);
}

static void test_use_after_close(void)
{
	fr_config c = config(64, 16, 64, FR_PFNC_MONO8, 0, 0);
	fr_handle h;
	EXPECT(fr_open(&c, &h), FR_OK);
	uint8_t mem[1024];
	fr_buffer_id id;
	EXPECT(fr_announce_buffer(h, mem, sizeof mem, &id), FR_OK);
	EXPECT(fr_close(h), FR_OK);
	fr_config got;
	fr_counters k;
	fr_frame_info info;
	void *p;
	EXPECT(fr_close(h), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_get_config(h, &got), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_set_config(h, &c), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_announce_buffer(h, mem, sizeof mem, &id), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_allocate_buffer(h, 1024, &id, &p), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_revoke_buffer(h, id), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_queue_buffer(h, id), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_requeue_buffer(h, id), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_detach_buffer(h, id), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_start(h), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_stop(h), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_dequeue(h, 0, &info), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_get_counters(h, &k), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_get_counters(0, &k), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_get_counters(~0ull, &k), FR_ERR_INVALID_HANDLE);

	/* A new device in the same slot does not answer to the old handle. */
	fr_handle h2;
	EXPECT(fr_open(&c, &h2), FR_OK);
	CHECK(h2 != h);
	EXPECT(fr_get_counters(h, &k), FR_ERR_INVALID_HANDLE);
	EXPECT(fr_close(h2), FR_OK);
}

static void test_limits(void)
{
	fr_config c = config(32, 1, 32, FR_PFNC_MONO8, 0, 0);
	fr_handle hs[FR_MAX_DEVICES + 1];
	int n = 0;
	fr_status st;
	while (n <= FR_MAX_DEVICES && (st = fr_open(&c, &hs[n])) == FR_OK)
		n++;
	CHECK(n == FR_MAX_DEVICES);
	EXPECT(st, FR_ERR_RESOURCE);
	/* Fill one device's buffer table. */
	uint8_t *mem = malloc((FR_MAX_BUFFERS + 1) * 32);
	fr_buffer_id id;
	for (int i = 0; i < FR_MAX_BUFFERS; i++)
		EXPECT(fr_announce_buffer(hs[0], mem + i * 32, 32, &id), FR_OK);
	EXPECT(fr_announce_buffer(hs[0], mem + FR_MAX_BUFFERS * 32, 32, &id), FR_ERR_RESOURCE);
	for (int i = 0; i < n; i++)
		EXPECT(fr_close(hs[i]), FR_OK);
	free(mem);

	uint8_t small[64];
	fr_config big = config(32, 2, 32, FR_PFNC_MONO8, 0, 0);
	EXPECT(fr_fill_pattern(&big, small, 63, 0), FR_ERR_BUFFER_SIZE);
	EXPECT(fr_fill_pattern(&big, NULL, 64, 0), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_fill_pattern(NULL, small, 64, 0), FR_ERR_INVALID_ARGUMENT);
	EXPECT(fr_fill_pattern(&big, small, 64, UINT64_MAX), FR_OK);
	CHECK(strcmp(fr_status_string(12345), "unknown status") == 0);
	CHECK(fr_abi_count() > 0 && fr_abi_name(-1) == NULL && fr_abi_name(fr_abi_count()) == NULL);
}

/* Stress: consumers dequeue and requeue while the main thread starts,
 * stops and finally closes the device under them. */
struct stress {
	fr_handle h;
	uint64_t frames;
	int bad;
};

static void *consume(void *arg)
{
	struct stress *s = arg;
	for (;;) {
		fr_frame_info info;
		fr_status st = fr_dequeue(s->h, 2000000, &info);
		if (st == FR_ERR_INVALID_HANDLE)
			return NULL;
		if (st == FR_OK) {
			__atomic_add_fetch(&s->frames, 1, __ATOMIC_RELAXED);
			if (info.frame_id % 2) {
				st = fr_requeue_buffer(s->h, info.buffer);
			} else {
				st = fr_detach_buffer(s->h, info.buffer);
				if (st == FR_OK) {
					st = fr_queue_buffer(s->h, info.buffer);
					if (st == FR_ERR_BUFFER_STATE) /* the main thread queued it first */
						st = FR_OK;
				}
			}
			if (st != FR_OK && st != FR_ERR_INVALID_HANDLE)
				__atomic_store_n(&s->bad, 1, __ATOMIC_RELAXED);
		} else if (st == FR_ERR_NOT_STARTED) {
			sleep_ms(1);
		} else if (st != FR_ERR_TIMEOUT) {
			__atomic_store_n(&s->bad, 1, __ATOMIC_RELAXED);
		}
	}
}

static void test_stress(void)
{
	fr_config c = config(256, 64, 256, FR_PFNC_MONO8, 0, FR_CONFIG_DEFECTS);
	for (int round = 0; round < 3; round++) {
		fr_handle h;
		EXPECT(fr_open(&c, &h), FR_OK);
		fr_buffer_id ids[6];
		void *p;
		for (int i = 0; i < 6; i++) {
			EXPECT(fr_allocate_buffer(h, 256 * 64, &ids[i], &p), FR_OK);
			EXPECT(fr_queue_buffer(h, ids[i]), FR_OK);
		}
		struct stress s = {h, 0, 0};
		pthread_t t[3];
		for (int i = 0; i < 3; i++)
			pthread_create(&t[i], NULL, consume, &s);
		for (int i = 0; i < 20; i++) {
			EXPECT(fr_start(h), FR_OK);
			sleep_ms(2);
			EXPECT(fr_stop(h), FR_OK);
			/* Stop discarded the pool back to us; queue every idle buffer
			 * again (a consumer may hold or have queued some). */
			for (int j = 0; j < 6; j++) {
				fr_status st = fr_queue_buffer(h, ids[j]);
				CHECK(st == FR_OK || st == FR_ERR_BUFFER_STATE);
			}
		}
		EXPECT(fr_start(h), FR_OK);
		sleep_ms(5);
		EXPECT(fr_close(h), FR_OK); /* consumers see INVALID_HANDLE and exit */
		for (int i = 0; i < 3; i++)
			pthread_join(t[i], NULL);
		CHECK(!s.bad);
		CHECK(s.frames > 0);
	}
}

int main(void)
{
	test_open_errors();
	test_config_and_buffers();
	test_stream_and_leases();
	test_underruns();
	test_wakeups();
	test_use_after_close();
	test_limits();
	test_stress();
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
