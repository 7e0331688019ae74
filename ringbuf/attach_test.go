package ringbuf_test

// Attaching: a context ending during the handshake, the producer hanging up
// mid-handshake, attaches racing Close.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
	"github.com/framering/framering/shm"
)

// An Attach whose context ends while the segments are being mapped either
// fails, or returns a Reader that works: it must not return a Reader whose
// connection carries a deadline in the past (which its connection watcher
// takes for the producer's departure).
func TestAttachContextEndingDuringMapping(t *testing.T) {
	// A large data segment, prefaulted by the reader: mapping it takes a
	// while, which is the window in question.
	p := newRing(t, ringbuf.Config{Slots: 16, SlotSize: 4 << 20})
	publish(t, p, 1)
	var full time.Duration
	for i := 0; i < 2; i++ { // the second attach finds the pages allocated
		start := time.Now()
		r0 := attach(t, p, ringbuf.Options{Role: ringbuf.RoleObserver, Prefault: true})
		full = time.Since(start)
		r0.Close()
	}
	bad, ok := 0, 0
	for i := 0; i < 40; i++ {
		d := full * time.Duration(i%20) / 16
		ctx, cancel := context.WithTimeout(context.Background(), d)
		r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: p.Path(), Role: ringbuf.RoleObserver, Prefault: true})
		cancel()
		if err != nil {
			continue
		}
		ok++
		wctx, wcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, werr := r.Wait(wctx, 1)
		wcancel()
		if errors.Is(werr, ringbuf.ErrProducerGone) {
			bad++
		}
		r.Close()
	}
	t.Logf("full attach %v; %d attaches succeeded, %d of them saw the (live) producer gone", full, ok, bad)
	if bad > 0 {
		t.Fatalf("%d Readers returned by a successful Attach report ErrProducerGone while the producer is alive", bad)
	}
}

// A producer that closes the connection without a welcome (it is closing,
// or timed out waiting for the hello) is gone, not corrupt: a consumer that
// re-attaches waits for ErrProducerGone/ErrClosed and gives up on anything
// else.
func TestHandshakeEOFIsProducerGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := shm.Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var b [64]byte
			c.Read(b[:]) // the hello
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = ringbuf.Attach(ctx, ringbuf.Options{SocketPath: path})
	if !errors.Is(err, ringbuf.ErrProducerGone) && !errors.Is(err, ringbuf.ErrClosed) {
		t.Fatalf("connection closed without a welcome: %v", err)
	}
}

// Producer.Close racing with attaches: every consumer that attached must be
// disconnected by Close, and Close must return even though the consumers
// keep their Readers open (they only close them after Close returned).
func TestCloseRacingAttachDoesNotHang(t *testing.T) {
	trials := 200
	if os.Getenv("FRAMERING_SOAK") != "" {
		trials = 5000
	}
	for trial := 0; trial < trials; trial++ {
		p, err := ringbuf.Create(ringbuf.Config{SocketPath: fmt.Sprintf("%s/rv-close-%d.sock", os.Getenv("FRAMERING_RUNTIME_DIR"), trial), SlotSize: 4096, Slots: 2})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var readers []*ringbuf.Reader
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					role := ringbuf.RoleConsumer
					if g%2 == 1 {
						role = ringbuf.RoleObserver
					}
					r, err := ringbuf.Attach(context.Background(), ringbuf.Options{SocketPath: p.Path(), Role: role})
					if err != nil {
						return
					}
					mu.Lock()
					readers = append(readers, r)
					mu.Unlock()
				}
			}(g)
		}
		time.Sleep(time.Duration(trial%7) * 100 * time.Microsecond)
		done := make(chan struct{})
		go func() { p.Close(); close(done) }()
		hung := false
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			hung = true
		}
		close(stop)
		// Readers are closed only now: if Close waits for one of them, it hangs above.
		mu.Lock()
		n := len(readers)
		for _, r := range readers {
			r.Close()
		}
		mu.Unlock()
		wg.Wait()
		mu.Lock()
		for _, r := range readers[n:] {
			r.Close()
		}
		mu.Unlock()
		<-done
		if hung {
			t.Fatalf("trial %d: Producer.Close hung until an attached consumer closed its Reader (%d readers)", trial, n)
		}
	}
}

// A lossless consumer attaching with From = 1 to a ring that has published
// many frames (the consumers package does this on every re-attach) starts
// at the oldest frame the ring still holds — or, when every slot is lent
// out to the source, at the next frame — without walking, and pinning the
// ring for, sequence numbers long gone, and without being evicted for it.
// The default run prefills 50,000 frames (a walk of any length shows as
// missed frames); the soak prefills two million, where a walk would also
// take long enough to be evicted.
func TestFromOneStartsAtTheOldestFrameHeld(t *testing.T) {
	before := 50_000
	if os.Getenv("FRAMERING_SOAK") != "" {
		before = 2_000_000
	}
	for _, c := range []struct {
		name  string
		slots int
		lent  bool
	}{{"frames held", 8, false}, {"every slot lent", 2, true}} {
		t.Run(c.name, func(t *testing.T) {
			p := newRing(t, ringbuf.Config{Slots: c.slots, HoldQuota: c.slots, EvictAfter: 300 * time.Millisecond})
			for i := 0; i < before; i++ {
				s, err := p.Acquire()
				if err != nil {
					t.Fatal(err)
				}
				p.Publish(s, ringbuf.Meta{Length: 8})
			}
			var lent []ringbuf.Slot
			if c.lent { // a zero-copy grabber queue as deep as the ring
				for range c.slots {
					s, err := p.Acquire()
					if err != nil {
						t.Fatal(err)
					}
					lent = append(lent, s)
				}
			}
			r := attach(t, p, ringbuf.Options{Consumer: "ll", Mode: ringbuf.Lossless, From: 1})
			for _, s := range lent {
				p.Publish(s, ringbuf.Meta{Length: 8})
			}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			drops := 0
			wg.Add(1)
			go func() { // the producer goes on, one frame per 100µs
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Microsecond):
					}
					s, err := p.Acquire()
					if err != nil {
						p.RecordDrops(loss.Blocked, 1)
						drops++
						continue
					}
					p.Publish(s, ringbuf.Meta{Length: 8})
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			l, err := r.Next(ctx)
			close(stop)
			wg.Wait()
			var seq uint64
			if err == nil {
				seq = l.Meta().Seq
				l.Release()
			}
			st := r.Stats()
			if err != nil || seq+uint64(c.slots) <= uint64(before) || st.Missed != 0 {
				t.Fatalf("From=1 on a ring at %d: first frame %d (%v), %d sequence numbers walked as missed, %d frames dropped meanwhile",
					before, seq, err, st.Missed, drops)
			}
		})
	}
}
