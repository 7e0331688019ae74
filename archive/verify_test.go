package archive_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/framering/framering/archive"
)

// patternArchive writes n pattern frames (frame id = record seq, ring seq =
// id + 1, epoch testEpoch) with the given segment size, closed.
func patternArchive(t *testing.T, n int, segSize int64) string {
	t.Helper()
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{MaxSegmentSize: segSize})
	appendFrames(t, w, n)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// truncate cuts the file at path to size bytes.
func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// wantMissing asserts that rep is DAMAGED with exactly one missing range,
// from..to, whose frames are named by ring seq (from+1..to+1).
func wantMissing(t *testing.T, rep *archive.Report, from, to uint64, named bool) {
	t.Helper()
	if rep.OK() || len(rep.Missing) != 1 {
		t.Fatalf("want one missing range %d..%d, report %+v", from, to, rep)
	}
	m := rep.Missing[0]
	if m.From != from || m.To != to {
		t.Fatalf("missing %+v, want records %d..%d", m, from, to)
	}
	if named && (m.Epoch != testEpoch || m.FirstSeq != from+1 || m.LastSeq != to+1) {
		t.Fatalf("missing %+v: want frames of epoch %x ring seq %d..%d", m, uint64(testEpoch), from+1, to+1)
	}
}

// TestVerifyTruncatedLastSegment: cutting the last segment in the middle
// removes complete, fsynced records. The index lists them, so they are
// missing, not a torn tail: DAMAGED, with the range and the frames' ring
// identity. A writer opening the archive afterwards cuts the damaged tail
// but keeps the evidence: the seqs stay unused and the manifest names them.
func TestVerifyTruncatedLastSegment(t *testing.T) {
	dir := patternArchive(t, 20, 1<<20)
	offs := recordOffsets(t, dir)
	seg := segFiles(t, dir, "*.frseg")[0]
	truncate(t, seg, offs[12]+50) // records 12..19 gone, 12 torn in its header

	rep, err := archive.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantMissing(t, rep, 12, 19, true)
	if rep.TornTail != nil || len(rep.Corrupt) != 1 || rep.Missing[0].Listed != 8 {
		t.Fatalf("a cut through listed records is not a torn tail: %+v", rep)
	}

	w := openW(t, dir, archive.Options{MaxSegmentSize: 1 << 20})
	rc := w.Recovery()
	if rc.NextSeq != 20 || len(rc.Lost) != 1 || rc.Lost[0].From != 12 || rc.Lost[0].To != 19 {
		t.Fatalf("recovery %+v", rc)
	}
	appendFrames(t, w, 2) // seqs 20, 21: the hole stays
	w.Close()
	rep, err = archive.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantMissing(t, rep, 12, 19, true) // named from the manifest now: the index was rewritten
	if rep.LastSeq != 21 {
		t.Fatalf("report %+v", rep)
	}
}

// TestVerifyTruncatedOnRecordBoundary: a cut that leaves no partial record
// behind is just as much a loss.
func TestVerifyTruncatedOnRecordBoundary(t *testing.T) {
	dir := patternArchive(t, 10, 1<<20)
	offs := recordOffsets(t, dir)
	truncate(t, segFiles(t, dir, "*.frseg")[0], offs[7])
	rep, err := archive.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantMissing(t, rep, 7, 9, true)
}

// TestVerifyTornTailAlone: bytes after the last record that no index lists
// (an append a crash interrupted) are a torn tail: OK.
func TestVerifyTornTailAlone(t *testing.T) {
	dir := patternArchive(t, 10, 1<<20)
	seg := segFiles(t, dir, "*.frseg")[0]
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("FRRC\x60\x00\x01\x00 half a record header"))
	f.Close()
	rep := mustVerifyOK(t, dir)
	if rep.TornTail == nil || rep.Records != 10 || len(rep.Missing) != 0 {
		t.Fatalf("report %+v", rep)
	}
}

// TestVerifyFirstSegment: damage to the first segment names the range it
// held: cut in the middle, cut to less than its header, deleted with its
// index (then only the manifest's low-water mark bounds the range, and the
// next segment's first record ends it).
func TestVerifyFirstSegment(t *testing.T) {
	build := func(t *testing.T) (string, []string) {
		dir := patternArchive(t, 30, 40<<10) // several records per segment
		segs := segFiles(t, dir, "*.frseg")
		if len(segs) < 3 {
			t.Fatalf("%d segments", len(segs))
		}
		return dir, segs
	}
	firstOf := func(t *testing.T, dir string, i int) uint64 {
		r, err := archive.OpenReader(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		return r.Segments()[i].FirstSeq
	}
	t.Run("cut in the middle", func(t *testing.T) {
		dir, segs := build(t)
		next := firstOf(t, dir, 1)
		offs := recordOffsets(t, dir)
		truncate(t, segs[0], offs[1]+10)
		rep, err := archive.Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		wantMissing(t, rep, 1, next-1, true)
	})
	t.Run("cut below its header", func(t *testing.T) {
		dir, segs := build(t)
		next := firstOf(t, dir, 1)
		truncate(t, segs[0], 10)
		rep, err := archive.Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		wantMissing(t, rep, 0, next-1, true)
	})
	t.Run("deleted", func(t *testing.T) {
		dir, segs := build(t)
		next := firstOf(t, dir, 1)
		os.Remove(segs[0])
		os.Remove(segs[0][:len(segs[0])-len(".frseg")] + ".fridx")
		rep, err := archive.Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		wantMissing(t, rep, 0, next-1, false)
	})
}

// TestVerifyLowWaterMark: segments below the manifest's low-water mark were
// deleted on purpose; ones still on disk (a deletion a crash interrupted)
// are retired, not read, and the next writer deletes them.
func TestVerifyLowWaterMark(t *testing.T) {
	dir := patternArchive(t, 30, 40<<10)
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	segs := r.Segments()
	r.Close()
	m, ok, err := archive.ReadManifest(dir)
	if err != nil || !ok || m.FirstSegment != 0 || m.FirstRecord != 0 {
		t.Fatalf("manifest of a new archive: %+v %v %v", m, ok, err)
	}
	// As a deletion of the first two segments would, until the files go.
	m.FirstSegment, m.FirstRecord = segs[2].Index, segs[2].FirstSeq
	writeManifestFile(t, dir, m)
	rep := mustVerifyOK(t, dir)
	if len(rep.Retired) != 2 || rep.LowWater != segs[2].FirstSeq || rep.FirstSeq != segs[2].FirstSeq {
		t.Fatalf("report %+v", rep)
	}
	w := openW(t, dir, archive.Options{MaxSegmentSize: 40 << 10})
	w.Close()
	if _, err := os.Stat(segs[0].Path); !os.IsNotExist(err) {
		t.Fatalf("the writer left a retired segment: %v", err)
	}
	if rep := mustVerifyOK(t, dir); len(rep.Retired) != 0 {
		t.Fatalf("report %+v", rep)
	}
	// A segment above the mark removed by hand is missing.
	os.Remove(segs[2].Path)
	rep, err = archive.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantMissing(t, rep, segs[2].FirstSeq, segs[3].FirstSeq-1, false)
}

// writeManifestFile replaces the manifest as a writer would.
func writeManifestFile(t *testing.T, dir string, m archive.Manifest) {
	t.Helper()
	b, err := jsonMarshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, archive.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
