package inspect

import "math/bits"

// latencies is a log-linear histogram of nanosecond latencies: values
// below 2^subBits are exact, larger ones fall in buckets 1/2^subBits wide
// relative to their value (under 1% error). It allocates nothing.
type latencies struct {
	counts [(64 - subBits) << subBits]uint64
	n      uint64
	max    int64
}

const subBits = 7

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	top := v >> shift // in [2^subBits, 2^(subBits+1))
	return (shift+1)<<subBits + int(top-1<<subBits)
}

// bucketHigh is the largest value of bucket i.
func bucketHigh(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	top := uint64(i&(1<<subBits-1)) + 1<<subBits
	return (top+1)<<shift - 1
}

func (l *latencies) add(ns int64) {
	if ns < 0 {
		return
	}
	l.counts[bucketOf(uint64(ns))]++
	l.n++
	l.max = max(l.max, ns)
}

// quantile returns the q-quantile (0 < q <= 1): the high end of the bucket
// holding the ceil(q*n)-th smallest value, never above the maximum seen;
// 0 with no values.
func (l *latencies) quantile(q float64) int64 {
	if l.n == 0 {
		return 0
	}
	rank := uint64(q*float64(l.n) + 0.999999)
	rank = min(max(rank, 1), l.n)
	var seen uint64
	for i, c := range l.counts {
		if seen += c; seen >= rank {
			return min(int64(bucketHigh(i)), l.max)
		}
	}
	return l.max
}
