package ringbuf_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/loss"

	"github.com/framering/framering/internal/testmain"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

// TestSoakRandomKills runs a producer in this process and, for
// FRAMERING_SOAK_SECONDS (default 60), keeps three to six consumer
// processes attached — lossy, lossless, slow, lease-holding and hoarding
// past the quota (evicted each time) — killing a
// random one with SIGKILL at random moments and starting another. At the
// end every consumer still alive is stopped and the ring must be back to a
// clean state: no holds, no table entries, every slot acquirable, and every
// frame any consumer accepted verified. Run it with scripts/soak.sh.
func TestSoakRandomKills(t *testing.T) {
	if testing.Short() || os.Getenv("FRAMERING_SOAK") == "" {
		t.Skip("soak test: set FRAMERING_SOAK=1 (scripts/soak.sh)")
	}
	secs, _ := strconv.Atoi(os.Getenv("FRAMERING_SOAK_SECONDS"))
	if secs <= 0 {
		secs = 60
	}
	p := newRing(t, ringbuf.Config{Slots: 8, SlotSize: testGeometry.Size(), EvictAfter: 500 * time.Millisecond})
	gen, err := frame.NewGenerator(testGeometry, true)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	roles := []func() *testmain.Child{
		func() *testmain.Child {
			return start(t, "consumer", "FR_PATH="+p.Path(), "FR_NAME=lossless", "FR_MODE=lossless")
		},
		func() *testmain.Child {
			return start(t, "consumer", "FR_PATH="+p.Path(), "FR_NAME=lossy", "FR_MODE=lossy")
		},
		func() *testmain.Child {
			return start(t, "consumer", "FR_PATH="+p.Path(), "FR_NAME=slow", "FR_MODE=lossless", "FR_DELAY_US=3000")
		},
		func() *testmain.Child { return start(t, "holder", "FR_PATH="+p.Path(), "FR_HOLD=2") },
		// A client that ignores the hold quota: evicted at once, its holds
		// revoked; nobody else may notice.
		func() *testmain.Child { return start(t, "hoarder", "FR_PATH="+p.Path(), "FR_MODE=lossless") },
	}
	var live []*testmain.Child
	kills, published := 0, uint64(0)
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	nextEvent := time.Now()
	for time.Now().Before(deadline) {
		if time.Now().After(nextEvent) {
			nextEvent = time.Now().Add(time.Duration(rng.IntN(200)) * time.Millisecond)
			if len(live) > 2 && (len(live) >= 6 || rng.IntN(2) == 0) {
				i := rng.IntN(len(live))
				live[i].Cmd.Process.Signal(syscall.SIGKILL)
				live[i].Cmd.Wait()
				checkReports(t, live[i])
				live = append(live[:i], live[i+1:]...)
				kills++
			} else {
				live = append(live, roles[rng.IntN(len(roles))]())
			}
		}
		s, err := p.Acquire()
		if err != nil {
			p.RecordDrops(loss.Blocked, 1)
			time.Sleep(100 * time.Microsecond)
			continue
		}
		seq := p.Published() + 1
		gen.Fill(s.Bytes(), seq)
		g := testGeometry
		if _, err := p.Publish(s, ringbuf.Meta{FrameID: seq, Width: uint32(g.Width), Height: uint32(g.Height),
			Stride: uint32(g.Stride), Format: g.Format, Length: uint64(g.Size())}); err != nil {
			t.Fatal(err)
		}
		published++
		time.Sleep(200 * time.Microsecond)
	}
	snapBefore := p.Snapshot()
	for _, c := range live {
		c.Cmd.Process.Signal(syscall.SIGKILL)
		c.Cmd.Wait()
		checkReports(t, c)
	}
	waitFor(t, "every consumer to be reclaimed", func() bool { return len(p.Snapshot().Consumers) == 0 })
	snap := p.Snapshot()
	for _, si := range snap.SlotInfo {
		if si.Holders != 0 {
			t.Fatalf("slot %d still held after every consumer died: %+v", si.Index, si)
		}
	}
	var slots []ringbuf.Slot
	for i := 0; i < p.Slots(); i++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatalf("slot %d not reusable after the soak: %v", i, err)
		}
		slots = append(slots, s)
	}
	for _, s := range slots {
		p.Abort(s)
	}
	t.Logf("soak %ds: published %d, dropped %d, %d consumers killed, %d reclaims (%d holds), %d evictions; %d consumers at the end",
		secs, published, snap.Drops[loss.Blocked], kills, snap.Reclaims, snap.ReclaimedHolds, snap.Evictions, len(snapBefore.Consumers))
}

// checkReports drains a dead child's reports and fails on any frame it
// accepted that did not verify.
func checkReports(t *testing.T, c *testmain.Child) {
	t.Helper()
	for r := range c.Lines {
		if seq, ok := r["badframe"]; ok {
			t.Errorf("consumer %v accepted a corrupt frame, seq %v", c.Cmd.Env[len(c.Cmd.Env)-1], seq)
		}
	}
}

// TestSoakFrozenProducer stops and continues a producer process at random
// (SIGSTOP for 50 ms to 1.5 s) for FRAMERING_SOAK_SECONDS (default 60)
// while a lossless consumer reads every frame: the consumer never takes the
// producer for gone, reports it stalled while it is stopped long enough,
// recovers every time, and every frame it gets verifies.
func TestSoakFrozenProducer(t *testing.T) {
	if testing.Short() || os.Getenv("FRAMERING_SOAK") == "" {
		t.Skip("soak test: set FRAMERING_SOAK=1 (scripts/soak.sh)")
	}
	secs, _ := strconv.Atoi(os.Getenv("FRAMERING_SOAK_SECONDS"))
	if secs <= 0 {
		secs = 60
	}
	path := sockPath(t)
	prod := start(t, "producer", "FR_PATH="+path, "FR_FRAMES=0", "FR_INTERVAL_US=1000")
	pid := int(prod.Next(t)["pid"].(float64))
	r := attachPath(t, path, ringbuf.Options{Consumer: "soak", Mode: ringbuf.Lossless, StallAfter: 300 * time.Millisecond})
	ctx := testCtx(t)
	errs := make(chan error, 1)
	var frames, stalls atomic.Int64
	go func() {
		for {
			l, err := r.Next(ctx)
			if err != nil {
				errs <- err
				return
			}
			if st, verr := frame.Verify(l.Bytes()); verr != nil || st.FrameID != l.Meta().Seq {
				errs <- fmt.Errorf("frame %d does not verify: %v", l.Meta().Seq, verr)
				return
			}
			l.Release()
			frames.Add(1)
		}
	}()
	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	rounds := 0
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		n := frames.Load()
		stop := time.Duration(50+rng.IntN(1450)) * time.Millisecond
		syscall.Kill(pid, syscall.SIGSTOP)
		time.Sleep(stop)
		if stop > time.Second && r.Health().State == ringbuf.ProducerStalled {
			stalls.Add(1)
		}
		syscall.Kill(pid, syscall.SIGCONT)
		rounds++
		waitFor(t, "frames after SIGCONT", func() bool {
			select {
			case err := <-errs:
				t.Fatalf("consumer: %v", err)
			default:
			}
			return frames.Load() > n+5
		})
	}
	t.Logf("%d stop/continue rounds, %d frames, %d long stops judged stalled", rounds, frames.Load(), stalls.Load())
	if stalls.Load() == 0 && rounds > 20 {
		t.Errorf("no long stop was judged stalled in %d rounds", rounds)
	}
}
