package analysis_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/frame"
)

// BenchmarkAnalyze measures pattern frames of about 1 MiB and 8 MiB in each
// format:
//   - stats:  statistics and histogram only;
//   - detect: statistics plus defect detection on a frame with two defects
//     (the labeling pass scans until the last defect row);
//   - clean:  detection enabled on a frame without defects (the histogram
//     proves there is no foreground, so the labeling pass is skipped).
func BenchmarkAnalyze(b *testing.B) {
	for _, f := range []frame.Format{frame.Mono8, frame.Mono16, frame.RGB8, frame.Mono12, frame.Mono10p, frame.BayerRG8, frame.BGR8, frame.YUV422_8} {
		for _, mib := range []int{1, 8} {
			w := 1024 * mib / 4 * 4
			if mib == 8 {
				w = 2048
			}
			h := mib << 20 / f.RowBytes(w)
			g := frame.Packed(w, h, f)
			modes := []struct {
				name string
				o    analysis.Options
				id   uint64
			}{
				{"stats", analysis.Options{SkipStamp: true}, 2},
				{"detect", analysis.DefaultOptions(), 2},
				{"clean", analysis.DefaultOptions(), 3},
			}
			for _, m := range modes {
				b.Run(fmt.Sprintf("%v/%dMiB/%s", f, mib, m.name), func(b *testing.B) {
					buf := pattern(b, g, m.id)
					benchFrame(b, m.o, buf, g)
				})
			}
		}
	}
}

// BenchmarkLabelNoise measures the labeling pass where it has the most to
// do: a 1 MiB Mono8 frame of uniform noise with 10% bright and 10% dark
// pixels, tens of thousands of blobs.
func BenchmarkLabelNoise(b *testing.B) {
	g := frame.Packed(1024, 1024, frame.Mono8)
	buf := make([]byte, g.Size())
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	o := analysis.Options{Bright: true, Hi: 230, Dark: true, Lo: 25}
	benchFrame(b, o, buf, g)
}

func benchFrame(b *testing.B, o analysis.Options, buf []byte, g frame.Geometry) {
	a, err := analysis.New(o)
	if err != nil {
		b.Fatal(err)
	}
	r, err := a.Analyze(buf, g) // warm-up: size the scratch
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(g.Size()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Analyze(buf, g); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(r.DefectCount), "defects")
}
