package producer

// The Producer's life: New (ring, grabber, buffers), Run (the acquisition
// loop, then shutdown), Close.
//
// Invariants kept by this file:
//
//  1. Shutdown order is fixed: the stats goroutine ends, the grabber is
//     stopped (no frame is being written any more), the grabber is closed
//     (it revokes every announced buffer: from here it touches no slot),
//     and only then is the ring closed (its mapping goes away). A grabber
//     therefore never writes a slot after the ring is unmapped.
//  2. ringMu guards ringClosed: every read of the ring from a goroutine
//     other than Run's (Snapshot, the stats line) holds it for reading and
//     checks ringClosed, and the ring is closed with it held for writing.
//  3. A Producer runs at most once: state moves new -> running -> done, or
//     new -> done (Close without Run), under mu.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/native"
	"github.com/framering/framering/ringbuf"
)

// Run creates a producer with cfg, runs it until ctx ends and closes it:
// New, Producer.Run and Producer.Close in one call. A cancelled ctx is a
// normal end and returns a nil error.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	p, err := New(cfg)
	if err != nil {
		return Stats{}, err
	}
	st, err := p.Run(ctx)
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	return st, err
}

const (
	stateNew = iota
	stateRunning
	stateDone
)

// Producer moves frames from a frame grabber into a ring. New creates it
// stopped, with its ring already accepting consumers; Run acquires until
// its context ends and then shuts everything down; Close releases a
// Producer that was never run, or stops a running one.
//
// Run belongs to one goroutine. Stats, Snapshot, Path, Epoch, Config and
// Close are safe for concurrent use.
type Producer struct {
	cfg  Config
	log  *slog.Logger
	ring *ringbuf.Producer
	grab native.Grabber

	loop loopState // Run's goroutine only (loop.go)

	// Counters, written by Run's goroutine, read by anyone.
	// Drop counts live in the ring only (ringbuf.Producer.Drops).
	frames      atomic.Uint64 // the grabber's NextFrameID, last seen
	published   atomic.Uint64
	copied      atomic.Uint64 // bytes copied (safe-copy)
	kernelExits atomic.Uint64 // consumer exits the eBPF observer reported
	exitWatch   atomic.Value  // string: the observer's mode, "unavailable" or unset
	observer    atomic.Pointer[exitObserver]
	startNs     atomic.Int64 // wall clock of Start (Unix ns), 0 before
	endNs       atomic.Int64 // wall clock of the end of the loop, 0 before

	ringMu     sync.RWMutex
	ringClosed bool

	mu       sync.Mutex
	state    int
	cancel   context.CancelFunc // ends a running Run
	done     chan struct{}      // closed when Run has shut down
	closeErr error
}

