package ringstat

import (
	"testing"
	"time"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

func snap(epoch, published, dropped uint64) ringbuf.Snapshot {
	s := ringbuf.Snapshot{Epoch: epoch, Published: published}
	s.Drops[loss.Underrun] = dropped
	return s
}

// Rates over a window compare with the oldest snapshot inside it; without
// a window, with the previous one; a new epoch starts over.
func TestRates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	var prev Rates
	if r := prev.Report("r", "", snap(1, 0, 0), at(0)); r.WindowNs != 0 || r.Producer.Rate != 0 {
		t.Fatalf("first report has rates: %+v", r)
	}
	prev.Report("r", "", snap(1, 100, 0), at(1000))
	r := prev.Report("r", "", snap(1, 400, 10), at(2000))
	if r.Producer.Rate != 300 || r.Drops.Rate != 10 || r.WindowNs != int64(time.Second) {
		t.Fatalf("since the previous: rate %v drops %v window %v", r.Producer.Rate, r.Drops.Rate, r.WindowNs)
	}

	w := Rates{Window: 2 * time.Second}
	for i, p := range []uint64{0, 100, 300, 600, 1000} {
		r = w.Report("r", "", snap(1, p, 0), at(1000*i))
	}
	// At 4 s the oldest snapshot no older than 2 s is the one at 2 s (300).
	if r.Producer.Rate != 350 || r.WindowNs != int64(2*time.Second) {
		t.Fatalf("window rate %v over %v", r.Producer.Rate, time.Duration(r.WindowNs))
	}
	if len(w.kept) > 4 {
		t.Fatalf("kept %d snapshots for a 2 s window fed every second", len(w.kept))
	}
	// A gap longer than the window: the newest older snapshot is the base.
	r = w.Report("r", "", snap(1, 1500, 0), at(10000))
	if r.Producer.Rate != 500.0/6 {
		t.Fatalf("rate across a gap %v", r.Producer.Rate)
	}
	// Another producer run: no rates, then rates within it.
	if r = w.Report("r", "", snap(2, 5, 0), at(11000)); r.WindowNs != 0 || r.Producer.Rate != 0 {
		t.Fatalf("rates across epochs: %+v", r.Producer)
	}
	if r = w.Report("r", "", snap(2, 105, 0), at(12000)); r.Producer.Rate != 100 {
		t.Fatalf("rate after a restart %v", r.Producer.Rate)
	}
	w.Reset()
	if r = w.Report("r", "", snap(2, 205, 0), at(13000)); r.WindowNs != 0 {
		t.Fatal("rates after Reset")
	}
	// Time that does not move forward (a clock step) starts over, never a
	// negative or infinite rate.
	w.Report("r", "", snap(2, 300, 0), at(14000))
	if r = w.Report("r", "", snap(2, 400, 0), at(14000)); r.WindowNs != 0 || r.Producer.Rate != 0 {
		t.Fatalf("rate over no time: %+v", r.Producer)
	}
}

func TestReportLine(t *testing.T) {
	cur := snap(1, 200, 3)
	cur.Consumers = []ringbuf.ConsumerInfo{{Entry: 0, Name: "arch", Mode: "lossless", State: "active", Lag: 2},
		{Entry: 1, Name: "an", Mode: "lossy", State: "evicted", EvictReason: "quota"}}
	prev := snap(1, 100, 1)
	r := Build("r", "", cur, &prev, time.Second)
	got := r.Line()
	// Consumers by name, whatever their table entries.
	want := "published 200     100.0/s  dropped 3 (underrun 3)  an(lossy) lag 0 evicted (quota)  arch(lossless) lag 2"
	if got != want {
		t.Fatalf("line\n got %q\nwant %q", got, want)
	}
	attrs := map[string]bool{}
	for _, a := range r.LogAttrs() {
		attrs[a.Key] = true
	}
	for _, k := range []string{"fps", "published", "dropped", "drops", "drop_rate", "source", "stalled", "consumers", "evictions"} {
		if !attrs[k] {
			t.Errorf("LogAttrs lacks %q", k)
		}
	}
}
