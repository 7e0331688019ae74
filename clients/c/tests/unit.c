/*
 * unit: libframering's tests that need no producer, run under ASan+UBSan
 * and TSan by `make test`: the header and message decoders (valid input,
 * every documented refusal, every byte of a header flipped), geometry
 * against docs/LAYOUT.md section 5's example, names and paths, every error
 * code's text, and fr_attach against a fake peer in a thread (the hello it
 * sends, each refusal status, silence, a closed connection, no socket, a
 * stale socket) — leaving no descriptor open on any failure; and
 * fr_latency_thread's slice, read back with sched_getattr; the guessed
 * slot's arithmetic and bounds.
 *
 * The multi-process tests against the real Go producer are in
 * clients_test.go (go test ./clients/c/).
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "framering.h"
#include "internal.h"

static int failures;

#define CHECK(cond, ...)                                                                                               \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond);                                \
			fprintf(stderr, __VA_ARGS__);                                                                  \
			fprintf(stderr, "\n");                                                                         \
			failures++;                                                                                    \
		}                                                                                                      \
	} while (0)

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

/* ---- errors ---- */

static void test_errors(void)
{
	for (int c = 0; c >= FR_ERR_SYSTEM; c--) {
		CHECK(strcmp(fr_strerror(c), "unknown error") != 0, "code %d has no text", c);
		CHECK(strncmp(fr_error_name(c), "FR_", 3) == 0 && strcmp(fr_error_name(c), "FR_ERR_UNKNOWN") != 0,
		      "code %d has no name", c);
		for (int d = c - 1; d >= FR_ERR_SYSTEM; d--)
			CHECK(strcmp(fr_strerror(c), fr_strerror(d)) != 0, "codes %d and %d share a text", c, d);
	}
	CHECK(strcmp(fr_strerror(1), "unknown error") == 0, "positive code");
	CHECK(strcmp(fr_error_name(-1000), "FR_ERR_UNKNOWN") == 0, "unknown code");
	CHECK(fr_abi_version() == FR_ABI_VERSION, "abi");
	CHECK(strcmp(fr_producer_state_name(FR_PRODUCER_STALLED), "stalled") == 0, "state name");
	CHECK(strcmp(fr_producer_state_name(99), "unknown") == 0, "state name");
}

/* ---- geometry and headers ---- */

static void test_geometry(void)
{
	/* docs/LAYOUT.md 5's example: 8 slots of 77824 bytes, index 64. */
	struct fr_geo g;
	CHECK(fr__geometry(8, 64, 77824, &g) == 0, "example geometry");
	CHECK(g.desc_off == 0x1000 && g.index_off == 0x1400 && g.payload_off == 0x2000 && g.data_size == 0x9A000,
	      "data offsets %#" PRIx64 " %#" PRIx64 " %#" PRIx64 " %#" PRIx64, g.desc_off, g.index_off, g.payload_off,
	      g.data_size);
	CHECK(g.holds_off == 0x1000 && g.table_off == 0x1200 && g.control_size == 0x6000,
	      "control offsets %#" PRIx64 " %#" PRIx64, g.table_off, g.control_size);
	CHECK(fr__geometry(0, 64, 4096, &g) != 0, "0 slots");
	CHECK(fr__geometry(65536, 65536, 4096, &g) != 0, "65536 slots");
	CHECK(fr__geometry(8, 48, 4096, &g) != 0, "index not a power of two");
	CHECK(fr__geometry(8, 4, 4096, &g) != 0, "index smaller than slots");
	CHECK(fr__geometry(8, 1u << 25, 4096, &g) != 0, "index too large");
	CHECK(fr__geometry(8, 64, 4095, &g) != 0, "capacity not a page multiple");
	CHECK(fr__geometry(8, 64, 0, &g) != 0, "capacity 0");
	CHECK(fr__geometry(8, 64, (1ull << 30) + 4096, &g) != 0, "capacity above 1 GiB");
	CHECK(fr__geometry(65535, 1u << 24, 1ull << 30, &g) == 0, "the largest ring");
}

