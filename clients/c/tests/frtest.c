/*
 * frtest: the C side of libframering's multi-process tests. The Go tests
 * (clients/c/clients_test.go) run a real Go producer and start frtest in
 * one of these roles, reading its stdout lines (key=value words):
 *
 *   frtest attach SOCKET consumer|observer
 *       attach once and print "attach rc=NAME detail=...", then detach.
 *       Exit 0 whatever the result (the test judges it); nonzero only on a
 *       crash or a sanitizer report.
 *
 *   frtest hoard [-forge] SOCKET
 *       attach lossy, borrow quota frames with fr_next ("holding n=Q
 *       quota=Q"), never releasing them, and try one more ("quota-check
 *       rc=NAME": refused by the quota, or no frame came). With -forge,
 *       then also set our hold bit on one more slot, straight into the
 *       control segment through /proc/PRODUCER/fd: a client that ignores the
 *       quota. Then wait until a lease is reported revoked, print
 *       "revoked check=NAME", "next rc=NAME" and "borrow rc=NAME" (what
 *       they say now) and "health evicted=E state=S"; wait for a line on
 *       stdin, release every lease ("release rc=NAME" each), print
 *       "released revoked=N held=H", and wait for another line before
 *       detaching.
 *
 *   frtest health SOCKET
 *       wait for frames, printing the producer's state whenever it changes
 *       ("health state=S source=N age_ms=A") and the stall events ("event
 *       stalled|resumed MSG"), until the ring ends ("end rc=NAME").
 *
 *   frtest chaos SOCKET MS
 *       for MS milliseconds, call everything (next, borrow, peek,
 *       peek_copy, wait, health, stats) on a ring whose producer scribbles
 *       on its data segment, and check that every frame handed out lies
 *       inside the mapping. Prints "attached", then "done calls=N ok=K
 *       violations=V held=H".
 *
 *   frtest threads SOCKET N
 *       one thread takes frames with fr_next (lossless) and hands each
 *       lease to two worker threads, which verify the pattern, check and
 *       release it; a third thread reads health, counters, ring stats and
 *       peeks meanwhile. After N frames the main thread shuts the ring down
 *       while the taker may be asleep in fr_next, joins it, and detaches
 *       while leases may still be queued; the workers release them
 *       afterwards (the last release frees the attachment), then waits
 *       for stdin to close. Prints "done delivered=D
 *       released=R bad=B next_end=NAME". Run under TSan by make test.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "framering.h"
#include "pattern.h"

static void die(const char *what, int rc)
{
	fprintf(stderr, "frtest: %s: %s (%s)\n", what, fr_strerror(rc), fr_error_name(rc));
	exit(1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- attach ---- */

static int cmd_attach(const char *sock, const char *role)
{
	fr_options o;
	fr_options_init(&o);
	o.socket_path = sock;
	o.name = "frtest";
	o.role = strcmp(role, "observer") == 0 ? FR_ROLE_OBSERVER : FR_ROLE_CONSUMER;
	o.handshake_timeout_ms = 2000;
	char err[256] = "";
	o.error_buf = err;
	o.error_buf_size = sizeof err;
	fr_ring *r;
	int rc = fr_attach(&o, &r);
	printf("attach rc=%s detail=%s\n", fr_error_name(rc), err);
	fflush(stdout);
	if (rc == FR_OK) {
		/* Touch what attach validated: the geometry must be usable. */
		fr_info i;
		fr_get_info(r, &i);
		uint64_t p = fr_published(r);
		fr_frame f;
		fr_peek(r, p, &f);
		fr_detach(r);
	} else if (r != NULL) {
		fprintf(stderr, "frtest: a failed attach returned a handle\n");
		return 1;
	}
	return 0;
}

/* ---- hoard ---- */

/* forge_hold sets our bit in slot k's hold word, in the producer's control
 * memfd opened through /proc: what a client ignoring the quota does. */
