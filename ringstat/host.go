package ringstat

// Host: every ring on the host, watched by long-running views (the metrics
// and web server). Unlike Show, which attaches for one report, a Host keeps
// one observer attachment per ring and reuses it for every snapshot, so a
// scrape or a page refresh costs a snapshot, not a handshake.
//
// Invariants:
//   - Attaching (which can take up to attachTimeout when a producer does
//     not answer) happens only in Refresh, never in Snapshots or Peek:
//     readers of the Host never wait on a producer.
//   - An observer takes no consumer table entry and no holds and writes
//     nothing to the ring (ringbuf.RoleObserver); Peek copies under the
//     slot's generation check. Nothing a Host does can slow a producer or
//     a consumer.
//   - h.mu guards the map and each ring's fields; a Reader taken out under
//     it may be closed by Refresh while in use, which Reader methods report
//     as ErrClosed (they are safe to call concurrently with Close).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/framering/framering/ringbuf"
)

// Ring status values (RingState.Status and Entry.Status).
const (
	StatusLive         = "live"         // attached: figures read from its shared memory
	StatusUnresponsive = "unresponsive" // the producer does not answer: read through /proc (ringbuf.Inspect)
	StatusStale        = "stale"        // a socket with no producer behind it
	StatusClosing      = "closing"      // its producer is closing the ring
	StatusError        = "error"        // see Err
)

// RingState is one ring as a Host saw it at At.
type RingState struct {
	Name   string
	Socket string
	Status string
	Err    error
	// Snapshot is valid for StatusLive and StatusUnresponsive.
	Snapshot ringbuf.Snapshot
	At       time.Time
}

// Host watches every ring in ringbuf.RuntimeDir. Its methods are safe for
// concurrent use.
type Host struct {
	log *slog.Logger

	mu     sync.Mutex
	rings  map[string]*hostRing
	closed bool
}

type hostRing struct {
	name, socket string
	r            *ringbuf.Reader // nil while not attached
	status       string
	err          error
	tried        time.Time // the last attach that found the producer not answering
}

// retryUnresponsive is how often Refresh tries again to attach to a
// producer that did not answer (each try waits up to attachTimeout).
const retryUnresponsive = 5 * time.Second

// NewHost returns a Host that has not looked yet: call Refresh.
func NewHost(log *slog.Logger) *Host {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Host{log: log, rings: map[string]*hostRing{}}
}

// Refresh lists the rings in the runtime directory, attaches to those it
// is not attached to (and to those whose producer went away, in case a new
// one took the name), and forgets the rings whose sockets are gone. It
// returns an error only when the directory cannot be read.
func (h *Host) Refresh(ctx context.Context) error {
	names, err := ringbuf.ListRings()
	if err != nil {
		return fmt.Errorf("refresh rings: %w", err)
	}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil
		}
		hr := h.rings[n]
		if hr == nil {
			hr = &hostRing{name: n}
			hr.socket, _ = ringbuf.SocketPath(n)
			h.rings[n] = hr
			h.log.Info("ring found", "ring", n)
		}
		r := hr.r
		skip := r == nil && hr.status == StatusUnresponsive && time.Since(hr.tried) < retryUnresponsive
		h.mu.Unlock()
		if skip {
			continue
		}
		if r != nil {
			switch r.Health().State {
			case ringbuf.ProducerGone, ringbuf.ProducerClosed:
				// Its producer is gone: a new one may have taken the name.
				r.Close()
				h.setReader(hr, nil, StatusStale, nil)
			default:
				continue
			}
		}
		nr, aerr := observe(ctx, Target{Ring: n})
		if ctx.Err() != nil {
			if nr != nil {
				nr.Close()
			}
			return nil
		}
		switch {
		case aerr == nil:
			h.log.Info("ring attached", "ring", n, "epoch", Epoch(nr.Info().Epoch), "producer_pid", nr.Info().ProducerPid)
			h.setReader(hr, nr, StatusLive, nil)
		case errors.Is(aerr, ringbuf.ErrNotResponding):
			h.setReader(hr, nil, StatusUnresponsive, aerr)
			h.mu.Lock()
			hr.tried = time.Now()
			h.mu.Unlock()
		case errors.Is(aerr, ringbuf.ErrProducerGone), errors.Is(aerr, ringbuf.ErrNoSuchRing):
			h.setReader(hr, nil, StatusStale, aerr)
		case errors.Is(aerr, ringbuf.ErrClosed):
			h.setReader(hr, nil, StatusClosing, aerr)
		default:
			h.setReader(hr, nil, StatusError, aerr)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for n, hr := range h.rings {
		if !seen[n] {
			if hr.r != nil {
				hr.r.Close()
			}
			delete(h.rings, n)
			h.log.Info("ring gone", "ring", n)
		}
	}
	return nil
}

