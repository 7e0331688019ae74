package native_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/native"
)

var small = cfgOf(64, 32, 0, frame.Mono8, 0, false)

func TestOpenErrors(t *testing.T) {
	if _, err := native.Open("camera", small); !errors.Is(err, native.ErrUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}
	if !native.SDKAvailable {
		if _, err := native.Open(native.KindSDK, small); !errors.Is(err, native.ErrNoCgo) {
			t.Fatalf("sdk without cgo: %v", err)
		}
	}
	bad := []struct {
		name string
		cfg  native.Config
		want error
	}{
		{"format", native.Config{Geometry: frame.Geometry{Width: 8, Height: 8, Stride: 8, Format: 42}}, frame.ErrFormat},
		{"zero width", cfgOf(0, 8, 8, frame.Mono8, 0, false), frame.ErrGeometry},
		{"short stride", native.Config{Geometry: frame.Geometry{Width: 8, Height: 8, Stride: 7, Format: frame.Mono8}}, frame.ErrGeometry},
		{"no room for stamp", cfgOf(4, 4, 0, frame.Mono8, 0, false), frame.ErrGeometry},
		{"huge", cfgOf(1<<33, 1, 0, frame.Mono8, 0, false), frame.ErrGeometry},
		{"negative rate", cfgOf(8, 8, 0, frame.Mono8, -1, false), native.ErrInvalid},
		{"NaN rate", cfgOf(8, 8, 0, frame.Mono8, math.NaN(), false), native.ErrInvalid},
		{"fast rate", cfgOf(8, 8, 0, frame.Mono8, 2e6, false), native.ErrInvalid},
	}
	forEachKind(t, func(t *testing.T, kind string) {
		for _, c := range bad {
			g, err := native.Open(kind, c.cfg)
			if !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
			if g != nil {
				t.Errorf("%s: a grabber with the error", c.name)
				g.Close()
			}
		}
	})
}

func TestConfig(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, small)
		if got := e.g.Config(); got != small {
			t.Fatalf("config %+v, want %+v", got, small)
		}
		other := cfgOf(32, 16, 5, frame.RGB8, 250, true)
		if err := e.g.SetConfig(other); err != nil {
			t.Fatal(err)
		}
		if got := e.g.Config(); got != other {
			t.Fatalf("config %+v, want %+v", got, other)
		}
		if err := e.g.SetConfig(cfgOf(32, 16, 0, 7, 0, false)); !errors.Is(err, frame.ErrFormat) {
			t.Fatalf("bad format: %v", err)
		}
		if err := e.g.SetConfig(small); err != nil {
			t.Fatal(err)
		}
		e.buffers(1, 0, false)
		// The announced buffer holds a frame of small, not of anything bigger.
		if err := e.g.SetConfig(cfgOf(64, 33, 0, frame.Mono8, 0, false)); !errors.Is(err, native.ErrBufferSize) {
			t.Fatalf("config larger than a buffer: %v", err)
		}
		if err := e.g.SetConfig(cfgOf(32, 32, 0, frame.Mono8, 0, false)); err != nil {
			t.Fatalf("smaller config: %v", err)
		}
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		if err := e.g.SetConfig(small); !errors.Is(err, native.ErrBusy) {
			t.Fatalf("set config while running: %v", err)
		}
		if err := e.g.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := e.g.SetConfig(small); err != nil {
			t.Fatal(err)
		}
		if err := e.g.Close(); err != nil {
			t.Fatal(err)
		}
		if got := e.g.Config(); got != small {
			t.Fatalf("config after close %+v", got)
		}
		if err := e.g.SetConfig(small); !errors.Is(err, native.ErrClosed) {
			t.Fatalf("set config after close: %v", err)
		}
	})
}

