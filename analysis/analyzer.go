package analysis

// Invariants kept by this file (and relied on by stats.go and label.go):
//
//  1. No byte outside buf[:need] is read, where need = (Height-1)*Stride +
//     RowBytes: checkGeometry proves len(buf) >= need, in uint64, before
//     anything else looks at buf, and every row is sliced as
//     buf[y*Stride : y*Stride+RowBytes] (Analyzer.row), so padding bytes are
//     never read. Rows that need decoding (pixels.go) are decoded into the
//     analyzer's scratch row, Width*sw bytes, and the kernels read that.
//  2. Every pixel is either ignored (SkipStamp, Ignore) or measured, never
//     both and never twice: rowSpans returns at most two disjoint, ordered,
//     non-empty column intervals inside [0, Width) per row, and both the
//     statistics pass and the labeling pass visit exactly those.
//  3. After warm-up nothing is allocated per frame: the histograms live in
//     the Analyzer, and the band, run, component and defect slices only
//     ever grow (the band slice to the most bands of any geometry seen, the
//     defect slice once to MaxDefects; runs are capped by MaxRuns plus one
//     row).
//  4. Only one goroutine is inside Analyze at a time: busy is taken with a
//     CompareAndSwap on entry and released on return, so the analyzer's
//     scratch and Result are never shared; the loser returns
//     ErrConcurrentUse without touching them.
//  5. The buffer is only read, never written: it may be a read-only mapping.

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/framering/framering/frame"
)

// Analyzer inspects frames in place. It owns its scratch (histograms,
// labeling buffers, the defect list) and the Result it returns; these are
// sized on first use and reused, so that analyzing a stream of frames
// allocates nothing after warm-up.
//
// Create one with New; the zero Analyzer is also ready for use, with the
// zero Options (statistics only).
//
// An Analyzer must not be used by two goroutines at once; a call that
// overlaps another returns ErrConcurrentUse. Use one Analyzer per
// goroutine.
type Analyzer struct {
	busy  atomic.Bool
	ready bool // options applied (the zero Analyzer applies Options{})
	opts  Options

	// Per-frame setup (setup).
	g         frame.Geometry
	info      frame.FormatInfo
	kern      kernel   // pixels.go
	dec       decoding // pixels.go
	sw        int      // bytes per pixel in the kernel's layout: 1, 2 or 3
	bits      int      // significant bits of a k16 sample (8 otherwise)
	rb        int      // bytes of a row in the buffer (RowBytes)
	scratch   []byte   // a decoded row (pixels.go); only grows
	stampRows int      // rows touched by the stamp when SkipStamp
	ign       span     // clipped Ignore columns
	ignY0     int      // clipped Ignore rows [ignY0, ignY1)
	ignY1     int
	bandRows  int    // rows per band of the statistics pass
	bands     []bool // per band: may hold foreground (stats.go)

	// Statistics scratch (stats.go).
	sub    [4][256]uint32 // per-lane sub-histograms, summed into hist
	hist   [256]uint64
	s16    acc16
	rgb    accRGB
	counts uint64 // pixels measured
	chans  ChannelMeans

	// Labeling scratch (label.go).
	lab labeler

	res Result
}

// span is a column interval [x0, x1).
type span struct{ x0, x1 int }

// New returns an Analyzer with the given options.
func New(opts Options) (*Analyzer, error) {
	a := &Analyzer{}
	if err := a.SetOptions(opts); err != nil {
		return nil, err
	}
	return a, nil
}

// SetOptions replaces the analyzer's options; the next Analyze uses them.
func (a *Analyzer) SetOptions(opts Options) error {
	o, err := opts.validate()
	if err != nil {
		return fmt.Errorf("set analyzer options: %w", err)
	}
	if !a.busy.CompareAndSwap(false, true) {
		return fmt.Errorf("set analyzer options: %w", ErrConcurrentUse)
	}
	defer a.busy.Store(false)
	a.apply(o)
	return nil
}

// apply installs validated options.
func (a *Analyzer) apply(o Options) {
	a.opts = o
	if cap(a.lab.defects) < o.MaxDefects {
		a.lab.defects = make([]Defect, 0, o.MaxDefects)
	}
	a.lab.setThresholds(&o)
	a.ready = true
}

// Options returns the analyzer's options, with defaults filled in. Like
// Analyze, it must not be called concurrently with SetOptions.
func (a *Analyzer) Options() Options { return a.opts }

