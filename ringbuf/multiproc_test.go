package ringbuf_test

// Multi-process tests: the test binary re-executes itself with
// FRAMERING_TEST_ROLE set, and the child runs one role (producer, consumer,
// holder, writer) against a real ring, reporting JSON lines on stdout.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/loss"

	"github.com/framering/framering/clock"

	"github.com/framering/framering/internal/testmain"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

const roleEnv = "FRAMERING_TEST_ROLE"

func env(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

type report map[string]any

func emit(r report) {
	b, _ := json.Marshal(r)
	os.Stdout.Write(append(b, '\n'))
}

var testGeometry = frame.Packed(256, 128, frame.Mono8)

func runChild(role string) error {
	ctx := context.Background()
	path := os.Getenv("FR_PATH")
	switch role {
	case "producer":
		return childProducer(path)
	case "consumer":
		mode := ringbuf.Lossy
		if os.Getenv("FR_MODE") == "lossless" {
			mode = ringbuf.Lossless
		}
		r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: path, Consumer: os.Getenv("FR_NAME"), Mode: mode})
		if err != nil {
			return err
		}
		emit(report{"attached": true})
		delay := time.Duration(env("FR_DELAY_US", 0)) * time.Microsecond
		var seqs []uint64
		bad := 0
		var end error
		for {
			l, err := r.Next(ctx)
			if err != nil {
				end = err
				break
			}
			st, verr := frame.Verify(l.Bytes())
			if verr != nil || st.FrameID != l.Meta().Seq {
				bad++
				emit(report{"badframe": l.Meta().Seq}) // at once: we may be killed before the summary
			}
			seqs = append(seqs, l.Meta().Seq)
			if delay > 0 {
				time.Sleep(delay)
			}
			l.Release()
		}
		st := r.Stats()
		emit(report{"seqs": seqs, "bad": bad, "delivered": st.Delivered, "skipped": st.Skipped,
			"missed": st.Missed, "cursor": st.Cursor, "end": end.Error()})
		return r.Close()
	case "polite":
		// Attach, detach cleanly and exit at once: the producer may notice
		// the exit (pidfd) before it reads the bye.
		r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: path, Consumer: "polite"})
		if err != nil {
			return err
		}
		return r.Close()
	case "pinger":
		return childPinger(path)
	case "hoarder":
		return childHoarder(path)
	case "holder":
		r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: path, Consumer: "holder", Mode: ringbuf.Lossless})
		if err != nil {
			return err
		}
		n := env("FR_HOLD", 3)
		for i := 0; i < n; i++ {
			if _, err := r.Next(ctx); err != nil { // never released
				return err
			}
		}
		emit(report{"holding": n})
		select {} // until kill -9
	case "writer":
		r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: path, Consumer: "writer"})
		if err != nil {
			return err
		}
		l, err := r.Next(ctx)
		if err != nil {
			return err
		}
		debug.SetPanicOnFault(true)
		func() {
			defer func() { emit(report{"fault": fmt.Sprint(recover())}) }()
			l.Bytes()[0] = 0xAA // read-only shared memory: must fault
			emit(report{"wrote": true})
		}()
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}

