package analysis

// Run-based connected-component labeling.
//
// A run is a maximal horizontal stretch of foreground pixels of one
// polarity in one row. Each measured span is cut into chunks of up to 64
// pixels, and for each chunk a bright mask and a dark mask (bit k for pixel
// k) are built a word at a time: for 8- and 16-bit samples by comparing all
// the lanes of a word at once (laneGE), for RGB by a lane prefilter that
// skips eight pixels whose bytes cannot make a foreground luma, then a
// table lookup per pixel. Runs are then read off the masks with
// trailing-zero counts (chunk), so the cost is a cheap scan plus work
// proportional to the number of runs, not to their length: a fully bright
// row costs about as much as a background row. Each new run is joined, by
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
//     adds at most MaxDimension/2 runs. A run's first and last columns and
//     its row fit uint16, since width and height are at most
//     frame.MaxDimension = 1<<16 (checked by checkGeometry).

import (
	"encoding/binary"
	"math/bits"

	"github.com/framering/framering/frame"
)

// Pixel classes.
const (
	clsBack   = 0
	clsBright = 1
	clsDark   = 2
)

// run is a horizontal run of foreground pixels x0..xl (inclusive: xl is
// the last pixel, so that both fit uint16 when the width is MaxDimension)
// in row y. parent is its union-find parent, or after resolve -1-label.
// Twelve bytes: the run slice is the labeling pass's main memory traffic.
type run struct {
	x0, xl, y uint16
	bright    bool
	parent    int32
}

// comp accumulates one component: bounding box [x0, x1) × [y0, y1), area,
// and coordinate sums for the centroid.
type comp struct {
	x0, x1, y0, y1 int32
	bright         bool
	area, sx, sy   uint64
}

// Lane masks: the top bit of every byte, of every uint16, and the low bit
// of every byte or uint16.
const (
	laneHigh   = 0x8080808080808080
	laneOnes   = 0x0101010101010101
	lane16High = 0x8000800080008000
	lane16Ones = 0x0001000100010001
)

// labeler holds the thresholds and the scratch of the labeling pass.
type labeler struct {
	// Thresholds.
	lut        [256]uint8 // class of an 8-bit value or luma
	hiW, loW   uint64     // Hi and Lo in every byte lane
	geM, leM   uint64     // laneHigh, or 0 when bright (dark) detection is off
	hi, lo     uint8      // the options' thresholds
	bits       int        // the sample bits hiW16 and loW16 are for
	hiW16      uint64     // Expand8(Hi, bits) in every uint16 lane
	loW16      uint64     // Expand8(Lo, bits) in every uint16 lane
	geM16      uint64     // lane16High, or 0 when bright (dark) detection is off
	leM16      uint64
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
	oc           uint8 // class of the open run (clsBack: none)
	os           int   // first column of the open run
	y            uint16
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
	l.geM, l.leM, l.geM16, l.leM16 = 0, 0, 0, 0
	if o.Bright {
		l.geM, l.geM16 = laneHigh, lane16High
	}
	if o.Dark {
		l.leM, l.leM16 = laneHigh, lane16High
	}
	l.hiW, l.loW = uint64(o.Hi)*laneOnes, uint64(o.Lo)*laneOnes
	l.hi, l.lo, l.bits = o.Hi, o.Lo, 0
	l.setBits(16)
	l.minArea = uint64(o.MinArea)
	l.maxDefects = o.MaxDefects
	l.maxRuns = o.MaxRuns
}

// setBits sets the 16-bit lane thresholds for samples of n significant
// bits: Expand8(Hi, n) and Expand8(Lo, n) (Hi*257 and Lo*257 for 16).
func (l *labeler) setBits(n int) {
	if n == l.bits || n < 8 || n > 16 {
		return
	}
	l.bits = n
	l.hiW16 = uint64(frame.Expand8(l.hi, n)) * lane16Ones
	l.loW16 = uint64(frame.Expand8(l.lo, n)) * lane16Ones
}

// laneGE returns, in the top bit of each lane of w (h marks the top bit of
// every lane: laneHigh for bytes, lane16High for uint16s; no other value),
// whether that lane of w is >= the same lane of c, comparing all lanes at
// once without carries between them. For the bits below the top one,
// (w|h) - (c&^h) keeps the lane's top bit set exactly when w's low bits
// are >= c's, and cannot borrow from the next lane; the top bits decide
// when they differ.
func laneGE(w, c, h uint64) uint64 {
	d := (w | h) - (c &^ h)
	return ((w &^ c) | (^(w ^ c) & d)) & h
}

// cand reports, in the top bit of each byte, whether that byte of w is
// >= Hi (lanes in geM) or <= Lo (lanes in leM): the RGB8 prefilter.
func cand(w, hiW, loW, geM, leM uint64) uint64 {
	return laneGE(w, hiW, laneHigh)&geM | laneGE(loW, w, laneHigh)&leM
}

