package main_test

import (
	"path/filepath"
	"testing"

	"github.com/framering/framering/frame"
)

// TestLimits: -frames and -duration end a run on their own, cleanly.
func TestLimits(t *testing.T) {
	geom := func(uint64) frame.Geometry { return frame.Packed(64, 16, frame.Mono8) }
	for _, c := range []struct {
		name string
		args []string
	}{
		{"frames", []string{"-frames", "25"}},
		{"duration", []string{"-duration", "200ms"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "archive")
			sock := filepath.Join(t.TempDir(), "ring.sock")
			tp := newProducer(t, sock, 8, 4096, geom, 0)
			p := startArchiver(t, append([]string{"-socket", sock, "-dir", dir, "-stats-interval", "0"}, c.args...)...)
			tp.waitAttached(p.pid())
			// A camera runs until the archiver has gone.
			for {
				select {
				case <-p.done:
				default:
					tp.offer(false)
					continue
				}
				break
			}
			sum := p.wait(0)
			a := readArchive(t, dir, geom)
			if a.frames != num(t, sum, "stored") || num(t, sum, "unrecorded") != 0 {
				t.Fatalf("archive holds %d frames, summary %v", a.frames, sum)
			}
			if c.name == "frames" && num(t, sum, "received") != 25 {
				t.Fatalf("received %d frames, want 25", num(t, sum, "received"))
			}
		})
	}
}
