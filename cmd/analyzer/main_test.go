package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/clock"
	"github.com/framering/framering/loss"

	"github.com/framering/framering/internal/testmain"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

func TestMain(m *testing.M) { os.Exit(testmain.Run(m, "", nil)) }

// build compiles the analyzer into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH to build the analyzer with")
	}
	bin := filepath.Join(t.TempDir(), "analyzer")
	out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type ring struct {
	p   *ringbuf.Producer
	gen *frame.Generator
	g   frame.Geometry
}

func newRing(t *testing.T, name string, g frame.Geometry) *ring {
	t.Helper()
	p, err := ringbuf.Create(ringbuf.Config{Name: name, Slots: 4, SlotSize: g.Size()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		t.Fatal(err)
	}
	return &ring{p: p, gen: gen, g: g}
}

// publish publishes n pattern frames (frame id = seq), waiting for a
// lossless consumer when no slot is free.
func (r *ring) publish(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // hang guard
	for i := 0; i < n; {
		s, err := r.p.Acquire()
		if errors.Is(err, ringbuf.ErrNoFreeSlot) {
			if time.Now().After(deadline) {
				t.Fatal("ring full for 30s")
			}
			time.Sleep(100 * time.Microsecond)
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		id := r.p.Published() + 1
		if err := r.gen.Fill(s.Bytes(), id); err != nil {
			t.Fatal(err)
		}
		g := r.g
		if _, err := r.p.Publish(s, ringbuf.Meta{FrameID: id, Timestamp: clock.Nanos(), Width: uint32(g.Width),
			Height: uint32(g.Height), Stride: uint32(g.Stride), Format: g.Format, Length: uint64(g.Size())}); err != nil {
			t.Fatal(err)
		}
		i++
	}
}

func (r *ring) waitFor(t *testing.T, what string, cond func(ringbuf.Snapshot) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // hang guard
	for !cond(r.p.Snapshot()) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr syncBuf // read while the process runs
	done   chan error
}

// syncBuf is a bytes.Buffer that may be read while exec writes to it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startAnalyzer(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

// wait returns the exit code (hang guard: 30 s).
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("analyzer did not exit; stderr:\n%s", p.stderr.String())
	}
	return -1
}

type jsonLine map[string]any

func lines(t *testing.T, b []byte) ([]jsonLine, jsonLine) {
	t.Helper()
	var recs []jsonLine
	var sum jsonLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l jsonLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not JSON: %q", sc.Bytes())
		}
		if s, ok := l["summary"].(map[string]any); ok {
			sum = s
			continue
		}
		recs = append(recs, l)
	}
	if sum == nil {
		t.Fatalf("no summary line in:\n%s", b)
	}
	return recs, sum
}

func num(m map[string]any, k string) int {
	f, ok := m[k].(float64)
	if !ok {
		panic(fmt.Sprintf("no number %q in %v", k, m))
	}
	return int(f)
}

// checkDefects compares a line's defects with the pattern's.
func checkDefects(t *testing.T, g frame.Geometry, l jsonLine) {
	t.Helper()
	want := frame.Defects(nil, g, uint64(num(l, "frame_id")))
	slices.SortFunc(want, func(a, b frame.Blob) int { return a.X - b.X })
	got, _ := l["defects"].([]any)
	if len(got) != len(want) || num(l, "defect_count") != len(want) {
		t.Fatalf("seq %v: defects %v, pattern %+v", l["seq"], got, want)
	}
	slices.SortFunc(got, func(a, b any) int { return num(a.(map[string]any), "x") - num(b.(map[string]any), "x") })
	for i, b := range want {
		d := got[i].(map[string]any)
		if num(d, "x") != b.X || num(d, "y") != b.Y || num(d, "w") != b.Size || num(d, "h") != b.Size ||
			num(d, "area") != b.Size*b.Size || d["bright"] != b.Bright {
			t.Fatalf("seq %v defect %d: %v, pattern %+v", l["seq"], i, d, b)
		}
	}
}

