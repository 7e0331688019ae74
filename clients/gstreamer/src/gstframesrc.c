/*
 * gstframesrc.c - framesrc: a framering ring as a GStreamer live source,
 * zero-copy (on libframering, clients/c/include/framering.h).
 *
 * Each frame is pushed as a GstBuffer whose one GstMemory wraps the
 * ring slot itself (gst_memory_new_wrapped over the library's read-only
 * mapping, flagged READONLY), holding a lease on the frame. The lease is
 * released by the memory's destroy notify, which GStreamer calls when
 * the last reference to the memory goes: buffer copies share the memory
 * and sub-memories hold their parent, so no earlier signal is
 * trustworthy. That happens on whatever thread drops the reference,
 * which libframering allows while fr_next waits on the streaming
 * thread, and even after fr_detach (the attachment lives until its last
 * lease is released).
 *
 * Ownership:
 *
 *   | what                       | allocated by   | owned by             | valid until                     |
 *   |----------------------------|----------------|----------------------|---------------------------------|
 *   | the ring mapping (r)       | libframering   | libframering         | fr_detach and the last release  |
 *   | a zero-copy GstMemory      | framesrc       | GStreamer (refcount) | its last unref: lease_done      |
 *   | its lease_ref (notify data)| framesrc       | the memory           | lease_done frees it             |
 *   | a copied GstBuffer         | framesrc's pool| GStreamer (refcount) | back to the pool                |
 *   | fs_shared (counters)       | framesrc       | element + every lease (refcount) | the last of them       |
 *
 * Invariants kept by this file:
 *
 *  1. The streaming thread (create, negotiate, decide_allocation, the
 *     EOS probe) alone touches self->r, the layout, the pool and the
 *     sequence bookkeeping; start() and stop() never run concurrently
 *     with it (GstBaseSrc stops the task before stop()).
 *  2. A lease is released exactly once, by lease_done (zero-copy) or
 *     right after the copy (copy path). lease_done uses only its
 *     lease_ref, never the element, which may be gone by then.
 *  3. framesrc never blocks the ring: it never holds more leases than
 *     the ring's hold quota (the library refuses with TOO_MANY_HELD
 *     before writing anything) or max-held; beyond that it copies or
 *     drops (quota-policy), and its copy pool is never waited for.
 *  4. self->caps and self->sh are replaced under the object lock; other
 *     threads (caps queries, property reads) read them under it.
 *  5. unlock() only sets a flag: every wait (fr_next, re-attach polling)
 *     is sliced (WAIT_SLICE_MS) and checks it, so unlock_stop() can undo
 *     it (a live source is unlocked on every PLAYING -> PAUSED).
 */
#define _GNU_SOURCE
#include "gstframesrc.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gst/video/video.h>

#include "formats.h"
#include "framering.h"

GST_DEBUG_CATEGORY_STATIC(framesrc_debug);
#define GST_CAT_DEFAULT framesrc_debug

/* How long one fr_next waits before framesrc checks for unlock (ms). */
#define WAIT_SLICE_MS 20
/* How often a re-attach is tried while no producer serves the ring (ms). */
#define REATTACH_POLL_MS 100

/* create's internal "no buffer this time, go round again". */
#define FLOW_RETRY GST_FLOW_CUSTOM_SUCCESS

/* ---------------------------------------------------------------------
 * Counters, shared by the element and its leases
 * ------------------------------------------------------------------- */

enum fs_counter {
	C_PUSHED,         /* buffers pushed */
	C_ZERO_COPY,      /* ... of them wrapping the ring slot */
	C_COPIED_QUOTA,   /* ... copied: the hold quota / max-held was reached */
	C_COPIED_STRIDE,  /* ... copied: the ring's stride is not GStreamer's and downstream takes no GstVideoMeta */
	C_DROPPED,        /* frames dropped by the quota policy, or with the copy pool empty */
	C_SKIPPED,        /* frames a lossy consumer passed over for a newer one (libframering) */
	C_MISSED,         /* frames overwritten before framesrc could take them */
	C_REJECTED,       /* frames whose geometry does not fit their length */
	C_PRODUCER_DROPS, /* frames the producer lost before publishing (drops_before of pushed frames) */
	C_LOST,           /* frames that did not become buffers, over the pushed stream's gaps */
	C_DISCONT,        /* buffers flagged DISCONT after the first */
	C_HELD,           /* leases outstanding now */
	C_RELEASED,       /* leases released */
	C_REVOKED,        /* leases found revoked at release (an eviction) */
	C_REVOKED_TORN,   /* ... of them whose frame changed while downstream could read it */
	C_EVICTIONS,      /* times the producer evicted framesrc */
	C_REATTACHES,     /* attaches after the first */
	C_STALLS,         /* producer stalls reported */
	C_CAPS_CHANGES,   /* renegotiations after the first caps */
	FS_NCOUNTERS
};

static const char *const counter_names[FS_NCOUNTERS] = {
	"pushed",     "zero-copy", "copied-quota", "copied-stride", "dropped", "skipped",
	"missed",     "rejected",  "producer-drops", "lost",        "discont", "held",
	"released",   "revoked",   "revoked-torn", "evictions",     "reattaches", "stalls",
	"caps-changes",
};

typedef struct fs_shared {
	atomic_int refs;
	atomic_uint_least64_t c[FS_NCOUNTERS];
} fs_shared;

static fs_shared *shared_new(void)
{
	/* malloc, not GLib: the tests' LeakSanitizer ignores GLib's allocations. */
	fs_shared *s = calloc(1, sizeof *s);
	if (s == NULL)
		g_error("framesrc: out of memory");
	atomic_init(&s->refs, 1);
	for (int i = 0; i < FS_NCOUNTERS; i++)
		atomic_init(&s->c[i], 0);
	return s;
}

