package producer

import (
	"context"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

// The steady-state loop allocates nothing per frame: in zero-copy mode a
// step is acquire + queue + dequeue + publish + detach, in safe-copy mode
// dequeue + acquire + copy + requeue + publish, each followed by a look at
// the grabber's counters.
func TestStepAllocatesNothing(t *testing.T) {
	g := frame.Packed(64, 64, frame.Mono8)
	for _, kind := range kinds() {
		for _, cp := range []bool{false, true} {
			t.Run(kind+"/"+modeName(cp), func(t *testing.T) {
				p := stepper(t, kind, cp, g, 8, 2)
				steps(t, p, 50) // warm up: every slot published once
				ctx := context.Background()
				var stepErr error
				allocs := testing.AllocsPerRun(200, func() {
					if err := p.step(ctx); err != nil {
						stepErr = err
					}
				})
				if stepErr != nil {
					t.Fatal(stepErr)
				}
				if allocs != 0 {
					t.Fatalf("%v allocations per frame", allocs)
				}
				if p.Stats().Published < 250 {
					t.Fatalf("stats %+v", p.Stats())
				}
				closeAndCheck(t, p)
			})
		}
	}
}

// Starved (a lossless consumer pins every slot), a zero-copy step is a
// short wait that allocates nothing either.
func TestStarvedStepAllocatesNothing(t *testing.T) {
	p := stepper(t, kinds()[0], false, frame.Packed(64, 64, frame.Mono8), 4, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: p.Path(), Mode: ringbuf.Lossless, Consumer: "pin"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	steps(t, p, 4) // every slot published and pinned
	if p.loop.refill(); p.loop.inGrabber != 0 {
		t.Fatalf("%d slots still with the grabber", p.loop.inGrabber)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := p.step(ctx); err != nil {
			t.Error(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per starved step", allocs)
	}
	closeAndCheck(t, p)
	if st := p.Stats(); st.DropTotal() != 0 {
		t.Fatalf("a FreeRun grabber underran: %+v", st)
	}
}

// The exit observer follows the consumer table every 100 ms for the
// producer's whole life: that must not allocate either (its garbage was
// the producer's slow heap growth on a line running for weeks).
func TestExitObserverSyncAllocatesNothing(t *testing.T) {
	p := stepper(t, kinds()[0], false, frame.Packed(64, 64, frame.Mono8), 8, 2)
	r, err := ringbuf.Attach(context.Background(), ringbuf.Options{SocketPath: p.Path(), Consumer: "c"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o := &exitObserver{p: p, watched: map[int]bool{}, pids: make([]int, 0, ringbuf.MaxConsumers), live: map[int]bool{}}
	o.pids = p.ringPids(o.pids[:0])
	for _, pid := range o.pids {
		o.watched[pid] = true // as if handed to the kernel already
	}
	if n := testing.AllocsPerRun(100, o.sync); n != 0 {
		t.Fatalf("sync allocates %v times", n)
	}
	if len(o.watched) != 1 {
		t.Fatalf("watched %v", o.watched)
	}
	if err := p.Close(); err != nil { // never stepped: no frames to account for
		t.Fatal(err)
	}
}
