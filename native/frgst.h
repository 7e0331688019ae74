/*
 * frgst.h - a GStreamer pipeline as a framering frame grabber.
 *
 * frg_open runs a GStreamer source description (anything that ends in raw
 * video: "videotestsrc ! video/x-raw,format=GRAY8", "v4l2src",
 * "filesrc location=x.mkv ! decodebin ! videoconvert") terminated by this
 * library's own sink element, "frameringsink", and gives it the buffer
 * semantics of frsdk.h: the application ANNOUNCES memory it owns (ring
 * slots) or asks for ALLOCATED private buffers, QUEUES them, DEQUEUES
 * filled ones and REQUEUES or DETACHES them.
 *
 * Zero-copy: the sink answers GStreamer's allocation query with a buffer
 * pool of its own whose buffers wrap the queued memory
 * (gst_memory_new_wrapped with a destroy notify), so an upstream element
 * that uses the downstream pool (videotestsrc, videoconvert, decoders'
 * output) writes the frame straight into a queued buffer. A buffer that
 * reaches the sink in memory of its own (the element ignored the pool) is
 * copied once into a queued buffer and counted in frg_counters.copies.
 *
 * Buffer states and who may write the memory:
 *
 *   IDLE       with the application (announced, detached, given back by
 *              stop)                                  -> the application
 *   QUEUED     in the input pool                      -> nobody
 *   LENT       wrapped in a GstMemory the pool handed upstream
 *                                                     -> GStreamer
 *   FILLING    the sink copies a frame into it        -> the sink
 *   FILLED     in the output queue                    -> nobody
 *   DELIVERED  dequeued by the application            -> nobody (read)
 *
 * Independently of its state, a buffer is "at home" when no GstMemory over
 * it exists. The pool hands upstream only QUEUED buffers at home, and the
 * sink copies only into QUEUED buffers at home, so memory that GStreamer
 * may still reference (an element keeping a buffer it pushed) is never
 * written again until the last reference is gone. A LENT buffer whose
 * memory is freed without reaching the sink (an element dropped it) goes
 * back to QUEUED. When a frame reaches the sink in a LENT buffer, the sink
 * keeps a reference and marks the memory read-only (GST_MEMORY_FLAG_READONLY),
 * so an element that still holds the buffer can no longer write it in
 * place (GStreamer copies instead); the reference is dropped when the
 * application requeues or detaches the frame.
 *
 * Stop sets the pipeline to NULL (every streaming thread joined) and waits
 * until every buffer not DELIVERED is at home; close also destroys the
 * pipeline and waits for the rest. After frg_close returns, nothing in
 * GStreamer references announced memory, unless an element leaked a
 * reference: frg_close then reports FRG_ERR_BUSY and never unmaps the
 * allocated memory concerned.
 *
 * Frames: ids count every frame that reached the sink after start
 * (delivered, underrun, or lost for a cause counted below), plus one for
 * each discontinuity upstream (a buffer flagged DISCONT other than the
 * first: at least one frame lost before the sink, counted in
 * discont_gaps), so gaps in the ids the application sees are losses. A live pipeline (NO_PREROLL) never
 * waits for a buffer: a frame arriving with no queued buffer at home is an
 * underrun. A non-live pipeline (a file, videotestsrc) is paced by the
 * input pool: upstream waits in the pool (or the sink waits to copy) until
 * a buffer is queued, so it never underruns.
 *
 * Threading: every function may be called from any thread. GStreamer's
 * streaming threads run the pool and the sink; they never call back into
 * the application. frg_close must not race with other calls on the same
 * device (the Go wrapper serializes it).
 *
 * Every function returns an frg status: 0 or a negative code equal to the
 * Go package's Status values (frsdk.h), plus FRG_ERR_PIPELINE (see
 * frg_last_error for the text).
 */
#ifndef FRGST_H
#define FRGST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
	FRG_OK = 0,
	FRG_ERR_INVALID_HANDLE = -1,
	FRG_ERR_INVALID_ARGUMENT = -2,
	FRG_ERR_BUSY = -3,
	FRG_ERR_NOT_STARTED = -4,
	FRG_ERR_TIMEOUT = -5,
	FRG_ERR_UNKNOWN_BUFFER = -6,
	FRG_ERR_BUFFER_STATE = -7,
	FRG_ERR_OVERLAP = -8,
	FRG_ERR_BUFFER_SIZE = -9,
	FRG_ERR_FORMAT = -10,
	FRG_ERR_GEOMETRY = -11,
	FRG_ERR_NO_MEMORY = -12,
	FRG_ERR_RESOURCE = -13,
	/* The pipeline failed (parse error, element error, refused caps): the
	 * text is in frg_last_error. */
	FRG_ERR_PIPELINE = -100,
};

#define FRG_MAX_BUFFERS 4096

/* Frame statuses (native.FrameStatus). */
enum { FRG_FRAME_COMPLETE = 0 };

/* Frame flags, bits 16-31 of native.FrameInfo.Flags (the source's own). */
#define FRG_FLAG_DISCONT (1u << 16) /* GST_BUFFER_FLAG_DISCONT: a gap upstream */
#define FRG_FLAG_COPIED (1u << 17)  /* the sink copied the frame into the buffer */

typedef struct frg_dev frg_dev;