static fs_shared *shared_ref(fs_shared *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

static void shared_unref(fs_shared *s)
{
	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		free(s);
}

static void count(fs_shared *s, enum fs_counter c, uint64_t n) { atomic_fetch_add_explicit(&s->c[c], n, memory_order_relaxed); }
static uint64_t counter(fs_shared *s, enum fs_counter c) { return atomic_load_explicit(&s->c[c], memory_order_relaxed); }

/* ---------------------------------------------------------------------
 * The element
 * ------------------------------------------------------------------- */

struct _GstFrameSrc {
	GstPushSrc parent;

	/* Properties (object lock). */
	gchar *ring, *socket, *consumer_name;
	gboolean lossless, reattach, eos_on_close;
	GstFrameSrcStart start;
	GstFrameSrcQuotaPolicy quota_policy;
	guint max_held, max_copies, stall_after_ms, stats_interval_ms;
	gint fps_n, fps_d;

	fs_shared *sh; /* invariant 4 */
	GstCaps *caps; /* invariant 4: the negotiated caps, NULL before the first frame */

	/* Streaming thread (invariant 1). */
	fr_ring *r;
	fr_info info;
	fr_counters lib;     /* the library's counters of r at the last sync */
	uint64_t epoch;      /* of the producer last attached to (0: none yet) */
	uint64_t last_seq;   /* the last frame pushed, in epoch */
	uint64_t skip_upto;  /* after re-attaching to the same producer: frames already pushed */
	gboolean counting;   /* gaps are counted from last_seq (not before the first frame) */
	gboolean discont;    /* the next buffer carries DISCONT */
	gboolean first;      /* no buffer pushed yet */
	fs_layout lay;
	gboolean have_lay;
	GstBufferPool *pool; /* copies; configured for lay */
	uint64_t revoked_reported;
	gint64 next_stats_ns;
	char evict_msg[256];

	atomic_int meta_ok;  /* downstream takes GstVideoMeta (decide_allocation) */
	atomic_int flushing; /* invariant 5 */
};

G_DEFINE_TYPE(GstFrameSrc, gst_framesrc, GST_TYPE_PUSH_SRC)

enum {
	PROP_0,
	PROP_RING,
	PROP_SOCKET,
	PROP_CONSUMER_NAME,
	PROP_LOSSLESS,
	PROP_START,
	PROP_REATTACH,
	PROP_EOS_ON_CLOSE,
	PROP_QUOTA_POLICY,
	PROP_MAX_HELD,
	PROP_MAX_COPIES,
	PROP_FRAMERATE,
	PROP_STALL_AFTER,
	PROP_STATS_INTERVAL,
	PROP_DO_TIMESTAMP,
	PROP_FRAMES_PUSHED,
	PROP_FRAMES_COPIED,
	PROP_FRAMES_DROPPED,
	PROP_FRAMES_LOST,
	PROP_LEASES_HELD,
	PROP_LEASES_REVOKED,
	PROP_STATS,
};

#define DEFAULT_RING "default"
#define DEFAULT_CONSUMER_NAME "framesrc"

static GType quota_policy_get_type(void)
{
	static GType t = 0;
	static const GEnumValue values[] = {
		{GST_FRAMESRC_QUOTA_COPY, "Copy the frame into a buffer of framesrc's own pool (counted in frames-copied)",
		 "copy"},
		{GST_FRAMESRC_QUOTA_DROP, "Drop the frame (counted in frames-dropped)", "drop"},
		{0, NULL, NULL},
	};
	if (g_once_init_enter(&t))
		g_once_init_leave(&t, g_enum_register_static("GstFrameSrcQuotaPolicy", values));
	return t;
}

static GType start_get_type(void)
{
	static GType t = 0;
	static const GEnumValue values[] = {
		{GST_FRAMESRC_START_NEXT, "The next frame the producer publishes", "next"},
		{GST_FRAMESRC_START_OLDEST, "The oldest frame the ring still has", "oldest"},
		{0, NULL, NULL},
	};
	if (g_once_init_enter(&t))
		g_once_init_leave(&t, g_enum_register_static("GstFrameSrcStart", values));
	return t;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static gboolean flushing(GstFrameSrc *self) { return atomic_load(&self->flushing) != 0; }

/* ---------------------------------------------------------------------
 * Leases
 * ------------------------------------------------------------------- */

typedef struct lease_ref {
	fr_ring *r;
	fr_lease lease;
	fs_shared *sh;
} lease_ref;

static void count_release(fs_shared *sh, int rc)
{
	count(sh, C_RELEASED, 1);
	if (rc == FR_ERR_REVOKED || rc == FR_ERR_REVOKED_OVERWRITTEN)
		count(sh, C_REVOKED, 1);
	if (rc == FR_ERR_REVOKED_OVERWRITTEN)
		count(sh, C_REVOKED_TORN, 1);
}

/* lease_done is the zero-copy memory's destroy notify: the last reference
 * to the memory is gone, on whatever thread dropped it (invariant 2). */
static void lease_done(gpointer data)
{
	lease_ref *lr = data;
	count_release(lr->sh, fr_release(lr->r, lr->lease));
	atomic_fetch_sub_explicit(&lr->sh->c[C_HELD], 1, memory_order_relaxed);
	shared_unref(lr->sh);
	free(lr);
}

/* ---------------------------------------------------------------------
 * Attaching
 * ------------------------------------------------------------------- */

static void on_ring_event(void *arg, int event, const char *msg)
{
	GstFrameSrc *self = arg;
	switch (event) {
	case FR_EVENT_STALLED:
		count(self->sh, C_STALLS, 1);
		GST_ELEMENT_WARNING(self, RESOURCE, READ, ("The producer of the ring has stalled; still waiting for it."),
				    ("%s", msg));
		break;
	case FR_EVENT_RESUMED:
		GST_ELEMENT_INFO(self, RESOURCE, READ, ("The producer of the ring is making progress again."),
				 ("The producer of the ring is making progress again: %s", msg));
		break;
	case FR_EVENT_EVICTED:
		g_strlcpy(self->evict_msg, msg, sizeof self->evict_msg);
		break;
	default:
		break;
	}
}

/* sync_counters adds what the library counted on r since the last sync. */
static void sync_counters(GstFrameSrc *self)
{
	fr_counters c;
	if (self->r == NULL || fr_get_counters(self->r, &c) != FR_OK)
		return;
	count(self->sh, C_SKIPPED, c.skipped - self->lib.skipped);
	count(self->sh, C_MISSED, c.missed - self->lib.missed);
	self->lib = c;
}

static int do_attach(GstFrameSrc *self, uint64_t start, char *err, size_t errsz)
{
	fr_options o;
	fr_options_init(&o);
	GST_OBJECT_LOCK(self);
	gchar *ring = g_strdup(self->ring), *sock = g_strdup(self->socket), *name = g_strdup(self->consumer_name);
	o.mode = self->lossless ? FR_MODE_LOSSLESS : FR_MODE_LOSSY;
	o.max_leases = self->max_held;
	o.stall_after_ms = (int32_t)MIN(self->stall_after_ms, (guint)G_MAXINT32);
	GST_OBJECT_UNLOCK(self);
	o.ring = ring;
	o.socket_path = sock != NULL && sock[0] != '\0' ? sock : NULL;
	o.name = name;
	o.role = FR_ROLE_CONSUMER;
	o.start = start;
	/* fr_next peeks; framesrc borrows what it pushes zero-copy (fr_borrow)
	 * and copies what it may not borrow (quota), so one frame over the
	 * quota is never a reason to stop reading (invariant 3). A lossless
	 * peeking consumer's cursor keeps the frame until the next fr_next. */
	o.flags = FR_OPT_PEEK;
	o.log = on_ring_event;
	o.log_arg = self;
	o.error_buf = err;
	o.error_buf_size = errsz;
	fr_ring *r = NULL;
	int rc = fr_attach(&o, &r);
	g_free(ring);
	g_free(sock);
	g_free(name);
	if (rc != FR_OK)
		return rc;
	self->r = r;
	fr_get_info(r, &self->info);
	memset(&self->lib, 0, sizeof self->lib);
	self->evict_msg[0] = '\0';
	GST_INFO_OBJECT(self, "attached to %s: entry %d, %u slots of %" PRIu64 " bytes, hold quota %u, epoch %016" PRIx64,
			self->info.socket_path, self->info.entry, self->info.slots, self->info.slot_capacity,
			self->info.hold_quota, self->info.epoch);
	return FR_OK;
}

/* do_detach ends the attachment; leases still held downstream keep it
 * (and its mapping) alive until they are released (fr_detach). */
static void do_detach(GstFrameSrc *self)
{
	if (self->r == NULL)
		return;
	sync_counters(self);
	fr_shutdown(self->r);
	fr_detach(self->r);
	self->r = NULL;
}

static gchar *ring_label(GstFrameSrc *self)
{
	GST_OBJECT_LOCK(self);
	gchar *s = self->socket != NULL && self->socket[0] != '\0' ? g_strdup(self->socket) : g_strdup(self->ring);
	GST_OBJECT_UNLOCK(self);
	return s;
}

/* wait_attach attaches again after the producer went away or evicted us:
 * it polls until a producer serves the ring, or framesrc is unlocked. */
static GstFlowReturn wait_attach(GstFrameSrc *self)
{
	for (;;) {
		if (flushing(self))
			return GST_FLOW_FLUSHING;
		char err[256] = "";
		/* A lossless consumer wants everything the ring still has; from
		 * the same producer, the frames it pushed already are skipped. */
		int rc = do_attach(self, self->lossless ? 1 : 0, err, sizeof err);
		if (rc == FR_OK) {
			count(self->sh, C_REATTACHES, 1);
			if (self->info.epoch == self->epoch) {
				self->skip_upto = self->last_seq;
			} else {
				/* A new producer: its frames count from its first. */
				self->epoch = self->info.epoch;
				self->skip_upto = 0;
				self->last_seq = 0;
				self->counting = TRUE;
			}
			self->discont = TRUE;
			gchar *label = ring_label(self);
			GST_ELEMENT_INFO(self, RESOURCE, OPEN_READ, ("Attached to ring %s again.", label),
					 ("Attached to ring %s again: producer pid %u, epoch %016" PRIx64, label,
					  self->info.producer_pid, self->info.epoch));
			g_free(label);
			return GST_FLOW_OK;
		}
		switch (rc) {
		case FR_ERR_NO_SUCH_RING:
		case FR_ERR_PRODUCER_GONE:
		case FR_ERR_NOT_RESPONDING:
		case FR_ERR_CLOSED:
		case FR_ERR_FULL:
			GST_DEBUG_OBJECT(self, "re-attach: %s (%s)", fr_strerror(rc), err);
			break;
		default: {
			gchar *label = ring_label(self);
			GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not attach to ring %s again: %s.", label, fr_strerror(rc)),
					  ("%s", err));
			g_free(label);
			return GST_FLOW_ERROR;
		}
		}
		for (int waited = 0; waited < REATTACH_POLL_MS; waited += WAIT_SLICE_MS) {
			if (flushing(self))
				return GST_FLOW_FLUSHING;
			g_usleep(WAIT_SLICE_MS * 1000);
		}
	}
}

/* ring_ended decides what a ring error from fr_next or fr_borrow means
 * for the stream: FLOW_RETRY (detached; attach again), EOS, or an error. */
static GstFlowReturn ring_ended(GstFrameSrc *self, int rc)
{
	gboolean reattach, eos_on_close;
	GST_OBJECT_LOCK(self);
	reattach = self->reattach;
	eos_on_close = self->eos_on_close;
	GST_OBJECT_UNLOCK(self);
	gchar *label = ring_label(self);
	GstFlowReturn ret;
	switch (rc) {
	case FR_ERR_CLOSED:
		if (flushing(self)) {
			ret = GST_FLOW_FLUSHING;
			break;
		}
		/* The producer closed the ring, and every frame was read. */
		if (eos_on_close) {
			GST_INFO_OBJECT(self, "ring %s closed by its producer: end of stream", label);
			ret = GST_FLOW_EOS;
			break;
		}
		GST_ELEMENT_INFO(self, RESOURCE, READ, ("Ring %s was closed; waiting for its next producer.", label),
				 ("Ring %s was closed; waiting for its next producer.", label));
		do_detach(self);
		ret = FLOW_RETRY;
		break;
	case FR_ERR_PRODUCER_GONE:
		if (!reattach) {
			GST_ELEMENT_WARNING(self, RESOURCE, READ, ("The producer of ring %s is gone; ending the stream.", label),
					    ("reattach=false"));
			ret = GST_FLOW_EOS;
			break;
		}
		GST_ELEMENT_WARNING(self, RESOURCE, READ, ("The producer of ring %s is gone; waiting for a new one.", label),
				    (NULL));
		do_detach(self);
		ret = FLOW_RETRY;
		break;
	case FR_ERR_EVICTED: {
		count(self->sh, C_EVICTIONS, 1);
		char why[256];
		g_strlcpy(why, self->evict_msg[0] ? self->evict_msg : "evicted", sizeof why);
		do_detach(self);
		if (!reattach) {
			GST_ELEMENT_ERROR(self, RESOURCE, READ, ("The producer of ring %s evicted framesrc.", label),
					  ("%s; reattach=false", why));
			ret = GST_FLOW_ERROR;
			break;
		}
		GST_ELEMENT_WARNING(self, RESOURCE, READ,
				    ("The producer of ring %s evicted framesrc; attaching again.", label),
				    ("%s. Buffers still downstream hold revoked leases: their frames may be overwritten.", why));
		ret = FLOW_RETRY;
		break;
	}
	default:
		GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Reading ring %s failed: %s.", label, fr_strerror(rc)),
				  ("%s", fr_error_name(rc)));
		ret = GST_FLOW_ERROR;
		break;
	}
	g_free(label);
	return ret;
}

