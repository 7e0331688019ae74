package ringbuf

// locate's guessed slot (Reader.guess): right in a steady stream, harmless
// when wrong, and never a way around the index's verdict.

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pubSeq publishes one frame whose payload starts with its sequence number.
func pubSeq(t *testing.T, p *Producer) uint64 {
	t.Helper()
	s, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	next := p.Published() + 1
	b := s.Bytes()
	for i := range 8 {
		b[i] = byte(next >> (8 * i))
	}
	seq, err := p.Publish(s, Meta{Length: 8})
	if err != nil {
		t.Fatal(err)
	}
	if seq != next {
		t.Fatalf("published %d, want %d", seq, next)
	}
	return seq
}

// borrowSeq borrows seq and checks that the lease is that frame: its
// descriptor and the payload the producer wrote.
func borrowSeq(t *testing.T, r *Reader, seq uint64) Lease {
	t.Helper()
	l, err := r.Borrow(seq)
	if err != nil {
		t.Fatalf("borrow %d: %v", seq, err)
	}
	var got uint64
	for i, c := range l.Bytes()[:8] {
		got |= uint64(c) << (8 * i)
	}
	if l.Meta().Seq != seq || got != seq {
		t.Fatalf("borrow %d: lease of frame %d carrying %d", seq, l.Meta().Seq, got)
	}
	return l
}

// indexSlot is the slot frame seq's index entry names.
func indexSlot(t *testing.T, r *Reader, seq uint64) uint32 {
	t.Helper()
	e := r.data.indexEntry(seq)
	if e>>16 != seq {
		t.Fatalf("index entry of %d names frame %d", seq, e>>16)
	}
	return uint32(e & 0xffff)
}

// heldBehind makes a ring of 4 slots and 4 index entries in which another
// consumer holds frame s (in slot ks) and ahead frames were published
// after it; guessKs is a hint from which r guesses slot ks for frame s.
func heldBehind(t *testing.T, ahead int) (p *Producer, r *Reader, s uint64, ks uint32, guessKs uint64) {
	t.Helper()
	p = internalRing(t, Config{Slots: 4, IndexSize: 4})
	r = internalAttach(t, p, Options{Consumer: "c", Mode: Lossy})
	hog := internalAttach(t, p, Options{Consumer: "hog", Mode: Lossy})
	pubSeq(t, p)
	s = pubSeq(t, p)
	ks = indexSlot(t, r, s)
	held := borrowSeq(t, hog, s)
	t.Cleanup(func() { held.Release() })
	for range ahead {
		pubSeq(t, p)
	}
	if p.Published() != s+uint64(ahead) {
		t.Fatalf("published %d, want %d", p.Published(), s+uint64(ahead))
	}
	return p, r, s, ks, (s-1)<<16 | uint64((ks+3)%4)
}

