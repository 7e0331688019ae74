package archive

import (
	"errors"
	"os"
	"testing"

	"github.com/framering/framering/frame"
)

// TestSyncError provokes a failing fsync (the segment's descriptor closed
// under the writer) and checks that it is ErrSync, not ErrDiskFull, and
// counted.
func TestSyncError(t *testing.T) {
	w, err := Open(t.TempDir(), Options{Sync: SyncPolicy{Records: 2}})
	if err != nil {
		t.Fatal(err)
	}
	m := Meta{FrameID: 1, Width: 64, Height: 1, Stride: 64, Format: frame.Mono8}
	if _, err := w.Append(m, make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	f := w.seg
	dup, err := os.OpenFile(f.Name(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A read-only descriptor writes nothing and its fsync still succeeds, so
	// swap in a closed one: Sync fails with os.ErrClosed.
	w.seg = dup
	dup.Close()
	err = w.Sync()
	if !errors.Is(err, ErrSync) || errors.Is(err, ErrDiskFull) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("sync on a closed descriptor: %v", err)
	}
	if st := w.Stats(); st.SyncErrors != 1 || st.DurableSeq != 0 {
		t.Fatalf("stats %+v", st)
	}
	w.seg = f
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.DurableSeq != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
