package archiver

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

// eventRun feeds frames 1..n (timestamps 10 ms apart) of one epoch to a
// recorder on a real archive, sending the triggers of at[seq] just before
// frame seq arrives, and returns the events it recorded.
func eventRun(t *testing.T, cfg EventsConfig, n uint64, at map[uint64][]Trigger) ([]archive.Event, EventStats) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "events")
	w, err := archive.Open(dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := &archiver{cfg: Config{Dir: dir}, log: slog.New(slog.DiscardHandler), w: w, acct: newAccountant(position{}), lost: map[archive.Cause]uint64{}}
	r, err := newRecorder(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.stop = func() {}
	a.ev = r
	g := frame.Packed(16, 4, frame.Mono8)
	b := make([]byte, g.Size())
	const epoch = 0xe1
	for seq := uint64(1); seq <= n; seq++ {
		for _, tr := range at[seq] {
			if tr.Epoch == 0 {
				tr.Epoch = epoch
			}
			r.send(tr)
		}
		b[0] = byte(seq)
		m := ringbuf.Meta{Seq: seq, FrameID: seq - 1, Timestamp: int64(seq) * int64(10*time.Millisecond), Width: 16, Height: 4, Stride: 16, Format: frame.Mono8}
		if err := r.frame(epoch, m, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.finish(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs, err := archive.ReadEvents(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Every event's records hold exactly its ring seqs.
	rd, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for _, ev := range evs {
		for rec := ev.FirstRecord; rec <= ev.LastRecord; rec++ {
			got, err := rd.ReadSeq(rec, nil)
			if err != nil || got.Meta.RingSeq != ev.FirstSeq+(rec-ev.FirstRecord) || got.Payload[0] != byte(got.Meta.RingSeq) {
				t.Fatalf("event %d record %d: %+v %v", ev.ID, rec, got.Meta, err)
			}
		}
	}
	return evs, r.Stats()
}

func res(seq uint64) Trigger {
	return Trigger{Trigger: archive.Trigger{Source: "results", Seq: seq, DefectCount: 1}}
}

func spans(evs []archive.Event) string {
	s := ""
	for _, ev := range evs {
		s += fmt.Sprintf("[%d..%d x%d c=%v a=%d]", ev.FirstSeq, ev.LastSeq, ev.TriggerCount, ev.Complete, ev.After)
	}
	return s
}

// TestRecorderWindows: windows in frames and in capture time, overlapping
// triggers merged into one event, late triggers served from the buffer,
// the hold-off, the longest event, stale triggers, a run that ends in the
// middle of an event.
func TestRecorderWindows(t *testing.T) {
	f := func(n uint64) Window { return Window{Frames: n} }
	ms := func(n int) Window { return Window{Time: time.Duration(n) * time.Millisecond} }
	for _, tc := range []struct {
		name string
		cfg  EventsConfig
		n    uint64
		at   map[uint64][]Trigger
		want string
		chk  func(t *testing.T, s EventStats)
	}{
		{"frames", EventsConfig{Pre: f(2), Post: f(1)}, 40, map[uint64][]Trigger{10: {res(10)}, 30: {res(30)}},
			"[8..11 x1 c=true a=0][28..31 x1 c=true a=0]", nil},
		{"merge", EventsConfig{Pre: f(2), Post: f(1)}, 40, map[uint64][]Trigger{10: {res(10)}, 12: {res(12)}, 14: {res(16)}, 16: {res(16)}},
			"[8..17 x4 c=true a=0]", func(t *testing.T, s EventStats) {
				if s.Merged != 3 || s.Triggers != 4 {
					t.Fatalf("%+v", s)
				}
			}},
		{"late trigger from the buffer", EventsConfig{Pre: f(2), Post: f(1)}, 20, map[uint64][]Trigger{9: {res(5)}},
			"[3..6 x1 c=true a=0]", nil},
		{"after the previous event", EventsConfig{Pre: f(3), Post: f(1)}, 20, map[uint64][]Trigger{5: {res(5)}, 12: {res(8)}},
			"[2..6 x1 c=true a=0][7..9 x1 c=true a=1]", nil},
		{"time windows", EventsConfig{Pre: ms(25), Post: ms(15)}, 30, map[uint64][]Trigger{10: {res(10)}},
			"[8..11 x1 c=true a=0]", nil},
		{"timestamp trigger", EventsConfig{Pre: f(1), Post: f(1)}, 30, map[uint64][]Trigger{5: {{Trigger: archive.Trigger{Source: "external", TimestampNs: int64(95 * time.Millisecond)}, byTime: true}}},
			"[9..11 x1 c=true a=0]", nil},
		{"hold-off", EventsConfig{Pre: f(1), Post: f(1), Holdoff: f(5)}, 40, map[uint64][]Trigger{10: {res(10)}, 15: {res(15)}, 20: {res(20)}},
			"[9..11 x1 c=true a=0][19..21 x1 c=true a=0]", func(t *testing.T, s EventStats) {
				if s.HeldOff != 1 {
					t.Fatalf("%+v", s)
				}
			}},
		{"max event", EventsConfig{Pre: f(1), Post: f(3), MaxEvent: 4}, 40, map[uint64][]Trigger{10: {res(10)}, 12: {res(12)}},
			"[9..12 x2 c=true a=0]", nil},
		{"stale", EventsConfig{Pre: f(1), Post: f(1)}, 20, map[uint64][]Trigger{5: {{Trigger: archive.Trigger{Source: "results", Epoch: 7, Seq: 4}}}},
			"", func(t *testing.T, s EventStats) {
				if s.Stale != 1 {
					t.Fatalf("%+v", s)
				}
			}},
		{"run ends", EventsConfig{Pre: f(1), Post: f(5)}, 12, map[uint64][]Trigger{10: {res(10)}},
			"[9..12 x1 c=false a=0]", nil},
		{"pre-trigger window longer than the buffer", EventsConfig{Pre: f(8), Post: f(0), Buffer: 64 * 3}, 20, map[uint64][]Trigger{15: {res(15)}},
			"[13..15 x1 c=true a=0]", func(t *testing.T, s EventStats) {
				if s.PreMissing != 6 {
					t.Fatalf("%+v", s)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, st := eventRun(t, tc.cfg, tc.n, tc.at)
			if got := spans(evs); got != tc.want {
				t.Fatalf("events %s, want %s (stats %+v)", got, tc.want, st)
			}
			if tc.chk != nil {
				tc.chk(t, st)
			}
		})
	}
}

// FuzzParseExternal: whatever arrives on the trigger socket is refused
// with an error or is a trigger that names a frame consistently.
func FuzzParseExternal(f *testing.F) {
	for _, s := range []string{"", "{}", `{"label":"x"}`, `{"timestamp_ns":5}`, `{"epoch":"00000000000000e1","seq":3}`, `{"seq":3}`, `{"x":1}`, `{} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := parseExternal(b)
		if err != nil {
			return
		}
		if tr.TimestampNs < 0 || tr.Seq != 0 && tr.Epoch == 0 || tr.Seq != 0 && tr.byTime || len(tr.Label) > maxLabel {
			t.Fatalf("accepted %q as %+v", b, tr)
		}
	})
}
