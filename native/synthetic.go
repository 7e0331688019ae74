package native

// The pure-Go grabber: the C SDK's semantics (frsdk.c) in Go, with
// frame.Generator writing the pattern.
//
// Invariants kept by this file (the same as frsdk.c's):
//
//  1. Every field below mu is guarded by mu (bufs as buftable.go says),
//     except the memory of a buffer in state bufFilling, which the
//     acquisition goroutine writes without the lock (no other path touches
//     a filling buffer's memory, revokes or queues it: the table refuses
//     those moves). The configuration changes only while no acquisition
//     goroutine runs; starting the goroutine and waiting for done order
//     those writes against its reads.
//  2. A buffer index is in at most one of inQ and outQ, and it is there iff
//     its state is bufQueued or bufOutput; so the table's moves of a buffer
//     taken from either queue (bufs.move) cannot be refused.
//  3. nextID == delivered + underruns + lost + (1 if a buffer is filling)
//     + the lostBefore of the frames in outQ + pendingLost, lost being the
//     faults injected without a buffer (Config.Faults) and a replay's gaps.
//     A loss without a buffer goes into lost only when the frame after it
//     is dequeued (or at Stop), so that Counters never show a loss ahead of
//     frames delivered before it (the producer reads them before each
//     publish: docs/LAYOUT.md, counters before the publish they explain).
//  4. Every buffer holds a frame of the current geometry.
//  5. avail and queued are wake-up hints with room for one token: a sender
//     never blocks, a receiver re-checks the queue under mu after waking,
//     and a Dequeue that takes a frame passes the token on if more remain.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/framering/framering/clock"
	"github.com/framering/framering/loss"

	"github.com/framering/framering/frame"
)

type acqState uint8

const (
	acqStopped acqState = iota
	acqRunning
	acqStopping
)

// Synthetic is a pure-Go Grabber that behaves like the simulated SDK: an
// acquisition goroutine fills queued buffers with the frame pattern at the
// configured rate, loses frames (underruns) when no buffer is queued, and
// keeps the same counters and buffer states. It needs no cgo.
//
// Announced memory must be a shared mapping, as for the SDK (the Go heap
// would be safe here, but code tested against Synthetic must also work
// against the SDK). Allocated buffers are Go memory.
type Synthetic struct {
	l leases

	// plain fills the frames without defects when DefectEvery makes them
	// sparse; set by Start before the acquisition goroutine starts.
	plain *frame.Generator
	// pendingLost: losses without a buffer since the last frame filled,
	// handed to the next one (invariant 3). Guarded by mu.
	pendingLost loss.Counts
	// copies: frames a replay copied into buffers (one each). Guarded by mu.
	copies uint64
	// ended: a replay reached the end of its recording (Dequeue returns
	// the frames still filled, then ErrStopped). Guarded by mu.
	ended bool

	avail     chan struct{} // a frame was put in outQ (invariant 5)
	queued    chan struct{} // a buffer was put in inQ (invariant 5)
	closeOnce sync.Once

	mu        sync.Mutex
	stateCond sync.Cond // acq left acqStopping; uses mu
	cfg       Config
	acq       acqState
	stop      chan struct{}    // closed to stop the running acquisition goroutine
	done      chan struct{}    // closed when that goroutine has returned
	epoch     uint64           // counts completed stops
	bufs      bufTable[synBuf] // bufs.closed: Close has begun
	inQ, outQ fifo
	delivered uint64
	underruns uint64
	lost      loss.Counts // Config.Faults that take no buffer
	discarded uint64
	nextID    uint64

	timers timers // Dequeue's, reused
}

// synBuf is the synthetic source's own part of a buffer (bufSlot.x).
type synBuf struct {
	info FrameInfo
	// lostBefore: the losses without a buffer (faults, a replay's gaps)
	// just before this frame, counted in lost when the frame is dequeued
	// (or discarded), so that Counters never show a loss ahead of the
	// frames before it.
	lostBefore loss.Counts
}

