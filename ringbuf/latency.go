package ringbuf

// Helpers for running a consumer in the latency mode (Options.Latency).
// The recipe, and what each step buys (README, "Performance"):
//
//  1. runtime.GOMAXPROCS(1) in the consumer process: one P, so a wake-up
//     never searches for an idle P or wakes another thread to run one.
//  2. Options.Latency: Wait sleeps in a raw FUTEX_WAIT holding that P, so
//     the woken thread simply continues (no exitsyscall, no sysmon).
//  3. LatencyThread on the goroutine that calls Next/Wait: a short
//     scheduler slice (LatencySlice), so that when the wake-up lands on
//     the CPU the producer runs on, the consumer preempts the producer at
//     once instead of queueing until it sleeps (EEVDF prefers the shorter
//     request); and PinThread or PinProcess with CPUs away from the
//     producer's where there are CPUs to spare.

import (
	"fmt"
	"runtime"
	"time"

	"github.com/framering/framering/shm"
)

// PinThread locks the calling goroutine to its OS thread
// (runtime.LockOSThread) and restricts that thread to cpus. unpin undoes
// both (the thread's previous CPU set is restored). Call it, and unpin,
// from the goroutine that waits for frames. Errors wrap shm.ErrBadCPU for
// a CPU the process may not use.
func PinThread(cpus ...int) (unpin func(), err error) {
	runtime.LockOSThread()
	prev, err := shm.ThreadAffinity()
	if err == nil {
		err = shm.SetThreadAffinity(cpus)
	}
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pin thread: %w", err)
	}
	return func() {
		// Best effort: prev came from this thread a moment ago.
		_ = shm.SetThreadAffinity(prev)
		runtime.UnlockOSThread()
	}, nil
}

// LatencySlice is the scheduler slice LatencyThread asks for: the
// shortest the kernel grants (0.1 ms). A consumer in the latency mode
// runs for microseconds per frame, far less than that.
const LatencySlice = 100 * time.Microsecond

// LatencyThread locks the calling goroutine to its OS thread
// (runtime.LockOSThread) and asks the scheduler for a short slice for that
// thread (LatencySlice; shm.SetThreadSlice: Linux 6.12 and later, ignored
// by earlier kernels). undo restores the default slice and unlocks. Call
// both from the goroutine that waits for frames. On the 2-core VM of the
// README's numbers, where a woken consumer usually lands on its
// producer's CPU, the C futex ping's p90 went from 25 µs to 10 µs with it.
func LatencyThread() (undo func(), err error) {
	runtime.LockOSThread()
	if err := shm.SetThreadSlice(LatencySlice); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("latency thread: %w", err)
	}
	return func() {
		// Best effort: the same call succeeded a moment ago.
		_ = shm.SetThreadSlice(0)
		runtime.UnlockOSThread()
	}, nil
}

// PinProcess restricts every thread of this process to cpus (threads
// created later inherit the set). Commands call it at start-up for their
// -cpus flag. Errors wrap shm.ErrBadCPU for a CPU the process may not use.
func PinProcess(cpus ...int) error {
	if err := shm.SetProcessAffinity(cpus); err != nil {
		return fmt.Errorf("pin process: %w", err)
	}
	return nil
}

// ParseCPUList parses a CPU list as taskset prints it ("3", "0,2",
// "4-7,9"), for a command's -cpus flag.
func ParseCPUList(s string) ([]int, error) { return shm.ParseCPUList(s) }
