/*
 * frcat: a reference consumer of a framering ring, layout v1.
 *
 * Written from docs/LAYOUT.md alone (section numbers below refer to it), in
 * plain C11 + POSIX + Linux headers, to prove that the specification is
 * enough to attach to a ring and read frames from it. It
 *
 *   - connects to the ring's socket, sends a hello (consumer, lossy or
 *     lossless; or observer), receives the welcome and the two memfds (6.3);
 *   - checks the seals and sizes, maps data read-only and control read-write,
 *     validates both headers against the recomputed geometry (5, 6.3);
 *   - reads N frames by sequence number with the hold protocol (9.3) or the
 *     seqlock peek protocol (9.2), sleeping on the ring's futex with its
 *     waiter bit set when no frame is ready (9.5, 10.5);
 *   - verifies every frame's pattern stamp and Sum64 checksum (appendix A),
 *     prints one line per frame, keeps its entry's cursor and counters (9.6,
 *     12), and releases its holds.
 *
 * Usage: frcat [-n N] [-m lossless|lossy] [-p hold|peek] [-O] [-N name]
 *              [-w ms] [-i] [-K] SOCKET
 *   -n N      frames to deliver (default 100)
 *   -m MODE   lossless (default): every sequence number in order;
 *             lossy: always the newest frame, counting the skipped ones
 *   -p PROTO  hold (default): borrow each frame with a hold;
 *             peek: read it optimistically and re-check its generation
 *   -O        attach as an observer (no table entry, no holds): peek only
 *   -N NAME   name shown in the consumer table (default "frcat")
 *   -w MS     futex sleep timeout in milliseconds (default 100; 0: none)
 *   -i        also require each frame's id to equal its sequence number
 *   -K        after N frames, borrow the newest frame, print "holding ..."
 *             and wait to be killed (for crash tests)
 *
 * Output (stdout), one line each:
 *   attached entry=E role=R mode=M proto=P epoch=X slots=S ... cursor=C
 *   waiting seq=S waiters=0xMASK          (the first time it sleeps)
 *   frame seq=S id=I width=W height=H stride=B format=0xF length=L slot=K sum=X ok|BAD(why)
 *   missed seq=S
 *   holding seq=S slot=K                  (-K)
 *   done delivered=D skipped=S missed=M bad=B cursor=C end=REASON
 *
 * Exit status: 0 when N frames were delivered and every one verified (and,
 * for a lossless consumer, none was missed); 1 a frame failed verification,
 * a lossless consumer missed a frame, or the ring broke the protocol; 2
 * usage; 3 attach or validation failed; 4 the ring ended first (closed,
 * producer gone, evicted).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
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

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "framering rings are little-endian; shared words are accessed atomically (LAYOUT.md 2)"
#endif

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

typedef _Atomic uint64_t au64;
typedef _Atomic uint32_t au32;
typedef _Atomic uint8_t au8;

_Static_assert(sizeof(au64) == 8 && _Alignof(au64) == 8, "64-bit atomics must be plain words");
_Static_assert(sizeof(au32) == 4 && _Alignof(au32) == 4, "32-bit atomics must be plain words");

/* ---- Layout v1 (LAYOUT.md 3-6) ---- */

#define LAYOUT_VERSION 2u
#define PAGE 4096u
#define HEADER_SIZE 4096u
#define DESC_SIZE 128u
#define INDEX_ENTRY_SIZE 8u
#define HOLD_SIZE 64u
#define ENTRY_SIZE 256u
#define MAX_CONSUMERS 64u
#define MSG_SIZE 64u
#define NAME_LEN 32u
#define MAX_SLOTS 65535u
#define MAX_INDEX (1u << 24)
#define MAX_CAPACITY (1ull << 30)
#define NO_ENTRY 0xFFFFFFFFu

#define MAGIC_DATA 0x41544144524D5246ull    /* "FRMRDATA" */
#define MAGIC_CONTROL 0x4C525443524D5246ull /* "FRMRCTRL" */
#define MAGIC_HELLO 0x4F4C4548524D5246ull   /* "FRMRHELO" */
#define MAGIC_WELCOME 0x434C4557524D5246ull /* "FRMRWELC" */
#define MAGIC_NOTE 0x45544F4E524D5246ull    /* "FRMRNOTE" */

/* Data header (3.1). */
#define D_MAGIC 0x00
#define D_VERSION 0x08
#define D_HEADER_SIZE 0x0C
#define D_SLOT_COUNT 0x10
#define D_INDEX_COUNT 0x14
#define D_SLOT_CAPACITY 0x18
#define D_DESC_OFFSET 0x20
#define D_INDEX_OFFSET 0x28
#define D_PAYLOAD_OFFSET 0x30
#define D_DATA_SIZE 0x38
#define D_EPOCH 0x40
#define D_PRODUCER_PID 0x48
#define D_MAX_CONSUMERS 0x4C
#define D_CONTROL_SIZE 0x50
#define D_FLAGS 0x60
#define D_PUBLISHED 0x80
#define D_STATE 0xC0
#define D_WAKE 0x100
#define D_HOLD_QUOTA 0x64
#define D_HEARTBEAT_PERIOD 0x68
#define D_HEARTBEAT_NS 0x170

#define STATE_CLOSED 2u

/* Descriptor (3.2), relative to the descriptor. */
#define DS_GEN 0x00
#define DS_SEQ 0x08
#define DS_FRAME_ID 0x10
#define DS_TIMESTAMP 0x18
#define DS_WIDTH 0x20
#define DS_HEIGHT 0x24
#define DS_STRIDE 0x28
#define DS_FORMAT 0x2C
#define DS_LENGTH 0x30
#define DS_FLAGS 0x38

