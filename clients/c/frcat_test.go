package libframering_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/ringbuf"
	"golang.org/x/sys/unix"
)

// TestFrcat runs the example consumer (frcat, on libframering) against a Go
// producer in every mode — lossless and lossy, borrowing and peeking, and
// as an observer — and checks what it printed (every frame's pattern stamp
// and checksum verified by frcat, sequence numbers in order and, lossless,
// every one), its exit status, what the producer saw of it (its consumer
// table entry while attached, its waiter bit when it slept), and that it
// left cleanly: a detach with a bye (not a reclaim) and no hold behind.
// With -L, frcat's waiting thread has the latency mode's 0.1 ms scheduler
// slice (fr_latency_thread), as the kernel reports it; without, it has not.
func TestFrcat(t *testing.T) {
	b := cBuild(t)
	scenarios := []struct {
		name    string
		mode    string // lossless, lossy, or "" for an observer
		proto   string
		geo     frame.Geometry
		n       int
		latency bool // -L
	}{
		{"lossless-hold-latency", "lossless", "hold", frame.Packed(320, 240, frame.Mono8), 200, true},
		{"lossless-peek", "lossless", "peek", frame.Geometry{Width: 160, Height: 120, Stride: 336, Format: frame.Mono16}, 200, false},
		// 101x77 RGB8: a checksum tail that is not a whole word.
		{"lossy-hold", "lossy", "hold", frame.Packed(101, 77, frame.RGB8), 200, false},
		{"lossy-peek", "lossy", "peek", frame.Packed(320, 240, frame.Mono8), 200, false},
		{"observer-peek", "", "peek", frame.Packed(101, 77, frame.RGB8), 100, false},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := newRing(t, sc.geo, ringbuf.Config{})
			name := "frcat-" + sc.name
			// A futex sleep far longer than the test: frcat wakes only if the
			// producer honours its waiter bit (a lost wake would hang it, and
			// the hang guard fail the test).
			// -W: frcat exits only when its stdin closes, after the producer
			// saw it detach: the Go producer reclaims a consumer whose
			// process exit it notices (pidfd) before reading the bye its
			// connection still carries, and would count a clean detach as a
			// reclaim (reported to the ringbuf maintainers).
			args := []string{"-n", strconv.Itoa(sc.n), "-p", sc.proto, "-N", name, "-i", "-w", "600000", "-W"}
			if sc.mode == "" {
				args = append(args, "-O")
			} else {
				args = append(args, "-m", sc.mode)
			}
			if sc.latency {
				args = append(args, "-L")
			}
			pr := startC(t, b, "frcat", append(args, r.p.Path())...)
			att := pr.expect(t, "attached")
			if att["epoch"] != fmt.Sprintf("%016x", r.p.Epoch()) || num(t, att, "slots") != 8 ||
				num(t, att, "capacity") != uint64(r.p.SlotCapacity()) || num(t, att, "quota") != uint64(r.p.HoldQuota()) {
				t.Fatalf("frcat saw %v, producer has epoch %016x, %d-byte slots, quota %d", att, r.p.Epoch(),
					r.p.SlotCapacity(), r.p.HoldQuota())
			}
			if sc.mode != "" {
				c, ok := consumerByPid(r.p.Snapshot(), pr.cmd.Process.Pid)
				entry := int(num(t, att, "entry"))
				if !ok || c.Entry != entry || c.Name != name || c.Mode != sc.mode || c.State != "active" {
					t.Fatalf("consumer table entry %+v (found %v), want entry %d name %q mode %s", c, ok, entry, name, sc.mode)
				}
				// Nothing is published yet: frcat must go to sleep with its
				// waiter bit set.
				w := pr.expect(t, "waiting")
				if num(t, w, "seq") != 1 || num(t, w, "waiters")&(1<<entry) == 0 {
					t.Fatalf("waiting line %v: want seq 1 and waiter bit %d", w, entry)
				}
			} else if _, ok := consumerByPid(r.p.Snapshot(), pr.cmd.Process.Pid); ok || att["entry"] != "-1" {
				t.Fatalf("an observer took a table entry: %v", att)
			}
			// frcat waits on its main thread, whose id is its pid; it set
			// the slice before its loop (Linux 6.12 and later report it).
			a, err := unix.SchedGetAttr(pr.cmd.Process.Pid, 0)
			if err != nil {
				t.Fatal(err)
			}
			if (a.Runtime == 100000) != sc.latency {
				t.Fatalf("frcat's scheduler slice %d ns with -L %v: want 100000 exactly with -L", a.Runtime, sc.latency)
			}
			before := r.p.Snapshot()
			r.start()
			pr.expect(t, "done")
			var s ringbuf.Snapshot
			if sc.mode != "" {
				s = waitDetached(t, r.p, pr.cmd.Process.Pid)
			}
			code := pr.finish(t)
			r.halt(t)
			if code != 0 {
				t.Fatalf("frcat exited %d\nstdout:\n%s\nstderr:\n%s", code, strings.Join(pr.all, "\n"), pr.errText())
			}
			checkOutput(t, pr.all, sc.mode, sc.proto, sc.n, sc.geo)
			if sc.mode != "" {
				// It said bye: a detach, not a reclaim (docs/LAYOUT.md 6.2).
				if s.Detaches != before.Detaches+1 || s.Reclaims != before.Reclaims || s.ReclaimedHolds != 0 {
					t.Fatalf("after a clean exit: detaches %d→%d, reclaims %d→%d, %d holds reclaimed; want one detach, no reclaim",
						before.Detaches, s.Detaches, before.Reclaims, s.Reclaims, s.ReclaimedHolds)
				}
			}
		})
	}
}