// fifo is a queue of buffer indices with room for MaxBuffers.
type fifo struct {
	slot    []int32
	head, n int
}

func newFIFO() fifo { return fifo{slot: make([]int32, MaxBuffers)} }

func (q *fifo) push(i int) {
	q.slot[(q.head+q.n)%len(q.slot)] = int32(i)
	q.n++
}

func (q *fifo) pop() int {
	i := q.slot[q.head]
	q.head = (q.head + 1) % len(q.slot)
	q.n--
	return int(i)
}

// OpenSynthetic opens a pure-Go grabber with cfg. It starts stopped.
func OpenSynthetic(cfg Config) (*Synthetic, error) {
	if st := cfg.validate(); st != StatusOK {
		return nil, fmt.Errorf("open synthetic grabber: %w", st)
	}
	s := &Synthetic{
		bufs:   newBufTable[synBuf](),
		cfg:    cfg,
		avail:  make(chan struct{}, 1),
		queued: make(chan struct{}, 1),
		inQ:    newFIFO(),
		outQ:   newFIFO(),
	}
	s.l.owner = s
	s.stateCond.L = &s.mu
	return s, nil
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Config returns the current configuration.
func (s *Synthetic) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// SetConfig replaces the configuration while stopped.
func (s *Synthetic) SetConfig(cfg Config) error {
	if st := cfg.validate(); st != StatusOK {
		return fmt.Errorf("set config: %w", st)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.bufs.closed:
		return fmt.Errorf("set config: %w", ErrClosed)
	case s.acq != acqStopped:
		return fmt.Errorf("set config: %w", ErrBusy)
	case !s.bufs.fits(cfg.Geometry.Size()):
		return fmt.Errorf("set config: %w", ErrBufferSize)
	}
	s.cfg = cfg
	return nil
}

// Announce lends buf, which must lie in a writable shared mapping, to the
// device.
func (s *Synthetic) Announce(buf []byte) (BufferID, error) {
	if err := checkAnnounce(buf); err != nil {
		return 0, err
	}
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	id, st := s.add(buf)
	if st != StatusOK {
		return 0, fmt.Errorf("announce buffer: %w", st)
	}
	s.l.setBuffer(id, buf)
	return id, nil
}

// Allocate makes a device-private buffer of size bytes (Go memory).
func (s *Synthetic) Allocate(size int) (BufferID, error) {
	if size <= 0 {
		return 0, fmt.Errorf("allocate buffer: %w", ErrBufferSize)
	}
	s.mu.Lock()
	small := size < s.cfg.Geometry.Size()
	s.mu.Unlock()
	if small {
		return 0, fmt.Errorf("allocate buffer: %w", ErrBufferSize)
	}
	mem := make([]byte, size)
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	id, st := s.add(mem)
	if st != StatusOK {
		return 0, fmt.Errorf("allocate buffer: %w", st)
	}
	s.l.setBuffer(id, mem)
	return id, nil
}

// add claims a buffer slot for mem (frsdk.c add_buffer). Needs l.mu.
func (s *Synthetic) add(mem []byte) (BufferID, Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, st := s.bufs.claim(mem, len(mem), s.cfg.Geometry.Size())
	if st != StatusOK {
		return 0, st
	}
	return s.bufs.id(i), StatusOK
}

// Revoke takes back an idle buffer.
func (s *Synthetic) Revoke(id BufferID) error {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	s.mu.Lock()
	_, st := s.bufs.revoke(id)
	s.mu.Unlock()
	if st != StatusOK {
		return fmt.Errorf("revoke buffer: %w", st)
	}
	s.l.clearBuffer(id)
	return nil
}

// Queue puts an idle buffer into the input pool.
func (s *Synthetic) Queue(id BufferID) error {
	if st := s.transition(id, bufAnnounced, bufQueued); st != StatusOK {
		return fmt.Errorf("queue buffer: %w", st)
	}
	return nil
}

func (s *Synthetic) requeueBuffer(id BufferID) Status {
	return s.transition(id, bufDelivered, bufQueued)
}

func (s *Synthetic) detachBuffer(id BufferID) Status {
	return s.transition(id, bufDelivered, bufAnnounced)
}

// transition moves buffer id from state from to state to for the caller
// (frsdk.c buffer_op), keeping the input queue.
func (s *Synthetic) transition(id BufferID, from, to bufState) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, st := s.bufs.apply(id, from, to)
	if st == StatusOK && to == bufQueued {
		s.inQ.push(i)
		wake(s.queued)
	}
	return st
}

