package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

type e2e struct {
	t    *testing.T
	bin  string
	out  string
	ring string
	g    frame.Geometry
}

func (e *e2e) start(name string, args ...string) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(e.bin, name), args...)
	logf, err := os.OpenFile(filepath.Join(e.out, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	return cmd
}

func (e *e2e) producer() *exec.Cmd {
	return e.start("producer", "-ring", e.ring, "-source", "synthetic", "-defects", "-fps", "200", "-slots", "16",
		"-width", strconv.Itoa(e.g.Width), "-height", strconv.Itoa(e.g.Height), "-format", e.g.Format.String(),
		"-stats-interval", "0", "-log-format", "json")
}

func (e *e2e) analyzer(name string) *exec.Cmd {
	return e.start("analyzer", "-ring", e.ring, "-name", name, "-out", filepath.Join(e.out, name+".jsonl"),
		"-log-format", "json")
}

func (e *e2e) archiver() *exec.Cmd {
	return e.start("archiver", "run", "-ring", e.ring, "-dir", filepath.Join(e.out, "archive"), "-fsync", "every=1",
		"-stats-interval", "0", "-log-format", "json")
}

// snap attaches as an observer (no holds) and returns the ring's state.
func (e *e2e) snap() (ringbuf.Snapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{Name: e.ring, Role: ringbuf.RoleObserver})
	if err != nil {
		return ringbuf.Snapshot{}, err
	}
	defer r.Close()
	return r.Snapshot()
}

func (e *e2e) waitFor(what string, cond func(s ringbuf.Snapshot) bool) ringbuf.Snapshot {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second) // hang guard, not a performance bound
	for {
		s, err := e.snap()
		if err == nil && cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s (last snapshot %+v, err %v)", what, s.Consumers, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func consumer(s ringbuf.Snapshot, name string) (ringbuf.ConsumerInfo, bool) {
	for _, c := range s.Consumers {
		if c.Name == name {
			return c, true
		}
	}
	return ringbuf.ConsumerInfo{}, false
}

func delivering(name string, min uint64) func(ringbuf.Snapshot) bool {
	return func(s ringbuf.Snapshot) bool {
		c, ok := consumer(s, name)
		return ok && c.Delivered >= min
	}
}

func kill9(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s ignores SIGTERM", cmd.Path)
	}
}