// childProducer publishes FR_FRAMES pattern frames (0: forever) every
// FR_INTERVAL_US, after FR_WAIT consumers attached, then closes the ring
// when stdin reaches EOF.
func childProducer(path string) error {
	p, err := ringbuf.Create(ringbuf.Config{SocketPath: path, Slots: env("FR_SLOTS", 8), SlotSize: testGeometry.Size(),
		EvictAfter: time.Hour})
	if err != nil {
		return err
	}
	defer p.Close()
	gen, err := frame.NewGenerator(testGeometry, true)
	if err != nil {
		return err
	}
	emit(report{"epoch": strconv.FormatUint(p.Epoch(), 16), "pid": os.Getpid()})
	for len(p.Snapshot().Consumers) < env("FR_WAIT", 0) {
		time.Sleep(time.Millisecond)
	}
	frames := env("FR_FRAMES", 0)
	interval := time.Duration(env("FR_INTERVAL_US", 0)) * time.Microsecond
	var dropped uint64
	next := time.Now()
	for i := 0; frames == 0 || i < frames; i++ {
		if interval > 0 {
			next = next.Add(interval)
			time.Sleep(time.Until(next))
		}
		s, err := p.Acquire()
		if errors.Is(err, ringbuf.ErrNoFreeSlot) {
			p.RecordDrops(loss.Blocked, 1)
			dropped++
			continue
		} else if err != nil {
			return err
		}
		seq := p.Published() + 1 // the sequence Publish will assign
		if err := gen.Fill(s.Bytes(), seq); err != nil {
			return err
		}
		g := testGeometry
		if _, err := p.Publish(s, ringbuf.Meta{FrameID: uint64(i), Timestamp: time.Now().UnixNano(), Width: uint32(g.Width),
			Height: uint32(g.Height), Stride: uint32(g.Stride), Format: g.Format, Length: uint64(g.Size())}); err != nil {
			return err
		}
	}
	emit(report{"published": p.Published(), "dropped": dropped, "offered": frames})
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// start re-executes this test binary in role.
func start(t *testing.T, role string, envs ...string) *testmain.Child {
	return testmain.Start(t, roleEnv, role, envs...)
}

func sockPath(t *testing.T) string {
	return fmt.Sprintf("%s/%s.sock", os.Getenv("FRAMERING_RUNTIME_DIR"), t.Name())
}

func u64s(v any) []uint64 {
	var out []uint64
	if a, ok := v.([]any); ok {
		for _, x := range a {
			out = append(out, uint64(x.(float64)))
		}
	}
	return out
}

func num(r report, k string) uint64 { f, _ := r[k].(float64); return uint64(f) }

// A producer and two consumers in three processes. Every frame carries a
// checksum of its bytes and its sequence number (frame.Verify, FrameID =
// seq); every frame a consumer accepts must verify. The lossless consumer
// sees every sequence number; the lossy one accounts for every frame.
func TestProducerAndTwoConsumers(t *testing.T) {
	path := "FR_PATH=" + sockPath(t)
	const frames = 3000
	prod := start(t, "producer", path, "FR_FRAMES=3000", "FR_INTERVAL_US=100", "FR_WAIT=2", "FR_SLOTS=8")
	prod.Next(t) // ring is up
	lossless := start(t, "consumer", path, "FR_NAME=lossless", "FR_MODE=lossless")
	lossy := start(t, "consumer", path, "FR_NAME=lossy", "FR_MODE=lossy", "FR_DELAY_US=2000")
	lossless.Next(t)
	lossy.Next(t)
	pr := prod.Next(t)
	published, dropped := num(pr, "published"), num(pr, "dropped")
	if published+dropped != frames {
		t.Fatalf("producer: %d published + %d dropped != %d offered", published, dropped, frames)
	}
	prod.Wait(t) // closes the ring: consumers drain and stop with ErrClosed

	ll := lossless.Next(t)
	seqs := u64s(ll["seqs"])
	if num(ll, "bad") != 0 {
		t.Fatalf("lossless consumer accepted %v corrupt frames", ll["bad"])
	}
	if uint64(len(seqs)) != published {
		t.Fatalf("lossless consumer got %d frames of %d published (end: %v)", len(seqs), published, ll["end"])
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("lossless consumer: frame %d has seq %d", i, s)
		}
	}
	ly := lossy.Next(t)
	if num(ly, "bad") != 0 {
		t.Fatalf("lossy consumer accepted %v corrupt frames", ly["bad"])
	}
	d, s, m := num(ly, "delivered"), num(ly, "skipped"), num(ly, "missed")
	if d == 0 || d+s+m != published || num(ly, "cursor") != published+1 {
		t.Fatalf("lossy consumer: delivered %d + skipped %d + missed %d != published %d", d, s, m, published)
	}
	lossless.Wait(t)
	lossy.Wait(t)
	t.Logf("published %d, dropped at producer %d; lossy delivered %d skipped %d missed %d", published, dropped, d, s, m)
}

