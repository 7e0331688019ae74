package bench

// The physical limit: single-core copy bandwidth at each frame size,
// between two buffers larger than the last-level cache, cycling through
// them so that every copy misses the cache as a frame would; and the fill
// bandwidth of the producer's own filler over the same buffer.

import (
	"context"
	"fmt"
	"log/slog"
)

func runMemcpy(ctx context.Context, p params, _ *slog.Logger) (*result, error) {
	n := p.BufBytes
	for _, s := range p.Sizes {
		n = max(n, 2*s)
	}
	src, dst := make([]byte, n), make([]byte, n)
	for i := 0; i < n; i += 4096 {
		src[i], dst[i] = byte(i), 1 // fault every page in before timing
	}
	f := newFiller()
	res := &result{Role: p.Role}
	for _, size := range p.Sizes {
		if size <= 0 || size > n {
			return nil, fmt.Errorf("run memcpy: size %d: %w", size, errBadParams)
		}
		slots := n / size
		pt := memPoint{Payload: size}
		// Each of copy and fill: the best of three rounds, so that a
		// neighbour's burst lowers one round, not the limit.
		for pass := 0; pass < 2; pass++ {
			for round := 0; round < 3; round++ {
				var bytes int64
				start := now()
				end := start + p.DurationNs/3
				// Read the clock about every MiB copied, not every copy.
				every := max(1, (1<<20)/size)
				for k := 0; ; k++ {
					if k%every == 0 && k >= 4 && now() >= end {
						break
					}
					if k%every == 0 && ctx.Err() != nil {
						return nil, fmt.Errorf("run memcpy: %w", ctx.Err())
					}
					off := (k % slots) * size
					if pass == 0 {
						copy(dst[off:off+size], src[off:off+size])
					} else {
						f.fill(dst[off:off+size], uint64(k))
					}
					bytes += int64(size)
				}
				gbps := float64(bytes) / float64(now()-start)
				if pass == 0 {
					pt.CopyGBps = max(pt.CopyGBps, gbps)
				} else {
					pt.FillGBps = max(pt.FillGBps, gbps)
				}
			}
		}
		res.Memcpy = append(res.Memcpy, pt)
		res.Frames++
	}
	return res, nil
}
