//go:build aravis && cgo

package native_test

// The Aravis backend against Aravis's own GigE Vision camera simulator
// (arv-fake-gv-camera-0.8), which serves the real GVCP/GVSP protocol on
// loopback, inside a private network namespace this test makes: no
// discovery broadcast ever leaves it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/clock"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/native"
)

var fakeSerial atomic.Int32

// camEnv is an open Aravis grabber on a fresh simulator, plus the shared
// memory lent to it (unmapped after Close, as the ownership rules say).
type camEnv struct {
	t    *testing.T
	cam  *testmain.FakeCamera
	g    native.Grabber
	cfg  native.Config
	maps [][]byte
}

// openCam starts a simulator (lostPerThousand: packets it drops) and opens
// it with o (its Camera is filled in).
func openCam(t *testing.T, lostPerThousand float64, o native.CameraOptions) *camEnv {
	t.Helper()
	cam := testmain.StartFakeCamera(t, fmt.Sprintf("FR%02d", fakeSerial.Add(1)), lostPerThousand)
	o.Camera = testmain.FakeCameraAddr
	if o.ProbeAfter == 0 {
		o.ProbeAfter = 300 * time.Millisecond
	}
	if o.ReopenEvery == 0 {
		o.ReopenEvery = 100 * time.Millisecond
	}
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	g, err := native.Open(native.KindAravis, native.Config{Camera: &o})
	if err != nil {
		t.Fatalf("open the simulator: %v", err)
	}
	e := &camEnv{t: t, cam: cam, g: g, cfg: g.Config()}
	t.Cleanup(e.cleanup)
	return e
}

func (e *camEnv) cleanup() {
	if err := e.g.Close(); err != nil {
		e.t.Errorf("close: %v", err)
	}
	for _, m := range e.maps {
		if err := unix.Munmap(m); err != nil {
			e.t.Errorf("munmap: %v", err)
		}
	}
	e.maps = nil
}

// announce maps n buffers of the camera's payload in one shared mapping,
// fills them with poison, announces and queues them.
func (e *camEnv) announce(n int, poison byte) ([]native.BufferID, map[native.BufferID][]byte) {
	e.t.Helper()
	size := max(e.cfg.PayloadSize, e.cfg.Geometry.Size())
	m, err := unix.Mmap(-1, 0, n*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		e.t.Fatal(err)
	}
	e.maps = append(e.maps, m)
	ids := make([]native.BufferID, n)
	byID := make(map[native.BufferID][]byte, n)
	for i := range n {
		b := m[i*size : (i+1)*size : (i+1)*size]
		for j := range b {
			b[j] = poison
		}
		id, err := e.g.Announce(b)
		if err != nil {
			e.t.Fatalf("announce %d: %v", i, err)
		}
		if err := e.g.Queue(id); err != nil {
			e.t.Fatalf("queue %d: %v", i, err)
		}
		ids[i], byID[id] = id, b
	}
	return ids, byID
}

func (e *camEnv) dequeue(timeout time.Duration) (native.Frame, native.FrameInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	f, err := e.g.Dequeue(ctx, timeout)
	if err != nil {
		return f, native.FrameInfo{}, err
	}
	info, err := f.Info()
	return f, info, err
}

// blockID is the camera's own (16-bit GigE Vision) frame id, which the
// simulator's pattern depends on: the backend keeps it in Flags 16-31.
func blockID(info native.FrameInfo) uint64 { return uint64(info.Flags >> 16) }

// stats is the stream's statistics and the camera's disconnects and
// reconnects, by name, for failure messages.
func (e *camEnv) stats() map[string]uint64 {
	m := map[string]uint64{}
	for _, st := range e.g.(native.StatsReporter).SourceStats(nil) {
		m[st.Name] = st.Value
	}
	return m
}

// completeFrames dequeues frames until n complete ones have passed check
// (k: 0..n-1) and requeues every frame after writing poison over it, so
// that a frame reported complete later in the same buffer passes only if
// its own fill wrote every byte. A frame that is not complete is skipped,
// not a failure, even on this lossless loopback: when the consumer is slow
// (these tests under -race on a busy machine), a frame's first packets can
// arrive while no buffer is queued; Aravis drops them (an underrun), fills
// the buffer requeued meanwhile from a later packet on, and returns it as
// a timeout (resend on: it waits for the packets it asked for again, which
// the simulator never resends) or with missing packets (resend off), which
// the backend hands out as FrameUnderrun. Such a frame keeps the block id
// and the bytes its buffer had before that packet; the producer never
// publishes it. At most 20*n frames are dequeued (a hang guard).
func (e *camEnv) completeFrames(n int, poison byte, check func(k int, f native.Frame, info native.FrameInfo)) {
	e.t.Helper()
	skipped := 0
	for k := 0; k < n; {
		if k+skipped >= 20*n {
			e.t.Fatalf("%d of %d frames not complete; stream stats %v", skipped, k+skipped, e.stats())
		}
		f, info, err := e.dequeue(0)
		if err != nil {
			e.t.Fatal(err)
		}
		if info.Status == native.FrameComplete {
			check(k, f, info)
			k++
		} else {
			skipped++
			e.t.Logf("skipped a frame that is not complete (%v, block id %d, buffer %#x); stream stats %v",
				info.Status, blockID(info), uint64(info.Buffer), e.stats())
		}
		b := f.Bytes()
		for i := range b {
			b[i] = poison
		}
		if err := f.Requeue(); err != nil {
			e.t.Fatal(err)
		}
	}
}

