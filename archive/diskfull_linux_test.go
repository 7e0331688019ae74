package archive_test

// Disk full on a real filesystem: a 2 MiB tmpfs mounted for the test.

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/loss"

	"github.com/framering/framering/archive"
)

func TestDiskFull(t *testing.T) {
	for _, c := range []struct {
		name    string
		segSize int64
		codec   archive.Codec
	}{
		{"one segment", 8 << 20, archive.CodecNone},
		{"rotating", 96 << 10, archive.CodecNone}, // the disk fills during a rotation sooner or later
		{"compressed", 96 << 10, archive.CodecS2},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := testmain.SmallFS(t, "2m")
			// Ballast to free later, so the test can make room again.
			ballast := filepath.Join(fs, "ballast")
			if err := os.WriteFile(ballast, make([]byte, 512<<10), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(fs, "archive")
			opts := archive.Options{MaxSegmentSize: c.segSize, Codec: c.codec, Sync: archive.SyncPolicy{Records: 4}, Logger: testLogger(t)}
			w, err := archive.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.Close() }) // before the unmount
			var stored, refused uint64
			var lost uint64
			for id := uint64(0); id < 10000; id++ {
				m, b := patternFrame(t, id)
				if c.codec != archive.CodecNone {
					// Make the frames incompressible enough to fill the disk.
					for j := 32; j < len(b); j += 7 {
						b[j] ^= byte(j * int(id+1) >> 3)
					}
				}
				_, err := w.Append(m, b)
				if err == nil {
					stored++
					continue
				}
				if !errors.Is(err, archive.ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("append %d: %v", id, err)
				}
				// The writer stays usable: retrying fails the same way, and
				// nothing partial is left behind.
				refused++
				for range 3 {
					if _, err := w.Append(m, b); !errors.Is(err, archive.ErrDiskFull) {
						t.Fatalf("retry of %d on a full disk: %v", id, err)
					}
					refused++
				}
				lost = id
				break
			}
			if refused == 0 {
				t.Fatal("the disk never filled")
			}
			st := w.Stats()
			if st.DiskFull < refused || st.Frames != stored || st.NextSeq != stored {
				t.Fatalf("stats %+v after %d stored, %d refused", st, stored, refused)
			}
			// The archive is valid while the disk is full and the writer open.
			rep, err := archive.Verify(dir)
			if err != nil || !rep.OK() || rep.TornTail != nil || rep.Records != stored {
				t.Fatalf("verify on a full disk: %v, %+v (stored %d)", err, rep, stored)
			}

			// Free space: appending resumes where it left off, and the loss
			// is recorded.
			if err := os.Remove(ballast); err != nil {
				t.Fatal(err)
			}
			gseq, err := w.AppendGap(archive.Gap{FirstID: lost, LastID: lost, Count: 1, Cause: loss.DiskFull})
			if err != nil || gseq != stored {
				t.Fatalf("gap after freeing space: seq %d, %v", gseq, err)
			}
			for i := 0; i < 3; i++ {
				m, b := patternFrame(t, lost+1+uint64(i))
				if _, err := w.Append(m, b); err != nil {
					t.Fatalf("append after freeing space: %v", err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			rep = mustVerifyOK(t, dir)
			if rep.Records != stored+4 || rep.GapRecords != 1 || rep.FramesLost != 1 || rep.Gaps[0].Gap.Cause != loss.DiskFull {
				t.Fatalf("report %+v", rep)
			}
			for _, s := range rep.Segments {
				if s.IndexErr != nil {
					t.Logf("segment %d index (derived, rebuilt when possible): %v", s.Index, s.IndexErr)
				}
			}
			if c.codec == archive.CodecNone {
				recs, errs := readAll(t, dir)
				if len(errs) != 0 {
					t.Fatal(errs)
				}
				for _, rec := range recs[:stored] {
					checkFrame(t, rec, rec.Seq)
				}
				for i, rec := range recs[stored+1:] {
					checkFrame(t, rec, lost+1+uint64(i))
				}
			}
			t.Logf("stored %d frames, refused %d appends (ErrDiskFull), %d segments", stored, refused, len(rep.Segments))
		})
	}
}

// TestDiskFullAtOpen: recovery and segment creation on a full disk fail
// cleanly and leave the archive valid.
func TestDiskFullAtOpen(t *testing.T) {
	fs := testmain.SmallFS(t, "1m")
	dir := filepath.Join(fs, "archive")
	w, err := archive.Open(dir, archive.Options{MaxSegmentSize: 64 << 10, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	appendFrames(t, w, 10)
	w.Close()
	// Fill the rest of the filesystem.
	f, _ := os.Create(filepath.Join(fs, "fill"))
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
	f.Close()
	w, err = archive.Open(dir, archive.Options{MaxSegmentSize: 64 << 10, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open on a full disk: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	for i := 0; i < 5; i++ {
		m, b := patternFrame(t, w.Stats().NextSeq)
		if _, err := w.Append(m, b); !errors.Is(err, archive.ErrDiskFull) {
			t.Fatalf("append on a full disk: %v", err)
		}
	}
	w.Close()
	rep := mustVerifyOK(t, dir)
	if rep.Records != 10 {
		t.Fatalf("report %+v", rep)
	}
	os.Remove(filepath.Join(fs, "fill"))
	w2 := openW(t, dir, archive.Options{MaxSegmentSize: 64 << 10})
	t.Cleanup(func() { w2.Close() })
	appendFrames(t, w2, 2)
	w2.Close()
	if rep := mustVerifyOK(t, dir); rep.Records != 12 {
		t.Fatalf("report %+v", rep)
	}
}