/* Control header (4.1). */
#define C_MAGIC 0x00
#define C_VERSION 0x08
#define C_HEADER_SIZE 0x0C
#define C_SLOT_COUNT 0x10
#define C_MAX_CONSUMERS 0x14
#define C_HOLDS_OFFSET 0x18
#define C_TABLE_OFFSET 0x20
#define C_CONTROL_SIZE 0x28
#define C_EPOCH 0x30
#define C_WAITERS 0x40

/* Consumer table entry (4.3), relative to the entry. */
#define E_STATE 0x00
#define ENTRY_EVICTED 2u
#define E_CURSOR 0x40
#define E_DELIVERED 0x48
#define E_SKIPPED 0x50
#define E_MISSED 0x58
#define E_HELD 0x60
#define E_LAST_SEQ 0x68
#define E_LATENCY_NS 0x70

#define ENTRY_EVICTED 2u

/* Hello roles and modes, welcome statuses, note kinds (6.2). */
#define ROLE_CONSUMER 1u
#define ROLE_OBSERVER 2u
#define MODE_LOSSY 1u
#define MODE_LOSSLESS 2u
#define NOTE_EVICTED 1u
#define NOTE_CLOSING 2u

/* Pattern stamp (appendix A). */
#define STAMP_SIZE 32u
#define STAMP_MAGIC 0x54505246u
#define SUM_MUL 0x9E3779B97F4A7C15ull
#define SUM_FIN 0xFF51AFD7ED558CCDull

/* Exit statuses. */
enum { EXIT_OK = 0, EXIT_BAD = 1, EXIT_USAGE = 2, EXIT_ATTACH = 3, EXIT_ENDED = 4 };

/* Results of locate/peek/borrow (9.1). */
enum { RES_OK = 0, RES_NOT_PUBLISHED, RES_OVERWRITTEN, RES_CORRUPT };

/* Why the ring cannot deliver more (9.5). */
enum { S_RUNNING = 0, S_CLOSED, S_GONE, S_EVICTED, S_ERROR };
static const char *const status_name[] = {"ok", "closed", "producer-gone", "evicted", "error"};

/* The geometry, validated once and kept in private memory (6.3 step 10). */
struct geo {
	uint32_t slots, index_count;
	uint64_t capacity;
	uint64_t desc_off, index_off, payload_off, data_size;
	uint64_t holds_off, table_off, control_size;
	uint64_t epoch;
	uint32_t producer_pid, flags;
};

struct ring {
	int sock;
	const uint8_t *data;
	size_t data_len;
	uint8_t *ctl;
	size_t ctl_len;
	struct geo g;
	int observer;
	uint32_t entry;
	uint64_t bit;
	/* The connection (6.2, 6.3). */
	int gone, closing_note, evicted_note;
	uint8_t note[MSG_SIZE];
	size_t note_len;
	/* Our leases per slot (9.3, 9.4). */
	uint32_t *leases;
	uint64_t held;
	long wait_ms;
	int said_waiting;
};

struct desc {
	uint64_t seq, frame_id;
	int64_t timestamp;
	uint32_t width, height, stride, format;
	uint64_t length;
	uint32_t flags;
};

struct verdict {
	int ok;
	const char *why;
	uint64_t sum;
};

/* ---- Little helpers ---- */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Shared words. Data-segment words are only ever loaded (the mapping is
 * read-only); the const-qualified atomic pointer says so. */
static const au64 *data64(const struct ring *r, uint64_t off) { return (const au64 *)(const void *)(r->data + off); }
static const au32 *data32(const struct ring *r, uint64_t off) { return (const au32 *)(const void *)(r->data + off); }
static au64 *ctl64(const struct ring *r, uint64_t off) { return (au64 *)(void *)(r->ctl + off); }
static au32 *ctl32(const struct ring *r, uint64_t off) { return (au32 *)(void *)(r->ctl + off); }

static uint64_t desc_off(const struct ring *r, uint32_t k) { return r->g.desc_off + (uint64_t)k * DESC_SIZE; }
static uint64_t entry_off(const struct ring *r) { return r->g.table_off + (uint64_t)r->entry * ENTRY_SIZE; }
static const uint8_t *payload(const struct ring *r, uint32_t k) { return r->data + r->g.payload_off + (uint64_t)k * r->g.capacity; }

/* All sequentially consistent (10.1): Go's atomics are, and the Dekker
 * arguments of 10.3 and 10.5 need it. */
static uint64_t gen_of(const struct ring *r, uint32_t k) { return atomic_load(data64(r, desc_off(r, k) + DS_GEN)); }
static uint64_t seq_of(const struct ring *r, uint32_t k) { return atomic_load(data64(r, desc_off(r, k) + DS_SEQ)); }
static uint64_t published(const struct ring *r) { return atomic_load(data64(r, D_PUBLISHED)); }
static au64 *hold_word(const struct ring *r, uint32_t k) { return ctl64(r, r->g.holds_off + (uint64_t)k * HOLD_SIZE); }

/* ---- Geometry (5) ---- */

/* compute_geometry checks the counts against section 5's constraints and
 * derives every offset from them, in uint64_t (no sum can wrap within the
 * bounds). */