func equalOrDiff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %d is %#02x, want %#02x", i, got[i], want[i])
		}
	}
	return ""
}

func TestAravis(t *testing.T) {
	if !testmain.PrivateNetwork(t) {
		return
	}
	for _, notify := range []string{native.NotifyPoll, native.NotifyCallback} {
		t.Run("ZeroCopy/"+notify, func(t *testing.T) { testZeroCopy(t, notify) })
	}
	t.Run("Settings", testSettings)
	t.Run("PixelFormats", testPixelFormats)
	t.Run("BadSettings", testBadSettings)
	t.Run("SafeCopy", testSafeCopy)
	t.Run("UnderrunMidFrame/ResendOn", func(t *testing.T) { testUnderrunMidFrame(t, true) })
	t.Run("UnderrunMidFrame/ResendOff", func(t *testing.T) { testUnderrunMidFrame(t, false) })
	t.Run("AllocateIsAtomic", testAllocateIsAtomic)
	t.Run("StopGivesEveryBufferBack", testStopGivesBuffersBack)
	t.Run("PacketLossResendOff", func(t *testing.T) { testPacketLoss(t, false) })
	t.Run("PacketLossResendOn", func(t *testing.T) { testPacketLoss(t, true) })
	t.Run("CameraLostAndBack", testCameraLost)
	t.Run("StopAndStartWhileLost", testStopWhileLost)
	t.Run("DequeueRequeueAllocs", testAravisAllocs)
	for _, notify := range []string{native.NotifyPoll, native.NotifyCallback} {
		t.Run("ConcurrentUse/"+notify, func(t *testing.T) { testAravisConcurrent(t, notify) })
	}
	t.Run("ListCameras", testListCameras)
	t.Run("CSanitizers", testShimSanitizers)
}

