package archiver

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

// TestArchiveFrameAllocs: storing a frame without losses allocates nothing
// on the archiver's side (the archive's uncompressed append allocates
// nothing either), on a real archive.
func TestArchiveFrameAllocs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	w, err := archive.Open(dir, archive.Options{MaxSegmentSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a := &archiver{cfg: Config{Dir: dir}, log: slog.New(slog.DiscardHandler), w: w, acct: newAccountant(position{}), lost: map[archive.Cause]uint64{}}
	g := frame.Packed(64, 32, frame.Mono8)
	gen, err := frame.NewGenerator(g, false)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, g.Size())
	var id uint64
	snap := func() (counts, uint64, bool) { return counts{}, 7, true }
	next := func() {
		id++
		if err := gen.Fill(buf, id); err != nil {
			t.Fatal(err)
		}
		m := ringbuf.Meta{Seq: id, FrameID: id, Width: uint32(g.Width), Height: uint32(g.Height), Stride: uint32(g.Stride), Format: g.Format, Length: uint64(g.Size())}
		if err := a.archiveFrame(7, m, buf, nil, snap); err != nil {
			t.Fatal(err)
		}
	}
	next() // the first frame of an epoch writes the state file
	if allocs := testing.AllocsPerRun(200, next); allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
	if s := a.summary(); s.Stored != id || s.LostTotal != 0 {
		t.Fatalf("summary %+v", s)
	}
}
