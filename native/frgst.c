//go:build gst && cgo

/*
 * frgst.c - a GStreamer pipeline as a framering frame grabber (frgst.h).
 *
 * It lives in the package directory, not a subdirectory, so that the go
 * command rebuilds it when it changes (its build cache does not follow
 * #include into subdirectories).
 *
 * Invariants kept by this file:
 *
 *  1. Every field of frg_dev below "mu" is guarded by mu. The streaming
 *     threads (pool acquire, sink render/set_caps/event) and the
 *     application's threads meet only there.
 *  2. Nothing that can free a GstBuffer or GstMemory runs with mu held:
 *     freeing one of our memories calls mem_freed, which takes mu. Buffers
 *     to drop are collected under mu and unreffed after unlocking.
 *  3. A slot's memory is written by GStreamer only while the slot is LENT
 *     and by the sink only while it is FILLING; a slot becomes LENT or
 *     FILLING only from QUEUED and only at home (in_gst == 0).
 *  4. The device lives while anything can reach it: refs counts the
 *     handle, the sink, the pool, the bus handler and every GstMemory over
 *     a slot; the last dev_unref frees it.
 *  5. d->live, d->pipeline, d->sink, d->pool and d->allowed are written only
 *     by frg_open before it returns (live before the pipeline plays) and by
 *     frg_close after every streaming thread is gone.
 */
#define _GNU_SOURCE
#include "frgst.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <gst/base/gstbasesink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

/* How long stop and close wait for GStreamer to drop its last references
 * to our memory once the pipeline is NULL. Elements drop them while
 * stopping; this bound only turns a leaking element into an error. */
#define HOME_WAIT_NS (5 * (int64_t)1000000000)

enum slot_state { S_FREE, S_IDLE, S_QUEUED, S_LENT, S_FILLING, S_FILLED, S_DELIVERED };

typedef struct {
	uint8_t *base;
	uint64_t size;
	uint32_t gen; /* 24 bits, never 0 for a live buffer */
	uint8_t state;
	uint8_t allocated; /* our anonymous mapping */
	uint8_t in_gst;    /* a GstMemory over it exists: not at home */
	uint8_t leaked;    /* still referenced at close: never unmapped */
	GstMemory *mem;    /* that memory while in_gst (identity only, no reference) */
	GstBuffer *held;   /* the sink's reference while FILLED or DELIVERED */
	frg_frame_info info;
} slot;

struct frg_dev {
	gint refs; /* atomic (invariant 4) */
	uint16_t tag;
	GstElement *pipeline;
	GstElement *sink;
	GstBufferPool *pool;
	GstCaps *allowed;

	pthread_mutex_t mu;
	pthread_cond_t cond; /* any change; waiters re-check (CLOCK_MONOTONIC) */
	int live;
	int have_caps;
	frg_caps caps;
	GstCaps *fixed; /* what the sink accepts once negotiated */
	int started, stopping, closed, eos, failed, unlocked;
	int seen_buffer; /* a buffer reached the sink since start (or a flush) */
	char errmsg[1024];
	slot *slots;
	int nslots, cap;
	int *inq, nin; /* QUEUED slots, oldest first */
	int *outq, nout; /* FILLED slots, oldest first */
	uint64_t delivered, underruns, discarded, next_id, copies, size_mismatch, incomplete, source_errors, discont_gaps;
	int held, announced;
};

/* A GstMemory's way back to its slot (its notify data and qdata). */
typedef struct {
	frg_dev *d;
	int idx;
	uint32_t gen;
} memref;

static GQuark slot_quark;

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* wait_until waits on d->cond until deadline (CLOCK_MONOTONIC ns; < 0:
 * none). It returns ETIMEDOUT once the deadline has passed. */
static int wait_until(frg_dev *d, int64_t deadline)
{
	if (deadline < 0)
		return pthread_cond_wait(&d->cond, &d->mu);
	if (mono_ns() >= deadline)
		return ETIMEDOUT;
	struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
	return pthread_cond_timedwait(&d->cond, &d->mu, &ts);
}

static frg_dev *dev_ref(frg_dev *d)
{
	g_atomic_int_inc(&d->refs);
	return d;
}

static void dev_unref(frg_dev *d)
{
	if (!g_atomic_int_dec_and_test(&d->refs))
		return;
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cond);
	if (d->allowed)
		gst_caps_unref(d->allowed);
	if (d->fixed)
		gst_caps_unref(d->fixed);
	free(d->slots);
	free(d->inq);
	free(d->outq);
	free(d);
}

static void dev_unref_notify(gpointer p) { dev_unref(p); }

static uint64_t make_id(const frg_dev *d, int i)
{
	return (uint64_t)d->tag << 48 | (uint64_t)(d->slots[i].gen & 0xFFFFFF) << 24 | (uint64_t)i;
}

/* find returns the index of the live buffer id names, or -1. Needs mu. */
static int find(const frg_dev *d, uint64_t id)
{
	int i = (int)(id & 0xFFFFFF);
	if (id >> 48 != d->tag || i >= d->nslots || d->slots[i].state == S_FREE || make_id(d, i) != id)
		return -1;
	return i;
}

/* fail records the first error of the pipeline. Needs mu. */
static void fail(frg_dev *d, const char *msg)
{
	if (!d->failed) {
		snprintf(d->errmsg, sizeof d->errmsg, "%s", msg);
		d->failed = 1;
	}
	pthread_cond_broadcast(&d->cond);
}

/* take_home removes and returns the oldest QUEUED slot at home, or -1.
 * Needs mu. */
static int take_home(frg_dev *d)
{
	for (int k = 0; k < d->nin; k++) {
		int i = d->inq[k];
		if (!d->slots[i].in_gst) {
			memmove(&d->inq[k], &d->inq[k + 1], (size_t)(d->nin - k - 1) * sizeof d->inq[0]);
			d->nin--;
			return i;
		}
	}
	return -1;
}

/* mem_freed runs when GStreamer frees the last reference to a slot's
 * memory, in whatever thread dropped it: the slot is at home again. */
static void mem_freed(gpointer data)
{
	memref *r = data;
	frg_dev *d = r->d;
	pthread_mutex_lock(&d->mu);
	if (r->idx < d->nslots) {
		slot *s = &d->slots[r->idx];
		if (s->gen == r->gen && s->in_gst) {
			s->in_gst = 0;
			s->mem = NULL;
			if (s->state == S_LENT) {
				/* Upstream dropped it without pushing it to the sink
				 * (an element that drops frames): still lent to the
				 * device by the application, so queued again. */
				s->state = S_QUEUED;
				d->inq[d->nin++] = r->idx;
			}
		}
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mu);
	g_free(r);
	dev_unref(d);
}