// testShimSanitizers builds the C shim with its C driver
// (testdata/arvshim_test.c) as C11 under AddressSanitizer and
// UndefinedBehaviorSanitizer, warnings as errors, and runs it against the
// simulator. LeakSanitizer is off: GLib's type system and Aravis's device
// lists are process-wide allocations that live until exit.
func testShimSanitizers(t *testing.T) {
	testmain.StartFakeCamera(t, "FRSAN", 0)
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "aravis-0.8").Output()
	if err != nil {
		t.Fatalf("pkg-config: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "arvshim_test")
	args := append([]string{"-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fno-omit-frame-pointer",
		"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-o", bin,
		filepath.Join("testdata", "arvshim_test.c"), "arvshim.c"}, strings.Fields(string(flags))...)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	cmd := exec.Command(bin, testmain.FakeCameraAddr)
	cmd.Env = append(os.Environ(), "ASAN_OPTIONS=detect_leaks=0:halt_on_error=1", "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
	out, err := cmd.CombinedOutput()
	if text := string(out); err != nil || strings.TrimSpace(text) != "ok" {
		t.Fatalf("arvshim_test: %v\n%s", err, text)
	}
}

// testZeroCopy: every complete frame was written by Aravis's receive
// thread straight into the buffer it was lent (the data pointer Aravis
// holds is the shared memory's; the poison there is gone), its bytes are
// the simulator's for its block id, and its metadata is right.
func testZeroCopy(t *testing.T, notify string) {
	e := openCam(t, 0, native.CameraOptions{Notify: notify,
		Settings: []native.FeatureSetting{{Name: "Width", Value: "256"}, {Name: "Height", Value: "128"},
			{Name: "AcquisitionFrameRate", Value: "200"}}})
	g := e.cfg.Geometry
	if g != frame.Packed(256, 128, frame.Mono8) || e.cfg.Rate != 200 {
		t.Fatalf("config %+v: want 256x128 Mono8 at 200 fps", e.cfg)
	}
	ids, byID := e.announce(4, 0xAA)
	start := clock.Nanos()
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	c0 := e.g.Counters()
	var prev native.FrameInfo
	const n = 40
	e.completeFrames(n, 0xAA, func(k int, f native.Frame, info native.FrameInfo) {
		now := clock.Nanos()
		mem := byID[info.Buffer]
		if info.Geometry != g || info.Length != g.Size() {
			t.Fatalf("frame %d: %+v, want %+v, %d bytes", k, info.Geometry, g, g.Size())
		}
		b := f.Bytes()
		if unsafe.SliceData(b) != unsafe.SliceData(mem) {
			t.Fatalf("frame %d: Bytes at %p, the buffer lent is at %p", k, unsafe.SliceData(b), unsafe.SliceData(mem))
		}
		if a := native.AravisBufferData(e.g, info.Buffer); a != uintptr(unsafe.Pointer(unsafe.SliceData(mem))) {
			t.Fatalf("frame %d: Aravis holds its data at %#x, the buffer lent is at %p", k, a, unsafe.SliceData(mem))
		}
		if d := equalOrDiff(b, testmain.FakeCameraFrame(g, blockID(info), 1)); d != "" {
			t.Fatalf("frame %d (block %d, buffer %#x): %s; stream stats %v", k, blockID(info), uint64(info.Buffer), d, e.stats())
		}
		if info.Timestamp < start || info.Timestamp > now {
			t.Fatalf("frame %d: timestamp %d outside [%d, %d] (CLOCK_MONOTONIC)", k, info.Timestamp, start, now)
		}
		if info.DeviceTimestamp == 0 {
			t.Fatalf("frame %d: no device timestamp", k)
		}
		if k > 0 {
			if info.FrameID <= prev.FrameID || info.Timestamp < prev.Timestamp || info.DeviceTimestamp <= prev.DeviceTimestamp {
				t.Fatalf("frame %d: id %d ts %d dev %d after id %d ts %d dev %d", k, info.FrameID, info.Timestamp,
					info.DeviceTimestamp, prev.FrameID, prev.Timestamp, prev.DeviceTimestamp)
			}
		} else if info.FrameID != blockID(info) {
			t.Fatalf("first frame: id %d, the camera's block id is %d", info.FrameID, blockID(info))
		}
		prev = info
	})
	if err := e.g.Stop(); err != nil {
		t.Fatal(err)
	}
	c := e.g.Counters()
	if c.Copies != 0 {
		t.Fatalf("%d copies in zero-copy mode", c.Copies)
	}
	if c.NextFrameID != c.Delivered+c.Underruns+c.Lost.Total() || c.Delivered-c0.Delivered < n || c.Queued != 0 || c.Held != 0 {
		t.Fatalf("counters after stop: %+v", c)
	}
	for _, id := range ids {
		if err := e.g.Revoke(id); err != nil {
			t.Fatalf("revoke after stop: %v", err)
		}
	}
}

// testSettings: -set values take effect: geometry, pixel format, frame
// rate, gain and exposure (the simulator's pattern shows the last two).
func testSettings(t *testing.T) {
	e := openCam(t, 0, native.CameraOptions{Settings: []native.FeatureSetting{
		{Name: "Width", Value: "320"}, {Name: "Height", Value: "240"}, {Name: "PixelFormat", Value: "Mono16"},
		{Name: "AcquisitionFrameRate", Value: "150"}, {Name: "GainRaw", Value: "1"}, {Name: "ExposureTimeAbs", Value: "20000"},
	}})
	g := e.cfg.Geometry
	if g != frame.Packed(320, 240, frame.Mono16) || math.Abs(e.cfg.Rate-150) > 0.5 { // the camera rounds its period
		t.Fatalf("config %+v: want 320x240 Mono16 at 150 fps", e.cfg)
	}
	e.announce(3, 0xAA)
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	scale := testmain.FakeCameraScale(1, 20000)
	e.completeFrames(10, 0xAA, func(k int, f native.Frame, info native.FrameInfo) {
		if d := equalOrDiff(f.Bytes(), testmain.FakeCameraFrame(g, blockID(info), scale)); d != "" {
			t.Fatalf("frame %d (block %d, buffer %#x): %s; stream stats %v; counters %+v",
				k, blockID(info), uint64(info.Buffer), d, e.stats(), e.g.Counters())
		}
	})
}

// testPixelFormats: every pixel format the simulator offers arrives with
// its PFNC code and packed stride, byte-identical to what a plain Aravis
// client (testdata/arvgrab.c, no framering code) receives with the same
// settings.
func testPixelFormats(t *testing.T) {
	client := testmain.PlainAravisClient(t)
	for _, name := range []string{"Mono8", "Mono16", "RGB8", "BayerRG8", "BayerGR8", "BayerGB8", "BayerBG8"} {
		t.Run(name, func(t *testing.T) {
			f, err := frame.ParseFormat(name)
			if err != nil {
				t.Fatal(err)
			}
			cam := testmain.StartFakeCamera(t, "FRFMT", 0)
			sets := []string{"Width=64", "Height=32", "PixelFormat=" + name, "AcquisitionFrameRate=200"}
			ref, said := testmain.RunPlainAravisClient(t, client, testmain.FakeCameraAddr, 12, sets)
			if said != "64 32 "+name {
				t.Fatalf("the plain client says %q", said)
			}
			cam.Kill()
			cam.Restart() // block ids from 1 again, as the reference's
			var fs []native.FeatureSetting
			for _, s := range sets {
				set, err := native.ParseFeatureSetting(s)
				if err != nil {
					t.Fatal(err)
				}
				fs = append(fs, set)
			}
			o := native.CameraOptions{Camera: testmain.FakeCameraAddr, Settings: fs, Logger: slog.New(slog.DiscardHandler)}
			g, err := native.Open(native.KindAravis, native.Config{Camera: &o})
			if err != nil {
				t.Fatal(err)
			}
			e := &camEnv{t: t, cam: cam, g: g, cfg: g.Config()}
			t.Cleanup(e.cleanup)
			if want := frame.Packed(64, 32, f); e.cfg.Geometry != want {
				t.Fatalf("geometry %+v, want %+v", e.cfg.Geometry, want)
			}
			e.announce(4, 0xAA)
			if err := e.g.Start(); err != nil {
				t.Fatal(err)
			}
			compared := 0
			for range 10 {
				fr, info, err := e.dequeue(0)
				if err != nil {
					t.Fatal(err)
				}
				if want, ok := ref[blockID(info)]; ok && info.Status == native.FrameComplete {
					if d := equalOrDiff(fr.Bytes(), want); d != "" {
						t.Fatalf("block %d differs from the plain client's: %s", blockID(info), d)
					}
					compared++
				}
				fr.Requeue()
			}
			if compared < 5 {
				t.Fatalf("only %d frames compared", compared)
			}
		})
	}
}

func testBadSettings(t *testing.T) {
	testmain.StartFakeCamera(t, "FRBAD", 0)
	for _, tc := range []struct {
		set  native.FeatureSetting
		want string
	}{
		{native.FeatureSetting{Name: "NoSuchFeature", Value: "1"}, "NoSuchFeature"},
		{native.FeatureSetting{Name: "Width", Value: "wide"}, "Width"},
		{native.FeatureSetting{Name: "PixelFormat", Value: "Mono99"}, "PixelFormat"},
	} {
		o := native.CameraOptions{Camera: testmain.FakeCameraAddr, Settings: []native.FeatureSetting{tc.set}}
		g, err := native.Open(native.KindAravis, native.Config{Camera: &o})
		if err == nil {
			g.Close()
			t.Fatalf("%v accepted", tc.set)
		}
		if !errors.Is(err, native.ErrCamera) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: %v", tc.set, err)
		}
	}
	o := native.CameraOptions{Camera: "no-such-camera.invalid"}
	if g, err := native.Open(native.KindAravis, native.Config{Camera: &o}); err == nil || !errors.Is(err, native.ErrCamera) {
		if g != nil {
			g.Close()
		}
		t.Fatalf("a camera that does not exist: %v", err)
	}
	if _, err := native.ParseFeatureSetting("Width"); err == nil {
		t.Fatal(`"Width" parsed as a setting`)
	}
}

// testSafeCopy: buffers Aravis allocates; the frames are the same bytes.
func testSafeCopy(t *testing.T) {
	e := openCam(t, 0, native.CameraOptions{Settings: []native.FeatureSetting{
		{Name: "Width", Value: "128"}, {Name: "Height", Value: "64"}, {Name: "AcquisitionFrameRate", Value: "200"}}})
	g := e.cfg.Geometry
	for range 3 {
		id, err := e.g.Allocate(g.Size())
		if err != nil {
			t.Fatal(err)
		}
		if err := e.g.Queue(id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.g.Allocate(g.Size() - 1); !errors.Is(err, native.ErrBufferSize) {
		t.Fatalf("allocate a buffer too small: %v", err)
	}
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, g.Size())
	e.completeFrames(10, 0xAA, func(k int, f native.Frame, info native.FrameInfo) {
		if _, err := f.CopyTo(dst); err != nil {
			t.Fatal(err)
		}
		if d := equalOrDiff(dst, testmain.FakeCameraFrame(g, blockID(info), 1)); d != "" {
			t.Fatalf("frame %d (block %d): %s; stream stats %v", k, blockID(info), d, e.stats())
		}
	})
}

// testUnderrunMidFrame: a frame whose first packets arrive while no
// buffer is queued, and which gets one on the way, is never handed out as
// complete: Aravis fills that buffer from a later packet on (the frame
// behind TestAravis/Settings's one failure in a fresh-clone run: a timeout
// whose block id and first bytes were its buffer's previous frame's), and
// the backend hands it out as FrameUnderrun (cause underrun), not as the
// timeout (resend on) or missing packets (resend off) Aravis reports. The
// test holds its only buffer until the stream counts an underrun (a
// frame's packets are arriving) and requeues it then; frames of 3 MiB
// (many packets, more than one block of Aravis's packet ring) make a
// requeue land inside a frame at nearly every try. Every complete frame
// must be the simulator's, byte for byte, in a buffer poisoned before it
// was requeued. After such a frame, the buffer is held longer, until more
// underrun packets came than one frame has: a frame is lost whole before
// the one cut, and the complete frame after them must count it as an
// underrun (Counters.Underruns), never under Lost (incomplete), though
// the cut frame's dequeue read the stream's underrun count first.
func testUnderrunMidFrame(t *testing.T, resend bool) {
	const packetSize = 1400
	e := openCam(t, 0, native.CameraOptions{NoResend: !resend, PacketSize: packetSize, Settings: []native.FeatureSetting{
		{Name: "Width", Value: "2048"}, {Name: "Height", Value: "1536"}, {Name: "AcquisitionFrameRate", Value: "20"}}})
	g := e.cfg.Geometry
	// A packet (GevSCPSPacketSize counts the IP and UDP headers) carries
	// its bytes of the frame after at most 64 bytes of headers (IP 20, UDP
	// 8, GVSP 8 or 20), and a frame has a leader and a trailer: more
	// underrun packets than perFrame came from two frames or more. The
	// bound is tight, so that a hold for perFrame+1 of them ends early in
	// the second frame and the requeue cuts it.
	perFrame := uint64(e.cfg.PayloadSize/(packetSize-64) + 3)
	e.announce(1, 0xAA)
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangGuard)
	var (
		complete, cut   int    // frames handed out complete, and as FrameUnderrun
		prevBlock       uint64 // the block id the buffer's last fill had (0: never filled)
		held            bool   // the buffer was requeued after underrun packets came, or a FrameUnderrun
		long            bool   // the last hold outlasted a whole frame's packets
		cutAfterLong    bool   // a FrameUnderrun came since that long hold
		underrunsBefore uint64 // Counters.Underruns before the long hold
	)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("hang guard: %d complete frames, %d cut, long hold %v; stream stats %v", complete, cut, long, e.stats())
		}
		f, info, err := e.dequeue(0)
		if err != nil {
			t.Fatal(err)
		}
		// A fill that never got its frame's leader keeps the block id
		// of the buffer's previous frame.
		leaderless := blockID(info) == prevBlock
		prevBlock = blockID(info)
		if info.Status != native.FrameComplete {
			t.Logf("%d complete frames, then one %v (block id %d, leader %v); stream stats %v", complete, info.Status, blockID(info), !leaderless, e.stats())
			switch {
			case !leaderless && info.Status != native.FrameTimeout && info.Status != native.FrameIncomplete:
				// Its leader came into a queued buffer: not an underrun.
				t.Fatalf("a frame with its leader that lost later packets is %v, want timeout or incomplete", info.Status)
			case leaderless && held && (info.Status != native.FrameUnderrun || info.Status.Cause() != loss.Underrun):
				// Its first packets came while the test held the only
				// buffer, and the stream counted them (the test waited
				// for that, or a frame before it in this stretch was
				// cut so).
				t.Fatalf("a frame filled from mid-frame after an underrun is %v (cause %v), want %v (cause %v); stream stats %v",
					info.Status, info.Status.Cause(), native.FrameUnderrun, loss.Underrun, e.stats())
			case info.Status == native.FrameUnderrun:
				cut++
				cutAfterLong = long
			}
			// Requeued at once: the stretch goes on until a complete
			// frame, and a frame this requeue cuts is an underrun too
			// when this one was (its first packets may have been
			// counted before this one was dequeued).
			if err := f.Requeue(); err != nil {
				t.Fatal(err)
			}
			held = info.Status == native.FrameUnderrun
			continue
		}
		if d := equalOrDiff(f.Bytes(), testmain.FakeCameraFrame(g, blockID(info), 1)); d != "" {
			t.Fatalf("complete frame %d (block %d): %s; stream stats %v", complete, blockID(info), d, e.stats())
		}
		complete++
		if cutAfterLong {
			// Frames were lost whole while the buffer was held, before
			// the frame that was cut: underruns, and nothing under Lost.
			c := e.g.Counters()
			t.Logf("after the long hold: counters %+v; stream stats %v", c, e.stats())
			if c.Underruns <= underrunsBefore || c.Lost.Total() != 0 {
				t.Fatalf("frames lost whole while no buffer was queued: underruns %d (before the hold %d), lost %v; want more underruns, nothing lost",
					c.Underruns, underrunsBefore, c.Lost)
			}
			f.Requeue()
			return
		}
		b := f.Bytes()
		for i := range b {
			b[i] = 0xAA
		}
		long = cut > 0
		want := uint64(1)
		if long {
			want = perFrame + 1
			underrunsBefore = e.g.Counters().Underruns
		}
		u := e.stats()["underruns"]
		for e.stats()["underruns"] < u+want {
			if time.Now().After(deadline) {
				t.Fatalf("hang guard: not %d underrun packets while the only buffer is held; stream stats %v", want, e.stats())
			}
			time.Sleep(50 * time.Microsecond)
		}
		if err := f.Requeue(); err != nil {
			t.Fatal(err)
		}
		held = true
	}
}

