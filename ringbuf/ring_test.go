package ringbuf_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/loss"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/ringbuf"
)

var ringSeq int

func newRing(t testing.TB, cfg ringbuf.Config) *ringbuf.Producer {
	t.Helper()
	if cfg.Name == "" && cfg.SocketPath == "" {
		ringSeq++
		cfg.Name = fmt.Sprintf("t%d", ringSeq)
	}
	if cfg.SlotSize == 0 {
		cfg.SlotSize = 4096
	}
	p, err := ringbuf.Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func attach(t testing.TB, p *ringbuf.Producer, opts ringbuf.Options) *ringbuf.Reader {
	t.Helper()
	opts.SocketPath = p.Path()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := ringbuf.Attach(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// publish fills a slot with byte v and publishes it.
func publish(t testing.TB, p *ringbuf.Producer, v byte) uint64 {
	t.Helper()
	s, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	b := s.Bytes()[:64]
	for i := range b {
		b[i] = v
	}
	seq, err := p.Publish(s, ringbuf.Meta{Length: 64, FrameID: uint64(v), Width: 8, Height: 8, Stride: 8, Format: frame.Mono8})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMain(m *testing.M) { os.Exit(testmain.Run(m, roleEnv, runChild)) }

func TestSlotStateMachine(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 2})
	s1, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := p.Acquire()
	if _, err := p.Acquire(); !errors.Is(err, ringbuf.ErrNoFreeSlot) {
		t.Fatalf("third acquire of two slots: %v", err)
	}
	if err := p.Abort(s2); err != nil {
		t.Fatal(err)
	}
	if err := p.Abort(s2); !errors.Is(err, ringbuf.ErrSlotState) {
		t.Fatalf("double abort: %v", err)
	}
	if _, err := p.Publish(s2, ringbuf.Meta{}); !errors.Is(err, ringbuf.ErrSlotState) {
		t.Fatalf("publish after abort: %v", err)
	}
	if _, err := p.Publish(s1, ringbuf.Meta{Length: uint64(p.SlotCapacity()) + 1}); !errors.Is(err, ringbuf.ErrConfig) {
		t.Fatalf("oversized frame: %v", err)
	}
	seq, err := p.Publish(s1, ringbuf.Meta{Length: 1})
	if err != nil || seq != 1 {
		t.Fatal(seq, err)
	}
	if _, err := p.Publish(s1, ringbuf.Meta{Length: 1}); !errors.Is(err, ringbuf.ErrSlotState) {
		t.Fatalf("double publish: %v", err)
	}
	// With nobody holding anything, the ring cycles forever.
	for i := 0; i < 100; i++ {
		if got := publish(t, p, byte(i)); got != seq+1+uint64(i) {
			t.Fatalf("seq %d", got)
		}
	}
	if p.Published() != 101 {
		t.Fatal(p.Published())
	}
}

func TestPeekBorrowErrors(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 2})
	r := attach(t, p, ringbuf.Options{Consumer: "c"})
	if _, err := r.Borrow(1); !errors.Is(err, ringbuf.ErrNotPublished) {
		t.Fatalf("borrow unpublished: %v", err)
	}
	if err := r.Peek(0, func(ringbuf.Frame) {}); !errors.Is(err, ringbuf.ErrNotPublished) {
		t.Fatalf("peek 0: %v", err)
	}
	publish(t, p, 1)
	publish(t, p, 2)
	publish(t, p, 3) // reuses the slot of 1
	if _, err := r.Borrow(1); !errors.Is(err, ringbuf.ErrOverwritten) {
		t.Fatalf("borrow overwritten: %v", err)
	}
	if err := r.Peek(1, func(ringbuf.Frame) { t.Error("fn ran for an overwritten frame") }); !errors.Is(err, ringbuf.ErrOverwritten) {
		t.Fatalf("peek overwritten: %v", err)
	}
	var got []byte
	if err := r.Peek(3, func(f ringbuf.Frame) { got = append(got, f.Data...) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 64 || got[0] != 3 {
		t.Fatalf("peek data %v", got[:4])
	}
	m, cp, err := r.ReadCopy(2, nil)
	if err != nil || m.Seq != 2 || cp[0] != 2 || len(cp) != 64 {
		t.Fatal(m, err)
	}

	l, err := r.Borrow(3)
	if err != nil {
		t.Fatal(err)
	}
	if m := l.Meta(); m.Seq != 3 || m.FrameID != 3 || m.Width != 8 || m.Format != frame.Mono8 {
		t.Fatalf("meta %+v", m)
	}
	dup := l // a copy names the same lease
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := dup.Release(); !errors.Is(err, ringbuf.ErrReleased) {
		t.Fatalf("double release: %v", err)
	}
	if l.Bytes() != nil || l.Valid() || l.Meta().Seq != 0 {
		t.Fatal("lease readable after release")
	}
	if err := (ringbuf.Lease{}).Release(); !errors.Is(err, ringbuf.ErrReleased) {
		t.Fatal("zero lease released")
	}
}

func TestHoldKeepsSlotAndProducerMovesOn(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 3, HoldQuota: 3, EvictAfter: time.Hour})
	r := attach(t, p, ringbuf.Options{Consumer: "archiver"})
	publish(t, p, 1)
	l, err := r.Borrow(1)
	if err != nil {
		t.Fatal(err)
	}
	// A long hold: the producer keeps publishing into the other slots.
	for i := 2; i < 50; i++ {
		publish(t, p, byte(i))
	}
	if l.Bytes()[0] != 1 || l.Meta().Seq != 1 {
		t.Fatal("held frame changed")
	}
	if err := r.Peek(1, func(ringbuf.Frame) {}); err != nil {
		t.Fatalf("held frame not peekable: %v", err)
	}
	// Two slots held: one left; three held: none.
	l2, _ := r.Borrow(49)
	s, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Acquire(); !errors.Is(err, ringbuf.ErrNoFreeSlot) {
		t.Fatalf("acquire with all slots held or lent: %v", err)
	}
	p.Abort(s)
	snap := p.Snapshot()
	held := 0
	for _, si := range snap.SlotInfo {
		if si.Holders != 0 {
			held++
		}
	}
	if held != 2 || snap.Consumers[0].Held != 2 {
		t.Fatalf("snapshot shows %d held slots, consumer %d leases", held, snap.Consumers[0].Held)
	}
	l.Release()
	l2.Release()
	for i := 0; i < 10; i++ {
		publish(t, p, byte(i))
	}
}

