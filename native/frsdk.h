/*
 * frsdk.h - the simulated frame-grabber SDK of framering.
 *
 * A small C library with the buffer semantics of GenICam GenTL data streams,
 * V4L2 streaming I/O and Aravis streams:
 *
 *   - the application ANNOUNCES buffers it owns (or asks the device to
 *     ALLOCATE private ones), and QUEUES them into the device's input pool;
 *   - an acquisition thread inside the SDK takes the oldest queued buffer
 *     when a frame is due, writes the frame into it, stamps an info record
 *     (frame id, CLOCK_MONOTONIC timestamp, status) and moves it to the
 *     output queue;
 *   - a frame that is due while the input pool is empty is LOST: the
 *     underrun counter grows and the frame id is consumed, so the ids the
 *     application sees show the gap;
 *   - the application DEQUEUES filled buffers and either REQUEUES them (back
 *     to the input pool) or DETACHES them (back to the application, which may
 *     queue or revoke them later).
 *
 * Buffer states, and the only transitions the SDK performs:
 *
 *          announce / allocate                  queue
 *      ---------------------------> ANNOUNCED ----------> QUEUED <-----+
 *                                   |  ^   ^                |          |
 *           revoke (buffer gone) <--+  |   |  stop          | frame    |
 *                                      |   +----------------+ due      |
 *                                      |   |  stop          v          |
 *                               detach |   +------------- FILLING      |
 *                                      |   |  (discarded)   |          |
 *                                      |   |                v          |
 *                                      |   +------------- OUTPUT       |
 *                                      |                    | dequeue  |
 *                                      |                    v          |
 *                                      +---------------- DELIVERED ----+
 *                                                              requeue
 *
 * stop joins the acquisition thread first, so a FILLING buffer becomes
 * OUTPUT and is then discarded with the rest of the output queue.
 *
 * Every function returns an fr_status; misuse (unknown or stale handles and
 * buffer ids, a buffer in the wrong state, overlapping or too small memory,
 * calls after fr_close) is reported with a negative code and never crashes.
 * Handles and buffer ids carry generation counters, so a stale one is
 * refused rather than aliasing a newer object.
 *
 * Threading: every function may be called from any thread, concurrently.
 * fr_close may race with calls on the same handle: those calls either
 * complete before the device is freed or fail with FR_ERR_INVALID_HANDLE.
 *
 * Memory: the SDK never frees announced memory; the application must keep
 * it mapped and writable until the buffer is revoked or the device closed
 * (fr_close revokes every buffer before returning). Allocated buffers are
 * private anonymous mappings owned by the device and unmapped by
 * fr_revoke_buffer or fr_close.
 *
 * All structs below are part of the ABI: fixed-width fields, explicit
 * padding, layouts asserted by the Go wrapper's tests.
 */
#ifndef FRSDK_H
#define FRSDK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits. */
#define FR_MAX_DEVICES 64        /* devices open at once, per process */
#define FR_MAX_BUFFERS 4096      /* buffers announced at once, per device */
#define FR_MAX_DIMENSION 65536   /* width and height (frame.MaxDimension) */
#define FR_MAX_STRIDE (65536 * 4)
#define FR_MAX_FRAME_RATE 1e6    /* frames per second */
#define FR_STAMP_SIZE 32         /* bytes of the pattern stamp (frame.StampSize) */

/* PFNC pixel format codes: the formats of frame/format.go's table, which
 * the pattern (LAYOUT.md Appendix A) is defined for. Samples of the 16-bit
 * formats are little-endian; "P" formats are PFNC's LSB-first packing,
 * "_PACKED" ones GigE Vision's pairs of pixels in three bytes. */