/* ---------------------------------------------------------------------
 * Caps, allocation, pool
 * ------------------------------------------------------------------- */

static GstCaps *gst_framesrc_get_caps(GstBaseSrc *bs, GstCaps *filter)
{
	GstFrameSrc *self = GST_FRAMESRC(bs);
	GST_OBJECT_LOCK(self);
	GstCaps *caps = self->caps != NULL ? gst_caps_ref(self->caps) : NULL;
	GST_OBJECT_UNLOCK(self);
	if (caps == NULL)
		caps = gst_pad_get_pad_template_caps(GST_BASE_SRC_PAD(bs));
	if (filter != NULL) {
		GstCaps *both = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
		gst_caps_unref(caps);
		caps = both;
	}
	return caps;
}

/* negotiate: the caps come from the frames, not from downstream; before
 * the first frame there is nothing to negotiate yet. */
static gboolean gst_framesrc_negotiate(GstBaseSrc *bs)
{
	GstFrameSrc *self = GST_FRAMESRC(bs);
	GST_OBJECT_LOCK(self);
	GstCaps *caps = self->caps != NULL ? gst_caps_ref(self->caps) : NULL;
	GST_OBJECT_UNLOCK(self);
	if (caps == NULL)
		return TRUE;
	gboolean ok = gst_base_src_set_caps(bs, caps);
	gst_caps_unref(caps);
	return ok;
}

