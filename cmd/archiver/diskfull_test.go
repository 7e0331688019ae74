package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/loss"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
)

// TestDiskFull archives onto a 4 MiB tmpfs until it is full: frames are
// counted lost with cause "disk full", the archiver goes on, and once space
// is freed the losses are recorded and archiving resumes.
func TestDiskFull(t *testing.T) {
	fs := testmain.SmallFS(t, "4m")
	ballast := filepath.Join(fs, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 1536<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(fs, "archive")
	sock := filepath.Join(t.TempDir(), "ring.sock")
	geom := func(uint64) frame.Geometry { return frame.Packed(256, 256, frame.Mono8) } // 64 KiB
	tp := newProducer(t, sock, 8, 64<<10, geom, 0)
	p := startArchiver(t, "-socket", sock, "-dir", dir, "-fsync", "every=4", "-segment-size", "1MiB", "-stats-interval", "0")
	tp.waitAttached(p.pid())

	// Fill the disk: offer until the archiver says it is full.
	full := false
	for !full {
		tp.offer(true)
		tp.waitDrained(p.pid())
		full = p.line("archive disk full: frames are counted lost until space returns") != nil
		if tp.offered > 200 {
			t.Fatal("the disk never filled")
		}
	}
	for range 10 {
		tp.offer(true) // lost: the disk is full
	}
	tp.waitDrained(p.pid())
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	for range 12 {
		tp.offer(true)
	}
	tp.waitDrained(p.pid())
	p.waitLine("disk space returned")
	sum := p.stop(syscall.SIGTERM)

	lost := num(t, sum, "lost.disk_full")
	if lost < 10 {
		t.Fatalf("summary: %d frames lost to a full disk, want at least 10", lost)
	}
	a := readArchive(t, dir, geom)
	accountFor(t, a, tp.offered, sum)
	if a.lost[loss.DiskFull] != lost {
		t.Fatalf("archive records %d disk-full losses, summary %d", a.lost[loss.DiskFull], lost)
	}
	// Archiving resumed: the last records are frames after the gap.
	lastRec := a.records[len(a.records)-1]
	if lastRec.Kind != archive.KindFrame || lastRec.Meta.FrameID != tp.nextID-1 {
		t.Fatalf("last record %v frame %d, want frame %d", lastRec.Kind, lastRec.Meta.FrameID, tp.nextID-1)
	}
	// Logged at most once per second: far fewer lines than refusals.
	if lines := strings.Count(p.log(), "archive disk full: frames are counted lost"); lines >= int(lost) {
		t.Fatalf("%d disk-full log lines for %d lost frames", lines, lost)
	}
	t.Logf("offered %d, stored %d, lost to a full disk %d, disk-full refusals %d", tp.offered, a.frames, lost, num(t, sum, "disk_full_refusals"))
}

// TestDiskFullAtExit stops the archiver while its disk is still full: the
// losses it could not record are in its summary and its exit status says
// so, and the archive verifies.
func TestDiskFullAtExit(t *testing.T) {
	fs := testmain.SmallFS(t, "1m")
	dir := filepath.Join(fs, "archive")
	sock := filepath.Join(t.TempDir(), "ring.sock")
	geom := func(uint64) frame.Geometry { return frame.Packed(256, 256, frame.Mono8) }
	tp := newProducer(t, sock, 8, 64<<10, geom, 0)
	// Each frame in a segment of its own.
	p := startArchiver(t, "-socket", sock, "-dir", dir, "-fsync", "every=4", "-segment-size", "64KiB", "-stats-interval", "0")
	tp.waitAttached(p.pid())
	for range 8 {
		tp.offer(true)
	}
	tp.waitDrained(p.pid())
	// Take every free block, then offer two frames: they are lost, and so
	// is the room for their gap record (the next record needs a segment).
	fill, err := os.Create(filepath.Join(fs, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := fill.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	fill.Close()
	// Frames lost to the full disk, each after an upstream drop: gap
	// records that do not merge, more than the page the writer already
	// holds (the next segment, created ahead of its rotation) can take.
	for range 64 {
		tp.lose(loss.Underrun)
		tp.offer(true)
	}
	tp.waitDrained(p.pid())
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sum := p.wait(1)
	if num(t, sum, "unrecorded") == 0 || num(t, sum, "lost.disk_full") == 0 {
		t.Fatalf("summary: %v", sum)
	}
	if !strings.Contains(p.log(), "losses left unrecorded at exit") {
		t.Fatal("no error logged for the unrecorded losses")
	}
	a := readArchive(t, dir, geom)
	if a.frames+num(t, sum, "lost_total") != tp.offered {
		t.Fatalf("%d stored + %d counted lost != %d offered", a.frames, num(t, sum, "lost_total"), tp.offered)
	}
}
