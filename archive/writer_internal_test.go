package archive

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

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
	f := w.cur.f
	dup, err := os.OpenFile(f.Name(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A read-only descriptor writes nothing and its fsync still succeeds, so
	// swap in a closed one: Sync fails with os.ErrClosed.
	w.cur.f = dup
	dup.Close()
	err = w.Sync()
	if !errors.Is(err, ErrSync) || errors.Is(err, ErrDiskFull) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("sync on a closed descriptor: %v", err)
	}
	if st := w.Stats(); st.SyncErrors != 1 || st.DurableSeq != 0 {
		t.Fatalf("stats %+v", st)
	}
	w.cur.f = f
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

// fsyncGate is a syncHook that holds every fsync that reaches it (with
// syncMu held and mu released, just before the fsync) until the test
// releases it, and reports each one's target seq.
type fsyncGate struct {
	entered chan uint64   // the target of each fsync held
	release chan struct{} // a send lets one held fsync go on
	open    chan struct{} // closed (openAll): every fsync goes on, now and later
	once    sync.Once
}

func (g *fsyncGate) openAll() { g.once.Do(func() { close(g.open) }) }

func newFsyncGate() *fsyncGate {
	return &fsyncGate{entered: make(chan uint64, 4), release: make(chan struct{}), open: make(chan struct{})}
}

func (g *fsyncGate) hook(target uint64) {
	select {
	case <-g.open:
		return
	default:
	}
	g.entered <- target
	select {
	case <-g.release:
	case <-g.open:
	}
}

// setHooks installs test hooks with both locks held, as the Writer expects.
func setHooks(w *Writer, sync func(uint64), rotateWait func()) {
	w.syncMu.Lock()
	w.mu.Lock()
	w.syncHook, w.rotateWaitHook = sync, rotateWait
	w.unlock(true)
}

// testFrame is a small Mono8 frame whose bytes derive from id.
func testFrame(id uint64, size int) (Meta, []byte) {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(id*7 + uint64(i)/64)
	}
	return Meta{FrameID: id, Timestamp: int64(id), Width: size, Height: 1, Stride: size, Format: frame.Mono8}, b
}

// appendTest appends n frames with frame id == seq.
func appendTest(t *testing.T, w *Writer, n, size int) {
	t.Helper()
	for range n {
		id := w.Stats().NextSeq
		m, b := testFrame(id, size)
		if seq, err := w.Append(m, b); err != nil || seq != id {
			t.Fatalf("append frame %d: seq %d, %v", id, seq, err)
		}
	}
}

// checkArchive verifies dir and checks that it holds frames 0..n-1 of size
// bytes, frame id == seq.
func checkArchive(t *testing.T, dir string, n uint64, size int) *Report {
	t.Helper()
	rep, err := Verify(dir)
	if err != nil || !rep.OK() || rep.TornTail != nil || rep.Records != n || (n > 0 && rep.LastSeq != n-1) {
		t.Fatalf("verify: %v, %+v, want %d records", err, rep, n)
	}
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for seq := range n {
		rec, err := r.ReadSeq(seq, nil)
		_, want := testFrame(seq, size)
		if err != nil || rec.Meta.FrameID != seq || !bytes.Equal(rec.Payload, want) {
			t.Fatalf("seq %d: %+v, %v", seq, rec.Meta, err)
		}
	}
	return rep
}