/* lend wraps slot i (just taken from the input pool) in a GstBuffer for
 * upstream. Needs mu; allocates only (invariant 2). */
static GstBuffer *lend(frg_dev *d, int i)
{
	slot *s = &d->slots[i];
	memref *r = g_new(memref, 1);
	r->d = d;
	r->idx = i;
	r->gen = s->gen;
	gsize n = (gsize)d->caps.size;
	GstMemory *m = gst_memory_new_wrapped(0, s->base, n, 0, n, r, mem_freed);
	gst_mini_object_set_qdata(GST_MINI_OBJECT_CAST(m), slot_quark, r, NULL);
	dev_ref(d); /* the memory's (invariant 4) */
	s->state = S_LENT;
	s->in_gst = 1;
	s->mem = m;
	GstBuffer *b = gst_buffer_new();
	gst_buffer_append_memory(b, m);
	return b;
}

/* ---- the buffer pool offered upstream ---------------------------------- */

typedef struct {
	GstBufferPool parent;
	frg_dev *d;
} FrgPool;

typedef struct {
	GstBufferPoolClass parent_class;
} FrgPoolClass;

GType frg_pool_get_type(void);
G_DEFINE_TYPE(FrgPool, frg_pool, GST_TYPE_BUFFER_POOL)

static const gchar **pool_get_options(GstBufferPool *bp)
{
	(void)bp;
	static const gchar *none[] = {NULL};
	return none;
}

/* pool_set_config accepts buffers of at most one negotiated frame: that is
 * what a slot is sure to hold. */
static gboolean pool_set_config(GstBufferPool *bp, GstStructure *config)
{
	frg_dev *d = ((FrgPool *)bp)->d;
	GstCaps *caps;
	guint size, min, max;
	if (!d || !gst_buffer_pool_config_get_params(config, &caps, &size, &min, &max))
		return FALSE;
	pthread_mutex_lock(&d->mu);
	uint64_t frame = d->have_caps ? d->caps.size : 0;
	pthread_mutex_unlock(&d->mu);
	if (frame == 0 || size > frame)
		return FALSE;
	return GST_BUFFER_POOL_CLASS(frg_pool_parent_class)->set_config(bp, config);
}

static gboolean pool_start(GstBufferPool *bp)
{
	(void)bp;
	return TRUE; /* nothing to preallocate: buffers are the queued slots */
}

static gboolean pool_stop(GstBufferPool *bp)
{
	(void)bp;
	return TRUE;
}

/* pool_acquire hands upstream the oldest queued slot at home. With none:
 * a live pipeline gets private memory at once (the frame will be an
 * underrun, or copied if a slot is queued by the time it reaches the
 * sink); a non-live one waits, which paces it by the input pool. */
static GstFlowReturn pool_acquire(GstBufferPool *bp, GstBuffer **out, GstBufferPoolAcquireParams *params)
{
	frg_dev *d = ((FrgPool *)bp)->d;
	if (!d)
		return GST_FLOW_ERROR;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		if (GST_BUFFER_POOL_IS_FLUSHING(bp) || d->stopping || d->closed) {
			pthread_mutex_unlock(&d->mu);
			return GST_FLOW_FLUSHING;
		}
		if (d->started) {
			int i = take_home(d);
			if (i >= 0) {
				*out = lend(d, i);
				pthread_mutex_unlock(&d->mu);
				return GST_FLOW_OK;
			}
		}
		if (d->live)
			break;
		if (params && (params->flags & GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT)) {
			pthread_mutex_unlock(&d->mu);
			return GST_FLOW_EOS;
		}
		pthread_cond_wait(&d->cond, &d->mu);
	}
	gsize n = (gsize)d->caps.size;
	pthread_mutex_unlock(&d->mu);
	*out = gst_buffer_new_allocate(NULL, n, NULL);
	return *out ? GST_FLOW_OK : GST_FLOW_ERROR;
}

static void pool_reset_buffer(GstBufferPool *bp, GstBuffer *b)
{
	(void)bp;
	(void)b; /* never reused: release frees it */
}

/* pool_release frees the buffer: a slot goes back through mem_freed and
 * the input pool, never through the pool's own queue. */
static void pool_release(GstBufferPool *bp, GstBuffer *b)
{
	(void)bp;
	gst_buffer_unref(b);
}

static void pool_flush_start(GstBufferPool *bp)
{
	frg_dev *d = ((FrgPool *)bp)->d;
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	pthread_cond_broadcast(&d->cond); /* waiters see IS_FLUSHING */
	pthread_mutex_unlock(&d->mu);
}

static void pool_finalize(GObject *o)
{
	FrgPool *p = (FrgPool *)o;
	if (p->d)
		dev_unref(p->d);
	G_OBJECT_CLASS(frg_pool_parent_class)->finalize(o);
}

static void frg_pool_class_init(FrgPoolClass *klass)
{
	GstBufferPoolClass *pc = GST_BUFFER_POOL_CLASS(klass);
	G_OBJECT_CLASS(klass)->finalize = pool_finalize;
	pc->get_options = pool_get_options;
	pc->set_config = pool_set_config;
	pc->start = pool_start;
	pc->stop = pool_stop;
	pc->acquire_buffer = pool_acquire;
	pc->reset_buffer = pool_reset_buffer;
	pc->release_buffer = pool_release;
	pc->flush_start = pool_flush_start;
}

static void frg_pool_init(FrgPool *p) { p->d = NULL; }

/* ---- the sink ---------------------------------------------------------- */

typedef struct {
	GstBaseSink parent;
	frg_dev *d; /* set by frg_open before the pipeline starts; immutable */
	/* map_pts's cache, streaming thread only: the last clock seen (a
	 * reference) and whether it counts CLOCK_MONOTONIC itself. */
	GstClock *clock;
	int clock_mono;
} FrgSink;

typedef struct {
	GstBaseSinkClass parent_class;
} FrgSinkClass;

GType frg_sink_get_type(void);
G_DEFINE_TYPE(FrgSink, frg_sink, GST_TYPE_BASE_SINK)

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw; video/x-bayer"));