func TestAnnounceMemory(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, small)
		size := small.Geometry.Size()

		heap := make([]byte, size)
		if _, err := e.g.Announce(heap); !errors.Is(err, native.ErrNotShared) {
			t.Fatalf("go heap: %v", err)
		}
		priv, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(priv)
		if _, err := e.g.Announce(priv); !errors.Is(err, native.ErrNotShared) {
			t.Fatalf("private mapping: %v", err)
		}
		ro, err := unix.Mmap(-1, 0, size, unix.PROT_READ, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(ro)
		if _, err := e.g.Announce(ro); !errors.Is(err, native.ErrNotShared) {
			t.Fatalf("read-only mapping: %v", err)
		}
		if _, err := e.g.Announce(nil); !errors.Is(err, native.ErrBufferSize) {
			t.Fatalf("empty: %v", err)
		}

		page := unix.Getpagesize()
		checkHoles(t, e.g, page)
		mem := e.shared(4 * page)
		if _, err := e.g.Announce(mem[:size-1]); !errors.Is(err, native.ErrBufferSize) {
			t.Fatalf("short: %v", err)
		}
		a, err := e.g.Announce(mem[:size])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.g.Announce(mem[size-1 : 2*size]); !errors.Is(err, native.ErrOverlap) {
			t.Fatalf("overlap: %v", err)
		}
		if _, err := e.g.Announce(mem[:size]); !errors.Is(err, native.ErrOverlap) {
			t.Fatalf("same memory twice: %v", err)
		}
		b, err := e.g.Announce(mem[size : 2*size])
		if err != nil || b == a {
			t.Fatalf("adjacent: %v (%#x, %#x)", err, b, a)
		}

		// A memfd mapping: what ring slots are.
		fd, err := unix.MemfdCreate("native-test", unix.MFD_CLOEXEC)
		if err != nil {
			t.Skipf("memfd_create: %v", err)
		}
		defer unix.Close(fd)
		if err := unix.Ftruncate(fd, int64(page)); err != nil {
			t.Fatal(err)
		}
		mf, err := unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		e.maps = append(e.maps, mf)
		if _, err := e.g.Announce(mf[:size]); err != nil {
			t.Fatalf("memfd mapping: %v", err)
		}
		if c := e.g.Counters(); c.Announced != 3 {
			t.Fatalf("announced %d, want 3", c.Announced)
		}
	})
}

func TestBufferMisuse(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, small)
		other := newEnv(t, kind, small)
		foreign, _ := other.buffers(1, 0, false)
		ids, _ := e.buffers(2, 0, false)
		a, b := ids[0], ids[1]

		for _, id := range []native.BufferID{0, 1, foreign[0], a ^ 1<<30, a | 0xFFFFFF} {
			if err := e.g.Queue(id); !errors.Is(err, native.ErrUnknownBuffer) {
				t.Errorf("queue %#x: %v", uint64(id), err)
			}
			if err := e.g.Revoke(id); !errors.Is(err, native.ErrUnknownBuffer) {
				t.Errorf("revoke %#x: %v", uint64(id), err)
			}
		}
		if err := e.g.Queue(a); err != nil {
			t.Fatal(err)
		}
		if err := e.g.Queue(a); !errors.Is(err, native.ErrBufferState) {
			t.Fatalf("queue twice: %v", err)
		}
		if err := e.g.Revoke(a); !errors.Is(err, native.ErrBufferState) {
			t.Fatalf("revoke queued: %v", err)
		}
		if err := e.g.Revoke(b); err != nil {
			t.Fatal(err)
		}
		if err := e.g.Revoke(b); !errors.Is(err, native.ErrUnknownBuffer) {
			t.Fatalf("revoke twice: %v", err)
		}
		if err := e.g.Queue(b); !errors.Is(err, native.ErrUnknownBuffer) {
			t.Fatalf("queue revoked: %v", err)
		}
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		if err := e.g.Start(); !errors.Is(err, native.ErrBusy) {
			t.Fatalf("start twice: %v", err)
		}
		f := e.dequeue()
		if err := e.g.Queue(a); !errors.Is(err, native.ErrBufferState) {
			t.Fatalf("queue a leased buffer: %v", err)
		}
		if err := e.g.Revoke(a); !errors.Is(err, native.ErrBufferState) {
			t.Fatalf("revoke a leased buffer: %v", err)
		}
		if err := f.Requeue(); err != nil {
			t.Fatal(err)
		}
		if err := e.g.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := e.g.Stop(); err != nil {
			t.Fatalf("stop twice: %v", err)
		}
	})
}