static void make_headers(uint8_t *d, uint8_t *c, uint64_t *dlen, uint64_t *clen)
{
	struct fr_geo g;
	fr__geometry(8, 64, 77824, &g);
	memset(d, 0, FR_HEADER_SIZE);
	memset(c, 0, FR_HEADER_SIZE);
	fr_put64(d + D_MAGIC, FR_MAGIC_DATA);
	fr_put32(d + D_VERSION, 2);
	fr_put32(d + D_HEADER_SIZE, 4096);
	fr_put32(d + D_SLOT_COUNT, 8);
	fr_put32(d + D_INDEX_COUNT, 64);
	fr_put64(d + D_SLOT_CAPACITY, 77824);
	fr_put64(d + D_DESC_OFFSET, g.desc_off);
	fr_put64(d + D_INDEX_OFFSET, g.index_off);
	fr_put64(d + D_PAYLOAD_OFFSET, g.payload_off);
	fr_put64(d + D_DATA_SIZE, g.data_size);
	fr_put64(d + D_EPOCH, 0x1234567890abcdefull | 1);
	fr_put32(d + D_PRODUCER_PID, 42);
	fr_put32(d + D_MAX_CONSUMERS, 64);
	fr_put64(d + D_CONTROL_SIZE, g.control_size);
	fr_put32(d + D_HOLD_QUOTA, 6);
	fr_put64(d + D_HEARTBEAT_PERIOD_NS, 100000000);
	fr_put64(d + D_EVICT_AFTER_NS, 2000000000);
	fr_put64(c + C_MAGIC, FR_MAGIC_CONTROL);
	fr_put32(c + C_VERSION, 2);
	fr_put32(c + C_HEADER_SIZE, 4096);
	fr_put32(c + C_SLOT_COUNT, 8);
	fr_put32(c + C_MAX_CONSUMERS, 64);
	fr_put64(c + C_HOLDS_OFFSET, g.holds_off);
	fr_put64(c + C_TABLE_OFFSET, g.table_off);
	fr_put64(c + C_CONTROL_SIZE, g.control_size);
	fr_put64(c + C_EPOCH, 0x1234567890abcdefull | 1);
	*dlen = g.data_size;
	*clen = g.control_size;
}

struct mutation {
	const char *what;
	int seg; /* 0 data, 1 control */
	unsigned off, size;
	uint64_t value;
	int want;
};

