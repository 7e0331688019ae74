package archiver

// Recording around events (archiver run -record events): the archive keeps
// only the frames around triggers, for weeks, apart from any rolling
// window another archiver keeps.
//
// The recorder copies every frame it gets into a bounded pre-trigger
// buffer (memory, -buffer bytes). A trigger names a frame: (epoch, ring
// seq) from the analyzer's results stream (a result with defects), the
// newest published frame at the arrival of an external trigger (the
// trigger socket, SIGUSR1), or the first frame captured at or after a
// timestamp the external trigger carries. Its window runs from the trigger
// frame - pre to + post (frames or capture time); the window's frames are
// appended to the archive (the buffered ones at once, the later ones as
// they arrive). A trigger whose window overlaps or touches the open event
// extends it; an event closes when its window ends or it reaches
// -max-event frames, and triggers in the -holdoff after it are counted and
// not recorded (a line with continuous defects does not record
// everything). A closed event is appended to DIR/events.jsonl after its
// frames are fsynced.
//
// Invariants:
//   - Only the loop goroutine touches the recorder's state; the trigger
//     sources (results client, trigger socket, signal) only send on
//     trig, never blocking (a full channel counts the trigger as dropped).
//   - The frames of the open event are appended in ring order, each once:
//     written is the last ring seq appended.
//   - An event's line in events.jsonl is written only after its frames are
//     durable; a crash before that leaves frames no event names (verify
//     accepts them), never an event without its frames.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/internal/cli"
	"github.com/framering/framering/results"
	"github.com/framering/framering/ringbuf"
)

// Window is a length in frames or in capture time: "N" frames or a Go
// duration ("2s").
type Window struct {
	Frames uint64
	Time   time.Duration
}

// ParseWindow parses "N" (frames) or a duration.
func ParseWindow(s string) (Window, error) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return Window{Frames: n}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return Window{}, cli.Usagef("window %q: want a frame count or a duration", s)
	}
	return Window{Time: d}, nil
}

func (w Window) String() string {
	if w.Time > 0 {
		return w.Time.String()
	}
	return strconv.FormatUint(w.Frames, 10)
}

// EventsConfig configures -record events.
type EventsConfig struct {
	// Pre and Post are the window before and after the trigger frame.
	Pre, Post Window
	// Holdoff: triggers this long after an event closed are counted, not
	// recorded.
	Holdoff Window
	// MaxEvent closes an event that reached this many frames (0: no limit).
	MaxEvent uint64
	// Buffer bounds the pre-trigger buffer's bytes.
	Buffer int64
	// Results is an analyzer's results socket: its results with at least
	// MinDefects defects trigger events ("": none).
	Results    string
	MinDefects int
	// TriggerSocket is a Unix socket for external triggers ("": none).
	TriggerSocket string
	// Signal makes SIGUSR1 trigger on the newest published frame.
	Signal bool
}

// Trigger is a trigger on its way to the recorder.
type Trigger struct {
	archive.Trigger
	// byTime: the trigger names a capture time, not a frame (external
	// with timestamp_ns): the first frame at or after it.
	byTime bool
}

// maxTriggersListed bounds the triggers an event lists (the rest counted).
const maxTriggersListed = 16

// EventStats is what the recorder counted.
type EventStats struct {
	Events     uint64 `json:"events"`
	Frames     uint64 `json:"event_frames"`
	Triggers   uint64 `json:"triggers"`
	Merged     uint64 `json:"triggers_merged"`     // into an open event
	HeldOff    uint64 `json:"triggers_held_off"`   // in the hold-off after an event
	Dropped    uint64 `json:"triggers_dropped"`    // the trigger queue was full
	Stale      uint64 `json:"triggers_stale"`      // of an epoch that ended, or older than the buffer
	PreMissing uint64 `json:"pre_frames_missing"`  // pre-trigger frames no longer buffered
	ResultsErr uint64 `json:"results_stream_errs"` // results streams dropped for an invalid line or a read error
}

// bufFrame is a buffered copy of a frame.
type bufFrame struct {
	epoch uint64
	meta  ringbuf.Meta
	data  []byte
}

// bound is where a window ends: a ring seq or a capture time.
type bound struct {
	seq    uint64
	ts     int64
	byTime bool
}

