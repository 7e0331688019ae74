package analysis

// Run-based connected-component labeling.
//
// A run is a maximal horizontal stretch of foreground pixels of one
// polarity in one row. Runs are found by scanning each measured span with a
// word-at-a-time prefilter (a word with no byte that could be foreground is
// skipped without looking at its pixels), so the cost is a cheap scan plus
// work proportional to the foreground. Each new run is joined, by
// union-find, to the runs of the previous row that it touches with
// 8-connectivity and that have the same polarity: runs [a, b) in row y-1
// and [s, e) in row y (exclusive ends) touch when a <= e and b >= s.
//
// Invariants kept by this file:
//
//  1. Runs are appended in raster order, and within a row in increasing x,
//     so the previous row's runs can be walked with one forward pointer.
//  2. runs[i].parent <= i for every run: a union links the larger root
//     index to the smaller one, and path halving only moves a parent
//     pointer to an ancestor. Hence the root of a component is its first
//     run in raster order, and resolve can label every run in one
//     ascending pass (a run's parent has always been labeled before it).
//  3. Run indices fit in int32: labeling stops, with Overflow set, as soon
//     as a row ends with more than MaxRuns (<= 1<<30) runs, and one row
//     adds at most MaxDimension/2 runs.

import (
	"encoding/binary"

	"github.com/framering/framering/frame"
)

// Pixel classes.
const (
	clsBack   = 0
	clsBright = 1
	clsDark   = 2
)

// run is a horizontal run of foreground pixels [x0, x1) in row y. parent
// is its union-find parent, or after resolve -1-label.
type run struct {
	x0, x1 int32
	y      int32
	parent int32
	bright bool
}

// comp accumulates one component: bounding box [x0, x1) × [y0, y1), area,
// and coordinate sums for the centroid.
type comp struct {
	x0, x1, y0, y1 int32
	bright         bool
	area, sx, sy   uint64
}

// Byte-lane masks for the word prefilter.
const (
	laneHigh  = 0x8080808080808080 // bit 7 of every byte
	laneOnes  = 0x0101010101010101
	lanes16Hi = 0x8000800080008000 // bit 7 of the high byte of every little-endian uint16
)

// labeler holds the thresholds and the scratch of the labeling pass.
type labeler struct {
	// Thresholds.
	lut        [256]uint8 // class of an 8-bit value or luma
	hi16, lo16 int        // Mono16: bright when v >= hi16, dark when v <= lo16
	hiW, loW   uint64     // Hi and Lo in every byte lane
	geM, leM   uint64     // lanes where ">= Hi" and "<= Lo" matter (0 when disabled)
	minArea    uint64
	maxDefects int
	maxRuns    int

	// Scratch, grown on demand and reused.
	runs    []run
	comps   []comp
	defects []Defect

	// Per-frame output.
	count    int
	overflow bool

	// Per-row state of the scan.
	y            int32
	prev0, prev1 int32 // previous row's runs are runs[prev0:prev1]
	j            int32 // first previous-row run that may touch the next run
	found        int64 // foreground pixels found so far
}

// setThresholds derives the classification tables from o.
func (l *labeler) setThresholds(o *Options) {
	for v := range l.lut {
		c := uint8(clsBack)
		if o.Bright && v >= int(o.Hi) {
			c = clsBright
		} else if o.Dark && v <= int(o.Lo) {
			c = clsDark
		}
		l.lut[v] = c
	}
	l.hi16, l.lo16, l.geM, l.leM = 1<<17, -1, 0, 0
	if o.Bright {
		l.hi16, l.geM = int(o.Hi)*257, laneHigh
	}
	if o.Dark {
		l.lo16, l.leM = int(o.Lo)*257, laneHigh
	}
	l.hiW, l.loW = uint64(o.Hi)*laneOnes, uint64(o.Lo)*laneOnes
	l.minArea = uint64(o.MinArea)
	l.maxDefects = o.MaxDefects
	l.maxRuns = o.MaxRuns
}

// cand returns, in bit 7 of each byte lane selected by geM and leM, whether
// that byte of w is >= Hi (geM) or <= Lo (leM); it is zero when no selected
// byte can be foreground. The comparisons are done on all eight lanes at
// once without carries between lanes: for the low seven bits,
// (w|0x80) - (c&0x7f) has bit 7 set exactly when w's low bits are >= c's,
// and bit 7 of the full byte decides when the top bits differ.
func cand(w, hiW, loW, geM, leM uint64) uint64 {
	d := (w | laneHigh) - (hiW &^ laneHigh)
	ge := (w &^ hiW) | (^(w ^ hiW) & d)
	e := (loW | laneHigh) - (w &^ laneHigh)
	le := (loW &^ w) | (^(w ^ loW) & e)
	return ge&geM | le&leM
}

