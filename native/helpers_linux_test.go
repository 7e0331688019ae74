package native_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/native"
)

// hangGuard bounds every wait in these tests. It is not a performance
// assertion: nothing here should come near it.
const hangGuard = 20 * time.Second

// kinds returns the backends this build can test.
func kinds() []string {
	if native.SDKAvailable {
		return []string{native.KindSDK, native.KindSynthetic}
	}
	return []string{native.KindSynthetic}
}

// forEachKind runs f as a subtest for every backend.
func forEachKind(t *testing.T, f func(t *testing.T, kind string)) {
	t.Helper()
	for _, k := range kinds() {
		t.Run(k, func(t *testing.T) { f(t, k) })
	}
}

// env is a device plus the shared memory lent to it. Cleanup closes the
// device before unmapping, as the ownership rules require.
type env struct {
	t    testing.TB
	g    native.Grabber
	cfg  native.Config
	maps [][]byte
}

func newEnv(t testing.TB, kind string, cfg native.Config) *env {
	t.Helper()
	g, err := native.Open(kind, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", kind, err)
	}
	e := &env{t: t, g: g, cfg: cfg}
	t.Cleanup(e.cleanup)
	return e
}

func (e *env) cleanup() {
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

// shared maps n bytes of MAP_SHARED anonymous memory, unmapped after the
// device closes.
func (e *env) shared(n int) []byte {
	e.t.Helper()
	m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		e.t.Fatalf("mmap: %v", err)
	}
	e.maps = append(e.maps, m)
	return m
}

// buffers announces n shared buffers of one frame each (plus extra bytes)
// and queues them if queue is set. It returns the ids and memory.
func (e *env) buffers(n, extra int, queue bool) ([]native.BufferID, map[native.BufferID][]byte) {
	e.t.Helper()
	size := e.cfg.Geometry.Size() + extra
	mem := e.shared(n * size)
	ids := make([]native.BufferID, n)
	byID := make(map[native.BufferID][]byte, n)
	for i := range n {
		b := mem[i*size : (i+1)*size : (i+1)*size]
		id, err := e.g.Announce(b)
		if err != nil {
			e.t.Fatalf("announce %d: %v", i, err)
		}
		if queue {
			if err := e.g.Queue(id); err != nil {
				e.t.Fatalf("queue %d: %v", i, err)
			}
		}
		ids[i] = id
		byID[id] = b
	}
	return ids, byID
}

func (e *env) dequeue() native.Frame {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	f, err := e.g.Dequeue(ctx, 0)
	if err != nil {
		e.t.Fatalf("dequeue: %v", err)
	}
	return f
}

func mustInfo(t testing.TB, f native.Frame) native.FrameInfo {
	t.Helper()
	info, err := f.Info()
	if err != nil {
		t.Fatalf("frame info: %v", err)
	}
	return info
}

// waitFor polls cond until it holds, failing after hangGuard.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func cfgOf(w, h, pad int, f frame.Format, rate float64, defects bool) native.Config {
	g := frame.Packed(w, h, f)
	g.Stride += pad
	return native.Config{Geometry: g, Rate: rate, Defects: defects}
}

// want returns frame id of cfg as frame.Generator writes it.
func want(t testing.TB, cfg native.Config, id uint64) []byte {
	t.Helper()
	gen, err := frame.NewGenerator(cfg.Geometry, cfg.Defects)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, cfg.Geometry.Size())
	if err := gen.Fill(b, id); err != nil {
		t.Fatal(err)
	}
	return b
}
