package cref_test

// TestFrcat proves that docs/LAYOUT.md is enough to consume a ring: it
// compiles c/frcat.c (a C consumer written from the specification alone) with
// gcc, once plainly and once under AddressSanitizer+UndefinedBehaviorSanitizer,
// runs it as a real process against a Go producer in this test process, and
// checks what it printed, its exit status, and what the producer saw of it
// (its consumer table entry while attached, no holds left after it exits,
// and a reclaimed hold when it is killed holding one).
//
// By hand:
//
//	gcc -O2 -Wall -Wextra -Werror -std=c11 docs/cref/c/frcat.c -o /tmp/frcat
//	/tmp/frcat -n 100 -m lossless -p hold $FRAMERING_RUNTIME_DIR/NAME.sock

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// hangGuard bounds every wait; nothing is asserted about how long anything
// takes.
const hangGuard = 15 * time.Second

const slots = 8

type build struct {
	name string
	bin  string
	env  []string
}

func buildFrcat(t *testing.T) []build {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the C reference consumer")
	}
	dir := t.TempDir()
	var builds []build
	for _, b := range []struct {
		name  string
		flags []string
		env   []string
	}{
		{"plain", []string{"-O2"}, nil},
		{"asan+ubsan", []string{"-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"},
			[]string{"ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0", "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"}},
	} {
		bin := filepath.Join(dir, "frcat-"+strings.ReplaceAll(b.name, "+", "-"))
		args := append([]string{"-Wall", "-Wextra", "-Werror", "-std=c11"}, b.flags...)
		args = append(args, filepath.Join("c", "frcat.c"), "-o", bin)
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		builds = append(builds, build{b.name, bin, b.env})
	}
	return builds
}

// ring is a Go producer publishing pattern frames whose frame id equals
// their sequence number. Publishing starts only when start is called, so
// that the test can look at an attached consumer before it can finish.
type ring struct {
	p       *ringbuf.Producer
	geo     frame.Geometry
	gen     *frame.Generator
	stop    chan struct{}
	done    chan error
	started bool
	once    sync.Once
}

func newRing(t *testing.T, geo frame.Geometry) *ring {
	t.Helper()
	gen, err := frame.NewGenerator(geo, true)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ringbuf.Create(ringbuf.Config{
		SocketPath: filepath.Join(t.TempDir(), "ring.sock"),
		Slots:      slots,
		SlotSize:   geo.Size(),
		// A sanitized consumer may be slow; it must never be evicted here.
		EvictAfter: time.Hour,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &ring{p: p, geo: geo, gen: gen, stop: make(chan struct{}), done: make(chan error, 1)}
	t.Cleanup(func() {
		r.halt(t)
		p.Close()
	})
	return r
}

// start publishes a frame about every 2 ms until halt. A frame that finds no
// free slot is dropped and counted, as a real acquisition loop does.
func (r *ring) start() {
	r.started = true
	go func() {
		for {
			select {
			case <-r.stop:
				r.done <- nil
				return
			default:
			}
			s, err := r.p.Acquire()
			if errors.Is(err, ringbuf.ErrNoFreeSlot) {
				r.p.RecordDrops(loss.Blocked, 1)
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				r.done <- err
				return
			}
			id := r.p.Published() + 1 // the sequence number Publish will assign
			if err := r.gen.Fill(s.Bytes(), id); err != nil {
				r.done <- err
				return
			}
			seq, err := r.p.Publish(s, ringbuf.Meta{FrameID: id, Width: uint32(r.geo.Width), Height: uint32(r.geo.Height),
				Stride: uint32(r.geo.Stride), Format: r.geo.Format, Length: uint64(r.geo.Size())})
			if err == nil && seq != id {
				err = fmt.Errorf("published frame id %d as sequence %d", id, seq)
			}
			if err != nil {
				r.done <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
}

// halt stops the publisher (if it was started) and reports its error.
func (r *ring) halt(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		close(r.stop)
		if !r.started {
			return
		}
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("publisher: %v", err)
			}
		case <-time.After(hangGuard):
			t.Error("publisher did not stop")
		}
	})
}

// proc is a running frcat whose stdout lines arrive on lines.
type proc struct {
	cmd    *exec.Cmd
	lines  chan string
	all    []string
	stderr bytes.Buffer
}

func startFrcat(t *testing.T, ctx context.Context, b build, args ...string) *proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Env = append(cmd.Environ(), b.env...)
	pr := &proc{cmd: cmd, lines: make(chan string, 1024)}
	cmd.Stderr = &pr.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(pr.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			pr.lines <- sc.Text()
		}
	}()
	return pr
}

