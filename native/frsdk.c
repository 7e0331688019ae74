//go:build cgo

/*
 * frsdk.c - the simulated frame-grabber SDK (see frsdk.h).
 *
 * Invariants kept by this file:
 *
 *  1. Every field of a device except the immutable ones (tag) is guarded by
 *     dev->mu, with two exceptions: dev->stop_req is atomic (the acquisition
 *     thread polls it between sleep slices), and a buffer in state FILLING
 *     has its bytes written by the acquisition thread without the lock (no
 *     other path touches a FILLING buffer's memory, revokes or requeues it).
 *     The pattern (dev->pat) changes only while the thread is not running;
 *     pthread_create/pthread_join order those writes against its reads.
 *  2. A buffer index is in at most one of in_q and out_q, and it is there iff
 *     its state is QUEUED or OUTPUT respectively.
 *  3. next_frame_id == delivered + underruns + (1 if a buffer is FILLING).
 *  4. Every announced buffer holds a frame of the current geometry
 *     (size >= stride*height): announce refuses smaller memory and
 *     fr_set_config refuses a geometry that an announced buffer cannot hold.
 *  5. Lifetime: a device is reachable from g_dev only until fr_close begins.
 *     Every call takes a reference under g_mu (dev_acquire) and drops it on
 *     return (dev_release); fr_close frees the device only once its own
 *     reference is the last one, after waking every waiter. So a call that
 *     races with fr_close either runs on a live device or finds no device.
 *
 * Lock order: g_mu is never held while taking dev->mu, and dev->mu is never
 * held while taking g_mu (dev_acquire and dev_release take g_mu alone).
 */
#define _GNU_SOURCE
#include "frsdk.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* The acquisition thread sleeps in slices of at most this long, so that a
 * stop request is noticed within it even at low frame rates. */
#define FR_STOP_SLICE_NS 10000000LL

enum buf_state {
	BUF_FREE = 0,
	BUF_ANNOUNCED,
	BUF_QUEUED,
	BUF_FILLING,
	BUF_OUTPUT,
	BUF_DELIVERED
};

enum acq_state { ACQ_STOPPED = 0, ACQ_RUNNING, ACQ_STOPPING };

struct fr_buffer {
	uint8_t *base;
	uint64_t size;
	uint32_t gen;      /* 24 bits, never 0 for a live buffer */
	uint8_t state;     /* enum buf_state */
	uint8_t allocated; /* the device mmap'ed it and unmaps it */
	fr_frame_info info;
};

/* A pixel format: a row of frame/format.go's table, the properties the
 * pattern needs. */
struct fr_format {
	uint32_t code;
	uint8_t bits;           /* bits one pixel occupies in memory */
	uint8_t sample_bits;    /* significant bits of a sample */
	uint8_t packed;         /* enum fr_packing */
	uint8_t kind;           /* enum fr_kind */
	uint8_t width_multiple; /* 2 for YUV422 (pixel pairs), else 1 */
	uint8_t cfa[4];         /* Bayer: color of (0,0), (1,0), (0,1), (1,1) */
	uint8_t order[4];       /* RGB: byte offsets of R, G, B; YUV422: of Y0, U, Y1, V */
};

/* The precomputed pattern of one configuration (frame/pattern.go): the
 * background lines, row variant r (the Bayer row parity) and phase ph at
 * lines + (r*phases + ph)*line_bytes. */
struct pattern {
	fr_config cfg;
	const struct fr_format *fmt;
	uint32_t phases;
	uint32_t rows;
	uint64_t line_bytes;
	uint8_t tail; /* mask of the used bits of a row's last byte */
	uint8_t *lines;
};

/* A simple FIFO of buffer indices. */
struct fifo {
	uint32_t slot[FR_MAX_BUFFERS];
	uint32_t head, len;
};

struct fr_device {
	pthread_mutex_t mu;
	pthread_cond_t out_cond;   /* out_q non-empty, stop, close (CLOCK_MONOTONIC) */
	pthread_cond_t in_cond;    /* in_q non-empty, stop request (rate 0 pacing) */
	pthread_cond_t state_cond; /* acq leaves ACQ_STOPPING */

	uint16_t tag; /* immutable: high bits of every buffer id of this device */

	struct pattern pat;
	int acq;              /* enum acq_state */
	atomic_int stop_req;  /* set by stop, polled by the acquisition thread */
	pthread_t thread;
	uint64_t stop_epoch;  /* counts completed stops */
	int closing;          /* set under mu by fr_close */

	struct fifo in_q, out_q;
	uint64_t delivered, underruns, discarded, next_frame_id;
	uint32_t announced, held;
	uint32_t nbuf; /* high-water mark of used indices */
	struct fr_buffer buf[FR_MAX_BUFFERS];