func TestTooManyLeases(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 4})
	r := attach(t, p, ringbuf.Options{Consumer: "c", MaxLeases: 2})
	publish(t, p, 1)
	a, _ := r.Borrow(1)
	b, err := r.Borrow(1) // two leases on one slot
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Borrow(1); !errors.Is(err, ringbuf.ErrTooManyLeases) {
		t.Fatalf("third lease: %v", err)
	}
	a.Release()
	// Slot 1 is still held by b.
	if p.Snapshot().SlotInfo[0].Holders == 0 {
		t.Fatal("hold dropped while a lease remains")
	}
	b.Release()
	if p.Snapshot().SlotInfo[0].Holders != 0 {
		t.Fatal("hold kept after last lease")
	}
}

func TestLosslessPinsAndLossySkips(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 4, EvictAfter: time.Hour})
	ll := attach(t, p, ringbuf.Options{Consumer: "ll", Mode: ringbuf.Lossless})
	ly := attach(t, p, ringbuf.Options{Consumer: "ly", Mode: ringbuf.Lossy})
	ctx := testCtx(t)
	for i := 1; i <= 4; i++ {
		publish(t, p, byte(i))
	}
	// All four frames are unread by the lossless consumer: no slot is free.
	if _, err := p.Acquire(); !errors.Is(err, ringbuf.ErrNoFreeSlot) {
		t.Fatalf("acquire past a lossless consumer: %v", err)
	}
	p.RecordDrops(loss.Blocked, 1)
	// The lossy consumer gets the newest frame and counts the skipped ones.
	l, err := ly.Next(ctx)
	if err != nil || l.Meta().Seq != 4 {
		t.Fatal(l.Meta(), err)
	}
	l.Release()
	if st := ly.Stats(); st.Skipped != 3 || st.Delivered != 1 {
		t.Fatalf("lossy stats %+v", st)
	}
	// The lossless one reads 1 and 2; two slots come free.
	for want := uint64(1); want <= 2; want++ {
		l, err := ll.Next(ctx)
		if err != nil || l.Meta().Seq != want {
			t.Fatal(want, l.Meta(), err)
		}
		l.Release()
	}
	publish(t, p, 5)
	publish(t, p, 6)
	if _, err := p.Acquire(); !errors.Is(err, ringbuf.ErrNoFreeSlot) {
		t.Fatal("expected the ring to be pinned again")
	}
	for want := uint64(3); want <= 6; want++ {
		l, err := ll.Next(ctx)
		if err != nil || l.Meta().Seq != want || l.Bytes()[0] != byte(want) {
			t.Fatal(want, l.Meta(), err)
		}
		l.Release()
	}
	snap := p.Snapshot()
	if snap.Drops[loss.Blocked] != 1 || len(snap.Consumers) != 2 {
		t.Fatalf("%+v", snap)
	}
	for _, c := range snap.Consumers {
		if c.Name == "ll" && (c.Delivered != 6 || c.Lag != 0 || c.BlockDrops == 0 || c.Mode != "lossless") {
			t.Fatalf("lossless entry %+v", c)
		}
		if c.Name == "ly" && (c.Delivered != 1 || c.Skipped != 3) {
			t.Fatalf("lossy entry %+v", c)
		}
	}
}

