//go:build aravis && cgo

package producer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/native"
)

// BenchmarkAravisProducer measures the producer on Aravis's GigE Vision
// simulator at its fastest setting (AcquisitionFrameRate=1000 and packets
// of 16404 bytes, both the simulator's maxima; loopback carries them),
// 8 buffers queued, zero-copy against safe-copy:
// frames published per second, and the producer process's CPU time per
// frame (Aravis's receive thread included; the simulator is another
// process, its CPU reported apart). Frame sizes: the simulator's default
// 512x512 Mono8 (256 KiB) and a small 64x64 one, where per-frame costs
// dominate.
//
//	go test -tags aravis -run '^$' -bench BenchmarkAravisProducer -benchtime 2000x ./producer/
func BenchmarkAravisProducer(b *testing.B) {
	if !testmain.PrivateNetwork(b) {
		return
	}
	for _, size := range []int{512, 64} {
		for _, cp := range []bool{false, true} {
			name := fmt.Sprintf("%dx%d/%s", size, size, map[bool]string{false: "zero-copy", true: "safe-copy"}[cp])
			b.Run(name, func(b *testing.B) { benchAravisProducer(b, size, cp) })
		}
	}
}

func benchAravisProducer(b *testing.B, size int, cp bool) {
	cam := testmain.StartFakeCamera(b, "FRBENCH", 0)
	p, err := New(Config{Name: fmt.Sprintf("b%d-%d", os.Getpid(), internalRingSeq.Add(1)), Source: native.KindAravis,
		Copy: cp, Slots: 16, QueueDepth: 8, StatsInterval: -1, Logger: slog.New(slog.DiscardHandler),
		Camera: native.CameraOptions{Camera: testmain.FakeCameraAddr, PacketSize: 16404, Settings: []native.FeatureSetting{
			{Name: "Width", Value: strconv.Itoa(size)}, {Name: "Height", Value: strconv.Itoa(size)},
			{Name: "AcquisitionFrameRate", Value: "1000"}}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := p.Run(ctx); done <- err }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		p.Close()
	}()
	waitPublished := func(n uint64) {
		deadline := time.Now().Add(time.Minute) // a hang guard
		for p.Stats().Published < n {
			if time.Now().After(deadline) {
				b.Fatalf("hang guard: %+v", p.Stats())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitPublished(50) // warm up
	s0 := p.Stats()
	var ru0, ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	cam0 := procCPU(cam.Pid())
	t0 := time.Now()
	b.ResetTimer()
	waitPublished(s0.Published + uint64(b.N))
	b.StopTimer()
	el := time.Since(t0)
	unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	camCPU := procCPU(cam.Pid()) - cam0
	s1 := p.Stats()
	n := float64(s1.Published - s0.Published)
	cpu := float64(unix.TimevalToNsec(ru1.Utime) - unix.TimevalToNsec(ru0.Utime) +
		unix.TimevalToNsec(ru1.Stime) - unix.TimevalToNsec(ru0.Stime))
	b.ReportMetric(n/el.Seconds(), "frames/s")
	b.ReportMetric(cpu/n/1e3, "µs-cpu/frame")
	b.ReportMetric(float64(camCPU.Nanoseconds())/n/1e3, "µs-camera-cpu/frame")
	b.ReportMetric(float64(s1.DropTotal()-s0.DropTotal())/n, "drops/frame")
	b.ReportMetric(float64(s1.CopiedBytes-s0.CopiedBytes)/n, "copied-B/frame")
}

// procCPU is a process's CPU time (user + system) from /proc.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}
