package producer

import (
	"context"
	"fmt"
	"testing"

	"github.com/framering/framering/frame"
)

// BenchmarkStep is the producer's cost per frame at rate 0 (FreeRun: the
// grabber takes a frame as soon as a buffer is queued), with 4 KiB frames
// so that the grabber's pattern fill is small beside the handoff.
// Zero-copy: acquire + queue + dequeue + publish + detach. Safe-copy:
// dequeue + acquire + 4 KiB copy + requeue + publish. The grabber's thread
// and the loop run concurrently: ns/op is the pipeline's period.
func BenchmarkStep(b *testing.B) {
	g := frame.Packed(64, 64, frame.Mono8)
	for _, kind := range kinds() {
		for _, cp := range []bool{false, true} {
			b.Run(kind+"/"+modeName(cp), func(b *testing.B) {
				p := stepper(b, kind, cp, g, 16, 4)
				steps(b, p, 64)
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if err := p.step(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				closeAndCheck(b, p)
			})
		}
	}
}

// BenchmarkFrameSize runs whole steps with large frames in both modes.
// The grabber fills each frame (on its own thread) while the loop handles
// the previous one, so ns/op is the slower of the two: the difference
// between the modes is what safe-copy's copy costs end to end.
func BenchmarkFrameSize(b *testing.B) {
	kind := kinds()[0]
	for _, mib := range []int{1, 8, 32} {
		for _, cp := range []bool{false, true} {
			b.Run(fmt.Sprintf("%dMiB/%s", mib, modeName(cp)), func(b *testing.B) {
				g := frame.Packed(1024, mib*1024, frame.Mono8)
				p := stepper(b, kind, cp, g, 4, 2)
				steps(b, p, 8) // every slot and buffer touched once
				ctx := context.Background()
				b.SetBytes(int64(g.Size()))
				for b.Loop() {
					if err := p.step(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSafeCopyCost is the copy alone that safe-copy mode adds per
// frame: Frame.CopyTo from the grabber's private buffer into a ring slot,
// with both already faulted in.
func BenchmarkSafeCopyCost(b *testing.B) {
	kind := kinds()[0]
	for _, mib := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			g := frame.Packed(1024, mib*1024, frame.Mono8)
			p := stepper(b, kind, true, g, 2, 1)
			steps(b, p, 4)
			f, err := p.grab.Dequeue(context.Background(), 0)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Requeue()
			s, err := p.ring.Acquire()
			if err != nil {
				b.Fatal(err)
			}
			defer p.ring.Abort(s)
			if _, err := f.CopyTo(s.Bytes()); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(g.Size()))
			for b.Loop() {
				if _, err := f.CopyTo(s.Bytes()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