static void test_headers(void)
{
	static uint8_t d[FR_HEADER_SIZE], c[FR_HEADER_SIZE];
	uint64_t dlen, clen;
	make_headers(d, c, &dlen, &clen);
	struct fr_geo g;
	char why[200];
	CHECK(fr__decode_data_header(d, sizeof d, dlen, &g, why, sizeof why) == 0, "valid data header: %s", why);
	CHECK(g.slots == 8 && g.capacity == 77824 && g.hold_quota == 6 && g.heartbeat_ns == 100000000 &&
		      g.producer_pid == 42,
	      "decoded geometry");
	CHECK(fr__decode_control_header(c, sizeof c, clen, &g, why, sizeof why) == 0, "valid control header: %s", why);
	CHECK(fr__decode_data_header(d, sizeof d, dlen - 1, &g, why, sizeof why) == FR_ERR_CORRUPT, "short data segment");
	CHECK(fr__decode_data_header(d, 100, dlen, &g, why, sizeof why) == FR_ERR_CORRUPT, "header cut short");
	CHECK(fr__decode_control_header(c, sizeof c, clen - 1, &g, why, sizeof why) == FR_ERR_CORRUPT,
	      "short control segment");

	static const struct mutation muts[] = {
		{"data magic", 0, D_MAGIC, 8, 0x41544144524D5247ull, FR_ERR_INCOMPATIBLE},
		{"data version 1", 0, D_VERSION, 4, 1, FR_ERR_INCOMPATIBLE},
		{"data version 3", 0, D_VERSION, 4, 3, FR_ERR_INCOMPATIBLE},
		{"header size", 0, D_HEADER_SIZE, 4, 8192, FR_ERR_INCOMPATIBLE},
		{"max consumers", 0, D_MAX_CONSUMERS, 4, 32, FR_ERR_INCOMPATIBLE},
		{"0 slots", 0, D_SLOT_COUNT, 4, 0, FR_ERR_CORRUPT},
		{"slots above the index", 0, D_SLOT_COUNT, 4, 65, FR_ERR_CORRUPT},
		{"index not a power of two", 0, D_INDEX_COUNT, 4, 96, FR_ERR_CORRUPT},
		{"capacity not a page multiple", 0, D_SLOT_CAPACITY, 8, 77825, FR_ERR_CORRUPT},
		{"capacity 2^63", 0, D_SLOT_CAPACITY, 8, 1ull << 63, FR_ERR_CORRUPT},
		{"quota 0", 0, D_HOLD_QUOTA, 4, 0, FR_ERR_CORRUPT},
		{"quota above slots", 0, D_HOLD_QUOTA, 4, 9, FR_ERR_CORRUPT},
		{"heartbeat 0", 0, D_HEARTBEAT_PERIOD_NS, 8, 0, FR_ERR_CORRUPT},
		{"heartbeat above an hour", 0, D_HEARTBEAT_PERIOD_NS, 8, 3600000000001ull, FR_ERR_CORRUPT},
		{"desc offset", 0, D_DESC_OFFSET, 8, 0x1008, FR_ERR_CORRUPT},
		{"index offset", 0, D_INDEX_OFFSET, 8, 0x1440, FR_ERR_CORRUPT},
		{"payload offset", 0, D_PAYLOAD_OFFSET, 8, 0x1000, FR_ERR_CORRUPT},
		{"data size", 0, D_DATA_SIZE, 8, 0x9B000, FR_ERR_CORRUPT},
		{"control size in data", 0, D_CONTROL_SIZE, 8, 0x7000, FR_ERR_CORRUPT},
		{"control magic", 1, C_MAGIC, 8, 1, FR_ERR_INCOMPATIBLE},
		{"control version", 1, C_VERSION, 4, 1, FR_ERR_INCOMPATIBLE},
		{"control header size", 1, C_HEADER_SIZE, 4, 1, FR_ERR_CORRUPT},
		{"control slots", 1, C_SLOT_COUNT, 4, 7, FR_ERR_CORRUPT},
		{"control consumers", 1, C_MAX_CONSUMERS, 4, 63, FR_ERR_CORRUPT},
		{"holds offset", 1, C_HOLDS_OFFSET, 8, 0, FR_ERR_CORRUPT},
		{"table offset", 1, C_TABLE_OFFSET, 8, 0x1240, FR_ERR_CORRUPT},
		{"control size", 1, C_CONTROL_SIZE, 8, 0x5000, FR_ERR_CORRUPT},
		{"control epoch", 1, C_EPOCH, 8, 3, FR_ERR_CORRUPT},
	};
	for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
		const struct mutation *m = &muts[i];
		static uint8_t d2[FR_HEADER_SIZE], c2[FR_HEADER_SIZE];
		memcpy(d2, d, sizeof d2);
		memcpy(c2, c, sizeof c2);
		uint8_t *b = m->seg == 0 ? d2 : c2;
		if (m->size == 4)
			fr_put32(b + m->off, (uint32_t)m->value);
		else
			fr_put64(b + m->off, m->value);
		struct fr_geo g2;
		why[0] = '\0';
		int rc = fr__decode_data_header(d2, sizeof d2, dlen, &g2, why, sizeof why);
		if (rc == 0)
			rc = fr__decode_control_header(c2, sizeof c2, clen, &g2, why, sizeof why);
		CHECK(rc == m->want, "%s: got %s, want %s", m->what, fr_error_name(rc), fr_error_name(m->want));
		CHECK(rc == 0 || why[0] != '\0', "%s: no explanation", m->what);
	}

	/* Every byte of both headers' first two lines flipped: a refusal or a
	 * geometry identical to the valid one (only informative fields moved). */
	for (unsigned seg = 0; seg < 2; seg++) {
		for (unsigned off = 0; off < 0x80; off++) {
			static uint8_t d2[FR_HEADER_SIZE], c2[FR_HEADER_SIZE];
			memcpy(d2, d, sizeof d2);
			memcpy(c2, c, sizeof c2);
			(seg == 0 ? d2 : c2)[off] ^= 0xFF;
			struct fr_geo g2;
			int rc = fr__decode_data_header(d2, sizeof d2, dlen, &g2, NULL, 0);
			if (rc == 0)
				rc = fr__decode_control_header(c2, sizeof c2, clen, &g2, NULL, 0);
			if (rc == 0)
				CHECK(g2.slots == g.slots && g2.capacity == g.capacity && g2.payload_off == g.payload_off &&
					      g2.table_off == g.table_off && g2.hold_quota == g.hold_quota,
				      "flipped byte %u of segment %u was accepted with another geometry", off, seg);
		}
	}
}

