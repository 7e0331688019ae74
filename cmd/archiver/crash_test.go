package main_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/loss"
)

// lastSegment returns the path of the archive's last segment.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.frseg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	sort.Strings(segs)
	// An empty last segment is the one the writer pre-created for its next
	// rotation: not part of the archive yet.
	if st, err := os.Stat(segs[len(segs)-1]); err == nil && st.Size() == 0 && len(segs) > 1 {
		return segs[len(segs)-2]
	}
	return segs[len(segs)-1]
}

// TestKill9Restart kills the archiver with SIGKILL while it archives, adds
// a torn record to the end of the archive as a crash in the middle of a
// write leaves one, and starts it again: recovery cuts exactly the torn
// tail, every record written before the kill is intact, archiving goes on,
// and the frames published while the archiver was down are recorded as lost.
func TestKill9Restart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	sock := filepath.Join(t.TempDir(), "ring.sock")
	tp := newProducer(t, sock, 8, 4096, geomFor, 0)
	args := []string{"-socket", sock, "-dir", dir, "-reattach=false", "-segment-size", "32KiB", "-fsync", "every=8", "-stats-interval", "0"}

	p1 := startArchiver(t, args...)
	tp.waitAttached(p1.pid())
	for tp.offered < 150 {
		tp.offer(true)
	}
	// Kill it while frames keep coming: the producer offers without
	// waiting, as a camera does, so that nothing here waits on the archiver.
	var killed bool
	for !killed || tp.offered < 260 {
		tp.offer(false)
		if !killed && tp.offered >= 170 {
			if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			p1.wait(0)
			killed = true
		}
	}

	// What the crash left: the archive verifies (a torn tail is allowed).
	before, err := archive.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !before.OK() || before.Frames == 0 {
		t.Fatalf("after kill -9: ok %v, %d frames, corrupt %v, missing %v", before.OK(), before.Frames, before.Corrupt, before.Missing)
	}
	kept := readArchive(t, dir, geomFor).records
	// A torn write: the first 100 bytes of a copy of the last record.
	seg := lastSegment(t, dir)
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	last := kept[len(kept)-1]
	cutAt := int64(len(data))
	if before.TornTail != nil {
		cutAt = before.TornTail.Offset
	}
	src := data
	for _, s := range before.Segments {
		if s.Index == last.Segment && s.Path != seg {
			if src, err = os.ReadFile(s.Path); err != nil {
				t.Fatal(err)
			}
		}
	}
	torn := append([]byte(nil), src[last.Offset:last.Offset+100]...)
	if err := os.WriteFile(seg, append(data, torn...), 0o644); err != nil {
		t.Fatal(err)
	}
	wantCut := int64(len(data)) + int64(len(torn)) - cutAt

	p2 := startArchiver(t, args...)
	opened := p2.waitLine("archive opened")
	if got := num(t, opened, "cut_bytes"); int64(got) != wantCut || int64(num(t, opened, "cut_offset")) != cutAt {
		t.Fatalf("recovery cut %v bytes at %v, want %d at %d", opened["cut_bytes"], opened["cut_offset"], wantCut, cutAt)
	}
	tp.waitAttached(p2.pid())
	for tp.offered < 400 {
		tp.offer(true)
	}
	tp.waitDrained(p2.pid())
	tp.close()
	sum := p2.wait(0)

	a := readArchive(t, dir, geomFor)
	if a.report.TornTail != nil {
		t.Fatalf("torn tail left after recovery: %+v", a.report.TornTail)
	}
	// Every record from before the kill is still there, unchanged.
	for i, want := range kept {
		got := a.records[i]
		if got.Seq != want.Seq || got.Kind != want.Kind || got.Meta != want.Meta || got.Gap != want.Gap || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("record %d changed across the restart: %+v, was %+v", i, got.Meta, want.Meta)
		}
	}
	if len(a.records) <= len(kept) {
		t.Fatalf("nothing appended after the restart")
	}
	// The frames published or dropped while the archiver was down are
	// recorded under their true causes: dropped by the producer while the
	// dead archiver's lossless cursor still pinned the ring (blocked,
	// until the producer reclaimed it), then published while it was away
	// (consumer down). Which share is which depends on how fast the
	// reclaim came.
	if a.lost[loss.ConsumerDown]+a.lost[loss.Blocked] == 0 {
		t.Fatalf("no loss recorded across the restart: %v", a.lost)
	}
	accountFor(t, a, tp.offered, sum)
	t.Logf("kept %d records, cut %d bytes, lost across the restart %d (consumer down) + %d (blocked), offered %d, stored %d", len(kept), wantCut,
		a.lost[loss.ConsumerDown], a.lost[loss.Blocked], tp.offered, a.frames)
}
