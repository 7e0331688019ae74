package producer

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/native"
)

var internalRingSeq atomic.Int64

// stepper is a Producer whose loop the test drives one step at a time:
// New, prime, Start, but no Run. Cleanup closes it (Close on a Producer
// that never ran does the full shutdown).
func stepper(tb testing.TB, source string, cp bool, g frame.Geometry, slots, depth int) *Producer {
	tb.Helper()
	p, err := New(Config{
		Name: fmt.Sprintf("w%d-%d", os.Getpid(), internalRingSeq.Add(1)), Source: source, Copy: cp,
		Geometry: g, Slots: slots, QueueDepth: depth, FrameRate: FreeRun, StatsInterval: -1,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	if err := p.loop.prime(); err != nil {
		tb.Fatal(err)
	}
	if err := p.grab.Start(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// closeAndCheck closes a stepper's Producer and checks that every frame id
// the grabber consumed is accounted for.
func closeAndCheck(tb testing.TB, p *Producer) {
	tb.Helper()
	if err := p.Close(); err != nil {
		tb.Fatal(err)
	}
	if st := p.Stats(); st.Frames != st.Accounted() || st.Frames == 0 {
		tb.Fatalf("accounting: %+v", st)
	}
}

func steps(tb testing.TB, p *Producer, n int) {
	tb.Helper()
	ctx := context.Background()
	for range n {
		if err := p.step(ctx); err != nil {
			tb.Fatal(err)
		}
	}
}

func kinds() []string {
	if native.SDKAvailable {
		return []string{native.KindSDK, native.KindSynthetic}
	}
	return []string{native.KindSynthetic}
}

func modeName(cp bool) string {
	if cp {
		return "safe-copy"
	}
	return "zero-copy"
}
