// Package libframering_test drives libframering (clients/c) against the
// real Go producer: the C programs (frcat, the example; frtest, the test
// driver) run as separate processes, built with AddressSanitizer and
// UndefinedBehaviorSanitizer (or, from `make test`, ThreadSanitizer), and
// attach to rings made by ringbuf in this test process or in a re-executed
// copy of this test binary (the producer role, for producer restarts).
// Every C process's stderr is checked for sanitizer reports.
//
// By hand:
//
//	make -C clients/c asan
//	go test ./clients/c/                                   # builds its own copy
//	FRAMERING_C_BUILD=$PWD/clients/c/build/tsan FRAMERING_C_VARIANT=tsan go test ./clients/c/
package libframering_test

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
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

const roleEnv = "FRAMERING_CLIENTS_ROLE"

// hangGuard bounds every wait; nothing is asserted about how long anything
// takes.
const hangGuard = 30 * time.Second

var tmpRoot string

func TestMain(m *testing.M) {
	code := testmain.Run(m, roleEnv, runChild)
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
	os.Exit(code)
}

// ---- building the C code ----

type cbuild struct {
	dir     string   // frcat, frtest, unit
	variant string   // asan or tsan
	env     []string // sanitizer options for the programs
}

var (
	buildOnce sync.Once
	built     cbuild
	buildErr  error
)