func (b bound) after(f *bufFrame) bool { // f lies after the bound
	if b.byTime {
		return f.meta.Timestamp > b.ts
	}
	return f.meta.Seq > b.seq
}

type openEvent struct {
	ev      archive.Event
	end     bound
	written uint64 // last ring seq appended
	reached bool   // the window's end was reached
}

type recorder struct {
	cfg  EventsConfig
	a    *archiver
	log  *slog.Logger
	trig chan Trigger
	stop context.CancelFunc // ends the trigger sources

	buf      []bufFrame // oldest first
	bufBytes int64
	free     [][]byte // data slices to reuse

	pending []Trigger
	open    *openEvent
	// lastEnd is the last frame of the last closed event (hold-off).
	lastEnd      bound
	lastEndEpoch uint64
	lastID       uint64
	haveLast     bool
	nextID       uint64
	file         *os.File

	stats   EventStats
	statsMu chanMutex
	dropped atomic.Uint64
	badRes  atomic.Uint64
}

// chanMutex is a tiny mutex for the stats copy (the summary reads them
// from another goroutine).
type chanMutex chan struct{}

func (m chanMutex) lock()   { m <- struct{}{} }
func (m chanMutex) unlock() { <-m }

func newRecorder(a *archiver, cfg EventsConfig) (*recorder, error) {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256 << 20
	}
	if cfg.MinDefects <= 0 {
		cfg.MinDefects = 1
	}
	path := filepath.Join(a.cfg.Dir, archive.EventsFile)
	evs, err := archive.ReadEvents(a.cfg.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	next := uint64(1)
	for _, e := range evs {
		next = max(next, e.ID+1)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return &recorder{cfg: cfg, a: a, log: a.log, trig: make(chan Trigger, 1024), nextID: next, file: f,
		statsMu: make(chanMutex, 1)}, nil
}

// send queues a trigger from another goroutine, never waiting.
func (r *recorder) send(t Trigger) {
	select {
	case r.trig <- t:
	default:
		r.dropped.Add(1)
	}
}

// frame handles one frame from the ring (the loop goroutine).
func (r *recorder) frame(e uint64, m ringbuf.Meta, b []byte) error {
	if n := len(r.buf); n > 0 && r.buf[n-1].epoch != e {
		r.newEpoch()
	}
	r.push(e, m, b)
	cur := &r.buf[len(r.buf)-1]
	r.drain()
	if err := r.resolve(cur); err != nil {
		return err
	}
	if o := r.open; o != nil {
		if !o.end.after(cur) {
			if err := r.write(cur); err != nil {
				return err
			}
		}
		if r.cfg.MaxEvent > 0 && o.ev.Frames >= r.cfg.MaxEvent || r.over(o, cur) {
			return r.close(true)
		}
	}
	return nil
}

// over reports whether the open event is over at frame cur: its window
// ended, and a trigger on the next frame could no longer reach back into
// it (an event stays open for the pre-trigger window after its end, so
// that overlapping windows become one event).
func (r *recorder) over(o *openEvent, cur *bufFrame) bool {
	if !o.end.after(cur) && !atEnd(o.end, cur) {
		return false
	}
	o.reached = true
	if r.cfg.Pre.Time > 0 {
		return cur.meta.Timestamp-int64(r.cfg.Pre.Time) > o.ev.LastTimestampNs
	}
	return cur.meta.Seq > o.written+r.cfg.Pre.Frames
}

// atEnd reports whether f is the window's last frame by seq (a time bound
// ends only when a later frame shows it passed).
func atEnd(b bound, f *bufFrame) bool { return !b.byTime && f.meta.Seq >= b.seq }

// push copies the frame into the buffer, trimming the oldest past Buffer.
func (r *recorder) push(e uint64, m ringbuf.Meta, b []byte) {
	var d []byte
	for i := len(r.free) - 1; i >= 0; i-- {
		if cap(r.free[i]) >= len(b) {
			d = r.free[i][:len(b)]
			r.free = append(r.free[:i], r.free[i+1:]...)
			break
		}
	}
	if d == nil {
		d = make([]byte, len(b))
	}
	copy(d, b)
	r.buf = append(r.buf, bufFrame{epoch: e, meta: m, data: d})
	r.bufBytes += int64(len(d))
	for len(r.buf) > 1 && r.bufBytes > r.cfg.Buffer {
		r.drop()
	}
}

func (r *recorder) drop() {
	old := r.buf[0]
	r.bufBytes -= int64(len(old.data))
	if len(r.free) < 8 {
		r.free = append(r.free, old.data)
	}
	r.buf[0] = bufFrame{}
	r.buf = r.buf[1:]
}

// newEpoch: the producer restarted. The open event ends incomplete, the
// buffer and triggers of the old epoch go.
func (r *recorder) newEpoch() {
	if r.open != nil {
		if err := r.close(false); err != nil {
			r.log.Error("close event at producer restart", "err", err)
		}
	}
	for len(r.buf) > 0 {
		r.drop()
	}
	r.haveLast = false
}

// resolve turns pending triggers that name a frame the recorder has into
// events (or merges, holds them off).
func (r *recorder) resolve(cur *bufFrame) error {
	keep := r.pending[:0]
	for _, t := range r.pending {
		i, ready, stale := r.find(t, cur)
		switch {
		case stale:
			r.count(func(s *EventStats) { s.Triggers++; s.Stale++ })
			r.log.Warn("trigger for a frame no longer buffered or of an ended producer run; not recorded",
				"source", t.Source, "epoch", t.Epoch, "seq", t.Seq, "timestamp_ns", t.TimestampNs)
		case !ready:
			keep = append(keep, t)
		default:
			if err := r.trigger(t, i); err != nil {
				return err
			}
		}
	}
	r.pending = keep
	return nil
}

// find locates t's frame in the buffer: its index, whether it is there
// yet, whether it never will be.
func (r *recorder) find(t Trigger, cur *bufFrame) (int, bool, bool) {
	if t.byTime {
		if cur.meta.Timestamp < t.TimestampNs {
			return 0, false, false
		}
		for i := range r.buf {
			if r.buf[i].meta.Timestamp >= t.TimestampNs {
				return i, true, false
			}
		}
		return 0, false, false
	}
	if uint64(t.Epoch) != cur.epoch {
		// A result for a run that ended or that the archiver has not seen
		// yet: stale (counted; the analyzer runs behind the archiver's
		// buffer, so a newer run's result before its first frame is rare).
		return 0, false, true
	}
	if t.Seq > cur.meta.Seq {
		return 0, false, false
	}
	first := r.buf[0].meta.Seq
	if t.Seq < first {
		return 0, false, true
	}
	i := int(t.Seq - first)
	if i < len(r.buf) && r.buf[i].meta.Seq == t.Seq {
		return i, true, false
	}
	for i := range r.buf { // seqs the archiver missed: search
		if r.buf[i].meta.Seq == t.Seq {
			return i, true, false
		}
	}
	return 0, false, true
}

// trigger records trigger t on buffered frame i.
func (r *recorder) trigger(t Trigger, i int) error {
	f := &r.buf[i]
	t.Epoch, t.Seq = archive.Epoch(f.epoch), f.meta.Seq
	if t.TimestampNs == 0 || t.byTime {
		t.TimestampNs = f.meta.Timestamp
	}
	r.count(func(s *EventStats) { s.Triggers++ })
	// The window's start: the first buffered frame in it.
	start := i
	want := uint64(0)
	if r.cfg.Pre.Time > 0 {
		for start > 0 && r.buf[start-1].meta.Timestamp >= f.meta.Timestamp-int64(r.cfg.Pre.Time) {
			start--
		}
	} else {
		want = r.cfg.Pre.Frames
		for start > 0 && f.meta.Seq-r.buf[start-1].meta.Seq <= want {
			start--
		}
	}
	var end bound
	if r.cfg.Post.Time > 0 {
		end = bound{ts: f.meta.Timestamp + int64(r.cfg.Post.Time), byTime: true}
	} else {
		end = bound{seq: f.meta.Seq + r.cfg.Post.Frames}
	}
	if o := r.open; o != nil {
		// Overlapping or touching the open event: one event.
		if r.buf[start].meta.Seq <= o.written+1 {
			if end.byTime && end.ts > o.end.ts || !end.byTime && end.seq > o.end.seq {
				o.end = end
			}
			r.addTrigger(&o.ev, t)
			r.count(func(s *EventStats) { s.Merged++ })
			// The buffered frames the longer window now takes.
			for j := start; j < len(r.buf) && !o.end.after(&r.buf[j]); j++ {
				if r.cfg.MaxEvent > 0 && o.ev.Frames >= r.cfg.MaxEvent {
					break
				}
				if err := r.write(&r.buf[j]); err != nil {
					return err
				}
			}
			return nil
		}
		if err := r.close(true); err != nil {
			return err
		}
	}
	if r.heldOff(f) {
		r.count(func(s *EventStats) { s.HeldOff++ })
		return nil
	}
	var preMissing uint64
	if r.cfg.Pre.Time == 0 && f.meta.Seq-r.buf[start].meta.Seq < want && r.buf[start].meta.Seq > 1 {
		preMissing = min(want-(f.meta.Seq-r.buf[start].meta.Seq), r.buf[start].meta.Seq-1)
	}
	// Frames the last event already holds are not stored twice: an event
	// whose window reaches back into the one before starts after it.
	var after uint64
	if r.haveLast && r.lastEndEpoch == f.epoch && r.buf[start].meta.Seq <= r.lastEnd.seq {
		after = r.lastID
		for start < len(r.buf)-1 && r.buf[start].meta.Seq <= r.lastEnd.seq {
			start++
		}
		if r.buf[start].meta.Seq <= r.lastEnd.seq { // nothing new yet
			start = len(r.buf)
		}
	}
	var first uint64
	if start < len(r.buf) {
		first = r.buf[start].meta.Seq
	} else {
		first = r.lastEnd.seq + 1
	}
	o := &openEvent{end: end, written: r.lastWritten(f.epoch), ev: archive.Event{ID: r.nextID, Epoch: archive.Epoch(f.epoch), FirstSeq: first,
		After: after, PreMissing: preMissing, Pre: r.cfg.Pre.String(), Post: r.cfg.Post.String()}}
	r.nextID++
	r.addTrigger(&o.ev, t)
	r.open = o
	r.count(func(s *EventStats) { s.PreMissing += preMissing })
	r.log.Info("event opened", "id", o.ev.ID, "source", t.Source, "epoch", t.Epoch, "trigger_seq", t.Seq,
		"first_seq", o.ev.FirstSeq, "defects", t.DefectCount, "label", t.Label)
	for j := start; j < len(r.buf); j++ {
		if o.end.after(&r.buf[j]) || r.open != o {
			break
		}
		if err := r.write(&r.buf[j]); err != nil {
			return err
		}
	}
	return nil
}

// lastWritten is the last ring seq of epoch e already in the archive
// (0: none).
func (r *recorder) lastWritten(e uint64) uint64 {
	if r.haveLast && r.lastEndEpoch == e {
		return r.lastEnd.seq
	}
	return 0
}

// heldOff reports whether f falls in the hold-off after the last event.
func (r *recorder) heldOff(f *bufFrame) bool {
	h := r.cfg.Holdoff
	if !r.haveLast || r.lastEndEpoch != f.epoch || (h.Frames == 0 && h.Time == 0) {
		return false
	}
	if h.Time > 0 {
		return f.meta.Timestamp <= r.lastEnd.ts+int64(h.Time)
	}
	return f.meta.Seq <= r.lastEnd.seq+h.Frames
}

func (r *recorder) addTrigger(ev *archive.Event, t Trigger) {
	ev.TriggerCount++
	if len(ev.Triggers) < maxTriggersListed {
		ev.Triggers = append(ev.Triggers, t.Trigger)
	}
}

// write appends buffered frame f to the open event.
func (r *recorder) write(f *bufFrame) error {
	o := r.open
	if f.meta.Seq <= o.written {
		return nil
	}
	m := f.meta
	am := archive.Meta{Epoch: f.epoch, RingSeq: m.Seq, FrameID: m.FrameID, Timestamp: m.Timestamp, Width: int(m.Width),
		Height: int(m.Height), Stride: int(m.Stride), Format: m.Format}
	rec, err := r.a.w.Append(am, f.data)
	if errors.Is(err, archive.ErrSync) {
		err = nil
	}
	if err != nil {
		if errors.Is(err, archive.ErrClosed) {
			return fmt.Errorf("event %d: %w", o.ev.ID, err)
		}
		// Disk full, write error: the event has a hole (counted).
		o.ev.Missing++
		r.log.Error("event frame not stored", "event", o.ev.ID, "seq", m.Seq, "err", err)
		o.written = m.Seq
		return nil
	}
	if o.ev.Frames == 0 {
		o.ev.FirstRecord, o.ev.FirstTimestampNs = rec, m.Timestamp
	} else if m.Seq > o.written+1 {
		o.ev.Missing += m.Seq - o.written - 1
	}
	o.ev.LastRecord, o.ev.LastSeq, o.ev.LastTimestampNs = rec, m.Seq, m.Timestamp
	o.ev.Frames++
	o.written = m.Seq
	r.a.mu.Lock()
	r.a.sum.Stored++
	r.a.sum.Bytes += uint64(len(f.data))
	r.a.mu.Unlock()
	r.count(func(s *EventStats) { s.Frames++ })
	return nil
}

// close ends the open event: fsync its frames, then its line. full says
// it ended by rule (its window, -max-event), not by the end of the run or
// of the producer's.
func (r *recorder) close(full bool) error {
	o := r.open
	r.open = nil
	if o == nil {
		return nil
	}
	o.ev.Complete = full || o.reached
	o.ev.RecordedAt = time.Now().UTC()
	if o.ev.Frames > 0 {
		r.lastEnd = bound{seq: o.ev.LastSeq, ts: o.ev.LastTimestampNs}
		r.lastEndEpoch, r.haveLast, r.lastID = uint64(o.ev.Epoch), true, o.ev.ID
	}
	if o.ev.Frames == 0 {
		r.log.Warn("event with no frame stored; not listed", "id", o.ev.ID)
		return nil
	}
	if err := r.a.w.Sync(); err != nil && !errors.Is(err, archive.ErrSync) {
		return fmt.Errorf("event %d: %w", o.ev.ID, err)
	}
	b, err := json.Marshal(o.ev)
	if err != nil {
		return fmt.Errorf("event %d: %w", o.ev.ID, err)
	}
	if _, err := r.file.Write(append(b, '\n')); err != nil {
		r.log.Error("events file", "err", err)
	} else if err := r.file.Sync(); err != nil {
		r.log.Error("events file sync", "err", err)
	}
	r.count(func(s *EventStats) { s.Events++ })
	r.log.Info("event recorded", "id", o.ev.ID, "epoch", o.ev.Epoch, "first_seq", o.ev.FirstSeq, "last_seq", o.ev.LastSeq,
		"frames", o.ev.Frames, "triggers", o.ev.TriggerCount, "complete", o.ev.Complete)
	return nil
}

func (r *recorder) count(f func(*EventStats)) {
	r.statsMu.lock()
	f(&r.stats)
	r.statsMu.unlock()
}

// Stats returns the recorder's counters (any goroutine).
func (r *recorder) Stats() EventStats {
	r.statsMu.lock()
	s := r.stats
	r.statsMu.unlock()
	s.Dropped += r.dropped.Load()
	s.ResultsErr += r.badRes.Load()
	return s
}

// drain moves the triggers sent so far into pending.
func (r *recorder) drain() {
	for {
		select {
		case t := <-r.trig:
			r.pending = append(r.pending, t)
		default:
			return
		}
	}
}

// finish closes the open event at the end of the run (incomplete) and
// the events file.
func (r *recorder) finish() error {
	r.drain()
	if n := len(r.buf); n > 0 {
		if err := r.resolve(&r.buf[n-1]); err != nil {
			r.log.Error("triggers at exit", "err", err)
		}
	}
	r.stop()
	err := r.close(false)
	if len(r.pending) > 0 {
		r.log.Warn("triggers for frames that never came; not recorded", "count", len(r.pending))
	}
	return errors.Join(err, r.file.Close())
}

// startEvents opens the recorder and starts its trigger sources, which
// end with ctx or finish.
func (a *archiver) startEvents(ctx context.Context, cfg EventsConfig) (*recorder, error) {
	r, err := newRecorder(a, cfg)
	if err != nil {
		return nil, err
	}
	ctx, r.stop = context.WithCancel(ctx)
	if cfg.TriggerSocket != "" {
		os.Remove(cfg.TriggerSocket) // a socket file a dead archiver left
		ln, err := net.Listen("unix", cfg.TriggerSocket)
		if err != nil {
			r.stop()
			r.file.Close()
			return nil, fmt.Errorf("trigger socket: %w", err)
		}
		r.log.Info("external triggers", "socket", cfg.TriggerSocket)
		go r.external(ctx, ln)
	}
	if cfg.Results != "" {
		go r.followResults(ctx, cfg.Results)
	}
	if cfg.Signal {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGUSR1)
		go func() {
			defer signal.Stop(sig)
			for {
				select {
				case <-ctx.Done():
					return
				case <-sig:
					t, err := r.newest(Trigger{Trigger: archive.Trigger{Source: "signal"}})
					if err != nil {
						r.log.Warn("SIGUSR1 trigger", "err", err)
						continue
					}
					r.send(t)
				}
			}
		}()
	}
	a.log.Info("recording events", "pre", cfg.Pre.String(), "post", cfg.Post.String(), "holdoff", cfg.Holdoff.String(),
		"max_event", cfg.MaxEvent, "buffer", r.cfg.Buffer, "results", cfg.Results, "next_id", r.nextID)
	return r, nil
}