// A producer much faster than an optimistic reader with two slots: many
// reads are torn and rejected; every accepted read verifies.
func TestTornReadStress(t *testing.T) {
	path := sockPath(t)
	prod := start(t, "producer", "FR_PATH="+path, "FR_SLOTS=2")
	prod.Next(t)
	r := attachPath(t, path, ringbuf.Options{Role: ringbuf.RoleObserver})
	var accepted, rejected, bad int
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) || accepted == 0 {
		seq := r.Published()
		var verr error
		var id uint64
		err := r.Peek(seq, func(f ringbuf.Frame) {
			var st frame.Stamp
			st, verr = frame.Verify(f.Data)
			id = st.FrameID
		})
		switch {
		case err == nil:
			accepted++
			if verr != nil || id != seq {
				bad++
			}
		case errors.Is(err, ringbuf.ErrOverwritten), errors.Is(err, ringbuf.ErrNotPublished):
			rejected++
		default:
			t.Fatal(err)
		}
	}
	t.Logf("torn-read stress: %d reads accepted (all verified), %d rejected as overwritten", accepted, rejected)
	if bad != 0 {
		t.Fatalf("%d accepted reads failed verification: a torn frame was taken for a good one", bad)
	}
}

func attachPath(t *testing.T, path string, opts ringbuf.Options) *ringbuf.Reader {
	t.Helper()
	opts.SocketPath = path
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := ringbuf.Attach(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// kill -9 a consumer holding leases: the producer reclaims every hold and
// every slot becomes free; a new consumer attaches in its place.
func TestKillConsumerHoldingLeases(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 4, HoldQuota: 3, EvictAfter: time.Hour})
	h := start(t, "holder", "FR_PATH="+p.Path(), "FR_HOLD=3")
	waitFor(t, "holder to attach", func() bool { return len(p.Snapshot().Consumers) == 1 })
	for i := 1; i <= 3; i++ {
		publish(t, p, byte(i))
	}
	h.Next(t)
	snap := p.Snapshot()
	held := 0
	for _, s := range snap.SlotInfo {
		if s.Holders != 0 {
			held++
		}
	}
	if held != 3 {
		t.Fatalf("%d slots held, want 3", held)
	}
	// A kernel observer's report about a live process changes nothing: the
	// process's own pidfd must confirm it is exiting.
	if n := p.ConsumerExited(h.Cmd.Process.Pid); n != 0 {
		t.Fatalf("ConsumerExited reclaimed %d consumers of a live process", n)
	}
	if len(p.Snapshot().Consumers) != 1 {
		t.Fatal("live consumer reclaimed")
	}
	if err := h.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the producer to reclaim the dead consumer", func() bool {
		s := p.Snapshot()
		return s.Reclaims == 1 && len(s.Consumers) == 0
	})
	snap = p.Snapshot()
	for _, s := range snap.SlotInfo {
		if s.Holders != 0 {
			t.Fatalf("slot %d still held after reclaim: %+v", s.Index, s)
		}
	}
	if snap.ReclaimedHolds != 3 {
		t.Fatalf("reclaimed %d holds, want 3", snap.ReclaimedHolds)
	}
	// Every slot is free again: four acquisitions succeed.
	var slots []ringbuf.Slot
	for i := 0; i < 4; i++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatalf("slot %d not free after reclaim: %v", i, err)
		}
		slots = append(slots, s)
	}
	for _, s := range slots {
		p.Abort(s)
	}
	r := attach(t, p, ringbuf.Options{Consumer: "successor", Mode: ringbuf.Lossless})
	if r.Info().Entry != 0 {
		t.Fatalf("successor got entry %d, want the reclaimed entry 0", r.Info().Entry)
	}
	publish(t, p, 9)
	l, err := r.Next(testCtx(t))
	if err != nil || l.Bytes()[0] != 9 {
		t.Fatal(err)
	}
	l.Release()
}