// testAllocateIsAtomic: a buffer Allocate is making is never seen without
// its memory. SetConfig checks every live buffer against the payload; run
// concurrently with Allocate it used to find a half-made one (Allocate
// claimed the slot, let the device lock go, and only then gave it memory
// and its ArvBuffer) and fail with ErrBufferSize.
func testAllocateIsAtomic(t *testing.T) {
	e := openCam(t, 0, native.CameraOptions{Settings: []native.FeatureSetting{
		{Name: "Width", Value: "64"}, {Name: "Height", Value: "64"}}})
	size := max(e.cfg.PayloadSize, e.cfg.Geometry.Size())
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			id, err := e.g.Allocate(size)
			if err != nil {
				t.Errorf("allocate: %v", err)
				return
			}
			if err := e.g.Revoke(id); err != nil {
				t.Errorf("revoke: %v", err)
				return
			}
		}
	})
	defer wg.Wait()
	defer stop.Store(true)
	for k := range 300 {
		if err := e.g.SetConfig(native.Config{}); err != nil {
			t.Fatalf("set config %d while buffers of the camera's payload come and go: %v", k, err)
		}
	}
}

// testStopGivesBuffersBack: once Stop returns, Aravis holds no buffer: they
// can be revoked and their memory unmapped while the camera goes on with
// other buffers (a write to unmapped memory would crash the test).
func testStopGivesBuffersBack(t *testing.T) {
	e := openCam(t, 0, native.CameraOptions{Settings: []native.FeatureSetting{
		{Name: "Width", Value: "64"}, {Name: "Height", Value: "64"}, {Name: "AcquisitionFrameRate", Value: "1000"}}})
	ids, _ := e.announce(8, 0)
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	f, _, err := e.dequeue(0)
	if err != nil {
		t.Fatal(err)
	}
	// Let filled frames pile up in Aravis's output queue, then stop.
	time.Sleep(50 * time.Millisecond)
	if err := e.g.Stop(); err != nil {
		t.Fatal(err)
	}
	c := e.g.Counters()
	if c.Queued != 0 || c.Awaiting != 0 || c.Held != 1 {
		t.Fatalf("after stop: %+v", c)
	}
	if _, err := e.g.Dequeue(context.Background(), 0); !errors.Is(err, native.ErrStopped) {
		t.Fatalf("dequeue after stop: %v", err)
	}
	if _, err := f.Detach(); err != nil { // the leased one comes back idle
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := e.g.Revoke(id); err != nil {
			t.Fatalf("revoke after stop: %v", err)
		}
	}
	old := e.maps[0]
	e.maps = nil
	if err := unix.Munmap(old); err != nil {
		t.Fatal(err)
	}
	// The same grabber goes on with new memory: had Aravis kept a pointer
	// into the old, its next write would fault.
	newIDs, byID := e.announce(4, 0)
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		f, info, err := e.dequeue(0)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := byID[info.Buffer]; !ok {
			t.Fatalf("a frame in buffer %#x, not one of %v", uint64(info.Buffer), newIDs)
		}
		f.Requeue()
	}
}

