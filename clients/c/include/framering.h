/*
 * framering.h - libframering, the C consumer library of a framering ring.
 *
 * A framering ring is a set of image frames in shared memory, made by one
 * producer process; any number of consumer processes attach to it by name
 * and read its frames in place, without copying them. This library is the
 * consumer side of docs/LAYOUT.md (layout version 2), written from that
 * specification: attach, wait for frames, borrow them (a lease: the
 * producer will not reuse the frame's slot while you hold it) or peek at
 * them (optimistically, validated afterwards), and detach.
 *
 * A complete consumer:
 *
 *     fr_options o;
 *     fr_options_init(&o);
 *     o.ring = "line1";
 *     o.name = "inspect";
 *     fr_ring *r;
 *     int rc = fr_attach(&o, &r);
 *     if (rc < 0) { fprintf(stderr, "attach: %s\n", fr_strerror(rc)); return 1; }
 *     for (;;) {
 *         fr_lease l;
 *         fr_frame f;
 *         rc = fr_next(r, 1000, &l, &f);
 *         if (rc == FR_ERR_TIMEOUT) continue;
 *         if (rc < 0) break;                 // closed, producer gone, evicted ...
 *         process(f.data, f.width, f.height, f.stride, f.format);
 *         fr_release(r, l);                  // f.data is invalid from here on
 *     }
 *     fr_detach(r);
 *
 * Build with `pkg-config --cflags --libs framering`.
 *
 * Conventions of this header
 *
 *   - Every function returning int returns FR_OK (0) or a negative
 *     FR_ERR_* code; fr_strerror() names it. No function sets a global
 *     error state; FR_ERR_SYSTEM leaves errno as the failing call set it.
 *   - Handles are opaque: an fr_ring is a pointer to an attachment, an
 *     fr_lease a 64-bit value naming one borrowed frame (never 0).
 *   - "Owner" says who frees or releases what a function hands out, and
 *     "valid until" how long a pointer may be dereferenced.
 *   - "Thread safety" says which calls may run at the same time on the same
 *     fr_ring. Different fr_ring handles are independent.
 *   - Nothing here installs signal handlers, starts threads or keeps global
 *     state. SIGPIPE is never raised (sends use MSG_NOSIGNAL).
 *   - An attachment belongs to the process that made it: a child process
 *     created by fork() must not use its parent's fr_ring (docs/LAYOUT.md
 *     6.3); every descriptor is close-on-exec.
 *
 * Validation: everything the library maps or receives (the welcome
 * message, both segments' seals and sizes, both headers, every index
 * entry, slot number and frame length it later reads) is checked before
 * use, exactly as the Go reader (ringbuf) does. A hostile or stale segment
 * is reported as FR_ERR_CORRUPT, FR_ERR_INCOMPATIBLE or FR_ERR_PROTOCOL,
 * never a crash.
 */