static void forge_hold(const fr_info *i, uint32_t k)
{
	const char *base = strrchr(i->socket_path, '/');
	base = base ? base + 1 : i->socket_path;
	char tag[128];
	snprintf(tag, sizeof tag, "%s", base);
	char *dot = strstr(tag, ".sock");
	if (dot != NULL)
		*dot = '\0';
	char want[256], dir[64];
	snprintf(want, sizeof want, "/memfd:framering-control:%s (deleted)", tag);
	snprintf(dir, sizeof dir, "/proc/%" PRIu32 "/fd", i->producer_pid);
	DIR *d = opendir(dir);
	if (d == NULL) {
		perror("frtest: opendir /proc/PID/fd");
		exit(1);
	}
	struct dirent *e;
	int fd = -1;
	while ((e = readdir(d)) != NULL && fd < 0) {
		char path[512], link[512];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, want) == 0)
			fd = open(path, O_RDWR | O_CLOEXEC);
	}
	closedir(d);
	if (fd < 0) {
		fprintf(stderr, "frtest: no control memfd %s in %s\n", want, dir);
		exit(1);
	}
	struct stat st;
	fstat(fd, &st);
	uint8_t *c = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (c == MAP_FAILED) {
		perror("frtest: mmap control");
		exit(1);
	}
	close(fd);
	/* hold words at 0x1000 + 64*k (docs/LAYOUT.md 5); our bit is 1 << entry. */
	_Atomic uint64_t *hold = (_Atomic uint64_t *)(void *)(c + 0x1000 + 64 * (uint64_t)k);
	atomic_fetch_or(hold, (uint64_t)1 << i->entry);
	munmap(c, (size_t)st.st_size);
	printf("forged slot=%" PRIu32 "\n", k);
	fflush(stdout);
}

static int cmd_hoard(int forge, const char *sock)
{
	fr_options o;
	fr_options_init(&o);
	o.socket_path = sock;
	o.name = "hoarder";
	o.mode = FR_MODE_LOSSY;
	fr_ring *r;
	int rc = fr_attach(&o, &r);
	if (rc != FR_OK)
		die("attach", rc);
	fr_info info;
	fr_get_info(r, &info);
	fr_lease leases[256];
	uint32_t slots_held[256];
	size_t n = 0;
	if (info.hold_quota > sizeof leases / sizeof leases[0])
		die("hoard", FR_ERR_TOO_MANY_LEASES);
	/* Lossy: each frame is a new one, in a slot we do not hold yet. */
	while (n < info.hold_quota) {
		fr_frame f;
		rc = fr_next(r, 10000, &leases[n], &f);
		if (rc != FR_OK)
			die("next", rc);
		slots_held[n++] = f.slot;
	}
	printf("holding n=%zu quota=%" PRIu32 "\n", n, info.hold_quota);
	/* One more: refused by the quota if a frame comes (with every slot held
	 * none does, and the eviction ends the wait). */
	{
		fr_lease l;
		fr_frame f;
		rc = fr_next(r, 200, &l, &f);
		printf("quota-check rc=%s\n", fr_error_name(rc));
		if (rc == FR_OK)
			die("the quota let a borrow through", rc);
	}
	fflush(stdout);
	if (forge) {
		/* A slot we do not hold: our bit in quota + 1 hold words. */
		uint32_t k = 0;
		for (;; k++) {
			int ours = 0;
			for (size_t j = 0; j < n; j++)
				ours |= slots_held[j] == k;
			if (!ours)
				break;
		}
		forge_hold(&info, k);
	}
	/* Wait for the eviction to show on a lease (at most 20 s). */
	int check = FR_OK;
	for (int i = 0; i < 20000 && check == FR_OK; i++) {
		check = fr_lease_check(r, leases[0]);
		if (check == FR_OK)
			sleep_ms(1);
	}
	printf("revoked check=%s\n", fr_error_name(check));
	fr_lease l;
	fr_frame f;
	rc = fr_next(r, 1000, &l, &f);
	printf("next rc=%s\n", fr_error_name(rc));
	rc = fr_borrow(r, fr_published(r), &l, &f);
	printf("borrow rc=%s\n", fr_error_name(rc));
	fr_health h;
	fr_get_health(r, &h);
	printf("health evicted=%" PRIu32 " state=%s\n", h.evicted, fr_producer_state_name(h.state));
	fflush(stdout);
	char line[16];
	if (fgets(line, sizeof line, stdin) == NULL) {
		/* EOF: release all the same */
	}
	for (size_t j = 0; j < n; j++)
		printf("release rc=%s\n", fr_error_name(fr_release(r, leases[j])));
	printf("release-again rc=%s\n", fr_error_name(fr_release(r, leases[0])));
	fr_counters c;
	fr_get_counters(r, &c);
	printf("released revoked=%" PRIu64 " held=%" PRIu64 "\n", c.revoked, c.held);
	fflush(stdout);
	if (fgets(line, sizeof line, stdin) == NULL) {
		/* EOF: detach all the same */
	}
	fr_detach(r);
	return 0;
}