// Analyze inspects the frame of geometry g in buf, reading it in place and
// never writing it. buf must hold at least (Height-1)*Stride + RowBytes
// bytes (the last row's padding may be absent); otherwise, or when g is
// invalid, Analyze returns an error wrapping ErrGeometry and reads nothing
// (for an unknown pixel format the error also wraps frame.ErrFormat).
//
// The returned Result belongs to the analyzer and is valid until the next
// call to Analyze (see Result).
func (a *Analyzer) Analyze(buf []byte, g frame.Geometry) (*Result, error) {
	if !a.busy.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("analyze frame: %w", ErrConcurrentUse)
	}
	defer a.busy.Store(false)
	if !a.ready {
		o, _ := Options{}.validate() // the zero Options are valid
		a.apply(o)
	}
	if err := checkGeometry(buf, g); err != nil {
		return nil, fmt.Errorf("analyze frame: %w", err)
	}
	if err := a.setup(g); err != nil {
		return nil, fmt.Errorf("analyze frame: %w", err)
	}
	fg := a.stats(buf)
	r := &a.res
	*r = Result{Format: g.Format.String(), Width: g.Width, Height: g.Height}
	a.finishStats(&r.Stats)
	if a.opts.Histogram {
		r.Histogram = a.hist[:]
	}
	if a.opts.detect() && fg != 0 {
		a.lab.label(a, buf, fg)
	} else {
		a.lab.clear()
	}
	r.DefectCount = a.lab.count
	r.Truncated = a.lab.count > len(a.lab.defects)
	r.Overflow = a.lab.overflow
	r.Defects = a.lab.defects
	return r, nil
}

// checkGeometry validates g and proves that buf holds every pixel row of
// it. Sizes are computed in uint64 so that nothing overflows on 32-bit
// platforms.
func checkGeometry(buf []byte, g frame.Geometry) error {
	if err := g.Validate(); err != nil {
		if !errors.Is(err, ErrGeometry) {
			return fmt.Errorf("check geometry: %w: %w", ErrGeometry, err)
		}
		return fmt.Errorf("check geometry: %w", err)
	}
	need := uint64(g.Height-1)*uint64(g.Stride) + uint64(g.RowBytes())
	if uint64(len(buf)) < need {
		return fmt.Errorf("check geometry: %w: %d-byte buffer for %dx%d %v with stride %d needs %d bytes",
			ErrGeometry, len(buf), g.Width, g.Height, g.Format, g.Stride, need)
	}
	return nil
}

// setup derives the per-frame row layout from g and the options.
func (a *Analyzer) setup(g frame.Geometry) error {
	a.g = g
	if err := a.setFormat(g); err != nil {
		return err
	}
	a.rb = g.RowBytes()
	a.stampRows = 0
	if a.opts.SkipStamp {
		a.stampRows = min((frame.StampSize+g.Stride-1)/g.Stride, g.Height)
	}
	a.bandRows = max(1, bandBytes/g.RowBytes())
	if nb := (g.Height + a.bandRows - 1) / a.bandRows; cap(a.bands) < nb {
		a.bands = make([]bool, nb)
	} else {
		a.bands = a.bands[:nb]
	}
	a.ign, a.ignY0, a.ignY1 = span{}, 0, 0
	if r := a.opts.Ignore; !r.Empty() {
		x0, x1 := clip(r.X, r.W, g.Width)
		y0, y1 := clip(r.Y, r.H, g.Height)
		if x0 < x1 && y0 < y1 {
			a.ign, a.ignY0, a.ignY1 = span{x0, x1}, y0, y1
		}
	}
	return nil
}

// clip returns [lo, lo+n) ∩ [0, limit) as [a, b), with a == b when empty,
// without overflowing for any lo and n >= 0.
func clip(lo, n, limit int) (a, b int) {
	if n <= 0 || lo >= limit {
		return 0, 0
	}
	if lo < 0 {
		end := lo + n // cannot overflow: lo < 0 < n
		if end <= 0 {
			return 0, 0
		}
		return 0, min(end, limit)
	}
	return lo, lo + min(n, limit-lo)
}

// rowSpans returns the measured column intervals of row y: [0, Width)
// minus the stamp's pixels and the ignore rectangle. The spans are
// disjoint, ordered and non-empty.
func (a *Analyzer) rowSpans(y int) (s [2]span, n int) {
	lo := 0
	if y < a.stampRows {
		// Pixel x starts at bit x*BitsPerPixel of the row; it touches the
		// stamp when that is below the stamp's remaining rem*8 bits.
		rem := frame.StampSize - y*a.g.Stride // > 0
		bpp := a.info.BitsPerPixel
		lo = min((rem*8+bpp-1)/bpp, a.g.Width)
	}
	w := a.g.Width
	if y >= a.ignY0 && y < a.ignY1 {
		ig := a.ign
		if ig.x0 <= lo {
			lo = max(lo, ig.x1)
		} else {
			s[0] = span{lo, ig.x0}
			n = 1
			lo = ig.x1
		}
	}
	if lo < w {
		s[n] = span{lo, w}
		n++
	}
	return s, n
}
