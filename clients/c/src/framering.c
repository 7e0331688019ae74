/*
 * framering.c - libframering: the consumer side of docs/LAYOUT.md v2.
 *
 * Section numbers (9.3, 10.8 ...) refer to docs/LAYOUT.md; ringbuf/reader.go
 * is the Go implementation of the same algorithms, and this file follows it
 * step for step where the specification leaves a choice.
 *
 * Invariants kept by this file:
 *
 *  1. We write to shared memory only: our own holder bit in slot hold words,
 *     our own waiter bit, and our own table entry's consumer line (0x40..
 *     0x7F). Peeks write nothing. Our bit is never set in more than the
 *     ring's hold quota of hold words: borrow checks the quota before its
 *     hold RMW (9.3).
 *  2. Data is trusted only if it was read between two loads of the same
 *     even generation of its slot, with the descriptor carrying the wanted
 *     sequence number (settle, peek), or while we hold the slot (borrow).
 *     Every value read from shared memory that is used as an index or a
 *     length is bounds-checked against the geometry validated at attach,
 *     which lives in private memory and is never re-read (6.3 step 10).
 *  3. The holder bit of slot k is set exactly while this attachment has at
 *     least one lease on k (local[k] > 0); transitions happen under mu.
 *  4. Once our connection has ended (gone), we clear no hold or waiter bit
 *     and store nothing in our entry: the producer has reclaimed it, and our
 *     bit may already be another consumer's (11.1b).
 *  5. Once the producer has evicted us (entry state 2), no lease is
 *     trusted: borrow refuses (EVICTED), release and check report every
 *     lease revoked, telling by the slot's generation whether the frame was
 *     still intact after the caller's reads (9.4, 10.8).
 *  6. r's memory, its mappings and its connection live while refs > 0:
 *     one reference for the attachment (dropped by fr_detach), one per
 *     outstanding lease, one per call in progress. Whoever drops the last
 *     tears down: bye, close, unmap, free (6.2, 11.1).
 *
 * Memory ordering (section 10): every access to a shared word named in
 * section 10 is a C11 sequentially consistent atomic (atomic_load,
 * atomic_store, atomic_fetch_or/and with their default memory_order_seq_cst),
 * which on amd64 and arm64 compile to the same instructions as Go's
 * sync/atomic, so the Dekker arguments of 10.3 and 10.5 hold across the
 * two languages. Descriptor fields other than gen and seq are loaded with
 * relaxed atomics (10.4: they may race with the producer under a peek), and
 * the load fence of 10.4 and 9.4 is atomic_thread_fence(memory_order_acquire).
 * Informative counters in our entry are stored relaxed.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "framering.h"
#include "internal.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

typedef _Atomic uint64_t au64;
typedef _Atomic uint32_t au32;

_Static_assert(sizeof(au64) == 8 && _Alignof(au64) == 8, "64-bit atomics must be plain words");
_Static_assert(sizeof(au32) == 4 && _Alignof(au32) == 4, "32-bit atomics must be plain words");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared between processes");

/* Defaults (the Go reader's). */
#define DEFAULT_HANDSHAKE_MS 5000
#define DEFAULT_SPIN_NS 20000
#define DEFAULT_FUTEX_MS 100
#define OBSERVER_POLL_MS 1
#define DEFAULT_STALL_MS 1000
#define SETTLE_BOUND_NS 10000000 /* 10 ms of wall time (9.1) */
#define NS_PER_MS 1000000LL

/* A lease handle is (token << 16) | index: the token is odd while the
 * lease lives, the index names its record. max_leases <= 65535. */
#define LEASE_INDEX_BITS 16
#define LEASE_INDEX_MASK 0xFFFFu
#define MAX_LEASES 65535u

struct lease_rec {
	au64 tok;      /* odd while live; stored under mu, loaded anywhere */
	uint32_t slot; /* under mu */
	uint64_t gen;  /* the slot's generation at the borrow; under mu */
};

struct fr_ring {
	/* Fixed at attach. */
	struct fr_geo g;
	const uint8_t *data; /* read-only mapping of the data segment */
	size_t data_len;
	uint8_t *ctl; /* read-write mapping of the control segment */
	size_t ctl_len;
	int data_fd;
	int sock;
	int32_t entry; /* -1: observer */
	uint64_t bit;
	uint32_t role, mode, flags;
	int64_t spin_ns, stall_after_ns;
	int32_t futex_ms;
	fr_log_fn log;
	void *log_arg;
	uint32_t max_leases;
	char path[108];

	/* Shared between threads. */
	atomic_int gone;         /* our connection ended */
	atomic_int evicted_note; /* the producer's note said so (the entry state is authoritative) */
	atomic_int evicted_reported;
	atomic_uint evict_reason;
	atomic_int closing;      /* fr_detach was called */
	atomic_int shut;         /* fr_shutdown (or fr_detach) was called */
	atomic_int stalled;      /* the last stall check found the producer stalled */
	atomic_long refs;        /* invariant 6 */

	pthread_mutex_t conn_mu; /* reading the connection: note, note_len */
	uint8_t note[FR_MSG_SIZE];
	size_t note_len;

	/* seq << 16 | slot of the last frame borrowed (0: none), the guess's
	 * base (locate); relaxed: only ever a guess. */
	au64 hint;

	pthread_mutex_t mu; /* the lease table: everything below up to the counters */
	uint32_t *local;    /* leases per slot */
	uint32_t held_slots;
	struct lease_rec *leases;
	uint32_t *free_leases;
	uint32_t nfree;
	uint32_t outstanding;
	uint32_t waiting; /* calls sleeping with our waiter bit set */
	atomic_uint sleepers; /* calls in the futex loop of wait_for (pass_wake) */
	int closed;
	uint64_t tokens;

	/* fr_next's state: written by the one thread in fr_next, read by
	 * fr_get_counters anywhere (relaxed atomics). */
	au64 cursor, delivered, skipped, missed, revoked, torn, held;
	int cursor_pending; /* a peeking consumer's cursor is not stored yet */
	uint64_t pending_seq;
	int64_t pending_ts;
};

/* ---------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------- */

static const struct {
	int code;
	const char *name, *text;
} errors_table[] = {
	{FR_OK, "FR_OK", "success"},
	{FR_ERR_INVALID, "FR_ERR_INVALID", "invalid argument"},
	{FR_ERR_NO_SUCH_RING, "FR_ERR_NO_SUCH_RING", "no such ring"},
	{FR_ERR_PRODUCER_GONE, "FR_ERR_PRODUCER_GONE", "producer gone"},
	{FR_ERR_NOT_RESPONDING, "FR_ERR_NOT_RESPONDING", "producer not responding"},
	{FR_ERR_DENIED, "FR_ERR_DENIED", "attach denied"},
	{FR_ERR_FULL, "FR_ERR_FULL", "consumer table full"},
	{FR_ERR_REFUSED, "FR_ERR_REFUSED", "attach refused"},
	{FR_ERR_INCOMPATIBLE, "FR_ERR_INCOMPATIBLE", "incompatible ring layout"},
	{FR_ERR_CORRUPT, "FR_ERR_CORRUPT", "corrupt ring segment"},
	{FR_ERR_PROTOCOL, "FR_ERR_PROTOCOL", "protocol error"},
	{FR_ERR_CLOSED, "FR_ERR_CLOSED", "ring closed"},
	{FR_ERR_EVICTED, "FR_ERR_EVICTED", "consumer evicted"},
	{FR_ERR_REVOKED, "FR_ERR_REVOKED", "lease revoked"},
	{FR_ERR_REVOKED_OVERWRITTEN, "FR_ERR_REVOKED_OVERWRITTEN", "lease revoked: the frame changed while it was read"},
	{FR_ERR_TOO_MANY_HELD, "FR_ERR_TOO_MANY_HELD", "hold quota reached"},
	{FR_ERR_TOO_MANY_LEASES, "FR_ERR_TOO_MANY_LEASES", "too many leases"},
	{FR_ERR_RELEASED, "FR_ERR_RELEASED", "lease released"},
	{FR_ERR_NOT_PUBLISHED, "FR_ERR_NOT_PUBLISHED", "frame not yet published"},
	{FR_ERR_OVERWRITTEN, "FR_ERR_OVERWRITTEN", "frame overwritten"},
	{FR_ERR_TIMEOUT, "FR_ERR_TIMEOUT", "timed out"},
	{FR_ERR_INTERRUPTED, "FR_ERR_INTERRUPTED", "interrupted by a signal"},
	{FR_ERR_OBSERVER, "FR_ERR_OBSERVER", "observers cannot hold frames"},
	{FR_ERR_TOO_SMALL, "FR_ERR_TOO_SMALL", "buffer too small"},
	{FR_ERR_NOMEM, "FR_ERR_NOMEM", "out of memory"},
	{FR_ERR_SYSTEM, "FR_ERR_SYSTEM", "system call failed"},
};

