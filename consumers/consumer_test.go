package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/consumers"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

type testRing struct {
	p   *ringbuf.Producer
	gen *frame.Generator
}

var ringSeq int

func sockPath(t *testing.T) string {
	ringSeq++
	return filepath.Join(os.Getenv("FRAMERING_RUNTIME_DIR"), fmt.Sprintf("c%d.sock", ringSeq))
}

func newRing(t *testing.T, path string, cfg ringbuf.Config) *testRing {
	t.Helper()
	cfg.SocketPath = path
	if cfg.SlotSize == 0 {
		cfg.SlotSize = testGeometry.Size()
	}
	if cfg.Slots == 0 {
		cfg.Slots = 4
	}
	p, err := ringbuf.Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	gen, err := frame.NewGenerator(testGeometry, true)
	if err != nil {
		t.Fatal(err)
	}
	return &testRing{p: p, gen: gen}
}

func (r *testRing) publish(t *testing.T) uint64 {
	t.Helper()
	if err := publishPattern(r.p, r.gen); err != nil {
		t.Fatal(err)
	}
	return r.p.Published()
}

func attach(t *testing.T, opts consumers.Options) *consumers.Consumer {
	t.Helper()
	c, err := consumers.Attach(testCtx(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// consumerInfo finds a consumer in the ring's table by name.
func consumerInfo(t *testing.T, p *ringbuf.Producer, name string) ringbuf.ConsumerInfo {
	t.Helper()
	for _, ci := range p.Snapshot().Consumers {
		if ci.Name == name {
			return ci
		}
	}
	t.Fatalf("no consumer %q in the table", name)
	return ringbuf.ConsumerInfo{}
}

func heldSlots(p *ringbuf.Producer) int {
	n := 0
	for _, s := range p.Snapshot().SlotInfo {
		if s.Holders != 0 {
			n++
		}
	}
	return n
}

type seen struct {
	meta  consumers.Meta
	sum   uint64
	epoch uint64
}

// The same frames reach a zero-copy and a safe-copy consumer, with the same
// metadata and the same bytes; each verifies against its stamp.
func TestZeroCopyAndSafeCopyAgree(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{Slots: 8})
	zc := attach(t, consumers.Options{SocketPath: path, Name: "zero", Mode: consumers.Lossless})
	sc := attach(t, consumers.Options{SocketPath: path, Name: "safe", Mode: consumers.Lossless, Copy: true})
	const n = 40
	collect := func(c *consumers.Consumer, out *[]seen, wg *sync.WaitGroup) {
		defer wg.Done()
		for f := range c.Frames(testCtx(t)) {
			st, err := frame.Verify(f.Bytes())
			if err != nil || st.FrameID != f.Meta().Seq {
				t.Errorf("frame %d: stamp %+v, %v", f.Meta().Seq, st, err)
			}
			*out = append(*out, seen{meta: f.Meta(), sum: frame.Sum64(0, f.Bytes()), epoch: f.Epoch()})
			if len(*out) == n {
				break
			}
		}
	}
	var a, b []seen
	var wg sync.WaitGroup
	wg.Add(2)
	go collect(zc, &a, &wg)
	go collect(sc, &b, &wg)
	for i := 0; i < n; {
		// Lossless consumers pin the slots they have not passed: when
		// none is free, wait for them to move on.
		if err := publishPattern(r.p, r.gen); errors.Is(err, ringbuf.ErrNoFreeSlot) {
			time.Sleep(100 * time.Microsecond)
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		i++
	}
	wg.Wait()
	if len(a) != n || len(b) != n {
		t.Fatalf("zero-copy got %d frames, safe-copy %d, want %d", len(a), len(b), n)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("frame %d differs:\nzero-copy %+v\nsafe-copy %+v", i, a[i], b[i])
		}
		if a[i].meta.Seq != uint64(i+1) || a[i].epoch != r.p.Epoch() {
			t.Fatalf("frame %d: seq %d epoch %x, want %d %x", i, a[i].meta.Seq, a[i].epoch, i+1, r.p.Epoch())
		}
	}
	for _, c := range []*consumers.Consumer{zc, sc} {
		if err := c.Err(); err != nil {
			t.Fatal(err)
		}
		if st := c.Stats(); st.Delivered != n || st.Skipped != 0 || st.Missed != 0 || st.Kept != 0 {
			t.Fatalf("stats %+v", st)
		}
	}
	if heldSlots(r.p) != 0 {
		t.Fatal("slots still held after both loops ended")
	}
}

// A kept frame holds its slot and keeps its bytes while later frames flow
// through the other slots; Release frees it.
func TestKeepHoldsSlot(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{Slots: 4})
	c := attach(t, consumers.Options{SocketPath: path, Name: "keeper"})
	r.publish(t)
	var kept *consumers.Frame
	var keptSum uint64
	later := 0
	for f := range c.Frames(testCtx(t)) {
		if kept == nil {
			kept = f.Keep()
			if f.Keep() != kept || kept.Keep() != kept {
				t.Fatal("Keep returned different handles for one frame")
			}
			keptSum = frame.Sum64(0, kept.Bytes())
		} else {
			later++
			if f == kept {
				t.Fatal("the loop yielded the kept handle")
			}
		}
		if later == 20 {
			break
		}
		// Many frames go by; the producer must never pick the held slot.
		for i := 0; i < 3; i++ {
			r.publish(t)
		}
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if kept.Meta().Seq != 1 || frame.Sum64(0, kept.Bytes()) != keptSum {
		t.Fatalf("kept frame changed: seq %d", kept.Meta().Seq)
	}
	if st, err := frame.Verify(kept.Bytes()); err != nil || st.FrameID != 1 {
		t.Fatalf("kept frame no longer verifies: %v", err)
	}
	if c.Stats().Kept != 1 || heldSlots(r.p) != 1 || consumerInfo(t, r.p, "keeper").Held != 1 {
		t.Fatalf("kept %d, held slots %d", c.Stats().Kept, heldSlots(r.p))
	}
	if err := kept.Release(); err != nil {
		t.Fatal(err)
	}
	if err := kept.Release(); !errors.Is(err, consumers.ErrReleased) {
		t.Fatalf("second Release: %v", err)
	}
	if kept.Bytes() != nil || kept.Meta().Seq != 1 {
		t.Fatal("a released frame still has bytes, or lost its metadata")
	}
	if c.Stats().Kept != 0 || heldSlots(r.p) != 0 {
		t.Fatal("slot still held after Release")
	}
}

// Keep in safe-copy mode: the frame is the caller's; no slot is held.
func TestSafeCopyOwnership(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{Slots: 2})
	c := attach(t, consumers.Options{SocketPath: path, Name: "safe", Copy: true, Mode: consumers.Lossless})
	r.publish(t)
	var frames []*consumers.Frame
	var data [][]byte
	var kept *consumers.Frame
	for f := range c.Frames(testCtx(t)) {
		if heldSlots(r.p) != 0 {
			t.Fatal("safe-copy frame holds its slot")
		}
		if kept == nil {
			kept = f.Keep()
		}
		frames = append(frames, f) // allowed in safe-copy mode
		data = append(data, f.Bytes())
		if len(frames) == 6 {
			break
		}
		r.publish(t)
	}
	for i, b := range data {
		st, err := frame.Verify(b)
		if err != nil || st.FrameID != uint64(i+1) || frames[i].Meta().Seq != uint64(i+1) {
			t.Fatalf("copy %d: %+v %v", i, st, err)
		}
	}
	if kept != frames[0] || c.Stats().Kept != 1 {
		t.Fatal("Keep in safe-copy mode returns the frame itself")
	}
	if err := kept.Release(); err != nil || c.Stats().Kept != 0 {
		t.Fatal(err)
	}
	if err := frames[1].Release(); !errors.Is(err, consumers.ErrReleased) {
		t.Fatalf("Release of a frame the loop released: %v", err)
	}
	if kept.Bytes() == nil {
		t.Fatal("a safe copy's bytes vanished on Release")
	}
}

// Release inside the loop frees the slot early; the loop's own release is
// then a no-op.
func TestEarlyRelease(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{})
	c := attach(t, consumers.Options{SocketPath: path, Name: "early"})
	r.publish(t)
	for f := range c.Frames(testCtx(t)) {
		if heldSlots(r.p) != 1 {
			t.Fatal("the loop's frame does not hold its slot")
		}
		if err := f.Release(); err != nil {
			t.Fatal(err)
		}
		if heldSlots(r.p) != 0 || f.Bytes() != nil {
			t.Fatal("early Release did not release")
		}
		if k := f.Keep(); k.Bytes() != nil || !errors.Is(k.Release(), consumers.ErrReleased) {
			t.Fatal("Keep of a released frame yielded a live frame")
		}
		break
	}
	if err := c.Err(); err != nil || c.Stats().Kept != 0 {
		t.Fatal(err, c.Stats())
	}
}

