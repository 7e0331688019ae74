// futex_ping: the limit probe for the ring's futex rows. Two processes, one
// shared anonymous mapping: the parent (sender) paces one frame per
// interval with clock_nanosleep(TIMER_ABSTIME) -- the pacing frbench's
// ring producer uses -- stores the frame's CLOCK_MONOTONIC timestamp, then
// the sequence word, then FUTEX_WAKEs it; the child (receiver) sleeps in
// FUTEX_WAIT on the sequence word and, once woken, reads its clock. No
// ring: a wake-up of a sleeping process and nothing else.
//
// Usage: futex_ping FRAMES WARMUP INTERVAL_NS
// Prints one line per measured frame that was delivered: the one-way
// latency in nanoseconds (receiver clock minus sender timestamp). Exit
// status 0 on success. Built by frbench with the system C compiler.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DONE 0xFFFFFFFFu

struct shared {
	_Atomic uint32_t seq; // futex word: last frame sent (DONE: stop)
	_Atomic uint32_t ready;
	_Atomic int64_t ts[]; // ts[i]: sender's clock for frame i; then lat[i]
};

static int64_t now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static long futex(_Atomic uint32_t *w, int op, uint32_t val) {
	return syscall(SYS_futex, (uint32_t *)w, op, val, NULL, NULL, 0);
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: futex_ping FRAMES WARMUP INTERVAL_NS\n");
		return 2;
	}
	long frames = atol(argv[1]), warmup = atol(argv[2]);
	int64_t interval = atoll(argv[3]);
	if (frames <= 0 || warmup < 0 || interval <= 0 || frames + warmup >= (long)DONE / 2) {
		fprintf(stderr, "futex_ping: bad arguments\n");
		return 2;
	}
	long total = frames + warmup;
	size_t size = sizeof(struct shared) + 2 * (size_t)(total + 1) * sizeof(int64_t);
	struct shared *sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("futex_ping: mmap");
		return 1;
	}
	_Atomic int64_t *ts = sh->ts, *lat = sh->ts + total + 1;
	pid_t pid = fork();
	if (pid < 0) {
		perror("futex_ping: fork");
		return 1;
	}
	if (pid == 0) { // receiver
		uint32_t last = 0;
		atomic_store(&sh->ready, 1);
		for (;;) {
			uint32_t v = atomic_load(&sh->seq);
			if (v == last) {
				futex(&sh->seq, FUTEX_WAIT, v); // shared: no FUTEX_PRIVATE_FLAG, as the ring
				continue;
			}
			int64_t t = now_ns();
			if (v == DONE)
				_exit(0);
			if (v <= (uint32_t)total)
				atomic_store(&lat[v], t - atomic_load(&ts[v]));
			last = v;
		}
	}
	while (atomic_load(&sh->ready) == 0)
		usleep(1000);
	int64_t next = now_ns() + interval;
	for (long i = 1; i <= total; i++) {
		struct timespec abs = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL) == EINTR)
			;
		next += interval;
		atomic_store(&ts[i], now_ns());
		atomic_store(&sh->seq, (uint32_t)i); // after ts[i]: the receiver reads ts[v] after seq
		futex(&sh->seq, FUTEX_WAKE, 1);
	}
	usleep(20000);
	atomic_store(&sh->seq, DONE);
	futex(&sh->seq, FUTEX_WAKE, INT_MAX);
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "futex_ping: receiver failed\n");
		return 1;
	}
	for (long i = warmup + 1; i <= total; i++) {
		int64_t l = atomic_load(&lat[i]);
		if (l > 0)
			printf("%lld\n", (long long)l);
	}
	return 0;
}
