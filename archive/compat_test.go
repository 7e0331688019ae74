package archive_test

import (
	"path/filepath"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
)

// TestVersion1Archive reads, verifies and continues an archive written by
// the version 1 writer (testdata/v1: two segments, frames 0-4 and 7-11 of a
// 32x16 Mono8 pattern with stride 40, and a gap for ids 5-6): its records
// read back without a frame identity, and a writer continues it in a new
// segment of the current version, so that old and new records verify
// together.
func TestVersion1Archive(t *testing.T) {
	dir := copyDir(t, "testdata/v1")
	rep := mustVerifyOK(t, dir)
	if rep.Records != 11 || rep.Frames != 10 || rep.GapRecords != 1 || rep.FramesLost != 2 {
		t.Fatalf("report %+v", rep)
	}
	if g := rep.Gaps[0].Gap; g != (archive.Gap{FirstID: 5, LastID: 6, Count: 2, Cause: loss.Underrun}) {
		t.Fatalf("version 1 gap read back as %+v", g)
	}
	recs, errs := readAll(t, dir)
	if len(errs) > 0 || len(recs) != 11 {
		t.Fatalf("%d records, errors %v", len(recs), errs)
	}
	g := frame.Geometry{Width: 32, Height: 16, Stride: 40, Format: frame.Mono8}
	for _, rec := range recs {
		if rec.Meta.Epoch != 0 || rec.Meta.RingSeq != 0 {
			t.Fatalf("version 1 record %d has an identity: %+v", rec.Seq, rec.Meta)
		}
		if rec.Kind != archive.KindFrame {
			continue
		}
		st, err := frame.Verify(rec.Payload)
		if err != nil || st.FrameID != rec.Meta.FrameID || rec.Meta.Geometry() != g {
			t.Fatalf("record %d: %+v %v", rec.Seq, rec.Meta, err)
		}
	}

	w := openW(t, dir, archive.Options{MaxSegmentSize: 1 << 20})
	if got := w.Recovery().Segment; got != 2 {
		t.Fatalf("the writer continued in segment %d, want a new segment 2", got)
	}
	appendFrames(t, w, 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep = mustVerifyOK(t, dir)
	if rep.Records != 14 || len(rep.Segments) != 3 {
		t.Fatalf("report after appending %+v", rep)
	}
	recs, _ = readAll(t, dir)
	for _, rec := range recs[11:] {
		checkFrame(t, rec, rec.Seq)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "00000002.frseg")); len(matches) != 1 {
		t.Fatal("no new segment")
	}
}
