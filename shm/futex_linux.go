package shm

// Futexes on mapped words, shared between processes: the futex key of a
// MAP_SHARED page is (inode, offset), so every process that maps the same
// segment sleeps on the same queue. FUTEX_WAIT and FUTEX_WAKE only read the
// word, so a read-only mapping suffices for both.

import (
	"errors"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	futexWait = 0 // FUTEX_WAIT, shared (no FUTEX_PRIVATE_FLAG)
	futexWake = 1 // FUTEX_WAKE, shared
)

// Wait sleeps until the word is woken, its value is no longer val, or the
// timeout passes (timeout <= 0 means no timeout). It reports nothing about
// which happened: callers re-check their condition, as with any futex.
func (w ReadUint32) Wait(val uint32, timeout time.Duration) error {
	return futexWaitOn(w.p, val, timeout)
}

// Wake wakes up to n waiters on the word (n <= 0: all).
func (w ReadUint32) Wake(n int) (int, error) { return futexWakeOn(w.p, n) }

// FutexWait is Wait for a writable word.
func FutexWait(p *atomic.Uint32, val uint32, timeout time.Duration) error {
	return futexWaitOn(p, val, timeout)
}

// FutexWake wakes up to n waiters on a writable word (n <= 0: all).
func FutexWake(p *atomic.Uint32, n int) (int, error) { return futexWakeOn(p, n) }

func futexWaitOn(p *atomic.Uint32, val uint32, timeout time.Duration) error {
	var ts *unix.Timespec
	if timeout > 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(p)), futexWait, uintptr(val),
		uintptr(unsafe.Pointer(ts)), 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EINTR, unix.ETIMEDOUT:
		return nil
	}
	return errors.Join(errors.New("futex wait"), e)
}

func futexWakeOn(p *atomic.Uint32, n int) (int, error) {
	if n <= 0 || n > math.MaxInt32 {
		n = math.MaxInt32
	}
	r, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(p)), futexWake, uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0, errors.Join(errors.New("futex wake"), e)
	}
	return int(r), nil
}