static void test_messages(void)
{
	uint8_t b[FR_MSG_SIZE];
	memset(b, 0, sizeof b);
	fr_put64(b, FR_MAGIC_WELCOME);
	fr_put32(b + 8, 2);
	fr_put32(b + 16, 5);
	fr_put64(b + 24, 77);
	fr_put64(b + 32, 1 << 20);
	fr_put64(b + 40, 1 << 16);
	struct fr_welcome w;
	CHECK(fr__decode_welcome(b, sizeof b, &w, NULL, 0) == 0 && w.status == 0 && w.entry == 5 && w.epoch == 77 &&
		      w.data_file_size == 1 << 20 && w.control_file_size == 1 << 16,
	      "valid welcome");
	CHECK(fr__decode_welcome(b, 63, &w, NULL, 0) == FR_ERR_PROTOCOL, "short welcome");
	fr_put32(b + 16, 64);
	CHECK(fr__decode_welcome(b, sizeof b, &w, NULL, 0) == FR_ERR_PROTOCOL, "entry 64");
	fr_put32(b + 12, STATUS_FULL);
	CHECK(fr__decode_welcome(b, sizeof b, &w, NULL, 0) == 0, "a refusal's entry is not checked");
	fr_put32(b + 16, FR_NO_ENTRY);
	fr_put32(b + 12, 0);
	CHECK(fr__decode_welcome(b, sizeof b, &w, NULL, 0) == 0 && w.entry == FR_NO_ENTRY, "observer welcome");
	fr_put32(b + 8, 1);
	CHECK(fr__decode_welcome(b, sizeof b, &w, NULL, 0) == FR_ERR_INCOMPATIBLE, "v1 welcome");
	fr_put64(b, FR_MAGIC_NOTE);
	CHECK(fr__decode_welcome(b, sizeof b, &w, NULL, 0) == FR_ERR_INCOMPATIBLE, "a note is not a welcome");

	uint32_t kind, reason;
	memset(b, 0, sizeof b);
	fr_put64(b, FR_MAGIC_NOTE);
	fr_put32(b + 8, NOTE_EVICTED);
	fr_put32(b + 12, 2);
	CHECK(fr__decode_note(b, sizeof b, &kind, &reason) == 0 && kind == 1 && reason == 2, "note");
	CHECK(fr__decode_note(b, 10, &kind, &reason) == FR_ERR_PROTOCOL, "short note");
	fr_put64(b, FR_MAGIC_BYE);
	CHECK(fr__decode_note(b, sizeof b, &kind, &reason) == FR_ERR_PROTOCOL, "bye is not a note");

	fr__encode_hello(b, FR_ROLE_CONSUMER, FR_MODE_LOSSLESS, FR_HELLO_CHAIN_WAKE, "0123456789abcdef0123456789abcdefXYZ", 9);
	CHECK(fr_le64(b) == FR_MAGIC_HELLO && fr_le32(b + 8) == 2 && fr_le32(b + 12) == 1 && fr_le32(b + 16) == 2 &&
		      fr_le32(b + 20) == FR_HELLO_CHAIN_WAKE && memcmp(b + 24, "0123456789abcdef0123456789abcdef", 32) == 0 &&
		      fr_le64(b + 56) == 9,
	      "hello bytes");
	fr__encode_bye(b);
	CHECK(fr_le64(b) == FR_MAGIC_BYE && memcmp(b + 8, (uint8_t[56]){0}, 56) == 0, "bye bytes");
}

