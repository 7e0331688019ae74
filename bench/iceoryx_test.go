package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/bench"
)

// TestIceoryxBaseline runs the iceoryx baseline for real (RouDi, the
// C-binding publisher and subscriber built from bench/iceoryx) next to the
// ring's rows on one small payload, and checks that every row was
// measured, compared with the ring, judged by the iceoryx targets, and
// that RouDi left no shared memory behind. It asserts no timing.
func TestIceoryxBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts RouDi and a few processes")
	}
	cfg := tinyConfig(t)
	cfg.Sections = []string{bench.SectionLatency, bench.SectionThroughput, bench.SectionIceoryx}
	cfg.Payloads, cfg.LatencyWaits = []int{4 * bench.KiB}, []string{bench.WaitFutex, bench.WaitPoll}
	cfg.IceoryxWaits = []string{bench.IoxWaitSet, bench.IoxPoll}
	cfg.ThroughputPayload, cfg.ThroughputConsumers, cfg.ThroughputModes = 4*bench.KiB, []int{1}, []string{"lossless"}
	cfg.ThroughputReads, cfg.SweepPayloads, cfg.Baselines = []string{bench.ReadLease, bench.ReadWords}, nil, nil
	cfg.ThroughputFrames, cfg.ThroughputDuration = 2000, 200*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 || len(rep.Skipped) > 0 {
		t.Fatalf("errors %q, skipped %q", rep.Errors, rep.Skipped)
	}
	want := map[string]bool{"latency waitset lease": false, "latency poll lease": false, "throughput poll lease": false, "throughput poll words": false}
	for _, r := range rep.Iceoryx {
		k := r.Kind + " " + r.Wait + " " + r.Read
		if _, ok := want[k]; !ok || r.Payload != 4*bench.KiB || r.Received == 0 || r.Ratio <= 0 {
			t.Errorf("row %+v: unexpected, empty or without the ring's row", r)
		}
		if r.Kind == "latency" && (r.Latency.Count != int64(r.Received) || r.Latency.P50 <= 0) {
			t.Errorf("latency row %+v: %d samples for %d frames", r, r.Latency.Count, r.Received)
		}
		if r.Kind == "throughput" && r.FPS <= 0 {
			t.Errorf("throughput row %+v: no rate", r)
		}
		want[k] = true
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no %s row", k)
		}
	}
	judged := 0
	for _, tg := range rep.Targets {
		if strings.Contains(tg.Name, "iceoryx") && tg.Met != nil {
			judged++
		}
	}
	if judged != 1 { // the 8 MiB read target needs an 8 MiB row: not judged here
		t.Errorf("%d iceoryx targets judged, want 1 (the wake-up one): %+v", judged, rep.Targets)
	}
	md, err := os.ReadFile(cfg.OutDir + "/results.md")
	if err != nil || !strings.Contains(string(md), "Eclipse iceoryx") {
		t.Errorf("results.md has no iceoryx table (%v)", err)
	}
	left := []string{"/dev/shm/iceoryx_mgmt"}
	if u, err := user.Current(); err == nil {
		left = append(left, "/dev/shm/"+u.Username)
	}
	for _, p := range left {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

const envRouDiChild = "FRBENCH_TEST_ROUDI_DIR"

// A harness killed with SIGKILL while its RouDi runs leaves neither the
// RouDi nor its shared memory behind (PR_SET_PDEATHSIG: SIGINT), and a
// RouDi killed with SIGKILL, whose shared memory stays, does not keep the
// next harness from starting one (the dead one's files are removed).
func TestRouDiDiesWithHarness(t *testing.T) {
	if _, err := exec.LookPath("iox-roudi"); err != nil {
		t.Fatalf("iox-roudi: %v (scripts/setup.sh installs iceoryx)", err)
	}
	if pids := bench.RouDiPidsForTest(); len(pids) > 0 {
		t.Fatalf("a RouDi is already running (pid %v): its shared memory names are fixed, one per machine", pids)
	}
	dir := t.TempDir()
	t.Cleanup(func() {
		// Failed: do not leave this test's RouDi to the tests after it.
		for _, pid := range bench.RouDiPidsForTest() {
			if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmdline), dir) {
				syscall.Kill(pid, syscall.SIGKILL)
				for _, p := range bench.RouDiLeftoversForTest() {
					os.Remove(p)
				}
			}
		}
	})
	gone := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for len(bench.RouDiPidsForTest()) > 0 || len(bench.RouDiLeftoversForTest()) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: RouDi %v, shared memory %v still there", what, bench.RouDiPidsForTest(), bench.RouDiLeftoversForTest())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envRouDiChild+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("harness child: %q, %v; stderr: %s", line, err, stderr.String())
		}
		return cmd
	}
	cmd := start()
	if len(bench.RouDiPidsForTest()) != 1 {
		t.Fatalf("RouDi processes %v, want the child's one", bench.RouDiPidsForTest())
	}
	cmd.Process.Kill()
	cmd.Wait()
	gone("after the harness was killed")

	// A RouDi killed with SIGKILL cannot clean up: fake what it leaves.
	for _, p := range []string{"/dev/shm/iceoryx_mgmt"} {
		if err := os.WriteFile(p, []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd = start()
	cmd.Process.Kill()
	cmd.Wait()
	gone("after the second harness was killed")
}
