//go:build aravis && cgo

package native_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/clock"
	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/native"
)

// BenchmarkAravisNotify compares the two ways Dequeue learns of a
// completed buffer (polling Aravis's output queue, or Aravis's receive
// thread calling into Go) on the simulator's fastest frame rate, 1000 fps,
// with small frames so that the camera keeps its rate: latency from the
// frame's first packet (its capture timestamp) to Dequeue returning, and
// this process's CPU time per frame (the receive thread included; the
// simulator is another process).
//
//	go test -tags aravis -run '^$' -bench BenchmarkAravisNotify -benchtime 3000x ./native/
func BenchmarkAravisNotify(b *testing.B) {
	if !testmain.PrivateNetwork(b) {
		return
	}
	for _, notify := range []string{native.NotifyPoll, native.NotifyCallback} {
		b.Run(notify, func(b *testing.B) {
			testmain.StartFakeCamera(b, fmt.Sprintf("FRB%s", notify[:1]), 0)
			o := native.CameraOptions{Camera: testmain.FakeCameraAddr, Notify: notify, Logger: slog.New(slog.DiscardHandler), Settings: []native.FeatureSetting{
				{Name: "Width", Value: "64"}, {Name: "Height", Value: "64"}, {Name: "AcquisitionFrameRate", Value: "1000"}}}
			g, err := native.Open(native.KindAravis, native.Config{Camera: &o})
			if err != nil {
				b.Fatal(err)
			}
			size := g.Config().PayloadSize
			m, err := unix.Mmap(-1, 0, 8*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { g.Close(); unix.Munmap(m) }()
			for i := range 8 {
				id, err := g.Announce(m[i*size : (i+1)*size])
				if err != nil {
					b.Fatal(err)
				}
				g.Queue(id)
			}
			if err := g.Start(); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for range 100 { // warm up: the receive thread, the callback's thread binding
				f, err := g.Dequeue(ctx, time.Second)
				if err != nil {
					b.Fatal(err)
				}
				f.Requeue()
			}
			lat := make([]int64, 0, b.N)
			var ru0, ru1 unix.Rusage
			unix.Getrusage(unix.RUSAGE_SELF, &ru0)
			t0 := time.Now()
			b.ResetTimer()
			for range b.N {
				f, err := g.Dequeue(ctx, time.Second)
				if err != nil {
					b.Fatal(err)
				}
				now := clock.Nanos()
				info, _ := f.Info()
				lat = append(lat, now-info.Timestamp)
				f.Requeue()
			}
			b.StopTimer()
			el := time.Since(t0)
			unix.Getrusage(unix.RUSAGE_SELF, &ru1)
			cpu := time.Duration(unix.TimevalToNsec(ru1.Utime) - unix.TimevalToNsec(ru0.Utime) +
				unix.TimevalToNsec(ru1.Stime) - unix.TimevalToNsec(ru0.Stime))
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2])/1e3, "µs-p50-latency")
			b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "µs-p99-latency")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1e3, "µs-cpu/frame")
			b.ReportMetric(float64(b.N)/el.Seconds(), "frames/s")
		})
	}
}