// Start starts the acquisition goroutine.
func (s *Synthetic) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.bufs.closed:
		return fmt.Errorf("start acquisition: %w", ErrClosed)
	case s.acq != acqStopped:
		return fmt.Errorf("start acquisition: %w", ErrBusy)
	}
	gen, err := frame.NewGenerator(s.cfg.Geometry, s.cfg.Defects)
	if err != nil {
		return fmt.Errorf("start acquisition: %w", err)
	}
	s.plain = nil
	if s.cfg.Defects && s.cfg.DefectEvery > 1 {
		if s.plain, err = frame.NewGenerator(s.cfg.Geometry, false); err != nil {
			return fmt.Errorf("start acquisition: %w", err)
		}
	}
	s.acq = acqRunning
	s.ended = false
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	if s.cfg.Replay != nil {
		go s.replay(s.cfg, s.stop, s.done)
		return nil
	}
	go s.run(s.cfg, gen, s.stop, s.done)
	return nil
}

// Stop stops acquisition and discards the queues back to the caller.
func (s *Synthetic) Stop() error {
	s.mu.Lock()
	if s.bufs.closed {
		s.mu.Unlock()
		return fmt.Errorf("stop acquisition: %w", ErrClosed)
	}
	s.mu.Unlock()
	s.halt()
	return nil
}

// halt is frsdk.c dev_stop: stop and wait for the goroutine, then discard.
func (s *Synthetic) halt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.acq == acqStopping {
		s.stateCond.Wait()
	}
	if s.acq == acqStopped {
		return
	}
	s.acq = acqStopping
	close(s.stop)
	done := s.done
	s.mu.Unlock()
	<-done
	s.mu.Lock()
	for s.inQ.n > 0 {
		s.bufs.move(s.inQ.pop(), bufQueued, bufAnnounced)
	}
	for s.outQ.n > 0 {
		i := s.outQ.pop()
		s.bufs.move(i, bufOutput, bufAnnounced)
		s.takeLost(i)
		s.discarded++
	}
	for c, n := range s.pendingLost { // no frame follows them now
		s.lost[c] += n
	}
	s.pendingLost = loss.Counts{}
	s.acq = acqStopped
	s.epoch++
	s.stateCond.Broadcast()
}

// run is the acquisition goroutine (frsdk.c acquisition_main).
func (s *Synthetic) run(cfg Config, gen *frame.Generator, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var period time.Duration
	if cfg.Rate > 0 {
		period = max(time.Duration(1e9/cfg.Rate+0.5), 1)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	due := time.Now() // the first frame is due at start
	for {
		if period == 0 {
			// Rate 0: a frame is due as soon as a buffer is queued.
			s.mu.Lock()
			empty := s.inQ.n == 0
			s.mu.Unlock()
			if empty {
				select {
				case <-stop:
					return
				case <-s.queued:
				}
				continue
			}
		} else if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-stop:
				return
			case <-timer.C:
			}
		}
		select {
		case <-stop:
			return
		default:
		}
		s.takeFrame(cfg, gen)
		if period > 0 {
			due = due.Add(period)
			// Fallen a whole period behind: re-anchor, do not burst.
			if now := time.Now(); now.Sub(due) > period {
				due = now
			}
		}
	}
}

