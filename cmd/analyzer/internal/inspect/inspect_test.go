package inspect_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/framering/framering/clock"

	"github.com/framering/framering/internal/testmain"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/cmd/analyzer/internal/inspect"
	"github.com/framering/framering/consumers"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

func TestMain(m *testing.M) { os.Exit(testmain.Run(m, "", nil)) }

// geometries: one format of each kind and packing (package analysis tests
// them all), some with row padding, all wide and tall enough for the
// pattern's defects.
var geometries = []frame.Geometry{
	frame.Packed(240, 90, frame.Mono8),
	{Width: 200, Height: 70, Stride: 200*2 + 24, Format: frame.Mono16},
	frame.Packed(180, 64, frame.RGB8),
	frame.Packed(181, 60, frame.Mono10p),
	{Width: 120, Height: 60, Stride: 120*2 + 8, Format: frame.BayerGB16},
	frame.Packed(160, 60, frame.YUV422_8_UYVY),
}

type producer struct {
	p   *ringbuf.Producer
	gen *frame.Generator
	g   frame.Geometry
}

func newProducer(t *testing.T, g frame.Geometry, slots int) *producer {
	t.Helper()
	path := filepath.Join(os.Getenv("FRAMERING_RUNTIME_DIR"), fmt.Sprintf("%s.sock", filepath.Base(t.Name())))
	p, err := ringbuf.Create(ringbuf.Config{SocketPath: path, Slots: slots, SlotSize: g.Size()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		t.Fatal(err)
	}
	return &producer{p: p, gen: gen, g: g}
}

// publish publishes pattern frame id = seq; false when no slot was free.
func (pr *producer) publish(t *testing.T) bool {
	s, err := pr.p.Acquire()
	if errors.Is(err, ringbuf.ErrNoFreeSlot) {
		return false
	} else if err != nil {
		t.Error(err)
		return false
	}
	id := pr.p.Published() + 1
	if err := pr.gen.Fill(s.Bytes(), id); err != nil {
		t.Error(err)
	}
	g := pr.g
	if _, err := pr.p.Publish(s, ringbuf.Meta{FrameID: id, Timestamp: clock.Nanos(), Width: uint32(g.Width),
		Height: uint32(g.Height), Stride: uint32(g.Stride), Format: g.Format, Length: uint64(g.Size())}); err != nil {
		t.Error(err)
	}
	return true
}

// publishN publishes n frames, waiting for lossless consumers when the
// ring is full.
func (pr *producer) publishN(t *testing.T, n int) {
	deadline := time.Now().Add(30 * time.Second) // hang guard
	for i := 0; i < n; {
		if pr.publish(t) {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Error("ring full for 30s")
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func (pr *producer) waitConsumers(t *testing.T, n int) {
	deadline := time.Now().Add(30 * time.Second) // hang guard
	for len(pr.p.Snapshot().Consumers) < n {
		if time.Now().After(deadline) {
			t.Fatal("no consumer attached within 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

type line struct {
	inspect.Record
	Summary *inspect.Summary `json:"summary"`
}

func parseLines(t *testing.T, out []byte) ([]inspect.Record, *inspect.Summary) {
	t.Helper()
	var recs []inspect.Record
	var sum *inspect.Summary
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Bytes(), err)
		}
		if sum != nil {
			t.Fatalf("line after the summary: %s", sc.Bytes())
		}
		if l.Summary != nil {
			sum = l.Summary
			continue
		}
		recs = append(recs, l.Record)
	}
	if sum == nil {
		t.Fatal("no summary line")
	}
	return recs, sum
}

// checkRecord asserts that a record reports exactly the defects the
// pattern injected into its frame: position, size, polarity.
func checkRecord(t *testing.T, g frame.Geometry, r inspect.Record) {
	t.Helper()
	if r.Error != "" || r.Stats == nil {
		t.Fatalf("frame %d: %s", r.Seq, r.Error)
	}
	if r.FrameID != r.Seq || r.Width != g.Width || r.Height != g.Height || r.Format != g.Format.String() {
		t.Fatalf("frame %d: header %+v", r.Seq, r)
	}
	want := frame.Defects(nil, g, r.FrameID)
	if len(r.Defects) != len(want) || r.DefectCount != len(want) {
		t.Fatalf("frame %d: %d defects reported (count %d), pattern has %d: %+v vs %+v",
			r.Seq, len(r.Defects), r.DefectCount, len(want), r.Defects, want)
	}
	got := slices.Clone(r.Defects)
	slices.SortFunc(got, func(a, b analysis.Defect) int { return a.X - b.X })
	slices.SortFunc(want, func(a, b frame.Blob) int { return a.X - b.X }) // one per vertical band
	for i, b := range want {
		d := got[i]
		if d.X != b.X || d.Y != b.Y || d.W != b.Size || d.H != b.Size || d.Area != b.Size*b.Size || d.Bright != b.Bright {
			t.Fatalf("frame %d defect %d: reported %+v, injected %+v", r.Seq, i, d, b)
		}
	}
	bits := g.Format.BitsPerPixel()
	stamp := (8*frame.StampSize + bits - 1) / bits // pixels whose first bit is in the stamp
	if r.Stats.Count != uint64(g.Width*g.Height-stamp) {
		t.Fatalf("frame %d: %d pixels measured, want %d (all but the stamp)", r.Seq, r.Stats.Count, g.Width*g.Height-stamp)
	}
	if r.LatencyNs < 0 {
		t.Fatalf("frame %d: latency %d", r.Seq, r.LatencyNs)
	}
}

// Lossless, zero-copy and safe-copy: every frame is analyzed and reports
// exactly the injected defects, for every format.
func TestRunLosslessFindsEveryDefect(t *testing.T) {
	for _, g := range geometries {
		for _, cp := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/copy=%v", g.Format, cp), func(t *testing.T) {
				pr := newProducer(t, g, 4)
				const n = 30
				cfg := inspect.Config{
					Consumer: consumers.Options{SocketPath: pr.p.Path(), Name: "analyzer", Mode: consumers.Lossless, Copy: cp},
					Analysis: analysis.DefaultOptions(),
					Frames:   n,
				}
				cfg.Analysis.Histogram = true
				var out bytes.Buffer
				done := make(chan error, 1)
				go func() {
					_, err := inspect.Run(context.Background(), cfg, &out, nil)
					done <- err
				}()
				pr.waitConsumers(t, 1)
				pr.publishN(t, n)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				recs, sum := parseLines(t, out.Bytes())
				if len(recs) != n {
					t.Fatalf("%d records, want %d", len(recs), n)
				}
				defects := 0
				for i, r := range recs {
					if r.Seq != uint64(i+1) || r.Epoch != inspect.Epoch(pr.p.Epoch()) {
						t.Fatalf("record %d: seq %d epoch %x", i, r.Seq, r.Epoch)
					}
					checkRecord(t, g, r)
					if len(r.Histogram) != 256 {
						t.Fatalf("histogram of %d bins", len(r.Histogram))
					}
					defects += r.DefectCount
				}
				if sum.Frames != n || sum.Skipped != 0 || sum.Defects != uint64(defects) || sum.End != "frame limit" ||
					sum.LatencyMaxNs <= 0 || sum.LatencyP50Ns > sum.LatencyP99Ns || sum.LatencyP99Ns > sum.LatencyMaxNs {
					t.Fatalf("summary %+v (defects %d)", sum, defects)
				}
			})
		}
	}
}

// Lossy: a producer faster than the analyzer. Every analyzed frame is
// right, and every published frame is accounted for as analyzed, skipped
// or missed. The producer closing the ring ends the run cleanly.
func TestRunLossyAccountsForEveryFrame(t *testing.T) {
	for _, g := range geometries {
		t.Run(g.Format.String(), func(t *testing.T) {
			pr := newProducer(t, g, 4)
			cfg := inspect.Config{
				Consumer: consumers.Options{SocketPath: pr.p.Path(), Name: "analyzer"},
				Analysis: analysis.DefaultOptions(),
			}
			var out bytes.Buffer
			done := make(chan error, 1)
			go func() {
				_, err := inspect.Run(context.Background(), cfg, &out, nil)
				done <- err
			}()
			pr.waitConsumers(t, 1)
			const n = 300
			for i := 0; i < n; i++ {
				if !pr.publish(t) {
					i-- // the analyzer holds one slot; the rest are free
				}
			}
			pr.p.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			recs, sum := parseLines(t, out.Bytes())
			last := uint64(0)
			for _, r := range recs {
				if r.Seq <= last {
					t.Fatalf("seq %d after %d", r.Seq, last)
				}
				last = r.Seq
				checkRecord(t, g, r)
			}
			if sum.End != "ring closed" || sum.Frames != uint64(len(recs)) || sum.Frames+sum.Skipped+sum.Missed != n {
				t.Fatalf("summary %+v: %d analyzed + %d skipped + %d missed != %d published",
					sum, sum.Frames, sum.Skipped, sum.Missed, n)
			}
			if recs[len(recs)-1].SkippedTotal != sum.Skipped {
				t.Fatalf("last record skipped_total %d, summary %d", recs[len(recs)-1].SkippedTotal, sum.Skipped)
			}
			t.Logf("%d analyzed, %d skipped, %d missed", sum.Frames, sum.Skipped, sum.Missed)
		})
	}
}

// A frame whose metadata does not fit its bytes gets an error line, and
// the run goes on.
func TestRunReportsBadFrames(t *testing.T) {
	g := geometries[0]
	pr := newProducer(t, g, 4)
	cfg := inspect.Config{
		Consumer: consumers.Options{SocketPath: pr.p.Path(), Name: "analyzer", Mode: consumers.Lossless},
		Analysis: analysis.DefaultOptions(),
		Frames:   2,
	}
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := inspect.Run(context.Background(), cfg, &out, nil)
		done <- err
	}()
	pr.waitConsumers(t, 1)
	s, err := pr.p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	// Claims twice the rows it carries.
	if _, err := pr.p.Publish(s, ringbuf.Meta{FrameID: 1, Width: uint32(g.Width), Height: uint32(2 * g.Height),
		Stride: uint32(g.Stride), Format: g.Format, Length: uint64(g.Size())}); err != nil {
		t.Fatal(err)
	}
	pr.publishN(t, 1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	recs, sum := parseLines(t, out.Bytes())
	if len(recs) != 2 || recs[0].Error == "" || recs[0].Stats != nil || recs[0].LatencyNs != -1 {
		t.Fatalf("bad frame's record: %+v", recs)
	}
	checkRecord(t, g, recs[1])
	if sum.Errors != 1 || sum.Frames != 1 {
		t.Fatalf("summary %+v", sum)
	}
}

// Waiting for a producer that never comes ends on the context with an
// empty summary.
func TestRunStopsWhileWaiting(t *testing.T) {
	cfg := inspect.Config{
		Consumer: consumers.Options{SocketPath: filepath.Join(t.TempDir(), "nobody.sock"), Wait: true},
		Duration: time.Millisecond,
	}
	var out bytes.Buffer
	if _, err := inspect.Run(context.Background(), cfg, &out, nil); err != nil {
		t.Fatal(err)
	}
	if _, sum := parseLines(t, out.Bytes()); sum.Frames != 0 {
		t.Fatalf("summary %+v", sum)
	}
	cfg.Consumer.Wait = false
	if _, err := inspect.Run(context.Background(), cfg, &out, nil); !errors.Is(err, consumers.ErrNoSuchRing) {
		t.Fatalf("without -wait: %v", err)
	}
}

// Inspecting a frame in zero-copy mode allocates nothing after warm-up:
// the whole per-frame path, from the consumer's iterator through the
// analysis to the record.
func TestInspectAllocatesNothing(t *testing.T) {
	g := geometries[2]
	pr := newProducer(t, g, 4)
	c, err := consumers.Attach(context.Background(), consumers.Options{SocketPath: pr.p.Path(), Name: "allocs"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in, err := inspect.NewInspector(analysis.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	next, stop := iter.Pull(c.Frames(context.Background()))
	defer stop()
	step := func() {
		pr.publish(t)
		f, ok := next()
		if !ok {
			t.Fatal(c.Err())
		}
		if _, err := in.Inspect(f, c.Stats()); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		step()
	}
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Errorf("one frame: %v allocations", n)
	}
}