static int compute_geometry(uint32_t slots, uint32_t index_count, uint64_t capacity, struct geo *g)
{
	if (slots < 1 || slots > MAX_SLOTS)
		return -1;
	if (index_count < slots || index_count > MAX_INDEX || (index_count & (index_count - 1)) != 0)
		return -1;
	if (capacity < PAGE || capacity > MAX_CAPACITY || capacity % PAGE != 0)
		return -1;
	memset(g, 0, sizeof *g);
	g->slots = slots;
	g->index_count = index_count;
	g->capacity = capacity;
	g->desc_off = HEADER_SIZE;
	g->index_off = align_up(g->desc_off + (uint64_t)slots * DESC_SIZE, 64);
	g->payload_off = align_up(g->index_off + (uint64_t)index_count * INDEX_ENTRY_SIZE, PAGE);
	g->data_size = g->payload_off + (uint64_t)slots * capacity;
	g->holds_off = HEADER_SIZE;
	g->table_off = align_up(g->holds_off + (uint64_t)slots * HOLD_SIZE, 64);
	g->control_size = align_up(g->table_off + (uint64_t)MAX_CONSUMERS * ENTRY_SIZE, PAGE);
	return 0;
}

/* validate_data checks the data header in the order of 6.3 step 7. */
static int validate_data(const uint8_t *h, uint64_t len, struct geo *g)
{
	if (len < HEADER_SIZE) {
		fprintf(stderr, "frcat: data segment of %" PRIu64 " bytes is shorter than its header\n", len);
		return -1;
	}
	if (le64(h + D_MAGIC) != MAGIC_DATA || le32(h + D_VERSION) != LAYOUT_VERSION ||
	    le32(h + D_HEADER_SIZE) != HEADER_SIZE || le32(h + D_MAX_CONSUMERS) != MAX_CONSUMERS) {
		fprintf(stderr, "frcat: incompatible data segment: magic %#018" PRIx64 " version %" PRIu32
				" header %" PRIu32 " consumers %" PRIu32 "\n",
			le64(h + D_MAGIC), le32(h + D_VERSION), le32(h + D_HEADER_SIZE), le32(h + D_MAX_CONSUMERS));
		return -1;
	}
	uint32_t slots = le32(h + D_SLOT_COUNT), index_count = le32(h + D_INDEX_COUNT);
	uint64_t capacity = le64(h + D_SLOT_CAPACITY);
	if (compute_geometry(slots, index_count, capacity, g) != 0) {
		fprintf(stderr, "frcat: corrupt data segment: %" PRIu32 " slots of %" PRIu64 " bytes, index %" PRIu32 "\n",
			slots, capacity, index_count);
		return -1;
	}
	if (le64(h + D_DESC_OFFSET) != g->desc_off || le64(h + D_INDEX_OFFSET) != g->index_off ||
	    le64(h + D_PAYLOAD_OFFSET) != g->payload_off || le64(h + D_DATA_SIZE) != g->data_size ||
	    le64(h + D_CONTROL_SIZE) != g->control_size) {
		fprintf(stderr, "frcat: corrupt data segment: region offsets disagree with the counts\n");
		return -1;
	}
	if (g->data_size > len) {
		fprintf(stderr, "frcat: corrupt data segment: layout needs %" PRIu64 " bytes, segment has %" PRIu64 "\n",
			g->data_size, len);
		return -1;
	}
	uint32_t quota = le32(h + D_HOLD_QUOTA);
	if (quota < 1 || quota > slots || le64(h + D_HEARTBEAT_PERIOD) == 0) {
		fprintf(stderr, "frcat: corrupt data segment: hold quota %" PRIu32 ", heartbeat period %" PRIu64 "\n", quota,
			le64(h + D_HEARTBEAT_PERIOD));
		return -1;
	}
	g->epoch = le64(h + D_EPOCH);
	g->producer_pid = le32(h + D_PRODUCER_PID);
	g->flags = le32(h + D_FLAGS);
	return 0;
}

/* validate_control checks the control header against the data geometry
 * (6.3 step 9). */
static int validate_control(const uint8_t *h, uint64_t len, const struct geo *g)
{
	if (len < HEADER_SIZE) {
		fprintf(stderr, "frcat: control segment of %" PRIu64 " bytes is shorter than its header\n", len);
		return -1;
	}
	if (le64(h + C_MAGIC) != MAGIC_CONTROL || le32(h + C_VERSION) != LAYOUT_VERSION) {
		fprintf(stderr, "frcat: incompatible control segment: magic %#018" PRIx64 " version %" PRIu32 "\n",
			le64(h + C_MAGIC), le32(h + C_VERSION));
		return -1;
	}
	if (le32(h + C_HEADER_SIZE) != HEADER_SIZE || le32(h + C_SLOT_COUNT) != g->slots ||
	    le32(h + C_MAX_CONSUMERS) != MAX_CONSUMERS || le64(h + C_HOLDS_OFFSET) != g->holds_off ||
	    le64(h + C_TABLE_OFFSET) != g->table_off || le64(h + C_CONTROL_SIZE) != g->control_size) {
		fprintf(stderr, "frcat: corrupt control segment: does not match the data segment\n");
		return -1;
	}
	if (le64(h + C_EPOCH) != g->epoch) {
		fprintf(stderr, "frcat: corrupt control segment: epoch %#" PRIx64 ", data segment %#" PRIx64 "\n",
			le64(h + C_EPOCH), g->epoch);
		return -1;
	}
	if (g->control_size > len) {
		fprintf(stderr, "frcat: corrupt control segment: layout needs %" PRIu64 " bytes, segment has %" PRIu64 "\n",
			g->control_size, len);
		return -1;
	}
	return 0;
}

/* ---- Attaching (6) ---- */

