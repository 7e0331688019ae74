// Package framesrc_test drives framesrc (clients/gstreamer), the GStreamer
// source of a framering ring, with real processes: the project's producer,
// archiver and ringctl, and gst-launch-1.0 running the plugin built with
// AddressSanitizer and UndefinedBehaviorSanitizer (libasan preloaded into
// gst-launch-1.0, LeakSanitizer on: only GLib's own allocations are
// suppressed). Every gst-launch-1.0 output is checked for sanitizer
// reports.
//
// By hand:
//
//	go test ./clients/gstreamer/                 # builds everything it needs once
//	go test -run Bridge -v ./clients/gstreamer/  # the two-host test (root: network namespaces)
package framesrc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testmain"
)

// hangGuard bounds every wait; nothing is asserted about how long
// anything takes.
const hangGuard = 60 * time.Second

func TestMain(m *testing.M) {
	code := testmain.Run(m, "", nil)
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
	os.Exit(code)
}

// ---- building ----

var (
	tmpRoot   string
	buildOnce sync.Once
	buildErr  error
	tools     struct {
		bin    string // producer, archiver, ringctl
		build  string // make's BUILD directory (the asan variant is under it)
		plugin string // the directory holding libgstframering.so
		env    []string
	}
)

// setup builds the sanitized plugin and the Go binaries once per test
// binary, and makes the GStreamer registry private to it.
func setup(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		var err error
		if tmpRoot, err = os.MkdirTemp("", "framesrc-test-"); err != nil {
			buildErr = err
			return
		}
		tools.bin = filepath.Join(tmpRoot, "bin")
		tools.build = filepath.Join(tmpRoot, "build")
		tools.plugin = filepath.Join(tools.build, "asan")
		if out, err := exec.Command("make", "-s", "-C", ".", "BUILD="+tools.build, "asan").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("make asan: %v\n%s", err, out)
			return
		}
		for _, c := range []struct{ name, tags string }{{"producer", "gst"}, {"archiver", ""}, {"ringctl", ""}} {
			args := []string{"build", "-o", filepath.Join(tools.bin, c.name)}
			if c.tags != "" {
				args = append(args, "-tags", c.tags)
			}
			args = append(args, "github.com/framering/framering/cmd/"+c.name)
			if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", c.name, err, out)
				return
			}
		}
		libasan, err := exec.Command("gcc", "-print-file-name=libasan.so").Output()
		if err != nil {
			buildErr = fmt.Errorf("find libasan: %v", err)
			return
		}
		supp := filepath.Join(tmpRoot, "lsan.supp")
		// GLib's and GStreamer's process-lifetime allocations (type system,
		// registry, thread pools) are never freed; framesrc allocates its
		// own bookkeeping with malloc, so its leaks still show.
		if err := os.WriteFile(supp, []byte("leak:g_malloc\nleak:g_realloc\nleak:g_slice_alloc\nleak:g_type_\n"), 0o644); err != nil {
			buildErr = err
			return
		}
		tools.env = []string{
			"GST_PLUGIN_PATH=" + tools.plugin,
			"GST_REGISTRY=" + filepath.Join(tmpRoot, "registry.bin"),
			"GST_DEBUG_NO_COLOR=1",
			"LD_PRELOAD=" + strings.TrimSpace(string(libasan)),
			"ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0",
			"LSAN_OPTIONS=suppressions=" + supp + ":print_suppressions=0",
			"UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1",
		}
		// Fill the private registry once, so that tests do not each scan
		// every plugin.
		cmd := exec.Command("gst-inspect-1.0", "framesrc")
		cmd.Env = append(os.Environ(), tools.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("gst-inspect-1.0 framesrc: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// ---- processes ----

// proc is a running process whose stdout and stderr lines are collected.
type proc struct {
	name  string
	cmd   *exec.Cmd
	done  chan struct{}
	mu    sync.Mutex
	cond  *sync.Cond
	all   []string
	out   bytes.Buffer // stdout, unsplit (a producer's -json summary)
	stdin io.WriteCloser
	ended bool
}

type lineWriter struct {
	p    *proc
	keep bool
	part []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.keep {
		w.p.out.Write(b)
	}
	w.part = append(w.part, b...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.p.all = append(w.p.all, string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	w.p.cond.Broadcast()
	return len(b), nil
}

// start runs name with args (prefix: e.g. "ip netns exec NS") and the
// test's environment plus env. It is killed at cleanup if still running.
func start(t *testing.T, prefix []string, env []string, name string, args ...string) *proc {
	t.Helper()
	argv := append(append(append([]string{}, prefix...), name), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: filepath.Base(name), cmd: cmd, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	cmd.Stdout = &lineWriter{p: p, keep: true}
	cmd.Stderr = &lineWriter{p: p}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		p.mu.Lock()
		p.ended = true
		p.cond.Broadcast()
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.all, "\n")
}

// waitLine waits for a line (from index *from on) that pred accepts and
// returns it; *from moves past it.
func (p *proc) waitLine(t *testing.T, what string, from *int, pred func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	timer := time.AfterFunc(hangGuard, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for ; *from < len(p.all); *from++ {
			if pred(p.all[*from]) {
				l := p.all[*from]
				*from++
				return l
			}
		}
		if p.ended {
			t.Fatalf("%s ended before %s; output:\n%s", p.name, what, strings.Join(p.all, "\n"))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within %v; output:\n%s", p.name, what, hangGuard, strings.Join(p.all, "\n"))
		}
		p.cond.Wait()
	}
}

func (p *proc) waitContains(t *testing.T, what string, from *int, sub string) string {
	t.Helper()
	return p.waitLine(t, what, from, func(l string) bool { return strings.Contains(l, sub) })
}

// wait waits for the process to end and returns its exit code (-1 for a
// signal).
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(hangGuard):
		t.Fatalf("%s did not end within %v; output:\n%s", p.name, hangGuard, p.text())
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}

// ---- the project's programs ----

// producer starts a producer of ring (synthetic pattern source unless
// args say otherwise) and waits until it serves the ring.
func producer(t *testing.T, prefix []string, ring string, args ...string) *proc {
	t.Helper()
	setup(t)
	base := []string{"-ring", ring, "-source", "synthetic", "-stats-interval", "0", "-exit-watch=false", "-json"}
	p := start(t, prefix, nil, filepath.Join(tools.bin, "producer"), append(base, args...)...)
	from := 0
	p.waitContains(t, "producer ready", &from, `msg="producer ready"`)
	return p
}

// stop ends a producer cleanly (SIGTERM: the ring is closed) and checks
// its exit status.
func stopProducer(t *testing.T, p *proc) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Fatalf("producer exited %d:\n%s", code, p.text())
	}
}

// producerSummary is the part of the producer's -json summary tests read.
type producerSummary struct {
	Published uint64            `json:"published"`
	Frames    uint64            `json:"frames"`
	Dropped   uint64            `json:"dropped"`
	Drops     map[string]uint64 `json:"drops"`
	Copies    uint64            `json:"copies"`
}

func summary(t *testing.T, p *proc) producerSummary {
	t.Helper()
	<-p.done
	p.mu.Lock()
	b := bytes.TrimSpace(p.out.Bytes())
	p.mu.Unlock()
	var s producerSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("producer summary %q: %v", b, err)
	}
	return s
}