// followResults subscribes to the analyzer's results stream (again
// whenever it ends: the analyzer restarts) and sends a trigger for each
// result with enough defects.
func (r *recorder) followResults(ctx context.Context, path string) {
	logged := false
	for ctx.Err() == nil {
		c, err := results.Dial(ctx, path)
		if err != nil {
			if !logged {
				r.log.Info("waiting for the analyzer's results stream", "socket", path, "err", err)
				logged = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		logged = false
		r.log.Info("following the analyzer's results", "socket", path, "analyzer", c.Hello.Analyzer, "pid", c.Hello.Pid)
		stop := context.AfterFunc(ctx, func() { c.Close() })
		for {
			m, err := c.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					r.badRes.Add(1)
					r.log.Warn("results stream refused (reconnecting)", "err", err)
				}
				break
			}
			if m.Result == nil {
				r.log.Warn("results stream dropped lines for this archiver (it fell behind); triggers may be missed", "dropped", m.Dropped)
				continue
			}
			res := m.Result
			if res.Error != "" || res.DefectCount < r.cfg.MinDefects {
				continue
			}
			r.send(Trigger{Trigger: archive.Trigger{Source: "results", Epoch: archive.Epoch(res.Epoch), Seq: res.Seq,
				TimestampNs: res.TimestampNs, DefectCount: res.DefectCount, Result: res.Raw}})
		}
		stop()
		c.Close()
	}
}