static gboolean gst_framesrc_decide_allocation(GstBaseSrc *bs, GstQuery *query)
{
	GstFrameSrc *self = GST_FRAMESRC(bs);
	atomic_store(&self->meta_ok, gst_query_find_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL) ? 1 : 0);
	/* framesrc's buffers are the ring's slots (or its own pool's copies):
	 * leave downstream's pools alone, or GstBaseSrc would activate one. */
	while (gst_query_get_n_allocation_pools(query) > 0)
		gst_query_remove_nth_allocation_pool(query, 0);
	return TRUE;
}

static void drop_pool(GstFrameSrc *self)
{
	if (self->pool == NULL)
		return;
	gst_buffer_pool_set_active(self->pool, FALSE);
	gst_object_unref(self->pool);
	self->pool = NULL;
}

static GstFlowReturn renegotiate(GstFrameSrc *self, const fs_layout *lay)
{
	GST_OBJECT_LOCK(self);
	GstCaps *caps = fs_layout_caps(lay, self->fps_n, self->fps_d);
	GstCaps *old = self->caps;
	self->caps = gst_caps_ref(caps);
	GST_OBJECT_UNLOCK(self);
	if (!gst_base_src_negotiate(GST_BASE_SRC(self))) {
		gchar *s = gst_caps_to_string(caps);
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
				  ("Downstream does not accept the ring's frames (%s %ux%u, stride %u) as %s.", lay->fmt->name,
				   lay->width, lay->height, lay->stride, s),
				  ("put videoconvert (or bayer2rgb for Bayer) after framesrc"));
		g_free(s);
		if (old != NULL)
			gst_caps_unref(old);
		gst_caps_unref(caps);
		return GST_FLOW_NOT_NEGOTIATED;
	}
	if (self->have_lay) {
		count(self->sh, C_CAPS_CHANGES, 1);
		GST_ELEMENT_INFO(self, STREAM, FORMAT,
				 ("The ring's frames changed from %s %ux%u to %s %ux%u; caps renegotiated.", self->lay.fmt->name,
				  self->lay.width, self->lay.height, lay->fmt->name, lay->width, lay->height),
				 ("The ring's frames changed from %s %ux%u to %s %ux%u; caps renegotiated.", self->lay.fmt->name,
				  self->lay.width, self->lay.height, lay->fmt->name, lay->width, lay->height));
	}
	GST_INFO_OBJECT(self, "caps %" GST_PTR_FORMAT " (ring stride %u, GStreamer's %u, downstream video meta %d)", caps,
			lay->stride, lay->gst_stride, atomic_load(&self->meta_ok));
	if (old != NULL)
		gst_caps_unref(old);
	gst_caps_unref(caps);
	self->lay = *lay;
	self->have_lay = TRUE;
	drop_pool(self);
	return GST_FLOW_OK;
}

/* copy_frame copies the frame into a buffer of framesrc's pool, in
 * GStreamer's default layout. NULL when the pool has no free buffer
 * (max-copies reached): framesrc never waits for one (invariant 3). */
static GstBuffer *copy_frame(GstFrameSrc *self, const fr_frame *f, const fs_layout *lay)
{
	if (self->pool == NULL) {
		GST_OBJECT_LOCK(self);
		guint max = self->max_copies;
		GstCaps *caps = gst_caps_ref(self->caps);
		GST_OBJECT_UNLOCK(self);
		GstBufferPool *pool = gst_buffer_pool_new();
		GstStructure *config = gst_buffer_pool_get_config(pool);
		gst_buffer_pool_config_set_params(config, caps, (guint)lay->gst_size, 0, max);
		gst_caps_unref(caps);
		if (!gst_buffer_pool_set_config(pool, config) || !gst_buffer_pool_set_active(pool, TRUE)) {
			gst_object_unref(pool);
			return NULL;
		}
		self->pool = pool;
	}
	GstBufferPoolAcquireParams params = {.flags = GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT};
	GstBuffer *b = NULL;
	if (gst_buffer_pool_acquire_buffer(self->pool, &b, &params) != GST_FLOW_OK)
		return NULL;
	GstMapInfo mi;
	if (!gst_buffer_map(b, &mi, GST_MAP_WRITE)) {
		gst_buffer_unref(b);
		return NULL;
	}
	const uint8_t *src = f->data;
	if (lay->stride == lay->gst_stride) {
		memcpy(mi.data, src, lay->frame_bytes);
	} else {
		for (uint32_t y = 0; y < lay->height; y++)
			memcpy(mi.data + (size_t)y * lay->gst_stride, src + (size_t)y * lay->stride, lay->row_bytes);
	}
	gst_buffer_unmap(b, &mi);
	return b;
}

/* wrap makes the zero-copy buffer: one READONLY memory over the slot,
 * whose destroy notify releases the lease (invariant 2). */
static GstBuffer *wrap(GstFrameSrc *self, const fr_frame *f, fr_lease lease, const fs_layout *lay)
{
	gsize size = (gsize)lay->stride * lay->height;
	lease_ref *lr = malloc(sizeof *lr);
	if (lr == NULL)
		g_error("framesrc: out of memory");
	lr->r = self->r;
	lr->lease = lease;
	lr->sh = shared_ref(self->sh);
	count(self->sh, C_HELD, 1);
	/* The mapping is PROT_READ: GStreamer must never write it in place.
	 * READONLY makes a writable map copy the memory instead. */
	GstMemory *m =
		gst_memory_new_wrapped(GST_MEMORY_FLAG_READONLY, (gpointer)(uintptr_t)f->data, size, 0, size, lr, lease_done);
	GstBuffer *b = gst_buffer_new();
	gst_buffer_append_memory(b, m);
	if (lay->stride != lay->gst_stride) {
		gsize offset[GST_VIDEO_MAX_PLANES] = {0};
		gint stride[GST_VIDEO_MAX_PLANES] = {(gint)lay->stride};
		gst_buffer_add_video_meta_full(b, GST_VIDEO_FRAME_FLAG_NONE, lay->fmt->vfmt, lay->width, lay->height, 1,
					       offset, stride);
	}
	return b;
}

/* ---------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------- */

/* stamp sets timestamps, offsets and DISCONT, and counts the gap before
 * the frame. PTS: the frame's capture time (CLOCK_MONOTONIC) moved onto
 * the pipeline clock by the two clocks' offset sampled now, minus the
 * base time: the running time at which the frame was captured (exact
 * for GStreamer's default system clock, which is CLOCK_MONOTONIC; 0 for
 * frames captured before the pipeline started playing). */
