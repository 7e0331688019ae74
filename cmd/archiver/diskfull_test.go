package main_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
)

// smallFS mounts a tmpfs of the given size and unmounts it at cleanup; it
// skips the test when the process may not mount.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_ADMIN) to mount a small tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skip("needs CAP_SYS_ADMIN to mount a small tmpfs: ", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestDiskFull archives onto a 4 MiB tmpfs until it is full: frames are
// counted lost with cause "disk full", the archiver goes on, and once space
// is freed the losses are recorded and archiving resumes.
func TestDiskFull(t *testing.T) {
	fs := smallFS(t, "4m")
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
	if a.lost[archive.CauseDiskFull] != lost {
		t.Fatalf("archive records %d disk-full losses, summary %d", a.lost[archive.CauseDiskFull], lost)
	}
	// Archiving resumed: the last records are frames after the gap.
	lastRec := a.records[len(a.records)-1]
	if lastRec.Kind != archive.KindFrame || lastRec.Meta.FrameID != tp.nextID-1 {
		t.Fatalf("last record %v frame %d, want frame %d", lastRec.Kind, lastRec.Meta.FrameID, tp.nextID-1)
	}
	t.Logf("offered %d, stored %d, lost to a full disk %d, disk-full refusals %d", tp.offered, a.frames, lost, num(t, sum, "disk_full_refusals"))
}
