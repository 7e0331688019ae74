package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// frameRecords reads an archive's frames in order (payloads copied) and
// the total by cause of its gap records between two frames (a replay turns
// those into replay gaps; losses before the first frame or after the last,
// such as a frame discarded at the producer's stop, have no frame to
// precede and are not replayed).
func frameRecords(t *testing.T, dir string) ([]archive.Record, map[loss.Cause]uint64) {
	t.Helper()
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var frames []archive.Record
	gaps, pending := map[loss.Cause]uint64{}, map[loss.Cause]uint64{}
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
			for c, n := range pending {
				gaps[c] += n
			}
			clear(pending)
		case archive.KindGap:
			if len(frames) > 0 {
				pending[rec.Gap.Cause] += rec.Gap.Count
			}
		}
	}
}

// record archives at least n frames of a synthetic producer (96x40 at
// 400 fps, with extra producer flags) on socket sock into dir, real
// processes, and stops both.
func record(t *testing.T, sock, dir string, n int, extra ...string) {
	t.Helper()
	a := startArchiver(t, "-socket", sock, "-dir", dir, "-stats-interval", "0")
	args := append([]string{"-socket", sock, "-source", "synthetic", "-width", "96", "-height", "40",
		"-fps", "400", "-slots", "16", "-stats-interval", "0"}, extra...)
	prod := startCmd(t, "producer.log", producerBin, args...)
	a.waitLine("attached")
	waitFor(t, fmt.Sprintf("%d frames archived", n), func() bool { return archivedFrames(t, dir) >= n })
	prod.Process.Signal(syscall.SIGTERM)
	prod.Wait()
	a.waitLine("the ring ended")
	a.stop(syscall.SIGTERM)
}

// TestReplayEndToEnd: a recording made from a line that loses frames
// (synthetic faults) is replayed by producer -source archive -speed max
// into a new ring, archived again by a second archiver (real processes):
// the second archive's frames are byte-identical to the first's, in order,
// and the first's losses appear in it as replay gaps, never closed up.
func TestReplayEndToEnd(t *testing.T) {
	tmp := t.TempDir()
	sock1, sock2 := filepath.Join(tmp, "line.sock"), filepath.Join(tmp, "replay.sock")
	dir1, dir2 := filepath.Join(tmp, "a1"), filepath.Join(tmp, "a2")

	record(t, sock1, dir1, 300, "-defects", "-defect-every", "20", "-faults", "incomplete:9")
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

// TestReplayLoop: producer -source archive -loop replays a recording pass
// after pass, each pass a new ring (a new epoch) under the same socket; a
// second archiver (reattaching, lossless) archives every pass, and an
// observer in the test attaches to each pass's ring. Every complete pass in
// the second archive is the recording, byte for byte and in order, under an
// epoch of its own; every frame the observer reads is flagged replayed and
// carries its original identity (the recording's epoch and ring seq),
// whose recorded bytes it holds.
func TestReplayLoop(t *testing.T) {
	tmp := t.TempDir()
	sock1, sock2 := filepath.Join(tmp, "line.sock"), filepath.Join(tmp, "replay.sock")
	dir1, dir2 := filepath.Join(tmp, "a1"), filepath.Join(tmp, "a2")

	record(t, sock1, dir1, 60)
	want, _ := frameRecords(t, dir1)
	byOrigin := map[[2]uint64][]byte{}
	for _, r := range want {
		byOrigin[[2]uint64{r.Meta.Epoch, r.Meta.RingSeq}] = r.Payload
	}

	a2 := startArchiver(t, "-socket", sock2, "-dir", dir2, "-stats-interval", "0")
	rep := startCmd(t, "replay.log", producerBin, "-socket", sock2, "-source", "archive", "-archive", dir1, "-speed", "max",
		"-loop", "-wait-consumers", "1", "-slots", "8", "-stats-interval", "0")

	// The observer: attaches to each pass's ring in turn and checks the
	// newest frame whenever one is published.
	var (
		mu       sync.Mutex
		observed = map[uint64]int{} // ring epoch → frames checked
		bad      string
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf []byte
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: sock2, Role: ringbuf.RoleObserver})
			if err != nil {
				cancel()
				time.Sleep(2 * time.Millisecond) // between passes: no ring yet
				continue
			}
			epoch := r.Info().Epoch
			var after uint64
			for {
				seq, err := r.Wait(ctx, after)
				if err != nil {
					break // the pass ended (or 2 s passed)
				}
				m, b, err := r.ReadCopy(seq, buf)
				after = seq
				if err != nil {
					continue // overwritten meanwhile
				}
				buf = b
				mu.Lock()
				orig, ok := byOrigin[[2]uint64{m.OriginEpoch, m.OriginSeq}]
				switch {
				case m.Flags&ringbuf.FlagReplayed == 0:
					bad = fmt.Sprintf("ring %x seq %d: not flagged replayed (flags %#x)", epoch, seq, m.Flags)
				case !ok:
					bad = fmt.Sprintf("ring %x seq %d: origin %x/%d is no recorded frame", epoch, seq, m.OriginEpoch, m.OriginSeq)
				case !bytes.Equal(b, orig):
					bad = fmt.Sprintf("ring %x seq %d: bytes differ from the recorded frame %x/%d", epoch, seq, m.OriginEpoch, m.OriginSeq)
				default:
					observed[epoch]++
				}
				mu.Unlock()
			}
			r.Close()
			cancel()
		}
	}()
	waitFor(t, "three passes archived, two observed", func() bool {
		mu.Lock()
		n := len(observed)
		mu.Unlock()
		return n >= 2 && archivedFrames(t, dir2) >= 3*len(want)
	})
	close(stop)
	<-done
	rep.Process.Signal(syscall.SIGTERM)
	if err := rep.Wait(); err != nil {
		t.Fatalf("replay producer: %v", err)
	}
	a2.stop(syscall.SIGTERM)
	if bad != "" {
		t.Fatal(bad)
	}

	got, _ := frameRecords(t, dir2)
	var passes [][]archive.Record
	seen := map[uint64]bool{}
	for _, r := range got {
		if n := len(passes); n == 0 || passes[n-1][0].Meta.Epoch != r.Meta.Epoch {
			if seen[r.Meta.Epoch] {
				t.Fatalf("epoch %x comes back after another pass", r.Meta.Epoch)
			}
			seen[r.Meta.Epoch] = true
			passes = append(passes, nil)
		}
		passes[len(passes)-1] = append(passes[len(passes)-1], r)
	}
	if len(passes) < 3 {
		t.Fatalf("%d passes archived (%d frames), want at least 3", len(passes), len(got))
	}
	for p, pass := range passes {
		if len(pass) > len(want) || (p < len(passes)-1 && len(pass) != len(want)) {
			t.Fatalf("pass %d (epoch %x): %d frames of %d", p+1, pass[0].Meta.Epoch, len(pass), len(want))
		}
		for i, r := range pass {
			if r.Meta.Geometry() != want[i].Meta.Geometry() || !bytes.Equal(r.Payload, want[i].Payload) {
				t.Fatalf("pass %d frame %d (recorded as seq %d) differs after the replay", p+1, i, want[i].Meta.RingSeq)
			}
		}
	}
	t.Logf("%d passes archived; frames observed by ring epoch: %v", len(passes), observed)
}