func TestEviction(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 2, EvictAfter: 20 * time.Millisecond})
	ll := attach(t, p, ringbuf.Options{Consumer: "slow", Mode: ringbuf.Lossless})
	ctx := testCtx(t)
	publish(t, p, 1)
	l, err := ll.Next(ctx) // held across the eviction
	if err != nil {
		t.Fatal(err)
	}
	publish(t, p, 2)
	// The consumer stops reading. The producer is never blocked: Acquire
	// fails (a dropped frame) until the consumer is evicted.
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := p.Acquire()
		if err == nil {
			p.Abort(s)
			break
		}
		if !errors.Is(err, ringbuf.ErrNoFreeSlot) || time.Now().After(deadline) {
			t.Fatalf("never evicted: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if snap := p.Snapshot(); snap.Evictions != 1 || snap.Consumers[0].State != "evicted" {
		t.Fatalf("%+v", snap)
	}
	if _, err := ll.Next(ctx); !errors.Is(err, ringbuf.ErrEvicted) {
		t.Fatalf("evicted consumer's Next: %v", err)
	}
	// Its lease is revoked (docs/LAYOUT.md 11.4): the producer took the
	// slot back at once, and the generation check says whether the frame
	// changed under it.
	if err := l.Check(); !errors.Is(err, ringbuf.ErrRevoked) {
		t.Fatalf("lease of an evicted consumer: Check %v", err)
	}
	if err := l.Release(); !errors.Is(err, ringbuf.ErrRevoked) {
		t.Fatalf("lease of an evicted consumer: Release %v", err)
	}
	if snap := p.Snapshot(); snap.Consumers[0].EvictReason != ringbuf.EvictPinned.String() || snap.Consumers[0].RevokedSeen != 1 {
		t.Fatalf("evicted consumer: %+v", snap.Consumers[0])
	}
}

func TestSecondProducerRefused(t *testing.T) {
	p := newRing(t, ringbuf.Config{})
	if _, err := ringbuf.Create(ringbuf.Config{SocketPath: p.Path(), SlotSize: 4096}); !errors.Is(err, ringbuf.ErrExists) {
		t.Fatalf("second producer on one path: %v", err)
	}
}

func TestAttachRefused(t *testing.T) {
	p := newRing(t, ringbuf.Config{AllowUIDs: []int{12345}, AllowGIDs: []int{54321}})
	ctx := testCtx(t)
	if _, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: p.Path()}); !errors.Is(err, ringbuf.ErrRefused) {
		t.Fatalf("attach by a uid not allowed: %v", err)
	}
	if _, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: p.Path() + ".none"}); !errors.Is(err, ringbuf.ErrNoSuchRing) {
		t.Fatalf("attach to nothing: %v", err)
	}
	if _, err := ringbuf.Attach(ctx, ringbuf.Options{Name: "bad/name"}); !errors.Is(err, ringbuf.ErrConfig) {
		t.Fatalf("bad name: %v", err)
	}
}

func TestConsumerTableFull(t *testing.T) {
	p := newRing(t, ringbuf.Config{})
	for i := 0; i < ringbuf.MaxConsumers; i++ {
		attach(t, p, ringbuf.Options{Consumer: fmt.Sprint(i)})
	}
	ctx := testCtx(t)
	if _, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: p.Path()}); !errors.Is(err, ringbuf.ErrRefused) {
		t.Fatalf("65th consumer: %v", err)
	}
	// Observers need no entry.
	o := attach(t, p, ringbuf.Options{Role: ringbuf.RoleObserver})
	if _, err := o.Borrow(1); !errors.Is(err, ringbuf.ErrRefused) {
		t.Fatalf("observer borrow: %v", err)
	}
	snap, err := o.Snapshot()
	if err != nil || len(snap.Consumers) != ringbuf.MaxConsumers {
		t.Fatal(len(snap.Consumers), err)
	}
}

