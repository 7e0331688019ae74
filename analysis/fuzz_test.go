package analysis_test

import (
	"errors"
	"testing"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/frame"
)

// fuzzCase decodes a fuzz input into a small frame, options and a band
// size for the statistics pass: a 14-byte header, then pixel bytes
// (repeated to fill the buffer, padding included).
func fuzzCase(data []byte) ([]byte, frame.Geometry, analysis.Options, int) {
	var h [14]byte
	copy(h[:], data)
	f := formats[int(h[0])%len(formats)]
	w := 1 + int(h[1])%24
	if h[3]&0x80 != 0 {
		w = 1 + int(h[1]) // wide: several 64-pixel chunks per row
	}
	if info, _ := f.Info(); w%info.WidthMultiple != 0 {
		w++
	}
	g := frame.Packed(w, 1+int(h[2])%24, f)
	g.Stride += int(h[3]&0x7F) % 8
	flags := h[6]
	o := analysis.Options{
		Hi: h[4], Lo: h[5],
		Bright:    flags&1 != 0,
		Dark:      flags&2 != 0,
		SkipStamp: flags&4 != 0,
		Histogram: flags&8 != 0,
		MinArea:   int(h[11]) % 5,
		// A small cap sometimes, to exercise truncation.
		MaxDefects: int(h[12]) % 4,
	}
	if flags&16 != 0 {
		o.Ignore = analysis.Rect{X: int(int8(h[7])) % 30, Y: int(int8(h[8])) % 30, W: int(h[9]) % 30, H: int(h[10]) % 30}
	}
	if flags&32 != 0 && o.Bright && o.Dark && o.Lo >= o.Hi {
		o.Lo, o.Hi = o.Hi/2, o.Hi/2+1+o.Lo/2 // usually make them valid
	}
	pix := data[min(len(data), len(h)):]
	n := (g.Height-1)*g.Stride + g.RowBytes()
	if flags&64 != 0 {
		n = g.Size()
	}
	buf := make([]byte, n)
	for i := range buf {
		if len(pix) > 0 {
			buf[i] = pix[i%len(pix)]
		}
	}
	return buf, g, o, 1 + int(h[13])
}

// FuzzAnalyze compares Analyze with the flood-fill reference on random
// small frames: statistics, histogram, and every blob's count, area,
// bounding box, centroid and polarity.
func FuzzAnalyze(f *testing.F) {
	f.Add([]byte{0, 10, 10, 3, 128, 60, 3, 0, 0, 0, 0, 0, 0, 200, 3, 99, 255, 0, 17, 128, 129})
	f.Add([]byte{1, 23, 5, 1, 100, 20, 1 | 2 | 4 | 8 | 16, 250, 2, 4, 3, 2, 1, 0x80, 0x7F, 0xFF, 0x00, 0xC8})
	f.Add([]byte{2, 17, 17, 7, 120, 119, 3 | 64, 0, 0, 0, 0, 1, 3, 1, 2, 3, 4, 5, 6, 7, 250, 251, 252, 9})
	f.Add([]byte{2, 3, 40, 0, 0, 255, 1 | 4, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 23, 23, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0xFF, 0x00, 0x00, 0xFF, 0x00})
	f.Add([]byte{1, 200, 5, 0x81, 128, 10, 3, 0, 0, 0, 0, 0, 0, 40, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		buf, g, o, band := fuzzCase(data)
		defer analysis.SetBandBytes(band)()
		a, err := analysis.New(o)
		if err != nil {
			if !errors.Is(err, analysis.ErrOptions) || a != nil {
				t.Fatalf("New(%+v) = %v, %v", o, a, err)
			}
			return
		}
		r, err := a.Analyze(buf, g)
		if err != nil {
			t.Fatalf("Analyze(%+v): %v", g, err)
		}
		checkAgainstRef(t, r, buf, g, o)
		// Again with the same analyzer: scratch reuse must not leak state.
		analysis.SetBandBytes(1 << 14)
		r, err = a.Analyze(buf, g)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstRef(t, r, buf, g, o)
	})
}

// FuzzGeometry: any geometry and buffer length gives a result or an error
// wrapping ErrGeometry, never a panic, and a result only when the buffer
// holds every pixel row.
func FuzzGeometry(f *testing.F) {
	f.Add(10, 4, 24, uint32(frame.Mono16), 92)
	f.Add(10, 4, 24, uint32(frame.Mono16), 91)
	f.Add(1, 1, 1, uint32(frame.Mono8), 1)
	f.Add(-1, 1, 1, uint32(frame.Mono8), 1)
	f.Add(3, 2, 9, uint32(frame.RGB8), 17)
	f.Add(1<<16, 1<<16, 1<<18, uint32(frame.RGB8), 1<<20)
	f.Add(1<<16+1, 1, 1<<18, uint32(frame.Mono8), 1<<20)
	f.Add(5, 5, 5, uint32(12345), 100)
	a, err := analysis.New(analysis.DefaultOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, w, h, stride int, format uint32, n int) {
		n = int(uint(n) % (1 << 20))
		g := frame.Geometry{Width: w, Height: h, Stride: stride, Format: frame.Format(format)}
		buf := make([]byte, n)
		r, err := a.Analyze(buf, g)
		if err != nil {
			if r != nil || !errors.Is(err, analysis.ErrGeometry) {
				t.Fatalf("%+v, %d bytes: %v, %v", g, n, r, err)
			}
			return
		}
		if g.Validate() != nil || uint64(n) < uint64(h-1)*uint64(stride)+uint64(g.RowBytes()) {
			t.Fatalf("%+v accepted with %d bytes", g, n)
		}
		if r.Stats.Count > uint64(w)*uint64(h) {
			t.Fatalf("%+v: count %d", g, r.Stats.Count)
		}
	})
}
