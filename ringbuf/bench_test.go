package ringbuf_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/framering/framering/clock"

	"github.com/framering/framering/ringbuf"
)

func BenchmarkPublish(b *testing.B) {
	for _, consumers := range []int{0, 1, 16} {
		b.Run(fmt.Sprintf("consumers=%d", consumers), func(b *testing.B) {
			p := newRing(b, ringbuf.Config{Slots: 16})
			for i := 0; i < consumers; i++ {
				attach(b, p, ringbuf.Options{Consumer: fmt.Sprint(i), Mode: ringbuf.Lossy})
			}
			for b.Loop() {
				s, err := p.Acquire()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Publish(s, ringbuf.Meta{Length: 64}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPeek(b *testing.B) {
	p := newRing(b, ringbuf.Config{Slots: 4})
	r := attach(b, p, ringbuf.Options{Role: ringbuf.RoleObserver})
	seq := publish(b, p, 1)
	var n int
	fn := func(f ringbuf.Frame) { n += int(f.Data[0]) }
	for b.Loop() {
		if err := r.Peek(seq, fn); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBorrowRelease(b *testing.B) {
	p := newRing(b, ringbuf.Config{Slots: 4})
	r := attach(b, p, ringbuf.Options{Consumer: "c"})
	seq := publish(b, p, 1)
	for b.Loop() {
		l, err := r.Borrow(seq)
		if err != nil {
			b.Fatal(err)
		}
		l.Release()
	}
}

// BenchmarkHandoff measures one-way latency from Publish in one process to
// a consumer seeing the frame in another: the producer child stamps
// CLOCK_MONOTONIC just before Publish; the consumer subtracts it from its
// own clock when Next returns. Reported as p50/p99/p99.9/max in ns. The
// producer publishes every 200µs so no queue forms.
func BenchmarkHandoff(b *testing.B) {
	for _, mode := range []struct {
		name string
		spin time.Duration
	}{{"busy-poll", -1}, {"futex", time.Nanosecond}} {
		b.Run(mode.name, func(b *testing.B) {
			n := min(max(b.N, 100), 20000)
			path := fmt.Sprintf("%s/handoff-%d.sock", os.Getenv("FRAMERING_RUNTIME_DIR"), os.Getpid())
			cmd := startBench(b, path, n)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var r *ringbuf.Reader
			var err error
			for i := 0; ; i++ {
				if r, err = ringbuf.Attach(ctx, ringbuf.Options{SocketPath: path, Consumer: "bench", Mode: ringbuf.Lossless, Spin: mode.spin}); err == nil {
					break
				}
				if i > 5000 {
					b.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			defer r.Close()
			lat := make([]int64, 0, n)
			b.ResetTimer()
			for len(lat) < n {
				l, err := r.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, clock.Nanos()-l.Meta().Timestamp)
				l.Release()
			}
			b.StopTimer()
			cmd.Process.Kill()
			cmd.Wait()
			slices.Sort(lat)
			q := func(f float64) float64 { return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))]) }
			b.ReportMetric(q(0.50), "p50-ns")
			b.ReportMetric(q(0.99), "p99-ns")
			b.ReportMetric(q(0.999), "p99.9-ns")
			b.ReportMetric(float64(lat[len(lat)-1]), "max-ns")
		})
	}
}

func startBench(b *testing.B, path string, n int) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=pinger", "FR_PATH="+path, "FR_FRAMES="+strconv.Itoa(n+10))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd
}