// testPacketLoss: the simulator drops packets. With resend off, frames
// with missing packets come out incomplete (counted under their cause by
// the producer), and every frame that comes out complete is exactly the
// simulator's: never a corrupted one. With resend on, Aravis asks for the
// lost packets, and its counters say so. A frame whose leader came into a
// queued buffer is never an underrun, even when the stream underran
// meanwhile (resend on: while Aravis holds a frame back, waiting for its
// lost packets, the frames after it fill every buffer and then find none);
// nor is a frame without its leader (lost) while the stream never
// underran. Frames lost whole are underruns.
func testPacketLoss(t *testing.T, resend bool) {
	e := openCam(t, 30, native.CameraOptions{NoResend: !resend, Settings: []native.FeatureSetting{
		{Name: "Width", Value: "64"}, {Name: "Height", Value: "64"}, {Name: "AcquisitionFrameRate", Value: "500"}}})
	g := e.cfg.Geometry
	e.announce(6, 0)
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	var complete, bad int // bad: not complete, with the frame's leader
	causes := map[loss.Cause]int{}
	prevBlock := map[native.BufferID]uint64{} // a buffer's last fill's block id
	deadline := time.Now().Add(hangGuard)
	for complete < 30 || bad < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("hang guard: %d complete, %d incomplete frames with their leader", complete, bad)
		}
		f, info, err := e.dequeue(0)
		if err != nil {
			t.Fatal(err)
		}
		// A fill that never got its frame's leader keeps the block id of
		// the buffer's previous frame.
		leaderless := blockID(info) == prevBlock[info.Buffer]
		prevBlock[info.Buffer] = blockID(info)
		switch {
		case info.Status == native.FrameComplete:
			if d := equalOrDiff(f.Bytes(), testmain.FakeCameraFrame(g, blockID(info), 1)); d != "" {
				t.Fatalf("a complete frame (block %d) is corrupt: %s", blockID(info), d)
			}
			complete++
		case !leaderless:
			if info.Status != native.FrameIncomplete && info.Status != native.FrameTimeout {
				t.Fatalf("a frame with its leader (block %d) that lost packets is %v, want incomplete or timeout; stream stats %v",
					blockID(info), info.Status, e.stats())
			}
			bad++
			causes[info.Status.Cause()]++
		default:
			// Its leader was lost, or came while no buffer was queued:
			// an underrun only if the stream ever counted one.
			if underran := e.stats()["underruns"] != 0; info.Status == native.FrameUnderrun && !underran ||
				info.Status != native.FrameUnderrun && info.Status != native.FrameIncomplete && info.Status != native.FrameTimeout {
				t.Fatalf("a frame without its leader is %v, stream underruns %v; want incomplete or timeout (or underrun after underruns)",
					info.Status, underran)
			}
			causes[info.Status.Cause()]++
		}
		f.Requeue()
	}
	stats := e.stats()
	c := e.g.Counters()
	t.Logf("resend %v: %d complete, %d not with their leader, causes %v; stats %v; counters %+v", resend, complete, bad, causes, stats, c)
	// Every frame lost whole here had no buffer (a frame has 5 packets, 3%
	// of them lost): an underrun, never lost under a cause in Lost, even
	// when the count's movement was read while Aravis held the frames
	// before them back.
	if c.Lost.Total() != 0 {
		t.Fatalf("frames lost whole counted under %v (underruns %d), want all underruns", c.Lost, c.Underruns)
	}
	if resend && stats["resend_requests"] == 0 {
		t.Fatalf("resend on, packets lost, and no resend request: %v", stats)
	}
	if !resend && (stats["resend_requests"] != 0 || stats["missing_packets"] == 0) {
		t.Fatalf("resend off: %v", stats)
	}
}