// TestStreamMatchesPattern checks every dequeued frame byte for byte
// against frame.Generator, for every format, with and without defects and
// with padded strides: for the SDK backend this is the proof that the C
// pattern is the Go pattern.
func TestStreamMatchesPattern(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		for i, f := range frame.Formats() {
			for _, defects := range []bool{false, true} {
				for _, pad := range []int{0, 13} {
					if i > 2 && defects == (pad == 0) {
						continue // the first three formats in all four ways; the rest in two
					}
					cfg := cfgOf(160, 90, pad, f, 0, defects)
					e := newEnv(t, kind, cfg)
					_, mem := e.buffers(3, 7, true)
					for _, b := range mem {
						for i := range b {
							b[i] = 0xA5 // the device must overwrite every frame byte and no other
						}
					}
					if err := e.g.Start(); err != nil {
						t.Fatal(err)
					}
					for id := uint64(0); id < 9; id++ {
						fr := e.dequeue()
						info := mustInfo(t, fr)
						if info.FrameID != id || info.Geometry != cfg.Geometry || info.Length != cfg.Geometry.Size() ||
							info.Status != native.FrameComplete || info.Timestamp <= 0 {
							t.Fatalf("%v defects=%v pad=%d: info %+v", f, defects, pad, info)
						}
						got := fr.Bytes()
						if !bytes.Equal(got, want(t, cfg, id)) {
							t.Fatalf("%s %v defects=%v pad=%d frame %d differs from frame.Generator", kind, f, defects, pad, id)
						}
						if s, err := frame.Verify(got); err != nil || s.FrameID != id {
							t.Fatalf("verify frame %d: %v %+v", id, err, s)
						}
						if tail := mem[info.Buffer][info.Length:]; !bytes.Equal(tail, bytes.Repeat([]byte{0xA5}, len(tail))) {
							t.Fatalf("bytes past the frame were written")
						}
						if err := fr.Requeue(); err != nil {
							t.Fatal(err)
						}
					}
					if c := e.g.Counters(); c.Underruns != 0 {
						t.Fatalf("rate 0 underran: %+v", c)
					}
				}
			}
		}
	})
}

// TestUnderrunsAndGaps holds every buffer for a while at a fixed rate, then
// consumes, and checks that the underrun counter, the discards and the gaps
// in the frame ids account for every frame id.
func TestUnderrunsAndGaps(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, cfgOf(64, 16, 0, frame.Mono8, 1000, false))
		// Started with nothing queued: every due frame is lost.
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "underruns with an empty pool", func() bool { return e.g.Counters().Underruns >= 3 })
		e.buffers(2, 0, true)
		var held []native.Frame
		held = append(held, e.dequeue(), e.dequeue())
		// All buffers are with the caller now: frames keep being lost.
		before := e.g.Counters().Underruns
		waitFor(t, "underruns with every buffer held", func() bool { return e.g.Counters().Underruns >= before+5 })
		seen := map[uint64]bool{}
		for _, f := range held {
			seen[mustInfo(t, f).FrameID] = true
			if err := f.Requeue(); err != nil {
				t.Fatal(err)
			}
		}
		last := uint64(0)
		for n := 0; n < 60; n++ {
			f := e.dequeue()
			info := mustInfo(t, f)
			if seen[info.FrameID] || info.FrameID < last {
				t.Fatalf("frame id %d repeated or out of order (last %d)", info.FrameID, last)
			}
			if _, err := frame.Verify(f.Bytes()); err != nil {
				t.Fatal(err)
			}
			seen[info.FrameID], last = true, info.FrameID
			if n%20 == 0 {
				time.Sleep(3 * time.Millisecond) // some frames fall on an empty pool
			}
			if err := f.Requeue(); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.g.Stop(); err != nil {
			t.Fatal(err)
		}
		c := e.g.Counters()
		if c.NextFrameID != c.Delivered+c.Underruns {
			t.Fatalf("counters disagree: %+v", c)
		}
		if uint64(len(seen))+c.Discarded != c.Delivered {
			t.Fatalf("dequeued %d + discarded %d != delivered %d", len(seen), c.Discarded, c.Delivered)
		}
		missing := uint64(0)
		for id := uint64(0); id < c.NextFrameID; id++ {
			if !seen[id] {
				missing++
			}
		}
		if missing != c.Underruns+c.Discarded {
			t.Fatalf("%d ids missing, underruns %d + discarded %d", missing, c.Underruns, c.Discarded)
		}
		if c.Underruns < before+5 {
			t.Fatalf("underruns %d", c.Underruns)
		}
		if c.Queued != 0 || c.Awaiting != 0 || c.Held != 0 || c.Announced != 2 {
			t.Fatalf("gauges after stop: %+v", c)
		}
	})
}