// externalRequest is a line on the trigger socket.
type externalRequest struct {
	TimestampNs int64         `json:"timestamp_ns"`
	Epoch       archive.Epoch `json:"epoch"`
	Seq         uint64        `json:"seq"`
	Label       string        `json:"label"`
}

// maxLabel bounds a trigger's label.
const maxLabel = 256

// parseExternal validates a trigger socket line: empty (or {}) for the
// newest published frame, {"timestamp_ns":T} for the frame captured at or
// after T, {"epoch":"..","seq":N} for that frame; "label" optional.
func parseExternal(line []byte) (Trigger, error) {
	t := Trigger{Trigger: archive.Trigger{Source: "external"}}
	s := strings.TrimSpace(string(line))
	if s == "" {
		return t, nil
	}
	var q externalRequest
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return t, fmt.Errorf("trigger: %w", err)
	}
	if dec.More() {
		return t, errors.New("trigger: one JSON object per line")
	}
	if len(q.Label) > maxLabel {
		return t, fmt.Errorf("trigger: label longer than %d bytes", maxLabel)
	}
	switch {
	case q.TimestampNs < 0:
		return t, errors.New("trigger: negative timestamp_ns")
	case q.Seq != 0 && q.TimestampNs != 0:
		return t, errors.New("trigger: seq or timestamp_ns, not both")
	case (q.Seq != 0) != (q.Epoch != 0):
		return t, errors.New("trigger: seq needs its epoch")
	}
	t.Label, t.Epoch, t.Seq, t.TimestampNs = q.Label, q.Epoch, q.Seq, q.TimestampNs
	t.byTime = q.TimestampNs != 0
	return t, nil
}

