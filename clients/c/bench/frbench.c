/*
 * frbench: the C consumer of the clients benchmark (clients/bench). It
 * attaches lossy, takes frames with fr_next for SECONDS, and either only
 * takes and releases each lease ("lease") or also reads every byte with a
 * 64-bit word sum over four independent accumulators ("sum"), the same
 * memory-bound kernel the Go and Python consumers run. Prints one JSON line.
 *
 *   frbench SOCKET SECONDS lease|sum
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "framering.h"

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* sum64 adds the 64-bit words of b (n bytes, a multiple of 8, aligned:
 * payloads start on a page) in four independent accumulators, so that the
 * loop is bound by memory, not by one addition chain. */
static uint64_t sum64(const void *b, uint64_t n)
{
	const uint64_t *w = b;
	uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, i = 0, words = n / 8;
	for (; i + 4 <= words; i += 4) {
		a0 += w[i];
		a1 += w[i + 1];
		a2 += w[i + 2];
		a3 += w[i + 3];
	}
	for (; i < words; i++)
		a0 += w[i];
	return a0 + a1 + a2 + a3;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: frbench SOCKET SECONDS lease|sum\n");
		return 2;
	}
	double secs = atof(argv[2]);
	int do_sum = strcmp(argv[3], "sum") == 0;
	fr_options o;
	fr_options_init(&o);
	o.socket_path = argv[1];
	o.name = "frbench-c";
	o.mode = FR_MODE_LOSSLESS;
	fr_ring *r;
	int rc = fr_attach(&o, &r);
	if (rc != FR_OK) {
		fprintf(stderr, "frbench: attach: %s\n", fr_strerror(rc));
		return 1;
	}
	uint64_t frames = 0, bytes = 0, sum = 0;
	double t0 = 0, c0 = 0, warm = now(CLOCK_MONOTONIC) + 0.2;
	int measuring = 0;
	for (;;) {
		fr_lease l;
		fr_frame f;
		rc = fr_next(r, 1000, &l, &f);
		if (rc != FR_OK) {
			fprintf(stderr, "frbench: next: %s\n", fr_strerror(rc));
			return 1;
		}
		if (do_sum)
			sum += sum64(f.data, f.length);
		fr_release(r, l);
		if (!measuring) {
			if (now(CLOCK_MONOTONIC) < warm)
				continue;
			measuring = 1;
			t0 = now(CLOCK_MONOTONIC);
			c0 = now(CLOCK_PROCESS_CPUTIME_ID);
			continue;
		}
		frames++;
		bytes += f.length;
		if ((frames & 63) == 0 && now(CLOCK_MONOTONIC) - t0 >= secs)
			break;
	}
	double wall = now(CLOCK_MONOTONIC) - t0, cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	printf("{\"lang\": \"C\", \"frames\": %" PRIu64 ", \"seconds\": %.6f, \"cpu_seconds\": %.6f, \"bytes\": %" PRIu64
	       ", \"sum\": %" PRIu64 "}\n",
	       frames, wall, cpu, bytes, sum);
	fr_detach(r);
	return 0;
}
