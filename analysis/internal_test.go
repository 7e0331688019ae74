package analysis

import (
	"math"
	"testing"

	"github.com/framering/framering/frame"
)

// TestLaneGE checks the lane comparisons against plain comparisons for
// every byte value and threshold in every byte lane, and for many uint16
// values and thresholds in every uint16 lane, with neighbours that would
// expose a carry or borrow between lanes; and checks pack8 and pack16.
func TestLaneGE(t *testing.T) {
	fills := []uint64{0, ^uint64(0), laneHigh, laneHigh >> 1, 0x0123456789ABCDEF}
	for c := 0; c < 256; c++ {
		for v := 0; v < 256; v++ {
			for lane := 0; lane < 8; lane++ {
				for _, fill := range fills {
					sh := uint(8 * lane)
					w := fill&^(0xFF<<sh) | uint64(v)<<sh
					cw := fill&^(0xFF<<sh) | uint64(c)<<sh
					ge := laneGE(w, cw, laneHigh)>>(sh+7)&1 != 0
					le := laneGE(cw, w, laneHigh)>>(sh+7)&1 != 0
					if ge != (v >= c) || le != (v <= c) {
						t.Fatalf("v %d c %d lane %d fill %#x: ge %v le %v", v, c, lane, fill, ge, le)
					}
					if got := cand(w, uint64(c)*laneOnes, uint64(c)*laneOnes, laneHigh, 0)>>(sh+7)&1 != 0; got != (v >= c) {
						t.Fatalf("cand v %d c %d", v, c)
					}
				}
			}
		}
	}
	vals := []int{0, 1, 2, 127, 128, 255, 256, 257, 0x7FFF, 0x8000, 0x8001, 0xFEFF, 0xFF00, 0xFFFE, 0xFFFF}
	for i := 0; i < 300; i++ {
		vals = append(vals, (i*7919+13)%65536)
	}
	for _, c := range vals {
		for _, v := range vals {
			for lane := 0; lane < 4; lane++ {
				for _, fill := range fills {
					sh := uint(16 * lane)
					w := fill&^(0xFFFF<<sh) | uint64(v)<<sh
					cw := fill&^(0xFFFF<<sh) | uint64(c)<<sh
					ge := laneGE(w, cw, lane16High)>>(sh+15)&1 != 0
					le := laneGE(cw, w, lane16High)>>(sh+15)&1 != 0
					if ge != (v >= c) || le != (v <= c) {
						t.Fatalf("16-bit v %d c %d lane %d fill %#x: ge %v le %v", v, c, lane, fill, ge, le)
					}
				}
			}
		}
	}
	for m := 0; m < 256; m++ {
		var w8, w16 uint64
		for k := 0; k < 8; k++ {
			if m>>k&1 != 0 {
				w8 |= 0x80 << (8 * k)
				if k < 4 {
					w16 |= 0x8000 << (16 * k)
				}
			}
		}
		if pack8(w8) != uint64(m) || pack16(w16) != uint64(m&15) {
			t.Fatalf("pack %#x: %#x %#x", m, pack8(w8), pack16(w16))
		}
	}
}

func TestClip(t *testing.T) {
	cases := []struct{ lo, n, limit, a, b int }{
		{0, 10, 5, 0, 5},
		{2, 2, 5, 2, 4},
		{-3, 5, 5, 0, 2},
		{-3, 3, 5, 0, 0},
		{5, 1, 5, 0, 0},
		{4, math.MaxInt, 5, 4, 5},
		{math.MinInt, math.MaxInt, 5, 0, 0},
		{-1, math.MaxInt, 5, 0, 5},
		{math.MaxInt, math.MaxInt, 5, 0, 0},
		{1, 0, 5, 0, 0},
	}
	for _, c := range cases {
		if a, b := clip(c.lo, c.n, c.limit); a != c.a || b != c.b {
			t.Fatalf("clip(%d, %d, %d) = %d, %d; want %d, %d", c.lo, c.n, c.limit, a, b, c.a, c.b)
		}
	}
}

// TestRowSpans checks Invariant 2 of analyzer.go against a pixel-by-pixel
// rule for many stamp/ignore combinations.
func TestRowSpans(t *testing.T) {
	for _, f := range frame.Formats() {
		bits := f.BitsPerPixel()
		for _, w := range []int{1, 2, 5, 11, 40} {
			for _, pad := range []int{0, 1, 9} {
				g := frame.Geometry{Width: w, Height: 12, Stride: f.RowBytes(w) + pad, Format: f}
				if g.Validate() != nil {
					continue // odd width of a 4:2:2 format
				}
				for _, r := range []Rect{{}, {X: 0, Y: 0, W: 3, H: 2}, {X: 2, Y: 1, W: 2, H: 3}, {X: -5, Y: -5, W: 100, H: 6}, {X: 4, Y: 0, W: 1, H: 12}} {
					for _, stamp := range []bool{false, true} {
						a := &Analyzer{opts: Options{SkipStamp: stamp, Ignore: r}}
						if err := a.setup(g); err != nil {
							t.Fatal(err)
						}
						for y := 0; y < g.Height; y++ {
							s, n := a.rowSpans(y)
							got := make([]bool, w)
							prev := -1
							for _, sp := range s[:n] {
								if sp.x0 >= sp.x1 || sp.x0 <= prev || sp.x0 < 0 || sp.x1 > w {
									t.Fatalf("%v w %d rect %+v stamp %v row %d: bad spans %v", f, w, r, stamp, y, s[:n])
								}
								prev = sp.x1
								for x := sp.x0; x < sp.x1; x++ {
									got[x] = true
								}
							}
							for x := 0; x < w; x++ {
								ign := stamp && y*g.Stride*8+x*bits < 8*frame.StampSize ||
									x >= r.X && x < r.X+r.W && y >= r.Y && y < r.Y+r.H
								if got[x] == ign {
									t.Fatalf("%v w %d rect %+v stamp %v: pixel (%d,%d) measured %v", f, w, r, stamp, x, y, got[x])
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestStddevExtremes: the 128-bit variance does not overflow at the
// largest Mono16 sums.
func TestStddevExtremes(t *testing.T) {
	const n = 1 << 32
	// Half the pixels 0, half 65535: stddev 65535/2.
	sum := uint64(n/2) * 65535
	sq := uint64(n/2) * 65535 * 65535
	if got := stddev(n, sum, sq); math.Abs(got-65535.0/2) > 1e-6 {
		t.Fatalf("stddev %v", got)
	}
	if got := stddev(n, n*65535, n*65535*65535); got != 0 {
		t.Fatalf("constant frame: stddev %v", got)
	}
}