/* parse_caps reads the geometry of fixed caps, or says why it cannot. */
static int parse_caps(GstCaps *caps, frg_caps *out, char *why, size_t n)
{
	memset(out, 0, sizeof *out);
	if (gst_caps_get_size(caps) != 1 || !gst_caps_is_fixed(caps)) {
		snprintf(why, n, "not fixed");
		return 0;
	}
	GstCapsFeatures *f = gst_caps_get_features(caps, 0);
	if (f && !gst_caps_features_is_equal(f, GST_CAPS_FEATURES_MEMORY_SYSTEM_MEMORY)) {
		snprintf(why, n, "not in system memory");
		return 0;
	}
	GstStructure *st = gst_caps_get_structure(caps, 0);
	const char *media = gst_structure_get_name(st);
	const char *fmt = gst_structure_get_string(st, "format");
	int w = 0, h = 0;
	if (!fmt || !gst_structure_get_int(st, "width", &w) || !gst_structure_get_int(st, "height", &h) || w <= 0 ||
	    h <= 0 || w > 65536 || h > 65536 || strlen(media) >= sizeof out->media || strlen(fmt) >= sizeof out->format) {
		snprintf(why, n, "no usable format, width and height");
		return 0;
	}
	uint64_t stride, row;
	if (strcmp(media, "video/x-raw") == 0) {
		GstVideoInfo info;
		if (!gst_video_info_from_caps(&info, caps)) {
			snprintf(why, n, "not valid raw video");
			return 0;
		}
		if (GST_VIDEO_INFO_N_PLANES(&info) != 1) {
			snprintf(why, n, "a planar format");
			return 0;
		}
		stride = (uint64_t)GST_VIDEO_INFO_PLANE_STRIDE(&info, 0);
		row = (uint64_t)GST_VIDEO_INFO_COMP_PSTRIDE(&info, 0) * (uint64_t)w;
		if (GST_VIDEO_INFO_SIZE(&info) != stride * (uint64_t)h) {
			snprintf(why, n, "frame size %zu is not stride %llu x height %d", GST_VIDEO_INFO_SIZE(&info),
			         (unsigned long long)stride, h);
			return 0;
		}
	} else if (strcmp(media, "video/x-bayer") == 0) {
		/* Bayer has no GstVideoInfo: GStreamer's elements (videotestsrc,
		 * bayer2rgb) lay rows out 4-byte aligned. */
		size_t fl = strlen(fmt);
		uint64_t bps = fl > 4 && (strcmp(fmt + fl - 4, "16le") == 0 || strcmp(fmt + fl - 4, "16be") == 0) ? 2 : 1;
		row = (uint64_t)w * bps;
		stride = (row + 3) & ~(uint64_t)3;
	} else {
		snprintf(why, n, "not raw video");
		return 0;
	}
	if (row == 0 || row > stride || stride > 65536 * 8) {
		snprintf(why, n, "impossible stride %llu", (unsigned long long)stride);
		return 0;
	}
	snprintf(out->media, sizeof out->media, "%s", media);
	snprintf(out->format, sizeof out->format, "%s", fmt);
	out->width = (uint32_t)w;
	out->height = (uint32_t)h;
	out->stride = (uint32_t)stride;
	out->row_bytes = (uint32_t)row;
	out->size = stride * (uint64_t)h;
	int fn = 0, fd = 1;
	if (gst_structure_get_fraction(st, "framerate", &fn, &fd)) {
		out->fps_n = fn;
		out->fps_d = fd;
	}
	return 1;
}

static int same_geometry(const frg_caps *a, const frg_caps *b)
{
	return strcmp(a->media, b->media) == 0 && strcmp(a->format, b->format) == 0 && a->width == b->width &&
	       a->height == b->height && a->stride == b->stride && a->size == b->size;
}

static GstCaps *sink_get_caps(GstBaseSink *bs, GstCaps *filter)
{
	frg_dev *d = ((FrgSink *)bs)->d;
	GstCaps *c;
	if (!d) {
		c = gst_pad_get_pad_template_caps(GST_BASE_SINK_PAD(bs));
	} else {
		pthread_mutex_lock(&d->mu);
		c = gst_caps_ref(d->have_caps ? d->fixed : d->allowed);
		pthread_mutex_unlock(&d->mu);
	}
	if (filter) {
		GstCaps *i = gst_caps_intersect_full(filter, c, GST_CAPS_INTERSECT_FIRST);
		gst_caps_unref(c);
		c = i;
	}
	return c;
}

/* caps_refusal says why caps cannot be the device's: not parseable, a
 * format the application cannot describe, or (once negotiated) another
 * geometry than the one the application sized its buffers for. Needs mu. */
static int caps_refusal(frg_dev *d, GstCaps *caps, frg_caps *fc, char *msg, size_t n)
{
	char why[160];
	gchar *text = NULL;
	int refused = 1;
	if (!parse_caps(caps, fc, why, sizeof why)) {
		text = gst_caps_to_string(caps);
		snprintf(msg, n, "frameringsink: caps %s: %s", text, why);
	} else if (!d->have_caps && !gst_caps_can_intersect(caps, d->allowed)) {
		text = gst_caps_to_string(caps);
		snprintf(msg, n, "frameringsink: caps %s: a format framering cannot describe", text);
	} else if (d->have_caps && !same_geometry(fc, &d->caps)) {
		snprintf(msg, n,
		         "frameringsink: the stream changed to %s %ux%u (stride %u) but the buffers hold %s %ux%u "
		         "(stride %u): a geometry change needs a new producer",
		         fc->format, fc->width, fc->height, fc->stride, d->caps.format, d->caps.width, d->caps.height,
		         d->caps.stride);
	} else {
		refused = 0;
	}
	g_free(text);
	return refused;
}

/* caps_probe sees every caps event before the pad checks it against
 * sink_get_caps, which once negotiated offers only the negotiated
 * geometry: caps that would be refused there fail the device with the
 * reason, instead of GStreamer's bare "not-negotiated". */
static GstPadProbeReturn caps_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
	(void)pad;
	frg_dev *d = ((FrgSink *)data)->d;
	GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
	if (d && ev && GST_EVENT_TYPE(ev) == GST_EVENT_CAPS) {
		GstCaps *caps = NULL;
		gst_event_parse_caps(ev, &caps);
		frg_caps fc;
		char msg[512];
		pthread_mutex_lock(&d->mu);
		if (caps && caps_refusal(d, caps, &fc, msg, sizeof msg))
			fail(d, msg);
		pthread_mutex_unlock(&d->mu);
	}
	return GST_PAD_PROBE_OK;
}

/* sink_set_caps takes the first caps as the device's geometry; later caps
 * must describe the same geometry. */
static gboolean sink_set_caps(GstBaseSink *bs, GstCaps *caps)
{
	frg_dev *d = ((FrgSink *)bs)->d;
	if (!d)
		return FALSE;
	frg_caps fc;
	char msg[512];
	pthread_mutex_lock(&d->mu);
	int ok = !caps_refusal(d, caps, &fc, msg, sizeof msg);
	if (!ok) {
		fail(d, msg);
	} else if (!d->have_caps) {
		fc.live = d->live;
		d->caps = fc;
		d->fixed = gst_caps_new_simple(fc.media, "format", G_TYPE_STRING, fc.format, "width", G_TYPE_INT,
		                               (int)fc.width, "height", G_TYPE_INT, (int)fc.height, NULL);
		d->have_caps = 1;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->mu);
	return ok;
}