func TestCloseWakesWaitersAndKeepsLeases(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 4})
	r := attach(t, p, ringbuf.Options{Consumer: "c", Spin: time.Microsecond})
	publish(t, p, 7)
	l, err := r.Borrow(1)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := r.Wait(context.Background(), 1); errc <- err }()
	time.Sleep(20 * time.Millisecond) // let it reach the futex (not required for correctness)
	p.Close()
	if err := <-errc; !errors.Is(err, ringbuf.ErrClosed) {
		t.Fatalf("waiter after producer close: %v", err)
	}
	if l.Bytes()[0] != 7 {
		t.Fatal("lease lost its bytes when the producer closed")
	}
	r.Close()
	if l.Bytes()[0] != 7 {
		t.Fatal("lease lost its bytes when the reader closed")
	}
	if _, err := r.Borrow(1); !errors.Is(err, ringbuf.ErrClosed) {
		t.Fatalf("borrow after close: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if r.Published() != 0 {
		t.Fatal("published readable after teardown")
	}
}

func TestWaitContextAndConcurrentBorrowers(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 8})
	r := attach(t, p, ringbuf.Options{Consumer: "c", Spin: time.Microsecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := r.Wait(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with nothing published: %v", err)
	}
	// Several goroutines borrow and release the same frames while the
	// producer publishes: every accepted lease shows the right bytes.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				seq := r.Published()
				l, err := r.Borrow(seq)
				if err != nil {
					if !errors.Is(err, ringbuf.ErrOverwritten) && !errors.Is(err, ringbuf.ErrNotPublished) && !errors.Is(err, ringbuf.ErrTooManyLeases) {
						errs <- err
						return
					}
					continue
				}
				if b := l.Bytes(); b[0] != byte(seq) || b[63] != byte(seq) {
					errs <- fmt.Errorf("seq %d has bytes %d", seq, b[0])
				}
				l.Release()
			}
		}()
	}
	for i := 1; i <= 3000; i++ {
		s, err := p.Acquire()
		if err != nil {
			continue
		}
		b := s.Bytes()[:64]
		for j := range b {
			b[j] = byte(p.Published() + 1)
		}
		p.Publish(s, ringbuf.Meta{Length: 64})
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestHotPathsAllocateNothing(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 8})
	r := attach(t, p, ringbuf.Options{Consumer: "c"})
	// Another consumer sleeping in Wait makes Publish take the wake path.
	w := attach(t, p, ringbuf.Options{Consumer: "w", Spin: time.Microsecond})
	go w.Wait(context.Background(), 1<<40)
	pub := func() {
		s, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Publish(s, ringbuf.Meta{Length: 64}); err != nil {
			t.Fatal(err)
		}
	}
	pub()
	if n := testing.AllocsPerRun(1000, pub); n != 0 {
		t.Errorf("acquire+publish: %v allocs", n)
	}
	seq := p.Published()
	sum := 0
	fn := func(f ringbuf.Frame) { sum += len(f.Data) }
	if n := testing.AllocsPerRun(1000, func() {
		if err := r.Peek(seq, fn); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("peek: %v allocs", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		l, err := r.Borrow(seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("borrow+release: %v allocs", n)
	}
	// Misses are ordinary on a live ring and allocate nothing either.
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := r.Borrow(seq + 1000); !errors.Is(err, ringbuf.ErrNotPublished) {
			t.Fatal(err)
		}
		if err := r.Peek(1, fn); !errors.Is(err, ringbuf.ErrOverwritten) {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("borrow/peek misses: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		pub()
		l, err := r.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}); n != 0 {
		t.Errorf("next: %v allocs", n)
	}
}

// A lossless consumer that asks for old frames (From) gets those the ring
// still holds, oldest first, and is not charged for older ones.
func TestFromOldestAvailable(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 4})
	for i := 1; i <= 10; i++ {
		publish(t, p, byte(i))
	}
	r := attach(t, p, ringbuf.Options{Consumer: "late", Mode: ringbuf.Lossless, From: 1})
	ctx := testCtx(t)
	for want := uint64(7); want <= 10; want++ {
		l, err := r.Next(ctx)
		if err != nil || l.Meta().Seq != want || l.Bytes()[0] != byte(want) {
			t.Fatalf("want seq %d: %+v %v", want, l.Meta(), err)
		}
		l.Release()
	}
	if st := r.Stats(); st.Missed != 0 || st.Skipped != 0 || st.Delivered != 4 {
		t.Fatalf("stats %+v", st)
	}
	// Without From, a consumer starts with the next frame.
	r2 := attach(t, p, ringbuf.Options{Consumer: "new", Mode: ringbuf.Lossless})
	publish(t, p, 11)
	l, err := r2.Next(ctx)
	if err != nil || l.Meta().Seq != 11 {
		t.Fatal(l.Meta(), err)
	}
	l.Release()
}