// clear resets the per-frame output for a frame without labeling.
func (l *labeler) clear() {
	l.runs, l.comps, l.defects = l.runs[:0], l.comps[:0], l.defects[:0]
	l.count, l.overflow = 0, false
}

// label finds the blobs of the frame in buf. It scans only the bands of
// rows that the statistics pass marked in a.bands. fg is the number of
// foreground pixels when known (> 0), or -1 when unknown; when known, the
// scan stops after the row in which the last of them was found.
func (l *labeler) label(a *Analyzer, buf []byte, fg int64) {
	l.clear()
	l.prev0, l.prev1, l.found = 0, 0, 0
	g := a.g
	rb := g.RowBytes()
	bpp := a.bpp
	for y := 0; y < g.Height; y++ {
		if y%a.bandRows == 0 && !a.bands[y/a.bandRows] {
			// No foreground in this band: its rows have no runs.
			y += a.bandRows - 1
			l.prev0, l.prev1 = int32(len(l.runs)), int32(len(l.runs))
			continue
		}
		row := buf[y*g.Stride : y*g.Stride+rb]
		cur := int32(len(l.runs))
		l.y, l.j = int32(y), l.prev0
		s, n := a.rowSpans(y)
		for _, sp := range s[:n] {
			p := row[sp.x0*bpp : sp.x1*bpp]
			switch g.Format {
			case frame.Mono8:
				l.scan8(p, sp.x0)
			case frame.Mono16:
				l.scan16(p, sp.x0)
			case frame.RGB8:
				l.scanRGB(p, sp.x0)
			}
		}
		l.prev0, l.prev1 = cur, int32(len(l.runs))
		if len(l.runs) > l.maxRuns {
			l.clear()
			l.overflow = true
			return
		}
		if l.found == fg {
			break
		}
	}
	l.resolve()
}

// scan8 finds the runs of the Mono8 span p, whose first pixel is column x0.
func (l *labeler) scan8(p []byte, x0 int) {
	lut := &l.lut
	hiW, loW, geM, leM := l.hiW, l.loW, l.geM, l.leM
	start, cls := 0, uint8(clsBack) // the open run, if cls != clsBack
	i := 0
	for ; len(p)-i >= 8; i += 8 {
		q := p[i : i+8]
		if cand(binary.LittleEndian.Uint64(q), hiW, loW, geM, leM) == 0 {
			if cls != clsBack {
				l.emit(x0+start, x0+i, cls)
				cls = clsBack
			}
			continue
		}
		for k, v := range q {
			if c := lut[v]; c != cls {
				if cls != clsBack {
					l.emit(x0+start, x0+i+k, cls)
				}
				start, cls = i+k, c
			}
		}
	}
	for ; i < len(p); i++ {
		if c := lut[p[i]]; c != cls {
			if cls != clsBack {
				l.emit(x0+start, x0+i, cls)
			}
			start, cls = i, c
		}
	}
	if cls != clsBack {
		l.emit(x0+start, x0+len(p), cls)
	}
}

// scan16 finds the runs of the Mono16 span p, whose first pixel is column x0.
func (l *labeler) scan16(p []byte, x0 int) {
	hi, lo := l.hi16, l.lo16
	hiW, loW, geM, leM := l.hiW, l.loW, l.geM&lanes16Hi, l.leM&lanes16Hi
	start, cls := 0, uint8(clsBack)
	n := len(p) / 2
	x := 0
	for ; n-x >= 4; x += 4 {
		q := p[2*x : 2*x+8]
		w := binary.LittleEndian.Uint64(q)
		if cand(w, hiW, loW, geM, leM) == 0 {
			if cls != clsBack {
				l.emit(x0+start, x0+x, cls)
				cls = clsBack
			}
			continue
		}
		for k := 0; k < 4; k++ {
			v := int(w >> (16 * k) & 0xFFFF)
			c := uint8(clsBack)
			if v >= hi {
				c = clsBright
			} else if v <= lo {
				c = clsDark
			}
			if c != cls {
				if cls != clsBack {
					l.emit(x0+start, x0+x+k, cls)
				}
				start, cls = x+k, c
			}
		}
	}
	for ; x < n; x++ {
		v := int(binary.LittleEndian.Uint16(p[2*x:]))
		c := uint8(clsBack)
		if v >= hi {
			c = clsBright
		} else if v <= lo {
			c = clsDark
		}
		if c != cls {
			if cls != clsBack {
				l.emit(x0+start, x0+x, cls)
			}
			start, cls = x, c
		}
	}
	if cls != clsBack {
		l.emit(x0+start, x0+n, cls)
	}
}