// The binary, lossless with a frame limit and a histogram, against an
// in-process producer: one correct line per frame, then the summary.
func TestBinaryLossless(t *testing.T) {
	bin := build(t)
	g := frame.Packed(160, 48, frame.Mono16)
	r := newRing(t, "e2e-lossless", g)
	outFile := filepath.Join(t.TempDir(), "out.jsonl")
	a := startAnalyzer(t, bin, "-ring", "e2e-lossless", "-name", "e2e", "-lossless", "-frames", "12", "-histogram",
		"-out", outFile, "-log-format", "json")
	r.waitFor(t, "the analyzer to attach", func(s ringbuf.Snapshot) bool { return len(s.Consumers) == 1 })
	if c := r.p.Snapshot().Consumers[0]; c.Name != "e2e" || c.Mode != "lossless" {
		t.Fatalf("consumer table: %+v", c)
	}
	r.publish(t, 12)
	if code := a.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, a.stderr.String())
	}
	if a.stdout.Len() != 0 {
		t.Fatalf("stdout not empty with -out: %q", a.stdout.String())
	}
	out, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	recs, sum := lines(t, out)
	if len(recs) != 12 {
		t.Fatalf("%d lines", len(recs))
	}
	for i, l := range recs {
		if num(l, "seq") != i+1 || l["epoch"] != fmt.Sprintf("%016x", r.p.Epoch()) || l["format"] != "Mono16" ||
			num(l, "width") != 160 || num(l, "height") != 48 || num(l, "latency_ns") < 0 {
			t.Fatalf("line %d: %v", i, l)
		}
		if h, _ := l["histogram"].([]any); len(h) != 256 {
			t.Fatalf("line %d: histogram of %d bins", i, len(h))
		}
		if st, _ := l["stats"].(map[string]any); st == nil || num(st, "count") != 160*48-16 {
			t.Fatalf("line %d: stats %v", i, l["stats"])
		}
		checkDefects(t, g, l)
	}
	if num(sum, "frames") != 12 || sum["end"] != "frame limit" || num(sum, "latency_max_ns") <= 0 {
		t.Fatalf("summary %v", sum)
	}
	if !strings.Contains(a.stderr.String(), `"msg":"analyzer done"`) {
		t.Fatalf("no JSON log line for the summary on stderr:\n%s", a.stderr.String())
	}
}

// Started before its producer (-wait), lossy, RGB8, stopped by SIGINT:
// exit 0 with a summary.
func TestBinaryWaitsAndStopsOnSignal(t *testing.T) {
	bin := build(t)
	a := startAnalyzer(t, bin, "-ring", "e2e-signal", "-copy")
	g := frame.Packed(120, 40, frame.RGB8)
	r := newRing(t, "e2e-signal", g)
	r.waitFor(t, "the analyzer to attach", func(s ringbuf.Snapshot) bool { return len(s.Consumers) == 1 })
	r.publish(t, 1)
	r.waitFor(t, "a delivery", func(s ringbuf.Snapshot) bool { return s.Consumers[0].Delivered >= 1 })
	r.publish(t, 20)
	if err := a.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := a.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGINT; stderr:\n%s", code, a.stderr.String())
	}
	recs, sum := lines(t, a.stdout.Bytes())
	if len(recs) == 0 || num(sum, "frames") != len(recs) || sum["end"] != "signal or deadline" {
		t.Fatalf("%d lines, summary %v", len(recs), sum)
	}
	for _, l := range recs {
		if l["format"] != "RGB8" || l["histogram"] != nil {
			t.Fatalf("line %v", l)
		}
		checkDefects(t, g, l)
	}
}