static void test_names(void)
{
	CHECK(fr__valid_name(""), "empty consumer name");
	CHECK(fr__valid_name("0123456789abcdef0123456789abcdef"), "32 bytes");
	CHECK(!fr__valid_name("0123456789abcdef0123456789abcdefX"), "33 bytes");
	CHECK(!fr__valid_name("tab\there"), "control character");
	CHECK(!fr__valid_name("\xc3\xa9"), "non-ASCII");
	CHECK(fr__valid_ring_name("line1") && fr__valid_ring_name("a.b_c-d") && fr__valid_ring_name("0"), "ring names");
	CHECK(!fr__valid_ring_name("") && !fr__valid_ring_name(".x") && !fr__valid_ring_name("-x") &&
		      !fr__valid_ring_name("_x") && !fr__valid_ring_name("a/b") && !fr__valid_ring_name("a b"),
	      "bad ring names");
	char name65[66];
	memset(name65, 'a', 65);
	name65[65] = '\0';
	CHECK(!fr__valid_ring_name(name65) && fr__valid_ring_name(name65 + 1), "64 and 65 bytes");

	char buf[200];
	setenv("FRAMERING_RUNTIME_DIR", "/x/rt", 1);
	CHECK(fr_socket_path("line1", buf, sizeof buf) == FR_OK && strcmp(buf, "/x/rt/line1.sock") == 0, "%s", buf);
	CHECK(fr_socket_path(NULL, buf, sizeof buf) == FR_OK && strcmp(buf, "/x/rt/default.sock") == 0, "%s", buf);
	CHECK(fr_socket_path("line1", buf, 10) == FR_ERR_TOO_SMALL, "small buffer");
	CHECK(fr_socket_path("../etc", buf, sizeof buf) == FR_ERR_INVALID, "bad name");
	unsetenv("FRAMERING_RUNTIME_DIR");
	setenv("XDG_RUNTIME_DIR", "/x/xdg", 1);
	CHECK(fr_socket_path("a", buf, sizeof buf) == FR_OK && strcmp(buf, "/x/xdg/framering/a.sock") == 0, "%s", buf);
	unsetenv("XDG_RUNTIME_DIR");
	CHECK(fr_socket_path("a", buf, sizeof buf) == FR_OK, "fallback");
	if (geteuid() == 0)
		CHECK(strcmp(buf, "/run/framering/a.sock") == 0, "%s", buf);
}

/* ---- fr_attach against a fake peer ---- */

enum peer_act { PEER_SILENT, PEER_CLOSE, PEER_STATUS, PEER_SHORT, PEER_GARBAGE };

struct peer {
	int lfd;
	enum peer_act act;
	uint32_t status;
	uint8_t hello[FR_MSG_SIZE];
	size_t hello_len;
	int release; /* PEER_SILENT: written by the main thread through a pipe */
	int pipefd[2];
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	int c = accept(p->lfd, NULL, NULL);
	if (c < 0)
		return NULL;
	while (p->hello_len < FR_MSG_SIZE) {
		ssize_t n = read(c, p->hello + p->hello_len, FR_MSG_SIZE - p->hello_len);
		if (n <= 0)
			break;
		p->hello_len += (size_t)n;
	}
	uint8_t w[FR_MSG_SIZE];
	memset(w, 0, sizeof w);
	fr_put64(w, FR_MAGIC_WELCOME);
	fr_put32(w + 8, 2);
	fr_put32(w + 12, p->status);
	fr_put32(w + 16, FR_NO_ENTRY);
	switch (p->act) {
	case PEER_SILENT: {
		char x;
		if (read(p->pipefd[0], &x, 1) < 0) {
			/* the main thread closes the pipe: done */
		}
		break;
	}
	case PEER_CLOSE:
		break;
	case PEER_STATUS:
		if (write(c, w, sizeof w) < 0)
			perror("peer write");
		break;
	case PEER_SHORT:
		if (write(c, w, 20) < 0)
			perror("peer write");
		break;
	case PEER_GARBAGE:
		memset(w, 0x5A, sizeof w);
		if (write(c, w, sizeof w) < 0)
			perror("peer write");
		break;
	}
	close(c);
	return NULL;
}

