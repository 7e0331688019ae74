package producer_test

// Test scaffolding shared by the black-box and white-box tests: TestMain
// (runtime directory, quiet logs, child roles for the multi-process tests,
// descriptor-leak check) and helpers that run a producer in-process and
// verify frames through a real ring attachment.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/native"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ringbuf"
)

const roleEnv = "FRAMERING_PRODUCER_TEST_ROLE"

func TestMain(m *testing.M) { os.Exit(testmain.Run(m, roleEnv, runChild)) }

// hangGuard bounds every wait in these tests. It is a guard against a hang,
// never a performance assertion.
const hangGuard = 60 * time.Second

// testGeo is small so that tests move many frames quickly; RGB8 and a
// padded stride exercise the geometry path.
var testGeo = frame.Geometry{Width: 120, Height: 64, Stride: 368, Format: frame.RGB8}

// sources lists the grabbers this build has.
func sources() []string {
	if native.SDKAvailable {
		return []string{native.KindSDK, native.KindSynthetic}
	}
	return []string{native.KindSynthetic}
}

func modeName(cp bool) string {
	if cp {
		return "safe-copy"
	}
	return "zero-copy"
}

var ringSeq atomic.Int64

// ringName is a fresh ring name for one test.
func ringName() string { return fmt.Sprintf("t%d-%d", os.Getpid(), ringSeq.Add(1)) }

// baseConfig is a quiet small-frame configuration on a fresh ring name.
func baseConfig(source string, cp bool) producer.Config {
	return producer.Config{
		Name: ringName(), Source: source, Copy: cp, Geometry: testGeo, Defects: true,
		Slots: 8, QueueDepth: 2, FrameRate: producer.FreeRun, StatsInterval: -1,
	}
}

// running is a producer run in a goroutine of the test.
type running struct {
	p      *producer.Producer
	cancel context.CancelFunc
	done   chan struct{}
	stats  producer.Stats
	err    error
}

// newProducer creates a producer; the caller attaches consumers, then
// calls run. Cleanup closes it whatever happened.
func newProducer(t *testing.T, cfg producer.Config) *producer.Producer {
	t.Helper()
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func run(t *testing.T, p *producer.Producer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.stats, r.err = p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// stop ends the run and returns its final stats, failing on a run error,
// on a hang, or if a frame id is unaccounted for.
func (r *running) stop(t *testing.T) producer.Stats {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(hangGuard):
		t.Fatalf("producer did not stop within %v", hangGuard)
	}
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	st := r.stats
	if st.Frames != st.Accounted() {
		t.Errorf("accounting: %d frames != %d published + drops %v", st.Frames, st.Published, st.Drops.Map())
	}
	return st
}

func attach(t *testing.T, name string, mode ringbuf.Mode, consumer string) *ringbuf.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{Name: name, Mode: mode, Consumer: consumer})
	if err != nil {
		t.Fatalf("attach %s: %v", name, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// waitFor polls cond until it holds, failing after the hang guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out (%v) waiting for %s", hangGuard, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checker verifies frames against the pattern contract: the embedded
// stamp and checksum (frame.Verify), the ring metadata, and every byte
// against a frame regenerated with frame.Generator for the frame's id.
// Frame ids must only increase.
type checker struct {
	gen    *frame.Generator
	want   []byte
	last   uint64
	n      int
	failed int
}

func newChecker(t testing.TB, g frame.Geometry, defects bool) *checker {
	t.Helper()
	gen, err := frame.NewGenerator(g, defects)
	if err != nil {
		t.Fatal(err)
	}
	return &checker{gen: gen, want: make([]byte, g.Size())}
}

// check returns why a frame is wrong, or nil.
func (c *checker) check(m ringbuf.Meta, b []byte) error {
	c.n++
	err := c.verify(m, b)
	if err != nil {
		c.failed++
	}
	return err
}

func (c *checker) verify(m ringbuf.Meta, b []byte) error {
	g := c.gen.Geometry()
	if m.Width != uint32(g.Width) || m.Height != uint32(g.Height) || m.Stride != uint32(g.Stride) ||
		m.Format != g.Format || m.Length != uint64(g.Size()) || len(b) != g.Size() {
		return fmt.Errorf("seq %d: meta %+v, %d bytes, want geometry %+v", m.Seq, m, len(b), g)
	}
	st, err := frame.Verify(b)
	if err != nil {
		return fmt.Errorf("seq %d frame %d: %w", m.Seq, m.FrameID, err)
	}
	if st.FrameID != m.FrameID {
		return fmt.Errorf("seq %d: stamp says frame %d, meta %d", m.Seq, st.FrameID, m.FrameID)
	}
	if c.n > 1 && m.FrameID <= c.last {
		return fmt.Errorf("seq %d: frame id %d after %d", m.Seq, m.FrameID, c.last)
	}
	c.last = m.FrameID
	if m.Timestamp <= 0 {
		return fmt.Errorf("seq %d: timestamp %d", m.Seq, m.Timestamp)
	}
	if err := c.gen.Fill(c.want, m.FrameID); err != nil {
		return err
	}
	if !bytes.Equal(b, c.want) {
		i := 0
		for i < len(b) && b[i] == c.want[i] {
			i++
		}
		return fmt.Errorf("seq %d frame %d: differs from the regenerated frame at byte %d", m.Seq, m.FrameID, i)
	}
	return nil
}

// consume reads n frames with Next, verifying each, and returns their
// frame ids. It fails the test on the first bad frame.
func consume(t *testing.T, r *ringbuf.Reader, c *checker, n int) []uint64 {
	t.Helper()
	ids, err := consumeErr(r, c, n)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// consumeErr is consume for goroutines other than the test's.
func consumeErr(r *ringbuf.Reader, c *checker, n int) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	ids := make([]uint64, 0, n)
	for len(ids) < n {
		l, err := r.Next(ctx)
		if err != nil {
			return ids, fmt.Errorf("Next after %d frames: %w", len(ids), err)
		}
		err = c.check(l.Meta(), l.Bytes())
		ids = append(ids, l.Meta().FrameID)
		l.Release()
		if err != nil {
			return ids, err
		}
	}
	return ids, nil
}

// isEnd reports whether err is how a consumer learns the ring ended.
func isEnd(err error) bool {
	return errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, ringbuf.ErrProducerGone)
}