// scanRGB finds the runs of the RGB8 span p, whose first pixel is column
// x0. A pixel can only have luma >= Hi if one of its bytes is >= Hi, and
// luma <= Lo only if one of its bytes is <= Lo, so eight pixels (three
// words) with no such byte are skipped.
func (l *labeler) scanRGB(p []byte, x0 int) {
	lut := &l.lut
	hiW, loW, geM, leM := l.hiW, l.loW, l.geM, l.leM
	start, cls := 0, uint8(clsBack)
	n := len(p) / 3
	x := 0
	for ; n-x >= 8; x += 8 {
		q := p[3*x : 3*x+24]
		if cand(binary.LittleEndian.Uint64(q), hiW, loW, geM, leM)|
			cand(binary.LittleEndian.Uint64(q[8:]), hiW, loW, geM, leM)|
			cand(binary.LittleEndian.Uint64(q[16:]), hiW, loW, geM, leM) == 0 {
			if cls != clsBack {
				l.emit(x0+start, x0+x, cls)
				cls = clsBack
			}
			continue
		}
		for k := 0; k < 8; k++ {
			px := q[3*k : 3*k+3]
			c := lut[byte((uint(px[0])+2*uint(px[1])+uint(px[2]))>>2)]
			if c != cls {
				if cls != clsBack {
					l.emit(x0+start, x0+x+k, cls)
				}
				start, cls = x+k, c
			}
		}
	}
	for ; x < n; x++ {
		px := p[3*x : 3*x+3]
		c := lut[byte((uint(px[0])+2*uint(px[1])+uint(px[2]))>>2)]
		if c != cls {
			if cls != clsBack {
				l.emit(x0+start, x0+x, cls)
			}
			start, cls = x, c
		}
	}
	if cls != clsBack {
		l.emit(x0+start, x0+n, cls)
	}
}

// emit appends the run [x0, x1) of class cls in the current row and joins
// it to the previous row's runs it touches.
func (l *labeler) emit(x0, x1 int, cls uint8) {
	idx := int32(len(l.runs))
	bright := cls == clsBright
	l.runs = append(l.runs, run{x0: int32(x0), x1: int32(x1), y: l.y, parent: idx, bright: bright})
	l.found += int64(x1 - x0)
	runs := l.runs
	j, end := l.j, l.prev1
	for j < end && runs[j].x1 < int32(x0) {
		j++
	}
	l.j = j
	for k := j; k < end && runs[k].x0 <= int32(x1); k++ {
		if runs[k].bright == bright {
			l.union(k, idx)
		}
	}
}

// union joins the components of runs a and b, linking the larger root to
// the smaller (Invariant 2).
func (l *labeler) union(a, b int32) {
	runs := l.runs
	for p := runs[a].parent; p != a; p = runs[a].parent {
		runs[a].parent = runs[p].parent
		a = runs[a].parent
	}
	for p := runs[b].parent; p != b; p = runs[b].parent {
		runs[b].parent = runs[p].parent
		b = runs[b].parent
	}
	if a < b {
		runs[b].parent = a
	} else if b < a {
		runs[a].parent = b
	}
}

// resolve labels every run in one ascending pass (Invariant 2),
// accumulates the components, and lists the defects.
func (l *labeler) resolve() {
	runs := l.runs
	comps := l.comps[:0]
	for i := range runs {
		r := &runs[i]
		n := uint64(r.x1 - r.x0)
		// Sum of x over [x0, x1) is n(x0+x1-1)/2, an integer: n and
		// x0+x1-1 = 2·x0+n-1 are never both odd.
		sx := n * uint64(r.x0+r.x1-1) / 2
		sy := n * uint64(r.y)
		var lab int32
		if p := r.parent; p == int32(i) {
			lab = int32(len(comps))
			comps = append(comps, comp{
				x0: r.x0, x1: r.x1, y0: r.y, y1: r.y + 1, bright: r.bright,
				area: n, sx: sx, sy: sy,
			})
		} else {
			lab = -1 - runs[p].parent
			c := &comps[lab]
			c.x0 = min(c.x0, r.x0)
			c.x1 = max(c.x1, r.x1)
			c.y1 = r.y + 1 // runs come in raster order
			c.area += n
			c.sx += sx
			c.sy += sy
		}
		r.parent = -1 - lab
	}
	l.comps = comps
	for i := range comps {
		c := &comps[i]
		if c.area < l.minArea {
			continue
		}
		l.count++
		if len(l.defects) < l.maxDefects {
			l.defects = append(l.defects, Defect{
				X: int(c.x0), Y: int(c.y0), W: int(c.x1 - c.x0), H: int(c.y1 - c.y0),
				Area:   int(c.area),
				CX:     float64(c.sx) / float64(c.area),
				CY:     float64(c.sy) / float64(c.area),
				Bright: c.bright,
			})
		}
	}
}
