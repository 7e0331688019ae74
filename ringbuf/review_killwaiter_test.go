package ringbuf

import (
	"math/bits"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// kill -9 of lossless consumers asleep in Wait (waiter bit set) and of one
// holding leases: the producer's release clears the waiter bits, the hold
// bits, the attached bits and the lossless set, and every slot is
// acquirable again.
func TestReviewKillWaitingConsumersClearsEverything(t *testing.T) {
	p := reviewRing(t, Config{Slots: 4, EvictAfter: time.Hour})
	spawn := func(role string, envs ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), append([]string{"FRAMERING_TEST_ROLE=" + role, "FR_PATH=" + p.Path()}, envs...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("hang guard: %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	holder := spawn("holder", "FR_HOLD=2")
	poll("holder attached", func() bool { return len(p.Snapshot().Consumers) == 1 })
	for i := 0; i < 2; i++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		p.Publish(s, Meta{Length: 8})
	}
	poll("holder holding", func() bool {
		n := 0
		for _, si := range p.Snapshot().SlotInfo {
			if si.Holders != 0 {
				n++
			}
		}
		return n == 2
	})
	w1 := spawn("consumer", "FR_MODE=lossless", "FR_NAME=w1")
	w2 := spawn("consumer", "FR_MODE=lossy", "FR_NAME=w2")
	poll("two waiters asleep", func() bool {
		w := p.ctl.waiters().Load()
		return len(p.Snapshot().Consumers) == 3 && bits.OnesCount64(w) == 2 && w == p.ctl.attached().Load()&^reviewHolderBits(p)
	})
	if p.lossless.Load() == 0 {
		t.Fatal("no lossless consumer registered")
	}
	for _, c := range []*exec.Cmd{holder, w1, w2} {
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
	}
	poll("every consumer reclaimed", func() bool { return p.Snapshot().Reclaims == 3 })
	if w, a, l := p.ctl.waiters().Load(), p.ctl.attached().Load(), p.lossless.Load(); w != 0 || a != 0 || l != 0 {
		t.Fatalf("after reclaim: waiters %#x attached %#x lossless %#x", w, a, l)
	}
	snap := p.Snapshot()
	if snap.ReclaimedHolds != 2 {
		t.Fatalf("reclaimed %d holds, want 2", snap.ReclaimedHolds)
	}
	var slots []Slot
	for i := 0; i < 4; i++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatalf("slot %d after reclaim: %v", i, err)
		}
		slots = append(slots, s)
	}
	for _, s := range slots {
		p.Abort(s)
	}
}

// reviewHolderBits is the bits of the entries holding any slot.
func reviewHolderBits(p *Producer) uint64 {
	var m uint64
	for k := uint32(0); k < p.geo.slots; k++ {
		m |= p.ctl.hold(k).Load()
	}
	return m
}
