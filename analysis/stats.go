package analysis

// The statistics pass. Every kernel takes the bytes of one measured span
// of one row (Invariant 2 of analyzer.go) and works on words loaded eight
// bytes at a time where that helps. Histogram increments are spread over
// four sub-histograms so that runs of equal values do not serialize on one
// counter; the sub-histograms are summed once per frame.
//
// Sub-histogram counters are uint32: a frame has at most MaxDimension² =
// 2^32 pixels and each sub-histogram receives at most a quarter of a row
// plus seven pixels per row, below 2^31.

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// acc16 accumulates exact statistics of 16-bit-container samples. sq cannot overflow: at most
// 2^32 pixels of at most (2^16-1)^2 each is below 2^64.
type acc16 struct {
	sum, sq, mn, mx uint64
}

// accRGB accumulates the sums of bytes 0, 1 and 2 of the pixels of an
// RGB8 or BGR8 frame (at most 2^32·255 each).
type accRGB struct {
	r, g, b uint64
}

// bandBytes is about how many pixel bytes the statistics pass measures
// between two looks at the foreground bins of the histogram. A band whose
// rows add nothing to those bins holds no foreground (no candidate, for
// 16-bit samples) and the labeling pass skips it. Summing the foreground bins costs
// at most 1024 loads per band, about 1.5% of measuring 16 KiB. It is a
// variable only so that tests can make bands of a row or two.
var bandBytes = 16 << 10

// stats runs the statistics pass over buf, marking in a.bands which bands
// of rows may hold foreground, and returns how many foreground pixels the
// frame has: exactly when the histogram tells (8-bit samples, luma), or -1
// when it only tells that there may be some (n-bit samples, whose histogram
// is of the top 8 bits). 0 means certainly none.
func (a *Analyzer) stats(buf []byte) int64 {
	a.sub = [4][256]uint32{}
	a.counts = 0
	a.s16 = acc16{mn: math.MaxUint64}
	a.rgb = accRGB{}
	g := a.g
	sw := a.sw
	shift := uint(a.bits - 8)
	detect := a.opts.detect()
	var fg uint64
	for b, y0 := 0, 0; y0 < g.Height; b, y0 = b+1, y0+a.bandRows {
		for y := y0; y < min(y0+a.bandRows, g.Height); y++ {
			s, n := a.rowSpans(y)
			if n == 0 {
				continue
			}
			row := a.row(buf, y)
			for _, sp := range s[:n] {
				p := row[sp.x0*sw : sp.x1*sw]
				a.counts += uint64(sp.x1 - sp.x0)
				switch a.kern {
				case k8:
					hist8(&a.sub, p)
				case k16:
					stats16(&a.s16, &a.sub, p, shift)
				case kRGB:
					statsRGB(&a.rgb, &a.sub, p)
				}
			}
		}
		if detect {
			c := a.fgBins()
			a.bands[b] = c != fg
			fg = c
		}
	}
	for v := range a.hist {
		a.hist[v] = uint64(a.sub[0][v]) + uint64(a.sub[1][v]) + uint64(a.sub[2][v]) + uint64(a.sub[3][v])
	}
	if a.kern == k16 && fg != 0 {
		// An n-bit value >= Expand8(Hi, n) has v>>(n-8) >= Hi, and one <=
		// Expand8(Lo, n) has v>>(n-8) <= Lo (and a value above 2^n-1 is
		// counted in bin 255): fg is an upper bound only.
		return -1
	}
	return int64(fg)
}

// fgBins returns the number of values counted so far in the foreground
// bins of the histogram.
func (a *Analyzer) fgBins() uint64 {
	var n uint64
	if a.opts.Bright {
		for v := int(a.opts.Hi); v < 256; v++ {
			n += uint64(a.sub[0][v]) + uint64(a.sub[1][v]) + uint64(a.sub[2][v]) + uint64(a.sub[3][v])
		}
	}
	if a.opts.Dark {
		for v := 0; v <= int(a.opts.Lo); v++ {
			n += uint64(a.sub[0][v]) + uint64(a.sub[1][v]) + uint64(a.sub[2][v]) + uint64(a.sub[3][v])
		}
	}
	return n
}

// finishStats fills st from the accumulated sums.
func (a *Analyzer) finishStats(st *Stats) {
	n := a.counts
	if n == 0 {
		return
	}
	st.Count = n
	if a.kern == k16 {
		st.Min, st.Max, st.Sum = int(a.s16.mn), int(a.s16.mx), a.s16.sum
		st.Mean = float64(a.s16.sum) / float64(n)
		st.StdDev = stddev(n, a.s16.sum, a.s16.sq)
		return
	}
	var sum, sq uint64
	mn, mx := -1, 0
	for v, c := range a.hist {
		if c == 0 {
			continue
		}
		if mn < 0 {
			mn = v
		}
		mx = v
		sum += uint64(v) * c
		sq += uint64(v*v) * c
	}
	st.Min, st.Max, st.Sum = mn, mx, sum
	st.Mean = float64(sum) / float64(n)
	st.StdDev = stddev(n, sum, sq)
	if a.kern == kRGB {
		// a.rgb sums bytes 0, 1 and 2 of each pixel; Order says which
		// channel each is.
		fn := float64(n)
		sums := [3]uint64{a.rgb.r, a.rgb.g, a.rgb.b}
		o := a.info.Order
		a.chans = ChannelMeans{R: float64(sums[o[0]]) / fn, G: float64(sums[o[1]]) / fn, B: float64(sums[o[2]]) / fn}
		st.Channels = &a.chans
	}
}

