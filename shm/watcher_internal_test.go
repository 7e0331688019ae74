package shm

// The pidfd watcher: descriptor reuse never reports the wrong process,
// Close racing Run.

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "100")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

// Two watched processes exit together; epoll_wait returns both events.
// While the first is being handled, the second pidfd is removed and closed
// (its owner noticed the exit by other means) and its descriptor number is
// reused by a new pidfd for a live process, registered under a new key.
// The Watcher must not report the new key for the old event.
func TestWatcherFdReuseReportsLiveProcess(t *testing.T) {
	p1, p2 := startSleeper(t), startSleeper(t)
	f1, err := OpenPidfd(p1.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	f2, err := OpenPidfd(p2.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Add(f1, 1)
	w.Add(f2, 2)
	p1.Process.Kill()
	p2.Process.Kill()
	p1.Wait()
	p2.Wait()
	for !f1.Exited() || !f2.Exited() {
		time.Sleep(time.Millisecond)
	}
	p3 := startSleeper(t)
	f3, err := OpenPidfd(p3.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer f3.Close()

	type rep struct {
		key   uint64
		alive bool
	}
	reports := make(chan rep, 8)
	first := make(chan uint64, 1)
	proceed := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		n := 0
		w.Run(ctx, func(key uint64) {
			n++
			alive := key == 3 && !f3.Exited()
			reports <- rep{key, alive}
			if n == 1 {
				first <- key
				<-proceed
			}
		})
	}()
	var k uint64
	select {
	case k = <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("hang guard: no exit reported")
	}
	other := f2
	if k == 2 {
		other = f1
	}
	// The owner of the other pidfd drops it and a new peer gets its number.
	num := other.fd
	w.Remove(other)
	other.Close()
	if err := unix.Dup3(f3.fd, num, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	reused := &Pidfd{fd: num, pid: p3.Process.Pid}
	defer reused.Close()
	if err := w.Add(reused, 3); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	<-reports // the first one
	select {
	case r := <-reports:
		if r.key == 3 && r.alive {
			t.Fatalf("watcher reported key 3 while its process (pid %d) is alive: the old exit event of fd %d was attributed to the new registration", p3.Process.Pid, num)
		}
		t.Logf("second report: %+v", r)
	case <-time.After(500 * time.Millisecond):
		t.Log("no spurious report")
	}
	cancel()
	<-runDone
}

// Run's context ending together with Close: the context's AfterFunc writes
// 8 bytes to the Watcher's eventfd. If it runs after Run returned and
// closed the descriptors, it writes into whatever file reused the number.
func TestWatcherCancelAndCloseNoStrayWrite(t *testing.T) {
	trials := 1000
	if os.Getenv("FRAMERING_SOAK") != "" {
		trials = 20000
	}
	stray := 0
	for i := 0; i < trials; i++ {
		w, err := NewWatcher()
		if err != nil {
			t.Fatal(err)
		}
		num := w.wakeFd
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx, func(uint64) {}) }()
		for {
			w.mu.Lock()
			r := w.running != nil
			w.mu.Unlock()
			if r {
				break
			}
			time.Sleep(10 * time.Microsecond)
		}
		cancel()
		w.Close()
		<-done
		// Reuse the numbers that were just freed with files of our own.
		var fds []int
		for j := 0; j < 4; j++ {
			fd, err := unix.MemfdCreate("victim", unix.MFD_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			fds = append(fds, fd)
		}
		time.Sleep(50 * time.Microsecond)
		for _, fd := range fds {
			var st unix.Stat_t
			unix.Fstat(fd, &st)
			if fd == num && st.Size != 0 {
				stray++
			}
			unix.Close(fd)
		}
	}
	if stray > 0 {
		t.Fatalf("%d of %d trials: a cancelled Run's wake write landed in an unrelated file that reused the eventfd's number", stray, trials)
	}
}