#ifndef FRAMERING_H
#define FRAMERING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* FR_API marks the library's exported functions; everything else in the
 * shared object is hidden (-fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define FR_API __attribute__((visibility("default")))
#else
#define FR_API
#endif

/* The ring layout version this library speaks (docs/LAYOUT.md 13). */
#define FR_LAYOUT_VERSION 2
/* The version of this header's types and functions. Bumped whenever a
 * struct changes size, a function its signature, or a function is added
 * (2: fr_latency_thread); check it against fr_abi_version() when loading
 * the library dynamically. The shared object's major version (.so.0)
 * changes only when an existing function or struct does. */
#define FR_ABI_VERSION 2

/* ---------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------- */

enum fr_error {
	FR_OK = 0,
	/* An argument is invalid: a NULL pointer, an unknown option value, a
	 * ring name that is not [A-Za-z0-9][A-Za-z0-9._-]{0,63}, a consumer
	 * name longer than 32 bytes or not printable ASCII, a socket path
	 * longer than 107 bytes, an fr_frame that did not come from fr_peek. */
	FR_ERR_INVALID = -1,
	/* fr_attach: no ring of that name exists (no socket at its path). */
	FR_ERR_NO_SUCH_RING = -2,
	/* The producer is gone: its socket is left over from a crash
	 * (connection refused), or its connection ended without closing the
	 * ring. Detach; a new producer of the same name may come (attach
	 * again: it has a new epoch and starts at sequence 1). */
	FR_ERR_PRODUCER_GONE = -3,
	/* fr_attach: the producer accepted the connection but did not answer
	 * within the handshake timeout: it is stopped (SIGSTOP) or hung. */
	FR_ERR_NOT_RESPONDING = -4,
	/* fr_attach: the producer refused us: our uid/gid is not in its allow
	 * list, or the socket's permissions forbid connecting. */
	FR_ERR_DENIED = -5,
	/* fr_attach: all 64 consumer table entries are in use. */
	FR_ERR_FULL = -6,
	/* fr_attach: the producer refused the request as malformed, or
	 * answered with a status this library does not know. */
	FR_ERR_REFUSED = -7,
	/* Another layout version or magic: a message or segment this library
	 * cannot read (the producer speaks another version, or it is not a
	 * framering ring at all). */
	FR_ERR_INCOMPATIBLE = -8,
	/* A segment is inconsistent: seals missing, sizes or offsets out of
	 * bounds, values that cannot be. Never used for a frame that merely
	 * changed (that is FR_ERR_OVERWRITTEN). */
	FR_ERR_CORRUPT = -9,
	/* The peer broke the attach protocol: a malformed welcome, a wrong
	 * number of descriptors, sizes or epochs that disagree. */
	FR_ERR_PROTOCOL = -10,
	/* The ring was closed by its producer (and every published frame has
	 * been read, for fr_next), or this fr_ring is being detached. */
	FR_ERR_CLOSED = -11,
	/* The producer evicted this consumer (docs/LAYOUT.md 11.4): it fell
	 * behind as a lossless consumer, held more slots than the ring's hold
	 * quota, or its holds kept the producer from every slot. Its leases are
	 * revoked. Release them, detach, and attach again if you want more. */
	FR_ERR_EVICTED = -12,
	/* fr_release / fr_lease_check: the consumer was evicted while it held
	 * this lease, but the frame is still intact: what was read through the
	 * lease is good, though the slot may be reused at any moment. */
	FR_ERR_REVOKED = -13,
	/* fr_release / fr_lease_check: the lease was revoked and the frame
	 * changed under it: whatever was read through it may be torn. Discard
	 * it. */
	FR_ERR_REVOKED_OVERWRITTEN = -14,
	/* fr_borrow / fr_next: this consumer already holds as many slots as the
	 * ring's hold quota allows (fr_info.hold_quota). Release one first.
	 * Nothing was written to shared memory. */
	FR_ERR_TOO_MANY_HELD = -15,
	/* fr_borrow / fr_next: this fr_ring already has fr_options.max_leases
	 * leases outstanding. */
	FR_ERR_TOO_MANY_LEASES = -16,
	/* The lease was already released (or was never one of this ring's). */
	FR_ERR_RELEASED = -17,
	/* fr_borrow / fr_peek: that sequence number has not been published yet
	 * (or is 0, which never is). */
	FR_ERR_NOT_PUBLISHED = -18,
	/* The frame is gone: its slot was reused before we could take it, or
	 * it changed while it was read (fr_peek_check). */
	FR_ERR_OVERWRITTEN = -19,
	/* fr_next / fr_wait: nothing arrived within the timeout. */
	FR_ERR_TIMEOUT = -20,
	/* fr_next / fr_wait with FR_OPT_INTERRUPTIBLE: a signal handler ran
	 * while waiting. Nothing changed; call again (after handling it). */
	FR_ERR_INTERRUPTED = -21,
	/* The call needs a consumer (a table entry and a hold bit), and this
	 * fr_ring is an observer: observers can only peek. */
	FR_ERR_OBSERVER = -22,
	/* fr_peek_copy: the buffer is smaller than the frame; the fr_frame
	 * says how long the frame is. */
	FR_ERR_TOO_SMALL = -23,
	/* Out of memory. */
	FR_ERR_NOMEM = -24,
	/* A system call failed unexpectedly; errno says why. */
	FR_ERR_SYSTEM = -25,
};

/* fr_strerror returns a static, human-readable description of an FR_OK
 * or FR_ERR_* code ("consumer evicted"), and "unknown error" for anything
 * else. Owner: the library; valid forever. Thread safety: any thread. */
FR_API const char *fr_strerror(int code);

/* fr_error_name returns the code's identifier ("FR_ERR_EVICTED"), or
 * "FR_ERR_UNKNOWN". Owner: the library; valid forever. Any thread. */
FR_API const char *fr_error_name(int code);

/* fr_abi_version returns FR_ABI_VERSION as the library was built. Any
 * thread. */
FR_API uint32_t fr_abi_version(void);

/* ---------------------------------------------------------------------
 * Attaching
 * ------------------------------------------------------------------- */

/* Roles (docs/LAYOUT.md 6.2). */
enum fr_role {
	/* A consumer gets a consumer table entry, may borrow frames (hold
	 * slots), and its counters show in `ringctl show`. The default. */
	FR_ROLE_CONSUMER = 1,
	/* An observer takes no entry and no holds and can only peek. */
	FR_ROLE_OBSERVER = 2,
};

/* Delivery modes of a consumer (ignored for an observer). */
enum fr_mode {
	/* fr_next returns the newest frame, counting the ones passed over as
	 * skipped. The producer never waits for a lossy consumer. The default. */
	FR_MODE_LOSSY = 1,
	/* fr_next returns every frame in order. The producer drops new frames
	 * rather than overwrite one a lossless consumer has not passed, and
	 * evicts a lossless consumer that keeps it from every slot too long. */
	FR_MODE_LOSSLESS = 2,
};

/* Option flags (fr_options.flags). */
enum fr_option_flag {
	/* fr_next and fr_wait return FR_ERR_INTERRUPTED when a signal handler
	 * interrupts their sleep, instead of sleeping on (for programs, and
	 * language runtimes such as Python's, that act on signals between
	 * calls). */
	FR_OPT_INTERRUPTIBLE = 1u << 0,
	/* Map the segments with MAP_POPULATE, so that no page fault happens
	 * on the first read of each page. */
	FR_OPT_PREFAULT = 1u << 1,
	/* A consumer's fr_next peeks instead of borrowing (docs/LAYOUT.md 9.6):
	 * it takes no hold and writes nothing per frame but its cursor, and the
	 * caller validates what it read with fr_peek_check. A lossless peeking
	 * consumer never misses a frame: its cursor, stored only when the next
	 * fr_next begins (after the caller's reads), keeps the producer off the
	 * frame until then. (Observers always peek.) */
	FR_OPT_PEEK = 1u << 2,
	/* Report FR_EVENT_SLEEP (every futex sleep) to fr_options.log: for
	 * tests and tracing. */
	FR_OPT_TRACE_SLEEP = 1u << 3,
};

/* Events reported to fr_options.log. */
enum fr_event {
	/* The producer's heartbeat stopped while it should be beating: it is
	 * stopped or hung (fr_get_health says FR_PRODUCER_STALLED). The library
	 * keeps waiting. Reported once per episode. */
	FR_EVENT_STALLED = 1,
	/* A stalled producer's heartbeat moves again. */
	FR_EVENT_RESUMED = 2,
	/* The producer said it evicted us (the message carries the reason). */
	FR_EVENT_EVICTED = 3,
	/* A waiting call is about to sleep on the ring's futex, its waiter bit
	 * set. Reported for every sleep, with FR_OPT_TRACE_SLEEP only. */
	FR_EVENT_SLEEP = 4,
};

/* fr_log_fn receives events, from the thread of the call that noticed
 * them (fr_next, fr_wait, fr_get_health), with no library lock held. msg is
 * owned by the library and valid only during the call. The callback may
 * call fr_get_health, fr_get_counters, fr_get_ring_stats and fr_get_info;
 * it must not call fr_detach. (A language binding whose callbacks can lose
 * a pending signal, such as Python's ctypes, should leave
 * FR_OPT_TRACE_SLEEP off: the other events are rare.) */
typedef void (*fr_log_fn)(void *arg, int event, const char *msg);

/* fr_options says how to attach. Initialise with fr_options_init (all
 * zero: every field's default), then set what you need. */
typedef struct fr_options {
	/* Which ring: by name (its socket is RUNTIME_DIR/NAME.sock, where
	 * RUNTIME_DIR is $FRAMERING_RUNTIME_DIR, else
	 * $XDG_RUNTIME_DIR/framering, else /run/framering for root, else
	 * $TMPDIR/framering-UID), or by an explicit socket path, which wins.
	 * NULL or "" name: "default". Copied by fr_attach. */
	const char *ring;
	const char *socket_path;
	/* The name shown in the consumer table (at most 32 printable ASCII
	 * bytes). NULL: "". Copied by fr_attach. */
	const char *name;
	/* FR_ROLE_CONSUMER (0 means this) or FR_ROLE_OBSERVER. */
	uint32_t role;
	/* FR_MODE_LOSSY (0 means this) or FR_MODE_LOSSLESS. */
	uint32_t mode;
	/* First sequence number wanted: 0 = the next frame published; 1 = the
	 * oldest frame the ring still has (a lossless consumer re-attaching to
	 * a restarted producer wants that); a value beyond the newest frame
	 * means the next one. Frames already overwritten count as missed.
	 * Consumers only; an observer starts with the next frame. */
	uint64_t start;
	/* Most leases outstanding at once (0: the ring's slot count). Leases
	 * on the same slot count once against the hold quota, but each is a
	 * lease here. */
	uint32_t max_leases;
	/* How long fr_attach waits for the producer's welcome, ms (0: 5000). */
	int32_t handshake_timeout_ms;
	/* How long a wait polls before it sleeps on the futex, ns (0: 20000).
	 * Negative: busy-poll, never sleep (costs a core, saves the wake-up
	 * latency). */
	int64_t spin_ns;
	/* The longest single futex sleep, ms (0: 100). A waiting call wakes at
	 * least this often to notice the producer's end, an eviction or a
	 * stall. Observers, which the producer never wakes, poll every 1 ms. */
	int32_t futex_timeout_ms;
	/* How old the producer's heartbeat may grow, while the ring runs and
	 * its source is not idle, before it counts as stalled, ms (0: 1000;
	 * never less than twice the ring's heartbeat period). */
	int32_t stall_after_ms;
	/* FR_OPT_* flags. */
	uint32_t flags;
	uint32_t reserved0;
	/* Optional event callback (see fr_log_fn) and its argument. */
	fr_log_fn log;
	void *log_arg;
	/* Optional: fr_attach writes a one-line explanation of a failure here
	 * (NUL-terminated, truncated to error_buf_size). Owner: the caller. */
	char *error_buf;
	size_t error_buf_size;
} fr_options;

/* fr_options_init sets every field to its default (zero). Any thread. */
FR_API void fr_options_init(fr_options *o);

/* Opaque attachment handle. */
typedef struct fr_ring fr_ring;

/* fr_attach connects to the ring's producer, receives and validates its
 * two shared-memory segments (docs/LAYOUT.md 6.3), maps them (the data
 * segment read-only), and stores a new handle in *out.
 *
 * Returns FR_OK, FR_ERR_INVALID (bad options), FR_ERR_NO_SUCH_RING,
 * FR_ERR_PRODUCER_GONE, FR_ERR_NOT_RESPONDING, FR_ERR_DENIED, FR_ERR_FULL,
 * FR_ERR_REFUSED, FR_ERR_CLOSED (the ring is closing), FR_ERR_INCOMPATIBLE,
 * FR_ERR_CORRUPT, FR_ERR_PROTOCOL, FR_ERR_NOMEM or FR_ERR_SYSTEM; on
 * failure *out is NULL and nothing is left open.
 *
 * Owner: the caller owns *out and must end it with fr_detach.
 * Thread safety: any thread; o is only read during the call. */
FR_API int fr_attach(const fr_options *o, fr_ring **out);

/* fr_detach ends the attachment. Threads waiting in fr_next or fr_wait on
 * r return FR_ERR_CLOSED. If leases are still outstanding, the
 * attachment stays (their frames stay held and mapped) until the last of
 * them is released with fr_release; then, and otherwise at once, the
 * library tells the producer goodbye (the bye message, so the producer
 * counts a detach, not a crash), closes the connection, unmaps both
 * segments and frees r.
 *
 * After fr_detach returns, r may be passed only to fr_release and
 * fr_lease_check, and only for leases still outstanding: once the last
 * is released, r is freed. Calls already in progress on other threads
 * when fr_detach is called are safe (they return FR_ERR_CLOSED or finish);
 * calls that start after it returned are not.
 *
 * Returns FR_OK, or FR_ERR_INVALID for NULL. Call it once per handle.
 * Thread safety: any thread, concurrently with any call in progress. */
FR_API int fr_detach(fr_ring *r);

/* fr_shutdown stops r without freeing it: every call waiting in fr_next
 * or fr_wait returns FR_ERR_CLOSED at once, and every later fr_next,
 * fr_wait and fr_borrow returns FR_ERR_CLOSED; fr_release, fr_lease_check,
 * fr_peek* and fr_get_* keep working, and r stays valid until fr_detach.
 * It is how one thread stops another that may be blocked in fr_next (or
 * about to call it) before detaching: shut down, join the thread, detach
 * (a GStreamer source's unlock, then stop). Idempotent.
 * Returns FR_OK, or FR_ERR_INVALID for NULL. Thread safety: any thread,
 * concurrently with anything. */
FR_API int fr_shutdown(fr_ring *r);

/* ---------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------- */

/* A lease: one borrowed frame. Opaque: a value naming the borrow, never
 * 0 (FR_NO_LEASE). It stays meaningful after its release, so that a
 * second fr_release is reported (FR_ERR_RELEASED), not a corruption. */
typedef uint64_t fr_lease;
#define FR_NO_LEASE ((fr_lease)0)

/* Descriptor flag bits (docs/LAYOUT.md 3.2). Bits 16-31 are the source's. */
#define FR_FLAG_PATTERN 0x1u  /* the payload is the test pattern (Appendix A) */
#define FR_FLAG_DEFECTS 0x2u  /* ... with injected defects */
#define FR_FLAG_REPLAYED 0x4u /* replayed from an archive: origin_* are set */

/* One cause of lost frames and how many (docs/LAYOUT.md 12). */
typedef struct fr_drop {
	uint32_t cause; /* loss cause code, 0..63 (7 underrun, 11 blocked, ...) */
	uint32_t reserved;
	uint64_t count; /* 0: unused entry */
} fr_drop;

/* A frame's metadata, as its slot descriptor carries it (docs/LAYOUT.md
 * 3.2), and where its bytes are. Filled by fr_next, fr_borrow, fr_peek and
 * fr_peek_copy; the caller owns the struct. */
typedef struct fr_frame {
	uint64_t seq;          /* ring sequence number: 1, 2, 3, ... no gaps */
	uint64_t frame_id;     /* the source's frame counter */
	int64_t timestamp_ns;  /* capture time, CLOCK_MONOTONIC */
	uint32_t width;        /* pixels */
	uint32_t height;       /* rows */
	uint32_t stride;       /* bytes per row */
	uint32_t format;       /* pixel format, GenICam PFNC code (Mono8 0x01080001 ...) */
	uint64_t length;       /* bytes at data; never more than the slot capacity */
	uint32_t flags;        /* FR_FLAG_* and the source's bits 16-31 */
	uint32_t slot;         /* the slot the frame is in */
	uint64_t device_timestamp; /* the camera's own timestamp, its unit; 0: none */
	uint64_t origin_epoch; /* replayed frames: the ring it was first published in */
	uint64_t origin_seq;   /* ... and its sequence number there */
	int64_t publish_ns;    /* when the producer published it, CLOCK_MONOTONIC */
	fr_drop drops_before[4]; /* frames lost just before this one, by cause */
	/* The payload: length bytes of read-only shared memory. Borrowed
	 * (fr_next for a consumer, fr_borrow): stable and valid until the
	 * lease is released. Peeked (fr_peek, fr_next for an observer): may
	 * change under the reader at any time; valid to read only if
	 * fr_peek_check succeeds afterwards. fr_peek_copy: the caller's buffer.
	 * Never write through it: the mapping is read-only (a write faults).
	 *
	 * width, height, stride and format are the producer's description of
	 * the bytes; the library does not check them against length. Check
	 * stride * (height - 1) + bytes of one row <= length before addressing
	 * rows with them. */
	const void *data;
	/* The slot's generation when the frame was read (fr_peek_check uses
	 * it; informative otherwise). */
	uint64_t generation;
} fr_frame;

/* fr_next returns the next frame by the ring's mode: lossless, every
 * sequence number in order; lossy, the newest frame published since the
 * last one, counting those passed over as skipped. Frames lost on the way
 * (overwritten before they could be taken) are counted as missed and never
 * returned. It waits up to timeout_ms (< 0: forever, 0: not at all) for a
 * frame to be published.
 *
 * A consumer borrows the frame: *lease is set and frame->data is stable
 * and valid until fr_release(r, *lease), which the caller must call. An
 * observer (or a consumer with FR_OPT_PEEK) peeks it: *lease is
 * FR_NO_LEASE and the caller must check what it read with
 * fr_peek_check(r, frame) afterwards; frame->data is not valid after the
 * next fr_next call.
 *
 * Returns FR_OK; FR_ERR_TIMEOUT; FR_ERR_INTERRUPTED (FR_OPT_INTERRUPTIBLE);
 * FR_ERR_CLOSED (the producer closed the ring and no frame is left, or r is
 * being detached); FR_ERR_PRODUCER_GONE; FR_ERR_EVICTED; FR_ERR_TOO_MANY_HELD
 * or FR_ERR_TOO_MANY_LEASES (release some first; nothing was counted and
 * the same frame comes next time); FR_ERR_CORRUPT. On error *lease is
 * FR_NO_LEASE.
 *
 * Thread safety: one thread at a time per fr_ring (it keeps the cursor);
 * fr_release, fr_lease_check, fr_borrow, fr_peek*, fr_wait, fr_get_* and
 * fr_detach may run on other threads meanwhile. */
FR_API int fr_next(fr_ring *r, int timeout_ms, fr_lease *lease, fr_frame *frame);

/* fr_wait waits until a frame newer than `after` is published and stores
 * the newest sequence number in *published (may be NULL). timeout_ms as
 * for fr_next. Returns FR_OK, FR_ERR_TIMEOUT, FR_ERR_INTERRUPTED,
 * FR_ERR_CLOSED, FR_ERR_PRODUCER_GONE or FR_ERR_EVICTED.
 * Thread safety: any thread, concurrently with anything. */
FR_API int fr_wait(fr_ring *r, uint64_t after, int timeout_ms, uint64_t *published);

/* fr_published returns the newest published sequence number (0 before
 * the first). Any thread. */
FR_API uint64_t fr_published(fr_ring *r);

/* fr_borrow takes a lease on frame seq (docs/LAYOUT.md 9.3): it records a
 * hold, then re-validates the slot, so a frame that was overwritten is
 * never returned. frame->data is stable and valid until fr_release(r,
 * *lease). Does not move fr_next's cursor or counters.
 *
 * Returns FR_OK, FR_ERR_NOT_PUBLISHED, FR_ERR_OVERWRITTEN,
 * FR_ERR_TOO_MANY_HELD (the hold quota; nothing was written),
 * FR_ERR_TOO_MANY_LEASES, FR_ERR_EVICTED, FR_ERR_PRODUCER_GONE,
 * FR_ERR_CLOSED (being detached), FR_ERR_OBSERVER or FR_ERR_CORRUPT.
 * Owner: the caller owns the lease and must release it.
 * Thread safety: any thread, concurrently with anything. */
FR_API int fr_borrow(fr_ring *r, uint64_t seq, fr_lease *lease, fr_frame *frame);

/* fr_release ends a lease. The producer may reuse the slot as soon as no
 * lease of any consumer holds it; every pointer obtained through the
 * lease is invalid from now on. The lease is released in every case but
 * FR_ERR_RELEASED. If the consumer was evicted while it held the lease,
 * fr_release says so: FR_ERR_REVOKED (the frame was intact to the end of
 * your reads) or FR_ERR_REVOKED_OVERWRITTEN (the frame changed: discard
 * what you computed from it); both count in fr_counters.revoked and in the
 * consumer table (revoked_seen).
 *
 * Returns FR_OK, FR_ERR_REVOKED, FR_ERR_REVOKED_OVERWRITTEN or
 * FR_ERR_RELEASED (already released, or not a lease of r).
 * Thread safety: any thread, concurrently with anything, including
 * fr_next waiting on another thread and after fr_detach (see there). */
FR_API int fr_release(fr_ring *r, fr_lease lease);

/* fr_lease_check tells whether everything read through the lease so far
 * is good (docs/LAYOUT.md 9.4): FR_OK while the lease holds;
 * FR_ERR_REVOKED if the consumer was evicted but the frame is still
 * intact (what was read is good; the frame may change from now on);
 * FR_ERR_REVOKED_OVERWRITTEN if the frame changed (discard what was read);
 * FR_ERR_RELEASED after release. It orders every read made before it
 * before its own checks. Writes nothing.
 * Thread safety: any thread, concurrently with anything. */
FR_API int fr_lease_check(fr_ring *r, fr_lease lease);

/* fr_peek reads frame seq optimistically, without a hold and without
 * writing to shared memory (docs/LAYOUT.md 9.2): it fills *frame, whose
 * data points at the slot's bytes, which the producer may overwrite at any
 * time. Read what you need, then call fr_peek_check(r, frame): only if it
 * returns FR_OK was what you read the frame. Bytes read from a peeked
 * frame may be torn: never use them to index memory without a bounds
 * check.
 *
 * Returns FR_OK, FR_ERR_NOT_PUBLISHED, FR_ERR_OVERWRITTEN or FR_ERR_CORRUPT.
 * Works for consumers and observers. Thread safety: any thread. */
FR_API int fr_peek(fr_ring *r, uint64_t seq, fr_frame *frame);

/* fr_peek_check validates a read of a peeked frame: FR_OK if the slot
 * still carries the same frame, unchanged, after every read made before
 * this call; FR_ERR_OVERWRITTEN if it changed (discard what you read;
 * counts in fr_counters.torn, as does a failed fr_peek_copy). FR_ERR_INVALID if frame did not come from
 * fr_peek/fr_next on r. Thread safety: any thread. */
FR_API int fr_peek_check(fr_ring *r, const fr_frame *frame);

/* fr_peek_copy copies frame seq into buf (cap bytes) and validates the
 * copy: on FR_OK, buf holds exactly the frame's length bytes as published
 * and frame->data == buf. The safe way to keep a frame without a hold.
 *
 * Returns FR_OK, FR_ERR_NOT_PUBLISHED, FR_ERR_OVERWRITTEN, FR_ERR_CORRUPT,
 * or FR_ERR_TOO_SMALL (frame->length says how much is needed; nothing was
 * copied). Owner: the caller owns buf. Thread safety: any thread. */
FR_API int fr_peek_copy(fr_ring *r, uint64_t seq, void *buf, size_t cap, fr_frame *frame);

/* ---------------------------------------------------------------------
 * Counters, health, information
 * ------------------------------------------------------------------- */

/* What this attachment did (fr_next's counts and the lease table). For a
 * consumer, delivered + skipped + missed = cursor - the cursor at attach:
 * every sequence number it passed counted once (docs/LAYOUT.md 12). */
typedef struct fr_counters {
	uint64_t delivered; /* frames fr_next returned */
	uint64_t skipped;   /* frames a lossy fr_next passed over for a newer one */
	uint64_t missed;    /* frames fr_next tried but found overwritten */
	uint64_t revoked;   /* leases fr_release found revoked */
	uint64_t torn;      /* fr_peek_check calls that found the frame changed */
	uint64_t held;      /* leases outstanding now */
	uint64_t cursor;    /* the next sequence number fr_next wants */
} fr_counters;

/* fr_get_counters fills *c. Any thread; each field is read atomically, the
 * set is not a snapshot. */
FR_API int fr_get_counters(fr_ring *r, fr_counters *c);

/* The producer, as this attachment judges it (docs/LAYOUT.md 8.4). */
enum fr_producer_state {
	FR_PRODUCER_RUNNING = 0, /* the ring runs and its acquisition loop beats */
	FR_PRODUCER_WAITING = 1, /* alive, its source idle (trigger, pause) or being reopened */
	FR_PRODUCER_STALLED = 2, /* its heartbeat stopped: stopped or hung; it may resume */
	FR_PRODUCER_CLOSED = 3,  /* the ring was closed cleanly */
	FR_PRODUCER_GONE = 4,    /* its connection ended without a close (crash, kill) */
};

/* Source states (docs/LAYOUT.md 8.4), as the ring's header carries them. */
enum fr_source_state {
	FR_SOURCE_STARTING = 0,
	FR_SOURCE_ACQUIRING = 1,
	FR_SOURCE_WAITING = 2,
	FR_SOURCE_LOST = 3,
	FR_SOURCE_STOPPED = 4,
};

typedef struct fr_health {
	uint32_t state;           /* enum fr_producer_state */
	uint32_t source_state;    /* enum fr_source_state (as stored; may be unknown) */
	int64_t heartbeat_age_ns; /* now - the producer's last heartbeat */
	uint32_t evicted;         /* 1 if the producer evicted this consumer */
	uint32_t reserved;
} fr_health;

/* fr_get_health fills *h from shared memory and the connection (it reads any
 * notes the producer sent). Any thread. */
FR_API int fr_get_health(fr_ring *r, fr_health *h);

/* fr_producer_state_name returns "running", "waiting for source",
 * "stalled", "closed", "gone", or "unknown". Static; any thread. */
FR_API const char *fr_producer_state_name(uint32_t state);

/* The attached ring's identity and geometry, fixed at attach. */
typedef struct fr_info {
	uint64_t epoch;           /* random identity of this producer run */
	uint32_t producer_pid;    /* in the producer's pid namespace */
	int32_t entry;            /* our consumer table entry, -1 for an observer */
	uint32_t role;            /* enum fr_role */
	uint32_t mode;            /* enum fr_mode */
	uint32_t slots;           /* slot count */
	uint32_t index_count;     /* sequence index entries */
	uint64_t slot_capacity;   /* payload bytes per slot */
	uint32_t hold_quota;      /* the most slots one consumer may hold at once */
	uint32_t huge_pages;      /* 1: the data segment is backed by huge pages */
	int64_t heartbeat_period_ns;
	int64_t evict_after_ns;   /* informative */
	/* The read-only mapping of the whole data segment: every frame's data
	 * lies inside [data_mapping, data_mapping + data_mapping_size). Owner:
	 * the library; valid until r is freed (see fr_detach). */
	const void *data_mapping;
	uint64_t data_mapping_size;
	char socket_path[108];    /* the socket attached to, NUL-terminated */
} fr_info;

/* fr_get_info fills *i. Any thread. */
FR_API int fr_get_info(fr_ring *r, fr_info *i);

/* Ring-wide state and counters from the data and control headers
 * (docs/LAYOUT.md 3.1, 4.1), as `ringctl show` reports them. */
typedef struct fr_ring_stats {
	uint64_t published;
	uint32_t ring_state;   /* 1 running, 2 closed */
	uint32_t source_state; /* enum fr_source_state */
	uint64_t evictions;
	uint64_t detaches;
	uint64_t reclaims;
	uint64_t reclaimed_holds;
	uint64_t revoked_holds;
	uint64_t copies;
	int64_t start_mono_ns;
	int64_t heartbeat_ns;
	uint64_t waiters;      /* bit i: consumer i sleeps on the futex */
	uint64_t attached;     /* bit i: table entry i in use */
	uint64_t drops[64];    /* the drop table, by cause code */
} fr_ring_stats;

/* fr_get_ring_stats fills *s (each word loaded atomically; not a snapshot).
 * Any thread. */
FR_API int fr_get_ring_stats(fr_ring *r, fr_ring_stats *s);

/* fr_data_fd returns a new descriptor (close-on-exec) of the data
 * segment's memfd, for a caller that wants its own read-only mapping of
 * it (the Python binding maps it so that its arrays keep the memory alive
 * by themselves). Map it PROT_READ, MAP_SHARED: the segment is sealed
 * against writable mappings. Offsets in it equal offsets in
 * fr_info.data_mapping. Returns the descriptor (>= 0) or FR_ERR_SYSTEM.
 * Owner: the caller closes it. Any thread. */
FR_API int fr_data_fd(fr_ring *r);

/* fr_socket_path writes the socket path of ring `name` (NULL or "":
 * "default") to buf (size bytes, NUL-terminated), resolving the runtime
 * directory as fr_options.ring describes. Returns FR_OK, FR_ERR_INVALID
 * (a bad name) or FR_ERR_TOO_SMALL. Any thread (reads the environment). */
FR_API int fr_socket_path(const char *name, char *buf, size_t size);

/* ---------------------------------------------------------------------
 * Latency
 * ------------------------------------------------------------------- */

/* The scheduler slice fr_latency_thread(0) asks for: 0.1 ms, the shortest
 * Linux grants. A consumer runs for microseconds per frame. */
#define FR_LATENCY_SLICE_NS 100000

/* fr_latency_thread asks the kernel for a short scheduler slice for the
 * calling thread: slice_ns nanoseconds, 0 for FR_LATENCY_SLICE_NS, or a
 * negative value for the kernel's default slice again. Call it on the
 * thread that waits in fr_next or fr_wait, in a program whose job is to
 * take each frame as soon as it is published (the Go reader's latency
 * mode does the same, README "Performance").
 *
 * Why: a consumer woken by the producer's FUTEX_WAKE is often put on the
 * CPU the producer is running on, and waits there until the producer
 * sleeps. Under Linux 6.12's EEVDF scheduler, a woken thread whose slice
 * is shorter than the running thread's preempts it at once (on a 2-core
 * VM, a futex ping's receiver with a 0.1 ms slice: p90 25 -> 10 us).
 *
 * What: sched_setattr(2)'s sched_runtime of a SCHED_OTHER or SCHED_BATCH
 * thread, its policy and nice value kept. The kernel clamps the slice to
 * 0.1-100 ms; kernels before 6.12 accept it and ignore it. A thread of any
 * other policy (SCHED_FIFO, SCHED_RR and SCHED_DEADLINE preempt fair
 * threads anyway; SCHED_IDLE) is left as it is, and FR_OK returned. The
 * slice belongs to the thread, not to an fr_ring: it lasts until changed,
 * and threads and processes the thread creates afterwards inherit it
 * (unless it has SCHED_RESET_ON_FORK).
 *
 * Returns FR_OK, or FR_ERR_SYSTEM (errno: ENOSYS before Linux 3.14, EPERM
 * where a seccomp policy forbids the call). Thread safety: any thread; it
 * changes the calling thread only. */
FR_API int fr_latency_thread(int64_t slice_ns);

#ifdef __cplusplus
}
#endif

#endif /* FRAMERING_H */