func TestStopWithLeases(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, cfgOf(64, 16, 0, frame.Mono8, 0, true))
		ids, _ := e.buffers(4, 0, true)
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		f := e.dequeue()
		info := mustInfo(t, f)
		waitFor(t, "the other buffers filled", func() bool { return e.g.Counters().Awaiting == 3 })
		if err := e.g.Stop(); err != nil {
			t.Fatal(err)
		}
		c := e.g.Counters()
		if c.Queued != 0 || c.Awaiting != 0 || c.Held != 1 || c.Discarded != 3 {
			t.Fatalf("after stop: %+v", c)
		}
		// The lease survives Stop.
		if _, err := frame.Verify(f.Bytes()); err != nil {
			t.Fatalf("lease after stop: %v", err)
		}
		if _, err := e.g.Dequeue(context.Background(), 0); !errors.Is(err, native.ErrStopped) {
			t.Fatalf("dequeue while stopped: %v", err)
		}
		for _, id := range ids {
			err := e.g.Queue(id)
			if id == info.Buffer {
				if !errors.Is(err, native.ErrBufferState) {
					t.Fatalf("queue the leased buffer: %v", err)
				}
			} else if err != nil {
				t.Fatalf("discarded buffer not back with the caller: %v", err)
			}
		}
		if err := f.Requeue(); err != nil {
			t.Fatalf("requeue while stopped: %v", err)
		}
		if c := e.g.Counters(); c.Queued != 4 || c.Held != 0 {
			t.Fatalf("after requeue: %+v", c)
		}
		// Restart: frame ids continue past the discarded ones.
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		if got := mustInfo(t, e.dequeue()).FrameID; got != c.NextFrameID {
			t.Fatalf("after restart frame %d, want %d", got, c.NextFrameID)
		}
	})
}

