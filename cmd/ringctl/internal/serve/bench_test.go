package serve

import (
	"bytes"
	"context"
	"image/jpeg"
	"testing"

	"github.com/framering/framering/frame"
)

// BenchmarkFrameRefresh is the cost of one refresh of the web view's
// picture of a 1280x1024 frame downscaled to 640 pixels: the observer's
// Peek with the rendering inside it (what the producer's ring sees: no
// hold, no write), and the whole refresh with the JPEG encoding.
func BenchmarkFrameRefresh(b *testing.B) {
	for _, f := range []frame.Format{frame.Mono8, frame.Mono16, frame.BayerRG8, frame.RGB8} {
		g := frame.Packed(1280, 1024, f)
		tr := newTestRing(b, "bench", g)
		tr.publish(2)
		s := New(Config{})
		s.Sample(context.Background())
		b.Run(f.String()+"/peek+render", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pic, err := s.peek("bench", 0, 640, false)
				if err != nil {
					b.Fatal(err)
				}
				s.renderers.Put(pic.rend)
			}
		})
		b.Run(f.String()+"/refresh-jpeg", func(b *testing.B) {
			b.ReportAllocs()
			var buf bytes.Buffer
			for b.Loop() {
				pic, err := s.peek("bench", 0, 640, false)
				if err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				if err := jpeg.Encode(&buf, pic.img, &jpeg.Options{Quality: 85}); err != nil {
					b.Fatal(err)
				}
				s.renderers.Put(pic.rend)
			}
		})
		s.Close()
		tr.p.Close()
	}
}