// testCameraLost: the simulator killed mid-run is reported (Dequeue wraps
// ErrSourceLost, Counters.Lost counts the frames due meanwhile), and once
// it runs again the backend reopens it and frames flow into the same
// buffers, with frame ids still rising.
func testCameraLost(t *testing.T) {
	e := openCam(t, 0, native.CameraOptions{Settings: []native.FeatureSetting{
		{Name: "Width", Value: "64"}, {Name: "Height", Value: "64"}, {Name: "AcquisitionFrameRate", Value: "100"}}})
	_, byID := e.announce(4, 0)
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	var last uint64
	for range 5 {
		f, info, err := e.dequeue(0)
		if err != nil {
			t.Fatal(err)
		}
		last = info.FrameID
		f.Requeue()
	}
	e.cam.Kill()
	deadline := time.Now().Add(hangGuard)
	for {
		f, info, err := e.dequeue(200 * time.Millisecond)
		if errors.Is(err, native.ErrSourceLost) {
			t.Logf("reported: %v", err)
			break
		}
		if err == nil {
			last = info.FrameID
			f.Requeue()
		} else if !errors.Is(err, native.ErrNoFrame) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("hang guard: the camera's loss was never reported")
		}
	}
	time.Sleep(200 * time.Millisecond) // frames are due while it is gone
	e.cam.Restart()
	for k := 0; k < 5; {
		f, info, err := e.dequeue(0)
		if errors.Is(err, native.ErrSourceLost) {
			if time.Now().After(deadline) {
				t.Fatalf("hang guard: the camera never came back: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if info.Status == native.FrameComplete {
			if _, ok := byID[info.Buffer]; !ok || info.FrameID <= last {
				t.Fatalf("after the camera came back: buffer %#x, id %d after %d", uint64(info.Buffer), info.FrameID, last)
			}
			if d := equalOrDiff(f.Bytes(), testmain.FakeCameraFrame(e.cfg.Geometry, blockID(info), 1)); d != "" {
				t.Fatalf("after the camera came back: %s", d)
			}
			last = info.FrameID
			k++
		}
		f.Requeue()
	}
	c := e.g.Counters()
	stats := e.stats()
	if c.Lost[loss.CameraLost] == 0 || stats["disconnects"] != 1 || stats["reconnects"] != 1 {
		t.Fatalf("counters %+v, stats %v", c, stats)
	}
}

// waitLost dequeues until the backend reports the camera lost.
func (e *camEnv) waitLost() {
	e.t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		f, _, err := e.dequeue(200 * time.Millisecond)
		if errors.Is(err, native.ErrSourceLost) {
			return
		}
		if err == nil {
			f.Requeue()
		} else if !errors.Is(err, native.ErrNoFrame) {
			e.t.Fatal(err)
		}
		if time.Now().After(deadline) {
			e.t.Fatal("hang guard: the camera's loss was never reported")
		}
	}
}