static int write_all(int fd, const uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* recv_welcome receives the 64-byte welcome and the descriptors riding with
 * its first byte (6.3 step 3). It returns the number of descriptors, or -1.
 * The buffer has room for more descriptors than v1 sends, so that a wrong
 * count is seen rather than truncated; all of them are close-on-exec. */
static int recv_welcome(int sock, uint8_t msg[MSG_SIZE], int fds[], int max_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} cbuf;
	struct iovec iov = {.iov_base = msg, .iov_len = MSG_SIZE};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf, .msg_controllen = sizeof cbuf.buf};
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		fprintf(stderr, "frcat: no welcome: %s\n", n == 0 ? "connection closed" : strerror(errno));
		return -1;
	}
	int nfds = 0, extra = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (nfds < max_fds)
				fds[nfds++] = fd;
			else {
				close(fd);
				extra++;
			}
		}
	}
	if ((mh.msg_flags & MSG_CTRUNC) != 0 || extra > 0) {
		fprintf(stderr, "frcat: welcome carried too many descriptors\n");
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return -1;
	}
	/* A stream socket may deliver the message in pieces; the descriptors
	 * came with the first one. */
	size_t got = (size_t)n;
	while (got < MSG_SIZE) {
		ssize_t m = read(sock, msg + got, MSG_SIZE - got);
		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0) {
			fprintf(stderr, "frcat: short welcome (%zu bytes)\n", got);
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			return -1;
		}
		got += (size_t)m;
	}
	return nfds;
}

/* check_segment verifies a received memfd before anything maps it (6.3
 * step 5) and returns its size in *size. */