/* ---- threads ---- */

#define QCAP 64

struct item {
	fr_lease lease;
	fr_frame f;
};

struct shared {
	fr_ring *r;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct item q[QCAP];
	size_t head, len;
	int done; /* no more items will come */
	atomic_uint_fast64_t released, bad, checks;
	atomic_int stop_watch;
};

static void *worker(void *arg)
{
	struct shared *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (s->len == 0 && !s->done)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->len == 0) {
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		struct item it = s->q[s->head];
		s->head = (s->head + 1) % QCAP;
		s->len--;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		struct verdict v = verify(&it.f, 1);
		if (!v.ok) {
			fprintf(stderr, "frtest: frame %" PRIu64 ": %s\n", it.f.seq, v.why);
			atomic_fetch_add(&s->bad, 1);
		}
		int rc = fr_lease_check(s->r, it.lease);
		if (rc != FR_OK) {
			fprintf(stderr, "frtest: check %" PRIu64 ": %s\n", it.f.seq, fr_error_name(rc));
			atomic_fetch_add(&s->bad, 1);
		}
		rc = fr_release(s->r, it.lease);
		if (rc != FR_OK) {
			fprintf(stderr, "frtest: release %" PRIu64 ": %s\n", it.f.seq, fr_error_name(rc));
			atomic_fetch_add(&s->bad, 1);
		}
		atomic_fetch_add(&s->released, 1);
	}
}

/* watcher reads everything that may be read concurrently with fr_next. It
 * stops before the main thread detaches (calls after fr_detach are not
 * allowed but for fr_release/fr_lease_check). */
static void *watcher(void *arg)
{
	struct shared *s = arg;
	while (!atomic_load(&s->stop_watch)) {
		fr_health h;
		fr_counters c;
		fr_ring_stats rs;
		fr_info i;
		fr_frame f;
		fr_get_health(s->r, &h);
		fr_get_counters(s->r, &c);
		fr_get_ring_stats(s->r, &rs);
		fr_get_info(s->r, &i);
		if (fr_peek(s->r, fr_published(s->r), &f) == FR_OK) {
			struct verdict v = verify(&f, 1);
			if (fr_peek_check(s->r, &f) == FR_OK && !v.ok) {
				fprintf(stderr, "frtest: a validated peek of %" PRIu64 " is bad: %s\n", f.seq, v.why);
				atomic_fetch_add(&s->bad, 1);
			}
		}
		atomic_fetch_add(&s->checks, 1);
		sleep_ms(1);
	}
	return NULL;
}

struct taker_arg {
	struct shared *s;
	uint64_t delivered;
	int end;
};