// New opens the frame grabber (a GStreamer source negotiates its caps
// here, a camera is configured), creates the ring with slots for the frames the grabber produces,
// and lends the grabber its buffers: every ring slot announced (zero-copy)
// or QueueDepth private buffers allocated (safe-copy). Consumers can
// attach as soon as New returns; frames flow once Run starts.
func New(cfg Config) (*Producer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Producer{cfg: cfg, log: cfg.Logger.With("component", "producer")}
	ok := false
	defer func() {
		if !ok {
			p.release()
		}
	}()
	// The grabber first: a GStreamer source knows its geometry only once
	// its pipeline has negotiated, a camera once its features are set, and
	// the ring's slots are sized for it.
	p.grab, err = native.Open(cfg.Source, cfg.grabberConfig())
	if err != nil {
		return nil, fmt.Errorf("create producer: %w: %w", ErrGrabber, err)
	}
	gc := p.grab.Config()
	if cfg, err = cfg.adopt(gc); err != nil {
		return nil, fmt.Errorf("create producer: %w", err)
	}
	p.cfg = cfg
	// A camera's payload may carry more than the image (chunk data).
	p.ring, err = ringbuf.Create(ringbuf.Config{
		Name: cfg.Name, SocketPath: cfg.SocketPath, Slots: cfg.Slots, SlotSize: max(cfg.Geometry.Size(), gc.PayloadSize),
		SocketMode: cfg.SocketMode, AllowUIDs: cfg.AllowUIDs, AllowGIDs: cfg.AllowGIDs,
		EvictAfter: cfg.EvictAfter, HoldQuota: cfg.HoldQuota, HeartbeatPeriod: cfg.heartbeat(),
		HugePages: cfg.HugePages, Prefault: cfg.Prefault, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("create producer: %w: %w", ErrRing, err)
	}
	if err := p.loop.init(p); err != nil {
		return nil, fmt.Errorf("create producer: %w", err)
	}
	ok = true
	p.log.Info("producer ready", "ring", p.ring.Path(), "source", cfg.Source, "mode", cfg.mode(),
		"width", cfg.Geometry.Width, "height", cfg.Geometry.Height, "stride", cfg.Geometry.Stride,
		"format", cfg.Geometry.Format.String(), "fps", fpsAttr(cfg.FrameRate), "slots", p.ring.Slots(),
		"slot_capacity", p.ring.SlotCapacity(), "queue_depth", cfg.QueueDepth)
	return p, nil
}

// Config returns the configuration in effect, defaults applied.
func (p *Producer) Config() Config { return p.cfg }

// Path is the ring's socket path.
func (p *Producer) Path() string { return p.ring.Path() }

// Epoch is the random identity of this ring (ringbuf.Producer.Epoch).
func (p *Producer) Epoch() uint64 { return p.ring.Epoch() }

// ringPids appends the pids of the ring's consumers to dst (none once the
// ring closed): ringbuf.Producer.ConsumerPids under ringMu.
func (p *Producer) ringPids(dst []int) []int {
	p.ringMu.RLock()
	defer p.ringMu.RUnlock()
	if p.ringClosed {
		return dst
	}
	return p.ring.ConsumerPids(dst)
}

// Snapshot returns the ring's state (consumers, drops, slots). After the
// ring closed it returns ErrClosed.
func (p *Producer) Snapshot() (ringbuf.Snapshot, error) {
	p.ringMu.RLock()
	defer p.ringMu.RUnlock()
	if p.ringClosed {
		return ringbuf.Snapshot{}, fmt.Errorf("snapshot ring: %w", ErrClosed)
	}
	return p.ring.Snapshot(), nil
}

// Run acquires frames until ctx ends, then shuts down in the documented
// order (stop the grabber, close it, close the ring) and returns the final
// Stats. The end of ctx is a normal end: the error is nil unless the
// grabber or the ring failed. A Producer runs once; a second Run, or a Run
// after Close, returns ErrClosed.
func (p *Producer) Run(ctx context.Context) (Stats, error) {
	p.mu.Lock()
	if p.state != stateNew {
		p.mu.Unlock()
		return p.Stats(), fmt.Errorf("run producer: %w", ErrClosed)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.state, p.cancel, p.done = stateRunning, cancel, make(chan struct{})
	p.mu.Unlock()

	var wg sync.WaitGroup
	statsCtx, stopStats := context.WithCancel(ctx)
	var observer io.Closer = nopCloser{}
	if p.cfg.ExitWatch {
		if w := p.startExitWatch(statsCtx, &wg); w != nil {
			observer = w
		}
	}
	if p.cfg.StatsInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.statsLoop(statsCtx)
		}()
	}
	runErr := p.run(ctx)
	p.endNs.Store(time.Now().UnixNano())
	// Stop acquisition first: the grabber must not go on producing frames
	// (counted as underruns, nothing being queued any more) while the
	// stats and exit-watch goroutines wind down. shutdown stops it again,
	// which does nothing, and reads the final counters.
	if err := p.grab.Stop(); err != nil && !errors.Is(err, native.ErrClosed) {
		p.log.Warn("stop acquisition", "err", err)
	}
	stopStats()
	wg.Wait()
	if err := observer.Close(); err != nil {
		p.log.Warn("close kernel exit watch", "err", err)
	}

	shutErr := p.shutdown()
	p.mu.Lock()
	p.state, p.closeErr = stateDone, shutErr
	close(p.done)
	p.mu.Unlock()

	st := p.Stats()
	attrs := []any{"published", st.Published, "frames", st.Frames, "dropped", st.DropTotal(),
		slog.Any("drops", st.Drops.Map()), "elapsed", st.Elapsed.Round(time.Millisecond).String(), "fps", round1(st.FPS())}
	if runErr != nil {
		p.log.Error("producer failed", append(attrs, "err", runErr)...)
	} else {
		p.log.Info("producer stopped", attrs...)
	}
	return st, errors.Join(runErr, shutErr)
}