static gboolean sink_propose_allocation(GstBaseSink *bs, GstQuery *query)
{
	frg_dev *d = ((FrgSink *)bs)->d;
	if (!d)
		return FALSE;
	GstCaps *caps = NULL;
	gst_query_parse_allocation(query, &caps, NULL);
	pthread_mutex_lock(&d->mu);
	guint size = d->have_caps ? (guint)d->caps.size : 0;
	pthread_mutex_unlock(&d->mu);
	if (size == 0 || !caps)
		return FALSE;
	if (!gst_buffer_pool_is_active(d->pool)) {
		GstStructure *config = gst_buffer_pool_get_config(d->pool);
		gst_buffer_pool_config_set_params(config, caps, size, 0, 0);
		gst_buffer_pool_set_config(d->pool, config); /* upstream reconfigures it anyway */
	}
	gst_query_add_allocation_pool(query, d->pool, size, 0, 0);
	return TRUE;
}

/* map_pts converts a live buffer's PTS to CLOCK_MONOTONIC (frg_open):
 * the PTS's running time plus the base time is a time of the pipeline
 * clock; on GStreamer's system clock in its default monotonic mode that is
 * CLOCK_MONOTONIC already, and any other clock is converted by its offset
 * from CLOCK_MONOTONIC read now. Never later than now. */
static int64_t map_pts(FrgSink *s, GstClockTime pts, int64_t now)
{
	GstBaseSink *bs = GST_BASE_SINK_CAST(s);
	if (!GST_CLOCK_TIME_IS_VALID(pts) || bs->segment.format != GST_FORMAT_TIME)
		return now;
	GstClockTime rt = gst_segment_to_running_time(&bs->segment, GST_FORMAT_TIME, pts);
	if (!GST_CLOCK_TIME_IS_VALID(rt))
		return now;
	GstClock *clock = gst_element_get_clock(GST_ELEMENT_CAST(bs));
	if (!clock)
		return now;
	if (clock != s->clock) {
		GstClockType type = GST_CLOCK_TYPE_REALTIME;
		if (GST_IS_SYSTEM_CLOCK(clock))
			g_object_get(clock, "clock-type", &type, NULL);
		gst_object_replace((GstObject **)&s->clock, GST_OBJECT_CAST(clock));
		s->clock_mono = type == GST_CLOCK_TYPE_MONOTONIC;
	}
	int64_t abs = (int64_t)(gst_element_get_base_time(GST_ELEMENT_CAST(bs)) + rt);
	int64_t ts = abs;
	if (!s->clock_mono)
		ts = now - ((int64_t)gst_clock_get_time(clock) - abs);
	gst_object_unref(clock);
	return ts > now ? now : ts;
}

/* copy_rows copies the frame's rows from a source laid out at offset off
 * with stride ss into dst with stride ds. */
static void copy_rows(uint8_t *dst, uint32_t ds, const uint8_t *src, uint64_t off, uint64_t ss, uint32_t rows,
                      uint32_t row_bytes)
{
	if (off == 0 && ss == ds) {
		memcpy(dst, src, (size_t)ds * rows);
		return;
	}
	for (uint32_t y = 0; y < rows; y++)
		memcpy(dst + (size_t)y * ds, src + off + y * ss, row_bytes);
}

static void set_info(frg_dev *d, int i, uint64_t id, int64_t ts, GstClockTime pts, uint32_t flags)
{
	slot *s = &d->slots[i];
	s->info.buffer = make_id(d, i);
	s->info.frame_id = id;
	s->info.timestamp_ns = ts;
	s->info.pts = GST_CLOCK_TIME_IS_VALID(pts) ? pts : 0;
	s->info.length = d->caps.size;
	s->info.status = FRG_FRAME_COMPLETE;
	s->info.flags = flags;
	s->state = S_FILLED;
	d->outq[d->nout++] = i;
	d->delivered++;
	pthread_cond_broadcast(&d->cond);
}

static GstFlowReturn sink_render(GstBaseSink *bs, GstBuffer *buf)
{
	frg_dev *d = ((FrgSink *)bs)->d;
	if (!d)
		return GST_FLOW_ERROR;
	int64_t now = mono_ns();
	GstClockTime pts = GST_BUFFER_PTS(buf);
	int64_t live_ts = map_pts((FrgSink *)bs, pts, now);
	uint32_t flags = GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT) ? FRG_FLAG_DISCONT : 0;
	GstMemory *m = gst_buffer_n_memory(buf) == 1 ? gst_buffer_peek_memory(buf, 0) : NULL;
	memref *r = m ? gst_mini_object_get_qdata(GST_MINI_OBJECT_CAST(m), slot_quark) : NULL;
	GstVideoMeta *vm = gst_buffer_get_video_meta(buf);
	uint64_t bsize = gst_buffer_get_size(buf);

	pthread_mutex_lock(&d->mu);
	if (d->stopping || d->closed) {
		pthread_mutex_unlock(&d->mu);
		return GST_FLOW_FLUSHING;
	}
	/* A live source's first frame before start waits here for start (the
	 * later ones wait upstream: in a network source's socket buffer, a
	 * driver's queue), so the frames of a stream that brought the caps the
	 * application sizes its buffers by are not lost while it does. A
	 * non-live pipeline prerolls instead and renders only once playing.
	 * A buffer before any caps (rtpgstdepay's, when the caps it carries
	 * in band were lost) has no geometry: dropped, not counted, and never
	 * waited on, or the caps behind it could not arrive. */
	if (!d->started && !d->have_caps) {
		pthread_mutex_unlock(&d->mu);
		return GST_FLOW_OK;
	}
	while (!d->started) {
		if (d->stopping || d->closed || d->unlocked) {
			pthread_mutex_unlock(&d->mu);
			return GST_FLOW_FLUSHING;
		}
		pthread_cond_wait(&d->cond, &d->mu);
	}
	/* DISCONT on any buffer but the first: upstream lost data (a driver's
	 * drops, the network's: rtpgstdepay drops a frame with a lost packet)
	 * or restarted; at least one frame is gone. Its id is consumed, so
	 * the gap shows in the ids, and counted (discont_gaps). */
	if ((flags & FRG_FLAG_DISCONT) && d->seen_buffer) {
		d->next_id++;
		d->discont_gaps++;
		pthread_cond_broadcast(&d->cond);
	}
	d->seen_buffer = 1;
	const frg_caps c = d->caps;
	int64_t ts = d->live ? live_ts : now;
	uint64_t off = 0, ss = c.stride;
	int fits = 1;
	if (vm) {
		off = vm->offset[0];
		ss = (uint64_t)vm->stride[0];
		fits = vm->width == c.width && vm->height == c.height && vm->stride[0] > 0;
	}
	fits = fits && ss >= c.row_bytes && bsize >= off + ss * (c.height - 1) + c.row_bytes;
	if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_CORRUPTED) || GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_GAP) ||
	    !fits) {
		/* Frames that never become frames; their ids are consumed. */
		d->next_id++;
		if (!fits)
			d->size_mismatch++;
		else if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_CORRUPTED))
			d->incomplete++;
		else
			d->source_errors++;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->mu);
		return GST_FLOW_OK;
	}

	/* Zero-copy: upstream wrote the frame into a slot we lent it. */
	if (r && r->d == d && r->idx < d->nslots) {
		slot *s = &d->slots[r->idx];
		if (s->gen == r->gen && s->state == S_LENT && s->mem == m && m->offset == 0 && off == 0 &&
		    ss == c.stride) {
			/* Read-only from here: an element still holding the buffer
			 * cannot write the published slot in place. */
			GST_MINI_OBJECT_FLAG_SET(m, GST_MEMORY_FLAG_READONLY);
			s->held = gst_buffer_ref(buf);
			set_info(d, r->idx, d->next_id++, ts, pts, flags);
			pthread_mutex_unlock(&d->mu);
			return GST_FLOW_OK;
		}
	}

	/* Copy: a queued slot at home; live sources never wait for one. */
	int i;
	uint64_t id;
	for (;;) {
		if (d->stopping || d->closed || d->unlocked || !d->started) {
			pthread_mutex_unlock(&d->mu);
			return GST_FLOW_FLUSHING;
		}
		if ((i = take_home(d)) >= 0)
			break;
		if (d->live) {
			d->next_id++;
			d->underruns++;
			pthread_cond_broadcast(&d->cond);
			pthread_mutex_unlock(&d->mu);
			return GST_FLOW_OK;
		}
		pthread_cond_wait(&d->cond, &d->mu);
	}
	id = d->next_id++;
	d->slots[i].state = S_FILLING;
	uint8_t *dst = d->slots[i].base;
	pthread_mutex_unlock(&d->mu);

	GstMapInfo mi;
	int mapped = gst_buffer_map(buf, &mi, GST_MAP_READ);
	if (mapped) {
		copy_rows(dst, c.stride, mi.data, off, ss, c.height, c.row_bytes);
		gst_buffer_unmap(buf, &mi);
	}

	pthread_mutex_lock(&d->mu);
	if (mapped) {
		d->copies++;
		set_info(d, i, id, ts, pts, flags | FRG_FLAG_COPIED);
	} else {
		d->source_errors++;
		d->slots[i].state = S_QUEUED;
		d->inq[d->nin++] = i;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->mu);
	return GST_FLOW_OK;
}