// Without -reattach, the producer closing the ring ends the run with exit
// 0; a producer that is not there without -wait is exit 1; bad flags 2.
func TestBinaryEnds(t *testing.T) {
	bin := build(t)
	g := frame.Packed(64, 24, frame.Mono8)
	r := newRing(t, "e2e-close", g)
	a := startAnalyzer(t, bin, "-ring", "e2e-close", "-reattach=false", "-lossless", "-threshold-dark", "-1")
	r.waitFor(t, "the analyzer to attach", func(s ringbuf.Snapshot) bool { return len(s.Consumers) == 1 })
	r.publish(t, 3)
	r.p.Close()
	if code := a.wait(t); code != 0 {
		t.Fatalf("exit %d after the ring closed; stderr:\n%s", code, a.stderr.String())
	}
	recs, sum := lines(t, a.stdout.Bytes())
	if len(recs) != 3 || sum["end"] != "ring closed" {
		t.Fatalf("%d lines, summary %v", len(recs), sum)
	}
	for _, l := range recs {
		for _, d := range l["defects"].([]any) {
			if d.(map[string]any)["bright"] != true {
				t.Fatalf("dark defect reported with -threshold-dark -1: %v", l)
			}
		}
	}

	a = startAnalyzer(t, bin, "-ring", "e2e-nobody", "-wait=false")
	if code := a.wait(t); code != 1 {
		t.Fatalf("no producer, no -wait: exit %d", code)
	}
	for _, args := range [][]string{{"-threshold-bright", "300"}, {"-log-format", "xml"}, {"extra"},
		{"-threshold-bright", "5", "-threshold-dark", "10"}} {
		var stderr bytes.Buffer
		if code := run(args, io.Discard, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

// TestBinaryDevNullAndDiagnostics: -out /dev/null works (nothing to fsync on
// a device), and -debug-addr serves a heap profile while the analyzer runs.
func TestBinaryDevNullAndDiagnostics(t *testing.T) {
	bin := build(t)
	g := frame.Packed(64, 16, frame.Mono8)
	r := newRing(t, "e2e-devnull", g)
	a := startAnalyzer(t, bin, "-ring", "e2e-devnull", "-lossless", "-frames", "4", "-out", "/dev/null",
		"-debug-addr", "localhost:0", "-log-format", "json")
	r.waitFor(t, "the analyzer to attach", func(s ringbuf.Snapshot) bool { return len(s.Consumers) == 1 })
	// The endpoint's address is in the log: fetch a heap profile from it.
	var addr string
	for addr == "" {
		for _, line := range strings.Split(a.stderr.String(), "\n") {
			var l map[string]any
			if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == "debug endpoint (net/http/pprof)" {
				addr, _ = l["addr"].(string)
			}
		}
		if addr == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
	resp, err := http.Get(addr + "heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("heap profile: %d %.200s", resp.StatusCode, body)
	}
	r.publish(t, 4)
	if code := a.wait(t); code != 0 {
		t.Fatalf("-out /dev/null: exit %d; stderr:\n%s", code, a.stderr.String())
	}
}

// A lossless analyzer that stops reading (SIGSTOP) pins the ring and is
// evicted; when it continues it learns of the eviction, attaches again as
// a new consumer (-reattach is the default) and goes on to its frame
// limit: exit 0, the eviction and the re-attach in its summary.
func TestBinaryEvictedReattaches(t *testing.T) {
	bin := build(t)
	g := frame.Packed(64, 48, frame.Mono8)
	p, err := ringbuf.Create(ringbuf.Config{Name: "e2e-evicted", Slots: 4, SlotSize: g.Size(), EvictAfter: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		t.Fatal(err)
	}
	r := &ring{p: p, gen: gen, g: g}
	a := startAnalyzer(t, bin, "-ring", "e2e-evicted", "-name", "slow", "-lossless", "-frames", "20", "-log-format", "json")
	r.waitFor(t, "the analyzer to attach", func(s ringbuf.Snapshot) bool { return len(s.Consumers) == 1 })
	r.publish(t, 3)
	r.waitFor(t, "three frames analyzed", func(s ringbuf.Snapshot) bool { return len(s.Consumers) == 1 && s.Consumers[0].Delivered == 3 })
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Stopped, it pins the ring: publishing finds no slot until the
	// producer evicts it.
	deadline := time.Now().Add(30 * time.Second)
	for p.Snapshot().Evictions == 0 {
		if s, err := p.Acquire(); err == nil {
			r.fill(t, s)
		}
		if time.Now().After(deadline) {
			t.Fatal("the stopped analyzer was never evicted")
		}
		time.Sleep(time.Millisecond)
	}
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "the analyzer to attach again", func(s ringbuf.Snapshot) bool {
		return len(s.Consumers) == 1 && s.Consumers[0].State == "active"
	})
	r.publish(t, 20)
	if code := a.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, a.stderr.String())
	}
	_, sum := lines(t, a.stdout.Bytes())
	if num(sum, "evictions") != 1 || num(sum, "reattaches") != 1 || num(sum, "frames") != 20 {
		t.Fatalf("summary %v", sum)
	}
}

// fill publishes slot s as the next pattern frame.
func (r *ring) fill(t *testing.T, s ringbuf.Slot) {
	t.Helper()
	id := r.p.Published() + 1
	if err := r.gen.Fill(s.Bytes(), id); err != nil {
		t.Fatal(err)
	}
	g := r.g
	if _, err := r.p.Publish(s, ringbuf.Meta{FrameID: id, Timestamp: clock.Nanos(), Width: uint32(g.Width),
		Height: uint32(g.Height), Stride: uint32(g.Stride), Format: g.Format, Length: uint64(g.Size())}); err != nil {
		t.Fatal(err)
	}
}

// The analyzer's summary carries the ring's drop table, by cause: the same
// counts the ring itself, ringctl and the producer show.
func TestBinarySummaryHasRingDrops(t *testing.T) {
	bin := build(t)
	g := frame.Packed(64, 48, frame.Mono8)
	r := newRing(t, "e2e-drops", g)
	a := startAnalyzer(t, bin, "-ring", "e2e-drops", "-name", "d", "-lossless", "-frames", "3")
	r.waitFor(t, "the analyzer to attach", func(s ringbuf.Snapshot) bool { return len(s.Consumers) == 1 })
	r.p.RecordDrops(loss.Incomplete, 4)
	r.p.RecordDrops(loss.Underrun, 2)
	r.publish(t, 1)
	r.waitFor(t, "one frame analyzed", func(s ringbuf.Snapshot) bool { return len(s.Consumers) == 1 && s.Consumers[0].Delivered == 1 })
	r.p.RecordDrops(loss.Blocked, 1)
	r.publish(t, 2)
	if code := a.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, a.stderr.String())
	}
	_, sum := lines(t, a.stdout.Bytes())
	d, _ := sum["ring_drops"].(map[string]any)
	if num(d, "incomplete") != 4 || num(d, "underrun") != 2 || num(d, "blocked") != 1 || len(d) != 3 {
		t.Fatalf("ring drops in the summary: %v (the ring's: %v)", d, r.p.Drops().Map())
	}
}