const char *fr_strerror(int code)
{
	for (size_t i = 0; i < sizeof errors_table / sizeof errors_table[0]; i++)
		if (errors_table[i].code == code)
			return errors_table[i].text;
	return "unknown error";
}

const char *fr_error_name(int code)
{
	for (size_t i = 0; i < sizeof errors_table / sizeof errors_table[0]; i++)
		if (errors_table[i].code == code)
			return errors_table[i].name;
	return "FR_ERR_UNKNOWN";
}

uint32_t fr_abi_version(void) { return FR_ABI_VERSION; }

const char *fr_producer_state_name(uint32_t state)
{
	static const char *const names[] = {"running", "waiting for source", "stalled", "closed", "gone"};
	return state < sizeof names / sizeof names[0] ? names[state] : "unknown";
}

/* ---------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------- */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__)
	__asm__ __volatile__("pause");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Shared words. Data-segment words are only loaded (the mapping is
 * read-only); the const-qualified atomic pointer says so. Every offset
 * passed here comes from the private geometry and a checked slot or entry
 * number (invariant 2). */
static const au64 *d64(const fr_ring *r, uint64_t off) { return (const au64 *)(const void *)(r->data + off); }
static const au32 *d32(const fr_ring *r, uint64_t off) { return (const au32 *)(const void *)(r->data + off); }
static au64 *c64(const fr_ring *r, uint64_t off) { return (au64 *)(void *)(r->ctl + off); }
static au32 *c32(const fr_ring *r, uint64_t off) { return (au32 *)(void *)(r->ctl + off); }

static uint64_t desc_off(const fr_ring *r, uint32_t k) { return r->g.desc_off + (uint64_t)k * FR_DESC_SIZE; }
static uint64_t entry_off(const fr_ring *r) { return r->g.table_off + (uint64_t)r->entry * FR_ENTRY_SIZE; }
static const uint8_t *payload(const fr_ring *r, uint32_t k) { return r->data + r->g.payload_off + (uint64_t)k * r->g.capacity; }

/* published: stored by the producer after the index entry and the even
 * generation (10.2); SC, and in wait a Dekker pair with the waiters load
 * of publish (10.5). */
static uint64_t published(const fr_ring *r) { return atomic_load(d64(r, D_PUBLISHED)); }
/* gen, seq: loaded gen, seq, gen in settle (9.1); gen is SC, the borrower's
 * side of the Dekker of 10.3. */
static uint64_t gen_of(const fr_ring *r, uint32_t k) { return atomic_load(d64(r, desc_off(r, k) + DS_GEN)); }
static uint64_t seq_of(const fr_ring *r, uint32_t k) { return atomic_load(d64(r, desc_off(r, k) + DS_SEQ)); }
static uint32_t ring_state(const fr_ring *r) { return atomic_load(d32(r, D_STATE)); }
/* wake: the futex word, loaded before published (10.5). */
static const au32 *wake_word(const fr_ring *r) { return d32(r, D_WAKE); }
/* hold[k]: our bit Or-ed before the generation is re-loaded (SC, 10.3),
 * And-cleared at release after every read of the slot. */
static au64 *hold_word(const fr_ring *r, uint32_t k) { return c64(r, r->g.holds_off + (uint64_t)k * FR_HOLD_SIZE); }
/* Our entry's state: stored by the producer at eviction (E2, SC) before any
 * Acquire ignores our bits; loaded after the hold RMW (B3) and after the
 * load fence at release (R2) (10.8). */
static uint32_t entry_state(const fr_ring *r) { return atomic_load(c32(r, entry_off(r) + E_STATE)); }