// checkOutput checks frcat's lines: every frame verified, sequence numbers
// increasing (lossless: every one from the start cursor on), the geometry as
// published, and its counters accounting for every sequence number passed.
func checkOutput(t *testing.T, lines []string, mode, proto string, n int, geo frame.Geometry) {
	t.Helper()
	var frames, torn int
	var done map[string]string
	var last uint64
	for _, l := range lines {
		f := fields(l)
		switch {
		case strings.HasPrefix(l, "frame "):
			frames++
			seq := num(t, f, "seq")
			if _, ok := f["ok"]; !ok {
				t.Errorf("frame not verified: %s", l)
			}
			if (last != 0 && seq <= last) || (mode == "lossless" && last != 0 && seq != last+1) {
				t.Errorf("frame %d after %d (%s)", seq, last, mode)
			}
			last = seq
			if num(t, f, "id") != seq || num(t, f, "width") != uint64(geo.Width) || num(t, f, "height") != uint64(geo.Height) ||
				num(t, f, "stride") != uint64(geo.Stride) || num(t, f, "format") != uint64(geo.Format) ||
				num(t, f, "length") != uint64(geo.Size()) || num(t, f, "slot") >= 8 {
				t.Errorf("frame line disagrees with what was published: %s", l)
			}
		case strings.HasPrefix(l, "torn "):
			torn++
			if proto == "hold" {
				t.Errorf("a borrowed frame was torn: %s", l)
			}
			last = num(t, f, "seq")
		case strings.HasPrefix(l, "done "):
			done = f
		}
	}
	if frames != n || done == nil {
		t.Fatalf("%d frame lines (want %d), done line %v", frames, n, done)
	}
	d, sk, mi, tn := num(t, done, "delivered"), num(t, done, "skipped"), num(t, done, "missed"), num(t, done, "torn")
	cur, start := num(t, done, "cursor"), num(t, done, "start")
	if d != uint64(n) || tn != uint64(torn) || cur != last+1 || done["end"] != "ok" || num(t, done, "bad") != 0 {
		t.Fatalf("done line %v after %d frames, %d torn, last %d", done, frames, torn, last)
	}
	if mode == "" {
		return // an observer starts wherever it likes: nothing to account for
	}
	// docs/LAYOUT.md 12: every sequence number passed is counted exactly
	// once (a torn peek was delivered by the library, then found torn).
	if d+tn+sk+mi != cur-start {
		t.Fatalf("delivered %d + torn %d + skipped %d + missed %d != %d sequence numbers passed", d, tn, sk, mi, cur-start)
	}
	if mode == "lossless" && (sk != 0 || mi != 0 || tn != 0) {
		t.Fatalf("lossless consumer skipped %d, missed %d, tore %d", sk, mi, tn)
	}
}