#define FR_PFNC_MONO8 0x01080001u
#define FR_PFNC_MONO10 0x01100003u
#define FR_PFNC_MONO12 0x01100005u
#define FR_PFNC_MONO16 0x01100007u
#define FR_PFNC_MONO10P 0x010A0046u
#define FR_PFNC_MONO12P 0x010C0047u
#define FR_PFNC_MONO10_PACKED 0x010C0004u /* GigE Vision packing */
#define FR_PFNC_MONO12_PACKED 0x010C0006u /* GigE Vision packing */
#define FR_PFNC_BAYER_GR8 0x01080008u
#define FR_PFNC_BAYER_RG8 0x01080009u
#define FR_PFNC_BAYER_GB8 0x0108000Au
#define FR_PFNC_BAYER_BG8 0x0108000Bu
#define FR_PFNC_BAYER_GR16 0x0110002Eu
#define FR_PFNC_BAYER_RG16 0x0110002Fu
#define FR_PFNC_BAYER_GB16 0x01100030u
#define FR_PFNC_BAYER_BG16 0x01100031u
#define FR_PFNC_RGB8 0x02180014u
#define FR_PFNC_BGR8 0x02180015u
#define FR_PFNC_YUV422_8 0x02100032u      /* Y0 U Y1 V */
#define FR_PFNC_YUV422_8_UYVY 0x0210001Fu /* U Y0 V Y1 */

/* fr_status values. Zero is success, every error is negative. */
typedef int32_t fr_status;
enum {
	FR_OK = 0,
	FR_ERR_INVALID_HANDLE = -1,   /* unknown, stale or closed device handle */
	FR_ERR_INVALID_ARGUMENT = -2, /* NULL pointer, bad flag or rate, address overflow */
	FR_ERR_BUSY = -3,             /* acquisition running (or stopping) */
	FR_ERR_NOT_STARTED = -4,      /* dequeue while, or until, acquisition is stopped */
	FR_ERR_TIMEOUT = -5,          /* dequeue timeout expired */
	FR_ERR_UNKNOWN_BUFFER = -6,   /* buffer id not announced on this device, or stale */
	FR_ERR_BUFFER_STATE = -7,     /* buffer not in the state the call needs */
	FR_ERR_OVERLAP = -8,          /* memory overlaps an announced buffer */
	FR_ERR_BUFFER_SIZE = -9,      /* buffer smaller than a frame (or zero) */
	FR_ERR_FORMAT = -10,          /* unknown pixel format */
	FR_ERR_GEOMETRY = -11,        /* impossible width, height or stride */
	FR_ERR_NO_MEMORY = -12,       /* allocation failed */
	FR_ERR_RESOURCE = -13         /* too many devices or buffers, thread creation failed */
};

/* Frame status in fr_frame_info.status. */
enum {
	FR_FRAME_COMPLETE = 0,  /* every byte of the frame was written */
	FR_FRAME_INCOMPLETE = 1 /* reserved for real devices (lost packets); the simulator never sets it */
};

/* Flags in fr_config.flags. */
enum {
	FR_CONFIG_DEFECTS = 1u << 0 /* inject the pattern's defects (frame.Defects) */
};

typedef uint64_t fr_handle;    /* 0 is never a valid handle */
typedef uint64_t fr_buffer_id; /* 0 is never a valid buffer id */

/* Device configuration: geometry, pixel format, rate and pattern options. */
typedef struct fr_config {
	uint32_t width;    /*  0: pixels per row, 1..FR_MAX_DIMENSION */
	uint32_t height;   /*  4: rows, 1..FR_MAX_DIMENSION */
	uint32_t stride;   /*  8: bytes per row, ceil(width*bits/8)..FR_MAX_STRIDE */
	uint32_t format;   /* 12: PFNC code */
	double frame_rate; /* 16: frames per second; 0 = paced by queued buffers */
	uint32_t flags;    /* 24: FR_CONFIG_* */
	uint32_t reserved; /* 28: must be zero */
} fr_config;           /* 32 bytes */

/* What the acquisition thread recorded about a filled buffer. */
typedef struct fr_frame_info {
	fr_buffer_id buffer;   /*  0: the buffer the frame is in */
	uint64_t frame_id;     /*  8: counts every due frame, delivered or lost */
	uint64_t timestamp_ns; /* 16: CLOCK_MONOTONIC when the frame was taken */
	uint64_t size;         /* 24: bytes written: stride*height */
	uint32_t width;        /* 32 */
	uint32_t height;       /* 36 */
	uint32_t stride;       /* 40 */
	uint32_t format;       /* 44 */
	int32_t status;        /* 48: FR_FRAME_* */
	uint32_t reserved;     /* 52: zero */
} fr_frame_info;           /* 56 bytes */

