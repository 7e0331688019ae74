package ringbuf_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
	"github.com/framering/framering/shm"
	"golang.org/x/sys/unix"
)

// A consumer in the latency mode sleeps (Spin of a nanosecond, so it
// reaches the raw futex wait), is woken by every publish, allocates
// nothing per frame, and is woken by Close.
func TestLatencyModeWakesAndAllocatesNothing(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 8})
	r := attach(t, p, ringbuf.Options{Consumer: "lat", Spin: time.Nanosecond, Latency: true, Mode: ringbuf.Lossless})
	ctx := testCtx(t)
	got := make(chan uint64)
	errc := make(chan error, 1)
	go func() {
		for {
			l, err := r.Next(ctx)
			if err != nil {
				errc <- err
				return
			}
			got <- l.Meta().Seq
			l.Release()
		}
	}()
	for i := uint64(1); i <= 20; i++ {
		// Let the consumer fall asleep first now and then.
		if i%4 == 0 {
			waitSleeping(t, p)
		}
		publish(t, p, byte(i))
		select {
		case s := <-got:
			if s != i {
				t.Fatalf("got seq %d, want %d", s, i)
			}
		case err := <-errc:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("frame %d never delivered", i)
		}
	}
	waitSleeping(t, p)
	r.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ringbuf.ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not wake the latency-mode sleeper")
	}

	// Allocations per frame, same as the default mode.
	r2 := attach(t, p, ringbuf.Options{Consumer: "lat2", Spin: time.Nanosecond, Latency: true})
	if n := testing.AllocsPerRun(100, func() {
		publish(t, p, 1)
		l, err := r2.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}); n != 0 {
		t.Errorf("latency-mode next: %v allocs", n)
	}
}

// waitSleeping waits until some consumer has its waiter bit set.
func waitSleeping(t *testing.T, p *ringbuf.Producer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ringbuf.WaitersForTest(p) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no consumer went to sleep")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// PinThread restricts the calling thread to the CPUs given and unpin puts
// the previous set back; a CPU the process may not use is refused.
func TestPinThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := shm.ThreadAffinity()
	if err != nil {
		t.Fatal(err)
	}
	cpu := before[len(before)-1]
	unpin, err := ringbuf.PinThread(cpu)
	if err != nil {
		t.Fatal(err)
	}
	if now, _ := shm.ThreadAffinity(); !slices.Equal(now, []int{cpu}) {
		t.Errorf("pinned to %d, thread may run on %v", cpu, now)
	}
	unpin()
	if now, _ := shm.ThreadAffinity(); !slices.Equal(now, before) {
		t.Errorf("after unpin: %v, want %v", now, before)
	}
	if _, err := ringbuf.PinThread(1023); !errors.Is(err, shm.ErrBadCPU) {
		t.Errorf("cpu 1023: %v, want ErrBadCPU", err)
	}
	if _, err := ringbuf.PinThread(); !errors.Is(err, shm.ErrBadCPU) {
		t.Errorf("no cpus: %v, want ErrBadCPU", err)
	}
}

// LatencyThread gives the calling thread the short slice and undo puts the
// default back; the thread's nice value is kept.
func TestLatencyThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, 3); err != nil { // this thread: nice 3
		t.Fatal(err)
	}
	defer unix.Setpriority(unix.PRIO_PROCESS, 0, 0)
	before, err := shm.ThreadSlice(0)
	if err != nil {
		t.Fatal(err)
	}
	undo, err := ringbuf.LatencyThread()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := shm.ThreadSlice(0); got != ringbuf.LatencySlice {
		t.Errorf("slice %v, want %v (Linux 6.12 or later)", got, ringbuf.LatencySlice)
	}
	if nice, err := unix.Getpriority(unix.PRIO_PROCESS, 0); err != nil || 20-nice != 3 {
		t.Errorf("nice value after LatencyThread: %d (raw), %v; want 3 kept", nice, err)
	}
	undo()
	if got, _ := shm.ThreadSlice(0); got != before || got == ringbuf.LatencySlice {
		t.Errorf("after undo: slice %v, want the default %v", got, before)
	}
}

// LatencyProcess gives every thread of the process the short slice, and
// threads made afterwards inherit it; undo puts the default back on all.
func TestLatencyProcess(t *testing.T) {
	threads := func() map[int]bool {
		t.Helper()
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		m := map[int]bool{}
		for _, e := range ents {
			if tid, err := strconv.Atoi(e.Name()); err == nil {
				m[tid] = true
			}
		}
		return m
	}
	checkAll := func(want time.Duration) {
		t.Helper()
		for tid := range threads() {
			got, err := shm.ThreadSlice(tid)
			if err != nil && !errors.Is(err, unix.ESRCH) {
				t.Fatal(err)
			}
			if err == nil && got != want {
				t.Errorf("thread %d: slice %v, want %v (Linux 6.12 or later)", tid, got, want)
			}
		}
	}
	def, err := shm.ThreadSlice(0) // the kernel's default, as it reports it
	if err != nil {
		t.Fatal(err)
	}
	before := threads()
	undo, err := ringbuf.LatencyProcess()
	if err != nil {
		t.Fatal(err)
	}
	checkAll(ringbuf.LatencySlice)

	// Goroutines locked to threads of their own until one runs on a
	// thread made after LatencyProcess: it has the slice too.
	release := make(chan struct{})
	type report struct {
		tid   int
		slice time.Duration
		err   error
	}
	reports := make(chan report)
	var wg sync.WaitGroup
	defer func() { close(release); wg.Wait() }()
	for fresh := false; !fresh; {
		if len(before) > 200 {
			t.Fatal("no new thread after 200 locked goroutines")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			s, err := shm.ThreadSlice(0)
			reports <- report{unix.Gettid(), s, err}
			<-release
		}()
		r := <-reports
		if r.err != nil || r.slice != ringbuf.LatencySlice {
			t.Fatalf("thread %d (new: %v): slice %v, %v; want %v", r.tid, !before[r.tid], r.slice, r.err, ringbuf.LatencySlice)
		}
		fresh = !before[r.tid]
		before[r.tid] = true
	}
	undo()
	checkAll(def)
}
