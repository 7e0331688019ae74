package shm

// CPU affinity and scheduler slice of the calling thread or of every
// thread of the process (sched_setaffinity, sched_setattr), for consumers
// run in the latency mode: ringbuf.PinThread, PinProcess, LatencyProcess
// and LatencyThread are the user-facing helpers.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBadCPU is returned when a CPU set is empty or names a CPU this
// process may not run on.
var ErrBadCPU = errors.New("bad cpu set")

// SetThreadAffinity restricts the calling OS thread to cpus (those of them
// online and in the process's cpuset: the kernel's rule). The caller
// must have locked its goroutine to the thread (runtime.LockOSThread), or
// the setting applies to whichever goroutine the thread runs next.
func SetThreadAffinity(cpus []int) error {
	if len(cpus) == 0 {
		return fmt.Errorf("set thread affinity: %w: no cpus", ErrBadCPU)
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= len(set)*64 {
			return fmt.Errorf("set thread affinity: %w: cpu %d", ErrBadCPU, c)
		}
		set.Set(c)
	}
	// EINVAL: no CPU of the set is online and in this process's cpuset.
	if err := unix.SchedSetaffinity(0, &set); errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("set thread affinity %v: %w: none of them is one this process may use", cpus, ErrBadCPU)
	} else if err != nil {
		return fmt.Errorf("set thread affinity: %w", err)
	}
	return nil
}

// ThreadAffinity returns the CPUs the calling OS thread may run on.
func ThreadAffinity() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("thread affinity: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// SetProcessAffinity restricts every thread of this process to cpus (each
// task in /proc/self/task; threads created later inherit the set from the
// thread that creates them). As with SetThreadAffinity, CPUs of the set that
// the process may not use are ignored if at least one remains.
func SetProcessAffinity(cpus []int) error {
	if err := SetThreadAffinity(cpus); err != nil {
		return err
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := eachThread(func(tid int) error { return unix.SchedSetaffinity(tid, &set) }); err != nil {
		return fmt.Errorf("set process affinity: %w", err)
	}
	return nil
}

// eachThread calls set for every thread of this process (/proc/self/task),
// again for threads that appear while it runs, until a pass finds none it
// has not set: a thread made during a pass may have been cloned from one
// not yet set. A thread that exits meanwhile (ESRCH) is skipped.
func eachThread(set func(tid int) error) error {
	done := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			fresh = true
			done[tid] = true
			if err := set(tid); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
		}
		if !fresh {
			return nil
		}
	}
}

// ParseCPUList parses a CPU list as taskset and /sys print it: "3",
// "0,2", "4-7,9".
func ParseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= 1024 {
			return nil, fmt.Errorf("parse cpu list %q: %w", s, ErrBadCPU)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// SetThreadSlice asks the scheduler for a time slice of d for the calling
// OS thread: the EEVDF scheduler's custom slice of a SCHED_OTHER or
// SCHED_BATCH thread (sched_setattr's sched_runtime; Linux 6.12 and later
// clamp it to 0.1-100 ms, earlier kernels ignore it). A woken thread whose
// slice is shorter than the running thread's preempts it at once, instead
// of waiting on the run queue until that thread sleeps. d <= 0 restores
// the default slice. The thread's policy and nice value are kept; a thread
// of a real-time policy (which preempts fair threads anyway) is left as it
// is. As with SetThreadAffinity, the caller locks its goroutine to the
// thread.
func SetThreadSlice(d time.Duration) error {
	if err := setSlice(0, d); err != nil {
		return fmt.Errorf("set thread slice %v: %w", d, err)
	}
	return nil
}

// SetProcessSlice is SetThreadSlice for every thread of this process
// (threads created later inherit the slice from the thread that creates
// them, as they do the CPU set). Go code running on any of them gets the
// slice, with no thread locked.
func SetProcessSlice(d time.Duration) error {
	if err := eachThread(func(tid int) error { return setSlice(tid, d) }); err != nil {
		return fmt.Errorf("set process slice %v: %w", d, err)
	}
	return nil
}

// setSlice sets thread tid's (0: the calling thread's) custom slice.
func setSlice(tid int, d time.Duration) error {
	a, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return err
	}
	if a.Policy != unix.SCHED_NORMAL && a.Policy != unix.SCHED_BATCH {
		return nil
	}
	a.Size = unix.SizeofSchedAttr
	a.Runtime = uint64(max(d, 0))
	a.Deadline, a.Period = 0, 0
	return unix.SchedSetAttr(tid, a, 0)
}

// ThreadSlice is thread tid's scheduler slice as the kernel reports it (0
// where it reports none); tid 0 is the calling thread.
func ThreadSlice(tid int) (time.Duration, error) {
	a, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return 0, fmt.Errorf("thread %d slice: %w", tid, err)
	}
	return time.Duration(a.Runtime), nil
}
