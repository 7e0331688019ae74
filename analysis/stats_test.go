package analysis_test

import (
	"encoding/binary"
	"testing"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/frame"
)

// TestStatsHandMade checks exact statistics on a tiny frame whose padding
// is full of 0xFF and 0x00 bytes that must not be counted.
func TestStatsHandMade(t *testing.T) {
	rows := [][]byte{
		{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110},
		{0, 255, 7, 7, 7, 7, 7, 7, 7, 7, 1},
		{128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138},
	}
	for _, f := range formats {
		for _, pad := range []int{0, 1, 5, 13} {
			for _, pb := range []byte{0x00, 0xFF} {
				buf, g := image8(t, f, rows, pad, pb)
				o := analysis.Options{Histogram: true}
				r := analyze(t, o, buf, g)
				checkAgainstRef(t, r, buf, g, o)
				var sum, count uint64
				for _, row := range rows {
					for _, v := range row {
						sum += measured(f, v)
						count++
					}
					if g.Width > len(row) { // the column image8 adds to odd 4:2:2 rows
						sum += measured(f, 100)
						count++
					}
				}
				if r.Stats.Count != count {
					t.Fatalf("%v pad %d: count %d", f, pad, r.Stats.Count)
				}
				if r.Stats.Sum != sum {
					t.Fatalf("%v: sum %d, want %d", f, r.Stats.Sum, sum)
				}
				if r.Stats.Min != 0 || uint64(r.Stats.Max) != measured(f, 255) {
					t.Fatalf("%v: min %d max %d", f, r.Stats.Min, r.Stats.Max)
				}
			}
		}
	}
}

// TestStatsMono16Exact uses 16-bit values that are not multiples of 257,
// so that min/max/mean must come from full values, not the histogram.
func TestStatsMono16Exact(t *testing.T) {
	vals := []uint16{1000, 1001, 65535, 0, 258, 257, 12345, 54321, 7, 9, 11}
	g := frame.Geometry{Width: 11, Height: 3, Stride: 11*2 + 3, Format: frame.Mono16}
	buf := make([]byte, g.Size())
	for i := range buf {
		buf[i] = 0xEE
	}
	for y := 0; y < g.Height; y++ {
		for x, v := range vals {
			binary.LittleEndian.PutUint16(buf[y*g.Stride+2*x:], v+uint16(y))
		}
	}
	o := analysis.Options{Histogram: true}
	r := analyze(t, o, buf, g)
	checkAgainstRef(t, r, buf, g, o)
	if r.Stats.Min != 0 || r.Stats.Max != 65535 {
		t.Fatalf("min %d max %d", r.Stats.Min, r.Stats.Max)
	}
}

// TestStatsRGBLuma checks luma and channel means with distinct channels.
func TestStatsRGBLuma(t *testing.T) {
	g := frame.Geometry{Width: 13, Height: 4, Stride: 13*3 + 2, Format: frame.RGB8}
	buf := make([]byte, g.Size())
	for i := range buf {
		buf[i] = byte(i*37 + 11)
	}
	o := analysis.Options{Histogram: true}
	r := analyze(t, o, buf, g)
	checkAgainstRef(t, r, buf, g, o)
	// Pixel (0,0): R, G, B = 11, 48, 85 -> luma (11+96+85)/4 = 48.
	if buf[0] != 11 || buf[1] != 48 || buf[2] != 85 {
		t.Fatalf("test setup: %v", buf[:3])
	}
	if r.Histogram[48] == 0 {
		t.Fatal("luma 48 not counted")
	}
}

// TestStatsPattern compares against the reference on pattern frames of
// several sizes (including widths that leave word tails) and strides,
// with and without the stamp and an ignore rectangle.
func TestStatsPattern(t *testing.T) {
	opts := []analysis.Options{
		{Histogram: true},
		{Histogram: true, SkipStamp: true},
		{Histogram: true, SkipStamp: true, Ignore: analysis.Rect{X: 5, Y: -3, W: 17, H: 40}},
		{Histogram: true, Ignore: analysis.Rect{X: 30, Y: 10, W: 1000, H: 2}},
	}
	for i, f := range formats {
		for k, wh := range [][2]int{{1, 40}, {7, 9}, {61, 33}, {64, 64}, {203, 77}} {
			for j, pad := range []int{0, 3, 16} {
				if i >= 3 && j != (i+k)%3 {
					continue // past the first formats, one padding per size
				}
				g := frame.Packed(wh[0], wh[1], f)
				g.Stride += pad
				if g.Size() < frame.StampSize || g.Validate() != nil {
					continue
				}
				for id := uint64(0); id < 3; id++ {
					buf := pattern(t, g, id)
					for _, o := range opts {
						checkAgainstRef(t, analyze(t, o, buf, g), buf, g, o)
					}
				}
			}
		}
	}
}

// TestStatsAllIgnored: with nothing measured every statistic is zero.
func TestStatsAllIgnored(t *testing.T) {
	for _, f := range formats {
		buf, g := image8(t, f, art("#o.\n.o#"), 2, 0xFF)
		o := analysis.DefaultOptions()
		o.Ignore = analysis.Rect{X: -1, Y: -1, W: 10, H: 10}
		r := analyze(t, o, buf, g)
		if r.Stats != (analysis.Stats{}) || r.DefectCount != 0 || len(r.Defects) != 0 {
			t.Fatalf("%v: %+v", f, r)
		}
	}
}

// TestStampRows: with a stride shorter than the stamp, SkipStamp ignores
// the pixels of every row the stamp covers.
func TestStampRows(t *testing.T) {
	for _, f := range formats {
		for _, w := range []int{1, 3, 5, 10, 11, 12} {
			g := frame.Packed(w, 40, f)
			g.Stride++
			if g.Validate() != nil {
				continue // odd width of a 4:2:2 format
			}
			buf := pattern(t, g, 4)
			o := analysis.Options{SkipStamp: true, Histogram: true}
			r := analyze(t, o, buf, g)
			checkAgainstRef(t, r, buf, g, o)
			bits := f.BitsPerPixel()
			ignored := 0
			for y := 0; y < g.Height; y++ {
				for x := 0; x < w; x++ {
					if y*g.Stride*8+x*bits < 8*frame.StampSize {
						ignored++
					}
				}
			}
			if int(r.Stats.Count) != w*40-ignored {
				t.Fatalf("%v w %d: count %d, want %d", f, w, r.Stats.Count, w*40-ignored)
			}
		}
	}
}
