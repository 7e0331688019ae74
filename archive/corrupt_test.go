package archive_test

// Byte-flip and truncation tests on real archive files.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
)

// smallArchive writes n small pattern frames (frame id == seq) into dir,
// the first half uncompressed and the second with S2, rotating every
// segSize bytes. It returns the payloads by seq.
func smallArchive(t *testing.T, dir string, n int, segSize int64) map[uint64][]byte {
	t.Helper()
	g := frame.Packed(40, 8, frame.Mono8)
	gen, _ := frame.NewGenerator(g, false)
	frames := map[uint64][]byte{}
	for half, c := range []archive.Codec{archive.CodecNone, archive.CodecS2} {
		w := openW(t, dir, archive.Options{MaxSegmentSize: segSize, Codec: c})
		for i := 0; i < n/2+half*(n%2); i++ {
			id := w.Stats().NextSeq
			b := make([]byte, g.Size())
			gen.Fill(b, id)
			if _, err := w.Append(archive.Meta{FrameID: id, Width: g.Width, Height: g.Height, Stride: g.Stride, Format: g.Format}, b); err != nil {
				t.Fatal(err)
			}
			frames[id] = b
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return frames
}

// damaged reports whether err is one of the sentinels damage may produce.
func damaged(err error) bool {
	return errors.Is(err, archive.ErrCorrupt) || errors.Is(err, archive.ErrVersion)
}

// readChecked reads dir with Next and with ReadSeq for every seq, asserting
// that every record handed out is the original and every error a sentinel.
// It returns the number of valid records Next returned and of errors.
func readChecked(t *testing.T, dir string, frames map[uint64][]byte) (good, bad int) {
	t.Helper()
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	check := func(rec archive.Record) {
		want, ok := frames[rec.Seq]
		if !ok || rec.Kind != archive.KindFrame || rec.Meta.FrameID != rec.Seq || !bytes.Equal(rec.Payload, want) {
			t.Fatalf("reader returned a damaged record as valid: seq %d", rec.Seq)
		}
	}
	for i := 0; ; i++ {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if i > 10*len(frames)+10 {
			t.Fatal("reader does not advance")
		}
		if err != nil {
			if !damaged(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			bad++
			continue
		}
		check(rec)
		good++
	}
	for seq := range uint64(len(frames)) {
		rec, err := r.ReadSeq(seq, nil)
		if err != nil {
			if !damaged(err) && !errors.Is(err, archive.ErrNotFound) {
				t.Fatalf("read seq %d: error without a sentinel: %v", seq, err)
			}
			continue
		}
		check(rec)
	}
	return good, bad
}

func TestByteFlips(t *testing.T) {
	dir := t.TempDir()
	const n = 14
	frames := smallArchive(t, dir, n, 4096)
	segs := segFiles(t, dir, "*.frseg")
	idxs := segFiles(t, dir, "*.fridx")
	if len(segs) < 2 {
		t.Fatalf("want at least 2 segments, have %d", len(segs))
	}
	step := 1 // every byte of every file
	if testing.Short() {
		step = 7
	} else if raceEnabled {
		step = 3
	}
	for fi, path := range append(append([]string{}, segs...), idxs...) {
		isIndex := filepath.Ext(path) == ".fridx"
		isLast := path == segs[len(segs)-1]
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for p := 0; p < len(orig); p += step {
			for _, mask := range []byte{0x01, 0x80} {
				b := bytes.Clone(orig)
				b[p] ^= mask
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				where := fmt.Sprintf("%s byte %d ^ %#x", filepath.Base(path), p, mask)
				rep, err := archive.Verify(dir)
				if err != nil {
					t.Fatalf("%s: verify: %v", where, err)
				}
				good, bad := readChecked(t, dir, frames)
				if isIndex {
					// Derived data: the archive is whole, the reader still finds everything.
					if !rep.OK() || rep.Records != n || good != n || bad != 0 {
						t.Fatalf("%s: a damaged index lost data: %+v, %d good %d bad", where, rep, good, bad)
					}
					continue
				}
				if rep.OK() && rep.TornTail == nil {
					t.Fatalf("%s: damage not detected: %+v", where, rep)
				}
				if rep.TornTail != nil && !isLast {
					t.Fatalf("%s: torn tail reported in a sealed segment", where)
				}
				if bad == 0 || good >= n {
					t.Fatalf("%s: reader returned %d good, %d errors", where, good, bad)
				}
				seg := rep.Segments[fi]
				if p < 64 {
					if seg.Err == nil {
						t.Fatalf("%s: segment header damage not reported", where)
					}
					wantVersion := p == 8 || p == 9
					if wantVersion != errors.Is(seg.Err, archive.ErrVersion) || (!wantVersion && !errors.Is(seg.Err, archive.ErrCorrupt)) {
						t.Fatalf("%s: header error %v", where, seg.Err)
					}
				} else {
					var errs []error
					for _, c := range rep.Corrupt {
						errs = append(errs, c.Err)
					}
					if rep.TornTail != nil {
						errs = append(errs, rep.TornTail.Err)
					}
					for _, e := range errs {
						if !errors.Is(e, archive.ErrCorrupt) {
							t.Fatalf("%s: record damage reported as %v", where, e)
						}
					}
				}
			}
		}
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustVerifyOK(t, dir)
}

// recordOffsets returns the offsets of the records of a single-segment archive.
func recordOffsets(t *testing.T, dir string) []int64 {
	t.Helper()
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var offs []int64
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return offs
		}
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, rec.Offset)
	}
}

// TestTornTails cuts the last record at every byte, as a crash during its
// write would (before any fsync covered it, so the index does not list it),
// and checks that Open cuts exactly that record and nothing else.
func TestTornTails(t *testing.T) {
	dir := t.TempDir()
	const n = 6
	frames := smallArchive(t, dir, n, 1<<20)
	seg := segFiles(t, dir, "*.frseg")[0]
	orig, _ := os.ReadFile(seg)
	idx := segFiles(t, dir, "*.fridx")[0]
	origIdx, _ := os.ReadFile(idx)
	unlisted := origIdx[:len(origIdx)-40] // the last record was never fsynced: not listed
	offs := recordOffsets(t, dir)
	lastOff := offs[len(offs)-1]
	size := int64(len(orig))

	tails := map[string][]byte{}
	for cut := lastOff + 1; cut < size; cut++ {
		tails[fmt.Sprintf("cut at %d", cut)] = orig[:cut]
	}
	// A power loss can leave the file extended with zeros or a stale block.
	tails["zeros after"] = append(bytes.Clone(orig[:lastOff]), make([]byte, 4096)...)
	tails["partial header then zeros"] = append(bytes.Clone(orig[:lastOff+40]), make([]byte, 300)...)
	payloadHole := bytes.Clone(orig)
	clear(payloadHole[lastOff+80 : lastOff+120])
	tails["hole in payload"] = payloadHole

	for name, b := range tails {
		if err := os.WriteFile(seg, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(idx, unlisted, 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := archive.Verify(dir)
		if err != nil || !rep.OK() || rep.TornTail == nil || rep.TornTail.Offset != lastOff || rep.Records != n-1 {
			t.Fatalf("%s: verify %v %+v", name, err, rep)
		}
		w := openW(t, dir, archive.Options{})
		rc := w.Recovery()
		if rc.CutOffset != lastOff || rc.CutBytes != int64(len(b))-lastOff || rc.NextSeq != n-1 || rc.Records != n-1 || len(rc.Corrupt) != 0 {
			t.Fatalf("%s: recovery %+v", name, rc)
		}
		if !errors.Is(rc.CutReason, archive.ErrCorrupt) {
			t.Fatalf("%s: cut reason %v", name, rc.CutReason)
		}
		w.Close()
		if fileSize(t, seg) != lastOff {
			t.Fatalf("%s: file is %d bytes after recovery, want %d", name, fileSize(t, seg), lastOff)
		}
		rep = mustVerifyOK(t, dir)
		if rep.TornTail != nil || rep.Records != n-1 {
			t.Fatalf("%s: after recovery %+v", name, rep)
		}
		if good, bad := readChecked(t, dir, frames); good != n-1 || bad != 0 {
			t.Fatalf("%s: %d good, %d bad", name, good, bad)
		}
	}
	// A torn header: the file holds less than a record header past the last record.
	os.WriteFile(seg, orig, 0o644)
	os.WriteFile(idx, origIdx, 0o644)
	w := openW(t, dir, archive.Options{})
	if rc := w.Recovery(); rc.CutOffset != -1 || rc.NextSeq != n {
		t.Fatalf("intact archive recovered %+v", rc)
	}
	w.Close()
}

// TestRecoveryKeepsMidSegmentDamage: damage followed by valid records is not
// a torn tail; Open keeps it and appends after the last valid record.
func TestRecoveryKeepsMidSegmentDamage(t *testing.T) {
	dir := t.TempDir()
	const n = 6
	frames := smallArchive(t, dir, n, 1<<20)
	seg := segFiles(t, dir, "*.frseg")[0]
	offs := recordOffsets(t, dir)
	b, _ := os.ReadFile(seg)
	b[offs[2]+100] ^= 0xff
	os.WriteFile(seg, b, 0o644)

	w := openW(t, dir, archive.Options{})
	rc := w.Recovery()
	if rc.CutOffset != -1 || len(rc.Corrupt) != 1 || rc.Corrupt[0].Offset != offs[2] || rc.NextSeq != n {
		t.Fatalf("recovery %+v", rc)
	}
	if fileSize(t, seg) != int64(len(b)) {
		t.Fatal("recovery changed a segment with damage before valid records")
	}
	w.Close()
	rep, _ := archive.Verify(dir)
	if rep.OK() || len(rep.Corrupt) != 1 || len(rep.Missing) != 1 || rep.Missing[0].From != 2 || rep.Missing[0].To != 2 {
		t.Fatalf("report %+v", rep)
	}
	delete(frames, 2)
	if good, bad := readChecked(t, dir, frames); good != n-1 || bad != 1 {
		t.Fatalf("%d good, %d bad", good, bad)
	}
}

func TestRecoveryHeaders(t *testing.T) {
	t.Run("torn creation", func(t *testing.T) {
		dir := t.TempDir()
		smallArchive(t, dir, 30, 4096)
		segs := segFiles(t, dir, "*.frseg")
		last := segs[len(segs)-1]
		os.Remove(last)
		os.Remove(last[:len(last)-len(".frseg")] + ".fridx")
		rep := mustVerifyOK(t, dir)
		if w := openW(t, dir, archive.Options{}); true {
			w.Close() // Open of an archive whose last segment is gone: fine
		}
		// A crash between creating the file and writing its header.
		os.WriteFile(last, []byte("FRARCSEG\x01"), 0o644)
		w := openW(t, dir, archive.Options{MaxSegmentSize: 4096})
		rc := w.Recovery()
		if !rc.Reinitialized || rc.NextSeq != rep.LastSeq+1 {
			t.Fatalf("recovery %+v after seq %d", rc, rep.LastSeq)
		}
		appendFrames(t, w, 1)
		w.Close()
		if after := mustVerifyOK(t, dir); after.Records != rep.Records+1 {
			t.Fatalf("report %+v", after)
		}
	})
	t.Run("damaged header with records", func(t *testing.T) {
		dir := t.TempDir()
		smallArchive(t, dir, 4, 1<<20)
		seg := segFiles(t, dir, "*.frseg")[0]
		b, _ := os.ReadFile(seg)
		b[20] ^= 1
		os.WriteFile(seg, b, 0o644)
		if _, err := archive.Open(dir, archive.Options{}); !errors.Is(err, archive.ErrCorrupt) {
			t.Fatalf("open: %v", err)
		}
		if after, _ := os.ReadFile(seg); !bytes.Equal(after, b) {
			t.Fatal("Open modified a segment it refused")
		}
	})
	t.Run("newer version", func(t *testing.T) {
		dir := t.TempDir()
		smallArchive(t, dir, 4, 1<<20)
		seg := segFiles(t, dir, "*.frseg")[0]
		b, _ := os.ReadFile(seg)
		binary.LittleEndian.PutUint16(b[8:], archive.FormatVersion+1)
		binary.LittleEndian.PutUint32(b[60:], crc32.Checksum(b[:60], crc32.MakeTable(crc32.Castagnoli)))
		os.WriteFile(seg, b, 0o644)
		if _, err := archive.Open(dir, archive.Options{}); !errors.Is(err, archive.ErrVersion) {
			t.Fatalf("open: %v", err)
		}
		r, err := archive.OpenReader(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.Next(); !errors.Is(err, archive.ErrVersion) {
			t.Fatalf("next: %v", err)
		}
		if info := r.Segments()[0]; !errors.Is(info.Err, archive.ErrVersion) {
			t.Fatalf("segment info %+v", info)
		}
		if after, _ := os.ReadFile(seg); !bytes.Equal(after, b) {
			t.Fatal("Open modified a segment of a newer version")
		}
	})
	t.Run("stray files", func(t *testing.T) {
		dir := t.TempDir()
		smallArchive(t, dir, 4, 1<<20)
		for _, name := range []string{"000000001.frseg", "1.frseg", "notes.txt", "00000009.frseg.tmp"} {
			os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o644)
		}
		if rep := mustVerifyOK(t, dir); len(rep.Segments) != 1 {
			t.Fatalf("stray files taken for segments: %+v", rep.Segments)
		}
	})
}
