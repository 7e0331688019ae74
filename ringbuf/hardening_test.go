package ringbuf_test

// No consumer can stall the producer (docs/LAYOUT.md 11.4), with real
// processes where the behaviour crosses them: the hold quota, eviction for
// holds, revoked leases and the torn read they expose; and a producer that
// stops is noticed as stalled, not gone.

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// childHoarder is a consumer that ignores the library's quota: it borrows
// one frame the proper way, then sets its holder bit on every slot, and
// never releases anything. It reports its eviction and what its lease's
// check says once the producer has reused the slot (the torn read a
// revoked lease would otherwise let through).
func childHoarder(path string) error {
	ctx := context.Background()
	mode := ringbuf.Lossy
	if os.Getenv("FR_MODE") == "lossless" {
		mode = ringbuf.Lossless
	}
	r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: path, Consumer: "hoarder", Mode: mode})
	if err != nil {
		return err
	}
	l, err := r.Next(ctx)
	if err != nil {
		return err
	}
	want := l.Meta().Seq
	r.HoldAllRaw()
	emit(report{"hoarding": want})
	// Keep taking frames (never releasing) until the producer evicts us.
	var end error
	for end == nil {
		var l2 ringbuf.Lease
		if l2, end = r.Next(ctx); end == nil {
			_ = l2 // hoarded
		}
	}
	// Wait until the producer has written over our first frame's slot: a
	// read of the lease now is torn, and the check must say so.
	deadline := time.Now().Add(30 * time.Second)
	var check error
	for time.Now().Before(deadline) {
		if check = l.Check(); errors.Is(check, ringbuf.ErrOverwritten) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	st, verr := frame.Verify(l.Bytes())
	stale := verr != nil || st.FrameID != want
	emit(report{"end": end.Error(), "evicted": errors.Is(end, ringbuf.ErrEvicted), "check": check.Error(),
		"revoked": errors.Is(check, ringbuf.ErrRevoked), "overwritten": errors.Is(check, ringbuf.ErrOverwritten),
		"bytes_changed": stale, "release": errString(l.Release())})
	io := make([]byte, 1)
	os.Stdin.Read(io) // until the test is done with us
	return r.Close()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// pace publishes pattern frames every interval until stop, counting
// frames that found no slot as blocked, as the producer package does.
func pace(t *testing.T, p *ringbuf.Producer, interval time.Duration, stop <-chan struct{}) *sync.WaitGroup {
	t.Helper()
	gen, err := frame.NewGenerator(testGeometry, false)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			s, err := p.Acquire()
			if errors.Is(err, ringbuf.ErrNoFreeSlot) {
				p.RecordDrops(loss.Blocked, 1)
				continue
			}
			if err != nil {
				t.Error(err)
				return
			}
			seq := p.Published() + 1
			gen.Fill(s.Bytes(), seq)
			g := testGeometry
			if _, err := p.Publish(s, ringbuf.Meta{FrameID: seq, Width: uint32(g.Width), Height: uint32(g.Height),
				Stride: uint32(g.Stride), Format: g.Format, Length: uint64(g.Size())}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	return &wg
}

// A consumer process that ignores the quota and holds every slot is
// evicted at once (reason quota), lossy or lossless; the producer drops at
// most the one frame that may race its reaching the quota, none after; a well-behaved consumer in another process goes on
// receiving frames; and the hoarder's revoked lease reports the torn read.
func TestHoarderEvictedOthersUnaffected(t *testing.T) {
	for _, mode := range []string{"lossy", "lossless"} {
		t.Run(mode, func(t *testing.T) {
			p := newRing(t, ringbuf.Config{Slots: 8, SlotSize: testGeometry.Size(), EvictAfter: time.Hour})
			good := start(t, "consumer", "FR_PATH="+p.Path(), "FR_NAME=good")
			if r := good.Next(t); r["attached"] != true {
				t.Fatalf("good consumer: %v", r)
			}
			stop := make(chan struct{})
			wg := pace(t, p, time.Millisecond, stop)
			defer func() { close(stop); wg.Wait() }()
			h := start(t, "hoarder", "FR_PATH="+p.Path(), "FR_MODE="+mode)
			if r := h.Next(t); r["hoarding"] == nil {
				t.Fatalf("hoarder: %v", r)
			}
			rep := h.Next(t)
			if rep["evicted"] != true || rep["revoked"] != true || rep["overwritten"] != true || rep["bytes_changed"] != true ||
				!strings.Contains(rep["release"].(string), "revoked") {
				t.Fatalf("hoarder after eviction: %v", rep)
			}
			snap := p.Snapshot()
			var hc *ringbuf.ConsumerInfo
			for i := range snap.Consumers {
				if snap.Consumers[i].Name == "hoarder" {
					hc = &snap.Consumers[i]
				}
			}
			if hc == nil || hc.State != "evicted" || hc.EvictReason != ringbuf.EvictQuota.String() || hc.RevokedHolds == 0 || hc.RevokedSeen != 1 {
				t.Fatalf("hoarder's entry: %+v", hc)
			}
			if snap.Evictions != 1 {
				t.Fatalf("evictions %d, want 1", snap.Evictions)
			}
			// Before its eviction the hoarder may hold exactly its quota
			// for a moment (its raw holds go on one by one), and a frame
			// may then find every slot held: not a stall. Once it is
			// evicted, no frame is dropped for want of a slot.
			blocked := snap.Drops[loss.Blocked]
			if blocked > 1 {
				t.Fatalf("the producer dropped %d frames for want of a slot before the hoarder's eviction", blocked)
			}
			// The good consumer keeps receiving: frames published well after
			// the eviction reach it.
			after := p.Published()
			waitFor(t, "frames after the eviction", func() bool { return p.Published() > after+50 })
			if n := p.Snapshot().Drops[loss.Blocked]; n != blocked {
				t.Fatalf("the producer dropped %d frames for want of a slot after the hoarder's eviction", n-blocked)
			}
			close(stop)
			wg.Wait()
			stop = make(chan struct{})
			wg = &sync.WaitGroup{}
			p.Close()
			res := good.Next(t)
			seqs, _ := res["seqs"].([]any)
			if len(seqs) == 0 || uint64(seqs[len(seqs)-1].(float64)) < after+50 || res["bad"].(float64) != 0 {
				t.Fatalf("good consumer after the eviction at %d: last of %d frames %v, bad %v", after, len(seqs), seqs[len(seqs)-1], res["bad"])
			}
			h.Stdin.Close()
		})
	}
}

// Two consumers, each within the quota, together hold every slot: the
// producer blames the one holding the oldest frame, evicts it after
// EvictAfter (reason holds), revokes its holds, and publishes again. The
// other consumer's leases are untouched.
func TestHoldsOfSeveralEvictOldestHolder(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 4, HoldQuota: 2, EvictAfter: 30 * time.Millisecond})
	first := attach(t, p, ringbuf.Options{Consumer: "first"})
	second := attach(t, p, ringbuf.Options{Consumer: "second"})
	for i := 1; i <= 4; i++ {
		publish(t, p, byte(i))
	}
	var held []ringbuf.Lease // first's two, then second's two
	for _, h := range []struct {
		seq uint64
		r   *ringbuf.Reader
	}{{1, first}, {2, first}, {3, second}, {4, second}} {
		l, err := h.r.Borrow(h.seq)
		if err != nil {
			t.Fatal(h.seq, err)
		}
		held = append(held, l)
	}
	// Released at the end (revoked ones report ErrRevoked): a Reader with
	// leases out keeps its mappings after Close, which the fd check of
	// TestMain would take for a leak.
	defer func() {
		for _, l := range held {
			l.Release()
		}
	}()
	if _, err := first.Borrow(3); !errors.Is(err, ringbuf.ErrTooManyHeld) {
		t.Fatalf("a third slot for a consumer with quota 2: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second) // hang guard
	for {
		s, err := p.Acquire()
		if err == nil {
			p.Abort(s)
			break
		}
		if e, ok := p.Blamed(); !ok || e != first.Info().Entry {
			t.Fatalf("blamed %d (%v), want the oldest holder %d", e, ok, first.Info().Entry)
		}
		if time.Now().After(deadline) {
			t.Fatal("never evicted")
		}
		time.Sleep(time.Millisecond)
	}
	snap := p.Snapshot()
	for _, c := range snap.Consumers {
		switch c.Name {
		case "first":
			if c.State != "evicted" || c.EvictReason != ringbuf.EvictHolds.String() || c.RevokedHolds != 2 {
				t.Errorf("oldest holder: %+v", c)
			}
		case "second":
			if c.State != "active" {
				t.Errorf("other holder: %+v", c)
			}
		}
	}
	for _, l := range held[2:] { // second's: intact and held
		if err := l.Check(); err != nil {
			t.Errorf("other holder's lease: %v", err)
		}
	}
	if _, err := first.Next(testCtx(t)); !errors.Is(err, ringbuf.ErrEvicted) {
		t.Fatalf("evicted consumer's Next: %v", err)
	}
}

// A well-behaved consumer's borrow past the ring's quota is refused before
// it sets a bit, so the producer never counts it over.
func TestQuotaRefusedBeforeTheHold(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 4, HoldQuota: 1})
	r := attach(t, p, ringbuf.Options{Consumer: "c"})
	publish(t, p, 1)
	publish(t, p, 2)
	a, err := r.Borrow(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Borrow(2); !errors.Is(err, ringbuf.ErrTooManyHeld) {
		t.Fatalf("second slot: %v", err)
	}
	b, err := r.Borrow(1) // the same slot again: no new hold
	if err != nil {
		t.Fatalf("a second lease on a held slot: %v", err)
	}
	holders := 0
	for _, s := range p.Snapshot().SlotInfo {
		if s.Holders != 0 {
			holders++
		}
	}
	if holders != 1 {
		t.Fatalf("%d slots held, quota 1", holders)
	}
	a.Release()
	b.Release()
}

// A producer that is stopped (SIGSTOP) keeps its socket: its consumer does
// not see it gone, but stalled, once the heartbeat is older than its
// bound; Inspect reads its state from shared memory though it does not
// answer; and everything resumes when it continues.
func TestStoppedProducerIsStalledNotGone(t *testing.T) {
	path := sockPath(t)
	prod := start(t, "producer", "FR_PATH="+path, "FR_FRAMES=0", "FR_INTERVAL_US=2000")
	first := prod.Next(t)
	pid := int(first["pid"].(float64))
	r := attachPath(t, path, ringbuf.Options{Consumer: "watcher", StallAfter: 200 * time.Millisecond})
	ctx := testCtx(t)
	l, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if h := r.Health(); h.State != ringbuf.ProducerRunning {
		t.Fatalf("running producer: %+v", h)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	// Next waits, and stays waiting; its health turns stalled.
	var nexts atomic.Int64
	go func() {
		for {
			l, err := r.Next(ctx)
			if err != nil {
				return
			}
			nexts.Add(1)
			l.Release()
		}
	}()
	waitFor(t, "the stopped producer to be judged stalled", func() bool { return r.Health().State == ringbuf.ProducerStalled })
	if h := r.Health(); h.Source != ringbuf.SourceAcquiring {
		t.Fatalf("stalled producer's source state: %+v", h)
	}
	// An attach cannot get an answer; Inspect reads the shared memory.
	actx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = ringbuf.Attach(actx, ringbuf.Options{SocketPath: path, Role: ringbuf.RoleObserver})
	cancel()
	if !errors.Is(err, ringbuf.ErrNotResponding) {
		t.Fatalf("attach to a stopped producer: %v", err)
	}
	snap, err := ringbuf.Inspect(context.Background(), "", path)
	if err != nil {
		t.Fatalf("inspect a stopped producer: %v", err)
	}
	if snap.ProducerPid != pid || snap.State != "running" || snap.HeartbeatAge < 200*time.Millisecond || len(snap.Consumers) != 1 {
		t.Fatalf("inspected %+v", snap)
	}
	n := nexts.Load()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "frames after SIGCONT", func() bool { return nexts.Load() > n+5 })
	waitFor(t, "the health to recover", func() bool { return r.Health().State == ringbuf.ProducerRunning })
}

// A source that is legitimately idle (a camera waiting for its trigger)
// keeps the heartbeat going and says it waits: not a stall, however long
// no frame comes.
func TestIdleSourceIsWaitingNotStalled(t *testing.T) {
	p := newRing(t, ringbuf.Config{HeartbeatPeriod: 10 * time.Millisecond})
	r := attach(t, p, ringbuf.Options{Consumer: "c", StallAfter: 50 * time.Millisecond})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the acquisition loop, its source idle: it beats every period
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				p.Beat(ringbuf.SourceWaiting)
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // four stall bounds without a frame
	if h := r.Health(); h.State != ringbuf.ProducerWaiting || h.Source != ringbuf.SourceWaiting {
		t.Fatalf("idle source: %+v", h)
	}
	close(stop)
	<-done
	waitFor(t, "a stall once the beat stops", func() bool { return r.Health().State == ringbuf.ProducerStalled })
}
