package archive_test

import (
	"bufio"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/internal/testmain"
)

// archiveBytes is the size of the archive's segments and indexes on disk.
func archiveBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, pat := range []string{"*.frseg", "*.fridx"} {
		for _, p := range segFiles(t, dir, pat) {
			if st, err := os.Stat(p); err == nil {
				n += st.Size()
			}
		}
	}
	return n
}

// waitRetention waits (without a deadline of its own) until the writer's
// retention has deleted at least n segments.
func waitRetention(w *archive.Writer, n uint64) {
	for w.Stats().Deleted.Segments < n {
		time.Sleep(time.Millisecond)
	}
}

// TestRetentionSize: an archive capped by size stays within the cap plus
// one segment while frames keep coming, verifies OK at every point
// (deliberate deletions are not damage), and counts what it deleted, in
// its stats and durably in the manifest.
func TestRetentionSize(t *testing.T) {
	const seg, keep = 64 << 10, 256 << 10
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{MaxSegmentSize: seg,
		Retention: archive.Retention{MaxBytes: keep, CheckEvery: time.Millisecond}})
	// Every index holds at most a few hundred 40-byte entries: a few KiB.
	slack := int64(seg + 16<<10)
	for round := 0; round < 12; round++ {
		appendFrames(t, w, 40) // ~10 segments a round
		waitRetention(w, uint64(round))
		if n := archiveBytes(t, dir); n > keep+2*slack {
			t.Fatalf("round %d: archive is %d bytes, cap %d", round, n, keep)
		}
		rep := mustVerifyOK(t, dir)
		if rep.Records == 0 || rep.FirstSeq < rep.LowWater {
			t.Fatalf("round %d: report %+v", round, rep)
		}
	}
	// Let the last rotation's deletion happen, then close: within the cap
	// plus the open segment.
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if n := archiveBytes(t, dir); n > keep+slack {
		t.Fatalf("archive is %d bytes after close, cap %d", n, keep)
	}
	rep := mustVerifyOK(t, dir)
	m, ok, err := archive.ReadManifest(dir)
	if err != nil || !ok || m.Deleted.Segments == 0 || m.Deleted.Frames != m.Deleted.Records || m.FirstRecord != rep.FirstSeq ||
		m.Deleted.Segments != st.Deleted.Segments || m.FirstRecord != m.Deleted.Records {
		t.Fatalf("manifest %+v (%v %v), stats %+v, report first %d", m, ok, err, st.Deleted, rep.FirstSeq)
	}
	// The frames that are left are the newest, intact.
	recs, errs := readAll(t, dir)
	if len(errs) != 0 || recs[len(recs)-1].Seq != st.NextSeq-1 {
		t.Fatalf("%d records, errors %v", len(recs), errs)
	}
	for _, rec := range recs {
		checkFrame(t, rec, rec.Seq)
	}
	// A reopened writer keeps the low-water mark and the counts.
	w = openW(t, dir, archive.Options{MaxSegmentSize: seg})
	w.Close()
	if m2, _, _ := archive.ReadManifest(dir); m2.FirstSegment != m.FirstSegment || m2.Deleted != m.Deleted {
		t.Fatalf("manifest after reopening %+v, was %+v", m2, m)
	}
}

// TestRetentionReaderPin: a segment a reader has open is not deleted, nor
// any after it; once the reader closes, retention catches up.
func TestRetentionReaderPin(t *testing.T) {
	const seg, keep = 64 << 10, 192 << 10
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{MaxSegmentSize: seg,
		Retention: archive.Retention{MaxBytes: keep, CheckEvery: time.Millisecond}})
	defer w.Close()
	appendFrames(t, w, 10)
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := r.Segments()[0]
	appendFrames(t, w, 120) // far past the cap
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // retention runs meanwhile (not a timing assertion: it must do nothing)
	if _, err := os.Stat(first.Path); err != nil || w.Stats().Deleted.Segments != 0 {
		t.Fatalf("retention deleted under a reader: %v, %+v", err, w.Stats().Deleted)
	}
	rec, err := r.Next()
	if err != nil || rec.Seq != first.FirstSeq {
		t.Fatalf("the reader's first record: %+v %v", rec, err)
	}
	r.Close()
	waitRetention(w, 1)
	if _, err := os.Stat(first.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("first segment after the reader closed: %v", err)
	}
}

