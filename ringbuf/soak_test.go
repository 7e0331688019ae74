package ringbuf_test

import (
	"math/rand/v2"
	"os"
	"strconv"
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
// processes attached — lossy, lossless, slow and lease-holding — killing a
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
