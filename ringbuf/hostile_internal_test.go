package ringbuf

// Hostile segments: a consumer scribbling over the control segment, a
// producer writing nonsense into the data segment.

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/loss"
)

// A consumer scribbling random values over the whole control segment
// (header, hold words, waiters, every table entry) while the producer
// publishes and other readers read: nobody panics, indexes out of bounds or
// spins forever. Frames may be lost or leases disturbed (the threat model
// trusts consumers with the control segment), but every call returns.
func TestHostileControlSegment(t *testing.T) {
	p := internalRing(t, Config{Slots: 4, EvictAfter: 5 * time.Millisecond})
	ll := internalAttach(t, p, Options{Consumer: "ll", Mode: Lossless, Spin: time.Microsecond})
	ly := internalAttach(t, p, Options{Consumer: "ly", Spin: time.Microsecond})
	obs := internalAttach(t, p, Options{Role: RoleObserver})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The vandal writes through the producer's view: the same memory any
	// consumer maps read-write.
	words := p.ctl.w
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < 64; i++ {
				v := rng.Uint64()
				switch rng.IntN(4) {
				case 0:
					v = 0
				case 1:
					v = ^uint64(0)
				case 2:
					v &= 0xff
				}
				words[rng.IntN(len(words))].Store(v)
			}
		}
	}()
	var reads atomic.Int64
	for _, r := range []*Reader{ll, ly} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
				l, err := r.Next(ctx)
				cancel()
				if err == nil {
					if uint64(len(l.Bytes())) != l.Meta().Length || l.Meta().Length > r.geo.capacity {
						t.Errorf("lease of %d bytes, meta %d", len(l.Bytes()), l.Meta().Length)
					}
					l.Release()
					reads.Add(1)
				}
				r.Borrow(r.Published())
				r.Snapshot()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			obs.Peek(obs.Published(), func(f Frame) {})
			obs.Snapshot()
			// New attaches may be refused (the header is scribbled): refused, not crashed.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if r, err := Attach(ctx, Options{SocketPath: p.Path(), Role: RoleObserver}); err == nil {
				r.Close()
			} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrIncompatible) {
				t.Errorf("attach to a scribbled ring: %v", err)
			}
			cancel()
		}
	}()
	published := 0
	hangGuard(t, "the producer under a hostile control segment", func() {
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			s, err := p.Acquire()
			if err != nil {
				p.RecordDrops(loss.Blocked, 1)
				continue
			}
			if _, err := p.Publish(s, Meta{Length: 64}); err != nil {
				t.Error(err)
				return
			}
			published++
			p.Snapshot()
		}
	})
	close(stop)
	hangGuard(t, "readers under a hostile control segment", wg.Wait)
	t.Logf("published %d, delivered %d", published, reads.Load())
}

// A producer writing arbitrary index entries, descriptor words and
// published values after the attach validated its headers: the reader never
// panics, never slices outside a slot, and every call returns.
func TestHostileDataSegment(t *testing.T) {
	p := internalRing(t, Config{Slots: 4})
	r := internalAttach(t, p, Options{Consumer: "c", Spin: time.Microsecond})
	o := internalAttach(t, p, Options{Role: RoleObserver})
	for i := 0; i < 8; i++ {
		s, _ := p.Acquire()
		p.Publish(s, Meta{Length: 64})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The whole header (its geometry included: readers keep their own copy),
	// the descriptors and the index.
	hi := p.geo.payloadOffset / 8
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if rng.IntN(4) == 0 {
				// A consistent-looking frame with hostile parts: the index
				// names a slot (perhaps out of range), the descriptor carries
				// the sequence number, an even generation and a length near
				// the bound.
				seq := 1 + rng.Uint64N(64)
				k := uint32(rng.IntN(int(p.geo.slots) + 2))
				p.data.indexEntry(seq).Store(seq<<16 | uint64(k))
				if k < p.geo.slots {
					forgeDesc(p, k, seq, p.geo.capacity+uint64(rng.IntN(3))-1, rng.Uint64()&^1)
				}
				p.data.published().Store(seq + rng.Uint64N(4))
				continue
			}
			i := rng.Uint64N(hi)
			v := rng.Uint64()
			switch rng.IntN(6) {
			case 0:
				v &= 0xffff
			case 1:
				v = v<<16 | uint64(rng.IntN(8)) // plausible index entries, some slots out of range
			case 2:
				v = p.geo.capacity + uint64(rng.IntN(3)) - 1 // lengths around the bound
			case 3:
				v &^= 1 // even generations
			}
			p.data.w[i].Store(v)
		}
	}()
	var accepted atomic.Int64
	for _, rd := range []*Reader{r, o} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(5, 6))
			for {
				select {
				case <-stop:
					return
				default:
				}
				seq := rd.Published()
				switch rng.IntN(3) {
				case 0:
					seq = rng.Uint64() >> rng.IntN(64)
				case 1:
					seq = 1 + rng.Uint64N(64)
				}
				rd.Peek(seq, func(f Frame) {
					if uint64(len(f.Data)) != f.Length || f.Length > rd.geo.capacity {
						t.Errorf("peek: %d bytes, length %d", len(f.Data), f.Length)
					}
					_ = f.Data[len(f.Data)/2:]
				})
				if l, err := rd.Borrow(seq); err == nil {
					accepted.Add(1)
					if b := l.Bytes(); uint64(len(b)) != l.Meta().Length || l.Meta().Length > rd.geo.capacity {
						t.Errorf("lease: %d bytes, length %d", len(b), l.Meta().Length)
					}
					l.Release()
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				rd.Wait(ctx, seq)
				cancel()
				rd.Snapshot()
			}
		}()
	}
	time.Sleep(time.Second)
	close(stop)
	hangGuard(t, "readers under a hostile data segment", wg.Wait)
	t.Logf("%d leases accepted from scribbled descriptors", accepted.Load())
}

// A hostile producer that keeps changing a slot's (even) generation under
// the same sequence number: Borrow and Peek give up and report the frame
// overwritten instead of spinning forever waiting for two equal loads.
func TestHostileGenerationChurn(t *testing.T) {
	p := internalRing(t, Config{Slots: 4})
	r := internalAttach(t, p, Options{Consumer: "victim"})
	s, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	seq, err := p.Publish(s, Meta{Length: 16})
	if err != nil {
		t.Fatal(err)
	}
	k := uint32(p.data.indexEntry(seq).Load() & 0xffff)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		gen := p.data.gen(k)
		for g := gen.Load() &^ 1; ; g += 2 {
			select {
			case <-stop:
				return
			default:
			}
			gen.Store(g)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	for i := 0; i < 20; i++ {
		hangGuard(t, "Borrow of a churning slot", func() {
			if l, err := r.Borrow(seq); err == nil {
				l.Release()
			} else if !errors.Is(err, ErrOverwritten) {
				t.Errorf("Borrow: %v, want a lease or ErrOverwritten", err)
			}
		})
	}
}