// newest maps t to the newest frame the ring published (now): for a
// trigger that names no frame.
func (r *recorder) newest(t Trigger) (Trigger, error) {
	c := r.a.cons.Load()
	if c == nil {
		return t, errors.New("trigger: not attached to the ring")
	}
	s, err := c.Snapshot()
	if err != nil || s.Published == 0 {
		return t, fmt.Errorf("trigger: no frame published yet (%v)", err)
	}
	t.Epoch, t.Seq = archive.Epoch(s.Epoch), s.Published
	return t, nil
}

// external serves the trigger socket: one JSON object per line, answered
// by one line ({"epoch":..,"seq":..} mapped, or {"error":..}).
func (r *recorder) external(ctx context.Context, ln net.Listener) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			sc := bufio.NewScanner(c)
			sc.Buffer(make([]byte, 4096), 4096)
			for sc.Scan() {
				t, err := parseExternal(sc.Bytes())
				if err == nil && !t.byTime && t.Seq == 0 {
					t, err = r.newest(t)
				}
				var reply []byte
				if err != nil {
					reply, _ = json.Marshal(map[string]string{"error": err.Error()})
				} else {
					r.send(t)
					ack := map[string]any{"accepted": true}
					if t.byTime {
						ack["timestamp_ns"] = t.TimestampNs // mapped when that frame comes
					} else {
						ack["epoch"], ack["seq"] = t.Epoch, t.Seq
					}
					reply, _ = json.Marshal(ack)
				}
				if _, err := c.Write(append(reply, '\n')); err != nil {
					return
				}
			}
		}()
	}
}