func TestCloseWithLeases(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, small)
		ids, _ := e.buffers(2, 0, true)
		alloc, err := e.g.Allocate(small.Geometry.Size())
		if err != nil {
			t.Fatal(err)
		}
		if err := e.g.Queue(alloc); err != nil {
			t.Fatal(err)
		}
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		f1, f2 := e.dequeue(), e.dequeue()
		if err := e.g.Close(); err != nil {
			t.Fatal(err)
		}
		for _, f := range []native.Frame{f1, f2} {
			if b := f.Bytes(); b != nil {
				t.Fatal("Bytes after close")
			}
			if err := f.Requeue(); !errors.Is(err, native.ErrClosed) {
				t.Fatalf("requeue after close: %v", err)
			}
			if _, err := f.Detach(); !errors.Is(err, native.ErrClosed) {
				t.Fatalf("detach after close: %v", err)
			}
			if _, err := f.Info(); !errors.Is(err, native.ErrClosed) {
				t.Fatalf("info after close: %v", err)
			}
			if _, err := f.CopyTo(make([]byte, small.Geometry.Size())); !errors.Is(err, native.ErrClosed) {
				t.Fatalf("copy after close: %v", err)
			}
		}
		mem := e.shared(small.Geometry.Size())
		checks := map[string]error{
			"announce": func() error { _, err := e.g.Announce(mem); return err }(),
			"allocate": func() error { _, err := e.g.Allocate(4096); return err }(),
			"revoke":   e.g.Revoke(ids[0]),
			"queue":    e.g.Queue(ids[0]),
			"start":    e.g.Start(),
			"stop":     e.g.Stop(),
			"dequeue":  func() error { _, err := e.g.Dequeue(context.Background(), 0); return err }(),
		}
		for name, err := range checks {
			if !errors.Is(err, native.ErrClosed) {
				t.Errorf("%s after close: %v", name, err)
			}
		}
		if c := e.g.Counters(); c != (native.Counters{}) {
			t.Errorf("counters after close: %+v", c)
		}
		if err := e.g.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
	})
}

func TestLeaseEndsOnce(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, small)
		e.buffers(3, 0, true)
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}

		var zero native.Frame
		if zero.Bytes() != nil {
			t.Fatal("zero frame has bytes")
		}
		if err := zero.Requeue(); !errors.Is(err, native.ErrLeaseEnded) {
			t.Fatalf("zero requeue: %v", err)
		}
		if _, err := zero.Detach(); !errors.Is(err, native.ErrLeaseEnded) {
			t.Fatalf("zero detach: %v", err)
		}
		if _, err := zero.Info(); !errors.Is(err, native.ErrLeaseEnded) {
			t.Fatalf("zero info: %v", err)
		}

		// Requeue twice, through a copy too.
		f := e.dequeue()
		cp := f
		if err := f.Requeue(); err != nil {
			t.Fatal(err)
		}
		if err := f.Requeue(); !errors.Is(err, native.ErrLeaseEnded) {
			t.Fatalf("double requeue: %v", err)
		}
		if _, err := cp.Detach(); !errors.Is(err, native.ErrLeaseEnded) {
			t.Fatalf("detach after requeue: %v", err)
		}
		if f.Bytes() != nil {
			t.Fatal("bytes after requeue")
		}
		if _, err := f.Info(); !errors.Is(err, native.ErrLeaseEnded) {
			t.Fatalf("info after requeue: %v", err)
		}

		// Detach twice; then the caller queues the buffer itself.
		f = e.dequeue()
		info := mustInfo(t, f)
		id, err := f.Detach()
		if err != nil || id != info.Buffer {
			t.Fatalf("detach: %#x %v", uint64(id), err)
		}
		if _, err := f.Detach(); !errors.Is(err, native.ErrLeaseEnded) {
			t.Fatalf("double detach: %v", err)
		}
		if err := f.Requeue(); !errors.Is(err, native.ErrLeaseEnded) {
			t.Fatalf("requeue after detach: %v", err)
		}
		if c := e.g.Counters(); c.Held != 0 {
			t.Fatalf("held after detach: %+v", c)
		}
		if err := e.g.Queue(id); err != nil {
			t.Fatalf("queue a detached buffer: %v", err)
		}

		// An old lease of a buffer does not touch its next lease.
		seenBuf := map[native.BufferID]native.Frame{}
		for range 6 {
			g := e.dequeue()
			b := mustInfo(t, g).Buffer
			if old, ok := seenBuf[b]; ok {
				if err := old.Requeue(); !errors.Is(err, native.ErrLeaseEnded) {
					t.Fatalf("stale lease of a re-leased buffer: %v", err)
				}
			}
			seenBuf[b] = g
			if err := g.Requeue(); err != nil {
				t.Fatal(err)
			}
		}

		// Many goroutines end one lease: exactly one wins.
		f = e.dequeue()
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if i%2 == 0 {
					err = f.Requeue()
				} else {
					_, err = f.Detach()
				}
				if err == nil {
					wins.Add(1)
				} else if !errors.Is(err, native.ErrLeaseEnded) {
					t.Errorf("concurrent end: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d goroutines ended one lease", wins.Load())
		}
	})
}