static int attach_to(const char path[96], enum peer_act act, uint32_t status, int timeout_ms, struct peer *out,
		     char *err, size_t errlen)
{
	struct peer *p = out;
	memset(p, 0, sizeof *p);
	p->act = act;
	p->status = status;
	unlink(path);
	p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(p->lfd, 4) != 0) {
		perror("bind");
		exit(1);
	}
	if (pipe2(p->pipefd, O_CLOEXEC) != 0) {
		perror("pipe");
		exit(1);
	}
	pthread_t t;
	pthread_create(&t, NULL, peer_main, p);
	fr_options o;
	fr_options_init(&o);
	o.socket_path = path;
	o.name = "unit test";
	o.mode = FR_MODE_LOSSLESS;
	o.start = 7;
	o.handshake_timeout_ms = timeout_ms;
	o.error_buf = err;
	o.error_buf_size = errlen;
	fr_ring *r = (fr_ring *)1;
	int rc = fr_attach(&o, &r);
	CHECK(r == NULL, "a failed attach leaves *out NULL");
	close(p->pipefd[1]);
	pthread_join(t, NULL);
	close(p->pipefd[0]);
	close(p->lfd);
	unlink(path);
	return rc;
}

static void test_attach(void)
{
	fr_ring *r;
	fr_options o;
	fr_options_init(&o);
	CHECK(fr_attach(NULL, &r) == FR_ERR_INVALID, "NULL options");
	CHECK(fr_attach(&o, NULL) == FR_ERR_INVALID, "NULL out");
	o.role = 3;
	CHECK(fr_attach(&o, &r) == FR_ERR_INVALID && r == NULL, "role 3");
	o.role = 0;
	o.mode = 9;
	CHECK(fr_attach(&o, &r) == FR_ERR_INVALID, "mode 9");
	o.mode = 0;
	o.name = "0123456789abcdef0123456789abcdef!";
	CHECK(fr_attach(&o, &r) == FR_ERR_INVALID, "long name");
	o.name = NULL;
	o.ring = "../x";
	CHECK(fr_attach(&o, &r) == FR_ERR_INVALID, "bad ring");
	o.ring = NULL;
	o.flags = 1u << 30;
	CHECK(fr_attach(&o, &r) == FR_ERR_INVALID, "unknown flag");
	o.flags = 0;
	char longpath[200];
	memset(longpath, 'x', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	o.socket_path = longpath;
	CHECK(fr_attach(&o, &r) == FR_ERR_INVALID, "long path");

	char dir[] = "/tmp/frunit-XXXXXX";
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	char path[96], err[256];
	snprintf(path, sizeof path, "%s/ring.sock", dir);
	int before = open_fds();

	o.socket_path = path;
	o.error_buf = err;
	o.error_buf_size = sizeof err;
	CHECK(fr_attach(&o, &r) == FR_ERR_NO_SUCH_RING, "no socket: %s", err);
	setenv("FRAMERING_RUNTIME_DIR", dir, 1);
	o.socket_path = NULL;
	o.ring = "nothere";
	CHECK(fr_attach(&o, &r) == FR_ERR_NO_SUCH_RING, "no ring by name: %s", err);
	unsetenv("FRAMERING_RUNTIME_DIR");

	/* A stale socket: bound, never listened on (or its owner died). */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	bind(s, (struct sockaddr *)&sa, sizeof sa);
	close(s);
	o.socket_path = path;
	o.ring = NULL;
	CHECK(fr_attach(&o, &r) == FR_ERR_PRODUCER_GONE, "stale socket: %s", err);
	unlink(path);

	struct peer p;
	int rc = attach_to(path, PEER_SILENT, 0, 200, &p, err, sizeof err);
	CHECK(rc == FR_ERR_NOT_RESPONDING, "silent peer: %s (%s)", fr_error_name(rc), err);
	/* The hello as sent (docs/LAYOUT.md 6.2). */
	CHECK(p.hello_len == FR_MSG_SIZE && fr_le64(p.hello) == FR_MAGIC_HELLO && fr_le32(p.hello + 8) == 2 &&
		      fr_le32(p.hello + 12) == FR_ROLE_CONSUMER && fr_le32(p.hello + 16) == FR_MODE_LOSSLESS &&
		      strcmp((char *)p.hello + 24, "unit test") == 0 && fr_le64(p.hello + 56) == 7,
	      "hello");

	static const struct {
		uint32_t status;
		int want;
	} refusals[] = {
		{STATUS_INCOMPATIBLE, FR_ERR_INCOMPATIBLE}, {STATUS_DENIED, FR_ERR_DENIED},   {STATUS_FULL, FR_ERR_FULL},
		{STATUS_BAD_REQUEST, FR_ERR_REFUSED},       {STATUS_CLOSING, FR_ERR_CLOSED}, {99, FR_ERR_REFUSED},
		{STATUS_OK, FR_ERR_PROTOCOL}, /* status ok but no descriptors */
	};
	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
		err[0] = '\0';
		rc = attach_to(path, PEER_STATUS, refusals[i].status, 2000, &p, err, sizeof err);
		CHECK(rc == refusals[i].want, "status %" PRIu32 ": %s, want %s", refusals[i].status, fr_error_name(rc),
		      fr_error_name(refusals[i].want));
		CHECK(err[0] != '\0', "status %" PRIu32 ": no explanation", refusals[i].status);
	}
	rc = attach_to(path, PEER_CLOSE, 0, 2000, &p, err, sizeof err);
	CHECK(rc == FR_ERR_PRODUCER_GONE, "closed without a welcome: %s", fr_error_name(rc));
	rc = attach_to(path, PEER_SHORT, 0, 2000, &p, err, sizeof err);
	CHECK(rc == FR_ERR_PROTOCOL, "short welcome: %s", fr_error_name(rc));
	rc = attach_to(path, PEER_GARBAGE, 0, 2000, &p, err, sizeof err);
	CHECK(rc == FR_ERR_INCOMPATIBLE, "garbage welcome: %s", fr_error_name(rc));

	CHECK(open_fds() == before, "descriptors leaked: %d before, %d after", before, open_fds());
	rmdir(dir);
}