	/* Guarded by g_mu. */
	uint32_t refs;
	int g_closing;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER; /* a closing device's refs fell */
static struct fr_device *g_dev[FR_MAX_DEVICES];
static uint32_t g_dev_gen[FR_MAX_DEVICES];
static uint16_t g_tag;

/* ---- small helpers ---------------------------------------------------- */

static uint64_t mono_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timespec ns_to_timespec(uint64_t ns)
{
	struct timespec ts;
	ts.tv_sec = (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	return ts;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* ---- the pattern (frame/pattern.go, byte for byte) -------------------- */

#define SUM_MUL 0x9E3779B97F4A7C15ull
#define SUM_FIN 0xFF51AFD7ED558CCDull
#define STAMP_MAGIC 0x54505246u

static uint64_t sum64(uint64_t seed, const uint8_t *b, uint64_t n)
{
	uint64_t h = seed * SUM_MUL ^ n;
	while (n >= 8) {
		h = rotl64(h ^ get_le64(b), 27) * SUM_MUL;
		b += 8;
		n -= 8;
	}
	if (n > 0) {
		uint8_t tail[8] = {0};
		memcpy(tail, b, n);
		h = rotl64(h ^ get_le64(tail), 27) * SUM_MUL;
	}
	h ^= h >> 33;
	h *= SUM_FIN;
	h ^= h >> 33;
	return h;
}

static uint64_t splitmix64(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* ---- pixel formats (frame/format.go's table, the same rows) ---------- */

enum fr_kind { K_MONO = 1, K_BAYER, K_RGB, K_YUV422 };
/* P_LSB: PFNC "p", an LSB-first bit stream per row; P_GEV: GigE Vision
 * "Packed", pairs of pixels in three bytes (frame.PackedGEV). */
enum fr_packing { P_NONE = 0, P_LSB, P_GEV };
enum fr_color { C_R = 0, C_G = 1, C_B = 2 };

#define MONO(code, bits, sb, packed) {code, bits, sb, packed, K_MONO, 1, {0, 0, 0, 0}, {0, 0, 0, 0}}
#define BAYER(code, bits, a, b, c, d) {code, bits, bits, P_NONE, K_BAYER, 1, {a, b, c, d}, {0, 0, 0, 0}}

static const struct fr_format fr_formats[] = {
	MONO(FR_PFNC_MONO8, 8, 8, P_NONE),
	MONO(FR_PFNC_MONO10, 16, 10, P_NONE),
	MONO(FR_PFNC_MONO12, 16, 12, P_NONE),
	MONO(FR_PFNC_MONO16, 16, 16, P_NONE),
	MONO(FR_PFNC_MONO10P, 10, 10, P_LSB),
	MONO(FR_PFNC_MONO12P, 12, 12, P_LSB),
	MONO(FR_PFNC_MONO10_PACKED, 12, 10, P_GEV),
	MONO(FR_PFNC_MONO12_PACKED, 12, 12, P_GEV),
	BAYER(FR_PFNC_BAYER_GR8, 8, C_G, C_R, C_B, C_G),
	BAYER(FR_PFNC_BAYER_RG8, 8, C_R, C_G, C_G, C_B),
	BAYER(FR_PFNC_BAYER_GB8, 8, C_G, C_B, C_R, C_G),
	BAYER(FR_PFNC_BAYER_BG8, 8, C_B, C_G, C_G, C_R),
	BAYER(FR_PFNC_BAYER_GR16, 16, C_G, C_R, C_B, C_G),
	BAYER(FR_PFNC_BAYER_RG16, 16, C_R, C_G, C_G, C_B),
	BAYER(FR_PFNC_BAYER_GB16, 16, C_G, C_B, C_R, C_G),
	BAYER(FR_PFNC_BAYER_BG16, 16, C_B, C_G, C_G, C_R),
	{FR_PFNC_RGB8, 24, 8, P_NONE, K_RGB, 1, {0, 0, 0, 0}, {0, 1, 2, 0}},
	{FR_PFNC_BGR8, 24, 8, P_NONE, K_RGB, 1, {0, 0, 0, 0}, {2, 1, 0, 0}},
	{FR_PFNC_YUV422_8, 16, 8, P_NONE, K_YUV422, 2, {0, 0, 0, 0}, {0, 1, 2, 3}},
	{FR_PFNC_YUV422_8_UYVY, 16, 8, P_NONE, K_YUV422, 2, {0, 0, 0, 0}, {1, 0, 3, 2}},
};

#undef MONO
#undef BAYER

static const struct fr_format *find_format(uint32_t code)
{
	for (size_t i = 0; i < sizeof fr_formats / sizeof fr_formats[0]; i++) {
		if (fr_formats[i].code == code)
			return &fr_formats[i];
	}
	return NULL;
}

/* row_bytes is frame.Format.RowBytes: ceil(width*bits/8). */
static uint64_t row_bytes(const struct fr_format *f, uint64_t width)
{
	return (width * f->bits + 7) / 8;
}

/* expand8 is frame.Expand8: the 8-bit v at n bits by bit replication. */
static uint32_t expand8(uint32_t v, uint32_t n)
{
	return (v << (n - 8)) | (v >> (16 - n));
}

/* set_bits overwrites the b bits at bit pos of the LSB-first stream dst. */
static void set_bits(uint8_t *dst, uint64_t len, uint64_t pos, uint32_t b, uint32_t v)
{
	uint64_t i = pos / 8;
	uint32_t sh = (uint32_t)(pos % 8);
	uint32_t m = ((1u << b) - 1) << sh;
	v = (v << sh) & m;
	for (uint64_t k = 0; k < 3 && i + k < len; k++)
		dst[i + k] = (uint8_t)((dst[i + k] & ~(m >> (8 * k))) | (v >> (8 * k)));
}

/* put_gev stores the n-bit sample s of pixel x of a GigE Vision packed
 * row, leaving its pair partner's bits as they are (frame.putGEV). */
static void put_gev(uint8_t *row, uint64_t x, uint32_t s, uint32_t n)
{
	uint32_t l = n - 8;
	uint8_t lo = (uint8_t)((1u << l) - 1);
	uint8_t *b = row + x / 2 * 3;
	if (x % 2 == 0) {
		b[0] = (uint8_t)(s >> l);
		b[1] = (uint8_t)((b[1] & ~lo) | (s & lo));
	} else {
		b[2] = (uint8_t)(s >> l);
		b[1] = (uint8_t)((b[1] & ~(lo << 4)) | ((s & lo) << 4));
	}
}

/* put_sample stores sample s of the one-sample pixel x of a row of len bytes. */
static void put_sample(uint8_t *row, uint64_t len, const struct fr_format *f, uint64_t x, uint32_t s)
{
	if (f->packed == P_LSB)
		set_bits(row, len, x * f->bits, f->bits, s);
	else if (f->packed == P_GEV)
		put_gev(row, x, s, f->sample_bits);
	else if (f->bits == 8)
		row[x] = (uint8_t)s;
	else
		put_le16(row + 2 * x, (uint16_t)s);
}

/* put_defect sets pixel x of a row to the format's maximum or zero. */
static void put_defect(uint8_t *row, uint64_t len, const struct fr_format *f, uint64_t x, int bright)
{
	uint8_t v = bright ? 0xFF : 0x00;
	switch (f->kind) {
	case K_MONO:
	case K_BAYER:
		put_sample(row, len, f, x, bright ? (1u << f->sample_bits) - 1 : 0);
		break;
	case K_RGB:
		memset(row + 3 * x, v, 3);
		break;
	case K_YUV422:
		row[x / 2 * 4 + f->order[2 * (x % 2)]] = v;
		break;
	}
}

/* encode_line writes the background of pixels j = 0..n-1 with base values
 * 16 + (j+ph) mod 128 for a row of parity r (frame/pattern.go encodeLine). */
static void encode_line(uint8_t *line, uint64_t len, const struct fr_format *f, uint64_t n, uint32_t r, uint32_t ph)
{
	for (uint64_t j = 0; j < n; j++) {
		uint32_t v = 16 + (uint32_t)((j + ph) % 128);
		switch (f->kind) {
		case K_MONO:
			put_sample(line, len, f, j, expand8(v, f->sample_bits));
			break;
		case K_BAYER:
			put_sample(line, len, f, j, expand8(v + 16 * f->cfa[r * 2 + j % 2], f->sample_bits));
			break;
		case K_RGB:
			line[3 * j + f->order[0]] = (uint8_t)v;
			line[3 * j + f->order[1]] = (uint8_t)(v + 32);
			line[3 * j + f->order[2]] = (uint8_t)(v + 64);
			break;
		case K_YUV422:
			if (j % 2 == 0) {
				uint8_t *pair = line + 2 * j;
				pair[f->order[0]] = (uint8_t)v;
				pair[f->order[1]] = (uint8_t)(v + 32);
				pair[f->order[2]] = (uint8_t)(16 + (j + 1 + ph) % 128);
				pair[f->order[3]] = (uint8_t)(v + 64);
			}
			break;
		}
	}
}

static uint64_t cfg_size(const fr_config *c)
{
	return (uint64_t)c->stride * c->height;
}

/* Same checks, in the same order, as frame.Geometry.Validate plus
 * NewGenerator's stamp check, then the SDK's own fields. */
static fr_status validate_config(const fr_config *c)
{
	const struct fr_format *f = find_format(c->format);
	if (f == NULL)
		return FR_ERR_FORMAT;
	if (c->width == 0 || c->height == 0 || c->width > FR_MAX_DIMENSION || c->height > FR_MAX_DIMENSION)
		return FR_ERR_GEOMETRY;
	if (c->width % f->width_multiple != 0)
		return FR_ERR_GEOMETRY;
	if ((uint64_t)c->stride < row_bytes(f, c->width) || c->stride > FR_MAX_STRIDE)
		return FR_ERR_GEOMETRY;
	if (cfg_size(c) < FR_STAMP_SIZE)
		return FR_ERR_GEOMETRY;
	if (!isfinite(c->frame_rate) || c->frame_rate < 0 || c->frame_rate > FR_MAX_FRAME_RATE)
		return FR_ERR_INVALID_ARGUMENT;
	if ((c->flags & ~(uint32_t)FR_CONFIG_DEFECTS) != 0 || c->reserved != 0)
		return FR_ERR_INVALID_ARGUMENT;
	return FR_OK;
}

static uint32_t gcd32(uint32_t a, uint32_t b)
{
	while (b != 0) {
		uint32_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* pattern_init builds the background lines of a validated config
 * (frame.NewGenerator). */
static fr_status pattern_init(struct pattern *p, const fr_config *c)
{
	const struct fr_format *f = find_format(c->format);
	uint32_t phases = 8 / gcd32(f->bits, 8);
	if ((f->kind == K_BAYER || f->kind == K_YUV422) && phases % 2 != 0)
		phases *= 2;
	uint32_t rows = f->kind == K_BAYER ? 2 : 1;
	uint64_t n = ((uint64_t)c->width + 128 + phases - 1) / phases * phases;
	uint64_t line_bytes = n * f->bits / 8;
	uint8_t *lines = calloc((size_t)rows * phases, (size_t)line_bytes);
	if (lines == NULL)
		return FR_ERR_NO_MEMORY;
	for (uint32_t r = 0; r < rows; r++) {
		for (uint32_t ph = 0; ph < phases; ph++)
			encode_line(lines + (r * phases + ph) * line_bytes, line_bytes, f, n, r, ph);
	}
	uint32_t rem = (uint32_t)(((uint64_t)c->width * f->bits) % 8);
	p->cfg = *c;
	p->fmt = f;
	p->phases = phases;
	p->rows = rows;
	p->line_bytes = line_bytes;
	p->tail = rem == 0 ? 0xFF : (uint8_t)((1u << rem) - 1);
	p->lines = lines;
	return FR_OK;
}

static void pattern_free(struct pattern *p)
{
	free(p->lines);
	p->lines = NULL;
}

/* pattern_fill writes frame id into dst[0 : stride*height] (frame.Generator.Fill). */
static void pattern_fill(const struct pattern *p, uint8_t *dst, uint64_t id)
{
	const fr_config *c = &p->cfg;
	const struct fr_format *f = p->fmt;
	const uint64_t stride = c->stride, w = c->width, h = c->height;
	const uint64_t row = row_bytes(f, w), size = stride * h;

	for (uint64_t y = 0; y < h; y++) {
		uint64_t off = (2 * y + 3 * id) % 128;
		uint64_t ph = off % p->phases;
		uint64_t start = (off - ph) * f->bits / 8;
		uint8_t *r = dst + y * stride;
		memcpy(r, p->lines + ((y % p->rows) * p->phases + ph) * p->line_bytes + start, row);
		r[row - 1] &= p->tail;
		memset(r + row, 0, stride - row);
	}
	if ((c->flags & FR_CONFIG_DEFECTS) && w >= 3 * 18 && h >= 18) {
		uint64_t n = id % 3, band = w / 3;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t hh = splitmix64(4 * id + i);
			uint64_t bsize = 4 + (hh >> 8) % 13;
			uint64_t bx = i * band + (hh >> 16) % (band - bsize - 1);
			uint64_t by = 1 + (hh >> 32) % (h - bsize - 1);
			int bright = ((hh >> 60) & 1) == 0;
			for (uint64_t y = by; y < by + bsize; y++) {
				for (uint64_t x = bx; x < bx + bsize; x++)
					put_defect(dst + y * stride, row, f, x, bright);
			}
		}
	}
	put_le32(dst + 0, STAMP_MAGIC);
	put_le32(dst + 4, c->format);
	put_le64(dst + 8, id);
	put_le32(dst + 16, c->width);
	put_le32(dst + 20, c->height);
	put_le64(dst + 24, sum64(id, dst + FR_STAMP_SIZE, size - FR_STAMP_SIZE));
}

/* ---- queues ----------------------------------------------------------- */

static void fifo_push(struct fifo *q, uint32_t idx)
{
	q->slot[(q->head + q->len) % FR_MAX_BUFFERS] = idx;
	q->len++;
}

static uint32_t fifo_pop(struct fifo *q)
{
	uint32_t idx = q->slot[q->head];
	q->head = (q->head + 1) % FR_MAX_BUFFERS;
	q->len--;
	return idx;
}

/* ---- handles and buffer ids ------------------------------------------- */

static struct fr_device *dev_acquire(fr_handle h)
{
	uint64_t lo = h & 0xFFFFFFFFu;
	if (lo == 0 || lo > FR_MAX_DEVICES)
		return NULL;
	uint32_t idx = (uint32_t)lo - 1, gen = (uint32_t)(h >> 32);
	pthread_mutex_lock(&g_mu);
	struct fr_device *d = g_dev[idx];
	if (d != NULL && g_dev_gen[idx] == gen)
		d->refs++;
	else
		d = NULL;
	pthread_mutex_unlock(&g_mu);
	return d;
}

static void dev_release(struct fr_device *d)
{
	pthread_mutex_lock(&g_mu);
	d->refs--;
	if (d->g_closing && d->refs <= 1)
		pthread_cond_broadcast(&g_cond);
	pthread_mutex_unlock(&g_mu);
}

#define ID_IDX_BITS 24
#define ID_GEN_BITS 24
#define ID_IDX_MASK ((1u << ID_IDX_BITS) - 1)
#define ID_GEN_MASK ((1u << ID_GEN_BITS) - 1)

static fr_buffer_id make_id(const struct fr_device *d, uint32_t idx)
{
	return ((uint64_t)d->tag << (ID_IDX_BITS + ID_GEN_BITS)) | ((uint64_t)d->buf[idx].gen << ID_IDX_BITS) | idx;
}

/* find_buffer returns the live buffer id names on d, or NULL. Needs d->mu. */
static struct fr_buffer *find_buffer(struct fr_device *d, fr_buffer_id id)
{
	uint64_t tag = id >> (ID_IDX_BITS + ID_GEN_BITS);
	uint32_t gen = (uint32_t)(id >> ID_IDX_BITS) & ID_GEN_MASK;
	uint32_t idx = (uint32_t)id & ID_IDX_MASK;
	if (tag != d->tag || idx >= FR_MAX_BUFFERS)
		return NULL;
	struct fr_buffer *b = &d->buf[idx];
	if (b->state == BUF_FREE || b->gen != gen)
		return NULL;
	return b;
}

/* new_buffer claims a free slot for [base, base+size). Needs d->mu. */
static fr_status new_buffer(struct fr_device *d, uint8_t *base, uint64_t size, int allocated, fr_buffer_id *out)
{
	for (uint32_t i = 0; i < FR_MAX_BUFFERS; i++) {
		struct fr_buffer *b = &d->buf[i];
		if (b->state != BUF_FREE)
			continue;
		b->gen = (b->gen + 1) & ID_GEN_MASK;
		if (b->gen == 0)
			b->gen = 1;
		b->base = base;
		b->size = size;
		b->allocated = (uint8_t)allocated;
		b->state = BUF_ANNOUNCED;
		memset(&b->info, 0, sizeof b->info);
		if (i >= d->nbuf)
			d->nbuf = i + 1;
		d->announced++;
		*out = make_id(d, i);
		return FR_OK;
	}
	return FR_ERR_RESOURCE;
}

static void free_buffer(struct fr_device *d, struct fr_buffer *b)
{
	if (b->allocated)
		munmap(b->base, b->size);
	b->base = NULL;
	b->size = 0;
	b->allocated = 0;
	b->state = BUF_FREE;
	d->announced--;
}

/* ---- acquisition ------------------------------------------------------ */

/* take_frame delivers the frame that is due now: into the oldest queued
 * buffer, or lost as an underrun. Called and returns with d->mu held; drops
 * it while writing pixels. */
static void take_frame(struct fr_device *d)
{
	uint64_t id = d->next_frame_id++;
	if (d->in_q.len == 0) {
		d->underruns++;
		return;
	}
	uint32_t idx = fifo_pop(&d->in_q);
	struct fr_buffer *b = &d->buf[idx];
	b->state = BUF_FILLING;
	uint64_t ts = mono_now_ns();
	pthread_mutex_unlock(&d->mu);

	pattern_fill(&d->pat, b->base, id);

	pthread_mutex_lock(&d->mu);
	const fr_config *c = &d->pat.cfg;
	b->info = (fr_frame_info){
		.buffer = make_id(d, idx),
		.frame_id = id,
		.timestamp_ns = ts,
		.size = cfg_size(c),
		.width = c->width,
		.height = c->height,
		.stride = c->stride,
		.format = c->format,
		.status = FR_FRAME_COMPLETE,
	};
	b->state = BUF_OUTPUT;
	fifo_push(&d->out_q, idx);
	d->delivered++;
	pthread_cond_signal(&d->out_cond);
}

/* sleep_until sleeps to the absolute CLOCK_MONOTONIC time due_ns, in slices
 * of FR_STOP_SLICE_NS, returning early when a stop is requested. */
static void sleep_until(struct fr_device *d, uint64_t due_ns)
{
	while (!atomic_load(&d->stop_req)) {
		uint64_t now = mono_now_ns();
		if (now >= due_ns)
			return;
		uint64_t until = due_ns;
		if (due_ns - now > (uint64_t)FR_STOP_SLICE_NS)
			until = now + FR_STOP_SLICE_NS;
		struct timespec ts = ns_to_timespec(until);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
		}
	}
}

static void *acquisition_main(void *arg)
{
	struct fr_device *d = arg;
	double rate = d->pat.cfg.frame_rate;
	uint64_t period = 0;
	if (rate > 0) {
		period = (uint64_t)(1e9 / rate + 0.5);
		if (period == 0)
			period = 1;
	}
	uint64_t due = mono_now_ns(); /* the first frame is due at start */

	pthread_mutex_lock(&d->mu);
	while (!atomic_load(&d->stop_req)) {
		if (period == 0) {
			/* Rate 0: a frame is due as soon as a buffer is queued. */
			while (d->in_q.len == 0 && !atomic_load(&d->stop_req))
				pthread_cond_wait(&d->in_cond, &d->mu);
			if (atomic_load(&d->stop_req))
				break;
			take_frame(d);
			continue;
		}
		pthread_mutex_unlock(&d->mu);
		sleep_until(d, due);
		pthread_mutex_lock(&d->mu);
		if (atomic_load(&d->stop_req))
			break;
		take_frame(d);
		due += period;
		/* Fallen a whole period behind (a slow fill, a descheduled thread):
		 * re-anchor the schedule instead of bursting to catch up. */
		uint64_t now = mono_now_ns();
		if (now > due + period)
			due = now;
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* dev_stop stops and joins the acquisition thread and discards the queues.
 * Called without d->mu. */
static void dev_stop(struct fr_device *d)
{
	pthread_mutex_lock(&d->mu);
	while (d->acq == ACQ_STOPPING)
		pthread_cond_wait(&d->state_cond, &d->mu);
	if (d->acq == ACQ_STOPPED) {
		pthread_mutex_unlock(&d->mu);
		return;
	}
	d->acq = ACQ_STOPPING;
	atomic_store(&d->stop_req, 1);
	pthread_cond_broadcast(&d->in_cond);
	pthread_mutex_unlock(&d->mu);

	pthread_join(d->thread, NULL);

	pthread_mutex_lock(&d->mu);
	while (d->in_q.len > 0)
		d->buf[fifo_pop(&d->in_q)].state = BUF_ANNOUNCED;
	while (d->out_q.len > 0) {
		d->buf[fifo_pop(&d->out_q)].state = BUF_ANNOUNCED;
		d->discarded++;
	}
	d->acq = ACQ_STOPPED;
	d->stop_epoch++;
	pthread_cond_broadcast(&d->out_cond);
	pthread_cond_broadcast(&d->state_cond);
	pthread_mutex_unlock(&d->mu);
}

/* ---- the API ---------------------------------------------------------- */

/* lock_live takes d->mu and fails if fr_close has begun. */
static fr_status lock_live(struct fr_device *d)
{
	pthread_mutex_lock(&d->mu);
	if (d->closing) {
		pthread_mutex_unlock(&d->mu);
		return FR_ERR_INVALID_HANDLE;
	}
	return FR_OK;
}

fr_status fr_open(const fr_config *cfg, fr_handle *out)
{
	if (cfg == NULL || out == NULL)
		return FR_ERR_INVALID_ARGUMENT;
	fr_status st = validate_config(cfg);
	if (st != FR_OK)
		return st;
	struct fr_device *d = calloc(1, sizeof *d);
	if (d == NULL)
		return FR_ERR_NO_MEMORY;
	st = pattern_init(&d->pat, cfg);
	if (st != FR_OK) {
		free(d);
		return st;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->out_cond, &ca);
	pthread_cond_init(&d->in_cond, NULL);
	pthread_cond_init(&d->state_cond, NULL);
	pthread_condattr_destroy(&ca);
	atomic_init(&d->stop_req, 0);

	pthread_mutex_lock(&g_mu);
	int slot = -1;
	for (int i = 0; i < FR_MAX_DEVICES; i++) {
		if (g_dev[i] == NULL) {
			slot = i;
			break;
		}
	}
	if (slot < 0) {
		pthread_mutex_unlock(&g_mu);
		pthread_mutex_destroy(&d->mu);
		pthread_cond_destroy(&d->out_cond);
		pthread_cond_destroy(&d->in_cond);
		pthread_cond_destroy(&d->state_cond);
		pattern_free(&d->pat);
		free(d);
		return FR_ERR_RESOURCE;
	}
	if (++g_tag == 0)
		g_tag = 1;
	d->tag = g_tag;
	if (++g_dev_gen[slot] == 0)
		g_dev_gen[slot] = 1;
	g_dev[slot] = d;
	*out = ((uint64_t)g_dev_gen[slot] << 32) | (uint64_t)(slot + 1);
	pthread_mutex_unlock(&g_mu);
	return FR_OK;
}

fr_status fr_close(fr_handle h)
{
	struct fr_device *d = dev_acquire(h);
	if (d == NULL)
		return FR_ERR_INVALID_HANDLE;
	pthread_mutex_lock(&g_mu);
	if (d->g_closing) { /* a concurrent fr_close won */
		d->refs--;
		pthread_cond_broadcast(&g_cond);
		pthread_mutex_unlock(&g_mu);
		return FR_ERR_INVALID_HANDLE;
	}
	d->g_closing = 1;
	for (int i = 0; i < FR_MAX_DEVICES; i++) {
		if (g_dev[i] == d)
			g_dev[i] = NULL;
	}
	pthread_mutex_unlock(&g_mu);

	pthread_mutex_lock(&d->mu);
	d->closing = 1;
	pthread_mutex_unlock(&d->mu);
	dev_stop(d);
	pthread_mutex_lock(&d->mu);
	pthread_cond_broadcast(&d->out_cond);
	pthread_cond_broadcast(&d->in_cond);
	pthread_cond_broadcast(&d->state_cond);
	pthread_mutex_unlock(&d->mu);

	pthread_mutex_lock(&g_mu);
	while (d->refs > 1)
		pthread_cond_wait(&g_cond, &g_mu);
	pthread_mutex_unlock(&g_mu);

	/* Nobody else can reach d now. */
	for (uint32_t i = 0; i < d->nbuf; i++) {
		if (d->buf[i].state != BUF_FREE)
			free_buffer(d, &d->buf[i]);
	}
	pattern_free(&d->pat);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->out_cond);
	pthread_cond_destroy(&d->in_cond);
	pthread_cond_destroy(&d->state_cond);
	free(d);
	return FR_OK;
}

fr_status fr_get_config(fr_handle h, fr_config *out)
{
	struct fr_device *d = dev_acquire(h);
	if (d == NULL)
		return FR_ERR_INVALID_HANDLE;
	fr_status st = FR_ERR_INVALID_ARGUMENT;
	if (out != NULL && (st = lock_live(d)) == FR_OK) {
		*out = d->pat.cfg;
		pthread_mutex_unlock(&d->mu);
	}
	dev_release(d);
	return st;
}

fr_status fr_set_config(fr_handle h, const fr_config *cfg)
{
	struct fr_device *d = dev_acquire(h);
	if (d == NULL)
		return FR_ERR_INVALID_HANDLE;
	fr_status st = cfg == NULL ? FR_ERR_INVALID_ARGUMENT : validate_config(cfg);
	if (st == FR_OK && (st = lock_live(d)) == FR_OK) {
		if (d->acq != ACQ_STOPPED)
			st = FR_ERR_BUSY;
		for (uint32_t i = 0; st == FR_OK && i < d->nbuf; i++) {
			if (d->buf[i].state != BUF_FREE && d->buf[i].size < cfg_size(cfg))
				st = FR_ERR_BUFFER_SIZE;
		}
		struct pattern p;
		if (st == FR_OK && (st = pattern_init(&p, cfg)) == FR_OK) {
			pattern_free(&d->pat);
			d->pat = p;
		}
		pthread_mutex_unlock(&d->mu);
	}
	dev_release(d);
	return st;
}

/* add_buffer is announce and allocate after argument checks. */
static fr_status add_buffer(struct fr_device *d, uint8_t *base, uint64_t size, int allocated, fr_buffer_id *out)
{
	fr_status st = lock_live(d);
	if (st != FR_OK)
		return st;
	if (size < cfg_size(&d->pat.cfg))
		st = FR_ERR_BUFFER_SIZE;
	uintptr_t lo = (uintptr_t)base, hi = lo + (uintptr_t)size;
	for (uint32_t i = 0; st == FR_OK && i < d->nbuf; i++) {
		const struct fr_buffer *b = &d->buf[i];
		if (b->state != BUF_FREE && lo < (uintptr_t)b->base + b->size && (uintptr_t)b->base < hi)
			st = FR_ERR_OVERLAP;
	}
	if (st == FR_OK)
		st = new_buffer(d, base, size, allocated, out);
	pthread_mutex_unlock(&d->mu);
	return st;
}

fr_status fr_announce_buffer(fr_handle h, void *base, uint64_t size, fr_buffer_id *out)
{
	struct fr_device *d = dev_acquire(h);
	if (d == NULL)
		return FR_ERR_INVALID_HANDLE;
	fr_status st;
	if (base == NULL || out == NULL || size > (uint64_t)(UINTPTR_MAX - (uintptr_t)base))
		st = FR_ERR_INVALID_ARGUMENT;
	else if (size == 0)
		st = FR_ERR_BUFFER_SIZE;
	else
		st = add_buffer(d, base, size, 0, out);
	dev_release(d);
	return st;
}

fr_status fr_allocate_buffer(fr_handle h, uint64_t size, fr_buffer_id *out, void **base_out)
{
	struct fr_device *d = dev_acquire(h);
	if (d == NULL)
		return FR_ERR_INVALID_HANDLE;
	fr_status st = FR_OK;
	if (out == NULL || base_out == NULL || size > (uint64_t)SIZE_MAX / 2)
		st = FR_ERR_INVALID_ARGUMENT;
	else if (size == 0)
		st = FR_ERR_BUFFER_SIZE;
	if (st == FR_OK && (st = lock_live(d)) == FR_OK) {
		if (size < cfg_size(&d->pat.cfg))
			st = FR_ERR_BUFFER_SIZE;
		pthread_mutex_unlock(&d->mu);
	}
	void *p = MAP_FAILED;
	if (st == FR_OK) {
		p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			st = FR_ERR_NO_MEMORY;
	}
	if (st == FR_OK) {
		/* The geometry may have changed since the check above; add_buffer
		 * checks again under the lock. */
		st = add_buffer(d, p, size, 1, out);
		if (st == FR_OK)
			*base_out = p;
		else
			munmap(p, (size_t)size);
	}
	dev_release(d);
	return st;
}

/* buffer_op runs one buffer state transition under d->mu. */
enum buffer_op { OP_REVOKE, OP_QUEUE, OP_REQUEUE, OP_DETACH };

static fr_status buffer_op(fr_handle h, fr_buffer_id id, enum buffer_op op)
{
	struct fr_device *d = dev_acquire(h);
	if (d == NULL)
		return FR_ERR_INVALID_HANDLE;
	fr_status st = lock_live(d);
	if (st != FR_OK) {
		dev_release(d);
		return st;
	}
	struct fr_buffer *b = find_buffer(d, id);
	if (b == NULL) {
		st = FR_ERR_UNKNOWN_BUFFER;
	} else {
		uint8_t need = (op == OP_REVOKE || op == OP_QUEUE) ? BUF_ANNOUNCED : BUF_DELIVERED;
		if (b->state != need) {
			st = FR_ERR_BUFFER_STATE;
		} else {
			switch (op) {
			case OP_REVOKE:
				free_buffer(d, b);
				break;
			case OP_QUEUE:
			case OP_REQUEUE:
				if (op == OP_REQUEUE)
					d->held--;
				b->state = BUF_QUEUED;
				fifo_push(&d->in_q, (uint32_t)(b - d->buf));
				pthread_cond_signal(&d->in_cond);
				break;
			case OP_DETACH:
				d->held--;
				b->state = BUF_ANNOUNCED;
				break;
			}
		}
	}
	pthread_mutex_unlock(&d->mu);
	dev_release(d);
	return st;
}

fr_status fr_revoke_buffer(fr_handle h, fr_buffer_id id) { return buffer_op(h, id, OP_REVOKE); }
fr_status fr_queue_buffer(fr_handle h, fr_buffer_id id) { return buffer_op(h, id, OP_QUEUE); }
fr_status fr_requeue_buffer(fr_handle h, fr_buffer_id id) { return buffer_op(h, id, OP_REQUEUE); }
fr_status fr_detach_buffer(fr_handle h, fr_buffer_id id) { return buffer_op(h, id, OP_DETACH); }

fr_status fr_start(fr_handle h)
{
	struct fr_device *d = dev_acquire(h);
	if (d == NULL)
		return FR_ERR_INVALID_HANDLE;
	fr_status st = lock_live(d);
	if (st == FR_OK) {
		if (d->acq != ACQ_STOPPED) {
			st = FR_ERR_BUSY;
		} else {
			atomic_store(&d->stop_req, 0);
			/* The thread blocks every signal: the host process (a Go
			 * program) handles signals on its own threads. */
			sigset_t all, old;
			sigfillset(&all);
			pthread_sigmask(SIG_SETMASK, &all, &old);
			int rc = pthread_create(&d->thread, NULL, acquisition_main, d);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			if (rc != 0)
				st = FR_ERR_RESOURCE;
			else
				d->acq = ACQ_RUNNING;
		}
		pthread_mutex_unlock(&d->mu);
	}
	dev_release(d);
	return st;
}

fr_status fr_stop(fr_handle h)
{
	struct fr_device *d = dev_acquire(h);
	if (d == NULL)
		return FR_ERR_INVALID_HANDLE;
	fr_status st = lock_live(d);
	if (st == FR_OK) {
		pthread_mutex_unlock(&d->mu);
		dev_stop(d);
	}
	dev_release(d);
	return st;
}

fr_status fr_dequeue(fr_handle h, int64_t timeout_ns, fr_frame_info *out)
{
	struct fr_device *d = dev_acquire(h);
	if (d == NULL)
		return FR_ERR_INVALID_HANDLE;
	if (out == NULL) {
		dev_release(d);
		return FR_ERR_INVALID_ARGUMENT;
	}
	struct timespec deadline = {0};
	if (timeout_ns > 0)
		deadline = ns_to_timespec(mono_now_ns() + (uint64_t)timeout_ns);

	fr_status st = lock_live(d);
	if (st != FR_OK) {
		dev_release(d);
		return st;
	}
	uint64_t epoch = d->stop_epoch;
	int timed_out = 0;
	for (;;) {
		if (d->closing) {
			st = FR_ERR_INVALID_HANDLE;
			break;
		}
		if (d->out_q.len > 0) {
			struct fr_buffer *b = &d->buf[fifo_pop(&d->out_q)];
			b->state = BUF_DELIVERED;
			d->held++;
			*out = b->info;
			st = FR_OK;
			break;
		}
		if (d->acq != ACQ_RUNNING || d->stop_epoch != epoch) {
			st = FR_ERR_NOT_STARTED;
			break;
		}
		if (timeout_ns == 0 || timed_out) {
			st = FR_ERR_TIMEOUT;
			break;
		}
		if (timeout_ns < 0)
			pthread_cond_wait(&d->out_cond, &d->mu);
		else if (pthread_cond_timedwait(&d->out_cond, &d->mu, &deadline) == ETIMEDOUT)
			timed_out = 1; /* look once more, then report the timeout */
	}
	pthread_mutex_unlock(&d->mu);
	dev_release(d);
	return st;
}

fr_status fr_get_counters(fr_handle h, fr_counters *out)
{
	struct fr_device *d = dev_acquire(h);
	if (d == NULL)
		return FR_ERR_INVALID_HANDLE;
	fr_status st = FR_ERR_INVALID_ARGUMENT;
	if (out != NULL && (st = lock_live(d)) == FR_OK) {
		*out = (fr_counters){
			.delivered = d->delivered,
			.underruns = d->underruns,
			.discarded = d->discarded,
			.next_frame_id = d->next_frame_id,
			.queued = d->in_q.len,
			.awaiting = d->out_q.len,
			.held = d->held,
			.announced = d->announced,
		};
		pthread_mutex_unlock(&d->mu);
	}
	dev_release(d);
	return st;
}

fr_status fr_fill_pattern(const fr_config *cfg, void *dst, uint64_t size, uint64_t frame_id)
{
	if (cfg == NULL || dst == NULL)
		return FR_ERR_INVALID_ARGUMENT;
	fr_status st = validate_config(cfg);
	if (st != FR_OK)
		return st;
	if (size < cfg_size(cfg))
		return FR_ERR_BUFFER_SIZE;
	struct pattern p;
	if ((st = pattern_init(&p, cfg)) != FR_OK)
		return st;
	pattern_fill(&p, dst, frame_id);
	pattern_free(&p);
	return FR_OK;
}

const char *fr_status_string(fr_status s)
{
	switch (s) {
	case FR_OK:
		return "ok";
	case FR_ERR_INVALID_HANDLE:
		return "invalid or closed device handle";
	case FR_ERR_INVALID_ARGUMENT:
		return "invalid argument";
	case FR_ERR_BUSY:
		return "acquisition running";
	case FR_ERR_NOT_STARTED:
		return "acquisition not running";
	case FR_ERR_TIMEOUT:
		return "timeout";
	case FR_ERR_UNKNOWN_BUFFER:
		return "unknown buffer";
	case FR_ERR_BUFFER_STATE:
		return "buffer in wrong state";
	case FR_ERR_OVERLAP:
		return "buffer overlaps an announced buffer";
	case FR_ERR_BUFFER_SIZE:
		return "buffer too small for a frame";
	case FR_ERR_FORMAT:
		return "unknown pixel format";
	case FR_ERR_GEOMETRY:
		return "invalid frame geometry";
	case FR_ERR_NO_MEMORY:
		return "out of memory";
	case FR_ERR_RESOURCE:
		return "out of device resources";
	}
	return "unknown status";
}

/* ---- ABI self-description --------------------------------------------- */

#define ABI_SIZE(T) {"sizeof(" #T ")", sizeof(T)}
#define ABI_OFF(T, f) {"offsetof(" #T ", " #f ")", offsetof(T, f)}

static const struct {
	const char *name;
	uint64_t value;
} fr_abi[] = {
	ABI_SIZE(fr_config),
	ABI_OFF(fr_config, width),
	ABI_OFF(fr_config, height),
	ABI_OFF(fr_config, stride),
	ABI_OFF(fr_config, format),
	ABI_OFF(fr_config, frame_rate),
	ABI_OFF(fr_config, flags),
	ABI_OFF(fr_config, reserved),
	ABI_SIZE(fr_frame_info),
	ABI_OFF(fr_frame_info, buffer),
	ABI_OFF(fr_frame_info, frame_id),
	ABI_OFF(fr_frame_info, timestamp_ns),
	ABI_OFF(fr_frame_info, size),
	ABI_OFF(fr_frame_info, width),
	ABI_OFF(fr_frame_info, height),
	ABI_OFF(fr_frame_info, stride),
	ABI_OFF(fr_frame_info, format),
	ABI_OFF(fr_frame_info, status),
	ABI_OFF(fr_frame_info, reserved),
	ABI_SIZE(fr_counters),
	ABI_OFF(fr_counters, delivered),
	ABI_OFF(fr_counters, underruns),
	ABI_OFF(fr_counters, discarded),
	ABI_OFF(fr_counters, next_frame_id),
	ABI_OFF(fr_counters, queued),
	ABI_OFF(fr_counters, awaiting),
	ABI_OFF(fr_counters, held),
	ABI_OFF(fr_counters, announced),
	ABI_SIZE(fr_handle),
	ABI_SIZE(fr_buffer_id),
	ABI_SIZE(fr_status),
};

int fr_abi_count(void) { return (int)(sizeof fr_abi / sizeof fr_abi[0]); }

const char *fr_abi_name(int i) { return i >= 0 && i < fr_abi_count() ? fr_abi[i].name : NULL; }

uint64_t fr_abi_value(int i) { return i >= 0 && i < fr_abi_count() ? fr_abi[i].value : 0; }
