//go:build gst && cgo

package native_test

// The GStreamer backend against real GStreamer pipelines (no mocks): the
// frames a videotestsrc writes into announced shared memory are the ones
// the same description writes through gst-launch-1.0 into a file, the
// zero-copy path copies nothing, the copy path copies each frame once, and
// end of stream, errors and shutdown behave as the Grabber contract says.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/framering/framering/clock"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/native"
)

// gstCase is a videotestsrc description and what it must negotiate.
type gstCase struct {
	name   string
	format string // GStreamer's
	w, h   int
	want   frame.Format
	stride int
}

func (c gstCase) desc(n int, pattern string) string {
	media := "video/x-raw"
	if info, _ := c.want.Info(); info.Kind == frame.KindBayer {
		media = "video/x-bayer"
	}
	return fmt.Sprintf("videotestsrc num-buffers=%d pattern=%s ! %s,format=%s,width=%d,height=%d,framerate=1000/1",
		n, pattern, media, c.format, c.w, c.h)
}

// gstCases: every format videotestsrc makes that the frame package can
// describe, packed and with GStreamer's 4-byte row padding (30 GRAY8
// pixels: stride 32).
var gstCases = []gstCase{
	{"gray8", "GRAY8", 64, 48, frame.Mono8, 64},
	{"gray8-padded", "GRAY8", 30, 20, frame.Mono8, 32},
	{"gray16", "GRAY16_LE", 33, 21, frame.Mono16, 68},
	{"rgb", "RGB", 50, 30, frame.RGB8, 152},
	{"bgr", "BGR", 31, 17, frame.BGR8, 96},
	{"yuy2", "YUY2", 64, 48, frame.YUV422_8, 128},
	{"uyvy", "UYVY", 34, 10, frame.YUV422_8_UYVY, 68},
	{"bayer-rggb", "rggb", 30, 20, frame.BayerRG8, 32},
	{"bayer-gbrg", "gbrg", 64, 48, frame.BayerGB8, 64},
	{"rgb-vga", "RGB", 640, 480, frame.RGB8, 1920},
}

// gstReference runs desc into a filesink with gst-launch-1.0 (another
// process, GStreamer's own buffers) and returns its frames.
func gstReference(t *testing.T, desc string, size int) [][]byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "reference.raw")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	args := append([]string{"-q"}, strings.Fields(desc+" ! filesink location="+out)...)
	cmd := exec.CommandContext(ctx, "gst-launch-1.0", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gst-launch-1.0 %s: %v\n%s", desc, err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw)%size != 0 {
		t.Fatalf("reference: %d bytes is not a whole number of %d-byte frames", len(raw), size)
	}
	var frames [][]byte
	for len(raw) > 0 {
		frames = append(frames, raw[:size])
		raw = raw[size:]
	}
	return frames
}

// pixels returns the pixel bytes of each row (GStreamer leaves row padding
// uninitialized in its own buffers, so only pixels are compared).
func pixels(g frame.Geometry, b []byte) []byte {
	out := make([]byte, 0, g.RowBytes()*g.Height)
	for y := range g.Height {
		out = append(out, b[y*g.Stride:y*g.Stride+g.RowBytes()]...)
	}
	return out
}

// gstRun is one acquisition: the frames' pixels, their infos, the final
// counters.
type gstRun struct {
	geo    frame.Geometry
	pixels [][]byte
	infos  []native.FrameInfo
	c      native.Counters
}