/* Counters. The first four count since fr_open; the last four are gauges. */
typedef struct fr_counters {
	uint64_t delivered;     /*  0: frames filled and moved to the output queue */
	uint64_t underruns;     /*  8: frames lost because no buffer was queued */
	uint64_t discarded;     /* 16: filled frames dropped from the output queue by stop */
	uint64_t next_frame_id; /* 24: id of the next due frame = delivered + underruns */
	uint32_t queued;        /* 32: buffers in the input pool */
	uint32_t awaiting;      /* 36: buffers in the output queue */
	uint32_t held;          /* 40: buffers dequeued by the application */
	uint32_t announced;     /* 44: buffers announced or allocated, in any state */
} fr_counters;              /* 48 bytes */

/* Open a device with cfg. The device starts stopped. */
fr_status fr_open(const fr_config *cfg, fr_handle *out);
/* Stop acquisition, revoke every buffer (unmapping allocated ones), wake
 * every waiter and free the device. The handle is invalid afterwards. */
fr_status fr_close(fr_handle h);

fr_status fr_get_config(fr_handle h, fr_config *out);
/* Only while stopped (FR_ERR_BUSY otherwise). Fails with FR_ERR_BUFFER_SIZE
 * if an announced buffer is too small for the new geometry. */
fr_status fr_set_config(fr_handle h, const fr_config *cfg);

/* Lend [base, base+size) to the device. size must hold a frame of the
 * current geometry; the range must not overlap another buffer. */
fr_status fr_announce_buffer(fr_handle h, void *base, uint64_t size, fr_buffer_id *out);
/* Allocate a device-private buffer of size bytes (page-aligned, zeroed). */
fr_status fr_allocate_buffer(fr_handle h, uint64_t size, fr_buffer_id *out, void **base_out);
/* Forget an ANNOUNCED buffer (unmapping it if the device allocated it). */
fr_status fr_revoke_buffer(fr_handle h, fr_buffer_id id);

/* ANNOUNCED -> QUEUED. */
fr_status fr_queue_buffer(fr_handle h, fr_buffer_id id);
/* DELIVERED -> QUEUED. */
fr_status fr_requeue_buffer(fr_handle h, fr_buffer_id id);
/* DELIVERED -> ANNOUNCED: the application keeps the filled buffer. */
fr_status fr_detach_buffer(fr_handle h, fr_buffer_id id);

/* Start the acquisition thread (FR_ERR_BUSY if running or stopping). */
fr_status fr_start(fr_handle h);
/* Stop and join the acquisition thread; every QUEUED and OUTPUT buffer goes
 * back to ANNOUNCED (output frames count as discarded). DELIVERED buffers
 * stay with the application. Stopping a stopped device succeeds. */
fr_status fr_stop(fr_handle h);

/* Take the oldest filled buffer. timeout_ns < 0 waits until a frame, stop or
 * close; 0 polls. Returns FR_ERR_NOT_STARTED if acquisition is not running
 * and nothing awaits, or stops during the wait. */
fr_status fr_dequeue(fr_handle h, int64_t timeout_ns, fr_frame_info *out);

fr_status fr_get_counters(fr_handle h, fr_counters *out);

/* Write the test pattern of frame_id for cfg into dst (the simulator's
 * frame writer, exposed so that tests can compare it with other
 * implementations of the pattern). */
fr_status fr_fill_pattern(const fr_config *cfg, void *dst, uint64_t size, uint64_t frame_id);

/* A static, human-readable description of s. */
const char *fr_status_string(fr_status s);

/* ABI self-description: entry i (0 <= i < fr_abi_count()) is a name such as
 * "offsetof(fr_config, stride)" and its value. */
int fr_abi_count(void);
const char *fr_abi_name(int i);
uint64_t fr_abi_value(int i);

#ifdef __cplusplus
}
#endif

#endif /* FRSDK_H */