static void stamp(GstFrameSrc *self, GstBuffer *b, const fr_frame *f)
{
	uint64_t lost = 0, producer = 0;
	if (self->counting && f->seq > self->last_seq + 1)
		lost = f->seq - self->last_seq - 1;
	for (int i = 0; i < 4; i++)
		producer += f->drops_before[i].count;
	lost += producer;
	count(self->sh, C_PRODUCER_DROPS, producer);
	count(self->sh, C_LOST, lost);
	if (lost > 0)
		self->discont = TRUE;
	if (self->discont || self->first) {
		GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
		if (!self->first)
			count(self->sh, C_DISCONT, 1);
	}
	self->discont = FALSE;
	self->first = FALSE;
	self->counting = TRUE;
	self->last_seq = f->seq;

	GST_BUFFER_OFFSET(b) = f->seq;
	GST_BUFFER_OFFSET_END(b) = f->seq + 1;
	GST_OBJECT_LOCK(self);
	gint fps_n = self->fps_n, fps_d = self->fps_d;
	GST_OBJECT_UNLOCK(self);
	if (fps_n > 0)
		GST_BUFFER_DURATION(b) = gst_util_uint64_scale_int(GST_SECOND, fps_d, fps_n);
	if (gst_base_src_get_do_timestamp(GST_BASE_SRC(self)))
		return; /* GstBaseSrc stamps the running time of arrival */
	GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
	if (clock == NULL)
		return;
	GstClockTime now = gst_clock_get_time(clock);
	int64_t mono = mono_ns();
	GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
	gst_object_unref(clock);
	int64_t age = f->timestamp_ns > 0 && f->timestamp_ns <= mono ? mono - f->timestamp_ns : 0;
	int64_t captured = (int64_t)now - age - (int64_t)base;
	GST_BUFFER_PTS(b) = captured > 0 ? (GstClockTime)captured : 0;
}

/* take_frame turns the frame fr_next peeked into a buffer: borrowed and
 * wrapped, or copied. GST_FLOW_OK with *out; FLOW_RETRY when the frame
 * does not become a buffer (counted); or what ring_ended says. */
static GstFlowReturn take_frame(GstFrameSrc *self, fr_frame *f, GstBuffer **out)
{
	if (f->seq <= self->skip_upto)
		return FLOW_RETRY; /* pushed before an eviction */
	fr_lease lease = FR_NO_LEASE;
	fr_frame bf;
	int quota = 0;
	int rc = fr_borrow(self->r, f->seq, &lease, &bf);
	switch (rc) {
	case FR_OK:
		*f = bf; /* the same frame, now stable */
		break;
	case FR_ERR_TOO_MANY_HELD:
	case FR_ERR_TOO_MANY_LEASES:
		quota = 1;
		break;
	case FR_ERR_OVERWRITTEN:
		/* Lossy: reused between fr_next and the borrow. */
		count(self->sh, C_MISSED, 1);
		return FLOW_RETRY;
	default:
		return ring_ended(self, rc);
	}

	fs_layout lay;
	int lerr = fs_layout_init(&lay, f->format, f->width, f->height, f->stride, f->length);
	/* The copy path must not outgrow the slot either. */
	int fits = lerr == FS_LAYOUT_OK && (uint64_t)lay.stride * lay.height <= self->info.slot_capacity;
	if (lerr != FS_LAYOUT_OK) {
		if (lease != FR_NO_LEASE) {
			count_release(self->sh, fr_release(self->r, lease));
		} else if (fr_peek_check(self->r, f) != FR_OK) {
			count(self->sh, C_MISSED, 1); /* the metadata was torn */
			return FLOW_RETRY;
		}
		if (lerr == FS_LAYOUT_UNKNOWN_FORMAT || lerr == FS_LAYOUT_REFUSED_FORMAT) {
			const char *why = "framering does not know this pixel format";
			if (lay.fmt != NULL)
				fs_format_usable(lay.fmt, &why);
			GST_ELEMENT_ERROR(self, STREAM, FORMAT,
					  ("The ring carries %s frames (PFNC 0x%08x), which framesrc cannot hand to GStreamer.",
					   lay.fmt ? lay.fmt->name : "unknown", f->format),
					  ("%s", why));
			return GST_FLOW_NOT_NEGOTIATED;
		}
		count(self->sh, C_REJECTED, 1);
		GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Frame %" PRIu64 " rejected: its geometry does not fit its length.", f->seq),
				    ("format 0x%08x %ux%u stride %u, %" PRIu64 " bytes (error %d)", f->format, f->width,
				     f->height, f->stride, f->length, lerr));
		return FLOW_RETRY;
	}
	if (!self->have_lay || !fs_layout_same(&lay, &self->lay)) {
		GstFlowReturn ret = renegotiate(self, &lay);
		if (ret != GST_FLOW_OK) {
			if (lease != FR_NO_LEASE)
				count_release(self->sh, fr_release(self->r, lease));
			return ret;
		}
	}

	/* Zero-copy needs GStreamer to read the ring's rows: its own stride,
	 * or a GstVideoMeta downstream understands (Bayer has none). */
	int restride = lay.stride != lay.gst_stride &&
		       (lay.fmt->vfmt == GST_VIDEO_FORMAT_UNKNOWN || !atomic_load(&self->meta_ok));
	restride |= !fits;
	GstBuffer *b;
	if (lease != FR_NO_LEASE && !restride) {
		b = wrap(self, f, lease, &lay);
		count(self->sh, C_ZERO_COPY, 1);
	} else {
		GstFrameSrcQuotaPolicy policy;
		GST_OBJECT_LOCK(self);
		policy = self->quota_policy;
		GST_OBJECT_UNLOCK(self);
		if (quota && !restride && policy == GST_FRAMESRC_QUOTA_DROP) {
			/* Peeked only: nothing to release. */
			count(self->sh, C_DROPPED, 1);
			return FLOW_RETRY;
		}
		b = copy_frame(self, f, &lay);
		/* The copy is good only if the frame did not change under it:
		 * borrowed, unless the lease was revoked meanwhile; peeked, if the
		 * seqlock check passes (always for a lossless consumer, whose
		 * cursor protects the frame). */
		int ok;
		if (lease != FR_NO_LEASE) {
			int rrc = fr_release(self->r, lease);
			count_release(self->sh, rrc);
			ok = rrc != FR_ERR_REVOKED_OVERWRITTEN;
		} else {
			ok = fr_peek_check(self->r, f) == FR_OK;
		}
		if (!ok) {
			if (b != NULL)
				gst_buffer_unref(b);
			count(self->sh, C_MISSED, 1);
			return FLOW_RETRY;
		}
		if (b == NULL) {
			count(self->sh, C_DROPPED, 1); /* the copy pool is empty (max-copies) */
			return FLOW_RETRY;
		}
		count(self->sh, restride ? C_COPIED_STRIDE : C_COPIED_QUOTA, 1);
	}
	stamp(self, b, f);
	*out = b;
	return GST_FLOW_OK;
}

static GstStructure *stats_structure(fs_shared *sh)
{
	GstStructure *s = gst_structure_new_empty("framesrc-stats");
	for (int i = 0; i < FS_NCOUNTERS; i++)
		gst_structure_set(s, counter_names[i], G_TYPE_UINT64, (guint64)counter(sh, i), NULL);
	return s;
}

static fs_shared *get_shared(GstFrameSrc *self)
{
	GST_OBJECT_LOCK(self);
	fs_shared *sh = shared_ref(self->sh);
	GST_OBJECT_UNLOCK(self);
	return sh;
}

static void post_stats(GstFrameSrc *self)
{
	fs_shared *sh = get_shared(self);
	gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), stats_structure(sh)));
	shared_unref(sh);
}

