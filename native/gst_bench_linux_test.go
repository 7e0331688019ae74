//go:build gst && cgo

package native_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/framering/framering/native"
)

// BenchmarkGst is the GStreamer source's frame rate into announced shared
// buffers (ring slots), Dequeue + Requeue per frame, for videotestsrc
// writing in place (zero-copy) and for the same source behind identity
// drop-allocation=true, which hides the sink's pool so that the sink copies
// each frame. videotestsrc pattern=black keeps GStreamer's own per-frame
// work small: what is left is the handoff, and, in the copy path, the
// copy. It reports frames/s and copies/frame.
func BenchmarkGst(b *testing.B) {
	for _, size := range []struct {
		name          string
		width, height int
	}{{"640x480", 640, 480}, {"1920x1080", 1920, 1080}, {"3840x2160", 3840, 2160}} {
		for _, path := range []struct{ name, tail string }{
			{"zero-copy", ""},
			{"copy", " ! identity drop-allocation=true"},
		} {
			b.Run(size.name+"-GRAY8-"+path.name, func(b *testing.B) {
				desc := fmt.Sprintf("videotestsrc pattern=black ! video/x-raw,format=GRAY8,width=%d,height=%d%s", size.width, size.height, path.tail)
				g, err := native.Open(native.KindGst, native.Config{Pipeline: desc})
				if err != nil {
					b.Fatal(err)
				}
				e := &env{t: b, g: g, cfg: g.Config()}
				b.Cleanup(e.cleanup)
				e.buffers(4, 0, true)
				if err := g.Start(); err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				f, err := g.Dequeue(ctx, 0) // the pipeline is up
				if err != nil {
					b.Fatal(err)
				}
				f.Requeue()
				before := g.Counters()
				b.SetBytes(int64(e.cfg.Geometry.Size()))
				b.ReportAllocs()
				for b.Loop() {
					f, err := g.Dequeue(ctx, 0)
					if err != nil {
						b.Fatal(err)
					}
					if err := f.Requeue(); err != nil {
						b.Fatal(err)
					}
				}
				after := g.Counters()
				frames := after.Delivered - before.Delivered
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
				b.ReportMetric(float64(after.Copies-before.Copies)/float64(max(frames, 1)), "copies/frame")
			})
		}
	}
}
