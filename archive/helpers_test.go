package archive_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
)

// geometries used by the tests: every format, with and without stride padding.
var testGeoms = []frame.Geometry{
	{Width: 160, Height: 90, Stride: 167, Format: frame.Mono8},
	{Width: 96, Height: 40, Stride: 96 * 2, Format: frame.Mono16},
	{Width: 64, Height: 30, Stride: 64*3 + 5, Format: frame.RGB8},
}

// geomFor picks the geometry of frame id, so records have varied sizes.
func geomFor(id uint64) frame.Geometry { return testGeoms[id%uint64(len(testGeoms))] }

// patternFrame returns the pattern frame id (with defects) and its metadata.
func patternFrame(tb testing.TB, id uint64) (archive.Meta, []byte) {
	tb.Helper()
	g := geomFor(id)
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, g.Size())
	if err := gen.Fill(buf, id); err != nil {
		tb.Fatal(err)
	}
	return archive.Meta{Epoch: testEpoch, RingSeq: id + 1, FrameID: id, Timestamp: int64(id) * 1_000_000, Width: g.Width, Height: g.Height, Stride: g.Stride, Format: g.Format}, buf
}

// testEpoch is the producer epoch of the pattern frames: ring seq = id + 1.
const testEpoch = 0xe4b9b481229e8ae3

// copyDir copies the files of src (no subdirectories) into a new temporary
// directory and returns it.
func copyDir(tb testing.TB, src string) string {
	tb.Helper()
	dst := tb.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dst
}

// checkFrame asserts that rec is pattern frame id, byte for byte.
func checkFrame(tb testing.TB, rec archive.Record, id uint64) {
	tb.Helper()
	want, buf := patternFrame(tb, id)
	if rec.Kind != archive.KindFrame || rec.Meta != want {
		tb.Fatalf("seq %d: record %v %+v, want frame %+v", rec.Seq, rec.Kind, rec.Meta, want)
	}
	if _, err := frame.Verify(rec.Payload); err != nil {
		tb.Fatalf("seq %d: %v", rec.Seq, err)
	}
	if !bytes.Equal(rec.Payload, buf) {
		tb.Fatalf("seq %d: payload differs from the regenerated frame %d", rec.Seq, id)
	}
}

func testLogger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func openW(tb testing.TB, dir string, o archive.Options) *archive.Writer {
	tb.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(tb)
	}
	w, err := archive.Open(dir, o)
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

// appendFrames appends pattern frames with frame id == seq.
func appendFrames(tb testing.TB, w *archive.Writer, n int) {
	tb.Helper()
	for i := 0; i < n; i++ {
		id := w.Stats().NextSeq
		m, b := patternFrame(tb, id)
		seq, err := w.Append(m, b)
		if err != nil {
			tb.Fatal(err)
		}
		if seq != id {
			tb.Fatalf("append returned seq %d, want %d", seq, id)
		}
	}
}

// readAll reads every record of dir; errors are returned beside the records.
func readAll(tb testing.TB, dir string) ([]archive.Record, []error) {
	tb.Helper()
	r, err := archive.OpenReader(dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	var recs []archive.Record
	var errs []error
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return recs, errs
		}
		if err != nil {
			errs = append(errs, err)
			if len(errs) > 10000 {
				tb.Fatal("reader does not advance past errors")
			}
			continue
		}
		rec.Payload = bytes.Clone(rec.Payload)
		recs = append(recs, rec)
	}
}

func mustVerifyOK(tb testing.TB, dir string) *archive.Report {
	tb.Helper()
	rep, err := archive.Verify(dir)
	if err != nil {
		tb.Fatal(err)
	}
	if !rep.OK() {
		var bad []archive.SegmentReport
		for _, s := range rep.Segments {
			if s.Err != nil {
				bad = append(bad, s)
			}
		}
		tb.Fatalf("verify: corrupt %v, missing %v, bad segments %+v", rep.Corrupt, rep.Missing, bad)
	}
	return rep
}

func segFiles(tb testing.TB, dir, pattern string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	st, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return st.Size()
}
