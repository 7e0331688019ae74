package archive_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
)

func TestRoundTrip(t *testing.T) {
	for _, c := range []archive.Codec{archive.CodecNone, archive.CodecS2, archive.CodecZstd} {
		t.Run(c.String(), func(t *testing.T) {
			dir := t.TempDir()
			w := openW(t, dir, archive.Options{Codec: c, Sync: archive.SyncPolicy{Records: 4}})
			if rc := w.Recovery(); !rc.Created || rc.CutOffset != -1 {
				t.Fatalf("recovery of a new archive: %+v", rc)
			}
			appendFrames(t, w, 30)
			st := w.Stats()
			if st.Records != 30 || st.Frames != 30 || st.NextSeq != 30 || st.Fsyncs < 7 || st.DurableSeq != 28 || st.Segments != 1 {
				t.Fatalf("stats %+v", st)
			}
			if c != archive.CodecNone && st.Bytes >= st.RawBytes {
				t.Fatalf("codec %v did not compress: %d bytes for %d raw", c, st.Bytes, st.RawBytes)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("second close: %v", err)
			}
			recs, errs := readAll(t, dir)
			if len(errs) != 0 || len(recs) != 30 {
				t.Fatalf("%d records, errors %v", len(recs), errs)
			}
			for i, rec := range recs {
				if rec.Seq != uint64(i) {
					t.Fatalf("record %d has seq %d", i, rec.Seq)
				}
				if rec.Codec != c {
					t.Fatalf("seq %d stored with %v, want %v", rec.Seq, rec.Codec, c)
				}
				checkFrame(t, rec, uint64(i))
			}
			rep := mustVerifyOK(t, dir)
			if rep.Records != 30 || rep.Frames != 30 || rep.FirstSeq != 0 || rep.LastSeq != 29 || rep.TornTail != nil {
				t.Fatalf("report %+v", rep)
			}
			if rep.Segments[0].IndexErr != nil {
				t.Fatalf("index: %v", rep.Segments[0].IndexErr)
			}

			// Reopen: nothing to recover, appending continues.
			w = openW(t, dir, archive.Options{Codec: c})
			rc := w.Recovery()
			if rc.CutOffset != -1 || rc.IndexRebuilt || rc.Records != 30 || rc.NextSeq != 30 || rc.Created {
				t.Fatalf("clean reopen recovered %+v", rc)
			}
			appendFrames(t, w, 3)
			w.Close()
			mustVerifyOK(t, dir)
		})
	}
}

func TestIncompressibleStoredRaw(t *testing.T) {
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{Codec: archive.CodecZstd})
	b := make([]byte, 64*64)
	seed := uint64(1)
	for i := range b { // xorshift noise: not compressible
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		b[i] = byte(seed)
	}
	m := archive.Meta{FrameID: 9, Width: 64, Height: 64, Stride: 64, Format: frame.Mono8}
	if _, err := w.Append(m, b); err != nil {
		t.Fatal(err)
	}
	w.Close()
	recs, errs := readAll(t, dir)
	if len(errs) != 0 || len(recs) != 1 || recs[0].Codec != archive.CodecNone || !bytes.Equal(recs[0].Payload, b) {
		t.Fatalf("errs %v, recs %d", errs, len(recs))
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{MaxSegmentSize: 64 << 10})
	appendFrames(t, w, 60) // ~15 KiB each: about 4 per segment
	st := w.Stats()
	w.Close()
	segs := segFiles(t, dir, "*.frseg")
	if len(segs) < 10 || uint64(len(segs)) != st.Segments {
		t.Fatalf("%d segment files, stats say %d", len(segs), st.Segments)
	}
	if len(segFiles(t, dir, "*.fridx")) != len(segs) {
		t.Fatal("index files do not match segments")
	}
	for _, s := range segs {
		if sz := fileSize(t, s); sz > 64<<10 {
			t.Fatalf("%s is %d bytes, over the rotation size", s, sz)
		}
	}
	rep := mustVerifyOK(t, dir)
	if rep.Records != 60 || len(rep.Segments) != len(segs) {
		t.Fatalf("report %+v", rep)
	}
	for _, s := range rep.Segments {
		if s.IndexErr != nil {
			t.Fatalf("segment %d index: %v", s.Index, s.IndexErr)
		}
	}
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if infos := r.Segments(); infos[1].FirstSeq == 0 || infos[1].Err != nil {
		t.Fatalf("segment info %+v", infos[1])
	}
	// Seek to every seq, in a scrambled order, through the indexes.
	var dst []byte
	for i := 0; i < 60; i++ {
		seq := uint64(i*37) % 60
		rec, err := r.ReadSeq(seq, dst)
		if err != nil {
			t.Fatalf("read seq %d: %v", seq, err)
		}
		checkFrame(t, rec, seq)
		dst = rec.Payload
	}
	if _, err := r.ReadSeq(60, nil); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("read past end: %v", err)
	}
	if err := r.Seek(1 << 40); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("seek past end: %v", err)
	}
}