func TestDequeueWakeups(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, cfgOf(64, 16, 0, frame.Mono8, 1, false))
		if _, err := e.g.Dequeue(context.Background(), 0); !errors.Is(err, native.ErrStopped) {
			t.Fatalf("dequeue before start: %v", err)
		}
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := e.g.Dequeue(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled context: %v", err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		if _, err := e.g.Dequeue(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("deadline: %v", err)
		}

		// A waiter with no deadline is woken by cancel, by Stop and by Close.
		wait := func(ctx context.Context) chan error {
			ch := make(chan error, 1)
			go func() { _, err := e.g.Dequeue(ctx, 0); ch <- err }()
			return ch
		}
		recv := func(ch chan error) error {
			select {
			case err := <-ch:
				return err
			case <-time.After(hangGuard):
				t.Fatal("waiter not woken")
				return nil
			}
		}
		ctx, cancel = context.WithCancel(context.Background())
		ch := wait(ctx)
		time.Sleep(10 * time.Millisecond)
		cancel()
		if err := recv(ch); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancel while waiting: %v", err)
		}
		ch = wait(context.Background())
		time.Sleep(10 * time.Millisecond)
		if err := e.g.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := recv(ch); !errors.Is(err, native.ErrStopped) {
			t.Fatalf("stop while waiting: %v", err)
		}
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		ch = wait(context.Background())
		time.Sleep(10 * time.Millisecond)
		if err := e.g.Close(); err != nil {
			t.Fatal(err)
		}
		if err := recv(ch); !errors.Is(err, native.ErrClosed) {
			t.Fatalf("close while waiting: %v", err)
		}
	})
}

// TestSafeCopy is the safe-copy mode: device-allocated buffers, each frame
// copied into a shared buffer.
func TestSafeCopy(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		cfg := cfgOf(200, 50, 3, frame.RGB8, 0, true)
		e := newEnv(t, kind, cfg)
		size := cfg.Geometry.Size()
		if _, err := e.g.Allocate(0); !errors.Is(err, native.ErrBufferSize) {
			t.Fatalf("allocate 0: %v", err)
		}
		if _, err := e.g.Allocate(size - 1); !errors.Is(err, native.ErrBufferSize) {
			t.Fatalf("allocate short: %v", err)
		}
		var ids []native.BufferID
		for range 3 {
			id, err := e.g.Allocate(size)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.g.Queue(id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		dst := e.shared(size)
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		for id := uint64(0); id < 6; id++ {
			f := e.dequeue()
			if _, err := f.CopyTo(dst[:size-1]); !errors.Is(err, native.ErrBufferSize) {
				t.Fatalf("copy to short buffer: %v", err)
			}
			n, err := f.CopyTo(dst)
			if err != nil || n != size {
				t.Fatalf("copy: %d %v", n, err)
			}
			if !bytes.Equal(dst, want(t, cfg, id)) {
				t.Fatalf("copied frame %d differs", id)
			}
			if err := f.Requeue(); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.g.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := e.g.Revoke(id); err != nil {
				t.Fatalf("revoke allocated: %v", err)
			}
		}
		if c := e.g.Counters(); c.Announced != 0 {
			t.Fatalf("after revoke: %+v", c)
		}
	})
}