func TestGuessedSlot(t *testing.T) {
	t.Run("SteadyStream", func(t *testing.T) {
		// One frame at a time, each released at once: the producer goes
		// round the slots, and every guess after the first is right, also
		// across a lossy consumer's skips.
		p := internalRing(t, Config{Slots: 5})
		r := internalAttach(t, p, Options{Consumer: "c", Mode: Lossy})
		for i := range 40 {
			seq := pubSeq(t, p)
			if i%7 == 3 {
				seq = pubSeq(t, p) // skip one
			}
			k, ok := r.guess(seq, p.Published())
			if i > 0 && (!ok || k != indexSlot(t, r, seq)) {
				t.Fatalf("frame %d: guessed slot %d (%v), index says %d", seq, k, ok, indexSlot(t, r, seq))
			}
			if err := borrowSeq(t, r, seq).Release(); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("WrongGuess", func(t *testing.T) {
		// Another consumer holds a slot, so the producer passes over it
		// and the round is broken: guesses go wrong, leases stay right.
		p := internalRing(t, Config{Slots: 6})
		r := internalAttach(t, p, Options{Consumer: "c", Mode: Lossy})
		hog := internalAttach(t, p, Options{Consumer: "hog", Mode: Lossy})
		wrong := 0
		for i := range 30 {
			seq := pubSeq(t, p)
			if k, ok := r.guess(seq, p.Published()); ok && k != indexSlot(t, r, seq) {
				wrong++
			}
			if i == 4 || i == 11 {
				defer borrowSeq(t, hog, seq).Release()
			}
			if err := borrowSeq(t, r, seq).Release(); err != nil {
				t.Fatal(err)
			}
		}
		if wrong == 0 {
			t.Fatal("no guess was wrong: the test did not exercise a wrong guess")
		}
	})
	t.Run("IndexOverwritten", func(t *testing.T) {
		// Frame s stays in its slot under another consumer's hold, but the
		// index has moved past it: Borrow reports it overwritten, as the
		// index says (docs/LAYOUT.md 3.3), even when the guess names its
		// slot.
		p, r, s, ks, guessKs := heldBehind(t, 4)
		r.hint.Store(guessKs)
		if got := r.data.seq(ks); got != s {
			t.Fatalf("slot %d carries frame %d, want the held frame %d", ks, got, s)
		}
		if _, err := r.Borrow(s); !errors.Is(err, ErrOverwritten) {
			t.Fatalf("borrow of frame %d, no longer indexed: %v, want ErrOverwritten", s, err)
		}
		if err := r.Peek(s, func(Frame) { t.Errorf("peek of frame %d, no longer indexed, ran", s) }); !errors.Is(err, ErrOverwritten) {
			t.Fatalf("peek of frame %d, no longer indexed: %v, want ErrOverwritten", s, err)
		}
		// A guess never names a frame not yet published.
		if _, err := r.Borrow(p.Published() + 1); !errors.Is(err, ErrNotPublished) {
			t.Fatalf("borrow of the next frame: %v, want ErrNotPublished", err)
		}
	})
	t.Run("GuessBeforeIndex", func(t *testing.T) {
		// locate settles on the guessed slot before it loads the index
		// entry: with the entry of frame 2 naming the wrong slot (as only
		// a hostile producer's would), the guess still finds the frame,
		// where the index alone reports it overwritten. Fails if locate
		// stops guessing.
		p := internalRing(t, Config{Slots: 4})
		r := internalAttach(t, p, Options{Consumer: "c", Mode: Lossy})
		for range 3 {
			pubSeq(t, p)
		}
		if err := borrowSeq(t, r, 1).Release(); err != nil {
			t.Fatal(err)
		}
		k2 := indexSlot(t, r, 2)
		if k, ok := r.guess(2, p.Published()); !ok || k != k2 {
			t.Fatalf("guessed slot %d (%v) for frame 2, index says %d", k, ok, k2)
		}
		e := p.data.indexEntry(2)
		e.Store(2<<16 | uint64((k2+1)%4))
		borrowSeq(t, r, 2).Release()
		r.hint.Store(0) // no guess: the index's verdict
		if _, err := r.Borrow(2); !errors.Is(err, ErrOverwritten) {
			t.Fatalf("borrow of frame 2 by its wrong index entry alone: %v, want ErrOverwritten", err)
		}
		e.Store(2<<16 | uint64(k2))
	})
	t.Run("ConcurrentBorrowers", func(t *testing.T) {
		// Goroutines of one Reader borrow and peek frames at different
		// distances behind the newest while the producer reuses slots:
		// each goroutine's guess starts from whichever frame any of them
		// borrowed last, so guesses are often wrong and land on slots
		// being decided on, written or republished. Every lease and
		// every accepted peek is exactly its own frame, and a lease's
		// bytes do not change while it is held.
		const frameLen = 512
		p := internalRing(t, Config{Slots: 6})
		r := internalAttach(t, p, Options{Consumer: "c", Mode: Lossy})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var leases, peeks atomic.Int64
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, frameLen)
				for i := uint64(0); ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					seq := r.Published()
					if back := (i + uint64(g)) % 4; seq > back {
						seq -= back
					}
					if g == 3 {
						var m Meta
						err := r.Peek(seq, func(f Frame) { m = f.Meta; copy(buf, f.Data) })
						if err == nil {
							peeks.Add(1)
							if m.Seq != seq || !patternIntact(buf[:m.Length], seq, frameLen) {
								t.Errorf("peek %d: frame %d, bytes intact %v", seq, m.Seq, patternIntact(buf[:m.Length], seq, frameLen))
								return
							}
						} else if !errors.Is(err, ErrOverwritten) && !errors.Is(err, ErrNotPublished) {
							t.Error(err) // "peek N: ..."
							return
						}
						continue
					}
					l, err := r.Borrow(seq)
					if err != nil {
						if !errors.Is(err, ErrOverwritten) && !errors.Is(err, ErrNotPublished) {
							t.Error(err) // "borrow N: ..." or a bare sentinel
							return
						}
						continue
					}
					ok := l.Meta().Seq == seq && patternIntact(l.Bytes(), seq, frameLen)
					ok = ok && patternIntact(l.Bytes(), seq, frameLen) // again: nothing moved under the hold
					if err := l.Release(); err != nil || !ok {
						t.Errorf("lease of frame %d: intact %v, release %v", seq, ok, err)
						return
					}
					leases.Add(1)
				}
			}()
		}
		// At least 20000 frames, and on until every goroutine has had its
		// turn (a generous bound, not a timing assertion).
		deadline := time.Now().Add(time.Minute)
		for n := 0; (n < 20000 || leases.Load() < 1000 || peeks.Load() < 1000) && !t.Failed() && time.Now().Before(deadline); {
			sl, err := p.Acquire()
			if errors.Is(err, ErrNoFreeSlot) {
				continue
			}
			if err != nil {
				t.Error(err)
				break
			}
			fillPattern(sl.Bytes()[:frameLen], p.Published()+1)
			if _, err := p.Publish(sl, Meta{Length: frameLen}); err != nil {
				t.Error(err)
				break
			}
			n++
		}
		close(stop)
		wg.Wait()
		if leases.Load() == 0 || peeks.Load() == 0 {
			t.Fatalf("%d leases, %d peeks: the test exercised nothing", leases.Load(), peeks.Load())
		}
	})
	t.Run("IndexMovedMidPublish", func(t *testing.T) {
		// Publish stores frame s+I's index entry before published (10.2),
		// so with p = s+I-1 loaded the index may already have moved past
		// frame s, which still sits, held, in its slot: the index says
		// overwritten, and so must the guess (p - s < I - 1, LAYOUT.md 9.1).
		p, r, s, ks, guessKs := heldBehind(t, 3)
		// Still indexed: Borrow finds it (through the index).
		r.hint.Store(guessKs)
		if err := borrowSeq(t, r, s).Release(); err != nil {
			t.Fatal(err)
		}
		// The producer, publishing frame s+4, has stored its index entry
		// and not yet published: stop it right there.
		sl, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		if sl.k == ks {
			t.Fatalf("the producer reused the held slot %d", ks)
		}
		p.data.indexEntry(s + 4).Store((s+4)<<16 | uint64(sl.k))
		r.hint.Store(guessKs)
		if _, err := r.Borrow(s); !errors.Is(err, ErrOverwritten) {
			t.Fatalf("borrow of frame %d, its index entry taken by %d: %v, want ErrOverwritten", s, s+4, err)
		}
		r.hint.Store(guessKs)
		if err := r.Peek(s, func(Frame) { t.Errorf("peek of frame %d, no longer indexed, ran", s) }); !errors.Is(err, ErrOverwritten) {
			t.Fatalf("peek of frame %d, its index entry taken by %d: %v, want ErrOverwritten", s, s+4, err)
		}
		if _, err := p.Publish(sl, Meta{Length: 8}); err != nil {
			t.Fatal(err)
		}
	})
}