// kill -9 the producer: a waiting consumer gets ErrProducerGone promptly; a
// new producer starts on the same path without cleanup, and the consumer
// re-attaches to a new epoch.
func TestKillProducer(t *testing.T) {
	path := sockPath(t)
	prod := start(t, "producer", "FR_PATH="+path, "FR_INTERVAL_US=1000")
	epoch1 := prod.Next(t)["epoch"]
	r := attachPath(t, path, ringbuf.Options{Consumer: "c", Mode: ringbuf.Lossless})
	ctx := testCtx(t)
	l, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	done := make(chan error, 1)
	var killed time.Time
	go func() {
		for {
			l, err := r.Next(ctx)
			if err != nil {
				done <- err
				return
			}
			l.Release()
		}
	}()
	time.Sleep(20 * time.Millisecond)
	killed = time.Now()
	prod.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-done:
		if !errors.Is(err, ringbuf.ErrProducerGone) {
			t.Fatalf("after kill -9 of the producer: %v", err)
		}
		t.Logf("consumer saw the producer gone %v after kill -9", time.Since(killed))
	case <-time.After(30 * time.Second):
		t.Fatal("consumer hangs after the producer died")
	}
	prod.Cmd.Wait()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("expected the stale socket to remain: %v", err)
	}
	prod2 := start(t, "producer", "FR_PATH="+path, "FR_INTERVAL_US=1000")
	epoch2 := prod2.Next(t)["epoch"]
	if epoch1 == epoch2 {
		t.Fatal("new producer has the old epoch")
	}
	r.Close()
	r2 := attachPath(t, path, ringbuf.Options{Consumer: "c", Mode: ringbuf.Lossless})
	if fmt.Sprintf("%x", r2.Info().Epoch) != epoch2 {
		t.Fatalf("re-attached to epoch %x, want %v", r2.Info().Epoch, epoch2)
	}
	l, err = r2.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := frame.Verify(l.Bytes()); err != nil {
		t.Fatal(err)
	}
	l.Release()
}

// A consumer that writes into the data segment faults.
func TestConsumerWriteFaults(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 2})
	w := start(t, "writer", "FR_PATH="+p.Path())
	waitFor(t, "writer to attach", func() bool { return len(p.Snapshot().Consumers) == 1 })
	publish(t, p, 5)
	r := w.Next(t)
	if _, wrote := r["wrote"]; wrote {
		t.Fatal("a consumer wrote into the read-only data segment")
	}
	if f, _ := r["fault"].(string); f == "" || f == "<nil>" {
		t.Fatalf("no fault observed: %v", r)
	}
	t.Logf("consumer write refused: %v", r["fault"])
	w.Wait(t)
	// The frame is intact.
	r2 := attach(t, p, ringbuf.Options{Role: ringbuf.RoleObserver})
	if err := r2.Peek(1, func(f ringbuf.Frame) {
		if f.Data[0] != 5 {
			t.Errorf("frame changed to %#x", f.Data[0])
		}
	}); err != nil {
		t.Fatal(err)
	}
}

// childPinger publishes FR_FRAMES small frames every 200µs once a consumer
// is attached, each stamped with CLOCK_MONOTONIC just before Publish.
func childPinger(path string) error {
	p, err := ringbuf.Create(ringbuf.Config{SocketPath: path, Slots: 8, SlotSize: 4096})
	if err != nil {
		return err
	}
	defer p.Close()
	for len(p.Snapshot().Consumers) == 0 {
		time.Sleep(time.Millisecond)
	}
	next := time.Now()
	for target := uint64(env("FR_FRAMES", 1000)); p.Published() < target; {
		next = next.Add(200 * time.Microsecond)
		for time.Now().Before(next) {
		}
		s, err := p.Acquire()
		if err != nil {
			continue
		}
		if _, err := p.Publish(s, ringbuf.Meta{Length: 64, Timestamp: clock.Nanos()}); err != nil {
			return err
		}
	}
	select {} // until the benchmark kills us
}
