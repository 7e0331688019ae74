package producer

// Kernel-side observation of consumer exits (optional, Config.ExitWatch):
// an eBPF program reports the exit of every consumer process, beside the
// ring's own supervision by socket and pidfd, which stays authoritative.
// An exit seen here is counted, logged, and passed to the ring
// (ringbuf.Producer.ConsumerExited), which reclaims the consumer's holds at
// once if the process's own pidfd confirms it is exiting — before a large
// process's memory is torn down and its socket closes, which is when the
// ring's own supervision would notice. Only whole-process exits (the
// group_dead rule) are passed on: under the leader rule, a leader thread
// that exits early would look like a process exit.

import (
	"context"
	"sync"
	"time"

	"github.com/framering/framering/producer/exitwatch"
	"github.com/framering/framering/ringbuf"
)

// syncInterval is how often the watched set follows the consumer table.
const syncInterval = 100 * time.Millisecond

// exitObserver keeps an exitwatch.Watcher watching the ring's consumers.
type exitObserver struct {
	p *Producer
	w *exitwatch.Watcher

	// sync's scratch, reused (follow's goroutine only).
	pids []int
	live map[int]bool

	mu      sync.Mutex
	watched map[int]bool // pids handed to w.Watch
}

// startExitWatch loads the eBPF program and starts the goroutines that
// feed it consumer pids and read its reports, until ctx ends. It returns
// nil (and logs why) when the kernel side is unavailable.
func (p *Producer) startExitWatch(ctx context.Context, wg *sync.WaitGroup) *exitwatch.Watcher {
	w, err := exitwatch.New(exitwatch.Options{Logger: p.cfg.Logger})
	if err != nil {
		p.exitWatch.Store("unavailable")
		p.log.Warn("kernel exit watch unavailable: consumers are supervised by socket and pidfd only", "reason", err)
		return nil
	}
	p.exitWatch.Store(w.Mode())
	p.log.Info("kernel exit watch attached", "mode", w.Mode())
	o := &exitObserver{p: p, w: w, watched: map[int]bool{}, pids: make([]int, 0, ringbuf.MaxConsumers), live: map[int]bool{}}
	p.observer.Store(o)
	wg.Add(2)
	go func() {
		defer wg.Done()
		o.follow(ctx)
	}()
	go func() {
		defer wg.Done()
		if err := w.Run(ctx, o.exited); err != nil {
			p.log.Warn("kernel exit watch stopped", "err", err)
		}
	}()
	return w
}

// follow watches every consumer in the table and forgets the ones gone.
func (o *exitObserver) follow(ctx context.Context) {
	t := time.NewTicker(syncInterval)
	defer t.Stop()
	for {
		o.sync()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *exitObserver) sync() {
	// Every 100 ms for the producer's whole life: nothing here may
	// allocate in steady state (reused slice and map), or the producer's
	// heap grows with garbage between two rare collections.
	o.pids = o.p.ringPids(o.pids[:0])
	clear(o.live)
	for _, pid := range o.pids {
		o.live[pid] = true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for pid := range o.live {
		if !o.watched[pid] {
			if err := o.w.Watch(pid); err != nil {
				o.p.log.Warn("cannot watch consumer exit", "pid", pid, "err", err)
				continue
			}
			o.watched[pid] = true
		}
	}
	for pid := range o.watched {
		if !o.live[pid] {
			o.w.Unwatch(pid)
			delete(o.watched, pid)
		}
	}
}

// watching reports whether pid is in the watched set.
func (o *exitObserver) watching(pid int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.watched[pid]
}

// exited is called for every exit the kernel reports.
func (o *exitObserver) exited(e exitwatch.Exit) {
	o.p.kernelExits.Add(1)
	attached := false
	if snap, err := o.p.Snapshot(); err == nil {
		for _, c := range snap.Consumers {
			attached = attached || c.Pid == e.Pid
		}
	}
	// Its pid may be reused from now on: stop watching it.
	o.mu.Lock()
	o.w.Unwatch(e.Pid)
	delete(o.watched, e.Pid)
	o.mu.Unlock()
	reclaimed := 0
	if e.GroupDead && attached {
		o.p.ringMu.RLock() // the ring is not closed under us (as Snapshot)
		if !o.p.ringClosed {
			reclaimed = o.p.ring.ConsumerExited(e.Pid)
		}
		o.p.ringMu.RUnlock()
	}
	o.p.log.Info("consumer process exited (kernel)", "pid", e.Pid, "group_dead", e.GroupDead,
		"still_in_table", attached, "reclaimed", reclaimed)
}
