package shm

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Run's context ending together with Close: the context's AfterFunc writes
// 8 bytes to the Watcher's eventfd. If it runs after Run returned and
// closed the descriptors, it writes into whatever file reused the number.
func TestReviewWatcherCancelAndCloseNoStrayWrite(t *testing.T) {
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
