package ringbuf_test

import (
	"context"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
)

func TestSmoke(t *testing.T) {
	t.Setenv("FRAMERING_RUNTIME_DIR", t.TempDir())
	p, err := ringbuf.Create(ringbuf.Config{Name: "smoke", Slots: 4, SlotSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{Name: "smoke", Consumer: "t", Mode: ringbuf.Lossless})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 10; i++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatal(i, err)
		}
		s.Bytes()[0] = byte(i)
		if _, err := p.Publish(s, ringbuf.Meta{Length: 1, FrameID: uint64(i)}); err != nil {
			t.Fatal(err)
		}
		l, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if l.Bytes()[0] != byte(i) || l.Meta().FrameID != uint64(i) {
			t.Fatalf("got %v %+v", l.Bytes(), l.Meta())
		}
		l.Release()
	}
}