/* ---- fr_latency_thread ---- */

/* The calling thread's scheduling attributes as the kernel reports them
 * (struct sched_attr, SCHED_ATTR_SIZE_VER0). */
struct sched_v0 {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

static struct sched_v0 sched_now(void)
{
	struct sched_v0 a;
	memset(&a, 0, sizeof a);
	CHECK(syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0u) == 0, "sched_getattr: %s", strerror(errno));
	return a;
}

/* Runs on a thread of its own: the nice value and the slice it sets die
 * with it. */
static void *latency_thread_main(void *arg)
{
	(void)arg;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	CHECK(setpriority(PRIO_PROCESS, (id_t)tid, 3) == 0, "nice 3: %s", strerror(errno));
	struct sched_v0 before = sched_now();
	CHECK(before.policy == SCHED_OTHER && before.nice == 3, "policy %u nice %d", before.policy, before.nice);

	CHECK(fr_latency_thread(0) == FR_OK, "default slice");
	struct sched_v0 a = sched_now();
	/* Linux 6.12 and later report the slice; this kernel is one. */
	CHECK(a.runtime == FR_LATENCY_SLICE_NS, "slice %" PRIu64 ", want %d", a.runtime, FR_LATENCY_SLICE_NS);
	CHECK(a.policy == SCHED_OTHER && a.nice == 3, "policy %u nice %d after: not kept", a.policy, a.nice);
	CHECK(getpriority(PRIO_PROCESS, (id_t)tid) == 3, "nice after fr_latency_thread");

	CHECK(fr_latency_thread(2500000) == FR_OK, "2.5 ms");
	CHECK(sched_now().runtime == 2500000, "slice %" PRIu64 ", want 2500000", sched_now().runtime);

	CHECK(fr_latency_thread(-1) == FR_OK, "restore");
	a = sched_now();
	CHECK(a.runtime == before.runtime && a.runtime != FR_LATENCY_SLICE_NS, "slice %" PRIu64 " after restore, want %" PRIu64,
	      a.runtime, before.runtime);
	CHECK(a.policy == SCHED_OTHER && a.nice == 3, "policy %u nice %d after restore", a.policy, a.nice);

	/* SCHED_BATCH is kept too. */
	struct sched_param none = {0};
	CHECK(sched_setscheduler(0, SCHED_BATCH, &none) == 0, "SCHED_BATCH: %s", strerror(errno));
	CHECK(fr_latency_thread(0) == FR_OK, "batch");
	a = sched_now();
	CHECK(a.policy == SCHED_BATCH && a.nice == 3 && a.runtime == FR_LATENCY_SLICE_NS,
	      "batch thread: policy %u nice %d slice %" PRIu64, a.policy, a.nice, a.runtime);

	/* A real-time thread is left alone (root only: others may not make
	 * one; the check is then skipped, and says so). */
	struct sched_param fifo = {.sched_priority = 1};
	if (sched_setscheduler(0, SCHED_FIFO, &fifo) == 0) {
		CHECK(fr_latency_thread(0) == FR_OK, "fifo");
		a = sched_now();
		CHECK(a.policy == SCHED_FIFO && a.priority == 1, "fifo thread changed: policy %u priority %u", a.policy,
		      a.priority);
	} else {
		printf("unit: SCHED_FIFO not permitted (%s): the real-time case is not checked\n", strerror(errno));
	}
	return NULL;
}

