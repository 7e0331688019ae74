package main_test

// Helpers for the process tests: the archiver binary built once, a producer
// in the test process (ringbuf.Create, frame.Generator frames whose stamp id
// is the frame id), the archiver run as a child process with JSON logs, and
// an archive reader that checks every frame against its regeneration.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// hang bounds every wait of these tests: a guard against hangs, not a
// timing assertion.
const hang = 30 * time.Second

var archiverBin, producerBin, analyzerBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "archiver-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The archiver, and the real producer and analyzer for the end-to-end
	// tests: built with the race detector when the tests are.
	for _, b := range []struct {
		path *string
		name string
	}{{&archiverBin, "archiver"}, {&producerBin, "producer"}, {&analyzerBin, "analyzer"}} {
		*b.path = filepath.Join(dir, b.name)
		args := []string{"build", "-o", *b.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/framering/framering/cmd/"+b.name)...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.name, err, out)
			return 1
		}
	}
	return m.Run()
}

// geomFor is the geometry of frame id: every format, with and without
// stride padding, so that records have varied sizes.
func geomFor(id uint64) frame.Geometry {
	switch id % 3 {
	case 0:
		return frame.Geometry{Width: 64, Height: 24, Stride: 67, Format: frame.Mono8}
	case 1:
		return frame.Geometry{Width: 48, Height: 20, Stride: 96, Format: frame.Mono16}
	}
	return frame.Geometry{Width: 40, Height: 16, Stride: 40*3 + 5, Format: frame.RGB8}
}

// patternFrame regenerates frame id of geometry g.
func patternFrame(tb testing.TB, g frame.Geometry, id uint64) []byte {
	tb.Helper()
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		tb.Fatal(err)
	}
	b := make([]byte, g.Size())
	if err := gen.Fill(b, id); err != nil {
		tb.Fatal(err)
	}
	return b
}

// producer is a camera-like producer in the test process: frame ids count
// every frame the source offered, published or dropped.
type producer struct {
	t      *testing.T
	p      *ringbuf.Producer
	geom   func(uint64) frame.Geometry
	gens   map[frame.Geometry]*frame.Generator
	nextID uint64

	offered   uint64
	published uint64
	drops     map[loss.Cause]uint64
}

func quietLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func newProducer(t *testing.T, sock string, slots, slotSize int, geom func(uint64) frame.Geometry, evictAfter time.Duration) *producer {
	t.Helper()
	p, err := ringbuf.Create(ringbuf.Config{SocketPath: sock, Slots: slots, SlotSize: slotSize, EvictAfter: evictAfter, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tp := &producer{t: t, p: p, geom: geom, gens: map[frame.Geometry]*frame.Generator{}, drops: map[loss.Cause]uint64{}}
	t.Cleanup(tp.close)
	return tp
}

func (tp *producer) close() {
	if tp.p != nil {
		tp.p.Close()
		tp.p = nil
	}
}

// offer offers the next frame id. With wait, a full ring (a lossless
// consumer behind) is waited out, like a source with flow control;
// without, the frame is dropped and counted as DropNoSlot, like a camera.
// It returns whether the frame was published.
func (tp *producer) offer(wait bool) bool {
	tp.t.Helper()
	id := tp.nextID
	tp.nextID++
	tp.offered++
	deadline := time.Now().Add(hang)
	for {
		s, err := tp.p.Acquire()
		if errors.Is(err, ringbuf.ErrNoFreeSlot) {
			if wait && time.Now().Before(deadline) {
				time.Sleep(50 * time.Microsecond)
				continue
			}
			if wait {
				tp.t.Fatalf("offer frame %d: no free slot for %v", id, hang)
			}
			tp.dropID(loss.Blocked)
			return false
		}
		if err != nil {
			tp.t.Fatalf("acquire for frame %d: %v", id, err)
		}
		g := tp.geom(id)
		gen := tp.gens[g]
		if gen == nil {
			if gen, err = frame.NewGenerator(g, true); err != nil {
				tp.t.Fatal(err)
			}
			tp.gens[g] = gen
		}
		if err := gen.Fill(s.Bytes(), id); err != nil {
			tp.t.Fatal(err)
		}
		m := ringbuf.Meta{FrameID: id, Timestamp: time.Now().UnixNano(), Width: uint32(g.Width), Height: uint32(g.Height),
			Stride: uint32(g.Stride), Format: g.Format, Length: uint64(g.Size())}
		if _, err := tp.p.Publish(s, m); err != nil {
			tp.t.Fatalf("publish frame %d: %v", id, err)
		}
		tp.published++
		return true
	}
}

// lose drops the next frame id upstream for cause (an underrun, a source error).
func (tp *producer) lose(cause loss.Cause) {
	tp.nextID++
	tp.offered++
	tp.dropID(cause)
}

func (tp *producer) dropID(cause loss.Cause) {
	tp.p.RecordDrops(cause, 1)
	tp.drops[cause]++
}

// consumer returns the table entry of the archiver process pid, if attached.
func (tp *producer) consumer(pid int) (ringbuf.ConsumerInfo, bool) {
	for _, c := range tp.p.Snapshot().Consumers {
		if c.Pid == pid && c.State == "active" {
			return c, true
		}
	}
	return ringbuf.ConsumerInfo{}, false
}

// waitAttached waits until process pid is an active consumer of the ring.
func (tp *producer) waitAttached(pid int) {
	tp.t.Helper()
	waitFor(tp.t, fmt.Sprintf("archiver %d attached", pid), func() bool {
		_, ok := tp.consumer(pid)
		return ok
	})
}

// waitDrained waits until consumer pid passed every published frame.
func (tp *producer) waitDrained(pid int) {
	tp.t.Helper()
	waitFor(tp.t, fmt.Sprintf("archiver %d drained the ring", pid), func() bool {
		c, ok := tp.consumer(pid)
		return ok && c.Cursor > tp.p.Published()
	})
}

// waitFor polls cond until it holds, failing after the hang guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not after %v", what, hang)
		}
		time.Sleep(time.Millisecond)
	}
}

