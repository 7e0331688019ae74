package ringstat

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/framering/framering/ringbuf"
)

func publishFill(t *testing.T, p *ringbuf.Producer, fill byte) uint64 {
	t.Helper()
	s, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	b := s.Bytes()[:256]
	for i := range b {
		b[i] = fill
	}
	seq, err := p.Publish(s, ringbuf.Meta{Length: 256})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// A Host finds rings as they appear, reads them without holds, peeks their
// newest frame, follows a producer restart and forgets a ring that went.
func TestHost(t *testing.T) {
	t.Setenv("FRAMERING_RUNTIME_DIR", t.TempDir())
	ctx := context.Background()
	h := NewHost(nil)
	defer h.Close()
	if err := h.Refresh(ctx); err != nil || len(h.Snapshots(ctx)) != 0 {
		t.Fatalf("empty host: %v %v", err, h.Snapshots(ctx))
	}
	p, err := ringbuf.Create(ringbuf.Config{Name: "cam", Slots: 4, SlotSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Peek("cam", 0, func(ringbuf.Frame) {}); !errors.Is(err, ErrUnknownRing) {
		t.Fatalf("peek before refresh: %v", err)
	}
	if err := h.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Peek("cam", 0, func(ringbuf.Frame) {}); !errors.Is(err, ErrNoFrame) {
		t.Fatalf("peek of an empty ring: %v", err)
	}
	for i := 1; i <= 6; i++ {
		publishFill(t, p, byte(i))
	}
	st := h.Snapshots(ctx)
	if len(st) != 1 || st[0].Name != "cam" || st[0].Status != StatusLive || st[0].Snapshot.Published != 6 ||
		st[0].Snapshot.Epoch != p.Epoch() {
		t.Fatalf("snapshots %+v", st)
	}
	if len(st[0].Snapshot.Consumers) != 0 {
		t.Fatalf("the host took a consumer entry: %+v", st[0].Snapshot.Consumers)
	}
	var got []byte
	epoch, err := h.Peek("cam", 0, func(f ringbuf.Frame) { got = append(got[:0], f.Data...) })
	if err != nil || epoch != p.Epoch() || !bytes.Equal(got, bytes.Repeat([]byte{6}, 256)) {
		t.Fatalf("peek newest: %v epoch %x data %v", err, epoch, got[:4])
	}
	if _, err := h.Peek("cam", 5, func(f ringbuf.Frame) { got = append(got[:0], f.Data...) }); err != nil || got[0] != 5 {
		t.Fatalf("peek 5: %v %v", err, got[:1])
	}
	if _, err := h.Peek("cam", 1, func(ringbuf.Frame) {}); !errors.Is(err, ringbuf.ErrOverwritten) && !errors.Is(err, ringbuf.ErrNotPublished) {
		t.Fatalf("peek of an overwritten frame: %v", err)
	}

	// Restart: the host sees the old producer gone and attaches to the new.
	old := p.Epoch()
	p.Close()
	p, err = ringbuf.Create(ringbuf.Config{Name: "cam", Slots: 4, SlotSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	publishFill(t, p, 9)
	if err := h.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	st = h.Snapshots(ctx)
	if len(st) != 1 || st[0].Status != StatusLive || st[0].Snapshot.Epoch == old || st[0].Snapshot.Published != 1 {
		t.Fatalf("after a restart: %+v", st)
	}
	// Gone: forgotten.
	p.Close()
	if err := h.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := h.Names(); len(n) != 0 {
		t.Fatalf("a closed ring is still listed: %v", n)
	}
}
