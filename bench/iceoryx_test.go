package bench_test

import (
	"context"
	"os"
	"os/user"
	"strings"
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
