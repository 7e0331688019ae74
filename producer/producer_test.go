package producer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/native"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ringbuf"
)

// A zero Config plus a ring name is a working producer.
func TestZeroConfigDefaults(t *testing.T) {
	name := ringName()
	p := newProducer(t, producer.Config{Name: name})
	cfg := p.Config()
	want := frame.Packed(producer.DefaultWidth, producer.DefaultHeight, producer.DefaultFormat)
	if cfg.Geometry != want || cfg.FrameRate != producer.DefaultFrameRate || cfg.Slots != producer.DefaultSlots ||
		cfg.Copy || cfg.QueueDepth != producer.DefaultQueueDepth || cfg.StatsInterval != producer.DefaultStatsInterval {
		t.Fatalf("defaults: %+v", cfg)
	}
	wantSource := native.KindSynthetic
	if native.SDKAvailable {
		wantSource = native.KindSDK
	}
	if cfg.Source != wantSource {
		t.Fatalf("default source %q, want %q", cfg.Source, wantSource)
	}
	r := attach(t, name, ringbuf.Lossy, "defaults")
	if info := r.Info(); info.Slots != producer.DefaultSlots || info.SlotCapacity < uint64(want.Size()) {
		t.Fatalf("ring info %+v", info)
	}
	run := run(t, p)
	c := newChecker(t, want, false)
	consume(t, r, c, 3)
	run.stop(t)
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]producer.Config{
		"source":        {Source: "v4l2"},
		"format":        {Geometry: frame.Geometry{Width: 64, Height: 64, Format: 7}},
		"stride":        {Geometry: frame.Geometry{Width: 64, Height: 64, Stride: 10, Format: frame.Mono8}},
		"tiny":          {Geometry: frame.Geometry{Width: 4, Height: 4, Format: frame.Mono8}},
		"depth>slots":   {Slots: 4, QueueDepth: 5},
		"negative rate": {FrameRate: 2e6},
		"depth":         {QueueDepth: -1},
		"evict":         {EvictAfter: -time.Second},
	} {
		cfg.Name = ringName()
		if p, err := producer.New(cfg); !errors.Is(err, producer.ErrConfig) {
			if p != nil {
				p.Close()
			}
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
	cfg := producer.Config{Name: "bad/name"}
	if _, err := producer.New(cfg); !errors.Is(err, producer.ErrRing) || !errors.Is(err, ringbuf.ErrConfig) {
		t.Errorf("bad ring name: %v, want ErrRing wrapping ringbuf.ErrConfig", err)
	}
	if !native.SDKAvailable {
		cfg := producer.Config{Name: ringName(), Source: native.KindSDK}
		if _, err := producer.New(cfg); !errors.Is(err, producer.ErrGrabber) || !errors.Is(err, native.ErrNoCgo) {
			t.Errorf("sdk without cgo: %v, want ErrGrabber wrapping native.ErrNoCgo", err)
		}
	}
}

// Every source in both modes: a lossless consumer in its own mapping
// verifies every frame (stamp, checksum, metadata, every byte against the
// regenerated pattern) and sees only increasing frame ids.
func TestDeliversVerifiedFrames(t *testing.T) {
	for _, src := range sources() {
		for _, cp := range []bool{false, true} {
			t.Run(src+"/"+modeName(cp), func(t *testing.T) {
				cfg := baseConfig(src, cp)
				cfg.FrameRate = 2000
				// The verifier stops reading before the producer stops: on a
				// loaded machine that may outlast the default eviction bound,
				// which is not what this test is about.
				cfg.EvictAfter = time.Hour
				p := newProducer(t, cfg)
				r := attach(t, cfg.Name, ringbuf.Lossless, "verifier")
				lossy := attach(t, cfg.Name, ringbuf.Lossy, "lossy")
				run := run(t, p)
				// The lossy consumer reads beside the lossless one (a
				// lossless consumer that stops reading would pin the ring).
				lossyErr := make(chan error, 1)
				go func() {
					_, err := consumeErr(lossy, newChecker(t, testGeo, true), 20)
					lossyErr <- err
				}()
				c := newChecker(t, testGeo, true)
				ids := consume(t, r, c, 200)
				if err := <-lossyErr; err != nil {
					t.Fatalf("lossy consumer: %v", err)
				}
				st := run.stop(t)
				if st.Published < 200 || st.Drops[loss.SourceError] != 0 {
					t.Fatalf("stats %+v", st)
				}
				if cp && st.CopiedBytes != st.Published*uint64(testGeo.Size()) {
					t.Fatalf("safe-copy copied %d bytes for %d frames", st.CopiedBytes, st.Published)
				}
				if !cp && st.CopiedBytes != 0 {
					t.Fatalf("zero-copy copied %d bytes", st.CopiedBytes)
				}
				if ids[0] != 0 {
					t.Errorf("first frame id %d: a lossless consumer attached before Run sees frame 0", ids[0])
				}
				// The consumer drains what is left, then learns the ring closed.
				drain(t, r, c)
			})
		}
	}
}

// drain reads until the ring says it ended, verifying every frame.
func drain(t *testing.T, r *ringbuf.Reader, c *checker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for {
		l, err := r.Next(ctx)
		if err != nil {
			if !isEnd(err) {
				t.Fatalf("after the producer stopped, Next = %v, want ErrClosed", err)
			}
			return
		}
		if err := c.check(l.Meta(), l.Bytes()); err != nil {
			t.Fatal(err)
		}
		l.Release()
	}
}

// Zero-copy and safe-copy publish byte-identical frames for the same frame
// ids: the same consumer code sees the same bytes whichever path filled the
// slot.
func TestZeroCopyAndSafeCopyIdentical(t *testing.T) {
	for _, src := range sources() {
		t.Run(src, func(t *testing.T) {
			var got [2]map[uint64][]byte
			for i, cp := range []bool{false, true} {
				cfg := baseConfig(src, cp)
				p := newProducer(t, cfg)
				r := attach(t, cfg.Name, ringbuf.Lossless, "collector")
				run := run(t, p)
				got[i] = map[uint64][]byte{}
				ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
				for {
					l, err := r.Next(ctx)
					if err != nil {
						t.Fatal(err)
					}
					id := l.Meta().FrameID
					if id < 64 {
						got[i][id] = bytes.Clone(l.Bytes())
					}
					l.Release()
					if id >= 63 {
						break
					}
				}
				cancel()
				run.stop(t)
			}
			common := 0
			for id, a := range got[0] {
				b, ok := got[1][id]
				if !ok {
					continue
				}
				common++
				if !bytes.Equal(a, b) {
					t.Errorf("frame %d: zero-copy and safe-copy bytes differ", id)
				}
				if _, err := frame.Verify(a); err != nil {
					t.Errorf("frame %d: %v", id, err)
				}
			}
			// Frame 0..Slots-1 always land (the ring starts with that many
			// free slots); a FreeRun zero-copy grabber never underruns.
			if common < 8 {
				t.Fatalf("only %d frame ids in common (zero-copy %d, safe-copy %d)", common, len(got[0]), len(got[1]))
			}
		})
	}
}

// A lossless consumer that never reads pins every slot. In zero-copy mode
// the grabber's input pool runs dry; in safe-copy mode dequeued frames find
// no slot. Either way the producer never blocks, the drops are blamed on
// the consumers (cause blocked, not the grabber's underrun) in the ring's
// drop table for every consumer to see, and every frame id is accounted
// for.
func TestPinnedRingCountsDrops(t *testing.T) {
	for _, src := range sources() {
		for _, cp := range []bool{false, true} {
			t.Run(src+"/"+modeName(cp), func(t *testing.T) {
				cfg := baseConfig(src, cp)
				cfg.FrameRate = 2000
				cfg.EvictAfter = time.Hour
				p := newProducer(t, cfg)
				pin := attach(t, cfg.Name, ringbuf.Lossless, "pin")
				run := run(t, p)
				drops := func() uint64 { return p.Stats().Drops[loss.Blocked] }
				waitFor(t, "50 dropped frames", func() bool { return drops() >= 50 })
				// Blocked drops are charged to the consumer that pinned the ring.
				if s, err := p.Snapshot(); err != nil || len(s.Consumers) != 1 || s.Consumers[0].BlockDrops == 0 {
					t.Errorf("the pinning consumer's blocked drops: %+v, %v", s.Consumers, err)
				}
				st := run.stop(t)
				if st.Published != uint64(cfg.Slots) {
					t.Errorf("published %d, want exactly the %d slots the pinning consumer has not passed", st.Published, cfg.Slots)
				}
				if st.Drops[loss.Blocked] < 50 {
					t.Errorf("stats %+v", st)
				}
				// The ring's header carries the same counts (read through the
				// consumer's own mapping, which outlives the producer).
				snap, err := pin.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				if snap.Drops != st.Drops {
					t.Errorf("ring drops %v, producer %v", snap.Drops.Map(), st.Drops.Map())
				}
				// Every pinned frame is still intact and in order; a gap in
				// their ids is a frame lost (and counted) before the ring
				// filled, when the grabber outran a loaded machine.
				c := newChecker(t, testGeo, true)
				ids := consume(t, pin, c, cfg.Slots)
				if gaps := ids[len(ids)-1] + 1 - uint64(len(ids)); gaps > st.DropTotal() {
					t.Fatalf("pinned frames have ids %v: %d gaps, %d drops", ids, gaps, st.DropTotal())
				}
			})
		}
	}
}

// A lossy consumer that keeps every lease it can is held to its quota
// (the library refuses a borrow past it), and the producer goes on
// publishing through the slots the quota leaves it: one hoarder never
// stalls the line. The held frames stay intact however many frames fall
// due meanwhile.
func TestHoarderHeldToQuotaProducerMovesOn(t *testing.T) {
	src := sources()[0]
	cfg := baseConfig(src, false)
	cfg.FrameRate = 2000
	cfg.EvictAfter = time.Hour
	p := newProducer(t, cfg)
	quota := p.Config().HoldQuota
	if quota != cfg.Slots-p.Config().QueueDepth-2 {
		t.Fatalf("default hold quota %d for %d slots and a queue of %d", quota, cfg.Slots, p.Config().QueueDepth)
	}
	r := attach(t, cfg.Name, ringbuf.Lossy, "hoarder")
	run := run(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	var held []ringbuf.Lease
	c := newChecker(t, testGeo, true)
	for {
		l, err := r.Next(ctx)
		if errors.Is(err, ringbuf.ErrTooManyHeld) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := c.check(l.Meta(), l.Bytes()); err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	if len(held) != quota {
		t.Fatalf("the hoarder got %d leases, the quota is %d", len(held), quota)
	}
	before := p.Stats().Published
	waitFor(t, "100 frames published while the hoarder holds its quota", func() bool { return p.Stats().Published >= before+100 })
	check := newChecker(t, testGeo, true)
	for _, l := range held {
		if err := check.check(l.Meta(), l.Bytes()); err != nil {
			t.Fatalf("a held frame changed: %v", err)
		}
		if err := l.Release(); err != nil {
			t.Fatalf("release within the quota: %v", err)
		}
	}
	st := run.stop(t)
	if st.Drops[loss.Blocked] != 0 {
		t.Errorf("%d frames blamed on consumers, though the hoarder kept within its quota", st.Drops[loss.Blocked])
	}
}

// A lossless consumer that stops reading is evicted after EvictAfter, and
// frames flow again.
func TestStalledLosslessConsumerEvicted(t *testing.T) {
	cfg := baseConfig(sources()[0], false)
	cfg.FrameRate = 1000
	cfg.EvictAfter = 100 * time.Millisecond
	p := newProducer(t, cfg)
	attach(t, cfg.Name, ringbuf.Lossless, "stalled")
	run := run(t, p)
	waitFor(t, "the eviction", func() bool {
		s, err := p.Snapshot()
		return err == nil && s.Evictions == 1
	})
	n := p.Stats().Published
	waitFor(t, "frames after the eviction", func() bool { return p.Stats().Published > n+20 })
	st := run.stop(t)
	if st.Drops[loss.Blocked] == 0 {
		t.Fatalf("no blocked drops while the ring was pinned: %+v", st)
	}
}

// Shutdown with frames in flight and consumers attached: one consumer
// waiting in Next, one holding leases, the grabber running free. Run
// returns cleanly, the waiting consumer learns the ring closed, and the
// held frames stay readable and intact in the consumer's own mapping.
func TestShutdownWithConsumersAttached(t *testing.T) {
	for _, src := range sources() {
		for _, cp := range []bool{false, true} {
			t.Run(src+"/"+modeName(cp), func(t *testing.T) {
				cfg := baseConfig(src, cp)
				p := newProducer(t, cfg)
				reader := attach(t, cfg.Name, ringbuf.Lossy, "reader")
				holder := attach(t, cfg.Name, ringbuf.Lossy, "holder")
				run := run(t, p)

				var wg sync.WaitGroup
				var readErr error
				var readChecker = newChecker(t, testGeo, true)
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
					defer cancel()
					for {
						l, err := reader.Next(ctx)
						if err != nil {
							if !isEnd(err) {
								readErr = err
							}
							return
						}
						if err := readChecker.check(l.Meta(), l.Bytes()); err != nil {
							readErr = err
							return
						}
						l.Release()
					}
				}()
				ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
				defer cancel()
				var held []ringbuf.Lease
				for range 3 {
					l, err := holder.Next(ctx)
					if err != nil {
						t.Fatal(err)
					}
					held = append(held, l)
				}
				waitFor(t, "the reader to see frames", func() bool { return p.Stats().Published > 100 })
				st := run.stop(t)
				wg.Wait()
				if readErr != nil {
					t.Fatalf("reader: %v", readErr)
				}
				if readChecker.n == 0 {
					t.Fatal("reader saw no frame")
				}
				c := newChecker(t, testGeo, true)
				for _, l := range held {
					if err := c.check(l.Meta(), l.Bytes()); err != nil {
						t.Fatalf("held frame after shutdown: %v", err)
					}
					if err := l.Release(); err != nil {
						t.Fatal(err)
					}
				}
				// What was published stays readable; then the ring's end.
				drain(t, holder, c)
				if _, err := p.Snapshot(); !errors.Is(err, producer.ErrClosed) {
					t.Fatalf("Snapshot after shutdown = %v", err)
				}
				if st.Published == 0 {
					t.Fatalf("stats %+v", st)
				}
			})
		}
	}
}

// A ring name can be served again as soon as its producer stopped; a second
// producer on a live name is refused.
func TestRestartOnSameName(t *testing.T) {
	src := sources()[0]
	cfg := baseConfig(src, false)
	var epochs []uint64
	for i := range 3 {
		p := newProducer(t, cfg)
		epochs = append(epochs, p.Epoch())
		if i == 0 {
			if q, err := producer.New(cfg); !errors.Is(err, ringbuf.ErrExists) || !errors.Is(err, producer.ErrRing) {
				if q != nil {
					q.Close()
				}
				t.Fatalf("second producer on a live name: %v, want ringbuf.ErrExists", err)
			}
		}
		r := attach(t, cfg.Name, ringbuf.Lossy, "again")
		run := run(t, p)
		consume(t, r, newChecker(t, testGeo, true), 10)
		run.stop(t)
		drain(t, r, newChecker(t, testGeo, true))
		r.Close()
	}
	if epochs[0] == epochs[1] || epochs[1] == epochs[2] {
		t.Fatalf("epochs %x: each run is a new ring", epochs)
	}
}

func TestRunOnceAndClose(t *testing.T) {
	cfg := baseConfig(sources()[0], false)
	// Close without Run releases everything (the leak check in TestMain
	// would notice otherwise).
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Run(context.Background()); !errors.Is(err, producer.ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	// Close while running stops Run, which returns nil.
	p = newProducer(t, cfg)
	r := run(t, p)
	waitFor(t, "frames", func() bool { return p.Stats().Published > 10 })
	if err := p.Close(); err != nil {
		t.Fatalf("Close while running: %v", err)
	}
	select {
	case <-r.done:
	case <-time.After(hangGuard):
		t.Fatal("Run did not return after Close")
	}
	if r.err != nil || r.stats.Frames != r.stats.Accounted() {
		t.Fatalf("Run after Close: %v %+v", r.err, r.stats)
	}
	if _, err := p.Run(context.Background()); !errors.Is(err, producer.ErrClosed) {
		t.Fatalf("second Run: %v", err)
	}
	// The package-level Run: New, Run, Close.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	st, err := producer.Run(ctx, baseConfig(sources()[0], true))
	if err != nil || st.Frames != st.Accounted() {
		t.Fatalf("producer.Run: %v %+v", err, st)
	}
}

// The periodic stats lines carry the frame rate, drops by cause and one
// line per consumer.
func TestStatsLog(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	cfg := baseConfig(sources()[0], false)
	cfg.FrameRate = 500
	cfg.StatsInterval = 20 * time.Millisecond
	cfg.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{mu: &mu, w: &buf}, nil))
	p := newProducer(t, cfg)
	r := attach(t, cfg.Name, ringbuf.Lossy, "watched")
	run := run(t, p)
	consume(t, r, newChecker(t, testGeo, true), 5)
	seen := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(buf.String(), `"consumer stats"`)
	}
	waitFor(t, "a consumer stats line", seen)
	run.stop(t)
	mu.Lock()
	defer mu.Unlock()
	var sawProducer, sawConsumer, sawStop bool
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch m["msg"] {
		case "producer stats":
			sawProducer = true
			for _, k := range []string{"fps", "published", "dropped", "drops", "source", "consumers"} {
				if _, ok := m[k]; !ok {
					t.Errorf("producer stats line lacks %q: %s", k, line)
				}
			}
		case "consumer stats":
			sawConsumer = true
			for _, k := range []string{"name", "pid", "mode", "lag", "delivered", "skipped", "missed"} {
				if _, ok := m[k]; !ok {
					t.Errorf("consumer stats line lacks %q: %s", k, line)
				}
			}
			if m["name"] != "watched" {
				t.Errorf("consumer line %s", line)
			}
		case "producer stopped":
			sawStop = true
		}
	}
	if !sawProducer || !sawConsumer || !sawStop {
		t.Fatalf("missing lines (producer %v, consumer %v, stop %v):\n%s", sawProducer, sawConsumer, sawStop, buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

// Every loss path of the producer, provoked on purpose: a source that
// delivers incomplete frames, times out, cuts frames short for want of a
// buffer (FrameUnderrun) and loses its camera (faults
// injected into the synthetic source), and a lossless consumer that pins
// the ring (blocked). Each drop is counted once under its own cause, in
// the ring's drop table and the producer's stats alike; a lossless
// consumer that reads every frame finds exactly those drops in the frames'
// DropsBefore, and every frame id is accounted for.
func TestEveryLossCauseCounted(t *testing.T) {
	for _, cp := range []bool{false, true} {
		t.Run(modeName(cp), func(t *testing.T) {
			cfg := baseConfig(native.KindSynthetic, cp)
			cfg.FrameRate = 500
			cfg.Faults[0] = native.Fault{Cause: loss.Incomplete, Every: 5}
			cfg.Faults[1] = native.Fault{Cause: loss.CameraLost, Every: 7}
			cfg.Faults[2] = native.Fault{Cause: loss.Timeout, Every: 11}
			cfg.Faults[3] = native.Fault{Cause: loss.Underrun, Every: 13}
			cfg.EvictAfter = time.Hour
			p := newProducer(t, cfg)
			r := attach(t, cfg.Name, ringbuf.Lossless, "reader")
			run := run(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			var seen loss.Counts
			ids := []uint64{}
			cut := 0             // frames read right after an underrun fault's id alone
			var prev loss.Counts // the previous frame's drops before it
			for len(ids) < 120 {
				l, err := r.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var before loss.Counts
				for _, d := range l.Meta().DropsBefore {
					seen[d.Cause] += d.Count
					before[d.Cause] += d.Count
				}
				// The one id missing before this frame is a frame the
				// source cut short (the underrun fault, no earlier fault
				// of the same id): the ring counted it as an underrun (as
				// blocked, had a consumer kept every slot meanwhile). On a
				// loaded machine the source may instead find no buffer
				// for that frame at all, a real underrun, counted as
				// early as the previous frame's publish.
				if id := l.Meta().FrameID; len(ids) > 0 && id == ids[len(ids)-1]+2 {
					if m := id - 1; m%13 == 12 && m%5 != 4 && m%7 != 6 && m%11 != 10 {
						n := before[loss.Underrun] + before[loss.Blocked] + prev[loss.Underrun] + prev[loss.Blocked]
						if n == 0 || before.Total() != before[loss.Underrun]+before[loss.Blocked] {
							t.Errorf("frame %d, after frame %d cut short: drops before %v (before the previous frame %v), want an underrun",
								id, m, before.Map(), prev.Map())
						}
						cut += int(before[loss.Underrun] + prev[loss.Underrun])
					}
				}
				prev = before
				ids = append(ids, l.Meta().FrameID)
				l.Release()
			}
			if cut == 0 {
				t.Errorf("no frame cut short counted as an underrun among frames %v", ids)
			}
			// Now stop reading: the lossless reader pins the ring, and the
			// frames that find no slot are blamed on it.
			waitFor(t, "blocked drops", func() bool { return p.Stats().Drops[loss.Blocked] >= 10 })
			st := run.stop(t)
			for _, c := range []loss.Cause{loss.Incomplete, loss.CameraLost, loss.Timeout, loss.Underrun, loss.Blocked} {
				if st.Drops[c] == 0 {
					t.Errorf("no drops under %s: %v", c, st.Drops.Map())
				}
			}
			if st.Frames != st.Accounted() {
				t.Errorf("frames %d != published %d + dropped %v", st.Frames, st.Published, st.Drops.Map())
			}
			// The frames' DropsBefore tell, exactly, what was lost between
			// the frames the reader took: the ids it never saw.
			// Frame ids count every frame due, so the ids missing up to the
			// last frame read are exactly what its drops-before add up to.
			missing := ids[len(ids)-1] + 1 - uint64(len(ids))
			if seen.Total() != missing || seen[loss.Several] != 0 {
				t.Errorf("the frames' drops before %v do not add up to the %d ids missing", seen.Map(), missing)
			}
			snap, err := r.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if snap.Drops != st.Drops {
				t.Errorf("ring drop table %v, producer stats %v", snap.Drops.Map(), st.Drops.Map())
			}
		})
	}
}