/* report_revoked warns once for each batch of leases found revoked since
 * the last report (they are released on other threads). */
static void report_revoked(GstFrameSrc *self)
{
	uint64_t n = counter(self->sh, C_REVOKED);
	if (n == self->revoked_reported)
		return;
	uint64_t torn = counter(self->sh, C_REVOKED_TORN);
	GST_ELEMENT_WARNING(self, RESOURCE, READ,
			    ("%" PRIu64 " buffer(s) were released after framesrc's eviction had revoked their leases.",
			     n - self->revoked_reported),
			    ("%" PRIu64 " revoked in all, %" PRIu64 " of them with frames overwritten while downstream held them", n,
			     torn));
	self->revoked_reported = n;
}

static GstFlowReturn gst_framesrc_create(GstPushSrc *ps, GstBuffer **out)
{
	GstFrameSrc *self = GST_FRAMESRC(ps);
	for (;;) {
		if (flushing(self))
			return GST_FLOW_FLUSHING;
		report_revoked(self);
		GST_OBJECT_LOCK(self);
		guint interval = self->stats_interval_ms;
		GST_OBJECT_UNLOCK(self);
		if (interval > 0) {
			int64_t now = mono_ns();
			if (now >= self->next_stats_ns) {
				if (self->next_stats_ns != 0)
					post_stats(self);
				self->next_stats_ns = now + (int64_t)interval * 1000000;
			}
		}
		if (self->r == NULL) {
			GstFlowReturn ret = wait_attach(self);
			if (ret != GST_FLOW_OK)
				return ret;
		}
		fr_lease none;
		fr_frame f;
		int rc = fr_next(self->r, WAIT_SLICE_MS, &none, &f);
		sync_counters(self);
		if (rc == FR_ERR_TIMEOUT)
			continue;
		GstFlowReturn ret = rc == FR_OK ? take_frame(self, &f, out) : ring_ended(self, rc);
		if (ret == FLOW_RETRY)
			continue;
		if (ret == GST_FLOW_OK)
			count(self->sh, C_PUSHED, 1);
		return ret;
	}
}

/* ---------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------- */

static gboolean gst_framesrc_start(GstBaseSrc *bs)
{
	GstFrameSrc *self = GST_FRAMESRC(bs);
	fs_shared *fresh = shared_new(), *old;
	GST_OBJECT_LOCK(self);
	old = self->sh;
	self->sh = fresh;
	gboolean oldest = self->start == GST_FRAMESRC_START_OLDEST;
	GST_OBJECT_UNLOCK(self);
	shared_unref(old);
	self->epoch = 0;
	self->last_seq = 0;
	self->skip_upto = 0;
	self->counting = FALSE;
	self->discont = FALSE;
	self->first = TRUE;
	self->have_lay = FALSE;
	self->revoked_reported = 0;
	self->next_stats_ns = 0;
	atomic_store(&self->flushing, 0);
	char err[256] = "";
	int rc = do_attach(self, oldest ? 1 : 0, err, sizeof err);
	if (rc != FR_OK) {
		gchar *label = ring_label(self);
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not attach to ring %s: %s.", label, fr_strerror(rc)),
				  ("%s", err));
		g_free(label);
		return FALSE;
	}
	self->epoch = self->info.epoch;
	return TRUE;
}

static gboolean gst_framesrc_stop(GstBaseSrc *bs)
{
	GstFrameSrc *self = GST_FRAMESRC(bs);
	do_detach(self);
	drop_pool(self);
	GST_OBJECT_LOCK(self);
	GstCaps *caps = self->caps;
	self->caps = NULL;
	GST_OBJECT_UNLOCK(self);
	if (caps != NULL)
		gst_caps_unref(caps);
	self->have_lay = FALSE;
	return TRUE;
}

static gboolean gst_framesrc_unlock(GstBaseSrc *bs)
{
	atomic_store(&GST_FRAMESRC(bs)->flushing, 1);
	return TRUE;
}

static gboolean gst_framesrc_unlock_stop(GstBaseSrc *bs)
{
	atomic_store(&GST_FRAMESRC(bs)->flushing, 0);
	return TRUE;
}

static gboolean gst_framesrc_query(GstBaseSrc *bs, GstQuery *q)
{
	GstFrameSrc *self = GST_FRAMESRC(bs);
	if (GST_QUERY_TYPE(q) == GST_QUERY_LATENCY) {
		/* Live; a frame reaches framesrc just after its capture (the PTS is
		 * the capture time): one frame period when the rate is known. */
		GST_OBJECT_LOCK(self);
		GstClockTime min = self->fps_n > 0 ? gst_util_uint64_scale_int(GST_SECOND, self->fps_d, self->fps_n) : 0;
		GST_OBJECT_UNLOCK(self);
		gst_query_set_latency(q, TRUE, min, GST_CLOCK_TIME_NONE);
		return TRUE;
	}
	return GST_BASE_SRC_CLASS(gst_framesrc_parent_class)->query(bs, q);
}

static GstPadProbeReturn eos_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
	(void)pad;
	GstEvent *e = GST_PAD_PROBE_INFO_EVENT(info);
	if (e != NULL && GST_EVENT_TYPE(e) == GST_EVENT_EOS)
		post_stats(GST_FRAMESRC(data));
	return GST_PAD_PROBE_OK;
}

/* ---------------------------------------------------------------------
 * Properties
 * ------------------------------------------------------------------- */

