package archiver

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

// BenchmarkArchiveFrame measures the per-frame path (accounting and the
// archive append) for a 2 MiB frame, in $ARCHIVER_BENCH_DIR or a temporary
// directory; and BenchmarkPlainWrite the same bytes written with write(2).
func BenchmarkArchiveFrame(b *testing.B) {
	g := frame.Packed(1920, 1080, frame.Mono8)
	buf := benchFrame(b, g)
	dir := filepath.Join(benchDir(b), "archive")
	w, err := archive.Open(dir, archive.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	a := &archiver{cfg: Config{Dir: dir}, log: slog.New(slog.DiscardHandler), w: w, acct: newAccountant(position{}), lost: map[archive.Cause]uint64{}}
	snap := func() (counts, uint64, bool) { return counts{}, 7, true }
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := ringbuf.Meta{Seq: uint64(i + 1), FrameID: uint64(i), Width: uint32(g.Width), Height: uint32(g.Height), Stride: uint32(g.Stride), Format: g.Format, Length: uint64(len(buf))}
		if err := a.archiveFrame(7, m, buf, nil, snap); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlainWrite(b *testing.B) {
	g := frame.Packed(1920, 1080, frame.Mono8)
	buf := benchFrame(b, g)
	f, err := os.Create(filepath.Join(benchDir(b), "plain.raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDir(b *testing.B) string {
	if d := os.Getenv("ARCHIVER_BENCH_DIR"); d != "" {
		d, err := os.MkdirTemp(d, "bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

func benchFrame(b *testing.B, g frame.Geometry) []byte {
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, g.Size())
	if err := gen.Fill(buf, 1); err != nil {
		b.Fatal(err)
	}
	return buf
}
