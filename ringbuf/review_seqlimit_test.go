package ringbuf

import (
	"context"
	"errors"
	"testing"
)

// The last sequence numbers an index entry can carry are published and
// delivered in order; the next Publish is refused and leaves the slot lent
// (Abort returns it); readers asking past the end get ErrNotPublished.
func TestReviewSequenceLimit(t *testing.T) {
	p := reviewRing(t, Config{Slots: 3})
	// Jump the acquisition state to the end of the sequence space before
	// anyone attaches, as if 2^48-3 frames had been published.
	p.next = maxSeq - 1
	p.data.published().Store(maxSeq - 2)
	r := reviewAttach(t, p, Options{Consumer: "c", Mode: Lossless})
	for want := uint64(maxSeq - 1); want <= maxSeq; want++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		if seq, err := p.Publish(s, Meta{Length: 8, FrameID: want}); err != nil || seq != want {
			t.Fatalf("publish %d: %d %v", want, seq, err)
		}
	}
	s, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(s, Meta{Length: 8}); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish past 2^48-1: %v", err)
	}
	if err := p.Abort(s); err != nil {
		t.Fatalf("abort after the refused publish: %v", err)
	}
	ctx := context.Background()
	for want := uint64(maxSeq - 1); want <= maxSeq; want++ {
		l, err := r.Next(ctx)
		if err != nil || l.Meta().Seq != want || l.Meta().FrameID != want {
			t.Fatalf("next: %+v %v, want %d", l.Meta(), err, want)
		}
		l.Release()
	}
	for _, seq := range []uint64{maxSeq + 1, 1 << 48, ^uint64(0)} {
		if _, err := r.Borrow(seq); !errors.Is(err, ErrNotPublished) {
			t.Fatalf("borrow %d: %v", seq, err)
		}
	}
	// An index entry of another sequence number that aliases maxSeq's slot
	// bits is not taken for it.
	if _, err := r.Borrow(maxSeq - 1 - uint64(p.geo.indexCount)); !errors.Is(err, ErrOverwritten) {
		t.Fatalf("borrow of an aliased, older sequence number: %v", err)
	}
}