// cBuild returns the sanitized build of the C programs: $FRAMERING_C_BUILD
// if set (make test passes its TSan build), else a fresh ASan+UBSan build
// made once per test binary with the Makefile.
func cBuild(t *testing.T) cbuild {
	t.Helper()
	buildOnce.Do(func() {
		built.variant = os.Getenv("FRAMERING_C_VARIANT")
		if built.variant == "" {
			built.variant = "asan"
		}
		if d := os.Getenv("FRAMERING_C_BUILD"); d != "" {
			built.dir = d
		} else {
			var root string
			if root, buildErr = buildRoot(); buildErr != nil {
				return
			}
			out, err := exec.Command("make", "-s", "-C", ".", "BUILD="+root, built.variant).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("make %s: %v\n%s", built.variant, err, out)
				return
			}
			built.dir = filepath.Join(root, built.variant)
		}
		built.env = []string{
			"ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0",
			"UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1",
			"TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1",
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

var rootOnce sync.Once

func buildRoot() (string, error) {
	var err error
	rootOnce.Do(func() { tmpRoot, err = os.MkdirTemp("", "libframering-test-") })
	return tmpRoot, err
}

// ---- C processes ----

// proc is a running C program whose stdout lines arrive on lines.
type proc struct {
	cmd    *exec.Cmd
	lines  chan string
	all    []string
	stdin  io.WriteCloser
	stderr bytes.Buffer
	mu     sync.Mutex
}

func startC(t *testing.T, b cbuild, prog string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*hangGuard)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, filepath.Join(b.dir, prog), args...)
	cmd.Env = append(os.Environ(), b.env...)
	pr := &proc{cmd: cmd, lines: make(chan string, 4096)}
	cmd.Stderr = &lockedWriter{w: &pr.stderr, mu: &pr.mu}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if pr.stdin, err = cmd.StdinPipe(); err != nil {
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
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return pr
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (pr *proc) errText() string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.stderr.String()
}

// expect returns the fields of the next line starting with prefix; earlier
// lines are kept in all.
func (pr *proc) expect(t *testing.T, prefix string) map[string]string {
	t.Helper()
	timeout := time.After(hangGuard)
	for {
		select {
		case l, ok := <-pr.lines:
			if !ok {
				t.Fatalf("%s ended before printing %q; stdout:\n%s\nstderr:\n%s", pr.cmd.Path, prefix,
					strings.Join(pr.all, "\n"), pr.errText())
			}
			pr.all = append(pr.all, l)
			if l == prefix || strings.HasPrefix(l, prefix+" ") {
				return fields(l)
			}
		case <-timeout:
			t.Fatalf("no %q line from %s; stdout so far:\n%s\nstderr:\n%s", prefix, pr.cmd.Path,
				strings.Join(pr.all, "\n"), pr.errText())
		}
	}
}

// expectAll returns the next line starting with each prefix, in whatever
// order they come.
func (pr *proc) expectAll(t *testing.T, prefixes ...string) map[string]map[string]string {
	t.Helper()
	got := map[string]map[string]string{}
	timeout := time.After(hangGuard)
	for len(got) < len(prefixes) {
		select {
		case l, ok := <-pr.lines:
			if !ok {
				t.Fatalf("%s ended before printing %q; stdout:\n%s\nstderr:\n%s", pr.cmd.Path, prefixes,
					strings.Join(pr.all, "\n"), pr.errText())
			}
			pr.all = append(pr.all, l)
			for _, p := range prefixes {
				if _, seen := got[p]; !seen && (l == p || strings.HasPrefix(l, p+" ")) {
					got[p] = fields(l)
					break
				}
			}
		case <-timeout:
			t.Fatalf("no %q lines from %s; stdout so far:\n%s\nstderr:\n%s", prefixes, pr.cmd.Path,
				strings.Join(pr.all, "\n"), pr.errText())
		}
	}
	return got
}

// finish drains stdout and waits for the process; it returns its exit
// code (-1 if a signal killed it), failing the test on a sanitizer report.
func (pr *proc) finish(t *testing.T) int {
	t.Helper()
	pr.stdin.Close()
	for l := range pr.lines {
		pr.all = append(pr.all, l)
	}
	err := pr.cmd.Wait()
	if s := pr.errText(); strings.Contains(s, "Sanitizer") || strings.Contains(s, "runtime error") {
		t.Fatalf("%s: sanitizer report:\n%s", pr.cmd.Path, s)
	}
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("%s: %v\nstderr:\n%s", pr.cmd.Path, err, pr.errText())
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
		t.Fatalf("field %s=%q in %v: %v", k, m[k], m, err)
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

// ---- a Go producer in this process ----

// ring is a Go producer publishing pattern frames whose frame id equals
// their sequence number, one about every interval once start is called.
type ring struct {
	p        *ringbuf.Producer
	geo      frame.Geometry
	gen      *frame.Generator
	interval time.Duration
	stop     chan struct{}
	done     chan error
	started  bool
	once     sync.Once
}

func newRing(t *testing.T, geo frame.Geometry, cfg ringbuf.Config) *ring {
	t.Helper()
	gen, err := frame.NewGenerator(geo, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SocketPath = filepath.Join(t.TempDir(), "ring.sock")
	cfg.SlotSize = geo.Size()
	if cfg.Slots == 0 {
		cfg.Slots = 8
	}
	if cfg.EvictAfter == 0 {
		cfg.EvictAfter = time.Hour // a sanitized consumer may be slow; never evicted unless asked
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := ringbuf.Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &ring{p: p, geo: geo, gen: gen, interval: 2 * time.Millisecond, stop: make(chan struct{}), done: make(chan error, 1)}
	t.Cleanup(func() {
		r.halt(t)
		p.Close()
	})
	return r
}

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
			if err := r.publish(); err != nil {
				r.done <- err
				return
			}
			time.Sleep(r.interval)
		}
	}()
}

// publish publishes one pattern frame (FrameID = seq), or records a drop
// when no slot is free, as a real acquisition loop does.
func (r *ring) publish() error {
	s, err := r.p.Acquire()
	if errors.Is(err, ringbuf.ErrNoFreeSlot) {
		r.p.RecordDrops(loss.Blocked, 1)
		return nil
	}
	if err != nil {
		return err
	}
	id := r.p.Published() + 1
	if err := r.gen.Fill(s.Bytes(), id); err != nil {
		return err
	}
	seq, err := r.p.Publish(s, ringbuf.Meta{FrameID: id, Timestamp: time.Now().UnixNano(), Width: uint32(r.geo.Width),
		Height: uint32(r.geo.Height), Stride: uint32(r.geo.Stride), Format: r.geo.Format, Length: uint64(r.geo.Size()),
		Flags: 1})
	if err == nil && seq != id {
		err = fmt.Errorf("published frame id %d as sequence %d", id, seq)
	}
	return err
}

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

func consumerByPid(s ringbuf.Snapshot, pid int) (ringbuf.ConsumerInfo, bool) {
	for _, c := range s.Consumers {
		if c.Pid == pid {
			return c, true
		}
	}
	return ringbuf.ConsumerInfo{}, false
}

// waitDetached waits for the producer to release the process's entry and
// checks that it left no hold behind.
func waitDetached(t *testing.T, p *ringbuf.Producer, pid int) ringbuf.Snapshot {
	t.Helper()
	var s ringbuf.Snapshot
	waitFor(t, "the producer to release the consumer's entry", func() bool {
		s = p.Snapshot()
		_, attached := consumerByPid(s, pid)
		return !attached
	})
	for _, si := range s.SlotInfo {
		if si.Holders != 0 {
			t.Errorf("slot %d still held after the consumer left: %+v", si.Index, si)
		}
	}
	return s
}

// ---- the producer role (a separate process) ----

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

// runChild runs a role of this test binary in its own process.
func runChild(role string) error {
	switch role {
	case "producer":
		return childProducer(os.Getenv("FR_PATH"))
	}
	return fmt.Errorf("unknown role %q", role)
}

var childGeometry = frame.Packed(160, 120, frame.Mono8)

// childProducer publishes pattern frames (FrameID = seq) every
// FR_INTERVAL_US until its stdin ends (then closes the ring) or it is
// killed. It prints {"epoch": ...} once the ring is up.
func childProducer(path string) error {
	p, err := ringbuf.Create(ringbuf.Config{SocketPath: path, Slots: envInt("FR_SLOTS", 8), SlotSize: childGeometry.Size(),
		EvictAfter: time.Hour})
	if err != nil {
		return err
	}
	defer p.Close()
	gen, err := frame.NewGenerator(childGeometry, false)
	if err != nil {
		return err
	}
	fmt.Printf("{\"epoch\": \"%016x\", \"pid\": %d}\n", p.Epoch(), os.Getpid())
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	r := &ring{p: p, geo: childGeometry, gen: gen}
	interval := time.Duration(envInt("FR_INTERVAL_US", 1000)) * time.Microsecond
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if err := r.publish(); err != nil {
			return err
		}
		time.Sleep(interval)
	}
}