// Chained wakes (docs/LAYOUT.md 9.5): the library says chain_wake in its
// hello, so with only C consumers asleep the producer wakes one of them per
// frame, and each woken one must pass the wake on. Four lossless consumers
// and an observer sleep with a futex timeout far longer than the test and
// no deadline (-t -1): one that never passed the wake on would leave the
// others asleep after the last frame, and the hang guard would fail the
// test. Every consumer gets every frame.
func TestChainedWakes(t *testing.T) {
	b := cBuild(t)
	geo := frame.Packed(64, 32, frame.Mono8)
	r := newRing(t, geo, ringbuf.Config{})
	// Frames far apart: each finds every consumer asleep again, so one
	// not woken for it would still be asleep after the last.
	r.interval = 50 * time.Millisecond
	const n = 12
	var procs []*proc
	for i := 0; i < 4; i++ {
		procs = append(procs, startC(t, b, "frcat", "-n", strconv.Itoa(n), "-m", "lossless", "-N", fmt.Sprintf("chain-%d", i),
			"-i", "-w", "600000", "-t", "-1", r.p.Path()))
	}
	procs = append(procs, startC(t, b, "frcat", "-n", "5", "-O", "-i", "-w", "600000", r.p.Path()))
	for _, pr := range procs[:4] {
		pr.expect(t, "waiting")
	}
	// Exactly n frames: after the last, nothing more comes to wake a
	// consumer the chain missed.
	for i := 0; i < n; i++ {
		if err := r.publish(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(r.interval)
	}
	for i, pr := range procs {
		pr.expect(t, "done")
		if code := pr.finish(t); code != 0 {
			t.Fatalf("frcat %d exited %d\nstderr:\n%s", i, code, pr.errText())
		}
		if i < 4 {
			checkOutput(t, pr.all, "lossless", "hold", n, geo)
		}
	}
}

// A C consumer killed with SIGKILL while it holds a frame: the producer
// reclaims exactly that hold and reuses the slot.
func TestFrcatKilledHolding(t *testing.T) {
	b := cBuild(t)
	r := newRing(t, frame.Packed(64, 32, frame.Mono8), ringbuf.Config{})
	pr := startC(t, b, "frcat", "-n", "20", "-m", "lossy", "-N", "frcat-killed", "-i", "-K", r.p.Path())
	att := pr.expect(t, "attached")
	entry := num(t, att, "entry")
	r.start()
	h := pr.expect(t, "holding")
	seq, k := num(t, h, "seq"), int(num(t, h, "slot"))
	waitFor(t, "the producer to move on past the held frame", func() bool { return r.p.Published() >= seq+32 })
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
		t.Fatalf("frcat outlived SIGKILL (exit %d)\nstderr:\n%s", code, pr.errText())
	}
	s = waitDetached(t, r.p, pr.cmd.Process.Pid)
	if s.Reclaims != 1 || s.ReclaimedHolds != 1 {
		t.Fatalf("after kill -9: %d reclaims, %d holds reclaimed; want 1 and 1", s.Reclaims, s.ReclaimedHolds)
	}
	waitFor(t, "the freed slot to be reused", func() bool { return r.p.Snapshot().SlotInfo[k].Seq != seq })
}

// A producer that admits only another uid answers "denied"; frcat says so
// and exits 3, and takes no table entry.
func TestFrcatRefused(t *testing.T) {
	b := cBuild(t)
	r := newRing(t, frame.Packed(64, 32, frame.Mono8), ringbuf.Config{AllowUIDs: []int{os.Geteuid() + 1}})
	pr := startC(t, b, "frcat", "-n", "1", r.p.Path())
	if code := pr.finish(t); code != 3 || !strings.Contains(pr.errText(), "FR_ERR_DENIED") {
		t.Fatalf("refused attach: exit %d, stderr:\n%s", code, pr.errText())
	}
	if s := r.p.Snapshot(); len(s.Consumers) != 0 {
		t.Fatalf("a refused consumer is in the table: %+v", s.Consumers)
	}
	pr = startC(t, b, "frcat", "-n", "1", filepath.Join(t.TempDir(), "nothing.sock"))
	if code := pr.finish(t); code != 3 || !strings.Contains(pr.errText(), "FR_ERR_NO_SUCH_RING") {
		t.Fatalf("no such ring: exit %d, stderr:\n%s", code, pr.errText())
	}
}

