package main_test

import (
	"path/filepath"
	"testing"

	"github.com/framering/framering/loss"
)

// accountFor checks that the archive accounts for every frame the producers
// offered: stored + recorded losses == offered, and the summary agrees.
func accountFor(t *testing.T, a *archived, offered uint64, sum map[string]any) {
	t.Helper()
	if got := a.frames + a.lostTotal(); got != offered {
		t.Fatalf("archive holds %d frames + %d recorded losses = %d, producer offered %d (losses %v)", a.frames, a.lostTotal(), got, offered, a.lost)
	}
	if sum != nil {
		if n := num(t, sum, "unrecorded"); n != 0 {
			t.Fatalf("summary: %d losses unrecorded", n)
		}
		if got := num(t, sum, "lost_total"); got > a.lostTotal() {
			t.Fatalf("summary: lost_total %d, archive records %d", got, a.lostTotal())
		}
		// A clean exit fsyncs everything and leaves no torn tail.
		if d, n := num(t, sum, "durable_seq"), num(t, sum, "next_seq"); d != n || a.report.TornTail != nil {
			t.Fatalf("after a clean exit: durable seq %d, next seq %d, torn tail %+v", d, n, a.report.TornTail)
		}
	}
}

// TestLossless runs the archiver against a producer that drops frames for
// every upstream cause: every frame is stored byte for byte, every loss is
// recorded with the ring's cause.
func TestLossless(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"zero-copy", nil},
		{"copy+compress", []string{"-copy", "-compress", "-fsync", "always"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "archive")
			sock := filepath.Join(t.TempDir(), "ring.sock")
			tp := newProducer(t, sock, 8, 4096, geomFor, 0)
			args := append([]string{"-socket", sock, "-dir", dir, "-reattach=false", "-segment-size", "64KiB", "-fsync", "every=16", "-stats-interval", "20ms"}, c.args...)
			p := startArchiver(t, args...)
			tp.waitAttached(p.pid())
			const n = 900
			for tp.offered < n {
				switch id := tp.nextID; {
				case id%97 == 50:
					tp.lose(loss.Underrun)
				case id%101 == 60:
					tp.lose(loss.SourceError)
				case id >= 300 && id < 600:
					tp.offer(false) // a camera: no slot, frame dropped
				default:
					tp.offer(true)
				}
			}
			tp.offer(true) // a last frame brackets every drop
			tp.waitDrained(p.pid())
			tp.close()
			sum := p.wait(0)
			if sum == nil {
				t.Fatal("no summary")
			}
			a := readArchive(t, dir, geomFor)
			accountFor(t, a, tp.offered, sum)
			if a.frames != tp.published || num(t, sum, "stored") != tp.published {
				t.Fatalf("stored %d (summary %d), published %d", a.frames, num(t, sum, "stored"), tp.published)
			}
			want := map[loss.Cause]uint64{
				loss.Blocked:     tp.drops[loss.Blocked],
				loss.Underrun:    tp.drops[loss.Underrun],
				loss.SourceError: tp.drops[loss.SourceError],
			}
			for cause, n := range want {
				if a.lost[cause] != n {
					t.Errorf("cause %#x: archive records %d, producer dropped %d (all: %v)", cause, a.lost[cause], n, a.lost)
				}
			}
			if len(a.lost) > len(want) {
				t.Errorf("unexpected causes: %v", a.lost)
			}
			if len(a.report.Segments) < 2 {
				t.Errorf("expected rotation: %d segments", len(a.report.Segments))
			}
			if p.line("stats") == nil {
				t.Errorf("no stats line")
			}
			t.Logf("offered %d, stored %d, drops %v, segments %d", tp.offered, a.frames, tp.drops, len(a.report.Segments))
		})
	}
}
