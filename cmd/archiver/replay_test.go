package main_test

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/loss"
)

// frameRecords reads an archive's frames in order (payloads copied) and
// its gap records' total by cause.
func frameRecords(t *testing.T, dir string) ([]archive.Record, map[loss.Cause]uint64) {
	t.Helper()
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var frames []archive.Record
	gaps := map[loss.Cause]uint64{}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return frames, gaps
		}
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Kind {
		case archive.KindFrame:
			rec.Payload = append([]byte(nil), rec.Payload...)
			frames = append(frames, rec)
		case archive.KindGap:
			if len(frames) > 0 { // losses before the first frame are not replayed
				gaps[rec.Gap.Cause] += rec.Gap.Count
			}
		}
	}
}

// TestReplayEndToEnd: a recording made from a line that loses frames
// (synthetic faults) is replayed by producer -source archive -speed max
// into a new ring, archived again by a second archiver (real processes):
// the second archive's frames are byte-identical to the first's, in order,
// and the first's losses appear in it as replay gaps, never closed up.
func TestReplayEndToEnd(t *testing.T) {
	if producerBin == "" {
		t.Skip("cmd/producer does not build in this tree")
	}
	tmp := t.TempDir()
	sock1, sock2 := filepath.Join(tmp, "line.sock"), filepath.Join(tmp, "replay.sock")
	dir1, dir2 := filepath.Join(tmp, "a1"), filepath.Join(tmp, "a2")

	a1 := startArchiver(t, "-socket", sock1, "-dir", dir1, "-stats-interval", "0")
	prod := startCmd(t, "producer.log", producerBin, "-socket", sock1, "-source", "synthetic", "-width", "96", "-height", "40",
		"-fps", "400", "-slots", "16", "-defects", "-defect-every", "20", "-faults", "incomplete:9", "-stats-interval", "0")
	a1.waitLine("attached")
	waitFor(t, "300 frames archived", func() bool { return archivedFrames(t, dir1) >= 300 })
	prod.Process.Signal(syscall.SIGTERM)
	prod.Wait()
	a1.waitLine("the ring ended")
	a1.stop(syscall.SIGTERM)
	want, wantGaps := frameRecords(t, dir1)
	var lost uint64
	for _, n := range wantGaps {
		lost += n
	}
	if lost == 0 {
		t.Fatal("the recording lost no frame: nothing to replay as gaps")
	}

	a2 := startArchiver(t, "-socket", sock2, "-dir", dir2, "-stats-interval", "0")
	rep := startCmd(t, "replay.log", producerBin, "-socket", sock2, "-source", "archive", "-archive", dir1, "-speed", "max",
		"-wait-consumers", "1", "-slots", "8", "-stats-interval", "0")
	if err := rep.Wait(); err != nil {
		t.Fatalf("replay producer: %v", err)
	}
	a2.waitLine("the ring ended")
	sum := a2.stop(syscall.SIGTERM)
	got, gotGaps := frameRecords(t, dir2)
	if len(got) != len(want) {
		t.Fatalf("replayed %d frames of %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Meta.Geometry() != want[i].Meta.Geometry() || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("frame %d (recorded as seq %d) differs after the replay", i, want[i].Meta.RingSeq)
		}
	}
	if gotGaps[loss.ReplayGap] != lost || len(gotGaps) != 1 {
		t.Fatalf("the replay's gaps %v, the recording's %v", gotGaps, wantGaps)
	}
	if num(t, sum, "lost.replay_gap") != lost || num(t, sum, "unexplained_id_gaps") != 0 {
		t.Fatalf("second archiver's summary: %v", sum)
	}
	if out, code := runCmd(t, "verify", "-dir", dir2); code != 0 {
		t.Fatalf("verify: %d\n%s", code, out)
	}
}