// runGst opens desc, lends it slots of shared memory (or, with private,
// allocated buffers), runs it to the end of its stream and returns what
// came out. Every frame must lie in the memory lent for it.
func runGst(t *testing.T, desc string, slots int, private bool) gstRun {
	t.Helper()
	g, err := native.Open(native.KindGst, native.Config{Pipeline: desc})
	if err != nil {
		t.Fatalf("open %q: %v", desc, err)
	}
	e := &env{t: t, g: g, cfg: g.Config()}
	t.Cleanup(e.cleanup)
	geo := e.cfg.Geometry
	var ranges [][2]uintptr
	if private {
		for range slots {
			id, err := g.Allocate(geo.Size())
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Queue(id); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		_, byID := e.buffers(slots, 0, true)
		for _, b := range byID {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
			ranges = append(ranges, [2]uintptr{p, p + uintptr(len(b))})
		}
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	run := gstRun{geo: geo}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for {
		f, err := g.Dequeue(ctx, 0)
		if errors.Is(err, native.ErrStopped) {
			break // end of stream, after the last frame
		}
		if err != nil {
			t.Fatalf("dequeue after %d frames: %v", len(run.infos), err)
		}
		info := mustInfo(t, f)
		b := f.Bytes()
		if len(b) != geo.Size() || info.Geometry != geo || info.Length != geo.Size() {
			t.Fatalf("frame %d: %d bytes, info %+v, want %v", info.FrameID, len(b), info, geo)
		}
		if !private {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
			in := false
			for _, r := range ranges {
				in = in || (p >= r[0] && p+uintptr(len(b)) <= r[1])
			}
			if !in {
				t.Fatalf("frame %d at %#x is in no announced slot", info.FrameID, p)
			}
		}
		run.pixels = append(run.pixels, pixels(geo, b))
		run.infos = append(run.infos, info)
		if err := f.Requeue(); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	run.c = g.Counters()
	return run
}

// checkFrames compares a run with the reference and checks the ids.
func checkFrames(t *testing.T, run gstRun, ref [][]byte) {
	t.Helper()
	if len(run.pixels) != len(ref) {
		t.Fatalf("%d frames, the reference has %d", len(run.pixels), len(ref))
	}
	for i := range ref {
		if want := pixels(run.geo, ref[i]); !bytes.Equal(run.pixels[i], want) {
			t.Fatalf("frame %d differs from the reference", i)
		}
		if run.infos[i].FrameID != uint64(i) || run.infos[i].Status != native.FrameComplete {
			t.Fatalf("frame %d: info %+v", i, run.infos[i])
		}
		if i > 0 && run.infos[i].Timestamp < run.infos[i-1].Timestamp {
			t.Fatalf("frame %d: timestamp went back", i)
		}
	}
	c := run.c
	if c.Delivered != uint64(len(ref)) || c.NextFrameID != c.Delivered || c.Underruns != 0 || c.Lost.Total() != 0 ||
		c.Queued != 0 || c.Awaiting != 0 || c.Held != 0 {
		t.Fatalf("counters %+v", c)
	}
}

// Zero-copy: videotestsrc writes into the announced slots themselves,
// nothing is copied, and the pixels are GStreamer's own.
func TestGstZeroCopy(t *testing.T) {
	for _, c := range gstCases {
		t.Run(c.name, func(t *testing.T) {
			const n = 12
			desc := c.desc(n, "ball")
			run := runGst(t, desc, 4, false)
			if want := (frame.Geometry{Width: c.w, Height: c.h, Stride: c.stride, Format: c.want}); run.geo != want {
				t.Fatalf("negotiated %+v, want %+v", run.geo, want)
			}
			checkFrames(t, run, gstReference(t, desc, run.geo.Size()))
			if run.c.Copies != 0 {
				t.Fatalf("zero-copy path copied %d frames", run.c.Copies)
			}
			for _, info := range run.infos {
				if info.Flags&native.FlagGstCopied != 0 {
					t.Fatalf("frame %d flagged copied", info.FrameID)
				}
			}
		})
	}
}

// The copy path: identity drop-allocation=true hides the sink's pool from
// videotestsrc, which then writes into buffers of its own; each frame is
// copied once into a lent buffer, counted and flagged, and still equal to
// GStreamer's own output.
func TestGstCopyPath(t *testing.T) {
	for _, c := range []gstCase{gstCases[1], gstCases[3]} {
		t.Run(c.name, func(t *testing.T) {
			const n = 10
			desc := c.desc(n, "smpte") + " ! identity drop-allocation=true"
			run := runGst(t, desc, 3, false)
			checkFrames(t, run, gstReference(t, desc, run.geo.Size()))
			if run.c.Copies != n {
				t.Fatalf("copies %d, want %d", run.c.Copies, n)
			}
			for _, info := range run.infos {
				if info.Flags&native.FlagGstCopied == 0 {
					t.Fatalf("frame %d not flagged copied", info.FrameID)
				}
			}
		})
	}
}

// Allocated (device-private) buffers work like announced ones: the
// safe-copy producer's path.
func TestGstAllocated(t *testing.T) {
	c := gstCases[0]
	desc := c.desc(8, "gradient")
	run := runGst(t, desc, 2, true)
	checkFrames(t, run, gstReference(t, desc, run.geo.Size()))
	if run.c.Copies != 0 {
		t.Fatalf("copies %d", run.c.Copies)
	}
}

// Pipelines that cannot be sources are clear errors at Open.
func TestGstOpenErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		desc string
		want error
		text string
	}{
		"empty":     {"", native.ErrInvalid, "no pipeline description"},
		"no such":   {"nosuchelement-xyz", native.ErrPipeline, "nosuchelement-xyz"},
		"syntax":    {"videotestsrc ! ! videoconvert", native.ErrPipeline, "parse pipeline"},
		"planar":    {"videotestsrc ! video/x-raw,format=I420", native.ErrPipeline, "frameringsink accepts video/x-raw"},
		"not video": {"audiotestsrc", native.ErrPipeline, "could not link"},
	} {
		t.Run(name, func(t *testing.T) {
			g, err := native.Open(native.KindGst, native.Config{Pipeline: tc.desc})
			if err == nil {
				g.Close()
				t.Fatalf("open %q succeeded", tc.desc)
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("open %q: %v, want %v mentioning %q", tc.desc, err, tc.want, tc.text)
			}
		})
	}
	cfg := native.Config{Pipeline: "videotestsrc"}
	cfg.Faults[0] = native.Fault{Cause: loss.Incomplete, Every: 3}
	if g, err := native.Open(native.KindGst, cfg); !errors.Is(err, native.ErrInvalid) {
		if g != nil {
			g.Close()
		}
		t.Fatalf("open with faults: %v", err)
	}
}

// A stream that ends before its first frame: Open succeeds (the caps were
// negotiated), and Dequeue reports the end at once.
func TestGstEmptyStream(t *testing.T) {
	g, err := native.Open(native.KindGst, native.Config{Pipeline: "videotestsrc num-buffers=0 ! video/x-raw,format=GRAY8,width=64,height=48"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, g: g, cfg: g.Config()}
	t.Cleanup(e.cleanup)
	e.buffers(2, 0, true)
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if _, err := g.Dequeue(ctx, 0); !errors.Is(err, native.ErrStopped) {
		t.Fatalf("dequeue of an empty stream: %v", err)
	}
}

// A geometry change mid-stream fails the source with a clear error after
// the frames of the first geometry: pngdec decodes a 64x48 image three
// times, then a 32x24 one.
func TestGstGeometryChange(t *testing.T) {
	dir := t.TempDir()
	for i, size := range []int{64, 64, 64, 32, 32} {
		img := image.NewGray(image.Rect(0, 0, size, size*3/4))
		for j := range img.Pix {
			img.Pix[j] = byte(i*40 + j)
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.png", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	desc := fmt.Sprintf("multifilesrc location=%s/f%%d.png index=0 stop-index=4 caps=image/png ! pngdec", dir)
	g, err := native.Open(native.KindGst, native.Config{Pipeline: desc})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, g: g, cfg: g.Config()}
	t.Cleanup(e.cleanup)
	if geo := g.Config().Geometry; geo != frame.Packed(64, 48, frame.Mono8) {
		t.Fatalf("negotiated %+v", geo)
	}
	e.buffers(4, 0, true)
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	frames := 0
	for {
		f, err := g.Dequeue(ctx, 0)
		if err != nil {
			if !errors.Is(err, native.ErrPipeline) || !strings.Contains(err.Error(), "a geometry change needs a new producer") ||
				!strings.Contains(err.Error(), "64") {
				t.Fatalf("after %d frames: %v, want the geometry change", frames, err)
			}
			t.Logf("%v", err)
			break
		}
		if b := f.Bytes(); b[0] != byte(frames*40) {
			t.Fatalf("frame %d starts with %d", frames, b[0])
		}
		frames++
		f.Requeue()
	}
	if frames != 3 {
		t.Fatalf("%d frames before the change, want 3", frames)
	}
}

// Stop in the middle of a non-live stream: upstream waits in the pool
// for a buffer (none is queued), Stop wakes it, takes every buffer back
// idle, and a filled frame not yet dequeued is discarded and counted.
func TestGstStopAndClose(t *testing.T) {
	g, err := native.Open(native.KindGst, native.Config{Pipeline: gstCases[0].desc(1000, "ball")})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, g: g, cfg: g.Config()}
	t.Cleanup(e.cleanup)
	ids, _ := e.buffers(3, 0, true)
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); !errors.Is(err, native.ErrBusy) {
		t.Fatalf("second start: %v", err)
	}
	// Every buffer fills; no frame is requeued, so upstream then waits.
	waitFor(t, "three frames", func() bool { return g.Counters().Awaiting == 3 })
	f := e.dequeue()
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	c := g.Counters()
	if c.Discarded != 2 || c.Held != 1 || c.Queued != 0 || c.Awaiting != 0 || c.NextFrameID != c.Delivered {
		t.Fatalf("after stop: %+v", c)
	}
	if _, err := g.Dequeue(context.Background(), 0); !errors.Is(err, native.ErrStopped) {
		t.Fatalf("dequeue when stopped: %v", err)
	}
	// The leased frame stays readable; the others are idle and revocable.
	if len(f.Bytes()) != e.cfg.Geometry.Size() {
		t.Fatal("the leased frame lost its bytes at stop")
	}
	leased := mustInfo(t, f).Buffer
	for _, id := range ids {
		if id != leased {
			if err := g.Revoke(id); err != nil {
				t.Fatalf("revoke after stop: %v", err)
			}
		}
	}
	if err := g.Revoke(leased); !errors.Is(err, native.ErrBufferState) {
		t.Fatalf("revoke of a leased buffer: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if f.Bytes() != nil {
		t.Fatal("a lease survived close")
	}
	if _, err := g.Dequeue(context.Background(), 0); !errors.Is(err, native.ErrClosed) {
		t.Fatalf("dequeue after close: %v", err)
	}
}

// A live pipeline never waits for a buffer: with nothing queued its frames
// are underruns, and the ids the frames carry show the gap.
func TestGstLiveUnderruns(t *testing.T) {
	desc := "videotestsrc is-live=true ! video/x-raw,format=GRAY8,width=32,height=24,framerate=200/1"
	g, err := native.Open(native.KindGst, native.Config{Pipeline: desc})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, g: g, cfg: g.Config()}
	t.Cleanup(e.cleanup)
	if r := g.Config().Rate; r != 200 {
		t.Fatalf("live rate %v, want 200", r)
	}
	ids, _ := e.buffers(2, 0, false)
	started := clock.Nanos()
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "underruns", func() bool { return g.Counters().Underruns >= 3 })
	for _, id := range ids {
		if err := g.Queue(id); err != nil {
			t.Fatal(err)
		}
	}
	f := e.dequeue()
	info := mustInfo(t, f)
	if info.FrameID < 3 {
		t.Fatalf("first frame id %d after 3+ underruns", info.FrameID)
	}
	// Live timestamps are the PTS on CLOCK_MONOTONIC: base time plus
	// running time on GStreamer's monotonic system clock, so they lie a
	// constant apart from the PTS, and never after the frame arrived.
	f2 := e.dequeue()
	info2 := mustInfo(t, f2)
	if info.Timestamp-int64(info.DeviceTimestamp) != info2.Timestamp-int64(info2.DeviceTimestamp) ||
		info2.DeviceTimestamp <= info.DeviceTimestamp || info2.Timestamp > clock.Nanos() ||
		info.Timestamp < started-int64(time.Second) { // a frame due after start (a sanity bound, not a timing one)
		t.Fatalf("timestamps %d, %d for PTS %d, %d", info.Timestamp, info2.Timestamp, info.DeviceTimestamp, info2.DeviceTimestamp)
	}
	f2.Requeue()
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	c := g.Counters()
	if c.NextFrameID != c.Delivered+c.Underruns+c.Lost.Total() || c.Lost[loss.SizeMismatch] != 0 {
		t.Fatalf("counters %+v", c)
	}
	f.Requeue()
}