// stddev returns the population standard deviation of n values with sum
// sum and sum of squares sq: sqrt(n·sq - sum²)/n, with n·sq - sum²
// computed exactly in 128 bits (it is never negative).
func stddev(n, sum, sq uint64) float64 {
	h1, l1 := bits.Mul64(n, sq)
	h2, l2 := bits.Mul64(sum, sum)
	lo, borrow := bits.Sub64(l1, l2, 0)
	hi, _ := bits.Sub64(h1, h2, borrow)
	return math.Sqrt(float64(hi)*0x1p64+float64(lo)) / float64(n)
}

// hist8 counts the bytes of p into h.
func hist8(h *[4][256]uint32, p []byte) {
	for len(p) >= 8 {
		w := binary.LittleEndian.Uint64(p)
		h[0][byte(w)]++
		h[1][byte(w>>8)]++
		h[2][byte(w>>16)]++
		h[3][byte(w>>24)]++
		h[0][byte(w>>32)]++
		h[1][byte(w>>40)]++
		h[2][byte(w>>48)]++
		h[3][byte(w>>56)]++
		p = p[8:]
	}
	for _, v := range p {
		h[0][v]++
	}
}

// stats16 accumulates the little-endian 16-bit values of p into s, and
// v>>shift (clamped to 255: only a sample with bits above its format's
// significant bits gets there) into h.
func stats16(s *acc16, h *[4][256]uint32, p []byte, shift uint) {
	sum, sq, mn, mx := s.sum, s.sq, s.mn, s.mx
	for len(p) >= 8 {
		w := binary.LittleEndian.Uint64(p)
		v0, v1, v2, v3 := w&0xFFFF, w>>16&0xFFFF, w>>32&0xFFFF, w>>48
		sum += v0 + v1 + v2 + v3
		sq += v0*v0 + v1*v1 + v2*v2 + v3*v3
		// Reduce pairwise so that the loop-carried chain is one step.
		mn = min(mn, min(min(v0, v1), min(v2, v3)))
		mx = max(mx, max(max(v0, v1), max(v2, v3)))
		h[0][byte(min(v0>>shift, 255))]++
		h[1][byte(min(v1>>shift, 255))]++
		h[2][byte(min(v2>>shift, 255))]++
		h[3][byte(min(v3>>shift, 255))]++
		p = p[8:]
	}
	for len(p) >= 2 {
		v := uint64(binary.LittleEndian.Uint16(p))
		sum += v
		sq += v * v
		mn = min(mn, v)
		mx = max(mx, v)
		h[0][byte(min(v>>shift, 255))]++
		p = p[2:]
	}
	s.sum, s.sq, s.mn, s.mx = sum, sq, mn, mx
}

// statsRGB accumulates the byte sums of the RGB8 or BGR8 pixels of p into s,
// and their luma (R + 2G + B) / 4 into h.
func statsRGB(s *accRGB, h *[4][256]uint32, p []byte) {
	sr, sg, sb := s.r, s.g, s.b
	for len(p) >= 12 {
		r0, g0, b0 := uint(p[0]), uint(p[1]), uint(p[2])
		r1, g1, b1 := uint(p[3]), uint(p[4]), uint(p[5])
		r2, g2, b2 := uint(p[6]), uint(p[7]), uint(p[8])
		r3, g3, b3 := uint(p[9]), uint(p[10]), uint(p[11])
		sr += uint64(r0 + r1 + r2 + r3)
		sg += uint64(g0 + g1 + g2 + g3)
		sb += uint64(b0 + b1 + b2 + b3)
		h[0][byte((r0+2*g0+b0)>>2)]++
		h[1][byte((r1+2*g1+b1)>>2)]++
		h[2][byte((r2+2*g2+b2)>>2)]++
		h[3][byte((r3+2*g3+b3)>>2)]++
		p = p[12:]
	}
	for len(p) >= 3 {
		r, g, b := uint(p[0]), uint(p[1]), uint(p[2])
		sr += uint64(r)
		sg += uint64(g)
		sb += uint64(b)
		h[0][byte((r+2*g+b)>>2)]++
		p = p[3:]
	}
	s.r, s.g, s.b = sr, sg, sb
}