// run starts acquisition and loops until ctx ends or something fails.
func (p *Producer) run(ctx context.Context) error {
	if err := p.loop.prime(); err != nil {
		return err
	}
	if err := p.waitConsumers(ctx); err != nil {
		return nil // ctx ended while waiting: a normal end
	}
	p.startNs.Store(time.Now().UnixNano())
	if err := p.grab.Start(); err != nil {
		return fmt.Errorf("start acquisition: %w: %w", ErrGrabber, err)
	}
	for ctx.Err() == nil {
		if err := p.step(ctx); err != nil {
			if ended(ctx, err) {
				return nil // the grabber's wait ended with ctx: a normal end
			}
			if errors.Is(err, native.ErrStopped) {
				// Only Run stops the grabber: the source itself ended
				// (a GStreamer stream's end), after its last frame.
				p.log.Info("the source ended")
				return nil
			}
			return err
		}
	}
	return nil
}

// waitConsumers waits until Config.WaitConsumers consumers are attached,
// beating as a source that waits (not a stall).
func (p *Producer) waitConsumers(ctx context.Context) error {
	n := p.cfg.WaitConsumers
	if n <= 0 {
		return nil
	}
	p.log.Info("waiting for consumers before the first frame", "consumers", n)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for len(p.ring.ConsumerPids(nil)) < n {
		p.ring.Beat(ringbuf.SourceWaiting)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// fpsAttr is a frame rate for a log line: the rate, or "free-run".
func fpsAttr(r float64) any {
	if r < 0 {
		return "free-run"
	}
	return r
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// ended reports whether err is ctx's end rather than a failure. A grabber
// may notice a deadline a moment before ctx.Err does.
func ended(ctx context.Context, err error) bool {
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// Close stops a running Producer (as if its context ended) and waits for
// Run to shut it down, or releases a Producer that never ran. It returns
// the shutdown's error; a second Close returns the same.
func (p *Producer) Close() error {
	p.mu.Lock()
	switch p.state {
	case stateNew:
		p.state = stateDone
		p.done = make(chan struct{})
		p.mu.Unlock()
		err := p.shutdown()
		p.mu.Lock()
		p.closeErr = err
		close(p.done)
		p.mu.Unlock()
		return err
	case stateRunning:
		p.cancel()
	}
	done := p.done
	p.mu.Unlock()
	<-done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closeErr
}

// shutdown stops and closes the grabber, then closes the ring
// (invariant 1), keeping the final counts.
func (p *Producer) shutdown() error {
	var errs []error
	if err := p.grab.Stop(); err != nil && !errors.Is(err, native.ErrClosed) {
		errs = append(errs, fmt.Errorf("stop acquisition: %w: %w", ErrGrabber, err))
	}
	// Stopped: the counters are final (NextFrameID == Delivered +
	// Underruns), and Stop gave back every queued and every filled but
	// not dequeued buffer. Read them before Close zeroes them.
	c := p.grab.Counters()
	p.loop.account(c) // Stop's discards too
	if c.Copies > 0 {
		// A GStreamer source's upstream wrote these frames elsewhere: it
		// ignored the sink's pool, or no slot was queued when it asked.
		p.log.Info("frames copied into slots by the source", "copies", c.Copies, "delivered", c.Delivered)
	}
	if err := p.loop.reclaim(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, p.release())
	return errors.Join(errs...)
}

// release closes the grabber, then the ring (invariant 1). It is also the
// cleanup of a New that failed half-way.
func (p *Producer) release() error {
	var errs []error
	if p.grab != nil {
		if err := p.grab.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close grabber: %w: %w", ErrGrabber, err))
		}
	}
	if p.ring != nil {
		p.ringMu.Lock()
		if !p.ringClosed {
			p.ringClosed = true
			if err := p.ring.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close ring: %w: %w", ErrRing, err))
			}
		}
		p.ringMu.Unlock()
	}
	return errors.Join(errs...)
}
