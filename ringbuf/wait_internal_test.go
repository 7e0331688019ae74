package ringbuf

// Waiting: a cancelled context wakes only its own sleeper; killed sleepers
// leave no waiter bits behind.

import (
	"context"
	"math/bits"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A consumer that gives each Next/Wait its own context and cancels it
// afterwards (defer cancel(): the usual Go idiom) must not make the ring's
// futex wake every sleeper of every process each time it does so. A
// sleeper on the wake word counts the wakes that changed nothing.
func TestCancelledWaitContextDoesNotWakeTheRing(t *testing.T) {
	p := internalRing(t, Config{Slots: 8})
	b := internalAttach(t, p, Options{Consumer: "b", Spin: time.Microsecond})
	obs := internalAttach(t, p, Options{Role: RoleObserver})
	var spurious, total atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // another process's sleeper, reduced to its futex
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			v := obs.wake.Load()
			t0 := time.Now()
			obs.wake.Wait(v, 50*time.Millisecond)
			total.Add(1)
			// Woken early with the word unchanged: a spurious wake. The 40 ms
			// only classifies (below the 50 ms timeout); a slow machine can
			// make this undercount, never count a timeout as a wake.
			if obs.wake.Load() == v && time.Since(t0) < 40*time.Millisecond {
				spurious.Add(1)
			}
		}
	}()
	const rounds = 100
	pubReq := make(chan struct{})
	pubDone := make(chan struct{})
	go func() { // the acquisition goroutine
		defer close(pubDone)
		for range pubReq {
			time.Sleep(2 * time.Millisecond)
			s, err := p.Acquire()
			if err == nil {
				p.Publish(s, Meta{Length: 8})
			}
		}
	}()
	defer func() { close(pubReq); <-pubDone }()
	for i := 0; i < rounds; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		pub := p.Published()
		pubReq <- struct{}{}
		if _, err := b.Wait(ctx, pub); err != nil {
			t.Fatal(err)
		}
		cancel()
		time.Sleep(time.Millisecond)
	}
	close(stop)
	<-done
	t.Logf("%d wakes of the sleeper, %d of them with nothing changed, over %d rounds", total.Load(), spurious.Load(), rounds)
	if spurious.Load() > rounds/2 {
		t.Fatalf("cancelling a finished Wait's context woke the ring's sleepers %d times in %d rounds", spurious.Load(), rounds)
	}
}

// kill -9 of lossless consumers asleep in Wait (waiter bit set) and of one
// holding leases: the producer's release clears the waiter bits, the hold
// bits, the attached bits and the lossless set, and every slot is
// acquirable again.
func TestKillWaitingConsumersClearsEverything(t *testing.T) {
	p := internalRing(t, Config{Slots: 4, EvictAfter: time.Hour})
	holder := spawnChild(t, p, "holder", "FR_HOLD=2")
	poll(t, "holder attached", func() bool { return len(p.Snapshot().Consumers) == 1 })
	for i := 0; i < 2; i++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		p.Publish(s, Meta{Length: 8})
	}
	poll(t, "holder holding", func() bool {
		n := 0
		for _, si := range p.Snapshot().SlotInfo {
			if si.Holders != 0 {
				n++
			}
		}
		return n == 2
	})
	w1 := spawnChild(t, p, "consumer", "FR_MODE=lossless", "FR_NAME=w1")
	w2 := spawnChild(t, p, "consumer", "FR_MODE=lossy", "FR_NAME=w2")
	poll(t, "two waiters asleep", func() bool {
		w := p.ctl.waiters().Load()
		return len(p.Snapshot().Consumers) == 3 && bits.OnesCount64(w) == 2 && w == p.ctl.attached().Load()&^holderBits(p)
	})
	if p.lossless.Load() == 0 {
		t.Fatal("no lossless consumer registered")
	}
	for _, c := range []*exec.Cmd{holder, w1, w2} {
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
	}
	poll(t, "every consumer reclaimed", func() bool { return p.Snapshot().Reclaims == 3 })
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