static gboolean sink_event(GstBaseSink *bs, GstEvent *ev)
{
	frg_dev *d = ((FrgSink *)bs)->d;
	if (d && (GST_EVENT_TYPE(ev) == GST_EVENT_EOS || GST_EVENT_TYPE(ev) == GST_EVENT_FLUSH_STOP)) {
		pthread_mutex_lock(&d->mu);
		d->eos = GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
		if (GST_EVENT_TYPE(ev) == GST_EVENT_FLUSH_STOP)
			d->seen_buffer = 0; /* the next buffer's DISCONT is the flush's */
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->mu);
	}
	return GST_BASE_SINK_CLASS(frg_sink_parent_class)->event(bs, ev);
}

static void set_unlocked(GstBaseSink *bs, int v)
{
	frg_dev *d = ((FrgSink *)bs)->d;
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->unlocked = v;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mu);
}

static gboolean sink_unlock(GstBaseSink *bs)
{
	set_unlocked(bs, 1);
	return TRUE;
}

static gboolean sink_unlock_stop(GstBaseSink *bs)
{
	set_unlocked(bs, 0);
	return TRUE;
}

static void sink_finalize(GObject *o)
{
	FrgSink *s = (FrgSink *)o;
	gst_object_replace((GstObject **)&s->clock, NULL);
	if (s->d)
		dev_unref(s->d);
	G_OBJECT_CLASS(frg_sink_parent_class)->finalize(o);
}

static void frg_sink_class_init(FrgSinkClass *klass)
{
	GstElementClass *ec = GST_ELEMENT_CLASS(klass);
	GstBaseSinkClass *bc = GST_BASE_SINK_CLASS(klass);
	G_OBJECT_CLASS(klass)->finalize = sink_finalize;
	gst_element_class_add_static_pad_template(ec, &sink_template);
	gst_element_class_set_static_metadata(ec, "framering sink", "Sink/Video",
	                                      "Lands raw video in a framering producer's buffers (ring slots)",
	                                      "framering");
	bc->get_caps = sink_get_caps;
	bc->set_caps = sink_set_caps;
	bc->propose_allocation = sink_propose_allocation;
	bc->render = sink_render;
	bc->event = sink_event;
	bc->unlock = sink_unlock;
	bc->unlock_stop = sink_unlock_stop;
}

static void frg_sink_init(FrgSink *s)
{
	GstBaseSink *bs = GST_BASE_SINK(s);
	s->d = NULL;
	s->clock = NULL;
	s->clock_mono = 0;
	/* Frames are taken as they come: no clock waits (the producer never
	 * waits on a clock), no lateness drops (they would be silent losses),
	 * and no last-sample reference (it would keep a slot referenced). */
	gst_base_sink_set_sync(bs, FALSE);
	gst_base_sink_set_qos_enabled(bs, FALSE);
	gst_base_sink_set_max_lateness(bs, -1);
	gst_base_sink_set_last_sample_enabled(bs, FALSE);
	gst_pad_add_probe(GST_BASE_SINK_PAD(bs), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, caps_probe, s, NULL);
}

/* ---- the bus ----------------------------------------------------------- */

/* on_message records the pipeline's first error. A negotiation failure
 * gets what the sink accepts appended: GStreamer's own text only says
 * "not-negotiated" (or "not-linked" for a dynamic pad it refused). Nobody pops the bus, so every message is dropped
 * here (and, returning GST_BUS_DROP, unreffed: the bus does not). */