static void gst_framesrc_set_property(GObject *obj, guint id, const GValue *v, GParamSpec *pspec)
{
	GstFrameSrc *self = GST_FRAMESRC(obj);
	if (id == PROP_DO_TIMESTAMP) {
		/* GstBaseSrc's own setting (it takes the object lock itself). */
		gst_base_src_set_do_timestamp(GST_BASE_SRC(self), g_value_get_boolean(v));
		return;
	}
	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_RING:
		g_free(self->ring);
		self->ring = g_value_dup_string(v);
		break;
	case PROP_SOCKET:
		g_free(self->socket);
		self->socket = g_value_dup_string(v);
		break;
	case PROP_CONSUMER_NAME:
		g_free(self->consumer_name);
		self->consumer_name = g_value_dup_string(v);
		break;
	case PROP_LOSSLESS:
		self->lossless = g_value_get_boolean(v);
		break;
	case PROP_START:
		self->start = g_value_get_enum(v);
		break;
	case PROP_REATTACH:
		self->reattach = g_value_get_boolean(v);
		break;
	case PROP_EOS_ON_CLOSE:
		self->eos_on_close = g_value_get_boolean(v);
		break;
	case PROP_QUOTA_POLICY:
		self->quota_policy = g_value_get_enum(v);
		break;
	case PROP_MAX_HELD:
		self->max_held = g_value_get_uint(v);
		break;
	case PROP_MAX_COPIES:
		self->max_copies = g_value_get_uint(v);
		break;
	case PROP_FRAMERATE:
		self->fps_n = gst_value_get_fraction_numerator(v);
		self->fps_d = gst_value_get_fraction_denominator(v);
		break;
	case PROP_STALL_AFTER:
		self->stall_after_ms = g_value_get_uint(v);
		break;
	case PROP_STATS_INTERVAL:
		self->stats_interval_ms = g_value_get_uint(v);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec);
		break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_framesrc_get_property(GObject *obj, guint id, GValue *v, GParamSpec *pspec)
{
	GstFrameSrc *self = GST_FRAMESRC(obj);
	if (id == PROP_DO_TIMESTAMP) {
		g_value_set_boolean(v, gst_base_src_get_do_timestamp(GST_BASE_SRC(self)));
		return;
	}
	GST_OBJECT_LOCK(self);
	fs_shared *sh = self->sh;
	switch (id) {
	case PROP_RING:
		g_value_set_string(v, self->ring);
		break;
	case PROP_SOCKET:
		g_value_set_string(v, self->socket);
		break;
	case PROP_CONSUMER_NAME:
		g_value_set_string(v, self->consumer_name);
		break;
	case PROP_LOSSLESS:
		g_value_set_boolean(v, self->lossless);
		break;
	case PROP_START:
		g_value_set_enum(v, self->start);
		break;
	case PROP_REATTACH:
		g_value_set_boolean(v, self->reattach);
		break;
	case PROP_EOS_ON_CLOSE:
		g_value_set_boolean(v, self->eos_on_close);
		break;
	case PROP_QUOTA_POLICY:
		g_value_set_enum(v, self->quota_policy);
		break;
	case PROP_MAX_HELD:
		g_value_set_uint(v, self->max_held);
		break;
	case PROP_MAX_COPIES:
		g_value_set_uint(v, self->max_copies);
		break;
	case PROP_FRAMERATE:
		gst_value_set_fraction(v, self->fps_n, self->fps_d);
		break;
	case PROP_STALL_AFTER:
		g_value_set_uint(v, self->stall_after_ms);
		break;
	case PROP_STATS_INTERVAL:
		g_value_set_uint(v, self->stats_interval_ms);
		break;
	case PROP_FRAMES_PUSHED:
		g_value_set_uint64(v, counter(sh, C_PUSHED));
		break;
	case PROP_FRAMES_COPIED:
		g_value_set_uint64(v, counter(sh, C_COPIED_QUOTA) + counter(sh, C_COPIED_STRIDE));
		break;
	case PROP_FRAMES_DROPPED:
		g_value_set_uint64(v, counter(sh, C_DROPPED));
		break;
	case PROP_FRAMES_LOST:
		g_value_set_uint64(v, counter(sh, C_LOST));
		break;
	case PROP_LEASES_HELD:
		g_value_set_uint64(v, counter(sh, C_HELD));
		break;
	case PROP_LEASES_REVOKED:
		g_value_set_uint64(v, counter(sh, C_REVOKED));
		break;
	case PROP_STATS:
		g_value_take_boxed(v, stats_structure(sh));
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec);
		break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_framesrc_finalize(GObject *obj)
{
	GstFrameSrc *self = GST_FRAMESRC(obj);
	g_free(self->ring);
	g_free(self->socket);
	g_free(self->consumer_name);
	shared_unref(self->sh);
	if (self->caps != NULL)
		gst_caps_unref(self->caps);
	G_OBJECT_CLASS(gst_framesrc_parent_class)->finalize(obj);
}

static void gst_framesrc_init(GstFrameSrc *self)
{
	self->ring = g_strdup(DEFAULT_RING);
	self->consumer_name = g_strdup(DEFAULT_CONSUMER_NAME);
	self->reattach = TRUE;
	self->eos_on_close = TRUE;
	self->quota_policy = GST_FRAMESRC_QUOTA_COPY;
	self->start = GST_FRAMESRC_START_NEXT;
	self->fps_n = 0;
	self->fps_d = 1;
	self->sh = shared_new();
	atomic_init(&self->meta_ok, 0);
	atomic_init(&self->flushing, 0);
	gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
	gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
	gst_pad_add_probe(GST_BASE_SRC_PAD(self), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, eos_probe, self, NULL);
}

#define RW_READY (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)
#define RO_STAT (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)

static void gst_framesrc_class_init(GstFrameSrcClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);
	GstElementClass *ec = GST_ELEMENT_CLASS(klass);
	GstBaseSrcClass *bc = GST_BASE_SRC_CLASS(klass);
	GstPushSrcClass *pc = GST_PUSH_SRC_CLASS(klass);

	GST_DEBUG_CATEGORY_INIT(framesrc_debug, "framesrc", 0, "framering ring source");

	oc->set_property = gst_framesrc_set_property;
	oc->get_property = gst_framesrc_get_property;
	oc->finalize = gst_framesrc_finalize;

	g_object_class_install_property(
		oc, PROP_RING,
		g_param_spec_string("ring", "Ring", "Name of the framering ring to read (its socket is RUNTIME_DIR/NAME.sock: "
				    "$FRAMERING_RUNTIME_DIR, else $XDG_RUNTIME_DIR/framering, else /run/framering for root)",
				    DEFAULT_RING, RW_READY));
	g_object_class_install_property(
		oc, PROP_SOCKET,
		g_param_spec_string("socket", "Socket", "Explicit path of the ring's attach socket; when set it wins over ring",
				    NULL, RW_READY));
	g_object_class_install_property(
		oc, PROP_CONSUMER_NAME,
		g_param_spec_string("consumer-name", "Consumer name",
				    "Name shown for framesrc in the ring's consumer table (ringctl show), at most 32 printable "
				    "ASCII bytes",
				    DEFAULT_CONSUMER_NAME, RW_READY));
	g_object_class_install_property(
		oc, PROP_LOSSLESS,
		g_param_spec_boolean("lossless", "Lossless",
				     "Read every frame in order (the producer drops new frames rather than overwrite one "
				     "framesrc has not passed, and evicts framesrc if it keeps the ring full for the "
				     "producer's evict-after); false: always the newest frame, skipping the rest (counted)",
				     FALSE, RW_READY));
	g_object_class_install_property(
		oc, PROP_START,
		g_param_spec_enum("start", "Start", "Where the first attach starts reading", start_get_type(),
				  GST_FRAMESRC_START_NEXT, RW_READY));
	g_object_class_install_property(
		oc, PROP_REATTACH,
		g_param_spec_boolean("reattach", "Re-attach",
				     "When the producer is gone (crashed, killed) or has evicted framesrc, wait for the ring "
				     "and attach again (a new producer's frames renegotiate caps if they changed); false: "
				     "end the stream (EOS) when the producer is gone, fail when evicted",
				     TRUE, RW_READY));
	g_object_class_install_property(
		oc, PROP_EOS_ON_CLOSE,
		g_param_spec_boolean("eos-on-close", "EOS on close",
				     "End the stream (EOS) once the producer has closed the ring cleanly and every frame "
				     "was read; false: wait for the ring's next producer as after a crash",
				     TRUE, RW_READY));
	g_object_class_install_property(
		oc, PROP_QUOTA_POLICY,
		g_param_spec_enum("quota-policy", "Quota policy",
				  "What to do with a frame when downstream already holds as many of framesrc's zero-copy "
				  "buffers as the ring's hold quota (or max-held) allows: framesrc never blocks the ring "
				  "and never exceeds the quota (that would get it evicted)",
				  quota_policy_get_type(), GST_FRAMESRC_QUOTA_COPY, RW_READY));
	g_object_class_install_property(
		oc, PROP_MAX_HELD,
		g_param_spec_uint("max-held", "Max held",
				  "Most zero-copy buffers (ring frames) downstream may hold at once; beyond it quota-policy "
				  "applies (0: the ring's hold quota)",
				  0, 65535, 0, RW_READY));
	g_object_class_install_property(
		oc, PROP_MAX_COPIES,
		g_param_spec_uint("max-copies", "Max copies",
				  "Most copied buffers downstream may hold at once; with none free the frame is dropped "
				  "(counted in frames-dropped), never waited for (0: no limit)",
				  0, G_MAXUINT, 0, RW_READY));
	g_object_class_install_property(
		oc, PROP_FRAMERATE,
		gst_param_spec_fraction("framerate", "Frame rate",
					"Frame rate to put in the caps, and one frame period as latency (0/1: variable; "
					"the ring does not say)",
					0, 1, G_MAXINT, 1, 0, 1, RW_READY));
	g_object_class_install_property(
		oc, PROP_STALL_AFTER,
		g_param_spec_uint("stall-after", "Stall after",
				  "How old the producer's heartbeat may grow, in ms, before framesrc warns that it has "
				  "stalled (it keeps waiting; 0: libframering's default, 1000)",
				  0, G_MAXINT32, 0, RW_READY));
	g_object_class_install_property(
		oc, PROP_STATS_INTERVAL,
		g_param_spec_uint("stats-interval", "Stats interval",
				  "Post the stats as a \"framesrc-stats\" element message every this many ms while "
				  "PLAYING (0: only at end of stream)",
				  0, G_MAXUINT, 0, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
	/* GstBaseSrc's property, installed again to say what it means here. */
	g_object_class_install_property(
		oc, PROP_DO_TIMESTAMP,
		g_param_spec_boolean("do-timestamp", "Do timestamp",
				     "Stamp each buffer with the pipeline running time at which framesrc pushes it; false: "
				     "with the frame's capture time (its CLOCK_MONOTONIC timestamp moved onto the pipeline "
				     "clock, as running time)",
				     FALSE, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
	g_object_class_install_property(
		oc, PROP_FRAMES_PUSHED,
		g_param_spec_uint64("frames-pushed", "Frames pushed", "Buffers pushed (zero-copy and copied)", 0, G_MAXUINT64,
				    0, RO_STAT));
	g_object_class_install_property(
		oc, PROP_FRAMES_COPIED,
		g_param_spec_uint64("frames-copied", "Frames copied",
				    "Buffers pushed as copies: the hold quota was reached (quota-policy=copy), or the ring's "
				    "row stride is not GStreamer's and downstream takes no GstVideoMeta",
				    0, G_MAXUINT64, 0, RO_STAT));
	g_object_class_install_property(
		oc, PROP_FRAMES_DROPPED,
		g_param_spec_uint64("frames-dropped", "Frames dropped",
				    "Frames framesrc dropped: the hold quota was reached (quota-policy=drop), or no copy "
				    "buffer was free (max-copies)",
				    0, G_MAXUINT64, 0, RO_STAT));
	g_object_class_install_property(
		oc, PROP_FRAMES_LOST,
		g_param_spec_uint64("frames-lost", "Frames lost",
				    "Frames missing between pushed buffers: skipped (lossy), missed (overwritten first), "
				    "dropped or rejected by framesrc, and lost by the producer before publishing; the "
				    "buffer after each gap carries DISCONT",
				    0, G_MAXUINT64, 0, RO_STAT));
	g_object_class_install_property(
		oc, PROP_LEASES_HELD,
		g_param_spec_uint64("leases-held", "Leases held",
				    "Zero-copy buffers alive now: each holds its ring slot until its last reference goes",
				    0, G_MAXUINT64, 0, RO_STAT));
	g_object_class_install_property(
		oc, PROP_LEASES_REVOKED,
		g_param_spec_uint64("leases-revoked", "Leases revoked",
				    "Zero-copy buffers released after an eviction had revoked their lease (their frame "
				    "could be overwritten while downstream held it); each batch is also posted as a warning",
				    0, G_MAXUINT64, 0, RO_STAT));
	g_object_class_install_property(
		oc, PROP_STATS,
		g_param_spec_boxed("stats", "Statistics",
				   "All counters as a framesrc-stats structure: pushed, zero-copy, copied-quota, "
				   "copied-stride, dropped, skipped, missed, rejected, producer-drops, lost, discont, held, "
				   "released, revoked, revoked-torn, evictions, reattaches, stalls, caps-changes (also posted "
				   "as an element message at end of stream and every stats-interval)",
				   GST_TYPE_STRUCTURE, RO_STAT));

	gst_element_class_set_static_metadata(
		ec, "framering ring source", "Source/Video",
		"Reads frames from a framering ring (shared memory) without copying them: each buffer wraps the ring "
		"slot read-only and holds a lease on it until its last reference is dropped. Caps follow the frames "
		"(video/x-raw GRAY8, GRAY16_LE for Mono10/12/16 with the sample in the low bits, RGB, BGR, YUY2, UYVY "
		"full-range BT.601; video/x-bayer for 8-bit Bayer; packed Mono10p/12p and 16-bit Bayer before "
		"GStreamer 1.24 are refused) and are renegotiated when they change. PTS is the capture time as "
		"pipeline running time (do-timestamp=true: the time of arrival instead); offset is the ring sequence "
		"number; DISCONT marks gaps (frames-lost). Stalls, a vanished producer, an eviction and revoked leases "
		"are posted as warnings.",
		"framering");

	GstCaps *tmpl = fs_template_caps();
	gst_element_class_add_pad_template(ec, gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, tmpl));
	gst_caps_unref(tmpl);

	bc->start = gst_framesrc_start;
	bc->stop = gst_framesrc_stop;
	bc->unlock = gst_framesrc_unlock;
	bc->unlock_stop = gst_framesrc_unlock_stop;
	bc->get_caps = gst_framesrc_get_caps;
	bc->negotiate = gst_framesrc_negotiate;
	bc->decide_allocation = gst_framesrc_decide_allocation;
	bc->query = gst_framesrc_query;
	pc->create = gst_framesrc_create;

	gst_type_mark_as_plugin_api(quota_policy_get_type(), 0);
	gst_type_mark_as_plugin_api(start_get_type(), 0);
}

static gboolean plugin_init(GstPlugin *plugin)
{
	return gst_element_register(plugin, "framesrc", GST_RANK_NONE, GST_TYPE_FRAMESRC);
}

#ifndef FS_VERSION
#define FS_VERSION "0.1.0"
#endif
#define PACKAGE "framering"

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, framering, "framering: read frames from a framering ring",
		  plugin_init, FS_VERSION, GST_LICENSE_UNKNOWN, "framering", "https://github.com/framering/framering")
