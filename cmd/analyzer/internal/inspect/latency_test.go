package inspect

import (
	"math/rand/v2"
	"testing"
)

func TestLatencyBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		v := rng.Uint64() >> rng.IntN(64)
		if v >= 1<<63 {
			continue
		}
		b := bucketOf(v)
		hi := bucketHigh(b)
		if b < 0 || b >= len(latencies{}.counts) || hi < v {
			t.Fatalf("value %d: bucket %d (high %d)", v, b, hi)
		}
		if b > 0 && bucketHigh(b-1) >= v {
			t.Fatalf("value %d: bucket %d, but bucket %d reaches %d", v, b, b-1, bucketHigh(b-1))
		}
		if float64(hi-v) > float64(v)/(1<<subBits) {
			t.Fatalf("value %d: bucket high %d off by more than 1/%d", v, hi, 1<<subBits)
		}
	}
}

func TestLatencyQuantiles(t *testing.T) {
	var l latencies
	if l.quantile(0.5) != 0 {
		t.Fatal("quantile of nothing")
	}
	for v := int64(1); v <= 100000; v++ {
		l.add(v * 1000)
	}
	l.add(-5) // unknown latency: not counted
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 50000 * 1000}, {0.99, 99000 * 1000}, {1, 100000 * 1000}} {
		got := l.quantile(c.q)
		if got < c.want || float64(got-c.want) > float64(c.want)/(1<<subBits) {
			t.Errorf("q%v = %d, want %d within 1/%d", c.q, got, c.want, 1<<subBits)
		}
	}
	if l.max != 100000*1000 || l.n != 100000 {
		t.Fatalf("max %d n %d", l.max, l.n)
	}
}