// expect returns the next line starting with prefix; earlier lines are kept
// in all.
func (pr *proc) expect(t *testing.T, prefix string) map[string]string {
	t.Helper()
	timeout := time.After(hangGuard)
	for {
		select {
		case l, ok := <-pr.lines:
			if !ok {
				t.Fatalf("frcat ended before printing %q; stdout:\n%s\nstderr:\n%s", prefix, strings.Join(pr.all, "\n"), pr.stderr.String())
			}
			pr.all = append(pr.all, l)
			if strings.HasPrefix(l, prefix+" ") {
				return fields(l)
			}
		case <-timeout:
			t.Fatalf("no %q line from frcat; stdout so far:\n%s", prefix, strings.Join(pr.all, "\n"))
		}
	}
}

// finish drains stdout and waits for the process; it returns its exit code,
// or -1 if a signal killed it.
func (pr *proc) finish(t *testing.T) int {
	t.Helper()
	for l := range pr.lines {
		pr.all = append(pr.all, l)
	}
	err := pr.cmd.Wait()
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatalf("frcat: %v\nstderr:\n%s", err, pr.stderr.String())
	}
	return ee.ExitCode()
}

func fields(line string) map[string]string {
	m := map[string]string{}
	for f := range strings.FieldsSeq(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		} else {
			m[f] = ""
		}
	}
	return m
}

