package consumers

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/framering/framering/ringbuf"
)

// Steady-state iteration in zero-copy mode allocates nothing: one step of
// Frames is next (borrow, fill the reused Frame) and done (release).
func TestStepAllocatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allocs.sock")
	p, err := ringbuf.Create(ringbuf.Config{SocketPath: path, Slots: 4, SlotSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	for _, mode := range []Mode{Lossy, Lossless} {
		c, err := Attach(ctx, Options{SocketPath: path, Name: "allocs", Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		publish := func() {
			s, err := p.Acquire()
			if err != nil {
				t.Fatal(err)
			}
			s.Bytes()[0] = 7
			if _, err := p.Publish(s, ringbuf.Meta{Length: 64}); err != nil {
				t.Fatal(err)
			}
		}
		sum := 0
		step := func() {
			publish()
			f, err := c.next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sum += int(f.Bytes()[0]) + int(f.Meta().Length)
			c.done(f)
		}
		step()
		if n := testing.AllocsPerRun(1000, step); n != 0 {
			t.Errorf("%v: one zero-copy step allocates %v times", mode, n)
		}
		if st := c.Stats(); st.Delivered != 1002 || st.Kept != 0 {
			t.Errorf("%v: %+v", mode, st)
		}
		c.Close()
	}
}