static GstBusSyncReply on_message(GstBus *bus, GstMessage *msg, gpointer data)
{
	(void)bus;
	frg_dev *d = data;
	if (GST_MESSAGE_TYPE(msg) != GST_MESSAGE_ERROR) {
		gst_message_unref(msg);
		return GST_BUS_DROP;
	}
	GError *e = NULL;
	gchar *dbg = NULL;
	const GstStructure *details = NULL;
	gst_message_parse_error(msg, &e, &dbg);
	gst_message_parse_error_details(msg, &details);
	int flow = 0;
	if (!details || !gst_structure_get_int(details, "flow-return", &flow))
		flow = 0;
	char text[1024];
	int n = snprintf(text, sizeof text, "%s: %s%s%s%s", GST_MESSAGE_SRC_NAME(msg), e ? e->message : "error",
	                 dbg ? " (" : "", dbg ? dbg : "", dbg ? ")" : "");
	pthread_mutex_lock(&d->mu);
	/* Not linked before any caps: a dynamic pad (decodebin's) whose caps
	 * the sink refused. */
	int hint = flow == GST_FLOW_NOT_NEGOTIATED || (flow == GST_FLOW_NOT_LINKED && !d->have_caps);
	if (hint && n > 0 && (size_t)n < sizeof text) {
		gchar *acc = gst_caps_to_string(d->have_caps ? d->fixed : d->allowed);
		if (d->have_caps)
			snprintf(text + n, sizeof text - (size_t)n,
			         "; frameringsink accepts only %s, the geometry its buffers were sized for: "
			         "a geometry change needs a new producer",
			         acc);
		else
			snprintf(text + n, sizeof text - (size_t)n, "; frameringsink accepts %s", acc);
		g_free(acc);
	}
	fail(d, text);
	pthread_mutex_unlock(&d->mu);
	g_clear_error(&e);
	g_free(dbg);
	gst_message_unref(msg);
	return GST_BUS_DROP;
}

/* ---- the API ----------------------------------------------------------- */

static gpointer do_init(gpointer arg)
{
	(void)arg;
	GError *e = NULL;
	/* No SIGSEGV handler of GStreamer's in a Go process. */
	gst_segtrap_set_enabled(FALSE);
	if (!gst_init_check(NULL, NULL, &e)) {
		gchar *msg = g_strdup_printf("initialize GStreamer: %s", e ? e->message : "failed");
		g_clear_error(&e);
		return msg;
	}
	slot_quark = g_quark_from_static_string("framering-slot");
	if (!gst_element_register(NULL, "frameringsink", GST_RANK_NONE, frg_sink_get_type()))
		return g_strdup("register frameringsink: failed");
	return NULL;
}

int frg_init(char *err, size_t errlen)
{
	static GOnce once = G_ONCE_INIT;
	const char *msg = g_once(&once, do_init, NULL);
	if (msg) {
		snprintf(err, errlen, "%s", msg);
		return FRG_ERR_PIPELINE;
	}
	return FRG_OK;
}

static uint16_t next_tag(void)
{
	static gint tags;
	uint16_t t;
	do {
		t = (uint16_t)g_atomic_int_add(&tags, 1);
	} while (t == 0);
	return t;
}

int frg_open(const char *desc, const char *allowed, int64_t timeout_ns, frg_dev **out, frg_caps *caps, char *err,
             size_t errlen)
{
	*out = NULL;
	memset(caps, 0, sizeof *caps);
	int st = frg_init(err, errlen);
	if (st != FRG_OK)
		return st;
	if (!desc || !allowed || !*desc) {
		snprintf(err, errlen, "empty pipeline description");
		return FRG_ERR_INVALID_ARGUMENT;
	}
	GstCaps *ac = gst_caps_from_string(allowed);
	if (!ac) {
		snprintf(err, errlen, "allowed caps %s do not parse", allowed);
		return FRG_ERR_INVALID_ARGUMENT;
	}
	frg_dev *d = calloc(1, sizeof *d);
	int *inq = calloc(FRG_MAX_BUFFERS, sizeof(int)), *outq = calloc(FRG_MAX_BUFFERS, sizeof(int));
	if (!d || !inq || !outq) {
		free(d);
		free(inq);
		free(outq);
		gst_caps_unref(ac);
		snprintf(err, errlen, "out of memory");
		return FRG_ERR_NO_MEMORY;
	}
	d->refs = 1;
	d->tag = next_tag();
	d->allowed = ac;
	d->inq = inq;
	d->outq = outq;
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);

	gchar *full = g_strdup_printf("%s ! frameringsink name=framering-sink", desc);
	GError *ge = NULL;
	GstElement *p = gst_parse_launch_full(full, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &ge);
	g_free(full);
	if (!p || ge || !GST_IS_PIPELINE(p)) {
		snprintf(err, errlen, "parse pipeline: %s", ge ? ge->message : "not a pipeline");
		g_clear_error(&ge);
		if (p)
			gst_object_unref(gst_object_ref_sink(p));
		dev_unref(d);
		return FRG_ERR_PIPELINE;
	}
	d->pipeline = gst_object_ref_sink(p);
	d->sink = gst_bin_get_by_name(GST_BIN(p), "framering-sink");
	d->pool = gst_object_ref_sink(g_object_new(frg_pool_get_type(), NULL));
	((FrgPool *)d->pool)->d = dev_ref(d);
	if (!d->sink || !G_TYPE_CHECK_INSTANCE_TYPE(d->sink, frg_sink_get_type())) {
		snprintf(err, errlen, "parse pipeline: its sink is not framering's");
		frg_close(d);
		return FRG_ERR_PIPELINE;
	}
	((FrgSink *)d->sink)->d = dev_ref(d);
	GstBus *bus = gst_element_get_bus(p);
	gst_bus_set_sync_handler(bus, on_message, dev_ref(d), dev_unref_notify);
	gst_object_unref(bus);

	GstStateChangeReturn r = gst_element_set_state(p, GST_STATE_PAUSED);
	if (r == GST_STATE_CHANGE_NO_PREROLL) {
		/* Live: many live sources (rtspsrc ! decoder) negotiate only
		 * once data flows. Play now; the first frame waits in the sink
		 * until start. */
		pthread_mutex_lock(&d->mu);
		d->live = 1;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->mu);
		r = gst_element_set_state(p, GST_STATE_PLAYING);
	}
	int64_t deadline = mono_ns() + timeout_ns;
	pthread_mutex_lock(&d->mu);
	if (r == GST_STATE_CHANGE_FAILURE)
		fail(d, "the pipeline refused to start");
	while (!d->have_caps && !d->failed && !d->eos && wait_until(d, deadline) != ETIMEDOUT) {
	}
	if (!d->have_caps) {
		if (d->failed)
			snprintf(err, errlen, "start pipeline: %s", d->errmsg);
		else if (d->eos)
			snprintf(err, errlen, "start pipeline: the stream ended before its caps were negotiated");
		else
			snprintf(err, errlen, "start pipeline: no caps negotiated within %.1f s", (double)timeout_ns / 1e9);
		pthread_mutex_unlock(&d->mu);
		frg_shutdown(d);
		frg_close(d);
		return FRG_ERR_PIPELINE;
	}
	*caps = d->caps;
	caps->live = d->live;
	pthread_mutex_unlock(&d->mu);
	*out = d;
	return FRG_OK;
}