// gst runs gst-launch-1.0 -m (bus messages on stdout) on the sanitized
// plugin.
func gst(t *testing.T, prefix []string, args ...string) *proc {
	t.Helper()
	setup(t)
	return start(t, prefix, tools.env, "gst-launch-1.0", append([]string{"-m"}, args...)...)
}

// finishGst waits for gst-launch-1.0, fails on a sanitizer report and
// returns the exit code.
func finishGst(t *testing.T, p *proc) int {
	t.Helper()
	code := p.wait(t)
	if s := p.text(); strings.Contains(s, "Sanitizer") || strings.Contains(s, "runtime error:") {
		t.Fatalf("gst-launch-1.0: sanitizer report:\n%s", s)
	}
	return code
}

var statField = regexp.MustCompile(`([a-z-]+)=\(guint64\)(\d+)`)

// stats parses a framesrc-stats element message line.
func parseStats(line string) map[string]uint64 {
	m := map[string]uint64{}
	for _, f := range statField.FindAllStringSubmatch(line, -1) {
		v, _ := strconv.ParseUint(f[2], 10, 64)
		m[f[1]] = v
	}
	return m
}

func isStats(l string) bool { return strings.Contains(l, "framesrc-stats,") }

// lastStats returns the last framesrc-stats message gst-launch printed.
func lastStats(t *testing.T, p *proc) map[string]uint64 {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.all) - 1; i >= 0; i-- {
		if isStats(p.all[i]) {
			return parseStats(p.all[i])
		}
	}
	t.Fatalf("no framesrc-stats message; output:\n%s", strings.Join(p.all, "\n"))
	return nil
}

// waitStats waits for a framesrc-stats message that ok accepts.
func waitStats(t *testing.T, p *proc, what string, from *int, ok func(map[string]uint64) bool) map[string]uint64 {
	t.Helper()
	l := p.waitLine(t, what, from, func(l string) bool { return isStats(l) && ok(parseStats(l)) })
	return parseStats(l)
}

// ringView is the part of `ringctl show -json` tests read.
type ringView struct {
	HoldQuota      uint64 `json:"hold_quota"`
	Reclaims       uint64 `json:"reclaims"`
	ReclaimedHolds uint64 `json:"reclaimed_holds"`
	Evictions      uint64 `json:"evictions"`
	SlotCounts     struct {
		Held uint64 `json:"held"`
	} `json:"slot_counts"`
	SlotList []struct {
		HeldBy []string `json:"held_by"`
	} `json:"slot_list"`
	Consumers []struct {
		Name  string `json:"name"`
		Held  uint64 `json:"held"`
		State string `json:"state"`
	} `json:"consumers"`
	Producer struct {
		Published uint64 `json:"published"`
	} `json:"producer"`
}

func ringctl(t *testing.T, prefix []string, ring string) ringView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	argv := append(append([]string{}, prefix...), filepath.Join(tools.bin, "ringctl"), "show", "-ring", ring, "-json")
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	if err != nil {
		t.Fatalf("ringctl show -ring %s: %v\n%s", ring, err, out)
	}
	var v ringView
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("ringctl show -json: %v\n%s", err, out)
	}
	return v
}

// held counts the slots held by consumer name.
func (v ringView) heldBy(name string) int {
	n := 0
	for _, s := range v.SlotList {
		for _, h := range s.HeldBy {
			if h == name {
				n++
			}
		}
	}
	return n
}

func waitRing(t *testing.T, prefix []string, ring, what string, ok func(ringView) bool) ringView {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		v := ringctl(t, prefix, ring)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("ring %s: no %s within %v: %+v", ring, what, hangGuard, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ringName is a ring name unique to the test.
func ringName(t *testing.T) string {
	return strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
}

// execOut runs a command to completion (bounded by hangGuard) and returns
// its combined output.
func execOut(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