// takeLost moves buffer i's losses before it into lost (mu held): its
// frame is being dequeued or discarded.
func (s *Synthetic) takeLost(i int) {
	x := &s.bufs.slots[i].x
	for c, n := range x.lostBefore {
		s.lost[c] += n
	}
	x.lostBefore = loss.Counts{}
}

// replay is the acquisition goroutine of a replay: for each recorded
// frame, a queued buffer (waiting for one: a replay never underruns), one
// copy into it, then the frame when it is due.
func (s *Synthetic) replay(cfg Config, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var t0 time.Time
	var ts0 int64
	first := true
	for {
		s.mu.Lock()
		if s.inQ.n == 0 {
			s.mu.Unlock()
			select {
			case <-stop:
				return
			case <-s.queued:
			}
			continue
		}
		i := s.inQ.pop()
		s.bufs.move(i, bufQueued, bufFilling)
		mem := s.bufs.slots[i].mem
		s.mu.Unlock()
		giveBack := func() { // the buffer goes back to the queue, unfilled
			s.mu.Lock()
			s.bufs.move(i, bufFilling, bufQueued)
			s.inQ.push(i)
			s.mu.Unlock()
		}
		rf, err := cfg.Replay.Next(mem)
		if err != nil {
			// The recording's end (or an unreadable one): the stream ends.
			giveBack()
			s.mu.Lock()
			s.ended = true
			s.mu.Unlock()
			wake(s.avail)
			return
		}
		if cfg.Speed > 0 {
			if first {
				t0, ts0 = time.Now(), rf.Timestamp
			}
			if d := time.Until(t0.Add(time.Duration(float64(rf.Timestamp-ts0) / cfg.Speed))); d > 0 {
				timer.Reset(d)
				select {
				case <-stop:
					giveBack()
					return
				case <-timer.C:
				}
			}
		}
		first = false
		s.mu.Lock()
		s.nextID += rf.LostBefore
		x := &s.bufs.slots[i].x
		x.lostBefore = loss.Counts{}
		x.lostBefore[loss.ReplayGap] = rf.LostBefore
		s.copies++
		id := s.nextID
		s.nextID++
		g := rf.Geometry
		x.info = FrameInfo{
			Buffer:      s.bufs.id(i),
			FrameID:     id,
			Timestamp:   clock.Nanos(),
			Status:      FrameComplete,
			Geometry:    g,
			Length:      g.Size(),
			Flags:       rf.Flags | FlagReplayed,
			OriginEpoch: rf.OriginEpoch,
			OriginSeq:   rf.OriginSeq,
		}
		s.bufs.move(i, bufFilling, bufOutput)
		s.outQ.push(i)
		s.delivered++
		s.mu.Unlock()
		wake(s.avail)
	}
}

// takeFrame delivers the frame that is due now, or counts it lost.
func (s *Synthetic) takeFrame(cfg Config, gen *frame.Generator) {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	status := FrameComplete
	for _, f := range cfg.Faults {
		if f.Every != 0 && id%f.Every == f.Every-1 {
			st, withBuffer := faultStatus(f.Cause)
			if !withBuffer {
				s.pendingLost[f.Cause]++ // due while the "camera" was away: no buffer
				s.mu.Unlock()
				return
			}
			status = st
			break
		}
	}
	if s.inQ.n == 0 {
		s.underruns++
		s.mu.Unlock()
		return
	}
	i := s.inQ.pop()
	s.bufs.move(i, bufQueued, bufFilling)
	mem := s.bufs.slots[i].mem
	ts := clock.Nanos()
	s.mu.Unlock()

	// Sparse defects: only frames whose id is a multiple of DefectEvery.
	defects := cfg.Defects
	if s.plain != nil && id%cfg.DefectEvery != 0 {
		gen, defects = s.plain, false
	}
	// Cannot fail: every buffer holds a frame (invariant 4).
	_ = gen.Fill(mem, id)

	s.mu.Lock()
	g := cfg.Geometry
	flags := FlagPattern
	if defects {
		flags |= FlagDefects
	}
	x := &s.bufs.slots[i].x
	x.info = FrameInfo{
		Buffer:    s.bufs.id(i),
		FrameID:   id,
		Timestamp: ts,
		Status:    status,
		Geometry:  g,
		Length:    g.Size(),
		Flags:     flags,
	}
	x.lostBefore, s.pendingLost = s.pendingLost, loss.Counts{}
	s.bufs.move(i, bufFilling, bufOutput)
	s.outQ.push(i)
	s.delivered++
	s.mu.Unlock()
	wake(s.avail)
}