/* What the pipeline negotiated: filled by frg_open. */
typedef struct {
	char media[32];  /* "video/x-raw" or "video/x-bayer" */
	char format[32]; /* the caps' format string: "GRAY8", "rggb", ... */
	uint32_t width, height;
	uint32_t stride;    /* bytes per row, GStreamer's default layout */
	uint32_t row_bytes; /* bytes of a row that carry pixels */
	uint64_t size;      /* stride * height: one frame */
	int32_t fps_n, fps_d;
	int32_t live; /* the pipeline is live (NO_PREROLL) */
	int32_t reserved;
} frg_caps;

typedef struct {
	uint64_t buffer;
	uint64_t frame_id;
	int64_t timestamp_ns; /* CLOCK_MONOTONIC: see frg_open */
	uint64_t pts;         /* the buffer's PTS, ns; 0 if it had none */
	uint64_t length;      /* bytes of the frame at the start of the buffer */
	int32_t status;
	uint32_t flags;
} frg_frame_info;

typedef struct {
	uint64_t delivered;     /* frames moved to the output queue */
	uint64_t underruns;     /* live: no queued buffer at home for a frame */
	uint64_t discarded;     /* filled, dropped from the output queue by stop */
	uint64_t next_frame_id; /* the id the next frame will carry */
	uint64_t copies;        /* frames the sink copied (upstream ignored the pool) */
	uint64_t size_mismatch; /* buffers too small for the negotiated frame */
	uint64_t incomplete;    /* buffers flagged CORRUPTED upstream */
	uint64_t source_errors; /* GAP buffers, buffers that could not be mapped */
	uint64_t discont_gaps;  /* DISCONT after the first buffer: frames lost upstream (at least one each) */
	uint32_t queued, awaiting, held, announced;
	uint32_t in_gst; /* buffers GStreamer references (not at home) */
	uint32_t reserved;
} frg_counters;

/* frg_init initializes GStreamer and registers frameringsink; it may be
 * called more than once. On failure err receives the reason. */
int frg_init(char *err, size_t errlen);

/* frg_open parses "DESC ! frameringsink", restricts the sink's caps to
 * allowed (a caps string: the formats the application can describe), sets
 * the pipeline to PAUSED (a live pipeline, which negotiates only once
 * playing in general, to PLAYING: its first frame waits in the sink, and
 * the ones after it upstream, until frg_start) and waits up to timeout_ns
 * for caps. On success *out is the
 * device and *caps what was negotiated; on failure err says why.
 *
 * Timestamps: for a live pipeline, the buffer's PTS as a running time plus
 * the pipeline's base time, converted from the pipeline clock to
 * CLOCK_MONOTONIC by the clocks' offset at arrival (exact for GStreamer's
 * default monotonic system clock), and never later than the arrival; for a
 * non-live pipeline, which runs as fast as buffers are queued, and for
 * buffers without PTS, the CLOCK_MONOTONIC time the frame reached the sink. */
int frg_open(const char *desc, const char *allowed, int64_t timeout_ns, frg_dev **out, frg_caps *caps,
             char *err, size_t errlen);

/* frg_announce lends [base, base+size) to the device; size must hold a
 * frame and the memory must stay mapped until revoked or closed. */
int frg_announce(frg_dev *d, void *base, uint64_t size, uint64_t *id);
/* frg_allocate makes a private buffer (an anonymous mapping the device
 * owns, unmapped at revoke or close). */
int frg_allocate(frg_dev *d, uint64_t size, uint64_t *id, void **base);
/* frg_revoke takes back an IDLE buffer at home. */
int frg_revoke(frg_dev *d, uint64_t id);
int frg_queue(frg_dev *d, uint64_t id);
/* frg_requeue: DELIVERED -> QUEUED; frg_detach: DELIVERED -> IDLE. */
int frg_requeue(frg_dev *d, uint64_t id);
int frg_detach(frg_dev *d, uint64_t id);

/* frg_start sets the pipeline PLAYING and lets frames in. */
int frg_start(frg_dev *d);
/* frg_stop stops the pipeline (NULL), gives every QUEUED, LENT and FILLED
 * buffer back IDLE (FILLED ones are counted discarded) and waits until
 * GStreamer references none of them; DELIVERED ones stay leased. It
 * returns FRG_ERR_BUSY if some stayed referenced past a bound. */
int frg_stop(frg_dev *d);

/* frg_dequeue waits up to timeout_ns (< 0: without bound) for a filled
 * frame. FRG_ERR_TIMEOUT: none in time; FRG_ERR_NOT_STARTED: not running
 * (stopped, or the stream ended: end of stream, after its last frame);
 * FRG_ERR_PIPELINE: the pipeline failed (after its last frame);
 * FRG_ERR_INVALID_HANDLE: the device is closing. */
int frg_dequeue(frg_dev *d, int64_t timeout_ns, frg_frame_info *out);

void frg_get_counters(frg_dev *d, frg_counters *out);
/* frg_last_error copies the pipeline's first error text into buf. */
void frg_last_error(frg_dev *d, char *buf, size_t len);

/* frg_shutdown stops the device and marks it closed: every waiting and
 * later call fails with FRG_ERR_INVALID_HANDLE. */
int frg_shutdown(frg_dev *d);
/* frg_close destroys the pipeline, waits until GStreamer references no
 * buffer, unmaps allocated buffers and releases the device. Nothing else
 * may run on d concurrently or afterwards. */
int frg_close(frg_dev *d);

#ifdef __cplusplus
}
#endif

#endif /* FRGST_H */
