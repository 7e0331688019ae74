//go:build gst && cgo

package producer_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/native"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ringbuf"
)

// A GStreamer source through the producer, in both modes: the ring is
// sized from the caps the pipeline negotiated, a lossless consumer gets
// every frame of the stream with dense ids and GStreamer's own pixels, and
// the end of the stream ends Run cleanly with every frame accounted for.
func TestGstSource(t *testing.T) {
	const n = 40
	desc := "videotestsrc num-buffers=40 pattern=ball ! video/x-raw,format=GRAY8,width=30,height=20"
	geo := frame.Geometry{Width: 30, Height: 20, Stride: 32, Format: frame.Mono8} // GStreamer's rows are 4-byte aligned
	ref := gstReference(t, desc, geo)
	for _, cp := range []bool{false, true} {
		t.Run(modeName(cp), func(t *testing.T) {
			name := ringName()
			p := newProducer(t, producer.Config{Name: name, Source: native.KindGst, Pipeline: desc, Copy: cp,
				Slots: 6, QueueDepth: 2, StatsInterval: -1})
			if cfg := p.Config(); cfg.Geometry != geo || cfg.FrameRate != producer.FreeRun {
				t.Fatalf("config from the caps: %+v", cfg)
			}
			r := attach(t, name, ringbuf.Lossless, "gst-test")
			run := run(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			// Zero-copy, the stream is paced by the slots (a non-live
			// source waits for a queued one) and nothing is lost; safe-copy
			// drops a frame for which the ring has no free slot, like a
			// camera.
			got := 0
			for {
				l, err := r.Next(ctx)
				if isEnd(err) {
					break
				}
				if err != nil {
					t.Fatalf("after %d frames: %v", got, err)
				}
				m := l.Meta()
				if m.FrameID >= n || (!cp && m.FrameID != uint64(got)) || m.Width != uint32(geo.Width) ||
					m.Height != uint32(geo.Height) || m.Stride != uint32(geo.Stride) || m.Format != geo.Format ||
					m.Length != uint64(geo.Size()) || m.Timestamp <= 0 {
					t.Fatalf("frame %d: meta %+v", got, m)
				}
				if !bytes.Equal(rowPixels(geo, l.Bytes()), rowPixels(geo, ref[m.FrameID])) {
					t.Fatalf("frame %d differs from GStreamer's own", m.FrameID)
				}
				if m.Flags&native.FlagGstCopied != 0 {
					t.Fatalf("frame %d: the sink copied it (flags %#x)", m.FrameID, m.Flags)
				}
				l.Release()
				got++
			}
			select {
			case <-run.done:
			case <-time.After(hangGuard):
				t.Fatal("Run did not end with the stream")
			}
			if run.err != nil {
				t.Fatalf("Run: %v", run.err)
			}
			st := run.stats
			// Copies: none zero-copy (videotestsrc wrote the slots), one
			// per published frame in safe-copy mode (the producer's).
			if st.Frames != n || st.Accounted() != n || st.Published != uint64(got) || st.Source != native.KindGst ||
				(!cp && (st.Published != n || st.Copies != 0)) || (cp && st.Copies != st.Published) {
				t.Fatalf("%d frames read, stats %+v", got, st)
			}
		})
	}
}

func TestGstConfigErrors(t *testing.T) {
	for name, cfg := range map[string]producer.Config{
		"no pipeline":      {Source: native.KindGst},
		"pipeline for sdk": {Source: native.KindSynthetic, Pipeline: "videotestsrc"},
	} {
		cfg.Name = ringName()
		if p, err := producer.New(cfg); err == nil || !strings.Contains(err.Error(), "pipeline") {
			if p != nil {
				p.Close()
			}
			t.Errorf("%s: New = %v, want ErrConfig about the pipeline", name, err)
		}
	}
	cfg := producer.Config{Name: ringName(), Source: native.KindGst, Pipeline: "videotestsrc ! video/x-raw,format=I420"}
	if _, err := producer.New(cfg); err == nil || !strings.Contains(err.Error(), "frameringsink accepts") {
		t.Errorf("unusable caps: New = %v", err)
	}
}

// gstReference is what desc writes into a file through gst-launch-1.0.
func gstReference(t *testing.T, desc string, g frame.Geometry) [][]byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "reference.raw")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	args := append([]string{"-q"}, strings.Fields(desc+" ! filesink location="+out)...)
	if b, err := exec.CommandContext(ctx, "gst-launch-1.0", args...).CombinedOutput(); err != nil {
		t.Fatalf("gst-launch-1.0 %s: %v\n%s", desc, err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for len(raw) >= g.Size() {
		frames = append(frames, raw[:g.Size()])
		raw = raw[g.Size():]
	}
	return frames
}

// rowPixels drops row padding, which GStreamer leaves uninitialized.
func rowPixels(g frame.Geometry, b []byte) []byte {
	var out []byte
	for y := range g.Height {
		out = append(out, b[y*g.Stride:y*g.Stride+g.RowBytes()]...)
	}
	return out
}