// A panic in the loop body releases the frame it was given.
func TestPanicReleasesFrame(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{})
	c := attach(t, consumers.Options{SocketPath: path, Name: "panicky"})
	r.publish(t)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		for range c.Frames(testCtx(t)) {
			panic("boom")
		}
	}()
	if heldSlots(r.p) != 0 {
		t.Fatal("slot still held after a panic in the loop")
	}
}

// Attach with Wait before the producer exists; without Wait it fails at once.
func TestWaitForProducer(t *testing.T) {
	path := sockPath(t)
	if _, err := consumers.Attach(testCtx(t), consumers.Options{SocketPath: path}); !errors.Is(err, consumers.ErrNoSuchRing) {
		t.Fatalf("attach without a producer: %v", err)
	}
	type res struct {
		c   *consumers.Consumer
		err error
	}
	done := make(chan res, 1)
	go func() {
		c, err := consumers.Attach(testCtx(t), consumers.Options{SocketPath: path, Name: "early-bird", Wait: true})
		done <- res{c, err}
	}()
	// Whether or not the attach loop already tried, it must end up with
	// this producer.
	r := newRing(t, path, ringbuf.Config{})
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	c := got.c
	defer c.Close()
	r.publish(t)
	for f := range c.Frames(testCtx(t)) {
		if f.Meta().Seq != 1 || f.Epoch() != r.p.Epoch() {
			t.Fatalf("seq %d epoch %x", f.Meta().Seq, f.Epoch())
		}
		break
	}
	if consumerInfo(t, r.p, "early-bird").Delivered != 1 {
		t.Fatal("consumer table does not show the delivery")
	}
}