// TestRetentionAge deletes segments whose last write is older than MaxAge.
func TestRetentionAge(t *testing.T) {
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{MaxSegmentSize: 64 << 10})
	appendFrames(t, w, 40)
	w.Close()
	segs := segFiles(t, dir, "*.frseg")
	old := time.Now().Add(-time.Hour)
	for _, p := range segs[:2] {
		os.Chtimes(p, old, old)
	}
	w = openW(t, dir, archive.Options{MaxSegmentSize: 64 << 10,
		Retention: archive.Retention{MaxAge: 30 * time.Minute, CheckEvery: time.Millisecond}})
	defer w.Close()
	waitRetention(w, 2)
	time.Sleep(10 * time.Millisecond)
	if d := w.Stats().Deleted.Segments; d != 2 {
		t.Fatalf("%d segments deleted, want the 2 old ones", d)
	}
	mustVerifyOK(t, dir)
}

// TestRetentionMinFree: with retention on, a filesystem running low gets
// the oldest segments deleted before it is full; the writer never meets
// ENOSPC.
func TestRetentionMinFree(t *testing.T) {
	fs := testmain.SmallFS(t, "2m")
	dir := filepath.Join(fs, "archive")
	w := openW(t, dir, archive.Options{MaxSegmentSize: 128 << 10,
		Retention: archive.Retention{MinFree: 512 << 10, CheckEvery: time.Millisecond}})
	for range 300 { // ~5 MiB through a 2 MiB filesystem
		id := w.Stats().NextSeq
		m, b := patternFrame(t, id)
		for {
			_, err := w.Append(m, b)
			if err == nil {
				break
			}
			if !errors.Is(err, archive.ErrDiskFull) {
				t.Fatal(err)
			}
			// Deletion runs in the background: it may trail a burst.
			time.Sleep(time.Millisecond)
		}
	}
	st := w.Stats()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Deleted.Segments == 0 {
		t.Fatalf("nothing deleted on a filesystem running full: %+v", st)
	}
	t.Logf("deleted %d segments, %d appends refused for a full disk", st.Deleted.Segments, st.DiskFull)
	mustVerifyOK(t, dir)
}

// TestRetentionCrash kills writers with retention on at random moments, and
// exactly between moving the low-water mark and deleting the files: the
// archive verifies after each kill (retired files are not damage), and the
// next writer finishes the deletion.
func TestRetentionCrash(t *testing.T) {
	if os.Getenv(envChild) == "1" {
		t.Skip("inside a child")
	}
	rounds := 6
	if os.Getenv("FRAMERING_SOAK") == "1" && !testing.Short() {
		rounds = 100
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	dir := t.TempDir()
	keep := int64(3 * crashSegmentSize)
	for r := 0; r < rounds; r++ {
		hold := r%2 == 0
		cmd := childCmd(dir, archive.CodecNone, archive.SyncPolicy{Interval: time.Millisecond})
		cmd.Env = append(cmd.Env, envKeep+"="+strconv.FormatInt(keep, 10))
		if hold {
			cmd.Env = append(cmd.Env, envHold+"=1")
		}
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(time.Duration(50+rng.IntN(300))*time.Millisecond, func() { cmd.Process.Kill() })
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if hold && line == "retiring" {
				cmd.Process.Kill() // the manifest moved, the files are still there
			}
			if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
		}
		timer.Stop()
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die of SIGKILL: %v", r, err)
		}
		rep, err := archive.Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("round %d (hold %v): verify after kill -9: corrupt %v, missing %v, manifest %v", r, hold, rep.Corrupt, rep.Missing, rep.ManifestErr)
		}
		w := openW(t, dir, archive.Options{MaxSegmentSize: crashSegmentSize})
		w.Close()
		rep = mustVerifyOK(t, dir)
		if len(rep.Retired) != 0 {
			t.Fatalf("round %d: retired segments left after recovery: %v", r, rep.Retired)
		}
		recs, errs := readAll(t, dir)
		if len(errs) != 0 {
			t.Fatalf("round %d: %v", r, errs)
		}
		for _, rec := range recs {
			checkFrame(t, rec, rec.Seq)
		}
		if m, _, _ := archive.ReadManifest(dir); r > 0 && m.Deleted.Segments == 0 {
			t.Fatalf("round %d: retention never deleted anything: %+v", r, m)
		}
	}
}