// Dequeue leases the oldest filled frame, waiting for one while
// acquisition runs, for at most timeout if it is positive (then ErrNoFrame).
// It allocates nothing in steady state (its timers are pooled).
func (s *Synthetic) Dequeue(ctx context.Context, timeout time.Duration) (Frame, error) {
	first := true
	var epoch uint64
	var expired <-chan time.Time
	if timeout > 0 {
		t := s.timers.get()
		t.Reset(timeout)
		defer s.timers.put(t)
		expired = t.C
	}
	for {
		if err := ctx.Err(); err != nil {
			return Frame{}, fmt.Errorf("dequeue frame: %w", err)
		}
		s.mu.Lock()
		if first {
			epoch, first = s.epoch, false
		}
		switch {
		case s.bufs.closed:
			s.mu.Unlock()
			return Frame{}, fmt.Errorf("dequeue frame: %w", ErrClosed)
		case s.outQ.n > 0:
			i := s.outQ.pop()
			s.bufs.move(i, bufOutput, bufDelivered)
			s.takeLost(i)
			info := s.bufs.slots[i].x.info
			more := s.outQ.n > 0
			s.mu.Unlock()
			if more {
				wake(s.avail)
			}
			f, err := s.l.begin(info)
			if err != nil {
				return Frame{}, fmt.Errorf("dequeue frame: %w", err)
			}
			return f, nil
		case s.acq != acqRunning || s.epoch != epoch || s.ended:
			s.mu.Unlock()
			return Frame{}, fmt.Errorf("dequeue frame: %w", ErrStopped)
		}
		stop := s.stop
		s.mu.Unlock()
		select {
		case <-s.avail:
		case <-stop:
		case <-ctx.Done():
		case <-expired:
			return Frame{}, ErrNoFrame
		}
	}
}

// timers keeps Dequeue's timeout timers: a stopped timer (Go 1.23+ timers
// drain on Stop/Reset) is reused, so a timed Dequeue allocates nothing once
// there is one per concurrent caller. Not a sync.Pool: the race detector
// makes a Pool drop items at random, and so allocate.
type timers struct {
	mu   sync.Mutex
	free []*time.Timer
}

func (ts *timers) get() *time.Timer {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if n := len(ts.free); n > 0 {
		t := ts.free[n-1]
		ts.free = ts.free[:n-1]
		return t
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (ts *timers) put(t *time.Timer) {
	t.Stop()
	ts.mu.Lock()
	ts.free = append(ts.free, t)
	ts.mu.Unlock()
}

// Counters returns the device's counters; the zero value after Close.
func (s *Synthetic) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bufs.closed {
		return Counters{}
	}
	return Counters{
		Delivered:   s.delivered,
		Underruns:   s.underruns,
		Lost:        s.lost,
		Discarded:   s.discarded,
		NextFrameID: s.nextID,
		Copies:      s.copies,
		Queued:      s.inQ.n,
		Awaiting:    s.outQ.n,
		Held:        s.bufs.held,
		Announced:   s.bufs.announced,
	}
}

// Close stops acquisition, ends every lease and forgets every buffer. A
// second Close waits for the first and returns nil.
func (s *Synthetic) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.bufs.closed = true // from here every call fails with ErrClosed; Start cannot run
		s.mu.Unlock()
		s.l.close()
		s.halt()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.bufs.reset()
	})
	return nil
}