// The producer is killed with SIGKILL under a lossless C consumer and a new
// one takes over the ring's name: the consumer sees the producer gone,
// attaches to the new one (a new epoch) from its first frame, and every
// frame it gets from either verifies.
func TestFrcatProducerRestart(t *testing.T) {
	b := cBuild(t)
	path := filepath.Join(os.Getenv("FRAMERING_RUNTIME_DIR"), "restart.sock")
	first := testmain.Start(t, roleEnv, "producer", "FR_PATH="+path, "FR_INTERVAL_US=2000")
	epoch1 := first.Next(t)["epoch"].(string)
	pr := startC(t, b, "frcat", "-n", "300", "-m", "lossless", "-N", "restart", "-i", "-R", path)
	if att := pr.expect(t, "attached"); att["epoch"] != epoch1 {
		t.Fatalf("attached to %v, producer epoch %s", att, epoch1)
	}
	for i := 0; i < 50; i++ {
		pr.expect(t, "frame")
	}
	first.Kill9(t)
	second := testmain.Start(t, roleEnv, "producer", "FR_PATH="+path, "FR_INTERVAL_US=2000")
	epoch2 := second.Next(t)["epoch"].(string)
	re := pr.expect(t, "reattached")
	if re["epoch"] != epoch2 || epoch2 == epoch1 {
		t.Fatalf("reattached %v; epochs %s then %s", re, epoch1, epoch2)
	}
	if code := pr.finish(t); code != 0 {
		t.Fatalf("frcat exited %d\nstdout:\n%s\nstderr:\n%s", code, strings.Join(pr.all, "\n"), pr.errText())
	}
	second.Wait(t)
	var before, after, last uint64
	reattached := false
	for _, l := range pr.all {
		f := fields(l)
		switch {
		case strings.HasPrefix(l, "reattached "):
			reattached, last = true, 0
		case strings.HasPrefix(l, "frame "):
			if _, ok := f["ok"]; !ok {
				t.Fatalf("frame not verified: %s", l)
			}
			seq := num(t, f, "seq")
			// Lossless on each producer: every sequence number in order; the
			// new producer's from its first frame still in the ring.
			if last != 0 && seq != last+1 {
				t.Fatalf("frame %d after %d", seq, last)
			}
			last = seq
			if reattached {
				after++
			} else {
				before++
			}
		}
	}
	if before < 50 || after == 0 || before+after != 300 {
		t.Fatalf("%d frames from the first producer, %d from the second", before, after)
	}
}

// Threads: one thread takes frames with fr_next while two others check and
// release its leases and a third reads health, counters and peeks; then the
// main thread shuts the ring down under the sleeping taker and detaches with
// leases outstanding (released afterwards by the workers). Run under ASan
// here and under TSan by make test.
func TestThreads(t *testing.T) {
	b := cBuild(t)
	r := newRing(t, frame.Packed(128, 64, frame.Mono8), ringbuf.Config{})
	r.interval = 200 * time.Microsecond
	pr := startC(t, b, "frtest", "threads", r.p.Path(), "1000")
	pr.expect(t, "attached")
	r.start()
	done := pr.expect(t, "done")
	s := waitDetached(t, r.p, pr.cmd.Process.Pid) // frtest waits for its stdin to close: see TestFrcat
	if code := pr.finish(t); code != 0 {
		t.Fatalf("frtest threads exited %d: %v\nstderr:\n%s", code, done, pr.errText())
	}
	if num(t, done, "bad") != 0 || num(t, done, "delivered") != num(t, done, "released") ||
		num(t, done, "released") < 1000 || done["next_end"] != "FR_ERR_CLOSED" {
		t.Fatalf("threads: %v", done)
	}
	if s.Reclaims != 0 {
		t.Fatalf("the threaded consumer was reclaimed, not detached: %+v", s)
	}
}

// The producer's health as a C consumer sees it (docs/LAYOUT.md 8.4): a
// producer stopped with SIGSTOP is stalled (reported once), resumes by
// itself after SIGCONT, and is gone once killed.
func TestHealthStalledResumedGone(t *testing.T) {
	b := cBuild(t)
	path := filepath.Join(os.Getenv("FRAMERING_RUNTIME_DIR"), "health.sock")
	prod := testmain.Start(t, roleEnv, "producer", "FR_PATH="+path, "FR_INTERVAL_US=5000")
	prod.Next(t)
	pr := startC(t, b, "frtest", "health", path)
	if h := pr.expect(t, "health"); h["state"] != "running" {
		t.Fatalf("a publishing producer: %v", h)
	}
	if err := prod.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	got := pr.expectAll(t, "health", "event stalled")
	if h := got["health"]; h["state"] != "stalled" || num(t, h, "age_ms") < 300 {
		t.Fatalf("a stopped producer: %v", h)
	}
	if err := prod.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if h := pr.expectAll(t, "health", "event resumed")["health"]; h["state"] != "running" {
		t.Fatalf("a resumed producer: %v", h)
	}
	prod.Kill9(t)
	if h := pr.expect(t, "health"); h["state"] != "gone" {
		t.Fatalf("a killed producer: %v", h)
	}
	if e := pr.expect(t, "end"); e["rc"] != "FR_ERR_PRODUCER_GONE" {
		t.Fatalf("waiting on a killed producer: %v", e)
	}
	if code := pr.finish(t); code != 0 {
		t.Fatalf("frtest health exited %d\nstderr:\n%s", code, pr.errText())
	}
}