/* add_buffer claims a slot for [base, base+size). Needs mu. */
static int add_buffer(frg_dev *d, uint8_t *base, uint64_t size, int allocated, uint64_t *id)
{
	if (d->closed)
		return FRG_ERR_INVALID_HANDLE;
	if (size < d->caps.size)
		return FRG_ERR_BUFFER_SIZE;
	int free_i = -1;
	for (int i = 0; i < d->nslots; i++) {
		slot *s = &d->slots[i];
		if (s->state == S_FREE) {
			if (free_i < 0 && !s->leaked)
				free_i = i;
			continue;
		}
		if (base < s->base + s->size && s->base < base + size)
			return FRG_ERR_OVERLAP;
	}
	if (free_i < 0) {
		if (d->nslots == FRG_MAX_BUFFERS)
			return FRG_ERR_RESOURCE;
		if (d->nslots == d->cap) {
			int nc = d->cap ? d->cap * 2 : 16;
			slot *ns = realloc(d->slots, (size_t)nc * sizeof *ns);
			if (!ns)
				return FRG_ERR_NO_MEMORY;
			d->slots = ns;
			d->cap = nc;
		}
		free_i = d->nslots++;
		memset(&d->slots[free_i], 0, sizeof d->slots[free_i]);
	}
	slot *s = &d->slots[free_i];
	uint32_t gen = (s->gen + 1) & 0xFFFFFF;
	memset(s, 0, sizeof *s);
	s->gen = gen ? gen : 1;
	s->base = base;
	s->size = size;
	s->allocated = (uint8_t)allocated;
	s->state = S_IDLE;
	d->announced++;
	*id = make_id(d, free_i);
	return FRG_OK;
}

int frg_announce(frg_dev *d, void *base, uint64_t size, uint64_t *id)
{
	if (!base || size == 0)
		return FRG_ERR_BUFFER_SIZE;
	pthread_mutex_lock(&d->mu);
	int st = add_buffer(d, base, size, 0, id);
	pthread_mutex_unlock(&d->mu);
	return st;
}

int frg_allocate(frg_dev *d, uint64_t size, uint64_t *id, void **base)
{
	*base = NULL;
	if (size == 0 || size > ((uint64_t)1 << 40))
		return FRG_ERR_BUFFER_SIZE;
	void *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return FRG_ERR_NO_MEMORY;
	pthread_mutex_lock(&d->mu);
	int st = add_buffer(d, m, size, 1, id);
	pthread_mutex_unlock(&d->mu);
	if (st != FRG_OK)
		munmap(m, (size_t)size);
	else
		*base = m;
	return st;
}

int frg_revoke(frg_dev *d, uint64_t id)
{
	pthread_mutex_lock(&d->mu);
	int st = FRG_OK, i = -1;
	void *unmap = NULL;
	size_t n = 0;
	if (d->closed)
		st = FRG_ERR_INVALID_HANDLE;
	else if ((i = find(d, id)) < 0)
		st = FRG_ERR_UNKNOWN_BUFFER;
	else if (d->slots[i].state != S_IDLE || d->slots[i].in_gst)
		st = FRG_ERR_BUFFER_STATE; /* GStreamer may still read it */
	else {
		slot *s = &d->slots[i];
		if (s->allocated) {
			unmap = s->base;
			n = (size_t)s->size;
		}
		s->state = S_FREE;
		s->base = NULL;
		d->announced--;
	}
	pthread_mutex_unlock(&d->mu);
	if (unmap)
		munmap(unmap, n);
	return st;
}

int frg_queue(frg_dev *d, uint64_t id)
{
	pthread_mutex_lock(&d->mu);
	int st = FRG_OK, i = -1;
	if (d->closed)
		st = FRG_ERR_INVALID_HANDLE;
	else if ((i = find(d, id)) < 0)
		st = FRG_ERR_UNKNOWN_BUFFER;
	else if (d->slots[i].state != S_IDLE)
		st = FRG_ERR_BUFFER_STATE;
	else {
		d->slots[i].state = S_QUEUED;
		d->inq[d->nin++] = i;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->mu);
	return st;
}

/* end_lease moves a DELIVERED buffer to QUEUED or IDLE and drops the
 * sink's reference (outside mu: invariant 2). */
static int end_lease(frg_dev *d, uint64_t id, int requeue)
{
	pthread_mutex_lock(&d->mu);
	int st = FRG_OK, i = -1;
	GstBuffer *drop = NULL;
	if (d->closed)
		st = FRG_ERR_INVALID_HANDLE;
	else if ((i = find(d, id)) < 0)
		st = FRG_ERR_UNKNOWN_BUFFER;
	else if (d->slots[i].state != S_DELIVERED)
		st = FRG_ERR_BUFFER_STATE;
	else {
		slot *s = &d->slots[i];
		drop = s->held;
		s->held = NULL;
		d->held--;
		if (requeue) {
			s->state = S_QUEUED;
			d->inq[d->nin++] = i;
		} else {
			s->state = S_IDLE;
		}
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->mu);
	if (drop)
		gst_buffer_unref(drop);
	return st;
}

int frg_requeue(frg_dev *d, uint64_t id) { return end_lease(d, id, 1); }
int frg_detach(frg_dev *d, uint64_t id) { return end_lease(d, id, 0); }

