package schedlat_test

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/bench/internal/schedlat"
)

// TestTraceOwnThread traces this process: a thread that sleeps and is
// woken by its timer must show up with plausible numbers.
func TestTraceOwnThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading eBPF programs needs root (CAP_BPF, CAP_PERFMON)")
	}
	tr, err := schedlat.New(1024)
	if errors.Is(err, schedlat.ErrNoBTF) {
		t.Skipf("no kernel BTF: %v", err)
	}
	if err != nil {
		t.Skipf("cannot load eBPF programs here: %v", err)
	}
	defer tr.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Readlink("/proc/thread-self")
	if err != nil {
		t.Fatal(err)
	}
	tid, err := strconv.Atoi(self[strings.LastIndexByte(self, '/')+1:])
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.SetTarget(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		time.Sleep(time.Millisecond)
	}
	if err := tr.SetTarget(0); err != nil {
		t.Fatal(err)
	}
	evs, err := tr.Events()
	if err != nil {
		t.Fatal(err)
	}
	mine := 0
	for _, e := range evs {
		if int(e.Tid) == tid {
			mine++
			if e.RunQueue < 0 || e.RunQueue > time.Second || e.SwitchNs <= 0 {
				t.Errorf("implausible event %+v", e)
			}
		}
	}
	if mine == 0 {
		t.Fatalf("no wake-up of thread %d among %d events", tid, len(evs))
	}
}