static void futex_wake_all(const fr_ring *r)
{
	/* FUTEX_WAKE only reads the word: the read-only mapping suffices. A
	 * shared futex (no FUTEX_PRIVATE_FLAG): processes map it at different
	 * addresses. */
	syscall(SYS_futex, (void *)(uintptr_t)wake_word(r), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void emit(const fr_ring *r, int event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void emit(const fr_ring *r, int event, const char *fmt, ...)
{
	if (r->log == NULL)
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->log(r->log_arg, event, msg);
}

/* ---------------------------------------------------------------------
 * Lifetime (invariant 6)
 * ------------------------------------------------------------------- */

static void teardown(fr_ring *r);

static void unref(fr_ring *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1)
		teardown(r);
}

/* enter marks a public call as using r; it fails once fr_detach began. */
static int enter(fr_ring *r)
{
	atomic_fetch_add(&r->refs, 1);
	if (atomic_load(&r->closing)) {
		unref(r);
		return 0;
	}
	return 1;
}

static const char *evict_reason_name(uint32_t reason)
{
	switch (reason) {
	case 1:
		return "its lossless cursor pinned the ring";
	case 2:
		return "it held more slots than the hold quota";
	case 3:
		return "its holds kept the producer from every slot";
	}
	return "unknown reason";
}

/* poll_conn reads what the producer sent without blocking: notes, and the
 * end of the connection (6.2). One thread reads at a time; the others skip. */
static void poll_conn(fr_ring *r)
{
	if (atomic_load(&r->gone) || r->sock < 0)
		return;
	if (pthread_mutex_trylock(&r->conn_mu) != 0)
		return;
	int evicted = 0, ended = 0;
	uint32_t reason = 0;
	for (;;) {
		ssize_t n = recv(r->sock, r->note + r->note_len, FR_MSG_SIZE - r->note_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			ended = 1;
			break;
		}
		r->note_len += (size_t)n;
		if (r->note_len < FR_MSG_SIZE)
			continue;
		r->note_len = 0;
		uint32_t kind, why;
		if (fr__decode_note(r->note, FR_MSG_SIZE, &kind, &why) == 0 && kind == NOTE_EVICTED) {
			evicted = 1;
			reason = why;
		}
		/* closing notes and unknown kinds: nothing to do (the ring state
		 * says closed; unknown kinds are ignored, 6.2). */
	}
	pthread_mutex_unlock(&r->conn_mu);
	if (evicted) {
		atomic_store(&r->evict_reason, reason);
		atomic_store(&r->evicted_note, 1); /* reported by report_events */
	}
	if (ended && !atomic_exchange(&r->gone, 1))
		futex_wake_all(r); /* our other sleepers notice at once */
}

/* report_events tells the log callback, once, what poll_conn learned. Only
 * from paths that hold no lock (poll_conn may run under mu, in settle). */
static void report_events(fr_ring *r)
{
	if (atomic_load(&r->evicted_note) && !atomic_exchange(&r->evicted_reported, 1))
		emit(r, FR_EVENT_EVICTED, "evicted by the producer: %s", evict_reason_name(atomic_load(&r->evict_reason)));
}

static int is_evicted(const fr_ring *r)
{
	return r->entry >= 0 && (atomic_load(&r->evicted_note) || entry_state(r) == ENTRY_EVICTED);
}

/* status says why the ring cannot deliver more (9.5), in the Go reader's
 * order: detaching, evicted, closed, gone. poll: read the connection first
 * (a syscall: slow paths only, never under mu). */
static int status(fr_ring *r, int poll)
{
	if (poll) {
		poll_conn(r);
		report_events(r);
	}
	if (atomic_load(&r->shut))
		return FR_ERR_CLOSED;
	if (is_evicted(r))
		return FR_ERR_EVICTED;
	if (ring_state(r) == RING_STATE_CLOSED)
		return FR_ERR_CLOSED;
	if (atomic_load(&r->gone))
		return FR_ERR_PRODUCER_GONE;
	return FR_OK;
}

/* ---------------------------------------------------------------------
 * Health (8.4)
 * ------------------------------------------------------------------- */

static void health(const fr_ring *r, fr_health *h)
{
	memset(h, 0, sizeof *h);
	h->source_state = atomic_load(d32(r, D_SOURCE_STATE));
	h->heartbeat_age_ns = mono_ns() - (int64_t)atomic_load(d64(r, D_HEARTBEAT_NS));
	h->evicted = (uint32_t)is_evicted(r);
	if (ring_state(r) == RING_STATE_CLOSED) {
		h->state = FR_PRODUCER_CLOSED;
	} else if (atomic_load(&r->gone)) {
		h->state = FR_PRODUCER_GONE;
	} else if (h->source_state == FR_SOURCE_WAITING || h->source_state == FR_SOURCE_LOST) {
		/* An idle loop still beats; one that stopped beating is stalled. */
		h->state = h->heartbeat_age_ns > r->stall_after_ns ? FR_PRODUCER_STALLED : FR_PRODUCER_WAITING;
	} else if (h->source_state != FR_SOURCE_STOPPED && h->heartbeat_age_ns > r->stall_after_ns) {
		h->state = FR_PRODUCER_STALLED;
	} else {
		h->state = FR_PRODUCER_RUNNING;
	}
}

/* check_stall reports, once per episode, that the producer stalled and
 * that it resumed (8.4: stalled is not gone; keep waiting). */
static void check_stall(fr_ring *r)
{
	fr_health h;
	health(r, &h);
	int stalled = h.state == FR_PRODUCER_STALLED;
	if (atomic_exchange(&r->stalled, stalled) == stalled)
		return;
	if (stalled)
		emit(r, FR_EVENT_STALLED, "producer stalled: its heartbeat is %" PRId64 " ms old (pid %" PRIu32 "); waiting for it",
		     (int64_t)(h.heartbeat_age_ns / NS_PER_MS), r->g.producer_pid);
	else
		emit(r, FR_EVENT_RESUMED, "producer resumed");
}

/* ---------------------------------------------------------------------
 * Locate, settle, descriptors (9.1)
 * ------------------------------------------------------------------- */

/* settle waits out the producer's reuse decision: an odd generation while
 * the descriptor still names seq (DECIDING lasts a few instructions). It
 * returns 1 with a stable even generation, or 0 (treat as overwritten) if
 * the slot moved on, after 10 ms of wall time, or once the connection
 * ended. The bound applies to every way round the loop, so that no
 * sequence of values a hostile producer stores can keep us here. */
static int settle(fr_ring *r, uint32_t k, uint64_t seq, uint64_t *gout)
{
	int64_t give_up = 0;
	for (uint32_t i = 1;; i++) {
		uint64_t g = gen_of(r, k);
		if (seq_of(r, k) != seq)
			return 0; /* committed for reuse, or republished */
		if ((g & 1) == 0 && gen_of(r, k) == g) {
			*gout = g;
			return 1;
		}
		if ((i & 63) != 0) {
			cpu_relax();
			continue;
		}
		int64_t now = mono_ns();
		if (give_up == 0)
			give_up = now + SETTLE_BOUND_NS;
		else if (now > give_up)
			return 0;
		poll_conn(r);
		if (atomic_load(&r->gone))
			return 0;
		sched_yield();
	}
}

/* glance is settle without its wait, for a guessed slot: 1 and the
 * generation if, read once (gen, seq, gen), it is even and stable with seq
 * in the descriptor. Anything else locate leaves to the index and settle,
 * so a guess never adds a wait of its own. */
static int glance(fr_ring *r, uint32_t k, uint64_t seq, uint64_t *gout)
{
	uint64_t g = gen_of(r, k);
	if ((g & 1) != 0 || seq_of(r, k) != seq || gen_of(r, k) != g)
		return 0;
	*gout = g;
	return 1;
}

int fr__guess_slot(uint64_t hint, uint64_t seq, uint64_t p, uint32_t slots, uint32_t index_count, uint32_t *k)
{
	uint64_t last = hint >> 16;
	/* p - seq < index_count - 1: with p = seq + index_count - 1 loaded,
	 * Publish may already have stored frame seq + index_count's index
	 * entry (before published, 8.2). */
	if (hint == 0 || slots == 0 || index_count == 0 || seq <= last || seq > p || p - seq >= index_count - 1)
		return 0;
	*k = (uint32_t)(((hint & 0xFFFF) + (seq - last)) % slots);
	return 1;
}

/* locate finds seq's slot and a stable even generation (9.1), trying a
 * guessed slot first: glance accepts it only carrying seq under a stable
 * even generation, the one slot holding published frame seq. The guess
 * saves the index entry's cache miss; its slot's descriptor line 1 and,
 * when borrowing, hold word are prefetched so that their misses overlap
 * glance's (hints: they order nothing). */
static int locate(fr_ring *r, uint64_t seq, int borrowing, uint32_t *kout, uint64_t *gout)
{
	uint64_t p = published(r);
	if (seq == 0 || seq > p)
		return FR_ERR_NOT_PUBLISHED;
	uint32_t tried = 0;
	int guessed = fr__guess_slot(atomic_load_explicit(&r->hint, memory_order_relaxed), seq, p, r->g.slots,
				     r->g.index_count, &tried);
	if (guessed) {
		__builtin_prefetch(r->data + desc_off(r, tried) + 64, 0, 3);
		if (borrowing)
			__builtin_prefetch(hold_word(r, tried), 1, 3);
		if (glance(r, tried, seq, gout)) {
			*kout = tried;
			return FR_OK;
		}
	}
	/* After published (SC): the index entry of seq is written, or a later
	 * frame's (10.2). */
	uint64_t e = atomic_load(d64(r, r->g.index_off + (seq & (r->g.index_count - 1)) * FR_INDEX_ENTRY_SIZE));
	if (e >> 16 != seq)
		return FR_ERR_OVERWRITTEN;
	uint32_t k = (uint32_t)(e & 0xFFFF);
	if (k >= r->g.slots)
		return FR_ERR_CORRUPT; /* bounds check (14) */
	if (!settle(r, k, seq, gout))
		return FR_ERR_OVERWRITTEN;
	*kout = k;
	return FR_OK;
}

static uint64_t ld64(const fr_ring *r, uint64_t off) { return atomic_load_explicit(d64(r, off), memory_order_relaxed); }
static uint32_t ld32(const fr_ring *r, uint64_t off) { return atomic_load_explicit(d32(r, off), memory_order_relaxed); }

/* read_desc decodes slot k's descriptor with relaxed atomic loads: under a
 * peek they may race with the producer (10.4), under a hold they cannot.
 * Nothing here indexes memory with what it read. */
static void read_desc(const fr_ring *r, uint32_t k, fr_frame *f)
{
	uint64_t b = desc_off(r, k);
	memset(f, 0, sizeof *f);
	f->seq = ld64(r, b + DS_SEQ);
	f->frame_id = ld64(r, b + DS_FRAME_ID);
	f->timestamp_ns = (int64_t)ld64(r, b + DS_TIMESTAMP);
	f->width = ld32(r, b + DS_WIDTH);
	f->height = ld32(r, b + DS_HEIGHT);
	f->stride = ld32(r, b + DS_STRIDE);
	f->format = ld32(r, b + DS_FORMAT);
	f->length = ld64(r, b + DS_LENGTH);
	f->flags = ld32(r, b + DS_FLAGS);
	f->device_timestamp = ld64(r, b + DS_DEVICE_TIMESTAMP);
	f->origin_epoch = ld64(r, b + DS_ORIGIN_EPOCH);
	f->origin_seq = ld64(r, b + DS_ORIGIN_SEQ);
	f->publish_ns = (int64_t)ld64(r, b + DS_PUBLISH_NS);
	for (unsigned i = 0; i < DS_DROPS_WORDS; i++) {
		uint64_t w = ld64(r, b + DS_DROPS_BEFORE + 8 * i);
		f->drops_before[i].cause = (uint32_t)(w & 0xFF);
		f->drops_before[i].count = w >> 8;
	}
	f->slot = k;
}

/* ---------------------------------------------------------------------
 * Peek (9.2, 10.4)
 * ------------------------------------------------------------------- */

static int peek(fr_ring *r, uint64_t seq, fr_frame *f)
{
	uint32_t k;
	uint64_t g1;
	int rc = locate(r, seq, 0, &k, &g1);
	if (rc != FR_OK)
		return rc;
	read_desc(r, k, f);
	if (f->seq != seq || f->length > r->g.capacity) {
		atomic_thread_fence(memory_order_acquire);
		return gen_of(r, k) != g1 ? FR_ERR_OVERWRITTEN : FR_ERR_CORRUPT;
	}
	f->data = payload(r, k);
	f->generation = g1;
	return FR_OK;
}

/* peek_valid is R3/R4 of 10.4: every load made before it (the caller's
 * reads of the frame) happens before the generation is loaded again. */
static int peek_valid(fr_ring *r, uint32_t k, uint64_t g1)
{
	atomic_thread_fence(memory_order_acquire); /* R3: DMB ISHLD on arm64 */
	if (gen_of(r, k) != g1) {
		atomic_fetch_add_explicit(&r->torn, 1, memory_order_relaxed);
		return FR_ERR_OVERWRITTEN;
	}
	return FR_OK;
}

int fr_peek(fr_ring *r, uint64_t seq, fr_frame *f)
{
	if (r == NULL || f == NULL)
		return FR_ERR_INVALID;
	if (!enter(r))
		return FR_ERR_CLOSED;
	int rc = peek(r, seq, f);
	unref(r);
	return rc;
}

int fr_peek_check(fr_ring *r, const fr_frame *f)
{
	if (r == NULL || f == NULL || f->slot >= r->g.slots || f->data != payload(r, f->slot) || (f->generation & 1) != 0)
		return FR_ERR_INVALID;
	return peek_valid(r, f->slot, f->generation);
}

int fr_peek_copy(fr_ring *r, uint64_t seq, void *buf, size_t cap, fr_frame *f)
{
	if (r == NULL || f == NULL || (buf == NULL && cap > 0))
		return FR_ERR_INVALID;
	if (!enter(r))
		return FR_ERR_CLOSED;
	int rc = peek(r, seq, f);
	if (rc == FR_OK) {
		uint32_t k = f->slot;
		if (f->length > cap) {
			/* Only a length read under a stable generation is worth
			 * reporting. */
			atomic_thread_fence(memory_order_acquire);
			rc = gen_of(r, k) != f->generation ? FR_ERR_OVERWRITTEN : FR_ERR_TOO_SMALL;
		} else {
			/* A copy that may race with the producer, validated after
			 * (10.4: "copy into private memory and use only the copy
			 * after R4 succeeds"). */
			if (f->length > 0)
				memcpy(buf, payload(r, k), (size_t)f->length);
			rc = peek_valid(r, k, f->generation);
			if (rc == FR_OK)
				f->data = buf;
		}
	}
	unref(r);
	return rc;
}

/* ---------------------------------------------------------------------
 * Borrow, release, check (9.3, 9.4, 10.3, 10.8)
 * ------------------------------------------------------------------- */

/* revoked is the check of 9.4 and 10.8: after the load fence, the entry
 * state (R2), then the slot's generation (R3). */
static int revoked(const fr_ring *r, uint32_t k, uint64_t g1)
{
	atomic_thread_fence(memory_order_acquire); /* R1: every read of the lease before R2 */
	if (!is_evicted(r))
		return FR_OK;
	return gen_of(r, k) != g1 ? FR_ERR_REVOKED_OVERWRITTEN : FR_ERR_REVOKED;
}

static int borrow(fr_ring *r, uint64_t seq, fr_lease *lease, fr_frame *f)
{
	if (atomic_load(&r->shut))
		return FR_ERR_CLOSED;
	if (is_evicted(r))
		return FR_ERR_EVICTED;
	if (atomic_load(&r->gone) && ring_state(r) != RING_STATE_CLOSED) {
		/* Our connection ended with the ring still running: the producer
		 * reclaimed our entry (or died), and our bit may be another
		 * consumer's now. After a clean close nothing is reused, and the
		 * frames still published may be drained. */
		return FR_ERR_PRODUCER_GONE;
	}
	uint32_t k;
	uint64_t g1, g2;
	int rc = locate(r, seq, 1, &k, &g1);
	if (rc != FR_OK)
		return rc;
	pthread_mutex_lock(&r->mu);
	if (r->closed) {
		rc = FR_ERR_CLOSED;
		goto out;
	}
	if (r->nfree == 0) {
		rc = FR_ERR_TOO_MANY_LEASES;
		goto out;
	}
	au64 *hold = hold_word(r, k);
	int first = r->local[k] == 0;
	if (first) {
		/* A new slot for us: within the quota before we set the bit, so our
		 * bit is never in more hold words than the quota, even for a moment
		 * (the producer evicts a consumer it counts over it). */
		if (r->held_slots >= r->g.hold_quota) {
			rc = FR_ERR_TOO_MANY_HELD;
			goto out;
		}
		/* C1: SC RMW; then C2, the generation re-loaded in settle. Pairs
		 * with the producer's odd store then holder load (10.3). */
		atomic_fetch_or(hold, r->bit);
		if (!settle(r, k, seq, &g2) || g2 != g1) {
			atomic_fetch_and(hold, ~r->bit);
			rc = FR_ERR_OVERWRITTEN;
			goto out;
		}
		/* B3: evicted? Checked after the hold, so a borrow racing with the
		 * eviction either sees it here or was taken before it (and is
		 * revoked, 10.8). */
		if (entry_state(r) == ENTRY_EVICTED) {
			atomic_fetch_and(hold, ~r->bit);
			rc = FR_ERR_EVICTED;
			goto out;
		}
	} else if (seq_of(r, k) != seq) {
		/* We hold k, so it is stable now; but between locate and our lock
		 * another thread of ours may have released k (letting the producer
		 * reuse it) and borrowed it again for a newer frame. */
		rc = FR_ERR_OVERWRITTEN;
		goto out;
	}
	read_desc(r, k, f);
	if (f->seq != seq || f->length > r->g.capacity) {
		if (first)
			atomic_fetch_and(hold, ~r->bit);
		rc = FR_ERR_CORRUPT;
		goto out;
	}
	if (first)
		r->held_slots++;
	r->local[k]++;
	atomic_store_explicit(&r->hint, seq << 16 | k, memory_order_relaxed);
	uint32_t i = r->free_leases[--r->nfree];
	struct lease_rec *rec = &r->leases[i];
	rec->slot = k;
	rec->gen = g1;
	r->tokens += 2;
	uint64_t tok = (r->tokens | 1) & ((1ull << 48) - 1);
	atomic_store(&rec->tok, tok);
	r->outstanding++;
	atomic_fetch_add(&r->refs, 1); /* the lease's reference (invariant 6) */
	atomic_store_explicit(&r->held, r->outstanding, memory_order_relaxed);
	/* Informational, read by ringctl; we are its only writer. */
	atomic_store_explicit(c64(r, entry_off(r) + E_HELD), r->outstanding, memory_order_relaxed);
	*lease = tok << LEASE_INDEX_BITS | i;
	f->data = payload(r, k);
	f->generation = g1;
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int fr_borrow(fr_ring *r, uint64_t seq, fr_lease *lease, fr_frame *f)
{
	if (r == NULL || lease == NULL || f == NULL)
		return FR_ERR_INVALID;
	*lease = FR_NO_LEASE;
	if (r->entry < 0)
		return FR_ERR_OBSERVER;
	if (!enter(r))
		return FR_ERR_CLOSED;
	int rc = borrow(r, seq, lease, f);
	unref(r);
	return rc;
}

/* lease_rec_of returns the live record a handle names, or NULL. Under mu. */
static struct lease_rec *lease_rec_of(fr_ring *r, fr_lease lease)
{
	uint32_t i = (uint32_t)(lease & LEASE_INDEX_MASK);
	uint64_t tok = lease >> LEASE_INDEX_BITS;
	if ((tok & 1) == 0 || i >= r->max_leases)
		return NULL;
	struct lease_rec *rec = &r->leases[i];
	return atomic_load(&rec->tok) == tok ? rec : NULL;
}

int fr_release(fr_ring *r, fr_lease lease)
{
	if (r == NULL)
		return FR_ERR_INVALID;
	if (r->entry < 0)
		return FR_ERR_RELEASED;
	pthread_mutex_lock(&r->mu);
	struct lease_rec *rec = lease_rec_of(r, lease);
	if (rec == NULL) {
		pthread_mutex_unlock(&r->mu);
		return FR_ERR_RELEASED;
	}
	uint32_t k = rec->slot;
	int gone = atomic_load(&r->gone);
	/* Revoked? Decided before our bit goes, after every read the caller
	 * made (9.4). */
	int verdict = revoked(r, k, rec->gen);
	if (verdict != FR_OK) {
		uint64_t n = atomic_fetch_add_explicit(&r->revoked, 1, memory_order_relaxed) + 1;
		if (!gone)
			atomic_store_explicit(c64(r, entry_off(r) + E_REVOKED_SEEN), n, memory_order_relaxed);
	}
	atomic_store(&rec->tok, atomic_load(&rec->tok) + 1); /* even: dead; the handle now fails */
	if (--r->local[k] == 0) {
		r->held_slots--;
		/* Our last lease on k: the producer may reuse the slot once it sees
		 * this (SC RMW, at least release: every read of the slot before
		 * it). Not once our connection has ended (invariant 4). */
		if (!gone)
			atomic_fetch_and(hold_word(r, k), ~r->bit);
	}
	r->free_leases[r->nfree++] = (uint32_t)(lease & LEASE_INDEX_MASK);
	r->outstanding--;
	atomic_store_explicit(&r->held, r->outstanding, memory_order_relaxed);
	if (!gone)
		atomic_store_explicit(c64(r, entry_off(r) + E_HELD), r->outstanding, memory_order_relaxed);
	pthread_mutex_unlock(&r->mu);
	unref(r); /* the lease's reference: may tear down after fr_detach */
	return verdict;
}

int fr_lease_check(fr_ring *r, fr_lease lease)
{
	if (r == NULL)
		return FR_ERR_INVALID;
	if (r->entry < 0)
		return FR_ERR_RELEASED;
	pthread_mutex_lock(&r->mu);
	struct lease_rec *rec = lease_rec_of(r, lease);
	int rc = rec == NULL ? FR_ERR_RELEASED : revoked(r, rec->slot, rec->gen);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* ---------------------------------------------------------------------
 * Wait (9.5, 10.5)
 * ------------------------------------------------------------------- */

static void set_waiting(fr_ring *r, int on)
{
	if (r->entry < 0)
		return; /* observers have no waiter bit */
	pthread_mutex_lock(&r->mu);
	if (!r->closed) {
		int gone = atomic_load(&r->gone);
		if (on) {
			/* W1: SC RMW before W2/W3 (10.5). */
			if (r->waiting++ == 0 && !gone)
				atomic_fetch_or(c64(r, C_WAITERS), r->bit);
		} else if (--r->waiting == 0 && !gone) {
			atomic_fetch_and(c64(r, C_WAITERS), ~r->bit);
		}
	}
	pthread_mutex_unlock(&r->mu);
}

/* pass_wake keeps our hello's chain_wake promise (9.5): after a futex wait
 * that ended with wake moved on (woken by the producer, or by another
 * chaining waiter), wake FR_CHAIN_FANOUT more sleepers if any other waiter
 * bit is set, or another of our own threads sleeps under our bit. Extra
 * wakes are harmless: a woken waiter re-checks. */
static void pass_wake(fr_ring *r, uint32_t w)
{
	if (atomic_load(wake_word(r)) == w)
		return; /* a timeout or a signal: nothing to pass on */
	if ((atomic_load(c64(r, C_WAITERS)) & ~r->bit) == 0 && atomic_load(&r->sleepers) <= 1)
		return;
	syscall(SYS_futex, (void *)(uintptr_t)wake_word(r), FUTEX_WAKE, FR_CHAIN_FANOUT, NULL, NULL, 0);
}

/* wait_for returns FR_OK with *out > after once such a frame is published;
 * deadline is an absolute CLOCK_MONOTONIC time, or < 0 for none. */
static int wait_for(fr_ring *r, uint64_t after, int64_t deadline, uint64_t *out)
{
	uint64_t p = published(r);
	if (p > after) {
		*out = p;
		return FR_OK;
	}
	int64_t now = mono_ns();
	if (deadline >= 0 && now >= deadline) {
		int st = status(r, 1);
		return st != FR_OK ? st : FR_ERR_TIMEOUT;
	}
	/* Spin first: a frame due within spin_ns costs no futex round trip. */
	int64_t spin_end = r->spin_ns < 0 ? INT64_MAX : now + r->spin_ns;
	for (uint32_t i = 1;; i++) {
		if ((p = published(r)) > after) {
			*out = p;
			return FR_OK;
		}
		cpu_relax();
		if ((i & 63) != 0)
			continue;
		/* Atomics only here: the connection is read on the way to sleep,
		 * and now and then by a busy-poller. */
		int poll = (i & 0xFFFF) == 0;
		int st = status(r, poll);
		if (st != FR_OK)
			return st;
		if (poll)
			check_stall(r);
		now = mono_ns();
		if (deadline >= 0 && now >= deadline)
			return FR_ERR_TIMEOUT;
		if (now >= spin_end)
			break;
	}
	set_waiting(r, 1);
	atomic_fetch_add(&r->sleepers, 1);
	int rc;
	for (;;) {
		uint32_t w = atomic_load(wake_word(r)); /* W2: BEFORE published */
		if ((p = published(r)) > after) {       /* W3 */
			*out = p;
			rc = FR_OK;
			break;
		}
		if ((rc = status(r, 1)) != FR_OK)
			break;
		check_stall(r);
		now = mono_ns();
		if (deadline >= 0 && now >= deadline) {
			rc = FR_ERR_TIMEOUT;
			break;
		}
		int64_t slice = (int64_t)(r->entry < 0 ? OBSERVER_POLL_MS : r->futex_ms) * NS_PER_MS;
		if (deadline >= 0 && deadline - now < slice)
			slice = deadline - now;
		struct timespec ts = {.tv_sec = slice / 1000000000, .tv_nsec = slice % 1000000000};
		if (r->flags & FR_OPT_TRACE_SLEEP)
			emit(r, FR_EVENT_SLEEP, "sleeping for frame %" PRIu64, after + 1);
		/* W4: a shared futex on the read-only mapping. EAGAIN (the word
		 * moved), EINTR and ETIMEDOUT are ordinary returns: re-check. */
		long res = syscall(SYS_futex, (void *)(uintptr_t)wake_word(r), FUTEX_WAIT, w, &ts, NULL, 0);
		int e = errno;
		pass_wake(r, w); /* before anything else, even an interruption */
		if (res != 0 && e == EINTR && (r->flags & FR_OPT_INTERRUPTIBLE)) {
			rc = FR_ERR_INTERRUPTED;
			break;
		}
	}
	atomic_fetch_sub(&r->sleepers, 1);
	set_waiting(r, 0);
	return rc;
}

static int64_t deadline_of(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return mono_ns() + (int64_t)timeout_ms * NS_PER_MS;
}

int fr_wait(fr_ring *r, uint64_t after, int timeout_ms, uint64_t *out)
{
	if (r == NULL)
		return FR_ERR_INVALID;
	if (!enter(r))
		return FR_ERR_CLOSED;
	uint64_t p = 0;
	int rc = wait_for(r, after, deadline_of(timeout_ms), &p);
	if (out != NULL)
		*out = rc == FR_OK ? p : 0;
	unref(r);
	return rc;
}

uint64_t fr_published(fr_ring *r)
{
	if (r == NULL || !enter(r))
		return 0;
	uint64_t p = published(r);
	unref(r);
	return p;
}

/* ---------------------------------------------------------------------
 * Next (9.6)
 * ------------------------------------------------------------------- */

/* publish_counters mirrors our cursor and counters into our entry. The
 * cursor store is SC and comes after the hold RMW of the borrow: a
 * producer that sees the new cursor also sees our holder bit (10.6). */
static void publish_counters(fr_ring *r, uint64_t last_seq, int64_t ts)
{
	if (r->entry < 0)
		return;
	uint64_t e = entry_off(r);
	atomic_store(c64(r, e + E_CURSOR), atomic_load_explicit(&r->cursor, memory_order_relaxed));
	atomic_store_explicit(c64(r, e + E_DELIVERED), atomic_load_explicit(&r->delivered, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(c64(r, e + E_SKIPPED), atomic_load_explicit(&r->skipped, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(c64(r, e + E_MISSED), atomic_load_explicit(&r->missed, memory_order_relaxed),
			      memory_order_relaxed);
	if (last_seq != 0) {
		atomic_store_explicit(c64(r, e + E_LAST_SEQ), last_seq, memory_order_relaxed);
		int64_t lat = mono_ns() - ts;
		if (ts > 0 && lat > 0)
			atomic_store_explicit(c64(r, e + E_LATENCY_NS), (uint64_t)lat, memory_order_relaxed);
	}
}

static void add(au64 *c, uint64_t n) { atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed); }

static int next(fr_ring *r, int64_t deadline, fr_lease *lease, fr_frame *f)
{
	int peeking = r->entry < 0 || (r->flags & FR_OPT_PEEK);
	/* A peeking consumer stores the cursor past its last frame only now,
	 * after every read the caller made of it (10.6: release ordering, and
	 * the SC store is at least that). */
	if (r->entry >= 0 && peeking && r->cursor_pending) {
		r->cursor_pending = 0;
		publish_counters(r, r->pending_seq, r->pending_ts);
	}
	for (;;) {
		uint64_t cursor = atomic_load_explicit(&r->cursor, memory_order_relaxed);
		uint64_t p;
		int rc = wait_for(r, cursor - 1, deadline, &p);
		if (rc != FR_OK)
			return rc;
		uint64_t seq = cursor, skip = 0;
		if (r->mode == FR_MODE_LOSSY && p > seq) {
			skip = p - seq;
			seq = p; /* the newest frame */
		}
		rc = peeking ? peek(r, seq, f) : borrow(r, seq, lease, f);
		/* Counters move only with the cursor: a borrow that failed for any
		 * other reason (quota, too many leases, closed) leaves both as they
		 * were, and the next call counts the same frames once. */
		if (rc == FR_OK) {
			atomic_store_explicit(&r->cursor, seq + 1, memory_order_relaxed);
			add(&r->skipped, skip);
			add(&r->delivered, 1);
			if (peeking) {
				r->cursor_pending = 1; /* stored by the next call */
				r->pending_seq = seq;
				r->pending_ts = f->timestamp_ns;
			} else {
				publish_counters(r, seq, f->timestamp_ns); /* the cursor after the hold (10.6) */
			}
			return FR_OK;
		}
		if (rc != FR_ERR_OVERWRITTEN)
			return rc;
		int st = status(r, 1);
		if (st != FR_OK)
			return st;
		add(&r->skipped, skip);
		add(&r->missed, 1);
		atomic_store_explicit(&r->cursor, seq + 1, memory_order_relaxed);
		publish_counters(r, 0, 0); /* nothing is being read: store it now */
	}
}

int fr_next(fr_ring *r, int timeout_ms, fr_lease *lease, fr_frame *f)
{
	if (r == NULL || lease == NULL || f == NULL)
		return FR_ERR_INVALID;
	*lease = FR_NO_LEASE;
	if (!enter(r))
		return FR_ERR_CLOSED;
	int rc = next(r, deadline_of(timeout_ms), lease, f);
	unref(r);
	return rc;
}

/* ---------------------------------------------------------------------
 * Counters and information
 * ------------------------------------------------------------------- */

int fr_get_counters(fr_ring *r, fr_counters *c)
{
	if (r == NULL || c == NULL)
		return FR_ERR_INVALID;
	c->delivered = atomic_load_explicit(&r->delivered, memory_order_relaxed);
	c->skipped = atomic_load_explicit(&r->skipped, memory_order_relaxed);
	c->missed = atomic_load_explicit(&r->missed, memory_order_relaxed);
	c->revoked = atomic_load_explicit(&r->revoked, memory_order_relaxed);
	c->torn = atomic_load_explicit(&r->torn, memory_order_relaxed);
	c->held = atomic_load_explicit(&r->held, memory_order_relaxed);
	c->cursor = atomic_load_explicit(&r->cursor, memory_order_relaxed);
	return FR_OK;
}

int fr_get_health(fr_ring *r, fr_health *h)
{
	if (r == NULL || h == NULL)
		return FR_ERR_INVALID;
	if (!enter(r)) {
		memset(h, 0, sizeof *h);
		h->state = FR_PRODUCER_CLOSED;
		h->source_state = FR_SOURCE_STOPPED;
		return FR_OK;
	}
	poll_conn(r);
	report_events(r);
	health(r, h);
	unref(r);
	return FR_OK;
}

int fr_get_info(fr_ring *r, fr_info *i)
{
	if (r == NULL || i == NULL)
		return FR_ERR_INVALID;
	memset(i, 0, sizeof *i);
	i->epoch = r->g.epoch;
	i->producer_pid = r->g.producer_pid;
	i->entry = r->entry;
	i->role = r->role;
	i->mode = r->mode;
	i->slots = r->g.slots;
	i->index_count = r->g.index_count;
	i->slot_capacity = r->g.capacity;
	i->hold_quota = r->g.hold_quota;
	i->huge_pages = (r->g.flags & FLAG_HUGE_PAGES) != 0;
	i->heartbeat_period_ns = (int64_t)r->g.heartbeat_ns;
	i->evict_after_ns = (int64_t)r->g.evict_after_ns;
	i->data_mapping = r->data;
	i->data_mapping_size = r->data_len;
	memcpy(i->socket_path, r->path, sizeof i->socket_path);
	return FR_OK;
}

int fr_get_ring_stats(fr_ring *r, fr_ring_stats *s)
{
	if (r == NULL || s == NULL)
		return FR_ERR_INVALID;
	if (!enter(r))
		return FR_ERR_CLOSED;
	s->published = published(r);
	s->ring_state = ring_state(r);
	s->source_state = atomic_load(d32(r, D_SOURCE_STATE));
	s->evictions = atomic_load(d64(r, D_EVICTIONS));
	s->detaches = atomic_load(d64(r, D_DETACHES));
	s->reclaims = atomic_load(d64(r, D_RECLAIMS));
	s->reclaimed_holds = atomic_load(d64(r, D_RECLAIMED_HOLDS));
	s->revoked_holds = atomic_load(d64(r, D_REVOKED_HOLDS));
	s->copies = atomic_load(d64(r, D_COPIES));
	s->start_mono_ns = (int64_t)atomic_load(d64(r, D_START_MONO_NS));
	s->heartbeat_ns = (int64_t)atomic_load(d64(r, D_HEARTBEAT_NS));
	s->waiters = atomic_load(c64(r, C_WAITERS));
	s->attached = atomic_load(c64(r, C_ATTACHED));
	for (unsigned c = 0; c < D_DROP_CAUSES; c++)
		s->drops[c] = atomic_load(d64(r, D_DROPS + 8 * (uint64_t)c));
	unref(r);
	return FR_OK;
}

int fr_data_fd(fr_ring *r)
{
	if (r == NULL)
		return FR_ERR_INVALID;
	int fd = fcntl(r->data_fd, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? FR_ERR_SYSTEM : fd;
}

void fr_options_init(fr_options *o)
{
	if (o != NULL)
		memset(o, 0, sizeof *o);
}

/* ---------------------------------------------------------------------
 * Paths (6.1)
 * ------------------------------------------------------------------- */

int fr_socket_path(const char *name, char *buf, size_t size)
{
	if (buf == NULL)
		return FR_ERR_INVALID;
	if (name == NULL || name[0] == '\0')
		name = "default";
	if (!fr__valid_ring_name(name))
		return FR_ERR_INVALID;
	const char *d = getenv("FRAMERING_RUNTIME_DIR");
	int n;
	if (d != NULL && d[0] != '\0') {
		n = snprintf(buf, size, "%s/%s.sock", d, name);
	} else if ((d = getenv("XDG_RUNTIME_DIR")) != NULL && d[0] != '\0') {
		n = snprintf(buf, size, "%s/framering/%s.sock", d, name);
	} else if (geteuid() == 0) {
		n = snprintf(buf, size, "/run/framering/%s.sock", name);
	} else {
		const char *tmp = getenv("TMPDIR");
		if (tmp == NULL || tmp[0] == '\0')
			tmp = "/tmp";
		n = snprintf(buf, size, "%s/framering-%u/%s.sock", tmp, (unsigned)geteuid(), name);
	}
	if (n < 0 || (size_t)n >= size)
		return FR_ERR_TOO_SMALL;
	return FR_OK;
}

/* ---------------------------------------------------------------------
 * Attach (6.3)
 * ------------------------------------------------------------------- */

static int fail(const fr_options *o, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(const fr_options *o, int code, const char *fmt, ...)
{
	if (o->error_buf != NULL && o->error_buf_size > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(o->error_buf, o->error_buf_size, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* recv_welcome receives the 64-byte welcome and the descriptors riding
 * with its first byte (step 3), with room for more descriptors than
 * expected so that a wrong count is seen, not truncated. All of them are
 * close-on-exec; those beyond the first two are closed at once and
 * counted in *extra. Returns the number kept (0..2), or a negative error. */
static int recv_welcome(const fr_options *o, int sock, uint8_t msg[FR_MSG_SIZE], int fds[2], int *extra)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} cbuf;
	struct iovec iov = {.iov_base = msg, .iov_len = FR_MSG_SIZE};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf, .msg_controllen = sizeof cbuf.buf};
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return fail(o, FR_ERR_NOT_RESPONDING, "no welcome within the handshake timeout: the producer is stopped or hung");
	if (n < 0)
		return fail(o, FR_ERR_PRODUCER_GONE, "receive the welcome: %s", strerror(errno));
	if (n == 0)
		return fail(o, FR_ERR_PRODUCER_GONE, "the producer closed the connection without a welcome");
	int nfds = 0;
	*extra = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (nfds < 2) {
				fds[nfds++] = fd;
			} else {
				close(fd);
				(*extra)++;
			}
		}
	}
	if ((mh.msg_flags & MSG_CTRUNC) != 0) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return fail(o, FR_ERR_PROTOCOL, "the welcome's descriptors were truncated");
	}
	/* A stream socket may deliver the message in pieces; the descriptors
	 * came with the first one. */
	size_t got = (size_t)n;
	while (got < FR_MSG_SIZE) {
		ssize_t m = recv(sock, msg + got, FR_MSG_SIZE - got, 0);
		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			return fail(o, FR_ERR_PROTOCOL, "short welcome: %zu of %u bytes", got, FR_MSG_SIZE);
		}
		got += (size_t)m;
	}
	return nfds;
}

/* check_segment verifies a received memfd before anything maps it (step
 * 5): the seals, a size of at least one page, and the size the welcome
 * announced. */
static int check_segment(const fr_options *o, int fd, const char *what, int want_seals, uint64_t welcome_size,
			 uint64_t *size)
{
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return fail(o, FR_ERR_CORRUPT, "%s segment: F_GET_SEALS: %s (not a memfd)", what, strerror(errno));
	if ((seals & want_seals) != want_seals)
		return fail(o, FR_ERR_CORRUPT, "%s segment: seals %#x, need %#x", what, (unsigned)seals, (unsigned)want_seals);
	struct stat st;
	if (fstat(fd, &st) != 0)
		return fail(o, FR_ERR_SYSTEM, "%s segment: fstat: %s", what, strerror(errno));
	if (st.st_size < (off_t)FR_HEADER_SIZE || (uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2)
		return fail(o, FR_ERR_CORRUPT, "%s segment of %lld bytes", what, (long long)st.st_size);
	if ((uint64_t)st.st_size != welcome_size)
		return fail(o, FR_ERR_PROTOCOL, "%s segment of %lld bytes, the welcome says %" PRIu64, what,
			    (long long)st.st_size, welcome_size);
	*size = (uint64_t)st.st_size;
	return FR_OK;
}

static int status_error(const fr_options *o, uint32_t status)
{
	switch (status) {
	case STATUS_INCOMPATIBLE:
		return fail(o, FR_ERR_INCOMPATIBLE, "the producer refused our layout version (%d)", FR_LAYOUT_VERSION);
	case STATUS_DENIED:
		return fail(o, FR_ERR_DENIED, "the producer denied us (our uid/gid is not in its allow list)");
	case STATUS_FULL:
		return fail(o, FR_ERR_FULL, "the consumer table is full");
	case STATUS_BAD_REQUEST:
		return fail(o, FR_ERR_REFUSED, "the producer refused our hello as malformed");
	case STATUS_CLOSING:
		return fail(o, FR_ERR_CLOSED, "the ring is closing");
	}
	return fail(o, FR_ERR_REFUSED, "the producer refused us with status %" PRIu32, status);
}

/* skip_gone raises a lossless cursor that asked for old frames (start) to
 * the oldest frame the ring still holds (9.6): frames gone before we
 * attached are not ours to count as missed. The scan is stable: our
 * cursor, stored by the producer before the welcome, pins every frame at or
 * after it, so no slot holding one can be reused until we raise it. */
static void skip_gone(fr_ring *r)
{
	uint64_t cursor = atomic_load_explicit(&r->cursor, memory_order_relaxed);
	uint64_t next = published(r) + 1, oldest = 0;
	for (uint32_t k = 0; k < r->g.slots; k++) {
		uint64_t g = gen_of(r, k), s = seq_of(r, k);
		if ((g & 1) == 0 && s >= cursor && (oldest == 0 || s < oldest) && gen_of(r, k) == g)
			oldest = s;
	}
	if (oldest == 0)
		oldest = next;
	if (oldest > cursor) {
		atomic_store_explicit(&r->cursor, oldest, memory_order_relaxed);
		atomic_store(c64(r, entry_off(r) + E_CURSOR), oldest);
	}
}

static void free_ring(fr_ring *r)
{
	if (r->data != NULL)
		munmap((void *)(uintptr_t)r->data, r->data_len);
	if (r->ctl != NULL)
		munmap(r->ctl, r->ctl_len);
	if (r->data_fd >= 0)
		close(r->data_fd);
	if (r->sock >= 0)
		close(r->sock);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->conn_mu);
	free(r->local);
	free(r->leases);
	free(r->free_leases);
	free(r);
}

static void teardown(fr_ring *r)
{
	if (r->entry >= 0 && r->sock >= 0 && !atomic_load(&r->gone)) {
		/* A clean detach: every lease is released; say so, so that the
		 * producer counts a detach, not a reclaim (6.2). 64 bytes into an
		 * idle socket: never blocks, never raises SIGPIPE. */
		uint8_t bye[FR_MSG_SIZE];
		fr__encode_bye(bye);
		ssize_t n;
		do
			n = send(r->sock, bye, sizeof bye, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
	}
	/* Closing the connection is the detach (6.3): nothing touches the
	 * control segment after this. */
	free_ring(r);
}

static int attach(const fr_options *o, fr_ring *r, const char *path)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->sock < 0)
		return fail(o, FR_ERR_SYSTEM, "socket: %s", strerror(errno));
	if (connect(r->sock, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;
		switch (e) {
		case ENOENT:
			return fail(o, FR_ERR_NO_SUCH_RING, "%s: no such ring", path);
		case ECONNREFUSED:
			return fail(o, FR_ERR_PRODUCER_GONE, "%s: its socket is left over, nobody serves it", path);
		case EACCES:
		case EPERM:
			return fail(o, FR_ERR_DENIED, "connect %s: %s", path, strerror(e));
		}
		errno = e;
		return fail(o, FR_ERR_SYSTEM, "connect %s: %s", path, strerror(e));
	}
	int ms = o->handshake_timeout_ms > 0 ? o->handshake_timeout_ms : DEFAULT_HANDSHAKE_MS;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	setsockopt(r->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(r->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

	uint8_t msg[FR_MSG_SIZE];
	/* chain_wake: every wait of ours keeps the promise (pass_wake), so the
	 * producer may wake one sleeper instead of all (9.5). */
	fr__encode_hello(msg, r->role, r->role == FR_ROLE_CONSUMER ? r->mode : 0, FR_HELLO_CHAIN_WAKE, o->name,
			 r->role == FR_ROLE_CONSUMER ? o->start : 0);
	/* A refused peer can still read why: try the welcome even if the send
	 * failed. */
	ssize_t sent;
	do
		sent = send(r->sock, msg, sizeof msg, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	(void)sent;

	int fds[2] = {-1, -1}, extra = 0;
	int nfds = recv_welcome(o, r->sock, msg, fds, &extra);
	if (nfds < 0)
		return nfds;
	int rc;
	uint64_t data_len = 0, ctl_len = 0;
	struct fr_welcome w;
	char why[200];
	/* Step 4: magic, version, status, descriptor count, entry. */
	if ((rc = fr__decode_welcome(msg, FR_MSG_SIZE, &w, why, sizeof why)) != 0) {
		rc = fail(o, rc, "%s", why);
		goto out;
	}
	if (w.status != STATUS_OK) {
		rc = status_error(o, w.status);
		goto out;
	}
	if (nfds + extra != 2) {
		rc = fail(o, FR_ERR_PROTOCOL, "the welcome carried %d descriptors, want 2", nfds + extra);
		goto out;
	}
	if ((r->role == FR_ROLE_CONSUMER) != (w.entry != FR_NO_ENTRY)) {
		rc = fail(o, FR_ERR_PROTOCOL, "the welcome names entry %" PRIu32 " for a%s", w.entry,
			  r->role == FR_ROLE_CONSUMER ? " consumer" : "n observer");
		goto out;
	}
	/* Step 5: seals and sizes, before mapping anything. */
	if ((rc = check_segment(o, fds[0], "data", F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL,
				w.data_file_size, &data_len)) != FR_OK ||
	    (rc = check_segment(o, fds[1], "control", F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, w.control_file_size,
				&ctl_len)) != FR_OK)
		goto out;
	/* Step 6: data read-only, control read-write, whole segments. */
	int populate = (r->flags & FR_OPT_PREFAULT) ? MAP_POPULATE : 0;
	void *d = mmap(NULL, (size_t)data_len, PROT_READ, MAP_SHARED | populate, fds[0], 0);
	if (d == MAP_FAILED) {
		rc = fail(o, FR_ERR_SYSTEM, "map the data segment: %s", strerror(errno));
		goto out;
	}
	r->data = d;
	r->data_len = (size_t)data_len;
	void *c = mmap(NULL, (size_t)ctl_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fds[1], 0);
	if (c == MAP_FAILED) {
		rc = fail(o, FR_ERR_SYSTEM, "map the control segment: %s", strerror(errno));
		goto out;
	}
	r->ctl = c;
	r->ctl_len = (size_t)ctl_len;
	/* Steps 7-9, on private copies of the headers: what is checked is what
	 * is used, whatever the segments' owners do meanwhile. */
	uint8_t *hdr = malloc(FR_HEADER_SIZE);
	if (hdr == NULL) {
		rc = fail(o, FR_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(hdr, r->data, FR_HEADER_SIZE);
	rc = fr__decode_data_header(hdr, FR_HEADER_SIZE, data_len, &r->g, why, sizeof why);
	if (rc == 0 && r->g.epoch != w.epoch) {
		snprintf(why, sizeof why, "data segment epoch %#" PRIx64 ", the welcome's %#" PRIx64, r->g.epoch, w.epoch);
		rc = FR_ERR_PROTOCOL;
	}
	if (rc == 0) {
		memcpy(hdr, r->ctl, FR_HEADER_SIZE);
		rc = fr__decode_control_header(hdr, FR_HEADER_SIZE, ctl_len, &r->g, why, sizeof why);
	}
	free(hdr);
	if (rc != 0) {
		rc = fail(o, rc, "%s", why);
		goto out;
	}
	/* Step 10: the geometry is in r->g; from here on only it is used. */
	r->max_leases = o->max_leases > 0 ? o->max_leases : r->g.slots;
	if (r->max_leases > MAX_LEASES)
		r->max_leases = MAX_LEASES;
	r->local = calloc(r->g.slots, sizeof *r->local);
	r->leases = calloc(r->max_leases, sizeof *r->leases);
	r->free_leases = calloc(r->max_leases, sizeof *r->free_leases);
	if (r->local == NULL || r->leases == NULL || r->free_leases == NULL) {
		rc = fail(o, FR_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < r->max_leases; i++) {
		atomic_init(&r->leases[i].tok, 0);
		r->free_leases[i] = r->max_leases - 1 - i;
	}
	r->nfree = r->max_leases;
	int64_t stall = (int64_t)(o->stall_after_ms > 0 ? o->stall_after_ms : DEFAULT_STALL_MS) * NS_PER_MS;
	r->stall_after_ns = stall > 2 * (int64_t)r->g.heartbeat_ns ? stall : 2 * (int64_t)r->g.heartbeat_ns;
	/* Step 11: a consumer starts where the producer put its cursor. */
	if (r->role == FR_ROLE_CONSUMER) {
		r->entry = (int32_t)w.entry;
		r->bit = (uint64_t)1 << w.entry;
		atomic_store_explicit(&r->cursor, atomic_load(c64(r, entry_off(r) + E_CURSOR)), memory_order_relaxed);
		if (o->start != 0 && r->mode == FR_MODE_LOSSLESS)
			skip_gone(r);
	} else {
		atomic_store_explicit(&r->cursor, published(r) + 1, memory_order_relaxed);
	}
	r->data_fd = fds[0];
	fds[0] = -1;
	rc = FR_OK;
out:
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (rc == FR_OK) {
		/* The handshake's timeouts are cleared: later reads never block. */
		struct timeval zero = {0};
		setsockopt(r->sock, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof zero);
		setsockopt(r->sock, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
	}
	return rc;
}

int fr_attach(const fr_options *o, fr_ring **out)
{
	if (out == NULL)
		return FR_ERR_INVALID;
	*out = NULL;
	if (o == NULL)
		return FR_ERR_INVALID;
	uint32_t role = o->role ? o->role : FR_ROLE_CONSUMER, mode = o->mode ? o->mode : FR_MODE_LOSSY;
	if (role != FR_ROLE_CONSUMER && role != FR_ROLE_OBSERVER)
		return fail(o, FR_ERR_INVALID, "role %" PRIu32, o->role);
	if (mode != FR_MODE_LOSSY && mode != FR_MODE_LOSSLESS)
		return fail(o, FR_ERR_INVALID, "mode %" PRIu32, o->mode);
	if (o->name != NULL && !fr__valid_name(o->name))
		return fail(o, FR_ERR_INVALID, "consumer name: want at most %u printable ASCII bytes", FR_NAME_LEN);
	if ((o->flags & ~(uint32_t)(FR_OPT_INTERRUPTIBLE | FR_OPT_PREFAULT | FR_OPT_PEEK | FR_OPT_TRACE_SLEEP)) != 0)
		return fail(o, FR_ERR_INVALID, "unknown option flags %#" PRIx32, o->flags);
	char path[sizeof ((struct sockaddr_un *)0)->sun_path];
	if (o->socket_path != NULL && o->socket_path[0] != '\0') {
		if (strlen(o->socket_path) >= sizeof path)
			return fail(o, FR_ERR_INVALID, "socket path longer than %zu bytes", sizeof path - 1);
		memcpy(path, o->socket_path, strlen(o->socket_path) + 1);
	} else {
		int rc = fr_socket_path(o->ring, path, sizeof path);
		if (rc == FR_ERR_INVALID)
			return fail(o, rc, "ring name %s: want 1-64 of [A-Za-z0-9._-], not starting with . _ or -",
				    o->ring);
		if (rc != FR_OK)
			return fail(o, FR_ERR_INVALID, "the socket path of ring %s is longer than %zu bytes", o->ring,
				    sizeof path - 1);
	}
	fr_ring *r = calloc(1, sizeof *r);
	if (r == NULL)
		return fail(o, FR_ERR_NOMEM, "out of memory");
	r->sock = -1;
	r->data_fd = -1;
	r->entry = -1;
	r->role = role;
	r->mode = mode;
	r->flags = o->flags;
	r->spin_ns = o->spin_ns != 0 ? o->spin_ns : DEFAULT_SPIN_NS;
	r->futex_ms = o->futex_timeout_ms > 0 ? o->futex_timeout_ms : DEFAULT_FUTEX_MS;
	r->log = o->log;
	r->log_arg = o->log_arg;
	memcpy(r->path, path, sizeof r->path);
	atomic_init(&r->refs, 1);
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->conn_mu, NULL);
	int rc = attach(o, r, path);
	if (rc != FR_OK) {
		int e = errno;
		free_ring(r);
		errno = e;
		return rc;
	}
	*out = r;
	return FR_OK;
}

/* ---------------------------------------------------------------------
 * Detach
 * ------------------------------------------------------------------- */

int fr_shutdown(fr_ring *r)
{
	if (r == NULL)
		return FR_ERR_INVALID;
	/* Our sleepers re-check (and, harmlessly, everyone's): only when we
	 * have some, so that a detach costs the other consumers nothing.
	 * shut (SC) before sleepers; a sleeper adds itself to sleepers (SC)
	 * before it loads shut: one of the two sees the other. */
	if (!atomic_exchange(&r->shut, 1) && atomic_load(&r->sleepers) > 0)
		futex_wake_all(r);
	return FR_OK;
}

int fr_detach(fr_ring *r)
{
	if (r == NULL)
		return FR_ERR_INVALID;
	pthread_mutex_lock(&r->mu);
	if (r->closed) {
		pthread_mutex_unlock(&r->mu);
		return FR_ERR_INVALID;
	}
	r->closed = 1;
	atomic_store(&r->shut, 1);
	atomic_store(&r->closing, 1);
	/* Our sleepers return FR_ERR_CLOSED; their waiter bit goes now (they
	 * will not touch it again: set_waiting checks closed). */
	if (r->entry >= 0 && r->waiting > 0 && !atomic_load(&r->gone))
		atomic_fetch_and(c64(r, C_WAITERS), ~r->bit);
	pthread_mutex_unlock(&r->mu);
	if (atomic_load(&r->sleepers) > 0) /* as in fr_shutdown */
		futex_wake_all(r);
	unref(r); /* the attachment's reference */
	return FR_OK;
}
