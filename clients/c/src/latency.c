/*
 * latency.c - fr_latency_thread: a short scheduler slice for the thread
 * that waits for frames (framering.h, "Latency"), as shm.SetThreadSlice
 * does for the Go reader.
 *
 * It reads the calling thread's scheduling attributes and writes them back
 * with only sched_runtime changed, so the policy, nice value and
 * reset-on-fork flag stay as they were (a concurrent change of this
 * thread's nice value by another thread, between the two calls, would be
 * undone: nothing in the library does that).
 */
#define _GNU_SOURCE

#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "framering.h"

#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif

/* struct sched_attr of sched_setattr(2), its first version
 * (SCHED_ATTR_SIZE_VER0), under a name of its own: glibc before 2.41
 * declares neither the struct nor the calls, and 2.41's struct sched_attr
 * would clash with a local one. The kernel reads and writes the size we
 * pass, whatever its own version. */
struct sched_attr_v0 {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime; /* a fair thread's slice, ns (Linux 6.12) */
	uint64_t sched_deadline;
	uint64_t sched_period;
};
_Static_assert(sizeof(struct sched_attr_v0) == 48, "SCHED_ATTR_SIZE_VER0 is 48 bytes");

int fr_latency_thread(int64_t slice_ns)
{
	struct sched_attr_v0 a;
	memset(&a, 0, sizeof a);
	/* pid 0: the calling thread. */
	if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0u) != 0)
		return FR_ERR_SYSTEM;
	if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH)
		return FR_OK;
	a.size = sizeof a;
	a.sched_flags &= SCHED_FLAG_RESET_ON_FORK;
	a.sched_priority = 0;
	/* 0 asks the kernel for its default slice. */
	a.sched_runtime = slice_ns == 0 ? FR_LATENCY_SLICE_NS : slice_ns < 0 ? 0 : (uint64_t)slice_ns;
	a.sched_deadline = 0;
	a.sched_period = 0;
	if (syscall(SYS_sched_setattr, 0, &a, 0u) != 0)
		return FR_ERR_SYSTEM;
	return FR_OK;
}