static int check_segment(int fd, const char *what, int want_seals, uint64_t welcome_size, uint64_t *size)
{
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0) {
		fprintf(stderr, "frcat: %s segment: F_GET_SEALS: %s\n", what, strerror(errno));
		return -1;
	}
	if ((seals & want_seals) != want_seals) {
		fprintf(stderr, "frcat: %s segment: seals %#x, need %#x\n", what, (unsigned)seals, (unsigned)want_seals);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		fprintf(stderr, "frcat: %s segment: fstat: %s\n", what, strerror(errno));
		return -1;
	}
	if (st.st_size < (off_t)HEADER_SIZE || (uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2) {
		fprintf(stderr, "frcat: %s segment: %lld bytes\n", what, (long long)st.st_size);
		return -1;
	}
	if ((uint64_t)st.st_size != welcome_size) {
		fprintf(stderr, "frcat: %s segment: %lld bytes, the welcome said %" PRIu64 "\n", what,
			(long long)st.st_size, welcome_size);
		return -1;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static const char *status_text(uint32_t s)
{
	switch (s) {
	case 1:
		return "incompatible";
	case 2:
		return "denied";
	case 3:
		return "consumer table full";
	case 4:
		return "bad request";
	case 5:
		return "ring closing";
	}
	return "unknown status";
}

static int ring_attach(struct ring *r, const char *path, uint32_t role, uint32_t mode, const char *name)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "frcat: socket path longer than %zu bytes\n", sizeof sa.sun_path - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->sock < 0) {
		perror("frcat: socket");
		return -1;
	}
	if (connect(r->sock, (struct sockaddr *)&sa, sizeof sa) != 0) {
		fprintf(stderr, "frcat: connect %s: %s (no producer serves the ring)\n", path, strerror(errno));
		return -1;
	}
	/* Bound the handshake; cleared afterwards. */
	struct timeval tv = {.tv_sec = 5};
	setsockopt(r->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

	uint8_t msg[MSG_SIZE];
	memset(msg, 0, sizeof msg);
	put64(msg + 0, MAGIC_HELLO);
	put32(msg + 8, LAYOUT_VERSION);
	put32(msg + 12, role);
	put32(msg + 16, role == ROLE_CONSUMER ? mode : 0);
	memcpy(msg + 24, name, strnlen(name, NAME_LEN));
	/* A refused peer can still read why: try the welcome even if the send
	 * failed. */
	int sent = write_all(r->sock, msg, sizeof msg);

	int fds[2];
	int nfds = recv_welcome(r->sock, msg, fds, 2);
	if (nfds < 0) {
		if (sent != 0)
			fprintf(stderr, "frcat: send hello: %s\n", strerror(errno));
		return -1;
	}
	int ok = -1;
	uint64_t data_len = 0, ctl_len = 0;
	/* 6.3 step 4: magic, version, status, descriptor count, entry. */
	if (le64(msg + 0) != MAGIC_WELCOME || le32(msg + 8) != LAYOUT_VERSION) {
		fprintf(stderr, "frcat: incompatible welcome: magic %#018" PRIx64 " version %" PRIu32 "\n", le64(msg),
			le32(msg + 8));
		goto out;
	}
	uint32_t status = le32(msg + 12), entry = le32(msg + 16);
	uint64_t w_epoch = le64(msg + 24), w_data = le64(msg + 32), w_ctl = le64(msg + 40);
	if (status != 0) {
		fprintf(stderr, "frcat: attach refused: status %" PRIu32 " (%s)\n", status, status_text(status));
		goto out;
	}
	if (nfds != 2) {
		fprintf(stderr, "frcat: welcome carried %d descriptors, want 2\n", nfds);
		goto out;
	}
	if (role == ROLE_CONSUMER ? entry >= MAX_CONSUMERS : entry != NO_ENTRY) {
		fprintf(stderr, "frcat: welcome names entry %" PRIu32 " for role %" PRIu32 "\n", entry, role);
		goto out;
	}
	/* 6.3 step 5: seals and sizes before mapping. */
	if (check_segment(fds[0], "data", F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL, w_data,
			  &data_len) != 0 ||
	    check_segment(fds[1], "control", F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, w_ctl, &ctl_len) != 0)
		goto out;
	/* 6.3 step 6: data read-only, control read-write, whole segments. */
	void *d = mmap(NULL, (size_t)data_len, PROT_READ, MAP_SHARED, fds[0], 0);
	if (d == MAP_FAILED) {
		perror("frcat: map data segment");
		goto out;
	}
	r->data = d;
	r->data_len = (size_t)data_len;
	void *c = mmap(NULL, (size_t)ctl_len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (c == MAP_FAILED) {
		perror("frcat: map control segment");
		goto out;
	}
	r->ctl = c;
	r->ctl_len = (size_t)ctl_len;
	/* 6.3 steps 7-9. */
	if (validate_data(r->data, data_len, &r->g) != 0)
		goto out;
	if (r->g.epoch != w_epoch) {
		fprintf(stderr, "frcat: data segment epoch %#" PRIx64 ", welcome %#" PRIx64 "\n", r->g.epoch, w_epoch);
		goto out;
	}
	if (validate_control(r->ctl, ctl_len, &r->g) != 0)
		goto out;
	r->observer = role == ROLE_OBSERVER;
	r->entry = entry;
	r->bit = r->observer ? 0 : (uint64_t)1 << entry;
	r->leases = calloc(r->g.slots, sizeof *r->leases);
	if (r->leases == NULL) {
		perror("frcat: calloc");
		goto out;
	}
	ok = 0;
out:
	/* The mappings keep the memfds alive; the descriptors are not needed. */
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	tv.tv_sec = 0;
	setsockopt(r->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return ok;
}

/* ring_detach releases what we still hold, then closes the connection (the
 * detach, 6.3), and only then unmaps. Nothing touches the control segment
 * after the close: our entry may be someone else's already. */
static void ring_detach(struct ring *r)
{
	if (r->ctl != NULL && !r->observer && r->leases != NULL) {
		for (uint32_t k = 0; k < r->g.slots; k++)
			if (r->leases[k] != 0)
				atomic_fetch_and(hold_word(r, k), ~r->bit);
		atomic_fetch_and(ctl64(r, C_WAITERS), ~r->bit);
		atomic_store(ctl64(r, entry_off(r) + E_HELD), 0);
	}
	if (r->sock >= 0)
		close(r->sock);
	r->sock = -1;
	if (r->data != NULL)
		munmap((void *)(uintptr_t)r->data, r->data_len);
	if (r->ctl != NULL)
		munmap(r->ctl, r->ctl_len);
	r->data = NULL;
	r->ctl = NULL;
	free(r->leases);
	r->leases = NULL;
}

/* poll_socket reads notes without blocking and notices end-of-file (6.2). */
static void poll_socket(struct ring *r)
{
	while (!r->gone) {
		ssize_t n = recv(r->sock, r->note + r->note_len, MSG_SIZE - r->note_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			r->gone = 1;
			return;
		}
		r->note_len += (size_t)n;
		if (r->note_len < MSG_SIZE)
			continue;
		r->note_len = 0;
		if (le64(r->note) != MAGIC_NOTE)
			continue;
		switch (le32(r->note + 8)) {
		case NOTE_EVICTED:
			r->evicted_note = 1;
			fprintf(stderr, "frcat: evicted by the producer\n");
			break;
		case NOTE_CLOSING:
			r->closing_note = 1;
			break;
		}
	}
}

/* ring_status reports why the ring cannot deliver more (9.5). */
static int ring_status(struct ring *r)
{
	poll_socket(r);
	if (!r->observer &&
	    (r->evicted_note || atomic_load(ctl32(r, entry_off(r) + E_STATE)) == ENTRY_EVICTED))
		return S_EVICTED;
	if (atomic_load(data32(r, D_STATE)) == STATE_CLOSED)
		return S_CLOSED;
	if (r->gone)
		return S_GONE;
	return S_RUNNING;
}

/* ---- Waiting (9.5, 10.5) ---- */

static int wait_published(struct ring *r, uint64_t after, uint64_t *out)
{
	for (int i = 0; i < 2000; i++) {
		uint64_t p = published(r);
		if (p > after) {
			*out = p;
			return S_RUNNING;
		}
		cpu_relax();
	}
	if (!r->observer)
		atomic_fetch_or(ctl64(r, C_WAITERS), r->bit); /* W1: SC RMW */
	int st = S_RUNNING;
	for (;;) {
		uint32_t w = atomic_load(data32(r, D_WAKE)); /* W2: before published */
		uint64_t p = published(r);                   /* W3 */
		if (p > after) {
			*out = p;
			break;
		}
		if ((st = ring_status(r)) != S_RUNNING)
			break;
		if (!r->said_waiting) {
			r->said_waiting = 1;
			printf("waiting seq=%" PRIu64 " waiters=%#" PRIx64 "\n", after + 1,
			       atomic_load(ctl64(r, C_WAITERS)));
			fflush(stdout);
		}
		/* Observers have no waiter bit: the producer may never wake them,
		 * so they poll every millisecond. */
		long ms = r->observer ? 1 : r->wait_ms;
		struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
		/* W4: a shared futex (no FUTEX_PRIVATE_FLAG) on the read-only
		 * mapping; FUTEX_WAIT only reads the word. */
		long rc = syscall(SYS_futex, (void *)(uintptr_t)data32(r, D_WAKE), FUTEX_WAIT, w,
				  ms > 0 ? &ts : NULL, NULL, 0);
		if (rc != 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
			perror("frcat: futex wait");
			st = S_ERROR;
			break;
		}
	}
	if (!r->observer)
		atomic_fetch_and(ctl64(r, C_WAITERS), ~r->bit);
	return st;
}

/* ---- Reading (9.1-9.4) ---- */

/* settle waits out the producer's reuse decision (9.1, 10.3): an odd
 * generation while the descriptor still names seq. Bounded by 100 ms, in
 * case the producer died right there; giving up counts as overwritten. */
static int settle(const struct ring *r, uint32_t k, uint64_t seq, uint64_t *gout)
{
	int64_t deadline = 0;
	for (unsigned i = 0;; i++) {
		uint64_t g = gen_of(r, k);
		if (seq_of(r, k) != seq)
			return 0; /* committed for reuse, or republished */
		if ((g & 1) == 0) {
			if (gen_of(r, k) == g) {
				*gout = g;
				return 1;
			}
			continue;
		}
		if (i < 64) {
			cpu_relax();
			continue;
		}
		int64_t now = mono_ns();
		if (deadline == 0)
			deadline = now + 100000000;
		else if (now > deadline)
			return 0;
		sched_yield();
	}
}

static int locate(const struct ring *r, uint64_t seq, uint32_t *kout, uint64_t *gout)
{
	if (seq == 0 || seq > published(r))
		return RES_NOT_PUBLISHED;
	uint64_t e = atomic_load(data64(r, r->g.index_off + (seq & (r->g.index_count - 1)) * INDEX_ENTRY_SIZE));
	if (e >> 16 != seq)
		return RES_OVERWRITTEN;
	uint32_t k = (uint32_t)(e & 0xFFFF);
	if (k >= r->g.slots) {
		fprintf(stderr, "frcat: index entry for %" PRIu64 " names slot %" PRIu32 " of %" PRIu32 "\n", seq, k,
			r->g.slots);
		return RES_CORRUPT;
	}
	if (!settle(r, k, seq, gout))
		return RES_OVERWRITTEN;
	*kout = k;
	return RES_OK;
}

/* read_desc reads a descriptor with relaxed atomic loads: under a peek they
 * may race with the producer (10.4), under a hold they cannot. */
static void read_desc(const struct ring *r, uint32_t k, struct desc *d)
{
	uint64_t b = desc_off(r, k);
	d->seq = atomic_load_explicit(data64(r, b + DS_SEQ), memory_order_relaxed);
	d->frame_id = atomic_load_explicit(data64(r, b + DS_FRAME_ID), memory_order_relaxed);
	d->timestamp = (int64_t)atomic_load_explicit(data64(r, b + DS_TIMESTAMP), memory_order_relaxed);
	d->width = atomic_load_explicit(data32(r, b + DS_WIDTH), memory_order_relaxed);
	d->height = atomic_load_explicit(data32(r, b + DS_HEIGHT), memory_order_relaxed);
	d->stride = atomic_load_explicit(data32(r, b + DS_STRIDE), memory_order_relaxed);
	d->format = atomic_load_explicit(data32(r, b + DS_FORMAT), memory_order_relaxed);
	d->length = atomic_load_explicit(data64(r, b + DS_LENGTH), memory_order_relaxed);
	d->flags = atomic_load_explicit(data32(r, b + DS_FLAGS), memory_order_relaxed);
}

/* Payload loads: relaxed atomics, so that a racing peek is not a C data
 * race (10.4). Payloads are page-aligned; words are read at multiples of 8. */
static uint64_t ld64(const uint8_t *p) { return atomic_load_explicit((const au64 *)(const void *)p, memory_order_relaxed); }
static uint32_t ld32(const uint8_t *p) { return atomic_load_explicit((const au32 *)(const void *)p, memory_order_relaxed); }
static uint8_t ld8(const uint8_t *p) { return atomic_load_explicit((const au8 *)(const void *)p, memory_order_relaxed); }

static uint64_t rotl64(uint64_t x, unsigned n) { return x << n | x >> (64 - n); }

/* sum64 is the pattern checksum of appendix A. */
static uint64_t sum64(uint64_t seed, const uint8_t *b, uint64_t n)
{
	uint64_t h = seed * SUM_MUL ^ n;
	uint64_t i = 0;
	for (; i + 8 <= n; i += 8)
		h = rotl64(h ^ ld64(b + i), 27) * SUM_MUL;
	if (i < n) {
		uint64_t w = 0;
		for (unsigned j = 0; i + j < n; j++)
			w |= (uint64_t)ld8(b + i + j) << (8 * j);
		h = rotl64(h ^ w, 27) * SUM_MUL;
	}
	h ^= h >> 33;
	h *= SUM_FIN;
	h ^= h >> 33;
	return h;
}

/* verify checks a frame's stamp against its descriptor and its checksum
 * against its bytes (appendix A). d->length has been checked against the
 * slot capacity. */
static struct verdict verify(const struct desc *d, const uint8_t *p, uint64_t seq, int want_id_is_seq)
{
	struct verdict v = {0, NULL, 0};
	if (d->length < STAMP_SIZE) {
		v.why = "shorter than a stamp";
		return v;
	}
	if (ld32(p) != STAMP_MAGIC) {
		v.why = "no stamp magic";
		return v;
	}
	if (ld32(p + 4) != d->format || ld64(p + 8) != d->frame_id || ld32(p + 16) != d->width ||
	    ld32(p + 20) != d->height) {
		v.why = "stamp disagrees with the descriptor";
		return v;
	}
	if ((uint64_t)d->stride * d->height != d->length) {
		v.why = "length is not stride*height";
		return v;
	}
	if (want_id_is_seq && d->frame_id != seq) {
		v.why = "frame id is not the sequence number";
		return v;
	}
	v.sum = sum64(d->frame_id, p + STAMP_SIZE, d->length - STAMP_SIZE);
	if (v.sum != ld64(p + 24)) {
		v.why = "checksum mismatch";
		return v;
	}
	v.ok = 1;
	return v;
}

/* peek reads frame seq without a hold and without writing (9.2, 10.4): the
 * verdict computed between the two generation loads counts only if the
 * generation did not move. */
static int peek(const struct ring *r, uint64_t seq, int want_id_is_seq, uint32_t *kout, struct desc *d,
		struct verdict *v)
{
	uint32_t k;
	uint64_t g1;
	int rc = locate(r, seq, &k, &g1);
	if (rc != RES_OK)
		return rc;
	read_desc(r, k, d);
	if (d->seq != seq || d->length > r->g.capacity) {
		atomic_thread_fence(memory_order_acquire);
		return gen_of(r, k) != g1 ? RES_OVERWRITTEN : RES_CORRUPT;
	}
	*v = verify(d, payload(r, k), seq, want_id_is_seq);
	/* R3: every load above happens before the generation is loaded again
	 * (DMB ISHLD on arm64, a compiler barrier on x86-64). */
	atomic_thread_fence(memory_order_acquire);
	if (gen_of(r, k) != g1)
		return RES_OVERWRITTEN;
	*kout = k;
	return RES_OK;
}

/* borrow takes a hold on frame seq (9.3, 10.3). */
static int borrow(struct ring *r, uint64_t seq, uint32_t *kout, struct desc *d)
{
	uint32_t k;
	uint64_t g1, g2;
	if (r->observer)
		return RES_CORRUPT; /* no bit to hold with (main refuses this) */
	int rc = locate(r, seq, &k, &g1);
	if (rc != RES_OK)
		return rc;
	au64 *hold = hold_word(r, k);
	if (r->leases[k] == 0) {
		/* C1: sequentially consistent RMW, then C2 (in settle): the
		 * producer stores an odd generation, then loads the mask. */
		atomic_fetch_or(hold, r->bit);
		if (!settle(r, k, seq, &g2) || g2 != g1) {
			atomic_fetch_and(hold, ~r->bit);
			return RES_OVERWRITTEN;
		}
		/* 9.3: an evicted consumer's holds are not honoured. */
		if (atomic_load((_Atomic uint32_t *)(void *)(r->ctl + entry_off(r) + E_STATE)) == ENTRY_EVICTED) {
			atomic_fetch_and(hold, ~r->bit);
			fprintf(stderr, "frcat: evicted by the producer\n");
			return RES_CORRUPT;
		}
	} else if (seq_of(r, k) != seq) {
		fprintf(stderr, "frcat: slot %" PRIu32 " changed under our hold\n", k);
		return RES_CORRUPT;
	}
	read_desc(r, k, d);
	if (d->seq != seq || d->length > r->g.capacity) {
		if (r->leases[k] == 0)
			atomic_fetch_and(hold, ~r->bit);
		fprintf(stderr, "frcat: descriptor of %" PRIu64 ": seq %" PRIu64 " length %" PRIu64 "\n", seq, d->seq,
			d->length);
		return RES_CORRUPT;
	}
	r->leases[k]++;
	r->held++;
	atomic_store_explicit(ctl64(r, entry_off(r) + E_HELD), r->held, memory_order_relaxed);
	*kout = k;
	return RES_OK;
}

/* release ends a lease (9.4). */
static void release(struct ring *r, uint32_t k)
{
	r->held--;
	if (--r->leases[k] == 0)
		atomic_fetch_and(hold_word(r, k), ~r->bit); /* every read of the frame before this */
	atomic_store_explicit(ctl64(r, entry_off(r) + E_HELD), r->held, memory_order_relaxed);
}

struct counts {
	uint64_t cursor, delivered, skipped, missed, bad;
};

/* publish_counters mirrors our cursor and counters into our entry (9.6).
 * The cursor store is sequentially consistent: after the hold (borrow) or
 * after the last load of the frame (peek), as 10.6 requires. */
static void publish_counters(struct ring *r, const struct counts *c, uint64_t last_seq, int64_t ts)
{
	if (r->observer)
		return;
	uint64_t e = entry_off(r);
	atomic_store(ctl64(r, e + E_CURSOR), c->cursor);
	atomic_store_explicit(ctl64(r, e + E_DELIVERED), c->delivered, memory_order_relaxed);
	atomic_store_explicit(ctl64(r, e + E_SKIPPED), c->skipped, memory_order_relaxed);
	atomic_store_explicit(ctl64(r, e + E_MISSED), c->missed, memory_order_relaxed);
	if (last_seq != 0) {
		atomic_store_explicit(ctl64(r, e + E_LAST_SEQ), last_seq, memory_order_relaxed);
		int64_t lat = mono_ns() - ts;
		if (ts > 0 && lat > 0)
			atomic_store_explicit(ctl64(r, e + E_LATENCY_NS), (uint64_t)lat, memory_order_relaxed);
	}
}

static void print_frame(uint64_t seq, uint32_t k, const struct desc *d, const struct verdict *v)
{
	printf("frame seq=%" PRIu64 " id=%" PRIu64 " width=%" PRIu32 " height=%" PRIu32 " stride=%" PRIu32
	       " format=%#010" PRIx32 " length=%" PRIu64 " slot=%" PRIu32 " sum=%016" PRIx64 " %s%s%s\n",
	       seq, d->frame_id, d->width, d->height, d->stride, d->format, d->length, k, v->sum, v->ok ? "ok" : "BAD(",
	       v->ok ? "" : v->why, v->ok ? "" : ")");
}

static void usage(void)
{
	fprintf(stderr, "usage: frcat [-n N] [-m lossless|lossy] [-p hold|peek] [-O] [-N name] [-w ms] [-i] [-K] SOCKET\n");
	exit(EXIT_USAGE);
}

int main(int argc, char **argv)
{
	uint64_t want = 100;
	uint32_t mode = MODE_LOSSLESS, role = ROLE_CONSUMER;
	int use_peek = 0, id_is_seq = 0, hold_at_end = 0;
	const char *name = "frcat";
	long wait_ms = 100;
	int opt;
	while ((opt = getopt(argc, argv, "n:m:p:ON:w:iK")) != -1) {
		char *end;
		switch (opt) {
		case 'n':
			errno = 0;
			want = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || want == 0)
				usage();
			break;
		case 'm':
			if (strcmp(optarg, "lossless") == 0)
				mode = MODE_LOSSLESS;
			else if (strcmp(optarg, "lossy") == 0)
				mode = MODE_LOSSY;
			else
				usage();
			break;
		case 'p':
			if (strcmp(optarg, "hold") == 0)
				use_peek = 0;
			else if (strcmp(optarg, "peek") == 0)
				use_peek = 1;
			else
				usage();
			break;
		case 'O':
			role = ROLE_OBSERVER;
			use_peek = 1;
			break;
		case 'N':
			if (strlen(optarg) > NAME_LEN)
				usage();
			for (const char *c = optarg; *c != '\0'; c++)
				if (*c < 0x20 || *c > 0x7e)
					usage();
			name = optarg;
			break;
		case 'w':
			errno = 0;
			wait_ms = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || wait_ms < 0 || wait_ms > INT_MAX)
				usage();
			break;
		case 'i':
			id_is_seq = 1;
			break;
		case 'K':
			hold_at_end = 1;
			break;
		default:
			usage();
		}
	}
	/* An observer has no entry and no bit: it can only peek. */
	if (optind != argc - 1 || (role == ROLE_OBSERVER && (!use_peek || hold_at_end)))
		usage();

	struct ring r;
	memset(&r, 0, sizeof r);
	r.sock = -1;
	r.wait_ms = wait_ms;
	if (ring_attach(&r, argv[optind], role, mode, name) != 0) {
		ring_detach(&r);
		return EXIT_ATTACH;
	}
	struct counts c = {0};
	/* 6.3 step 11: a consumer starts where the producer put its cursor. */
	c.cursor = r.observer ? published(&r) + 1 : atomic_load(ctl64(&r, entry_off(&r) + E_CURSOR));
	int64_t hb = (int64_t)atomic_load(data64(&r, D_HEARTBEAT_NS));
	printf("attached entry=%d role=%s mode=%s proto=%s epoch=%016" PRIx64 " producer_pid=%" PRIu32
	       " slots=%" PRIu32 " capacity=%" PRIu64 " index=%" PRIu32 " data_size=%" PRIu64 " control_size=%" PRIu64
	       " heartbeat_age_ms=%" PRId64 " cursor=%" PRIu64 "\n",
	       r.observer ? -1 : (int)r.entry, r.observer ? "observer" : "consumer",
	       mode == MODE_LOSSLESS ? "lossless" : "lossy", use_peek ? "peek" : "hold", r.g.epoch, r.g.producer_pid,
	       r.g.slots, r.g.capacity, r.g.index_count, r.g.data_size, r.g.control_size,
	       (mono_ns() - hb) / 1000000, c.cursor);
	fflush(stdout);

	int end = S_RUNNING, broken = 0, lossless_missed = 0;
	while (c.delivered < want) {
		uint64_t p;
		if ((end = wait_published(&r, c.cursor - 1, &p)) != S_RUNNING)
			break;
		uint64_t s = c.cursor;
		if (mode == MODE_LOSSY && p > s)
			s = p; /* the newest frame */
		uint32_t k = 0;
		struct desc d;
		struct verdict v = {0, "unread", 0};
		int rc;
		if (use_peek) {
			rc = peek(&r, s, id_is_seq, &k, &d, &v);
		} else {
			rc = borrow(&r, s, &k, &d);
			if (rc == RES_OK)
				v = verify(&d, payload(&r, k), s, id_is_seq); /* stable under the hold */
		}
		if (rc == RES_OK) {
			c.skipped += s - c.cursor;
			c.delivered++;
			c.cursor = s + 1;
			if (!v.ok)
				c.bad++;
			/* Cursor after the hold (borrow) or after the read (peek). */
			publish_counters(&r, &c, s, d.timestamp);
			if (!use_peek)
				release(&r, k);
			print_frame(s, k, &d, &v);
		} else if (rc == RES_OVERWRITTEN) {
			c.skipped += s - c.cursor;
			c.missed++;
			c.cursor = s + 1;
			publish_counters(&r, &c, 0, 0);
			printf("missed seq=%" PRIu64 "\n", s);
			if ((end = ring_status(&r)) != S_RUNNING)
				break;
			if (mode == MODE_LOSSLESS && !r.observer)
				lossless_missed = 1; /* a protocol violation: 9.6 */
		} else {
			/* Not published although published said so, or corrupt:
			 * the ring broke the protocol. Counters stay as they are. */
			fprintf(stderr, "frcat: frame %" PRIu64 ": %s\n", s,
				rc == RES_NOT_PUBLISHED ? "not published" : "corrupt");
			broken = 1;
			break;
		}
	}
	fflush(stdout);

	if (hold_at_end && end == S_RUNNING && !broken) {
		/* Take a hold on the newest frame and wait to be killed: the
		 * producer must reclaim it (11.1). */
		for (;;) {
			uint64_t p;
			if ((end = wait_published(&r, 0, &p)) != S_RUNNING)
				break;
			uint32_t k;
			struct desc d;
			if (borrow(&r, p, &k, &d) == RES_OK) {
				printf("holding seq=%" PRIu64 " slot=%" PRIu32 "\n", p, k);
				fflush(stdout);
				for (;;)
					pause();
			}
		}
	}

	printf("done delivered=%" PRIu64 " skipped=%" PRIu64 " missed=%" PRIu64 " bad=%" PRIu64 " cursor=%" PRIu64
	       " end=%s\n",
	       c.delivered, c.skipped, c.missed, c.bad, c.cursor, status_name[end]);
	fflush(stdout);
	ring_detach(&r);
	if (c.bad != 0 || broken || lossless_missed)
		return EXIT_BAD;
	if (c.delivered < want)
		return EXIT_ENDED;
	return EXIT_OK;
}
