package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testmain"

	"github.com/framering/framering/consumers"
	"github.com/framering/framering/ringbuf"
	"github.com/framering/framering/ringstat"
)

func TestMain(m *testing.M) {
	code := testmain.Run(m, "", nil)
	if binDir != "" {
		os.RemoveAll(binDir) // the end-to-end tests' binaries (serve_e2e_test.go)
	}
	os.Exit(code)
}

func newRing(t *testing.T, name string, slots int) *ringbuf.Producer {
	t.Helper()
	p, err := ringbuf.Create(ringbuf.Config{Name: name, Slots: slots, SlotSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func publish(t *testing.T, p *ringbuf.Producer) {
	t.Helper()
	s, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(s, ringbuf.Meta{Length: 64}); err != nil {
		t.Fatal(err)
	}
}

// ctl runs ringctl in-process and returns its stdout.
func ctl(t *testing.T, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
	defer cancel()
	if code := run(ctx, args, &out, &errb); code != 0 {
		t.Fatalf("ringctl %q: exit %d: %s", args, code, errb.String())
	}
	return out.Bytes()
}

// attachConsumer attaches a consumer, closed at the end of the test.
func attachConsumer(t *testing.T, ring, name string, mode consumers.Mode) *consumers.Consumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := consumers.Attach(ctx, consumers.Options{Ring: ring, Name: name, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// take takes n frames from c and keeps them (holds their slots) until the
// end of the test.
func take(t *testing.T, c *consumers.Consumer, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var kept []*consumers.Frame
	for f := range c.Frames(ctx) {
		kept = append(kept, f.Keep())
		if len(kept) == n {
			break
		}
	}
	t.Cleanup(func() {
		for _, k := range kept {
			k.Release()
		}
	})
	if len(kept) != n {
		t.Fatalf("took %d frames: %v", len(kept), c.Err())
	}
}

// show -json names every consumer with its mode and holds, and says which
// slots each holds; it takes no hold and no table entry itself.
func TestShowJSONNamesConsumersAndHolds(t *testing.T) {
	p := newRing(t, "show", 6)
	attachConsumer(t, "show", "archiver", consumers.Lossless) // takes nothing
	analyzer := attachConsumer(t, "show", "analyzer", consumers.Lossy)
	for i := 0; i < 3; i++ {
		publish(t, p)
	}
	take(t, analyzer, 1) // the newest, 3, skipping 2
	if analyzer.Stats().LastSeq != 3 {
		t.Fatalf("lossy consumer took seq %d", analyzer.Stats().LastSeq)
	}
	archiver2 := attachConsumer(t, "show", "archiver2", consumers.Lossless)
	publish(t, p)
	publish(t, p)
	take(t, archiver2, 2) // 4 and 5
	attachConsumer(t, "show", "keeper", consumers.Lossless)
	before := p.Snapshot()

	var rep ringstat.Report
	if err := json.Unmarshal(ctl(t, "show", "-ring", "show", "-json", "-window", "10ms"), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Ring != "show" || rep.Producer.Pid != os.Getpid() || rep.Producer.Epoch != ringstat.Epoch(p.Epoch()) ||
		rep.Producer.State != "running" || rep.Producer.Published != 5 || rep.Slots != 6 || rep.WindowNs == 0 {
		t.Fatalf("report header: %+v", rep)
	}
	byName := map[string]ringstat.Consumer{}
	for _, c := range rep.Consumers {
		byName[c.Name] = c
	}
	want := map[string]struct {
		mode string
		held int
	}{"archiver": {"lossless", 0}, "analyzer": {"lossy", 1}, "keeper": {"lossless", 0}, "archiver2": {"lossless", 2}}
	if len(rep.Consumers) != len(want) {
		t.Fatalf("consumers %+v", rep.Consumers)
	}
	heldBy := map[int][]string{}
	for _, s := range rep.SlotList {
		if len(s.HeldBy) > 0 {
			heldBy[s.Index] = s.HeldBy
			if s.State != "held" {
				t.Fatalf("slot %+v held but not in state held", s)
			}
		}
	}
	for name, w := range want {
		c, ok := byName[name]
		if !ok {
			t.Fatalf("consumer %s missing from %+v", name, rep.Consumers)
		}
		if c.Mode != w.mode || c.State != "active" || int(c.Held) != w.held || len(c.HeldSlots) != w.held || c.Pid != os.Getpid() {
			t.Fatalf("consumer %s: %+v, want mode %s holding %d", name, c, w.mode, w.held)
		}
		for _, k := range c.HeldSlots {
			if !slices.Contains(heldBy[k], name) {
				t.Fatalf("slot %d held by %s is listed as held by %v", k, name, heldBy[k])
			}
		}
	}
	if rep.SlotCounts.Held != 3 || rep.SlotCounts.Held+rep.SlotCounts.Free+rep.SlotCounts.Published+rep.SlotCounts.Writing != 6 {
		t.Fatalf("slot counts %+v", rep.SlotCounts)
	}
	if a := byName["analyzer"]; a.Skipped != 2 || a.Delivered != 1 || a.LastSeq != 3 {
		t.Fatalf("analyzer counters %+v", a)
	}
	// The observer changed nothing: same holds, same table.
	after := p.Snapshot()
	if len(after.Consumers) != len(before.Consumers) {
		t.Fatal("ringctl took a consumer table entry")
	}
	for i := range after.SlotInfo {
		if after.SlotInfo[i].Holders != before.SlotInfo[i].Holders {
			t.Fatal("ringctl changed a slot's holders")
		}
	}

	text := string(ctl(t, "show", "-ring", "show", "-window", "0"))
	for _, s := range []string{"archiver2", "analyzer", "lossless", "lossy", "held", "SLOT", "ENTRY", "BLOCK DROPS", "3 held"} {
		if !strings.Contains(text, s) {
			t.Fatalf("text output lacks %q:\n%s", s, text)
		}
	}
}

// The publish rate comes from two snapshots.
func TestShowRate(t *testing.T) {
	p := newRing(t, "rate", 4)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			s, err := p.Acquire()
			if err == nil {
				p.Publish(s, ringbuf.Meta{Length: 64})
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	out := ctl(t, "show", "-ring", "rate", "-json")
	close(stop)
	wg.Wait()
	var rep ringstat.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Producer.Rate <= 0 || rep.WindowNs <= 0 {
		t.Fatalf("rate %v over %v", rep.Producer.Rate, time.Duration(rep.WindowNs))
	}
}

// list shows a live ring and a stale socket (one left behind with nothing
// listening on it), in JSON and in text.
func TestListLiveAndStale(t *testing.T) {
	p := newRing(t, "alive", 2)
	publish(t, p)
	attachConsumer(t, "alive", "watcher", consumers.Lossy)
	stalePath, err := ringbuf.SocketPath("dead")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stalePath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	t.Cleanup(func() { os.Remove(stalePath) })

	var entries []ringstat.Entry
	if err := json.Unmarshal(ctl(t, "list", "-json"), &entries); err != nil {
		t.Fatal(err)
	}
	got := map[string]ringstat.Entry{}
	for _, e := range entries {
		got[e.Name] = e
	}
	live, dead := got["alive"], got["dead"]
	if live.Status != "live" || live.Pid != os.Getpid() || live.Epoch == nil || *live.Epoch != ringstat.Epoch(p.Epoch()) ||
		live.State != "running" || live.Published != 1 || live.Consumers != 1 || live.UptimeNs <= 0 {
		t.Fatalf("live ring: %+v", live)
	}
	if dead.Status != "stale" || dead.Socket != stalePath || dead.Epoch != nil {
		t.Fatalf("stale socket: %+v", dead)
	}
	text := string(ctl(t, "list"))
	if !strings.Contains(text, "stale (no producer)") || !strings.Contains(text, "alive") ||
		!strings.Contains(text, fmt.Sprintf("%016x", p.Epoch())) {
		t.Fatalf("list text:\n%s", text)
	}
}

// show of a ring that does not exist says so and fails with exit 1; bad usage is 2.
func TestShowErrors(t *testing.T) {
	var out, errb bytes.Buffer
	ctx := context.Background()
	if code := run(ctx, []string{"show", "-ring", "nobody"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "no such ring") {
		t.Fatalf("show of a missing ring: exit %d, %q", code, errb.String())
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"show", "extra"}, {"watch", "-interval", "0"}, {"list", "-ring", "x"},
		{"serve", "-interval", "0"}, {"serve", "-history", "1ms"}, {"serve", "-max-side", "3"}, {"serve", "-log-format", "xml"},
		{"serve", "-json"}} {
		if code := run(ctx, args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	// An address it cannot listen on is a runtime failure.
	if code := run(ctx, []string{"serve", "-listen", "256.0.0.1:1"}, &out, &errb); code != 1 {
		t.Errorf("serve on a bad address: exit %d, want 1", code)
	}
}

// watch -json prints a report per interval, follows the ring, and stops on
// SIGINT with exit 0 (the built binary, as a process).
func TestWatchBinary(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH to build ringctl with")
	}
	bin := filepath.Join(t.TempDir(), "ringctl")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := newRing(t, "watched", 4)
	attachConsumer(t, "watched", "viewer", consumers.Lossy)
	cmd := exec.Command(bin, "watch", "-ring", "watched", "-json", "-interval", "20ms")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := make(chan ringstat.Report)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r ringstat.Report
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				lines <- r
			}
		}
	}()
	next := func() ringstat.Report {
		select {
		case r, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended early: %s", stderr.String())
			}
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("watch printed nothing for 30s")
		}
		return ringstat.Report{}
	}
	first := next()
	if first.Ring != "watched" || len(first.Consumers) != 1 || first.Consumers[0].Name != "viewer" {
		t.Fatalf("first report %+v", first)
	}
	publish(t, p)
	for r := next(); r.Producer.Published != 1; r = next() {
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("watch exit %d after SIGINT: %s", ee.ExitCode(), stderr.String())
		}
		t.Fatal(err)
	}
}