// eventStatus says whether an event's frames are still in the archive
// (retention deletes the oldest segments).
func eventStatus(ev archive.Event, firstRecord uint64, have bool) string {
	switch {
	case !have || ev.LastRecord < firstRecord:
		return "deleted"
	case ev.FirstRecord < firstRecord:
		return "partly deleted"
	case !ev.Complete:
		return "incomplete"
	}
	return "ok"
}

// eventListing is an event as "archiver events -json" prints it.
type eventListing struct {
	archive.Event
	Status string `json:"status"`
}

func eventsCommand(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("events", "-dir DIR [-json]")
	dir := fs.String("dir", "", "events archive `directory` (required)")
	asJSON := fs.Bool("json", false, "one JSON object per event")
	if err := fs.Parse(args, stdout); err != nil {
		return err
	}
	if *dir == "" {
		return cli.Usagef("-dir is required")
	}
	evs, err := archive.ReadEvents(*dir)
	if err != nil {
		return err
	}
	first, have := archiveStart(*dir)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, ev := range evs {
			if err := enc.Encode(eventListing{ev, eventStatus(ev, first, have)}); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(stdout, "%-4s %-16s %-17s %6s %8s  %-28s %s\n", "ID", "EPOCH", "RING SEQS", "FRAMES", "TRIGGERS", "FIRST TRIGGER", "STATUS")
	for _, ev := range evs {
		trig := ""
		if len(ev.Triggers) > 0 {
			t := ev.Triggers[0]
			trig = fmt.Sprintf("%s@%d", t.Source, t.Seq)
			if t.DefectCount > 0 {
				trig += fmt.Sprintf(" (%d defects)", t.DefectCount)
			}
			if t.Label != "" {
				trig += " " + strconv.Quote(t.Label)
			}
		}
		fmt.Fprintf(stdout, "%-4d %-16s %-17s %6d %8d  %-28s %s\n", ev.ID, ev.Epoch, fmt.Sprintf("%d..%d", ev.FirstSeq, ev.LastSeq),
			ev.Frames, ev.TriggerCount, trig, eventStatus(ev, first, have))
	}
	return nil
}

// archiveStart is the first record seq the archive still holds.
func archiveStart(dir string) (uint64, bool) {
	r, err := archive.OpenReader(dir)
	if err != nil {
		return 0, false
	}
	defer r.Close()
	segs := r.Segments()
	if len(segs) == 0 {
		return 0, false
	}
	return segs[0].FirstSeq, true
}