// Attach with Wait gives up when its context ends.
func TestWaitGivesUpWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := consumers.Attach(ctx, consumers.Options{SocketPath: sockPath(t), Wait: true})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("attach: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Attach with Wait ignores its context")
	}
}

// Without Reattach, a producer that closes the ring ends Frames with
// ErrClosed, after the frames it published were delivered.
func TestProducerCloseEndsFrames(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{})
	c := attach(t, consumers.Options{SocketPath: path, Name: "ll", Mode: consumers.Lossless})
	for i := 0; i < 3; i++ {
		r.publish(t)
	}
	r.p.Close()
	var seqs []uint64
	for f := range c.Frames(testCtx(t)) {
		seqs = append(seqs, f.Meta().Seq)
	}
	if !errors.Is(c.Err(), consumers.ErrClosed) || len(seqs) != 3 {
		t.Fatalf("frames %v, err %v", seqs, c.Err())
	}
}

// With Reattach, a consumer follows the ring across a producer Close and a
// new Create on the same path: a new epoch, sequence numbers from 1.
func TestReattachAfterClose(t *testing.T) {
	path := sockPath(t)
	r1 := newRing(t, path, ringbuf.Config{})
	c := attach(t, consumers.Options{SocketPath: path, Name: "follower", Mode: consumers.Lossless, Reattach: true})
	for i := 0; i < 2; i++ {
		r1.publish(t)
	}
	var got []seen
	var r2 *testRing
	for f := range c.Frames(testCtx(t)) {
		got = append(got, seen{meta: f.Meta(), epoch: f.Epoch()})
		if len(got) == 2 {
			// Keep a frame of the old epoch across the restart.
			defer func(k *consumers.Frame) {
				if st, err := frame.Verify(k.Bytes()); err != nil || st.FrameID != 2 {
					t.Errorf("frame kept across a producer restart: %v", err)
				}
				k.Release()
			}(f.Keep())
			r1.p.Close()
			r2 = newRing(t, path, ringbuf.Config{})
			// Publish at once, before the consumer has found the new
			// producer: a lossless re-attach starts from the new
			// producer's first frame, so none of these is lost.
			for i := 0; i < 2; i++ {
				if err := publishPattern(r2.p, r2.gen); err != nil {
					t.Fatal(err)
				}
			}
		}
		if len(got) == 4 {
			break
		}
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d frames", len(got))
	}
	e1, e2 := r1.p.Epoch(), r2.p.Epoch()
	want := []seen{{meta: consumers.Meta{Seq: 1}, epoch: e1}, {meta: consumers.Meta{Seq: 2}, epoch: e1},
		{meta: consumers.Meta{Seq: 1}, epoch: e2}, {meta: consumers.Meta{Seq: 2}, epoch: e2}}
	for i := range got {
		if got[i].meta.Seq != want[i].meta.Seq || got[i].epoch != want[i].epoch {
			t.Fatalf("frame %d: seq %d epoch %x, want seq %d epoch %x", i, got[i].meta.Seq, got[i].epoch,
				want[i].meta.Seq, want[i].epoch)
		}
	}
	st := c.Stats()
	if st.Reattaches != 1 || st.Epoch != e2 || st.Delivered != 4 || st.LastSeq != 2 {
		t.Fatalf("stats %+v", st)
	}
	if ci := consumerInfo(t, r2.p, "follower"); ci.Mode != "lossless" || ci.Delivered != 2 {
		t.Fatalf("new producer's table: %+v", ci)
	}
}