// proc is an archiver child process with JSON logs on stderr.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	cond  *sync.Cond
}

func startArchiver(t *testing.T, args ...string) *proc {
	t.Helper()
	args = append([]string{"run", "-log-format", "json"}, args...)
	cmd := exec.Command(archiverBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var m map[string]any
			_ = json.Unmarshal(line, &m) // the race detector's report is not JSON: kept raw
			p.mu.Lock()
			p.raw.Write(line)
			p.raw.WriteByte('\n')
			if m != nil {
				p.lines = append(p.lines, m)
			}
			p.cond.Broadcast()
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		p.mu.Lock()
		close(p.done)
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("archiver %v log:\n%s", args, p.log())
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// waitLine waits for a log line whose msg starts with prefix and returns it.
func (p *proc) waitLine(prefix string) map[string]any {
	p.t.Helper()
	timer := time.AfterFunc(hang, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(hang)
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for {
		for ; i < len(p.lines); i++ {
			if msg, _ := p.lines[i]["msg"].(string); strings.HasPrefix(msg, prefix) {
				return p.lines[i]
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("archiver exited (%v) without logging %q", p.err, prefix)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("archiver did not log %q within %v", prefix, hang)
		}
		p.cond.Wait()
	}
}

// stop sends sig and waits for the exit; it returns the summary line.
func (p *proc) stop(sig syscall.Signal) map[string]any {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	return p.wait(0)
}

// wait waits for the process to exit with code want and returns its
// summary line (nil after a kill).
func (p *proc) wait(want int) map[string]any {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(hang):
		p.t.Fatalf("archiver did not exit within %v", hang)
	}
	code := p.cmd.ProcessState.ExitCode()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		if ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	if code != want {
		p.t.Fatalf("archiver exit code %d, want %d (%v)", code, want, p.err)
	}
	if strings.Contains(p.log(), "WARNING: DATA RACE") {
		p.t.Fatalf("the archiver reported a data race")
	}
	return p.line("summary")
}

// line returns the last log line with msg, or nil.
func (p *proc) line(msg string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.lines) - 1; i >= 0; i-- {
		if p.lines[i]["msg"] == msg {
			return p.lines[i]
		}
	}
	return nil
}

// num reads a number field (a.b for nested groups) of a log line.
func num(t *testing.T, line map[string]any, key string) uint64 {
	t.Helper()
	var v any = line
	for _, k := range strings.Split(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return 0
		}
		v = m[k]
	}
	switch x := v.(type) {
	case nil:
		return 0
	case float64:
		return uint64(x)
	}
	t.Fatalf("field %s of %v is %T", key, line, v)
	return 0
}

// archived is what an archive holds, read back and checked.
type archived struct {
	records []archive.Record // payloads copied
	frames  uint64
	lost    map[loss.Cause]uint64
	gaps    []archive.Gap
	report  *archive.Report
}

func (a *archived) lostTotal() uint64 {
	var n uint64
	for _, c := range a.lost {
		n += c
	}
	return n
}

// readArchive verifies the archive and reads every record; every frame must
// be byte-identical to the regenerated pattern frame of its id, and frame ids
// must increase within each run of the producer (runs separated by a restart
// are told apart by allowRestart returning true for the first id of a run).
func readArchive(t *testing.T, dir string, geom func(uint64) frame.Geometry) *archived {
	t.Helper()
	rep, err := archive.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("archive does not verify: corrupt %v, missing %v, segments %+v", rep.Corrupt, rep.Missing, rep.Segments)
	}
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := &archived{report: rep, lost: map[loss.Cause]uint64{}}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, archive.ErrTruncated) && rep.TornTail != nil {
				continue
			}
			t.Fatalf("read archive: %v", err)
		}
		switch rec.Kind {
		case archive.KindFrame:
			id := rec.Meta.FrameID
			g := geom(id)
			if got := rec.Meta.Geometry(); got != g {
				t.Fatalf("seq %d frame %d: geometry %+v, want %+v", rec.Seq, id, got, g)
			}
			if !bytes.Equal(rec.Payload, patternFrame(t, g, id)) {
				t.Fatalf("seq %d: frame %d differs from its regeneration", rec.Seq, id)
			}
			a.frames++
		case archive.KindGap:
			a.lost[rec.Gap.Cause] += rec.Gap.Count
			a.gaps = append(a.gaps, rec.Gap)
		}
		rec.Payload = append([]byte(nil), rec.Payload...)
		a.records = append(a.records, rec)
	}
	return a
}

// countFrames counts the frame records of an archive, possibly while it is
// written (a record being written shows as a torn tail and is skipped).
func countFrames(dir string) (int, error) {
	r, err := archive.OpenReader(dir)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			continue
		}
		if rec.Kind == archive.KindFrame {
			n++
		}
	}
}
