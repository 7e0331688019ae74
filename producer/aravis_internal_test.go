//go:build aravis && cgo

package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/native"
	"github.com/framering/framering/ringbuf"
)

func init() {
	if testmain.InPrivateNetwork() {
		// Aravis opens process-wide descriptors on first use (libusb's
		// hotplug socket, eventfd and timerfd for USB3 Vision) that live
		// until the process exits: open them before TestMain counts
		// descriptors, so that they are not taken for the tests' leaks.
		native.ListCameras()
	}
}

// TestAravisProducer runs the producer on Aravis's GigE Vision simulator
// (in a private network namespace): the ring is sized for the geometry
// the camera delivers after -set; in zero-copy mode every ArvBuffer's data
// is a ring slot (Aravis's receive thread writes the slots themselves) and
// nothing is copied; in safe-copy mode the same bytes arrive by copy; a
// consumer reads exactly the simulator's frames with the camera's
// metadata.
func TestAravisProducer(t *testing.T) {
	if !testmain.PrivateNetwork(t) {
		return
	}
	for _, cp := range []bool{false, true} {
		name := map[bool]string{false: "zero-copy", true: "safe-copy"}[cp]
		t.Run(name, func(t *testing.T) {
			testmain.StartFakeCamera(t, fmt.Sprintf("FRP%d", len(name)), 0)
			ring := fmt.Sprintf("a%d-%d", os.Getpid(), internalRingSeq.Add(1))
			p, err := New(Config{Name: ring, Source: native.KindAravis, Copy: cp, Slots: 8, StatsInterval: -1,
				Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
				Camera: native.CameraOptions{Camera: testmain.FakeCameraAddr, Settings: []native.FeatureSetting{
					{Name: "Width", Value: "320"}, {Name: "Height", Value: "200"}, {Name: "PixelFormat", Value: "Mono16"},
					{Name: "AcquisitionFrameRate", Value: "200"}}}})
			if err != nil {
				t.Fatal(err)
			}
			g := frame.Packed(320, 200, frame.Mono16)
			if c := p.Config(); c.Geometry != g || c.FrameRate < 199 || c.FrameRate > 201 || p.ring.SlotCapacity() < g.Size() {
				t.Fatalf("sized for %+v at %v fps, %d-byte slots: want the camera's %+v", c.Geometry, c.FrameRate, p.ring.SlotCapacity(), g)
			}
			if !cp {
				for k, id := range p.loop.ids {
					slot := uintptr(unsafe.Pointer(unsafe.SliceData(p.ring.SlotBytes(k))))
					if a := native.AravisBufferData(p.grab, id); a != slot {
						t.Fatalf("slot %d is at %#x, Aravis writes its buffer at %#x", k, slot, a)
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
			defer cancel()
			r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: p.Path(), Mode: ringbuf.Lossless, Consumer: "check"})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { _, err := p.Run(runCtx); done <- err }()
			start := time.Now()
			var last ringbuf.Meta
			for n := 0; n < 60; n++ {
				l, err := r.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				m := l.Meta()
				want := testmain.FakeCameraFrame(g, uint64(m.Flags>>16), 1) // the low 16 bits of the camera's block id
				if b := l.Bytes(); m.Width != 320 || m.Height != 200 || m.Stride != 640 || m.Format != frame.Mono16 ||
					m.Length != uint64(g.Size()) || string(b[:g.Size()]) != string(want) {
					t.Fatalf("frame %d (id %d): %+v, or bytes not the camera's", n, m.FrameID, m)
				}
				if n > 0 && (m.FrameID <= last.FrameID || m.Timestamp < last.Timestamp) {
					t.Fatalf("frame id %d ts %d after id %d ts %d", m.FrameID, m.Timestamp, last.FrameID, last.Timestamp)
				}
				last = m
				l.Release()
			}
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			st := p.Stats()
			t.Logf("%s: %+v in %v", name, st, time.Since(start))
			if st.Frames != st.Accounted() || st.Published < 60 {
				t.Fatalf("accounting: %+v", st)
			}
			if (st.CopiedBytes == 0) != !cp {
				t.Fatalf("%s copied %d bytes", name, st.CopiedBytes)
			}
			if st.SourceStats["completed_buffers"] < 60 {
				t.Fatalf("the camera's stream statistics: %v", st.SourceStats)
			}
			// The consumer drains the rest and learns the ring closed.
			for {
				l, err := r.Next(ctx)
				if err != nil {
					if !errors.Is(err, ringbuf.ErrClosed) && !errors.Is(err, ringbuf.ErrProducerGone) {
						t.Fatalf("after the producer stopped: %v", err)
					}
					break
				}
				l.Release()
			}
		})
	}
}