// A live pipeline plays from Open, but its frames before Start are not
// lost: the first waits in the sink, the rest upstream, until Start. A
// stream of three frames that would have run out long before Start
// delivers all three, with ids 0, 1, 2, then ends.
func TestGstLiveFramesBeforeStart(t *testing.T) {
	desc := "videotestsrc is-live=true num-buffers=3 ! video/x-raw,format=GRAY8,width=32,height=24,framerate=100/1"
	g, err := native.Open(native.KindGst, native.Config{Pipeline: desc})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, g: g, cfg: g.Config()}
	t.Cleanup(e.cleanup)
	e.buffers(4, 0, true)
	// Time for the three frames to reach the sink before Start (when
	// frames before Start were dropped, all three were). What follows
	// holds however long this takes.
	time.Sleep(100 * time.Millisecond)
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	var ids []uint64
	for {
		f, err := g.Dequeue(ctx, 0)
		if errors.Is(err, native.ErrStopped) {
			break
		}
		if err != nil {
			t.Fatalf("dequeue after %v: %v", ids, err)
		}
		ids = append(ids, mustInfo(t, f).FrameID)
		f.Requeue()
	}
	if fmt.Sprint(ids) != "[0 1 2]" {
		t.Fatalf("frames %v of a live stream of 3 that started before Start, want [0 1 2]", ids)
	}
	if c := g.Counters(); c.Delivered != 3 || c.NextFrameID != 3 {
		t.Fatalf("counters %+v", c)
	}
}