// TestDequeueRequeueAllocs: the per-frame path allocates nothing.
func TestDequeueRequeueAllocs(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, small)
		e.buffers(4, 0, true)
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		cancelable, cancel := context.WithCancel(context.Background())
		defer cancel()
		for name, ctx := range map[string]context.Context{"background": context.Background(), "cancelable": cancelable} {
			var err error
			n := testing.AllocsPerRun(200, func() {
				var f native.Frame
				if f, err = e.g.Dequeue(ctx, 0); err == nil {
					err = f.Requeue()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%s: Dequeue+Requeue allocates %v per frame", name, n)
			}
		}
	})
}

// TestConcurrentUse races consumers against Start, Stop and finally Close
// (run it with -race).
func TestConcurrentUse(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, cfgOf(128, 32, 0, frame.Mono16, 0, true))
		ids, _ := e.buffers(6, 0, true)
		var wg sync.WaitGroup
		var frames atomic.Int64
		for c := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
					f, err := e.g.Dequeue(ctx, 0)
					cancel()
					switch {
					case errors.Is(err, native.ErrClosed):
						return
					case errors.Is(err, native.ErrStopped):
						time.Sleep(time.Millisecond)
						continue
					case err != nil:
						t.Errorf("dequeue: %v", err)
						return
					}
					frames.Add(1)
					if b := f.Bytes(); b == nil {
						// Only Close may end a lease we did not end.
						if _, err := f.Info(); !errors.Is(err, native.ErrClosed) {
							t.Errorf("no bytes from a live lease: %v", err)
						}
					} else if _, err := frame.Verify(b); err != nil {
						t.Errorf("verify: %v", err)
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
		for range 15 {
			if err := e.g.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
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
		waitFor(t, "frames", func() bool { return frames.Load() > 0 })
		if err := e.g.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	})
}

// checkHoles announces ranges that start in a shared mapping and run past
// it: into a hole, and into an adjacent, separate shared mapping.
func checkHoles(t *testing.T, g native.Grabber, page int) {
	t.Helper()
	const rw, shared = unix.PROT_READ | unix.PROT_WRITE, unix.MAP_SHARED | unix.MAP_ANONYMOUS
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(2*page), rw, shared)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.MunmapPtr(p, uintptr(page))
	second := unsafe.Add(p, page)
	if err := unix.MunmapPtr(second, uintptr(page)); err != nil {
		t.Fatal(err)
	}
	span := unsafe.Slice((*byte)(p), 2*page)
	if _, err := g.Announce(span); !errors.Is(err, native.ErrNotShared) {
		t.Fatalf("range running into a hole: %v", err)
	}
	q, err := unix.MmapPtr(-1, 0, second, uintptr(page), rw, shared|unix.MAP_FIXED_NOREPLACE)
	if err != nil || q != second {
		t.Logf("cannot place a mapping in the hole (%v); skipping the two-mapping case", err)
		if err == nil {
			unix.MunmapPtr(q, uintptr(page))
		}
		return
	}
	defer unix.MunmapPtr(q, uintptr(page))
	if _, err := g.Announce(span); !errors.Is(err, native.ErrNotShared) {
		t.Fatalf("range spanning two shared mappings: %v", err)
	}
	id, err := g.Announce(span[:page])
	if err != nil {
		t.Fatalf("one page of it: %v", err)
	}
	// Leave nothing announced in memory this function unmaps.
	if err := g.Revoke(id); err != nil {
		t.Fatal(err)
	}
}