static void *taker(void *arg)
{
	struct taker_arg *t = arg;
	struct shared *s = t->s;
	for (;;) {
		struct item it;
		int rc = fr_next(s->r, -1, &it.lease, &it.f);
		if (rc == FR_ERR_TOO_MANY_HELD || rc == FR_ERR_TOO_MANY_LEASES) {
			sleep_ms(1); /* the workers are behind: let them release */
			continue;
		}
		if (rc != FR_OK) {
			t->end = rc; /* FR_ERR_CLOSED once main detached */
			break;
		}
		t->delivered++;
		pthread_mutex_lock(&s->mu);
		while (s->len == QCAP)
			pthread_cond_wait(&s->cv, &s->mu);
		s->q[(s->head + s->len) % QCAP] = it;
		s->len++;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static int cmd_threads(const char *sock, uint64_t want)
{
	fr_options o;
	fr_options_init(&o);
	o.socket_path = sock;
	o.name = "threads";
	o.mode = FR_MODE_LOSSLESS;
	o.max_leases = 32;
	struct shared s;
	memset(&s, 0, sizeof s);
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	int rc = fr_attach(&o, &s.r);
	if (rc != FR_OK)
		die("attach", rc);
	printf("attached\n");
	fflush(stdout);
	struct taker_arg t = {&s, 0, FR_OK};
	pthread_t tk, w1, w2, wa;
	pthread_create(&tk, NULL, taker, &t);
	pthread_create(&w1, NULL, worker, &s);
	pthread_create(&w2, NULL, worker, &s);
	pthread_create(&wa, NULL, watcher, &s);
	/* Until the workers released want frames. */
	while (atomic_load(&s.released) < want)
		sleep_ms(1);
	atomic_store(&s.stop_watch, 1);
	pthread_join(wa, NULL);
	/* Stop the taker wherever it is (asleep in fr_next, or about to call
	 * it): it returns FR_ERR_CLOSED. Then detach with leases perhaps still
	 * queued: the workers release the rest, and the last release tears the
	 * attachment down. */
	fr_shutdown(s.r);
	pthread_join(tk, NULL);
	fr_detach(s.r);
	pthread_mutex_lock(&s.mu);
	s.done = 1;
	pthread_cond_broadcast(&s.cv);
	pthread_mutex_unlock(&s.mu);
	pthread_join(w1, NULL);
	pthread_join(w2, NULL);
	printf("done delivered=%" PRIu64 " released=%" PRIu64 " bad=%" PRIu64 " checks=%" PRIu64 " next_end=%s\n",
	       t.delivered, (uint64_t)atomic_load(&s.released), (uint64_t)atomic_load(&s.bad),
	       (uint64_t)atomic_load(&s.checks), fr_error_name(t.end));
	fflush(stdout);
	pthread_mutex_destroy(&s.mu);
	pthread_cond_destroy(&s.cv);
	return atomic_load(&s.bad) == 0 && t.delivered == atomic_load(&s.released) && t.end == FR_ERR_CLOSED ? 0 : 1;
}

/* ---- chaos ---- */

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* in_mapping reports whether a frame's bytes lie inside the data mapping
 * and its length within the slot capacity. */
static int in_mapping(const fr_info *i, const fr_frame *f)
{
	uintptr_t lo = (uintptr_t)i->data_mapping, hi = lo + i->data_mapping_size, p = (uintptr_t)f->data;
	return f->length <= i->slot_capacity && p >= lo && p <= hi && f->length <= hi - p;
}

/* cmd_chaos calls everything, for ms milliseconds, on a ring whose producer
 * scribbles on the data segment: every call must return, and every frame
 * the library hands out must lie inside the mapping. */
static int cmd_chaos(const char *sock, long ms)
{
	fr_options o;
	fr_options_init(&o);
	o.socket_path = sock;
	o.name = "chaos";
	o.mode = FR_MODE_LOSSY;
	fr_ring *r;
	int rc = fr_attach(&o, &r);
	if (rc != FR_OK)
		die("attach", rc);
	printf("attached\n");
	fflush(stdout);
	fr_info info;
	fr_get_info(r, &info);
	static uint8_t buf[1 << 16];
	uint64_t x = 88172645463325252ull, calls = 0, ok = 0, violations = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			break;
		fr_lease l;
		fr_frame f;
		uint64_t seq = rnd(&x) % 4 == 0 ? rnd(&x) >> (rnd(&x) % 64) : fr_published(r) - rnd(&x) % 3;
		switch (rnd(&x) % 5) {
		case 0:
			rc = fr_next(r, 1, &l, &f);
			break;
		case 1:
			rc = fr_borrow(r, seq, &l, &f);
			break;
		case 2:
			l = FR_NO_LEASE;
			rc = fr_peek(r, seq, &f);
			if (rc == FR_OK) {
				volatile uint8_t sink = 0;
				if (f.length > 0 && in_mapping(&info, &f))
					sink ^= ((const volatile uint8_t *)f.data)[f.length - 1];
				(void)sink;
				fr_peek_check(r, &f);
			}
			break;
		case 3:
			l = FR_NO_LEASE;
			rc = fr_peek_copy(r, seq, buf, rnd(&x) % 2 ? sizeof buf : 100, &f);
			if (rc == FR_OK && (f.data != buf || f.length > sizeof buf))
				violations++;
			if (rc == FR_OK)
				goto counted;
			break;
		default: {
			fr_health h;
			fr_ring_stats rs;
			uint64_t p;
			l = FR_NO_LEASE;
			fr_get_health(r, &h);
			fr_get_ring_stats(r, &rs);
			rc = fr_wait(r, seq, 0, &p);
			calls++;
			continue;
		}
		}
		if (rc == FR_OK) {
			if (!in_mapping(&info, &f)) {
				fprintf(stderr, "frtest: frame %" PRIu64 " of %" PRIu64 " bytes outside the mapping\n", f.seq, f.length);
				violations++;
			}
		counted:
			ok++;
		}
		if (l != FR_NO_LEASE) {
			if (f.length > 0 && in_mapping(&info, &f)) {
				volatile uint8_t sink = ((const volatile uint8_t *)f.data)[0];
				(void)sink;
			}
			fr_lease_check(r, l);
			fr_release(r, l);
		}
		calls++;
	}
	fr_counters c;
	fr_get_counters(r, &c);
	printf("done calls=%" PRIu64 " ok=%" PRIu64 " violations=%" PRIu64 " held=%" PRIu64 "\n", calls, ok, violations, c.held);
	fflush(stdout);
	fr_detach(r);
	return violations == 0 && c.held == 0 ? 0 : 1;
}

/* ---- health ---- */

static void health_event(void *arg, int event, const char *msg)
{
	(void)arg;
	printf("event %s %s\n", event == FR_EVENT_STALLED ? "stalled" : event == FR_EVENT_RESUMED ? "resumed" : "other", msg);
	fflush(stdout);
}

/* cmd_health waits for frames and prints the producer's state each time it
 * changes ("health state=S source=N"), and the log events, until the
 * attachment ends. */
static int cmd_health(const char *sock)
{
	fr_options o;
	fr_options_init(&o);
	o.socket_path = sock;
	o.name = "health";
	o.stall_after_ms = 300;
	o.log = health_event;
	fr_ring *r;
	int rc = fr_attach(&o, &r);
	if (rc != FR_OK)
		die("attach", rc);
	uint32_t last = 99;
	for (;;) {
		uint64_t p = fr_published(r);
		rc = fr_wait(r, p, 20, NULL);
		fr_health h;
		fr_get_health(r, &h);
		if (h.state != last) {
			last = h.state;
			printf("health state=%s source=%" PRIu32 " age_ms=%" PRId64 "\n", fr_producer_state_name(h.state),
			       h.source_state, h.heartbeat_age_ns / 1000000);
			fflush(stdout);
		}
		if (rc != FR_OK && rc != FR_ERR_TIMEOUT) {
			printf("end rc=%s\n", fr_error_name(rc));
			break;
		}
	}
	fr_detach(r);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "attach") == 0)
		return cmd_attach(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "hoard") == 0)
		return cmd_hoard(0, argv[2]);
	if (argc == 4 && strcmp(argv[1], "hoard") == 0 && strcmp(argv[2], "-forge") == 0)
		return cmd_hoard(1, argv[3]);
	if (argc == 3 && strcmp(argv[1], "health") == 0)
		return cmd_health(argv[2]);
	if (argc == 4 && strcmp(argv[1], "chaos") == 0)
		return cmd_chaos(argv[2], strtol(argv[3], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "threads") == 0) {
		int rc = cmd_threads(argv[2], strtoull(argv[3], NULL, 10));
		/* Detached: exit only once the test saw the producer release us
		 * by the connection's end (and its bye), not by our exit. */
		while (getchar() != EOF) {
		}
		return rc;
	}
	fprintf(stderr, "usage: frtest attach SOCKET consumer|observer | hoard [-forge] SOCKET | threads SOCKET N | chaos SOCKET MS | health SOCKET\n");
	return 2;
}