// TestAppendDuringFsync holds an fsync in flight (in syncHook) and appends:
// the appends complete without waiting for it, and when it completes,
// DurableSeq becomes the target it took before them, not more.
func TestAppendDuringFsync(t *testing.T) {
	const size = 4096
	for _, c := range []struct {
		name string
		p    SyncPolicy
		// start starts the fsync that the gate holds and returns a channel
		// with its caller's error, or nil if the interval goroutine runs it.
		start func(t *testing.T, w *Writer) <-chan error
	}{
		{"interval", SyncPolicy{Interval: time.Millisecond}, func(t *testing.T, w *Writer) <-chan error {
			appendTest(t, w, 3, size) // the goroutine syncs some of them
			return nil
		}},
		{"Sync", SyncPolicy{}, func(t *testing.T, w *Writer) <-chan error {
			appendTest(t, w, 3, size)
			errc := make(chan error, 1)
			go func() { errc <- w.Sync() }()
			return errc
		}},
		{"policy", SyncPolicy{Records: 4}, func(t *testing.T, w *Writer) <-chan error {
			appendTest(t, w, 3, size)
			errc := make(chan error, 1)
			go func() { // the fourth append's policy fsync: its caller waits for it, others do not
				m, b := testFrame(3, size)
				_, err := w.Append(m, b)
				errc <- err
			}()
			return errc
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(dir, Options{Sync: c.p})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			g := newFsyncGate()
			defer g.openAll() // before Close, should the test fail early
			setHooks(w, g.hook, nil)

			errc := c.start(t, w)
			target := <-g.entered // an fsync holding syncMu, its target taken
			n0 := w.Stats().NextSeq
			if target == 0 || target > n0 || (errc != nil && target != n0) {
				t.Fatalf("fsync target %d, next seq %d", target, n0)
			}
			// These appends would deadlock if Append waited for the fsync
			// (and the policy's fourth record is not reached).
			appendTest(t, w, 3, size)
			st := w.Stats()
			if st.NextSeq != n0+3 || st.DurableSeq != 0 || st.Fsyncs != 0 {
				t.Fatalf("stats while the fsync is held: %+v (target %d)", st, target)
			}

			g.release <- struct{}{}
			if errc != nil {
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
			} else {
				// The interval goroutine's next fsync (the rest of the records)
				// takes its target after the first one published its result.
				if next := <-g.entered; next != n0+3 {
					t.Fatalf("second fsync target %d, want %d", next, n0+3)
				}
			}
			if st := w.Stats(); st.DurableSeq != target || st.Fsyncs != 1 || st.SyncErrors != 0 {
				t.Fatalf("after the held fsync: %+v, want durable seq %d", st, target)
			}
			g.openAll()
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			if st := w.Stats(); st.DurableSeq != n0+3 {
				t.Fatalf("after Sync: %+v", st)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			checkArchive(t, dir, n0+3, size)
		})
	}
}

// waitSpare waits (without a deadline of its own) until the maintainer has
// pre-created the next segment.
func waitSpare(w *Writer) {
	for {
		w.mu.Lock()
		ok := w.spare != nil
		w.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRotateDuringFsync rotates while the interval fsync of the open
// segment is held: the rotation does not wait for it (the next segment was
// pre-created), appends go on into the new segment, and the old one is
// sealed, before anything of the new one is fsynced, once the fsync lets go.
func TestRotateDuringFsync(t *testing.T) {
	const size = 6000 // 6096-byte records: 10 in a 64 KiB segment
	dir := t.TempDir()
	w, err := Open(dir, Options{MaxSegmentSize: 64 << 10, Sync: SyncPolicy{Interval: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	waitSpare(w)
	g := newFsyncGate()
	defer g.openAll()
	seals := make(chan uint64, 4)
	w.syncMu.Lock()
	w.mu.Lock()
	w.syncHook, w.sealHook = g.hook, func(seg uint64) { seals <- seg }
	w.unlock(true)
	appendTest(t, w, 1, size)
	if target := <-g.entered; target != 1 {
		t.Fatalf("fsync target %d", target)
	}
	w.mu.Lock()
	seg0 := w.cur.f
	w.mu.Unlock()

	// These appends rotate into segment 1; they would deadlock if the
	// rotation waited for the held fsync.
	for w.Stats().Segments == 1 {
		appendTest(t, w, 1, size)
	}
	appendTest(t, w, 3, size)
	st := w.Stats()
	if st.Segments != 2 || st.Fsyncs != 0 || st.DurableSeq != 0 || st.SlowRotations != 0 {
		t.Fatalf("while the fsync is held: %+v", st)
	}
	if len(seals) != 0 {
		t.Fatal("a seal ran while an fsync held the lock")
	}

	g.openAll()
	if err := w.Sync(); err != nil { // seals segment 0 first, then fsyncs segment 1
		t.Fatal(err)
	}
	if seg := <-seals; seg != 0 {
		t.Fatalf("sealed segment %d first", seg)
	}
	st = w.Stats()
	if st.DurableSeq != st.NextSeq || st.SyncErrors != 0 {
		t.Fatalf("after Sync: %+v", st)
	}
	if err := seg0.Sync(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("sealed segment's file after its seal: %v", err)
	}
	if !indexSealed(dir, 0, FormatVersion) || indexSealed(dir, 1, FormatVersion) {
		t.Fatal("segment 0's index not sealed, or segment 1's sealed while open")
	}
	next := st.NextSeq
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep := checkArchive(t, dir, next, size)
	if len(rep.Segments) != 2 || !rep.Segments[0].Sealed || !rep.Segments[1].Sealed {
		t.Fatalf("segments %+v", rep.Segments)
	}
	w2, err := Open(dir, Options{MaxSegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if rc := w2.Recovery(); rc.CutOffset != -1 || rc.IndexRebuilt || rc.NextSeq != next {
		t.Fatalf("recovery %+v", rc)
	}
	if indexSealed(dir, 1, FormatVersion) {
		t.Fatal("the reopened last segment's index still says sealed")
	}
	w2.Close()
}

// TestSlowRotation: without a pre-created segment (the maintainer failed or
// is behind) a rotation creates the next segment and seals the old one
// under the lock, and waits for an fsync in flight to do so.
func TestSlowRotation(t *testing.T) {
	const size = 6000
	dir := t.TempDir()
	w, err := Open(dir, Options{MaxSegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	waitSpare(w)
	// Take the spare away, as if the maintainer had not made one, and
	// keep it from making another.
	w.syncMu.Lock()
	w.mu.Lock()
	sp := w.spare
	w.spare = nil
	w.closed = true // prepareSpare makes none for a closed writer
	w.mu.Unlock()
	sp.close()
	removeSegment(dir, sp.index)
	w.mu.Lock()
	w.closed = false
	w.unlock(true)
	w.syncMu.Lock() // block prepareSpare (it takes syncMu) for the rest of the test
	waiting := make(chan struct{}, 1)
	w.mu.Lock()
	w.rotateWaitHook = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	w.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		for w.Stats().Segments == 1 {
			id := w.Stats().NextSeq
			m, b := testFrame(id, size)
			if _, err := w.Append(m, b); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	<-waiting // the rotating append waits for syncMu
	if st := w.Stats(); st.Segments != 1 {
		t.Fatalf("rotated without the lock: %+v", st)
	}
	w.syncMu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.SlowRotations != 1 || st.DurableSeq != st.NextSeq-1 {
		t.Fatalf("after a slow rotation: %+v", st)
	}
	if !indexSealed(dir, 0, FormatVersion) {
		t.Fatal("segment 0 not sealed by the slow rotation")
	}
	next := st.NextSeq
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkArchive(t, dir, next, size)
}

// TestCloseDuringFsync closes the writer while the interval goroutine's
// fsync is held: Close waits for it before it closes the files.
func TestCloseDuringFsync(t *testing.T) {
	const size = 4096
	dir := t.TempDir()
	w, err := Open(dir, Options{Sync: SyncPolicy{Interval: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	g := newFsyncGate()
	setHooks(w, g.hook, nil)
	appendTest(t, w, 2, size)
	<-g.entered
	appendTest(t, w, 2, size)
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	g.openAll()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.SyncErrors != 0 || st.DurableSeq != 4 || st.NextSeq != 4 {
		t.Fatalf("after close: %+v", st)
	}
	m, b := testFrame(4, size)
	if _, err := w.Append(m, b); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	checkArchive(t, dir, 4, size)
}

// TestArchBytesTracksDisk rotates through many small segments with a size
// cap and checks that the writer's running size (archBytes, what the cap at
// rotation looks at) equals the archive's bytes on disk after every batch:
// it once missed each segment's and index's header while retention
// subtracted them, drifting 96 bytes low per deleted segment, so the cap
// slipped further the longer a line ran.
func TestArchBytesTracksDisk(t *testing.T) {
	dir := t.TempDir()
	const seg = minSegmentSize
	w, err := Open(dir, Options{MaxSegmentSize: seg, Retention: Retention{MaxBytes: 5 * seg, CheckEvery: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for batch := range 20 {
		appendTest(t, w, 7, 1000)
		w.syncMu.Lock()
		w.mu.Lock()
		if err := w.syncHeld(); err != nil {
			w.unlock(true)
			t.Fatal(err)
		}
		disk := archiveSize(dir, w.manifest.FirstSegment)
		if w.spare != nil {
			disk -= idxHeaderSize // the pre-created segment: an empty file and its index's header
		}
		got, deleted := w.archBytes, w.stats.Deleted.Segments
		w.unlock(true)
		if got != disk {
			t.Fatalf("batch %d: archBytes %d, the archive has %d bytes on disk (%d segments deleted)", batch, got, disk, deleted)
		}
	}
	if st := w.Stats(); st.Deleted.Segments < 10 {
		t.Fatalf("only %d segments deleted: the test did not exercise retention", st.Deleted.Segments)
	}
}
