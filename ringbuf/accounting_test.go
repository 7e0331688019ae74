package ringbuf_test

// Accounting in layout v2: the drop table by cause, the drops before each
// frame, clean detaches against reclaims, and a clean close that leaves no
// file behind.

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// Drops are in the drop table, by cause, before the frame that follows them
// is published, and that frame carries them in DropsBefore (more than four
// causes fold into loss.Several); drops after the last frame are in the
// table only.
func TestDropsBeforeEachFrame(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 4})
	r := attach(t, p, ringbuf.Options{Consumer: "c", Mode: ringbuf.Lossless})
	ctx := testCtx(t)
	p.RecordDrops(loss.Underrun, 2)
	p.RecordDrops(loss.Blocked, 1)
	p.RecordDrops(loss.Underrun, 1)
	// A consumer that can see frame 1 sees its drops in the table already.
	publish(t, p, 1)
	l, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := r.Snapshot()
	if snap.Drops[loss.Underrun] != 3 || snap.Drops[loss.Blocked] != 1 || snap.Drops.Total() != 4 {
		t.Fatalf("drop table when frame 1 is visible: %v", snap.Drops.Map())
	}
	want := [4]ringbuf.Drop{{Cause: loss.Underrun, Count: 3}, {Cause: loss.Blocked, Count: 1}}
	if got := l.Meta().DropsBefore; got != want {
		t.Fatalf("frame 1 drops before: %v, want %v", got, want)
	}
	if l.Meta().PublishNs == 0 {
		t.Fatal("no publish time")
	}
	l.Release()
	publish(t, p, 2) // nothing lost before it
	l, err = r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Meta().DropsBefore; got != ([4]ringbuf.Drop{}) {
		t.Fatalf("frame 2 drops before: %v", got)
	}
	l.Release()
	for i, c := range []loss.Cause{loss.Underrun, loss.Blocked, loss.Incomplete, loss.Timeout, loss.CameraLost, loss.SizeMismatch} {
		p.RecordDrops(c, uint64(i+1))
	}
	publish(t, p, 3)
	l, err = r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = [4]ringbuf.Drop{{Cause: loss.Underrun, Count: 1}, {Cause: loss.Blocked, Count: 2}, {Cause: loss.Incomplete, Count: 3},
		{Cause: loss.Several, Count: 4 + 5 + 6}}
	if got := l.Meta().DropsBefore; got != want {
		t.Fatalf("frame 3 drops before: %v, want %v", got, want)
	}
	l.Release()
	p.RecordDrops(loss.Discarded, 7) // after the last frame
	if d := p.Drops(); d[loss.Discarded] != 7 || d.Total() != 4+21+7 {
		t.Fatalf("final drop table: %v", d.Map())
	}
}

// A consumer that closes (its leases released) says goodbye: the producer
// counts a detach, not a reclaim. One killed counts both.
func TestCleanDetachIsNotAReclaim(t *testing.T) {
	p := newRing(t, ringbuf.Config{SlotSize: testGeometry.Size()})
	r := attach(t, p, ringbuf.Options{Consumer: "polite"})
	r.Close()
	waitFor(t, "the detach", func() bool { return p.Snapshot().Detaches == 1 })
	if s := p.Snapshot(); s.Reclaims != 0 {
		t.Fatalf("a clean detach counted as a reclaim: %+v", s)
	}
	c := start(t, "consumer", "FR_PATH="+p.Path(), "FR_NAME=doomed")
	c.Next(t) // attached
	c.Cmd.Process.Signal(syscall.SIGKILL)
	c.Cmd.Wait()
	waitFor(t, "the reclaim", func() bool { s := p.Snapshot(); return s.Detaches == 2 && s.Reclaims == 1 })
}

// Processes that detach cleanly and exit at once are clean detaches however
// the producer learns of their end first: the socket's bye or the process
// exit (pidfd), which can be noticed before the bye still queued is read.
func TestCleanExitIsNotAReclaim(t *testing.T) {
	p := newRing(t, ringbuf.Config{SlotSize: testGeometry.Size()})
	const n = 12
	for i := 0; i < n; i++ {
		c := start(t, "polite", "FR_PATH="+p.Path())
		if err := c.Cmd.Wait(); err != nil {
			t.Fatalf("polite consumer %d: %v", i, err)
		}
	}
	waitFor(t, "every detach", func() bool { return p.Snapshot().Detaches == n })
	if s := p.Snapshot(); s.Reclaims != 0 {
		t.Fatalf("%d of %d clean exits counted as reclaims", s.Reclaims, n)
	}
}

// A producer that closes cleanly leaves neither its socket nor its lock
// file; a new producer of the same name starts, and attaching to the
// closed one says there is no such ring.
func TestCleanCloseLeavesNothing(t *testing.T) {
	path := sockPath(t)
	p, err := ringbuf.Create(ringbuf.Config{SocketPath: path, SlotSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatalf("no lock file while running: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + ".lock"} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", f, err)
		}
	}
	if _, err := ringbuf.Attach(testCtx(t), ringbuf.Options{SocketPath: path}); !errors.Is(err, ringbuf.ErrNoSuchRing) {
		t.Fatalf("attach after a clean close: %v", err)
	}
	p2, err := ringbuf.Create(ringbuf.Config{SocketPath: path, SlotSize: 4096})
	if err != nil {
		t.Fatalf("a new producer after a clean close: %v", err)
	}
	p2.Close()
}

// A hello's start above published+1 is lowered to it: the consumer starts
// with the next frame, not at a sequence number that may never come.
func TestStartAboveNextIsLowered(t *testing.T) {
	p := newRing(t, ringbuf.Config{})
	publish(t, p, 1)
	r := attach(t, p, ringbuf.Options{Consumer: "future", From: 1000})
	if c := r.Stats().Cursor; c != 2 {
		t.Fatalf("cursor %d for start 1000 with 1 published, want 2", c)
	}
}