// stallUntilEvicted keeps acquiring until the producer evicts the consumer
// that pins the ring (every Acquire fails until then).
func stallUntilEvicted(t *testing.T, r *testRing) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // hang guard
	for {
		s, err := r.p.Acquire()
		if err == nil {
			r.p.Abort(s)
			return
		}
		if !errors.Is(err, ringbuf.ErrNoFreeSlot) || time.Now().After(deadline) {
			t.Fatalf("never evicted: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// A lossless consumer that stalls is evicted. Without Reattach, Frames ends
// with ErrEvicted, and the frame it kept is revoked: Check says so (and
// whether the bytes changed), as does Release.
func TestEvictionEndsFrames(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{Slots: 4, EvictAfter: 20 * time.Millisecond})
	c := attach(t, consumers.Options{SocketPath: path, Name: "slow", Mode: consumers.Lossless})
	r.publish(t)
	var kept *consumers.Frame
	for f := range c.Frames(testCtx(t)) {
		if kept != nil {
			t.Fatalf("frame %d delivered after eviction", f.Meta().Seq)
		}
		kept = f.Keep()
		for range 3 {
			r.publish(t) // the ring fills up behind our cursor
		}
		stallUntilEvicted(t, r)
	}
	if !errors.Is(c.Err(), consumers.ErrEvicted) {
		t.Fatalf("Err after eviction: %v", c.Err())
	}
	if err := kept.Check(); !errors.Is(err, consumers.ErrRevoked) {
		t.Fatalf("Check of a kept frame after eviction: %v", err)
	}
	if err := kept.Release(); !errors.Is(err, consumers.ErrRevoked) {
		t.Fatalf("Release of a kept frame after eviction: %v", err)
	}
	if st := c.Stats(); st.Revoked != 1 || st.Kept != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// With Reattach, an evicted consumer attaches again as a new consumer and
// goes on receiving frames; the frames published meanwhile are counted.
func TestEvictedConsumerReattaches(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{Slots: 4, EvictAfter: 20 * time.Millisecond})
	c := attach(t, consumers.Options{SocketPath: path, Name: "slow", Mode: consumers.Lossless, Reattach: true})
	r.publish(t)
	var seqs []uint64
	for f := range c.Frames(testCtx(t)) {
		seqs = append(seqs, f.Meta().Seq)
		if len(seqs) == 1 {
			for range 3 {
				r.publish(t)
			}
			stallUntilEvicted(t, r)
			for range 5 {
				r.publish(t) // published while we re-attach: some are gone
			}
		}
		if len(seqs) == 3 {
			break
		}
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Evictions != 1 || st.Reattaches != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Every sequence number after the first is either delivered or lost to
	// the eviction (the re-attached lossless consumer starts at the oldest
	// frame the ring still holds).
	if seqs[1] != 1+st.LostToEviction+1 {
		t.Fatalf("delivered %v, lost to eviction %d", seqs, st.LostToEviction)
	}
}

// Cancelling the context ends a Frames loop that is waiting for a frame;
// Err is nil. Ranging again continues.
func TestContextCancelStopsFrames(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{})
	c := attach(t, consumers.Options{SocketPath: path, Name: "idle", Spin: time.Microsecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		n := 0
		for range c.Frames(ctx) {
			n++
		}
		done <- n
	}()
	cancel()
	select {
	case n := <-done:
		if n != 0 || c.Err() != nil {
			t.Fatalf("%d frames, err %v", n, c.Err())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Frames ignores its context")
	}
	r.publish(t)
	for f := range c.Frames(testCtx(t)) {
		if f.Meta().Seq != 1 {
			t.Fatalf("seq %d", f.Meta().Seq)
		}
		break
	}
}

// Close from another goroutine ends Frames with ErrClosed.
func TestCloseEndsFrames(t *testing.T) {
	path := sockPath(t)
	newRing(t, path, ringbuf.Config{})
	c := attach(t, consumers.Options{SocketPath: path, Name: "closing"})
	done := make(chan struct{})
	go func() {
		for range c.Frames(context.Background()) {
		}
		close(done)
	}()
	c.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Frames does not end on Close")
	}
	if !errors.Is(c.Err(), consumers.ErrClosed) {
		t.Fatalf("Err after Close: %v", c.Err())
	}
	if _, err := c.Snapshot(); !errors.Is(err, consumers.ErrClosed) {
		t.Fatalf("Snapshot after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// Close while waiting for a new producer ends the wait.
func TestCloseWhileReattaching(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{})
	c := attach(t, consumers.Options{SocketPath: path, Name: "orphan", Reattach: true})
	r.p.Close()
	done := make(chan struct{})
	go func() {
		for range c.Frames(context.Background()) {
		}
		close(done)
	}()
	waitFor(t, "the consumer to notice the producer left", func() bool { return c.Stats().Epoch == 0 })
	if _, err := c.Snapshot(); !errors.Is(err, consumers.ErrProducerGone) {
		t.Fatalf("Snapshot while waiting for a producer: %v", err)
	}
	c.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Frames does not end on Close while waiting for a producer")
	}
	if !errors.Is(c.Err(), consumers.ErrClosed) {
		t.Fatalf("Err: %v", c.Err())
	}
}

// A second range over one Consumer while the first runs is refused.
func TestConcurrentRangeRefused(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{})
	c := attach(t, consumers.Options{SocketPath: path, Name: "busy"})
	r.publish(t)
	for range c.Frames(testCtx(t)) {
		for range c.Frames(testCtx(t)) {
			t.Fatal("nested range yielded a frame")
		}
		if !errors.Is(c.Err(), consumers.ErrBusy) {
			t.Fatalf("nested range: %v", c.Err())
		}
		break
	}
}

// Lossy consumers get the newest frame and count the ones they skipped.
func TestLossySkips(t *testing.T) {
	path := sockPath(t)
	r := newRing(t, path, ringbuf.Config{Slots: 4})
	c := attach(t, consumers.Options{SocketPath: path, Name: "lossy", Ring: "ignored-when-socket-given"})
	for i := 0; i < 3; i++ {
		r.publish(t)
	}
	for f := range c.Frames(testCtx(t)) {
		if f.Meta().Seq != 3 {
			t.Fatalf("lossy consumer got seq %d, want the newest, 3", f.Meta().Seq)
		}
		break
	}
	if st := c.Stats(); st.Delivered != 1 || st.Skipped != 2 {
		t.Fatalf("stats %+v", st)
	}
	if ci := consumerInfo(t, r.p, "lossy"); ci.Mode != "lossy" || ci.Skipped != 2 {
		t.Fatalf("table: %+v", ci)
	}
	snap, err := c.Snapshot()
	if err != nil || snap.Epoch != r.p.Epoch() || snap.Published != 3 {
		t.Fatalf("snapshot %+v %v", snap, err)
	}
	info, err := c.Info()
	if err != nil || info.Epoch != r.p.Epoch() || info.Slots != 4 {
		t.Fatalf("info %+v %v", info, err)
	}
}

// Rings are found by name in the runtime directory.
func TestRingByName(t *testing.T) {
	name := "named-" + strconv.Itoa(os.Getpid())
	p, err := ringbuf.Create(ringbuf.Config{Name: name, SlotSize: testGeometry.Size(), Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := attach(t, consumers.Options{Ring: name, Name: "by-name"})
	if info, err := c.Info(); err != nil || info.Epoch != p.Epoch() {
		t.Fatal(info, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // hang guard
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