func TestOversizedRecordGetsOwnSegment(t *testing.T) {
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{MaxSegmentSize: 8192})
	appendFrames(t, w, 4) // each frame is larger than a segment
	w.Close()
	if n := len(segFiles(t, dir, "*.frseg")); n != 4 {
		t.Fatalf("%d segments for 4 oversized records", n)
	}
	mustVerifyOK(t, dir)
}

func TestGapRecords(t *testing.T) {
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{})
	appendFrames(t, w, 2)
	gaps := []archive.Gap{
		{FirstID: 2, LastID: 6, Count: 5, Cause: loss.Evicted},
		{FirstID: 7, LastID: 7, Count: 1, Cause: loss.DiskFull},
		{FirstID: 8, LastID: 20, Count: 3, Cause: archive.Cause(99)},
	}
	for i, g := range gaps {
		seq, err := w.AppendGap(g)
		if err != nil || seq != uint64(2+i) {
			t.Fatalf("gap %d: seq %d, %v", i, seq, err)
		}
	}
	for _, bad := range []archive.Gap{{FirstID: 5, LastID: 4, Count: 1}, {FirstID: 1, LastID: 2, Count: 0}, {FirstID: 1, LastID: 2, Count: 3}} {
		if _, err := w.AppendGap(bad); !errors.Is(err, archive.ErrInvalid) {
			t.Fatalf("gap %+v: %v", bad, err)
		}
	}
	appendFrames(t, w, 1)
	st := w.Stats()
	if st.GapRecords != 3 || st.FramesLost != 9 || st.Records != 6 {
		t.Fatalf("stats %+v", st)
	}
	w.Close()
	rep := mustVerifyOK(t, dir)
	if rep.GapRecords != 3 || rep.FramesLost != 9 || rep.Frames != 3 || len(rep.Gaps) != 3 {
		t.Fatalf("report %+v", rep)
	}
	for i, gi := range rep.Gaps {
		if gi.Gap != gaps[i] || gi.Seq != uint64(2+i) || gi.Timestamp == 0 {
			t.Fatalf("gap %d: %+v", i, gi)
		}
	}
	if s := archive.Cause(99).String(); s != "cause_99" {
		t.Fatal(s)
	}
	r, _ := archive.OpenReader(dir)
	defer r.Close()
	rec, err := r.ReadSeq(3, nil)
	if err != nil || rec.Kind != archive.KindGap || rec.Gap != gaps[1] || rec.Payload != nil || rec.Meta.FrameID != 7 {
		t.Fatalf("gap record %+v, %v", rec, err)
	}
}

