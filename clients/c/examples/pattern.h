/*
 * pattern.h - the framering test pattern's stamp and checksum
 * (docs/LAYOUT.md Appendix A), for the example programs and tests: every
 * frame of the project's test sources carries it, so a consumer can prove
 * a frame intact without a reference copy.
 */
#ifndef FRAMERING_PATTERN_H
#define FRAMERING_PATTERN_H

#include <stdint.h>
#include <string.h>

#include "framering.h"

/* ---- The test pattern's stamp and checksum (docs/LAYOUT.md Appendix A) ---- */

#define STAMP_SIZE 32u
#define STAMP_MAGIC 0x54505246u
#define SUM_MUL 0x9E3779B97F4A7C15ull
#define SUM_FIN 0xFF51AFD7ED558CCDull

/* A peeked frame may change while it is read; these byte-wise reads are
 * harmless then (the result is discarded unless fr_peek_check passes). */
static inline uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline uint64_t rotl64(uint64_t x, unsigned n) { return x << n | x >> (64 - n); }

static inline uint64_t sum64(uint64_t seed, const uint8_t *b, uint64_t n)
{
	uint64_t h = seed * SUM_MUL ^ n;
	uint64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8); /* little-endian host (the ring requires it) */
		h = rotl64(h ^ w, 27) * SUM_MUL;
	}
	if (i < n)
		h = rotl64(h ^ le(b + i, (unsigned)(n - i)), 27) * SUM_MUL;
	h ^= h >> 33;
	h *= SUM_FIN;
	h ^= h >> 33;
	return h;
}

struct verdict {
	int ok;
	const char *why;
	uint64_t sum;
};

static inline struct verdict verify(const fr_frame *f, int want_id_is_seq)
{
	struct verdict v = {0, NULL, 0};
	const uint8_t *p = f->data;
	if (f->length < STAMP_SIZE) {
		v.why = "shorter than a stamp";
		return v;
	}
	if (le(p, 4) != STAMP_MAGIC) {
		v.why = "no stamp magic";
		return v;
	}
	if (le(p + 4, 4) != f->format || le(p + 8, 8) != f->frame_id || le(p + 16, 4) != f->width ||
	    le(p + 20, 4) != f->height) {
		v.why = "stamp disagrees with the descriptor";
		return v;
	}
	if ((uint64_t)f->stride * f->height != f->length) {
		v.why = "length is not stride*height";
		return v;
	}
	if (want_id_is_seq && f->frame_id != f->seq) {
		v.why = "frame id is not the sequence number";
		return v;
	}
	v.sum = sum64(f->frame_id, p + STAMP_SIZE, f->length - STAMP_SIZE);
	if (v.sum != le(p + 24, 8)) {
		v.why = "checksum mismatch";
		return v;
	}
	v.ok = 1;
	return v;
}

#endif