// TestDequeueTimeout: a positive timeout with no frame ends in a bare
// ErrNoFrame (the producer's heartbeat slices depend on it), allocating
// nothing, and a frame that arrives within it is returned with the flags
// of the pattern it carries.
func TestDequeueTimeout(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, cfgOf(64, 16, 0, frame.Mono8, 1, true)) // 1 fps: nothing due for a second
		e.buffers(2, 0, true)
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		f, err := e.g.Dequeue(context.Background(), hangGuard) // the first frame is due at start
		if err != nil {
			t.Fatal(err)
		}
		info, err := f.Info()
		if err != nil || info.Flags != native.FlagPattern|native.FlagDefects {
			t.Fatalf("flags %#x, %v", info.Flags, err)
		}
		if err := f.Requeue(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := e.g.Dequeue(context.Background(), 20*time.Millisecond); err != native.ErrNoFrame {
			t.Fatalf("timed dequeue with nothing due: %v", err)
		}
		if d := time.Since(start); d < 20*time.Millisecond {
			t.Fatalf("returned after %v, before its timeout", d)
		}
		n := testing.AllocsPerRun(20, func() {
			if _, err := e.g.Dequeue(context.Background(), time.Microsecond); err != native.ErrNoFrame {
				t.Errorf("timed dequeue: %v", err)
			}
		})
		if n != 0 {
			t.Errorf("a timed-out Dequeue allocates %v", n)
		}
	})
}

// Faults injected into the synthetic source reach the producer as they
// would from a camera: a frame with a buffer and a failed status for
// incomplete/timeout/size mismatch/source error/underrun (a frame cut
// short for want of a buffer), a count in Lost for a
// cause without a buffer; every frame id is accounted for. The C SDK
// refuses them, and so does a fault the source cannot make.
func TestSyntheticFaults(t *testing.T) {
	cfg := small
	cfg.Faults[0] = native.Fault{Cause: loss.Incomplete, Every: 5}
	cfg.Faults[1] = native.Fault{Cause: loss.CameraLost, Every: 7}
	cfg.Faults[2] = native.Fault{Cause: loss.Timeout, Every: 11}
	cfg.Faults[3] = native.Fault{Cause: loss.Underrun, Every: 13}
	e := newEnv(t, native.KindSynthetic, cfg)
	e.buffers(4, 0, true)
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	statuses := map[native.FrameStatus]int{}
	var ids []uint64
	for len(ids) < 60 {
		f, err := e.g.Dequeue(context.Background(), hangGuard)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := f.Info()
		statuses[info.Status]++
		ids = append(ids, info.FrameID)
		switch {
		case info.FrameID%5 == 4:
			if info.Status != native.FrameIncomplete {
				t.Fatalf("frame %d: status %d, want incomplete", info.FrameID, info.Status)
			}
		case info.FrameID%7 == 6:
			t.Fatalf("frame %d delivered, but the camera was lost for it", info.FrameID)
		case info.FrameID%11 == 10:
			if info.Status != native.FrameTimeout {
				t.Fatalf("frame %d: status %d, want timeout", info.FrameID, info.Status)
			}
		case info.FrameID%13 == 12:
			if info.Status != native.FrameUnderrun {
				t.Fatalf("frame %d: status %v, want underrun", info.FrameID, info.Status)
			}
		default:
			if info.Status != native.FrameComplete {
				t.Fatalf("frame %d: status %d", info.FrameID, info.Status)
			}
		}
		if err := f.Requeue(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.g.Stop(); err != nil {
		t.Fatal(err)
	}
	c := e.g.Counters()
	if c.NextFrameID != c.Delivered+c.Underruns+c.Lost.Total() || c.Lost[loss.CameraLost] == 0 || c.Lost.Total() != c.Lost[loss.CameraLost] {
		t.Fatalf("counters %+v (lost %v)", c, c.Lost.Map())
	}
	if statuses[native.FrameIncomplete] == 0 || statuses[native.FrameTimeout] == 0 || statuses[native.FrameUnderrun] == 0 {
		t.Fatalf("statuses %v", statuses)
	}
	bad := small
	bad.Faults[0] = native.Fault{Cause: loss.Blocked, Every: 3} // not the source's to make
	if _, err := native.Open(native.KindSynthetic, bad); !errors.Is(err, native.StatusInvalidArgument) {
		t.Fatalf("a fault the source cannot make: %v", err)
	}
	if native.SDKAvailable {
		if _, err := native.Open(native.KindSDK, cfg); !errors.Is(err, native.StatusInvalidArgument) {
			t.Fatalf("faults on the C SDK: %v", err)
		}
	}
}
