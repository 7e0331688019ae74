package archive

import (
	"os"
	"path/filepath"
	"testing"
)

// unseal rewrites segment index's index header without the sealed flag, as
// a crash before the end of its seal leaves it.
func unseal(t *testing.T, dir string, index uint64) {
	t.Helper()
	p := filepath.Join(dir, idxName(index))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	encodeIndexHeader(b, index, FormatVersion, 0)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverUnsealedPrevious: after a power loss during the seal of the
// segment before the last, that segment may have lost its last records
// (never fsynced); then the last segment's records follow the loss and were
// never durable either (no fsync of a segment runs before its predecessor's
// seal): recovery cuts the first, removes the second, and the archive
// verifies without a hole. If the segment before the last lost nothing,
// both stay, and recovery completes the seal.
func TestRecoverUnsealedPrevious(t *testing.T) {
	const size = 6000
	build := func(t *testing.T) (string, uint64) {
		dir := t.TempDir()
		w, err := Open(dir, Options{MaxSegmentSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		for w.Stats().Segments < 2 {
			appendTest(t, w, 1, size)
		}
		appendTest(t, w, 2, size)
		n := w.Stats().NextSeq
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		unseal(t, dir, 0)
		return dir, n
	}
	t.Run("lost its tail", func(t *testing.T) {
		dir, _ := build(t)
		seg0 := filepath.Join(dir, segName(0))
		st, _ := os.Stat(seg0)
		// The last record of segment 0 half written back: a torn tail.
		if err := os.Truncate(seg0, st.Size()-size/2); err != nil {
			t.Fatal(err)
		}
		// Which the index, written only after fsyncs, does not list.
		ents, _, err := scanIndexEntries(seg0)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeIndexFile(filepath.Join(dir, idxName(0)), 0, FormatVersion, 0, ents, false); err != nil {
			t.Fatal(err)
		}
		w, err := Open(dir, Options{MaxSegmentSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		rc := w.Recovery()
		if !rc.DroppedLast || rc.PrevCutBytes == 0 || rc.Segment != 0 || rc.NextSeq != uint64(len(ents)) {
			t.Fatalf("recovery %+v (segment 0 holds %d records)", rc, len(ents))
		}
		appendTest(t, w, 2, size)
		n := w.Stats().NextSeq
		w.Close()
		checkArchive(t, dir, n, size)
	})
	t.Run("intact", func(t *testing.T) {
		dir, n := build(t)
		w, err := Open(dir, Options{MaxSegmentSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if rc := w.Recovery(); rc.DroppedLast || rc.PrevCutBytes != 0 || rc.Segment != 1 || rc.NextSeq != n {
			t.Fatalf("recovery %+v", rc)
		}
		if !indexSealed(dir, 0, FormatVersion) {
			t.Fatal("recovery did not complete the seal")
		}
		w.Close()
		checkArchive(t, dir, n, size)
	})
	t.Run("last header torn", func(t *testing.T) {
		dir, _ := build(t)
		// Power loss: the last segment's header page never reached the disk,
		// a later page of it did.
		seg1 := filepath.Join(dir, segName(1))
		b, _ := os.ReadFile(seg1)
		clear(b[:segHeaderSize])
		os.WriteFile(seg1, b, 0o644)
		w, err := Open(dir, Options{MaxSegmentSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		rc := w.Recovery()
		if !rc.DroppedLast || rc.Segment != 0 {
			t.Fatalf("recovery %+v", rc)
		}
		n := w.Stats().NextSeq
		w.Close()
		checkArchive(t, dir, n, size)
	})
}

// TestRecoverDropsSpare: the empty next segment a writer pre-created is
// removed at the next Open, and readers skip it meanwhile.
func TestRecoverDropsSpare(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendTest(t, w, 3, 100)
	waitSpare(w)
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, segName(1))); err != nil {
		t.Fatalf("no pre-created segment: %v", err)
	}
	checkArchive(t, dir, 3, 100) // with the empty segment 1 present
	// A crash now: the writer stops without closing anything properly.
	close(w.stop)
	<-w.done
	w.mu.Lock()
	w.closed = true
	w.cur.close()
	w.spare.close() // the file stays
	w.mu.Unlock()
	w.cp.close()
	w.lock.Close()
	w2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := w2.Recovery(); rc.Segment != 0 || rc.NextSeq != 3 {
		t.Fatalf("recovery %+v", rc)
	}
	w2.Close()
	checkArchive(t, dir, 3, 100)
}