static void test_latency_thread(void)
{
	struct sched_v0 mine = sched_now();
	pthread_t t;
	CHECK(pthread_create(&t, NULL, latency_thread_main, NULL) == 0, "pthread_create");
	pthread_join(t, NULL);
	CHECK(sched_now().runtime == mine.runtime, "the main thread's slice changed");
}

/* fr__guess_slot: where frames go round in order, and no guess where the
 * index may have moved past the frame (LAYOUT.md 9.1). */
static void test_guess_slot(void)
{
	uint32_t k = 99;
	CHECK(!fr__guess_slot(0, 5, 9, 8, 64, &k), "no hint, a guess");
	CHECK(fr__guess_slot(4ull << 16 | 2, 5, 9, 8, 64, &k) && k == 3, "next frame: slot %u, want 3", k);
	CHECK(fr__guess_slot(4ull << 16 | 6, 7, 9, 8, 64, &k) && k == 1, "wrapped: slot %u, want 1", k);
	CHECK(fr__guess_slot(4ull << 16 | 0, 4 + 17, 30, 8, 64, &k) && k == 1, "skipped 17: slot %u, want 1", k);
	CHECK(!fr__guess_slot(4ull << 16 | 2, 4, 9, 8, 64, &k), "same frame as the hint, a guess");
	CHECK(!fr__guess_slot(4ull << 16 | 2, 3, 9, 8, 64, &k), "older frame than the hint, a guess");
	CHECK(!fr__guess_slot(4ull << 16 | 2, 10, 9, 8, 64, &k), "unpublished frame, a guess");
	CHECK(!fr__guess_slot(4ull << 16 | 2, 5, 5 + 8, 4, 8, &k), "p - seq == index_count, a guess");
	CHECK(!fr__guess_slot(4ull << 16 | 2, 5, 5 + 7, 4, 8, &k),
	      "p - seq == index_count - 1 (frame seq + index_count's entry may be stored already), a guess");
	CHECK(fr__guess_slot(4ull << 16 | 2, 5, 5 + 6, 4, 8, &k) && k == 3, "p - seq == index_count - 2: no guess");
	CHECK(!fr__guess_slot(4ull << 16 | 2, 5, 9, 0, 64, &k), "no slots, a guess");
}

int main(void)
{
	test_errors();
	test_geometry();
	test_headers();
	test_messages();
	test_names();
	test_attach();
	test_latency_thread();
	test_guess_slot();
	if (failures != 0) {
		fprintf(stderr, "unit: %d failures\n", failures);
		return 1;
	}
	printf("unit: ok\n");
	return 0;
}