func num(t *testing.T, m map[string]string, k string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(m[k], 0, 64)
	if err != nil {
		t.Fatalf("field %s=%q: %v", k, m[k], err)
	}
	return v
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func consumerByPid(s ringbuf.Snapshot, pid int) (ringbuf.ConsumerInfo, bool) {
	for _, c := range s.Consumers {
		if c.Pid == pid {
			return c, true
		}
	}
	return ringbuf.ConsumerInfo{}, false
}

// checkAttached asserts that the producer lists the consumer that printed
// attached, with its name and mode, and returns its entry.
func checkAttached(t *testing.T, r *ring, pr *proc, att map[string]string, name, mode string) int {
	t.Helper()
	c, ok := consumerByPid(r.p.Snapshot(), pr.cmd.Process.Pid)
	if !ok {
		t.Fatalf("frcat (pid %d) attached but is not in the consumer table: %+v", pr.cmd.Process.Pid, r.p.Snapshot().Consumers)
	}
	entry := int(num(t, att, "entry"))
	if c.Entry != entry || c.Name != name || c.Mode != mode || c.State != "active" {
		t.Fatalf("consumer table entry %+v, want entry %d name %q mode %s", c, entry, name, mode)
	}
	if att["epoch"] != fmt.Sprintf("%016x", r.p.Epoch()) || num(t, att, "slots") != slots ||
		num(t, att, "capacity") != uint64(r.p.SlotCapacity()) {
		t.Fatalf("frcat saw %v, producer has epoch %016x and %d slots of %d bytes", att, r.p.Epoch(), slots, r.p.SlotCapacity())
	}
	return entry
}

// waitDetached waits for the producer to release the consumer and checks
// that it left no hold behind.
func waitDetached(t *testing.T, r *ring, pid int) ringbuf.Snapshot {
	t.Helper()
	var s ringbuf.Snapshot
	waitFor(t, "the producer to release frcat's entry", func() bool {
		s = r.p.Snapshot()
		_, attached := consumerByPid(s, pid)
		return !attached
	})
	for _, si := range s.SlotInfo {
		if si.Holders != 0 {
			t.Errorf("slot %d still held after frcat left: %+v", si.Index, si)
		}
	}
	return s
}

func TestFrcat(t *testing.T) {
	builds := buildFrcat(t)
	scenarios := []struct {
		name  string
		mode  string // lossless, lossy, or "" for an observer
		proto string
		geo   frame.Geometry
		n     int
	}{
		{"lossless-hold", "lossless", "hold", frame.Packed(320, 240, frame.Mono8), 200},
		{"lossless-peek", "lossless", "peek", frame.Geometry{Width: 160, Height: 120, Stride: 336, Format: frame.Mono16}, 200},
		// 101x77 RGB8: a checksum tail that is not a whole word.
		{"lossy-hold", "lossy", "hold", frame.Packed(101, 77, frame.RGB8), 200},
		{"lossy-peek", "lossy", "peek", frame.Packed(320, 240, frame.Mono8), 200},
		{"observer-peek", "", "peek", frame.Packed(101, 77, frame.RGB8), 100},
	}
	for _, b := range builds {
		for _, sc := range scenarios {
			t.Run(b.name+"/"+sc.name, func(t *testing.T) {
				r := newRing(t, sc.geo)
				ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
				defer cancel()
				name := "frcat-" + sc.name
				args := []string{"-n", strconv.Itoa(sc.n), "-p", sc.proto, "-N", name, "-i",
					// No futex timeout: frcat wakes only if the producer
					// honours its waiter bit (a lost wake hangs it, and the
					// hang guard fails the test).
					"-w", "0"}
				if sc.mode == "" {
					args = append(args, "-O")
				} else {
					args = append(args, "-m", sc.mode)
				}
				pr := startFrcat(t, ctx, b, append(args, r.p.Path())...)
				att := pr.expect(t, "attached")
				if sc.mode != "" {
					entry := checkAttached(t, r, pr, att, name, sc.mode)
					// Nothing is published yet: frcat must go to sleep with
					// its waiter bit set.
					w := pr.expect(t, "waiting")
					if num(t, w, "seq") != 1 || num(t, w, "waiters")&(1<<entry) == 0 {
						t.Fatalf("waiting line %v: want seq 1 and waiter bit %d", w, entry)
					}
				} else if _, ok := consumerByPid(r.p.Snapshot(), pr.cmd.Process.Pid); ok || att["entry"] != "-1" {
					t.Fatalf("an observer took a table entry: %v", att)
				}
				r.start()
				code := pr.finish(t)
				r.halt(t)
				stderr := pr.stderr.String()
				if code != 0 || strings.Contains(stderr, "Sanitizer") || strings.Contains(stderr, "runtime error") {
					t.Fatalf("frcat exited %d\nstdout:\n%s\nstderr:\n%s", code, strings.Join(pr.all, "\n"), stderr)
				}
				checkOutput(t, pr.all, sc.mode, sc.n, sc.geo, num(t, att, "cursor"))
				s := waitDetached(t, r, pr.cmd.Process.Pid)
				if sc.mode != "" && (s.Reclaims != 1 || s.ReclaimedHolds != 0) {
					t.Fatalf("after a clean exit: %d reclaims, %d holds reclaimed; want 1 and 0 (frcat releases its own holds)",
						s.Reclaims, s.ReclaimedHolds)
				}
			})
		}
		t.Run(b.name+"/killed-holding", func(t *testing.T) { testKilledHolding(t, b) })
		t.Run(b.name+"/refused", func(t *testing.T) { testRefused(t, b) })
	}
}

// testRefused checks that frcat reads a refusal's status (LAYOUT.md 6.2):
// a producer that admits only another uid answers "denied" and closes.
func testRefused(t *testing.T, b build) {
	p, err := ringbuf.Create(ringbuf.Config{
		SocketPath: filepath.Join(t.TempDir(), "ring.sock"),
		SlotSize:   4096,
		AllowUIDs:  []int{os.Geteuid() + 1},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	pr := startFrcat(t, ctx, b, "-n", "1", p.Path())
	if code := pr.finish(t); code != 3 || !strings.Contains(pr.stderr.String(), "status 2 (denied)") {
		t.Fatalf("refused attach: exit %d, stderr:\n%s", code, pr.stderr.String())
	}
	if s := p.Snapshot(); len(s.Consumers) != 0 {
		t.Fatalf("a refused consumer is in the table: %+v", s.Consumers)
	}
}

// checkOutput checks frcat's frame lines: every frame verified, sequence
// numbers increasing (and, lossless, every one from the start cursor on,
// in order), the geometry as published, and its counters accounting for
// every sequence number it passed.
func checkOutput(t *testing.T, lines []string, mode string, n int, geo frame.Geometry, start uint64) {
	t.Helper()
	var frames, missed int
	var done map[string]string
	last := start - 1
	for _, l := range lines {
		f := fields(l)
		switch {
		case strings.HasPrefix(l, "frame "):
			frames++
			seq := num(t, f, "seq")
			if _, ok := f["ok"]; !ok {
				t.Errorf("frame not verified: %s", l)
			}
			if seq <= last || (mode == "lossless" && seq != last+1) {
				t.Errorf("frame %d after %d (%s)", seq, last, mode)
			}
			last = seq
			if num(t, f, "id") != seq || num(t, f, "width") != uint64(geo.Width) || num(t, f, "height") != uint64(geo.Height) ||
				num(t, f, "stride") != uint64(geo.Stride) || num(t, f, "format") != uint64(geo.Format) ||
				num(t, f, "length") != uint64(geo.Size()) || num(t, f, "slot") >= slots {
				t.Errorf("frame line disagrees with what was published: %s", l)
			}
		case strings.HasPrefix(l, "missed "):
			missed++
			if mode == "lossless" {
				t.Errorf("a lossless consumer missed a frame: %s", l)
			}
			last = num(t, f, "seq")
		case strings.HasPrefix(l, "done "):
			done = f
		}
	}
	if frames != n || done == nil {
		t.Fatalf("%d frame lines (want %d), done line %v", frames, n, done)
	}
	d, sk, mi, cur := num(t, done, "delivered"), num(t, done, "skipped"), num(t, done, "missed"), num(t, done, "cursor")
	if d != uint64(n) || mi != uint64(missed) || cur != last+1 || done["end"] != "ok" || num(t, done, "bad") != 0 {
		t.Fatalf("done line %v after %d frames, %d missed, last %d", done, frames, missed, last)
	}
	// LAYOUT.md 12: every sequence number passed is counted exactly once.
	if d+sk+mi != cur-start {
		t.Fatalf("delivered %d + skipped %d + missed %d != %d sequence numbers passed", d, sk, mi, cur-start)
	}
	if mode == "lossless" && (sk != 0 || mi != 0) {
		t.Fatalf("lossless consumer skipped %d, missed %d", sk, mi)
	}
}

// testKilledHolding runs frcat until it holds a frame, checks that the hold
// pins its slot while the producer moves on, kills it with SIGKILL, and
// checks that the producer reclaims exactly that hold and reuses the slot.
func testKilledHolding(t *testing.T, b build) {
	r := newRing(t, frame.Packed(64, 32, frame.Mono8))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	pr := startFrcat(t, ctx, b, "-n", "20", "-m", "lossy", "-p", "hold", "-N", "frcat-killed", "-i", "-K", r.p.Path())
	att := pr.expect(t, "attached")
	entry := checkAttached(t, r, pr, att, "frcat-killed", "lossy")
	r.start()
	h := pr.expect(t, "holding")
	seq, k := num(t, h, "seq"), int(num(t, h, "slot"))
	if k >= slots {
		t.Fatalf("holding line %v", h)
	}
	waitFor(t, "the producer to move on past the held frame", func() bool { return r.p.Published() >= seq+4*slots })
	s := r.p.Snapshot()
	if si := s.SlotInfo[k]; si.Holders != 1<<entry || si.Seq != seq || !si.Published {
		t.Fatalf("slot %d while frcat holds frame %d: %+v", k, seq, si)
	}
	if c, _ := consumerByPid(s, pr.cmd.Process.Pid); c.Held != 1 {
		t.Fatalf("consumer entry while holding: %+v", c)
	}
	if err := pr.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := pr.finish(t); code != -1 {
		t.Fatalf("frcat outlived SIGKILL (exit %d)\nstderr:\n%s", code, pr.stderr.String())
	}
	s = waitDetached(t, r, pr.cmd.Process.Pid)
	if s.Reclaims != 1 || s.ReclaimedHolds != 1 {
		t.Fatalf("after kill -9: %d reclaims, %d holds reclaimed; want 1 and 1", s.Reclaims, s.ReclaimedHolds)
	}
	waitFor(t, "the freed slot to be reused", func() bool { return r.p.Snapshot().SlotInfo[k].Seq != seq })
}