// kill -9 each process in turn while frames flow; a consumer added while
// the pipeline runs receives frames without any change to the producer.
func TestKillEachProcessInTurn(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binaries for several seconds")
	}
	e := &e2e{t: t, bin: buildBinaries(t), out: t.TempDir(), ring: "e2e", g: frame.Packed(320, 240, frame.Mono8)}
	t.Setenv("FRAMERING_RUNTIME_DIR", t.TempDir())

	prod := e.producer()
	an := e.analyzer("analyzer")
	ar := e.archiver()
	e.waitFor("both consumers to receive frames", func(s ringbuf.Snapshot) bool {
		return delivering("analyzer", 20)(s) && delivering("archiver", 20)(s)
	})

	// 1. The analyzer dies: the producer goes on, reclaims it, and a new
	// analyzer gets frames.
	kill9(t, an)
	s := e.waitFor("the analyzer to be reclaimed", func(s ringbuf.Snapshot) bool {
		_, ok := consumer(s, "analyzer")
		return !ok
	})
	p1 := s.Published
	e.waitFor("the producer to keep publishing", func(s ringbuf.Snapshot) bool { return s.Published > p1+50 })
	an2 := e.analyzer("analyzer2")
	e.waitFor("the new analyzer to receive frames", delivering("analyzer2", 10))

	// 2. The archiver dies mid-write: restarted on the same directory, it
	// recovers the archive and goes on.
	kill9(t, ar)
	e.waitFor("the archiver to be reclaimed", func(s ringbuf.Snapshot) bool {
		_, ok := consumer(s, "archiver")
		return !ok
	})
	ar = e.archiver()
	e.waitFor("the restarted archiver to receive frames", delivering("archiver", 10))

	// 3. A consumer added while everything runs.
	late := e.analyzer("late")
	e.waitFor("the late consumer to receive frames", delivering("late", 10))

	// 4. The producer dies: the consumers wait, and a new producer on the
	// same name brings every one of them back (new epoch).
	before := e.waitFor("steady state", func(s ringbuf.Snapshot) bool { return len(s.Consumers) == 3 })
	kill9(t, prod)
	prod = e.producer()
	e.waitFor("every consumer to come back to the new producer", func(s ringbuf.Snapshot) bool {
		if s.Epoch == before.Epoch || len(s.Consumers) != 3 {
			return false
		}
		for _, c := range s.Consumers {
			if c.Delivered < 10 {
				return false
			}
		}
		return true
	})

	// Stop: the producer first, then the consumers (they re-attach by
	// default, so they are told to stop).
	stop(t, prod)
	for _, c := range []*exec.Cmd{an2, late, ar} {
		stop(t, c)
	}

	// The archive verifies, and every frame in it is byte-identical to
	// what the source generated for its frame id.
	if out, err := exec.Command(filepath.Join(e.bin, "archiver"), "verify", "-dir", filepath.Join(e.out, "archive")).CombinedOutput(); err != nil {
		t.Fatalf("archive does not verify: %v\n%s", err, out)
	}
	gen, err := frame.NewGenerator(e.g, true)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, e.g.Size())
	rd, err := archive.OpenReader(filepath.Join(e.out, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	// Within a producer run frame ids rise by one; any jump must have a gap
	// record before the frame that ends it (the archiver's losses are
	// recorded, never silent). A restart starts ids over at 0.
	frames, gaps := 0, 0
	var prevID uint64
	havePrev, gapSince := false, false
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind != archive.KindFrame {
			gaps++
			gapSince = true
			continue
		}
		gen.Fill(want, rec.Meta.FrameID)
		if !bytes.Equal(rec.Payload, want) {
			t.Fatalf("archived frame %d (seq %d) differs from the source's", rec.Meta.FrameID, rec.Seq)
		}
		if havePrev && rec.Meta.FrameID != prevID+1 && rec.Meta.FrameID > prevID && !gapSince {
			t.Fatalf("frame ids jump from %d to %d with no gap record between", prevID, rec.Meta.FrameID)
		}
		prevID, havePrev, gapSince = rec.Meta.FrameID, true, false
		frames++
	}
	if frames < 50 {
		t.Fatalf("only %d frames archived", frames)
	}
	// Every analyzer that stopped cleanly found exactly the injected defects.
	for _, name := range []string{"analyzer2", "late"} {
		checkDefects(t, filepath.Join(e.out, name+".jsonl"), e.g)
	}
	t.Logf("archive: %d frames byte-identical to the source, %d gap records", frames, gaps)
}

func checkDefects(t *testing.T, path string, g frame.Geometry) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	n := 0
	for sc.Scan() {
		var l struct {
			Seq     *uint64 `json:"seq"`
			FrameID uint64  `json:"frame_id"`
			Defects []struct {
				X, Y, W, H int
				Bright     bool
			} `json:"defects"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Seq == nil {
			continue
		}
		want := frame.Defects(nil, g, l.FrameID)
		if len(want) != len(l.Defects) {
			t.Fatalf("%s: frame %d: %d defects reported, %d injected", path, l.FrameID, len(l.Defects), len(want))
		}
		for _, w := range want { // the analyzer reports in raster order
			found := false
			for _, d := range l.Defects {
				found = found || (d.X == w.X && d.Y == w.Y && d.W == w.Size && d.H == w.Size && d.Bright == w.Bright)
			}
			if !found {
				t.Fatalf("%s: frame %d: injected defect %+v not reported (got %+v)", path, l.FrameID, w, l.Defects)
			}
		}
		n++
	}
	if n == 0 {
		t.Fatalf("%s: no frame analyzed", path)
	}
}