// setReader installs r (nil: none) as hr's attachment, closing one a
// concurrent Close left behind.
func (h *Host) setReader(hr *hostRing, r *ringbuf.Reader, status string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.rings[hr.name] != hr {
		if r != nil {
			r.Close()
		}
		return
	}
	hr.r, hr.status, hr.err = r, status, err
}

// Names returns the names of the rings the last Refresh found, sorted.
func (h *Host) Names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.rings))
	for n := range h.rings {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Snapshots returns a fresh snapshot of every ring the last Refresh
// found, sorted by name: from the attachment of a live ring, through /proc
// for a producer that does not answer (ringbuf.Inspect: its heartbeat age
// tells how long it has been stopped).
func (h *Host) Snapshots(ctx context.Context) []RingState {
	out := []RingState{}
	for _, n := range h.Names() {
		if st, ok := h.Snapshot(ctx, n); ok {
			out = append(out, st)
		}
	}
	return out
}

// Snapshot returns a fresh snapshot of ring name; ok is false when the
// last Refresh did not find it.
func (h *Host) Snapshot(ctx context.Context, name string) (RingState, bool) {
	h.mu.Lock()
	hr := h.rings[name]
	if hr == nil {
		h.mu.Unlock()
		return RingState{}, false
	}
	st := RingState{Name: hr.name, Socket: hr.socket, Status: hr.status, Err: hr.err}
	r := hr.r
	h.mu.Unlock()
	switch {
	case r != nil:
		s, err := r.Snapshot()
		st.At = time.Now()
		if err != nil {
			st.Status, st.Err = StatusError, err
			return st, true
		}
		st.Snapshot = s
	case st.Status == StatusUnresponsive:
		s, err := ringbuf.Inspect(ctx, name, "")
		st.At = time.Now()
		if err != nil {
			st.Status, st.Err = StatusError, errors.Join(st.Err, err)
			return st, true
		}
		st.Snapshot = s
	}
	return st, true
}

// Peek calls fn with frame seq of ring name (0: the newest frame), read by
// the ring's observer attachment without a hold (ringbuf.Reader.Peek), and
// returns the ring's epoch. fn's frame is valid only during fn, and what fn
// made of it must be thrown away unless Peek returns nil: the newest frame
// overwritten while fn read it is retried with the one after it, up to a
// few times, then reported (ringbuf.ErrOverwritten); a given seq is tried
// once. Peek fails with ErrNoFrame when the ring has published nothing or
// is not attached, and with ErrUnknownRing when the last Refresh did not
// find it.
func (h *Host) Peek(name string, seq uint64, fn func(ringbuf.Frame)) (epoch uint64, err error) {
	h.mu.Lock()
	hr := h.rings[name]
	var r *ringbuf.Reader
	var status string
	if hr != nil {
		r, status = hr.r, hr.status // hr's fields only under mu: Refresh rewrites them
	}
	h.mu.Unlock()
	switch {
	case hr == nil:
		return 0, fmt.Errorf("peek ring %s: %w", name, ErrUnknownRing)
	case r == nil:
		return 0, fmt.Errorf("peek ring %s: %w: not attached (%s)", name, ErrNoFrame, status)
	}
	epoch = r.Info().Epoch
	if seq != 0 {
		if err := r.Peek(seq, fn); err != nil {
			return epoch, fmt.Errorf("peek ring %s frame %d: %w", name, seq, err)
		}
		return epoch, nil
	}
	for try := 0; try < peekTries; try++ {
		seq := r.Published()
		if seq == 0 {
			return epoch, fmt.Errorf("peek ring %s: %w: nothing published yet", name, ErrNoFrame)
		}
		err = r.Peek(seq, fn)
		if !errors.Is(err, ringbuf.ErrOverwritten) && !errors.Is(err, ringbuf.ErrNotPublished) {
			break
		}
	}
	if err != nil {
		return epoch, fmt.Errorf("peek ring %s: %w", name, err)
	}
	return epoch, nil
}

// peekTries bounds Peek's retries of a torn read: each retry takes the
// newest frame, which the producer overwrites last.
const peekTries = 4

// Errors of Host.Peek.
var (
	// ErrUnknownRing is returned when the Host does not know the ring.
	ErrUnknownRing = errors.New("no such ring")
	// ErrNoFrame is returned when the ring has no frame to show.
	ErrNoFrame = errors.New("no frame")
)

// Close detaches from every ring.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for n, hr := range h.rings {
		if hr.r != nil {
			hr.r.Close()
		}
		delete(h.rings, n)
	}
	return nil
}
