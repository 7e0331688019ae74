package analysis_test

// A naive reference implementation of the analysis, pixel by pixel, for the
// tests to compare against: no words, no runs, no union-find.

import (
	"encoding/binary"
	"math"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/frame"
)

// refImage is a decoded frame: per pixel the measured value (value, 16-bit
// value, or luma), the RGB channels, and whether it is ignored.
type refImage struct {
	w, h    int
	f       frame.Format
	val     []int
	r, g, b []int
	ignored []bool
}

func decode(buf []byte, g frame.Geometry, o analysis.Options) *refImage {
	info, _ := g.Format.Info()
	bits := info.BitsPerPixel
	im := &refImage{w: g.Width, h: g.Height, f: g.Format}
	n := g.Width * g.Height
	im.val, im.ignored = make([]int, n), make([]bool, n)
	im.r, im.g, im.b = make([]int, n), make([]int, n), make([]int, n)
	for y := 0; y < g.Height; y++ {
		row := buf[y*g.Stride:]
		for x := 0; x < g.Width; x++ {
			i := y*g.Width + x
			switch {
			case info.Packing == frame.PackedGEV:
				b, l := row[x/2*3:], info.SampleBits-8
				if x%2 == 0 {
					im.val[i] = int(b[0])<<l | int(b[1])&(1<<l-1)
				} else {
					im.val[i] = int(b[2])<<l | int(b[1]>>4)&(1<<l-1)
				}
			case info.Packing == frame.PackedLSB:
				v := 0
				for k := 0; k < bits; k++ {
					bit := x*bits + k
					v |= int(row[bit/8]>>(bit%8)&1) << k
				}
				im.val[i] = v
			case info.Kind == frame.KindRGB:
				px := row[3*x:]
				r, gg, b := int(px[info.Order[0]]), int(px[info.Order[1]]), int(px[info.Order[2]])
				im.r[i], im.g[i], im.b[i] = r, gg, b
				im.val[i] = (r + 2*gg + b) / 4
			case info.Kind == frame.KindYUV422:
				yOff := int(info.Order[0])
				if x%2 == 1 {
					yOff = int(info.Order[2])
				}
				im.val[i] = int(row[x/2*4+yOff])
			case bits == 8:
				im.val[i] = int(row[x])
			default:
				im.val[i] = int(binary.LittleEndian.Uint16(row[2*x:]))
			}
			// A pixel is under the stamp when its first bit is.
			ig := o.SkipStamp && y*g.Stride*8+x*bits < 8*frame.StampSize
			rc := o.Ignore
			if rc.W > 0 && rc.H > 0 && x >= rc.X && x-rc.X < rc.W && y >= rc.Y && y-rc.Y < rc.H {
				ig = true
			}
			im.ignored[i] = ig
		}
	}
	return im
}

// sampleBits is the significant bits of the values decode stores for f when
// they are more than 8 (16-bit-container and packed formats), else 0.
func sampleBits(f frame.Format) int {
	info, _ := f.Info()
	if (info.Kind == frame.KindMono || info.Kind == frame.KindBayer) && info.BitsPerPixel > 8 {
		return info.SampleBits
	}
	return 0
}

// scale8 is an 8-bit threshold at n bits, by bit replication.
func scale8(t, n int) int { return t<<(n-8) | t>>(16-n) }

type refStats struct {
	count, sum, sq uint64
	min, max       int
	hist           [256]uint64
	mean, std      float64
	cr, cg, cb     float64
}

func (im *refImage) stats() refStats {
	s := refStats{min: -1}
	var sr, sg, sb uint64
	for i, v := range im.val {
		if im.ignored[i] {
			continue
		}
		s.count++
		s.sum += uint64(v)
		s.sq += uint64(v) * uint64(v)
		if s.min < 0 || v < s.min {
			s.min = v
		}
		s.max = max(s.max, v)
		if n := sampleBits(im.f); n != 0 {
			s.hist[min(v>>(n-8), 255)]++
		} else {
			s.hist[v]++
		}
		sr += uint64(im.r[i])
		sg += uint64(im.g[i])
		sb += uint64(im.b[i])
	}
	if s.count == 0 {
		s.min = 0
		return s
	}
	n := float64(s.count)
	s.mean = float64(s.sum) / n
	var d2 float64
	for i, v := range im.val {
		if !im.ignored[i] {
			d := float64(v) - s.mean
			d2 += d * d
		}
	}
	s.std = math.Sqrt(d2 / n)
	s.cr, s.cg, s.cb = float64(sr)/n, float64(sg)/n, float64(sb)/n
	return s
}

// class returns 1 for bright, 2 for dark, 0 for background or ignored.
func (im *refImage) class(i int, o analysis.Options) int {
	if im.ignored[i] {
		return 0
	}
	v, hi, lo := im.val[i], int(o.Hi), int(o.Lo)
	if n := sampleBits(im.f); n != 0 {
		hi, lo = scale8(hi, n), scale8(lo, n)
	}
	if o.Bright && v >= hi {
		return 1
	}
	if o.Dark && v <= lo {
		return 2
	}
	return 0
}

// blobs labels by flood fill (8-connectivity, one polarity per blob) and
// returns every blob, in raster order of its first pixel, unfiltered.
func (im *refImage) blobs(o analysis.Options) []analysis.Defect {
	cls := make([]int, len(im.val))
	for i := range cls {
		cls[i] = im.class(i, o)
	}
	seen := make([]bool, len(cls))
	var out []analysis.Defect
	var stack []int
	for start := range cls {
		if cls[start] == 0 || seen[start] {
			continue
		}
		c := cls[start]
		seen[start] = true
		stack = append(stack[:0], start)
		x0, y0, x1, y1 := im.w, im.h, -1, -1
		var area, sx, sy uint64
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := i%im.w, i/im.w
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			area++
			sx += uint64(x)
			sy += uint64(y)
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= im.w || ny >= im.h {
						continue
					}
					j := ny*im.w + nx
					if !seen[j] && cls[j] == c {
						seen[j] = true
						stack = append(stack, j)
					}
				}
			}
		}
		out = append(out, analysis.Defect{
			X: x0, Y: y0, W: x1 - x0 + 1, H: y1 - y0 + 1, Area: int(area),
			CX: float64(sx) / float64(area), CY: float64(sy) / float64(area),
			Bright: c == 1,
		})
	}
	return out
}

// want returns the defect count and list Analyze should report.
func (im *refImage) want(o analysis.Options) (int, []analysis.Defect) {
	maxD := o.MaxDefects
	if maxD == 0 {
		maxD = analysis.DefaultMaxDefects
	}
	list := []analysis.Defect{}
	n := 0
	for _, d := range im.blobs(o) {
		if d.Area < o.MinArea {
			continue
		}
		n++
		if len(list) < maxD {
			list = append(list, d)
		}
	}
	return n, list
}