// testStopWhileLost: acquisition stopped and started again while the
// camera is gone; the backend still reopens it when it is back, and
// Stop gave the buffers back meanwhile.
func testStopWhileLost(t *testing.T) {
	e := openCam(t, 0, native.CameraOptions{Settings: []native.FeatureSetting{
		{Name: "Width", Value: "64"}, {Name: "Height", Value: "64"}, {Name: "AcquisitionFrameRate", Value: "100"}}})
	ids, _ := e.announce(4, 0)
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	e.cam.Kill()
	e.waitLost()
	if err := e.g.Stop(); err != nil {
		t.Fatal(err)
	}
	if c := e.g.Counters(); c.Queued != 0 || c.Held != 0 {
		t.Fatalf("after stop: %+v", c)
	}
	for _, id := range ids {
		if err := e.g.Queue(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.dequeue(100 * time.Millisecond); !errors.Is(err, native.ErrSourceLost) {
		t.Fatalf("started without the camera: %v", err)
	}
	e.cam.Restart()
	deadline := time.Now().Add(hangGuard)
	for n := 0; n < 5; {
		f, info, err := e.dequeue(0)
		if errors.Is(err, native.ErrSourceLost) {
			if time.Now().After(deadline) {
				t.Fatalf("hang guard: the camera never came back: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if info.Status == native.FrameComplete {
			n++
		}
		f.Requeue()
	}
}

// testAravisAllocs: the per-frame path allocates nothing.
func testAravisAllocs(t *testing.T) {
	for _, notify := range []string{native.NotifyPoll, native.NotifyCallback} {
		t.Run(notify, func(t *testing.T) { testAllocs(t, notify) })
	}
}

func testAllocs(t *testing.T, notify string) {
	{
		e := openCam(t, 0, native.CameraOptions{Notify: notify, Settings: []native.FeatureSetting{
			{Name: "Width", Value: "32"}, {Name: "Height", Value: "32"}, {Name: "AcquisitionFrameRate", Value: "1000"}}})
		e.announce(4, 0)
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		var err error
		n := testing.AllocsPerRun(100, func() {
			var f native.Frame
			if f, err = e.g.Dequeue(context.Background(), time.Second); err == nil {
				_ = e.g.Counters()
				err = f.Requeue()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: Dequeue+Counters+Requeue allocates %v per frame", notify, n)
		}
	}
}

// testAravisConcurrent races consumers (requeueing, or detaching and
// queueing again) against Stop and Start cycles and finally Close (run it
// with -race): every frame they get is the camera's, and each ends with
// ErrClosed.
func testAravisConcurrent(t *testing.T, notify string) {
	e := openCam(t, 0, native.CameraOptions{Notify: notify, Settings: []native.FeatureSetting{
		{Name: "Width", Value: "64"}, {Name: "Height", Value: "32"}, {Name: "AcquisitionFrameRate", Value: "500"}}})
	ids, _ := e.announce(6, 0)
	g := e.cfg.Geometry
	var wg sync.WaitGroup
	var frames atomic.Int64
	for c := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				f, info, err := e.dequeue(20 * time.Millisecond)
				switch {
				case errors.Is(err, native.ErrClosed):
					return
				case errors.Is(err, native.ErrStopped), errors.Is(err, native.ErrNoFrame):
					time.Sleep(time.Millisecond)
					continue
				case errors.Is(err, native.ErrLeaseEnded):
					continue // Close ended the lease between Dequeue and Info
				case err != nil:
					t.Errorf("dequeue: %v", err)
					return
				}
				if b := f.Bytes(); b != nil && info.Status == native.FrameComplete {
					if d := equalOrDiff(b, testmain.FakeCameraFrame(g, blockID(info), 1)); d != "" {
						t.Errorf("block %d: %s", blockID(info), d)
					}
					frames.Add(1)
				}
				if c == 0 {
					id, err := f.Detach()
					if err == nil {
						err = e.g.Queue(id)
					}
					if err != nil && !errors.Is(err, native.ErrClosed) && !errors.Is(err, native.ErrBufferState) {
						t.Errorf("detach and queue: %v", err)
					}
				} else if err := f.Requeue(); err != nil && !errors.Is(err, native.ErrClosed) {
					t.Errorf("requeue: %v", err)
				}
			}
		}()
	}
	for range 8 {
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if err := e.g.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := e.g.Queue(id); err != nil && !errors.Is(err, native.ErrBufferState) {
				t.Fatal(err)
			}
		}
	}
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangGuard)
	for frames.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatal("hang guard: no frames")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.g.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func testListCameras(t *testing.T) {
	cam := testmain.StartFakeCamera(t, "FRLIST", 0)
	list, err := native.ListCameras()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ID == cam.ID() && c.Address == testmain.FakeCameraAddr && c.Protocol == "GigEVision" && c.Serial == "FRLIST" {
			return
		}
	}
	t.Fatalf("the simulator is not listed: %+v", list)
}
