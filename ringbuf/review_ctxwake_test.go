package ringbuf

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// A consumer that gives each Next/Wait its own context and cancels it
// afterwards (defer cancel(): the usual Go idiom) must not make the ring's
// futex wake every sleeper of every process each time it does so. A
// sleeper on the wake word counts the wakes that changed nothing.
func TestReviewCancelledWaitContextDoesNotWakeTheRing(t *testing.T) {
	p := reviewRing(t, Config{Slots: 8})
	b := reviewAttach(t, p, Options{Consumer: "b", Spin: time.Microsecond})
	obs := reviewAttach(t, p, Options{Role: RoleObserver})
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
