package ringbuf

// Helpers for running a consumer in the latency mode (Options.Latency).
// The recipe, and what each step buys (README, "Performance"):
//
//  1. runtime.GOMAXPROCS(1) in the consumer process: one P, so a wake-up
//     never searches for an idle P or wakes another thread to run one.
//  2. Options.Latency: Wait sleeps in a raw FUTEX_WAIT holding that P, so
//     the woken thread simply continues (no exitsyscall, no sysmon).
//  3. LatencyProcess: a short scheduler slice (LatencySlice) for every
//     thread of the process, so that when the wake-up lands on the CPU the
//     producer runs on, the consumer preempts the producer at once instead
//     of queueing until it sleeps (EEVDF prefers the shorter request); and
//     PinProcess with CPUs away from the producer's where there are CPUs
//     to spare.
//
// Step 3 sets every thread rather than locking the waiting goroutine to
// one thread (LatencyThread): Wait yields the processor now and then
// (YieldEvery, and whenever the runtime interrupts its raw wait), and a
// goroutine locked to its thread cannot yield without handing its P to
// another thread and back, two thread wake-ups per yield. Measured here,
// the locked thread nearly doubled the consumer's CPU per frame and its p99
// (README, "Performance", "No locked thread in the latency mode").

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

// LatencySlice is the scheduler slice LatencyProcess and LatencyThread
// ask for: the shortest the kernel grants (0.1 ms). A consumer in the
// latency mode runs for microseconds per frame, far less than that.
const LatencySlice = 100 * time.Microsecond

// LatencyProcess asks the scheduler for a short slice (LatencySlice;
// shm.SetProcessSlice: Linux 6.12 and later, ignored by earlier kernels)
// for every thread of this process, and for the threads it makes later,
// which inherit it. undo restores the default slice on every thread. It
// is the latency mode's scheduler setting (step 3 of the recipe above),
// for a process whose job is the consumer: the process's other threads
// get the short slice too. On the 2-core VM of the README's numbers, where
// a woken consumer usually lands on its producer's CPU, the C futex ping's
// p90 went from 25 µs to 10 µs with it.
func LatencyProcess() (undo func(), err error) {
	if err := shm.SetProcessSlice(LatencySlice); err != nil {
		return nil, fmt.Errorf("latency process: %w", err)
	}
	return func() {
		// Best effort: the same calls succeeded a moment ago.
		_ = shm.SetProcessSlice(0)
	}, nil
}

// LatencyThread locks the calling goroutine to its OS thread
// (runtime.LockOSThread) and asks the scheduler for a short slice for that
// thread only (LatencySlice; shm.SetThreadSlice). undo restores the
// default slice and unlocks. Call both from the goroutine that waits for
// frames. Prefer LatencyProcess with Options.Latency: a locked goroutine's
// every yield (Wait's, now and then) hands its P to another thread and
// back.
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