func TestAppendRejects(t *testing.T) {
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{})
	good, b := patternFrame(t, 0)
	cases := []struct {
		name string
		m    func(archive.Meta) archive.Meta
		n    int
		want error
	}{
		{"short payload", func(m archive.Meta) archive.Meta { return m }, len(b) - 1, archive.ErrInvalid},
		{"zero width", func(m archive.Meta) archive.Meta { m.Width = 0; return m }, len(b), archive.ErrInvalid},
		{"negative stride", func(m archive.Meta) archive.Meta { m.Stride = -1; return m }, len(b), archive.ErrInvalid},
		{"stride below row", func(m archive.Meta) archive.Meta { m.Width = m.Stride + 1; return m }, len(b), archive.ErrInvalid},
		{"unknown format wrong size", func(m archive.Meta) archive.Meta { m.Format = 7; m.Height++; return m }, len(b), archive.ErrInvalid},
	}
	for _, c := range cases {
		if _, err := w.Append(c.m(good), b[:c.n]); !errors.Is(err, c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := w.Append(good, nil); !errors.Is(err, archive.ErrInvalid) {
		t.Errorf("geometry for a missing payload: %v", err)
	}
	// An unknown pixel format is stored if its geometry describes the payload.
	odd := good
	odd.Format = 0x0abc0001
	if _, err := w.Append(odd, b); err != nil {
		t.Fatalf("unknown format: %v", err)
	}
	if st := w.Stats(); st.Records != 1 {
		t.Fatalf("rejected appends were written: %+v", st)
	}
	w.Close()
	if _, err := w.Append(good, b); !errors.Is(err, archive.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := w.AppendGap(archive.Gap{FirstID: 1, LastID: 1, Count: 1}); !errors.Is(err, archive.ErrClosed) {
		t.Fatalf("gap after close: %v", err)
	}
	if err := w.Sync(); !errors.Is(err, archive.ErrClosed) {
		t.Fatalf("sync after close: %v", err)
	}
	recs, errs := readAll(t, dir)
	if len(errs) != 0 || len(recs) != 1 || recs[0].Meta.Format != odd.Format {
		t.Fatalf("%v %v", recs, errs)
	}
}

func TestOpenRejectsOptions(t *testing.T) {
	for _, o := range []archive.Options{
		{MaxSegmentSize: 100},
		{Sync: archive.SyncPolicy{Records: -1}},
		{Codec: archive.Codec(9)},
	} {
		if _, err := archive.Open(t.TempDir(), o); !errors.Is(err, archive.ErrInvalid) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestSyncPolicies(t *testing.T) {
	for _, c := range []struct {
		p    archive.SyncPolicy
		min  uint64
		max  uint64
		name string
	}{
		{archive.SyncPolicy{}, 0, 0, "never"},
		{archive.SyncPolicy{Records: 1}, 12, 12, "every record"},
		{archive.SyncPolicy{Records: 5}, 2, 2, "every 5"},
		{archive.SyncPolicy{Bytes: 40 << 10}, 2, 6, "every 40 KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := openW(t, t.TempDir(), archive.Options{Sync: c.p})
			appendFrames(t, w, 12)
			st := w.Stats()
			if st.Fsyncs < c.min || st.Fsyncs > c.max {
				t.Fatalf("%d fsyncs, want %d..%d", st.Fsyncs, c.min, c.max)
			}
			if c.p.Records == 1 && st.DurableSeq != 12 {
				t.Fatalf("durable seq %d", st.DurableSeq)
			}
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			if st := w.Stats(); st.DurableSeq != 12 {
				t.Fatalf("after Sync durable seq %d", st.DurableSeq)
			}
			w.Close()
		})
	}
}

func TestSyncInterval(t *testing.T) {
	w := openW(t, t.TempDir(), archive.Options{Sync: archive.SyncPolicy{Interval: time.Millisecond}})
	appendFrames(t, w, 3)
	// Not a timed assertion: wait (without a deadline of our own) until the
	// background goroutine has synced.
	for w.Stats().DurableSeq != 3 {
		time.Sleep(time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAppendAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	w := openW(t, t.TempDir(), archive.Options{MaxSegmentSize: 1 << 20, Sync: archive.SyncPolicy{Records: 64}})
	defer w.Close()
	m, b := patternFrame(t, 0)
	appendFrames(t, w, 1)
	// Index flushes, fsyncs and rotations are all inside the measured runs.
	if n := testing.AllocsPerRun(500, func() {
		if _, err := w.Append(m, b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("uncompressed Append allocates %v times per frame", n)
	}
	if w.Stats().Segments < 3 {
		t.Fatal("allocation test did not rotate")
	}
}

func TestIndexRebuild(t *testing.T) {
	damage := map[string]func(string){
		"missing": func(p string) { os.Remove(p) },
		"short":   func(p string) { os.Truncate(p, fileSize(t, p)-20) },
		"inconsistent": func(p string) {
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 0x40 // the last entry's offset points elsewhere
			os.WriteFile(p, b, 0o644)
		},
		"wrong seq": func(p string) {
			b, _ := os.ReadFile(p)
			b[len(b)-16] ^= 0x80 // the last entry's seq no longer matches its record
			os.WriteFile(p, b, 0o644)
		},
		"garbage": func(p string) { os.WriteFile(p, []byte("not an index at all, but long enough"), 0o644) },
	}
	opts := archive.Options{MaxSegmentSize: 64 << 10}
	for name, hurt := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			w := openW(t, dir, opts)
			appendFrames(t, w, 20)
			w.Close()
			idxs := segFiles(t, dir, "*.fridx")
			hurt(idxs[0])
			hurt(idxs[len(idxs)-1])

			rep, err := archive.Verify(dir)
			if err != nil || !rep.OK() {
				t.Fatalf("an index problem is not data loss: %v %+v", err, rep)
			}
			if rep.Segments[0].IndexErr == nil || rep.Segments[len(rep.Segments)-1].IndexErr == nil {
				t.Fatal("verify did not report the damaged indexes")
			}
			// The reader checks entries against records and falls back to a scan.
			r, err := archive.OpenReader(dir)
			if err != nil {
				t.Fatal(err)
			}
			for i := uint64(0); i < 20; i++ {
				seq := 19 - i
				rec, err := r.ReadSeq(seq, nil)
				if err != nil {
					t.Fatalf("seq %d: %v", seq, err)
				}
				checkFrame(t, rec, seq)
			}
			r.Close()
			// The writer rebuilds the last segment's index at Open.
			w = openW(t, dir, opts)
			if !w.Recovery().IndexRebuilt {
				t.Fatal("Open did not rebuild the damaged index")
			}
			appendFrames(t, w, 1)
			w.Close()
			rep, _ = archive.Verify(dir)
			if e := rep.Segments[len(rep.Segments)-1].IndexErr; e != nil {
				t.Fatalf("last index after Open: %v", e)
			}
		})
	}
}

func TestOpenReaderEmptyDir(t *testing.T) {
	if _, err := archive.OpenReader(t.TempDir()); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("reader of an empty dir: %v", err)
	}
	if _, err := archive.Verify(t.TempDir()); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("verify of an empty dir: %v", err)
	}
	r, err := archive.OpenReader(func() string { d := t.TempDir(); w := openW(t, d, archive.Options{}); w.Close(); return d }())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err == nil || !errors.Is(err, io.EOF) {
		t.Fatalf("next of an empty archive: %v", err)
	}
	r.Close()
	if _, err := r.Next(); !errors.Is(err, archive.ErrClosed) {
		t.Fatalf("next after close: %v", err)
	}
	if err := r.Seek(0); !errors.Is(err, archive.ErrClosed) {
		t.Fatalf("seek after close: %v", err)
	}
}

func TestOneWriterPerDirectory(t *testing.T) {
	dir := t.TempDir()
	w, err := archive.Open(dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Open(dir, archive.Options{}); !errors.Is(err, archive.ErrLocked) {
		t.Fatalf("second writer on one directory: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := archive.Open(dir, archive.Options{})
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	w2.Close()
}

// TestConcurrentUse runs appenders (frames and gaps), Sync callers and a
// Stats reader at once, with interval and policy fsyncs and frequent
// rotations: every record is stored exactly once, the archive verifies and
// DurableSeq never goes back nor past NextSeq. Meant for -race.
func TestConcurrentUse(t *testing.T) {
	for _, c := range []struct {
		name string
		p    archive.SyncPolicy
	}{
		{"interval", archive.SyncPolicy{Interval: time.Millisecond}},
		{"interval+records", archive.SyncPolicy{Interval: time.Millisecond, Records: 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w := openW(t, dir, archive.Options{MaxSegmentSize: 64 << 10, Sync: c.p})
			const appenders, each = 4, 40
			var mu sync.Mutex
			want := map[uint64]uint64{} // seq -> frame id (gaps: first lost id)
			var wg sync.WaitGroup
			for g := range uint64(appenders) {
				wg.Go(func() {
					for i := range uint64(each) {
						id := g<<32 | i
						var seq uint64
						var err error
						if i%10 == 9 {
							seq, err = w.AppendGap(archive.Gap{FirstID: id, LastID: id, Count: 1, Cause: loss.Evicted})
						} else {
							m, b := patternFrame(t, id)
							seq, err = w.Append(m, b)
						}
						if err != nil {
							t.Errorf("appender %d, record %d: %v", g, i, err)
							return
						}
						mu.Lock()
						if _, dup := want[seq]; dup {
							t.Errorf("seq %d returned twice", seq)
						}
						want[seq] = id
						mu.Unlock()
						if i%15 == 0 {
							if err := w.Sync(); err != nil {
								t.Errorf("sync: %v", err)
							}
						}
					}
				})
			}
			done := make(chan struct{})
			polled := make(chan struct{})
			go func() {
				defer close(polled)
				var last uint64
				for {
					st := w.Stats()
					if st.DurableSeq < last || st.DurableSeq > st.NextSeq {
						t.Errorf("durable seq %d after %d, next seq %d", st.DurableSeq, last, st.NextSeq)
					}
					last = st.DurableSeq
					select {
					case <-done:
						return
					default:
						runtime.Gosched()
					}
				}
			}()
			wg.Wait()
			close(done)
			<-polled
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if st := w.Stats(); st.SyncErrors != 0 || st.DurableSeq != appenders*each || st.Segments < 3 {
				t.Fatalf("stats %+v", st)
			}
			rep := mustVerifyOK(t, dir)
			if rep.Records != appenders*each || rep.GapRecords != appenders*each/10 {
				t.Fatalf("report %+v", rep)
			}
			recs, errs := readAll(t, dir)
			if len(errs) != 0 || len(recs) != appenders*each {
				t.Fatalf("%d records, errors %v", len(recs), errs)
			}
			for i, rec := range recs {
				id, ok := want[rec.Seq]
				if rec.Seq != uint64(i) || !ok {
					t.Fatalf("record %d has seq %d (known: %v)", i, rec.Seq, ok)
				}
				if rec.Kind == archive.KindGap {
					if rec.Gap.FirstID != id {
						t.Fatalf("seq %d: gap %+v, want id %d", rec.Seq, rec.Gap, id)
					}
					continue
				}
				checkFrame(t, rec, id)
			}
		})
	}
}

// A payload that changed while it was written (a revoked lease) is taken
// back: AppendChecked stores nothing, the next record takes its sequence
// number, and the archive verifies with every record intact.
func TestAppendCheckedTakesBackAChangedPayload(t *testing.T) {
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{})
	appendFrames(t, w, 3)
	m, b := patternFrame(t, 3)
	changed := errors.New("the slot was reused")
	if _, err := w.AppendChecked(m, b, func() error { return changed }); !errors.Is(err, archive.ErrPayloadChanged) || !errors.Is(err, changed) {
		t.Fatalf("AppendChecked with a failing check: %v", err)
	}
	if st := w.Stats(); st.Records != 3 || st.NextSeq != 3 {
		t.Fatalf("after a taken-back record: %+v", st)
	}
	seq, err := w.AppendChecked(m, b, func() error { return nil })
	if err != nil || seq != 3 {
		t.Fatalf("AppendChecked with a passing check: seq %d, %v", seq, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, errs := readAll(t, dir)
	if len(errs) != 0 || len(recs) != 4 {
		t.Fatalf("%d records, errors %v", len(recs), errs)
	}
	mustVerifyOK(t, dir)
}