// pack8 gathers the top bits of the eight bytes of m (a laneHigh-shaped
// mask) into the low eight bits, byte k to bit k. The multiplier puts
// byte k's bit at 56+k; no two partial products share a bit, so nothing
// carries into the result.
func pack8(m uint64) uint64 { return (m >> 7) * 0x0102040810204080 >> 56 }

// pack16 gathers the top bits of the four uint16 lanes of m (a
// lane16High-shaped mask) into the low four bits, lane k to bit k, the
// same way as pack8.
func pack16(m uint64) uint64 { return (m >> 15) * (1<<60 | 1<<45 | 1<<30 | 1<<15) >> 60 }

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
	l.prev0, l.prev1, l.found, l.oc = 0, 0, 0, clsBack
	g := a.g
	sw := a.sw
	for y := 0; y < g.Height; y++ {
		if y%a.bandRows == 0 && !a.bands[y/a.bandRows] {
			// No foreground in this band: its rows have no runs.
			y += a.bandRows - 1
			l.prev0, l.prev1 = int32(len(l.runs)), int32(len(l.runs))
			continue
		}
		cur := int32(len(l.runs))
		l.y, l.j = uint16(y), l.prev0
		s, n := a.rowSpans(y)
		var row []byte
		if n > 0 {
			row = a.row(buf, y)
		}
		for _, sp := range s[:n] {
			p := row[sp.x0*sw : sp.x1*sw]
			switch a.kern {
			case k8:
				l.scan8(p, sp.x0)
			case k16:
				l.scan16(p, sp.x0)
			case kRGB:
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

// chunk reads the runs off the bright and dark masks b and d of the n
// (1..64) pixels from column x (bit k is pixel x+k; bits from n up are
// zero). It continues or closes the open run, emits every run that ends
// inside the chunk, and leaves open the run, if any, that reaches its end.
func (l *labeler) chunk(x, n int, b, d uint64) {
	k := 0
	if l.oc != clsBack {
		m := d
		if l.oc == clsBright {
			m = b
		}
		t := bits.TrailingZeros64(^m) // the open run goes on for t pixels
		if t >= n {
			return
		}
		l.emit(l.os, x+t, l.oc)
		l.oc, k = clsBack, t
	}
	f := b | d
	for k < n {
		rest := f >> uint(k)
		if rest == 0 {
			return
		}
		k += bits.TrailingZeros64(rest)
		cls, m := uint8(clsDark), d
		if b>>uint(k)&1 != 0 {
			cls, m = clsBright, b
		}
		t := bits.TrailingZeros64(^(m >> uint(k))) // >= 1: bit k is set
		if k+t >= n {
			l.oc, l.os = cls, x+k
			return
		}
		l.emit(x+k, x+k+t, cls)
		k += t
	}
}

// closeRun emits the open run, if any, ending at column x (a span's end).
func (l *labeler) closeRun(x int) {
	if l.oc != clsBack {
		l.emit(l.os, x, l.oc)
		l.oc = clsBack
	}
}

// scan8 finds the runs of the 8-bit span p, whose first pixel is column x0.
func (l *labeler) scan8(p []byte, x0 int) {
	hiW, loW, geM, leM := l.hiW, l.loW, l.geM, l.leM
	for i := 0; i < len(p); i += 64 {
		q := p[i:min(i+64, len(p))]
		var b, d uint64
		j := 0
		for ; len(q)-j >= 8; j += 8 {
			w := binary.LittleEndian.Uint64(q[j:])
			if ge, le := laneGE(w, hiW, laneHigh)&geM, laneGE(loW, w, laneHigh)&leM; ge|le != 0 {
				b |= pack8(ge) << uint(j)
				d |= pack8(le) << uint(j)
			}
		}
		if j < len(q) {
			var tail [8]byte
			copy(tail[:], q[j:])
			w := binary.LittleEndian.Uint64(tail[:])
			valid := uint64(1)<<uint(len(q)-j) - 1 // the zero fill may look dark
			b |= pack8(laneGE(w, hiW, laneHigh)&geM) & valid << uint(j)
			d |= pack8(laneGE(loW, w, laneHigh)&leM) & valid << uint(j)
		}
		if b|d != 0 || l.oc != clsBack {
			l.chunk(x0+i, len(q), b, d)
		}
	}
	l.closeRun(x0 + len(p))
}

// scan16 finds the runs of the 16-bit span p, whose first pixel is column
// x0, comparing the four little-endian uint16 lanes of each word exactly
// with the thresholds for the format's sample bits.
func (l *labeler) scan16(p []byte, x0 int) {
	hiW, loW, geM, leM := l.hiW16, l.loW16, l.geM16, l.leM16
	n := len(p) / 2
	for x := 0; x < n; x += 64 {
		q := p[2*x : 2*min(x+64, n)]
		var b, d uint64
		j := 0 // pixels of q done
		for ; len(q)-2*j >= 8; j += 4 {
			w := binary.LittleEndian.Uint64(q[2*j:])
			if ge, le := laneGE(w, hiW, lane16High)&geM, laneGE(loW, w, lane16High)&leM; ge|le != 0 {
				b |= pack16(ge) << uint(j)
				d |= pack16(le) << uint(j)
			}
		}
		if 2*j < len(q) {
			var tail [8]byte
			copy(tail[:], q[2*j:])
			w := binary.LittleEndian.Uint64(tail[:])
			valid := uint64(1)<<uint(len(q)/2-j) - 1
			b |= pack16(laneGE(w, hiW, lane16High)&geM) & valid << uint(j)
			d |= pack16(laneGE(loW, w, lane16High)&leM) & valid << uint(j)
		}
		if b|d != 0 || l.oc != clsBack {
			l.chunk(x0+x, len(q)/2, b, d)
		}
	}
	l.closeRun(x0 + n)
}

// scanRGB finds the runs of the RGB8 or BGR8 span p, whose first pixel is column
// x0. A pixel can only have luma >= Hi if one of its bytes is >= Hi, and
// luma <= Lo only if one of its bytes is <= Lo, so eight pixels (three
// words) with no such byte are skipped; the others are classified by luma.
func (l *labeler) scanRGB(p []byte, x0 int) {
	lut := &l.lut
	hiW, loW, geM, leM := l.hiW, l.loW, l.geM, l.leM
	n := len(p) / 3
	for x := 0; x < n; x += 64 {
		q := p[3*x : 3*min(x+64, n)]
		var b, d uint64
		j := 0 // pixels of q done
		for ; len(q)-3*j >= 24; j += 8 {
			g := q[3*j : 3*j+24]
			if cand(binary.LittleEndian.Uint64(g), hiW, loW, geM, leM)|
				cand(binary.LittleEndian.Uint64(g[8:]), hiW, loW, geM, leM)|
				cand(binary.LittleEndian.Uint64(g[16:]), hiW, loW, geM, leM) == 0 {
				continue
			}
			for k := 0; k < 8; k++ {
				px := g[3*k : 3*k+3]
				c := uint64(lut[byte((uint(px[0])+2*uint(px[1])+uint(px[2]))>>2)])
				b |= (c & 1) << uint(j+k)
				d |= (c >> 1) << uint(j+k)
			}
		}
		for ; 3*j+3 <= len(q); j++ {
			px := q[3*j : 3*j+3]
			c := uint64(lut[byte((uint(px[0])+2*uint(px[1])+uint(px[2]))>>2)])
			b |= (c & 1) << uint(j)
			d |= (c >> 1) << uint(j)
		}
		if b|d != 0 || l.oc != clsBack {
			l.chunk(x0+x, len(q)/3, b, d)
		}
	}
	l.closeRun(x0 + n)
}

// emit appends the run [x0, x1) of class cls in the current row and joins
// it to the previous row's runs it touches.
func (l *labeler) emit(x0, x1 int, cls uint8) {
	idx := int32(len(l.runs))
	bright := cls == clsBright
	if len(l.runs) < cap(l.runs) {
		l.runs = l.runs[:idx+1]
	} else {
		l.runs = append(l.runs, run{})
	}
	runs := l.runs
	// Field by field: a struct literal is assembled on the stack with
	// narrow stores and copied with wide loads, which stalls store
	// forwarding on every run.
	r := &runs[idx]
	r.x0, r.xl, r.y, r.bright, r.parent = uint16(x0), uint16(x1-1), l.y, bright, idx
	l.found += int64(x1 - x0)
	j, end := l.j, l.prev1
	for j < end && int(runs[j].xl) < x0-1 { // ends left of x0-1
		j++
	}
	l.j = j
	for k := j; k < end && int(runs[k].x0) <= x1; k++ { // starts at most at x1
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
		x0, x1, y := int32(r.x0), int32(r.xl)+1, int32(r.y)
		n := uint64(x1 - x0)
		// Sum of x over [x0, x1) is n(x0+x1-1)/2, an integer: n and
		// x0+x1-1 = 2·x0+n-1 are never both odd.
		sx := n * uint64(x0+x1-1) / 2
		sy := n * uint64(y)
		var lab int32
		if p := r.parent; p == int32(i) {
			lab = int32(len(comps))
			if len(comps) < cap(comps) {
				comps = comps[:lab+1]
			} else {
				comps = append(comps, comp{})
			}
			c := &comps[lab] // field by field, as in emit
			c.x0, c.x1, c.y0, c.y1, c.bright = x0, x1, y, y+1, r.bright
			c.area, c.sx, c.sy = n, sx, sy
		} else {
			lab = -1 - runs[p].parent
			c := &comps[lab]
			c.x0 = min(c.x0, x0)
			c.x1 = max(c.x1, x1)
			c.y1 = y + 1 // runs come in raster order
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
