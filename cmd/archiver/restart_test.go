package main_test

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
)

// TestProducerRestart closes the producer and creates the ring again under
// the same name, twice: once with frame ids that go on (a camera's counter,
// with frames lost while the producer was away), once with ids starting
// over and frames published before the archiver re-attached. The archiver
// re-attaches each time and records what is known to be lost.
func TestProducerRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	sock := filepath.Join(t.TempDir(), "ring.sock")
	tp := newProducer(t, sock, 8, 4096, geomFor, 0)
	p := startArchiver(t, "-socket", sock, "-dir", dir, "-fsync", "every=32", "-stats-interval", "0")
	tp.waitAttached(p.pid())
	for tp.offered < 100 {
		tp.offer(true)
	}
	tp.waitDrained(p.pid())
	offered := tp.offered
	tp.close()

	// Run 2: ids go on after 7 frames lost during the restart.
	const lostInRestart = 7
	tp2 := newProducer(t, sock, 8, 4096, geomFor, 0)
	tp2.nextID = 100 + lostInRestart
	tp2.waitAttached(p.pid())
	for tp2.published < 100 {
		tp2.offer(true)
	}
	tp2.waitDrained(p.pid())
	offered += lostInRestart + tp2.offered
	tp2.close()

	// Run 3: ids start over at 0; 3 frames are published before the
	// archiver can attach (it is still waiting out its retry delay, or
	// sees them go by if it is fast: either way they are accounted for).
	tp3 := newProducer(t, sock, 8, 4096, geomFor, 0)
	for tp3.offered < 3 {
		tp3.offer(false)
	}
	tp3.waitAttached(p.pid())
	for tp3.published < 50 {
		tp3.offer(true)
	}
	tp3.waitDrained(p.pid())
	offered += tp3.offered
	sum := p.stop(syscall.SIGTERM)

	// Ids restart in run 3: check frames by the id space of each run.
	a := readArchive(t, dir, geomFor)
	accountFor(t, a, offered, sum)
	if got := num(t, sum, "producer_restarts"); got != 2 {
		t.Fatalf("summary: %d producer restarts, want 2", got)
	}
	var restart []archive.Gap
	for _, g := range a.gaps {
		if g.Cause == loss.ProducerRestart {
			restart = append(restart, g)
		}
	}
	if len(restart) == 0 || restart[0] != (archive.Gap{FirstID: 100, LastID: 100 + lostInRestart - 1, Count: lostInRestart, Cause: loss.ProducerRestart, Epoch: restart[0].Epoch}) || restart[0].Epoch == 0 {
		t.Fatalf("restart gaps %+v, want ids 100..%d first", restart, 100+lostInRestart-1)
	}
	if len(restart) == 2 {
		if g := restart[1]; g.LastID > 2 || g.Count > 3 {
			t.Fatalf("run 3 gap %+v, want within ids 0..2", g)
		}
	}
	t.Logf("offered %d, stored %d, gaps %+v", offered, a.frames, a.gaps)
}

// TestEvicted stops the archiver (SIGSTOP) until the producer evicts it,
// then lets it go on: it re-attaches as a new consumer and records the
// frames published meanwhile as evicted.
func TestEvicted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	sock := filepath.Join(t.TempDir(), "ring.sock")
	geom := func(uint64) frame.Geometry { return frame.Packed(64, 16, frame.Mono8) }
	tp := newProducer(t, sock, 4, 4096, geom, 50*time.Millisecond)
	p := startArchiver(t, "-socket", sock, "-dir", dir, "-fsync", "never", "-stats-interval", "0")
	tp.waitAttached(p.pid())
	for tp.offered < 50 {
		tp.offer(true)
	}
	tp.waitDrained(p.pid())
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// A camera goes on: no slot while the stopped archiver holds the ring,
	// until the producer evicts it; then frames are published again.
	waitFor(t, "the eviction", func() bool {
		tp.offer(false)
		time.Sleep(200 * time.Microsecond)
		return tp.p.Snapshot().Evictions > 0
	})
	for range 40 {
		tp.offer(false)
	}
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	p.waitLine("evicted by the producer; re-attaching")
	tp.waitAttached(p.pid())
	for tp.published < 50+40+50 {
		tp.offer(true)
	}
	tp.waitDrained(p.pid())
	sum := p.stop(syscall.SIGTERM)
	if got := num(t, sum, "evictions"); got != 1 {
		t.Fatalf("summary: %d evictions", got)
	}
	a := readArchive(t, dir, geom)
	accountFor(t, a, tp.offered, sum)
	if a.lost[loss.Evicted] == 0 {
		t.Fatalf("no eviction loss recorded: %v", a.lost)
	}
	t.Logf("offered %d, stored %d, lost %v, producer drops %v", tp.offered, a.frames, a.lost, tp.drops)
}
