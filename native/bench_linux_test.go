package native_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/native"
)

// BenchmarkDequeueRequeue is the cost per frame of Dequeue + Requeue at
// rate 0 (the device refills a buffer as soon as it is requeued), with
// 4 KiB frames so that the pattern fill is small beside the handoff. The
// device's thread and the benchmark loop run concurrently: ns/op is the
// pipeline's period, not one call's latency.
func BenchmarkDequeueRequeue(b *testing.B) {
	for _, kind := range kinds() {
		b.Run(kind, func(b *testing.B) {
			e := newEnv(b, kind, cfgOf(64, 64, 0, frame.Mono8, 0, false))
			e.buffers(8, 0, true)
			if err := e.g.Start(); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				f, err := e.g.Dequeue(ctx, 0)
				if err != nil {
					b.Fatal(err)
				}
				if err := f.Requeue(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSafeCopy is what safe-copy mode adds per frame: copying a frame
// from a device-allocated buffer into a MAP_SHARED buffer (a ring slot).
func BenchmarkSafeCopy(b *testing.B) {
	kind := native.KindSynthetic
	if native.SDKAvailable {
		kind = native.KindSDK // the source is then C-mmap'ed memory, as in production
	}
	for _, mib := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			cfg := cfgOf(1024, mib*1024, 0, frame.Mono8, 0, false)
			e := newEnv(b, kind, cfg)
			size := cfg.Geometry.Size()
			id, err := e.g.Allocate(size)
			if err != nil {
				b.Fatal(err)
			}
			if err := e.g.Queue(id); err != nil {
				b.Fatal(err)
			}
			dst := e.shared(size)
			if err := e.g.Start(); err != nil {
				b.Fatal(err)
			}
			f := e.dequeue()
			if _, err := f.CopyTo(dst); err != nil { // fault the pages in before timing
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := f.CopyTo(dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
