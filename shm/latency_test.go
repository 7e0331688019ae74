package shm_test

import (
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/clock"
	"github.com/framering/framering/shm"
)

// A raw futex wait is woken like the ordinary one, returns at once when the
// value already differs, and is capped at RawWaitMax even when asked for
// an hour (or for no timeout), so a sleeper re-checks its conditions.
func TestRawFutexWait(t *testing.T) {
	s := newSeg(t, 4096)
	a := mapSeg(t, s, true)
	b := mapSeg(t, s, false)
	w, _ := a.Uint32At(128)
	rs, _ := b.ReadUint32sAt(128, 1)
	word := rs.Word(0)
	w.Store(7)
	if _, err := word.WaitRaw(6, time.Hour); err != nil { // value differs
		t.Fatal(err)
	}
	for _, d := range []time.Duration{time.Hour, 0} {
		if _, err := word.WaitRaw(7, d); err != nil { // capped: returns
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		for word.Load() == 7 {
			_, _ = word.WaitRaw(7, time.Hour)
		}
		close(done)
	}()
	w.Store(8)
	wakeUntil(t, w, done, "raw sleeper never saw the new value")
}

// A raw sleeper holds its P, so the runtime's stop-the-world reaches it by
// signal: the wait ends (interrupted) instead of running to its timeout,
// and a signal sent to the thread by hand does the same.
func TestRawFutexWaitInterrupted(t *testing.T) {
	s := newSeg(t, 4096)
	a := mapSeg(t, s, true)
	w, _ := a.Uint32At(128)
	rs, _ := a.ReadUint32sAt(128, 1)
	word := rs.Word(0)
	w.Store(7)
	var tid, interrupted atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid.Store(int64(unix.Gettid()))
		for {
			select {
			case <-stop:
				return
			default:
			}
			in, err := word.WaitRaw(7, shm.RawWaitMax)
			if err != nil {
				t.Error(err)
				return
			}
			if in {
				interrupted.Add(1)
				runtime.Gosched()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for tid.Load() == 0 {
		runtime.Gosched()
	}
	// Garbage collections: each stops the world, preempting the sleeper's
	// P by signal (unless it happened to be between two waits).
	for i := 0; i < 200 && interrupted.Load() == 0; i++ {
		runtime.GC()
	}
	if interrupted.Load() == 0 {
		t.Fatal("200 stop-the-worlds never interrupted the raw sleeper")
	}
	// A signal sent by hand: Go's handler runs, the wait ends with EINTR.
	before := interrupted.Load()
	for i := 0; i < 200 && interrupted.Load() == before; i++ {
		if err := unix.Tgkill(unix.Getpid(), int(tid.Load()), unix.SIGURG); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if interrupted.Load() == before {
		t.Fatal("SIGURG never interrupted the raw sleeper")
	}
}

// SleepUntil never returns before its deadline when that is near, and
// returns (early, within RawWaitMax) when it is far.
func TestSleepUntil(t *testing.T) {
	for range 20 {
		target := clock.Nanos() + int64(300*time.Microsecond)
		shm.SleepUntil(target)
		if now := clock.Nanos(); now < target {
			t.Fatalf("woke %d ns before the deadline", target-now)
		}
	}
	shm.SleepUntil(clock.Nanos() + int64(time.Hour)) // must return: capped
	shm.SleepUntil(clock.Nanos() - int64(time.Second))
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{"3": {3}, "0,2": {0, 2}, "4-7,9": {4, 5, 6, 7, 9}, " 1 , 0": {1, 0}} {
		got, err := shm.ParseCPUList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "3-1", "-1", "1,", "5000"} {
		if _, err := shm.ParseCPUList(in); !errors.Is(err, shm.ErrBadCPU) {
			t.Errorf("%q: %v, want ErrBadCPU", in, err)
		}
	}
}