int frg_start(frg_dev *d)
{
	pthread_mutex_lock(&d->mu);
	int st = FRG_OK;
	if (d->closed)
		st = FRG_ERR_INVALID_HANDLE;
	else if (d->started)
		st = FRG_ERR_BUSY;
	else if (d->failed)
		st = FRG_ERR_PIPELINE;
	else {
		d->started = 1; /* eos stays: a stream may end before start */
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->mu);
	if (st != FRG_OK)
		return st;
	if (gst_element_set_state(d->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
		pthread_mutex_lock(&d->mu);
		fail(d, "the pipeline refused to play");
		pthread_mutex_unlock(&d->mu);
		return FRG_ERR_PIPELINE;
	}
	return FRG_OK;
}

/* in_gst_count counts buffers GStreamer references, except DELIVERED ones
 * (the sink's own reference, held for the application). Needs mu. */
static int in_gst_count(const frg_dev *d, int delivered_too)
{
	int n = 0;
	for (int i = 0; i < d->nslots; i++)
		if (d->slots[i].in_gst && (delivered_too || d->slots[i].state != S_DELIVERED))
			n++;
	return n;
}

/* halt sets the pipeline to NULL and takes back every buffer not
 * DELIVERED (frg_stop). */
static int halt(frg_dev *d)
{
	pthread_mutex_lock(&d->mu);
	d->stopping = 1;
	d->started = 0;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mu);

	/* Synchronous: every streaming thread has left the pool and the sink
	 * when it returns (a waiting acquire or render saw stopping). */
	gst_element_set_state(d->pipeline, GST_STATE_NULL);

	pthread_mutex_lock(&d->mu);
	int ndrop = 0;
	GstBuffer **drop = calloc((size_t)d->nout + 1, sizeof *drop);
	for (int k = 0; k < d->nout; k++) {
		slot *s = &d->slots[d->outq[k]];
		s->state = S_IDLE;
		d->discarded++;
		if (s->held && drop)
			drop[ndrop++] = s->held;
		s->held = NULL; /* without memory to list it, leaked rather than risked */
	}
	d->nout = 0;
	pthread_mutex_unlock(&d->mu);
	for (int k = 0; k < ndrop; k++)
		gst_buffer_unref(drop[k]);
	free(drop);

	pthread_mutex_lock(&d->mu);
	int64_t deadline = mono_ns() + HOME_WAIT_NS;
	while (in_gst_count(d, 0) > 0 && wait_until(d, deadline) != ETIMEDOUT) {
	}
	int left = in_gst_count(d, 0);
	for (int i = 0; i < d->nslots; i++) {
		slot *s = &d->slots[i];
		if (s->state == S_QUEUED || s->state == S_LENT || s->state == S_FILLING)
			s->state = S_IDLE; /* one still in_gst is never lent again before it is home */
	}
	d->nin = 0;
	d->stopping = 0;
	d->eos = 0;
	d->seen_buffer = 0;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mu);
	return left ? FRG_ERR_BUSY : FRG_OK;
}

int frg_stop(frg_dev *d)
{
	pthread_mutex_lock(&d->mu);
	int closed = d->closed, started = d->started;
	pthread_mutex_unlock(&d->mu);
	if (closed)
		return FRG_ERR_INVALID_HANDLE;
	if (!started)
		return FRG_OK;
	return halt(d);
}

int frg_dequeue(frg_dev *d, int64_t timeout_ns, frg_frame_info *out)
{
	int64_t deadline = timeout_ns < 0 ? -1 : mono_ns() + timeout_ns;
	pthread_mutex_lock(&d->mu);
	int st;
	for (;;) {
		if (d->closed) {
			st = FRG_ERR_INVALID_HANDLE;
			break;
		}
		if (d->nout > 0) {
			int i = d->outq[0];
			memmove(&d->outq[0], &d->outq[1], (size_t)(d->nout - 1) * sizeof d->outq[0]);
			d->nout--;
			d->slots[i].state = S_DELIVERED;
			d->held++;
			*out = d->slots[i].info;
			st = FRG_OK;
			break;
		}
		if (d->failed) {
			st = FRG_ERR_PIPELINE;
			break;
		}
		if (!d->started || d->eos) {
			st = FRG_ERR_NOT_STARTED;
			break;
		}
		if (wait_until(d, deadline) == ETIMEDOUT) {
			st = FRG_ERR_TIMEOUT;
			break;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return st;
}

void frg_get_counters(frg_dev *d, frg_counters *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&d->mu);
	out->delivered = d->delivered;
	out->underruns = d->underruns;
	out->discarded = d->discarded;
	out->next_frame_id = d->next_id;
	out->copies = d->copies;
	out->size_mismatch = d->size_mismatch;
	out->incomplete = d->incomplete;
	out->source_errors = d->source_errors;
	out->discont_gaps = d->discont_gaps;
	int queued = 0;
	for (int i = 0; i < d->nslots; i++)
		if (d->slots[i].state == S_QUEUED || d->slots[i].state == S_LENT || d->slots[i].state == S_FILLING)
			queued++;
	out->queued = (uint32_t)queued;
	out->awaiting = (uint32_t)d->nout;
	out->held = (uint32_t)d->held;
	out->announced = (uint32_t)d->announced;
	out->in_gst = (uint32_t)in_gst_count(d, 1);
	pthread_mutex_unlock(&d->mu);
}

void frg_last_error(frg_dev *d, char *buf, size_t len)
{
	pthread_mutex_lock(&d->mu);
	snprintf(buf, len, "%s", d->failed ? d->errmsg : "");
	pthread_mutex_unlock(&d->mu);
}

int frg_shutdown(frg_dev *d)
{
	int st = FRG_OK;
	if (d->pipeline)
		st = halt(d);
	pthread_mutex_lock(&d->mu);
	d->closed = 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mu);
	return st;
}

int frg_close(frg_dev *d)
{
	pthread_mutex_lock(&d->mu);
	int closed = d->closed;
	pthread_mutex_unlock(&d->mu);
	if (!closed)
		frg_shutdown(d);
	/* Every streaming thread is gone (halt): the pipeline's objects can
	 * go, and with them every reference an element kept (invariant 5). */
	if (d->pipeline) {
		GstBus *bus = gst_element_get_bus(d->pipeline);
		gst_bus_set_sync_handler(bus, NULL, NULL, NULL);
		gst_object_unref(bus);
	}
	if (d->sink)
		gst_object_unref(d->sink);
	if (d->pipeline)
		gst_object_unref(d->pipeline);
	if (d->pool)
		gst_object_unref(d->pool);
	d->sink = NULL;
	d->pipeline = NULL;
	d->pool = NULL;

	pthread_mutex_lock(&d->mu);
	int ndrop = 0;
	GstBuffer **drop = calloc((size_t)d->nslots + 1, sizeof *drop);
	for (int i = 0; i < d->nslots; i++) {
		slot *s = &d->slots[i];
		if (s->state == S_DELIVERED) {
			s->state = S_IDLE;
			d->held--;
		}
		if (s->held && drop)
			drop[ndrop++] = s->held;
		s->held = NULL;
	}
	pthread_mutex_unlock(&d->mu);
	for (int k = 0; k < ndrop; k++)
		gst_buffer_unref(drop[k]);
	free(drop);

	pthread_mutex_lock(&d->mu);
	int64_t deadline = mono_ns() + HOME_WAIT_NS;
	while (in_gst_count(d, 1) > 0 && wait_until(d, deadline) != ETIMEDOUT) {
	}
	int leaked = 0;
	for (int i = 0; i < d->nslots; i++) {
		slot *s = &d->slots[i];
		if (s->state == S_FREE)
			continue;
		if (s->in_gst) {
			s->leaked = 1; /* its memory outlives the device's use: never unmapped */
			leaked++;
		} else if (s->allocated) {
			munmap(s->base, (size_t)s->size);
		}
		s->state = S_FREE;
	}
	d->announced = 0;
	pthread_mutex_unlock(&d->mu);
	dev_unref(d); /* the handle's */
	return leaked ? FRG_ERR_BUSY : FRG_OK;
}
