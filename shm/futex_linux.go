package shm

// Futexes on mapped words, shared between processes: the futex key of a
// MAP_SHARED page is (inode, offset), so every process that maps the same
// segment sleeps on the same queue. FUTEX_WAIT and FUTEX_WAKE only read the
// word, so a read-only mapping suffices for both.
//
// Which system call entry each uses, and why:
//
//   - FUTEX_WAKE never blocks, so it goes through unix.RawSyscall6: no
//     entersyscall/exitsyscall, so the waking goroutine keeps its P and
//     no sysmon hand-off or idle-P search happens on the publish path.
//   - Wait (FUTEX_WAIT through unix.Syscall6) tells the Go scheduler that
//     the thread blocks: after a while sysmon hands its P to another
//     thread, and on wake-up exitsyscall must find a P again. Right for a
//     goroutine that shares its process with other work.
//   - WaitRaw (unix.RawSyscall6) does not: the thread sleeps holding its P,
//     and on wake-up the goroutine simply continues (the latency mode of
//     ringbuf.Reader). While it sleeps, that P runs nothing else, and the
//     runtime's stop-the-world (GC) and sysmon's preemption of a long-
//     running goroutine must reach it by signal: they send its thread
//     SIGURG. A futex wait *with a timeout* that a signal handler
//     interrupts is not restarted (the kernel returns
//     ERESTART_RESTARTBLOCK, which becomes EINTR once a handler ran, even
//     with SA_RESTART; a wait without a timeout would be restarted), so
//     WaitRaw always passes one and reports the interruption: the caller
//     then yields (runtime.Gosched), and the stop-the-world proceeds
//     within the signal's delivery, not the timeout. The timeout (at most
//     RawWaitMax) is the bound only where that signal is not delivered:
//     GODEBUG=asyncpreemptoff=1, or a program that ignores SIGURG
//     (signal.Ignore(syscall.SIGURG) sets SIG_IGN in the kernel).
//
// Why the timeout is long (RawWaitMax, 20 ms) rather than a millisecond:
// a timeout shorter than the kernel's scheduler tick makes the futex's
// timer the CPU's next event, and cancelling it on wake-up reprograms the
// timer hardware on the wake-up path. On a virtual machine that is a trap
// to the hypervisor: on the 2-core KVM guest of the README's numbers, a C
// futex ping's p50 went from 4-8 µs without a timeout to 16-20 µs with a
// 1-2 ms one, and back to 6-7 µs with 5 ms or more (HZ=250: a 4 ms tick).
// 20 ms exceeds the tick at any HZ Linux offers (100 or more).

import (
	"errors"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/clock"
)

const (
	futexWait = 0 // FUTEX_WAIT, shared (no FUTEX_PRIVATE_FLAG)
	futexWake = 1 // FUTEX_WAKE, shared
)

// RawWaitMax is the longest a WaitRaw (or SleepUntil) sleeps, whatever
// timeout it is given. The runtime's preemption signal ends such a sleep
// sooner (see the file comment); RawWaitMax bounds how long a garbage
// collection's stop-the-world can be held up where that signal is not
// delivered (GODEBUG=asyncpreemptoff=1, or SIGURG ignored).
const RawWaitMax = 20 * time.Millisecond

// Wait sleeps until the word is woken, its value is no longer val, or the
// timeout passes (timeout <= 0 means no timeout). It reports nothing about
// which happened: callers re-check their condition, as with any futex.
func (w ReadUint32) Wait(val uint32, timeout time.Duration) error {
	_, err := futexWaitOn(w.p, val, timeout, false)
	return err
}

// WaitRaw is Wait through a raw system call (see the file comment): the
// calling thread sleeps holding its P. timeout is capped to RawWaitMax
// (and <= 0 means RawWaitMax). interrupted reports that a signal ended
// the sleep (the runtime's preemption, most likely): the caller should
// yield (runtime.Gosched) before it sleeps again.
func (w ReadUint32) WaitRaw(val uint32, timeout time.Duration) (interrupted bool, err error) {
	if timeout <= 0 || timeout > RawWaitMax {
		timeout = RawWaitMax
	}
	return futexWaitOn(w.p, val, timeout, true)
}

// Wake wakes up to n waiters on the word (n <= 0: all).
func (w ReadUint32) Wake(n int) (int, error) { return futexWakeOn(w.p, n) }

// FutexWait is Wait for a writable word.
func FutexWait(p *atomic.Uint32, val uint32, timeout time.Duration) error {
	_, err := futexWaitOn(p, val, timeout, false)
	return err
}

// FutexWake wakes up to n waiters on a writable word (n <= 0: all).
func FutexWake(p *atomic.Uint32, n int) (int, error) { return futexWakeOn(p, n) }

func futexWaitOn(p *atomic.Uint32, val uint32, timeout time.Duration, raw bool) (interrupted bool, err error) {
	var ts *unix.Timespec
	var t unix.Timespec
	if timeout > 0 {
		t = unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	var e unix.Errno
	if raw {
		_, _, e = unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(p)), futexWait, uintptr(val),
			uintptr(unsafe.Pointer(ts)), 0, 0)
	} else {
		_, _, e = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(p)), futexWait, uintptr(val),
			uintptr(unsafe.Pointer(ts)), 0, 0)
	}
	switch e {
	case unix.EINTR:
		return true, nil
	case 0, unix.EAGAIN, unix.ETIMEDOUT:
		return false, nil
	}
	return false, errors.Join(errFutexWait, e)
}

var (
	errFutexWait = errors.New("futex wait")
	errFutexWake = errors.New("futex wake")
)

func futexWakeOn(p *atomic.Uint32, n int) (int, error) {
	if n <= 0 || n > math.MaxInt32 {
		n = math.MaxInt32
	}
	// Raw: FUTEX_WAKE never sleeps (see the file comment).
	r, _, e := unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(p)), futexWake, uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0, errors.Join(errFutexWake, e)
	}
	return int(r), nil
}

// SleepUntil sleeps until CLOCK_MONOTONIC reads monoNs (clock.Nanos), with
// clock_nanosleep(TIMER_ABSTIME) on the calling thread through a raw
// system call: no Go timer, so no other thread is woken to run it (the
// pacing a C program gets from the same call). The thread keeps its P, so
// the same caveat as WaitRaw applies: it is for pacing loops of a
// process that does nothing else meanwhile (the bench's producer), and
// sleeps at most RawWaitMax per call (it returns early then; callers loop).
func SleepUntil(monoNs int64) {
	if lim := clock.Nanos() + int64(RawWaitMax); monoNs > lim {
		monoNs = lim
	}
	ts := unix.NsecToTimespec(monoNs)
	unix.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME,
		uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
}
