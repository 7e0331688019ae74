package producer

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/framering/framering/frame"
)

// With ExitWatch, the eBPF observer reports a consumer (another process)
// killed with SIGKILL while it holds a lease, and the ring, by its own
// pidfd or socket supervision, reclaims the hold. Skipped where the kernel
// side cannot load (not root).
func TestKernelExitWatch(t *testing.T) {
	cfg := Config{
		Name: "exitwatch-" + time.Now().Format("150405.000000"), Source: kinds()[0], Geometry: frame.Packed(64, 64, frame.Mono8),
		Slots: 8, FrameRate: 500, StatsInterval: -1, ExitWatch: true,
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := p.Run(ctx)
		done <- err
	}()
	until(t, "the exit watch to start", func() bool { return p.Stats().ExitWatch != "" })
	if mode := p.Stats().ExitWatch; mode == "unavailable" {
		t.Skip("kernel exit watch unavailable here (needs CAP_BPF and CAP_PERFMON)")
	}

	// A consumer process (the test binary in its "consumer" role) that
	// holds one lease.
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "FRAMERING_PRODUCER_TEST_ROLE=consumer", "FR_RING="+cfg.Name)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		child.Process.Kill()
		child.Wait()
	}()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatal("the consumer child said nothing")
	}
	var ready struct{ Pid int }
	if err := json.Unmarshal(sc.Bytes(), &ready); err != nil || ready.Pid != child.Process.Pid {
		t.Fatalf("consumer child: %q %v", sc.Text(), err)
	}
	until(t, "the observer to watch the consumer", func() bool {
		o := p.observer.Load()
		return o != nil && o.watching(ready.Pid)
	})
	if s, err := p.Snapshot(); err != nil || len(s.Consumers) != 1 || s.Consumers[0].Held != 1 {
		t.Fatalf("table %+v %v", s.Consumers, err)
	}
	child.Process.Kill()
	child.Wait()
	until(t, "the kernel's report", func() bool { return p.Stats().KernelExits == 1 })
	until(t, "the ring's reclaim", func() bool {
		s, err := p.Snapshot()
		return err == nil && len(s.Consumers) == 0 && s.Reclaims == 1 && s.ReclaimedHolds == 1
	})
	if o := p.observer.Load(); o.watching(ready.Pid) {
		t.Fatal("an exited pid is still watched (pids are reused)")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Frames != st.Accounted() {
		t.Fatalf("accounting %+v", st)
	}
	t.Logf("exit watch %s: %d exit(s) reported", st.ExitWatch, st.KernelExits)
}

func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