// The per-frame path allocates nothing: Dequeue, Info, Bytes and Requeue
// in steady state, and a Dequeue that times out.
func TestGstDequeueAllocatesNothing(t *testing.T) {
	g, err := native.Open(native.KindGst, native.Config{Pipeline: "videotestsrc ! video/x-raw,format=GRAY8,width=32,height=24"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, g: g, cfg: g.Config()}
	t.Cleanup(e.cleanup)
	ids, _ := e.buffers(3, 0, false)
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	// Nothing queued: a non-live source waits, and so does Dequeue.
	if n := testing.AllocsPerRun(20, func() {
		if _, err := g.Dequeue(context.Background(), time.Microsecond); err != native.ErrNoFrame {
			t.Errorf("timed dequeue: %v", err)
		}
	}); n != 0 {
		t.Errorf("a timed-out Dequeue allocates %v", n)
	}
	for _, id := range ids {
		if err := g.Queue(id); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cycle := func() {
		f, err := g.Dequeue(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Info(); err != nil || len(f.Bytes()) == 0 {
			t.Fatalf("info %v", err)
		}
		if err := f.Requeue(); err != nil {
			t.Fatal(err)
		}
	}
	cycle()
	if n := testing.AllocsPerRun(50, cycle); n != 0 {
		t.Errorf("a frame's dequeue and requeue allocate %v", n)
	}
}
