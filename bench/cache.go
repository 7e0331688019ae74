package bench

// The effective last-level cache: how large a working set the producer's
// fill (filler, the 16 KiB-chunk copy every ring producer of the bench
// uses) can rotate through before its write bandwidth falls to memory's.
// A virtual machine's sysfs reports the host's L3, and the guest's share
// of it can be a fraction: the 2-core KVM guest of the README's numbers
// reports 260 MiB, and the fill falls from 20-27 GB/s up to 32 MiB
// to 6-14 GB/s at 64 MiB and 4-9 GB/s beyond. The lease-only throughput rows are labelled against the
// smaller of the two sizes (harness.go).
//
// The probe is a child (roleCache): it fills working sets of doubling
// size (cacheSizes), each in 1 MiB frames in turn as a producer fills its
// slots, and keeps the best of several short rounds per size over a few
// sweeps of the curve, since a neighbour's burst can lower a round but
// never raise one. cacheKnee reads the effective size off the curve.

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"slices"
)

// CachePoint is the fill's write bandwidth rotating through one working set.
type CachePoint struct {
	Bytes    int64   `json:"bytes"`
	FillGBps float64 `json:"fill_gbps"`
}

// CacheProbe is the measured effective last-level cache.
type CacheProbe struct {
	// Curve is the fill bandwidth per working set, smallest first.
	Curve []CachePoint `json:"curve"`
	// PlateauGBps is the small-set bandwidth: the best of the curve's
	// first three points (a round can be slowed, never sped up).
	PlateauGBps float64 `json:"plateau_gbps"`
	// Fraction is the share of the plateau a working set must keep to fit.
	Fraction float64 `json:"fraction"`
	// EffectiveBytes is the largest working set that keeps Fraction of the
	// plateau before the curve falls below it for good (two sizes in a
	// row, or the last one); 0 if none does.
	EffectiveBytes int64 `json:"effective_bytes"`
	// AtLeast is set when the curve never fell: EffectiveBytes is then the
	// largest size probed, a lower bound.
	AtLeast bool `json:"at_least"`
}

const (
	// cacheFraction: a working set fits while the fill keeps at least
	// two thirds of its small-set bandwidth. In twelve probes on the
	// README's VM (260 MiB reported) while other agents kept a load
	// average of 3.5-9 on its 2 cores, 32 MiB kept 57-96% of it (below two
	// thirds twice, at load averages of 8-9), 64 MiB 26-56%, 128-512 MiB
	// 16-38%: its share of the L3 lies between 32 and 64 MiB, and a
	// 64 MiB set fills at about half speed at best.
	cacheFraction = 2.0 / 3
	// cacheCap is the largest working set probed when sysfs reports no
	// LLC; cacheMax the largest ever (twice the reported LLC otherwise).
	cacheCap = 512 * MiB
	cacheMax = 1024 * MiB
	// cacheMinSet is the smallest working set cacheSizes starts from.
	cacheMinSet = 1 * MiB
	// cacheUnit is the frame the probe fills at a time.
	cacheUnit = 1 * MiB
	// cacheRounds is the fewest timed rounds per working set, over
	// cacheSweeps sweeps of the curve; cacheRoundNs the shortest round
	// (each covers the whole set at least once): short enough that some
	// rounds see no neighbour.
	cacheRounds  = 6
	cacheSweeps  = 3
	cacheRoundNs = 1_000_000
)

// cacheSizes lists the working sets the probe fills: doubling from twice
// the next cache inward (inner, so that the plateau is the LLC's, not that
// cache's), at least cacheMinSet, up to the largest not beyond twice the
// reported LLC (llc; cacheCap when it is 0), at most cacheMax. The list
// starts low enough to hold at least three sizes.
func cacheSizes(inner, llc int64) []int {
	hi := int64(cacheCap)
	if llc > 0 {
		hi = min(2*llc, cacheMax)
	}
	hi = 1 << (bits.Len64(uint64(hi)) - 1) // the power of two at or below
	lo := max(int64(cacheMinSet), 2*inner)
	lo = 1 << bits.Len64(uint64(lo-1)) // the power of two at or above
	lo = min(lo, hi/4)
	var sizes []int
	for s := lo; s <= hi; s *= 2 {
		sizes = append(sizes, int(s))
	}
	return sizes
}

// cacheKnee reads a probe's curve (smallest working set first): see
// CacheProbe for what each field means.
func cacheKnee(curve []CachePoint, frac float64) CacheProbe {
	pr := CacheProbe{Curve: curve, Fraction: frac}
	if len(curve) == 0 {
		return pr
	}
	for _, pt := range curve[:min(len(curve), 3)] {
		pr.PlateauGBps = max(pr.PlateauGBps, pt.FillGBps)
	}
	thr := frac * pr.PlateauGBps
	below := 0
	for _, pt := range curve {
		if pt.FillGBps >= thr {
			pr.EffectiveBytes, below = pt.Bytes, 0
			continue
		}
		// One size below, then back: a round lost to a neighbour,
		// not the end of the cache.
		if below++; below == 2 {
			break
		}
	}
	pr.AtLeast = below == 0
	return pr
}

// runCache is the probe's child: params.Sizes are the working sets,
// DurationNs the least time spent on each (and at least cacheRounds
// rounds).
func runCache(ctx context.Context, p params, _ *slog.Logger) (*result, error) {
	if len(p.Sizes) == 0 {
		return nil, fmt.Errorf("run cache probe: %w: no working sets", errBadParams)
	}
	n := slices.Max(p.Sizes)
	buf := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		buf[i] = 1 // fault every page in before timing
	}
	for _, size := range p.Sizes {
		if size < fillChunk {
			return nil, fmt.Errorf("run cache probe: working set %d: %w", size, errBadParams)
		}
	}
	f := newFiller()
	best := make([]float64, len(p.Sizes))
	// The curve is swept cacheSweeps times, so that a neighbour's burst
	// lowers one visit of a size, not all of them.
	for sweep := 0; sweep < cacheSweeps; sweep++ {
		for i, size := range p.Sizes {
			set := buf[:size]
			fillSet(f, set) // into the cache: the first pass is not timed
			end := now() + p.DurationNs/cacheSweeps
			for round := 0; round*cacheSweeps < cacheRounds || now() < end; round++ {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("run cache probe: %w", ctx.Err())
				}
				var bytes int64
				start := now()
				for bytes == 0 || now()-start < cacheRoundNs {
					fillSet(f, set)
					bytes += int64(size)
				}
				best[i] = max(best[i], float64(bytes)/float64(now()-start))
			}
		}
	}
	res := &result{Role: p.Role}
	for i, size := range p.Sizes {
		res.Cache = append(res.Cache, CachePoint{Bytes: int64(size), FillGBps: best[i]})
		res.Frames++
	}
	return res, nil
}

// fillSet fills set once, cacheUnit at a time, as a producer fills its
// slots one frame after another.
func fillSet(f *filler, set []byte) {
	for id := 0; len(set) > 0; id++ {
		u := min(len(set), cacheUnit)
		f.fill(set[:u], uint64(id))
		set = set[u:]
	}
}
