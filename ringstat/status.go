package ringstat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"path/filepath"
	"strings"
	"time"

	"github.com/framering/framering/ringbuf"
)

// Target says which ring: Socket, when set, overrides Ring; Ring defaults
// to "default".
type Target struct {
	Ring   string
	Socket string
}

// name is how the ring is called in reports.
func (t Target) name() string {
	if t.Socket != "" {
		return strings.TrimSuffix(filepath.Base(t.Socket), ".sock")
	}
	if t.Ring == "" {
		return "default"
	}
	return t.Ring
}

func (t Target) path() (string, error) {
	if t.Socket != "" {
		return t.Socket, nil
	}
	return ringbuf.SocketPath(t.name())
}

// attachTimeout bounds the handshake with one producer.
const attachTimeout = 2 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// observe attaches to t as an observer.
func observe(ctx context.Context, t Target) (*ringbuf.Reader, error) {
	ctx, cancel := context.WithTimeout(ctx, attachTimeout)
	defer cancel()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{Name: t.name(), SocketPath: t.Socket, Role: ringbuf.RoleObserver,
		Logger: quiet})
	if err != nil {
		return nil, fmt.Errorf("observe ring %s: %w", t.name(), err)
	}
	return r, nil
}

// Epoch is a producer epoch, 16 hex digits in text and JSON.
type Epoch = ringbuf.Epoch

// Report is one ring's state: what `ringctl show` prints.
type Report struct {
	Ring     string   `json:"ring"`
	Socket   string   `json:"socket"`
	Producer Producer `json:"producer"`
	// Geometry.
	Slots        int    `json:"slots"`
	SlotCapacity uint64 `json:"slot_capacity"`
	IndexSize    int    `json:"index_size"`
	HugePages    bool   `json:"huge_pages"`
	// SlotCounts sums SlotList by state.
	SlotCounts SlotCounts `json:"slot_counts"`
	SlotList   []Slot     `json:"slot_list"`
	Consumers  []Consumer `json:"consumers"`
	Drops      Drops      `json:"drops"`
	// Evictions counts lossless consumers evicted for falling behind;
	// Reclaims the consumer entries the producer released (every detach,
	// clean or not: see docs/LAYOUT.md); ReclaimedHolds the slot holds
	// still set when their owner was released (it died, or detached
	// holding frames).
	Evictions      uint64 `json:"evictions"`
	Detaches       uint64 `json:"detaches"`
	Reclaims       uint64 `json:"reclaims"`
	ReclaimedHolds uint64 `json:"reclaimed_holds"`
	RevokedHolds   uint64 `json:"revoked_holds"`
	// HoldQuota is the most slots one consumer may hold; Copies the frames
	// the producer copied into their slot.
	HoldQuota int    `json:"hold_quota"`
	Copies    uint64 `json:"copies"`
	// WindowNs is the time between the two snapshots the rates come from
	// (0: no rates).
	WindowNs int64 `json:"window_ns"`
	// Unresponsive is true when the producer accepted the connection but
	// did not answer it (stopped or hung): the report was read from its
	// shared memory through /proc (ringbuf.Inspect), without rates.
	Unresponsive bool `json:"unresponsive"`
}

// Producer is the ring's producer.
type Producer struct {
	Pid   int    `json:"pid"`
	Epoch Epoch  `json:"epoch"`
	State string `json:"state"` // init, running or closed
	// Source is what the acquisition loop does: starting, acquiring,
	// waiting, source lost, stopped (docs/LAYOUT.md 8.4).
	Source string `json:"source"`
	// Stalled is true when the heartbeat is older than StallAfter while
	// the ring runs and its source is not idle: the producer is stopped
	// or hung.
	Stalled bool `json:"stalled"`
	// HeartbeatPeriodNs is the producer's promise: the longest its loop
	// goes between heartbeats.
	HeartbeatPeriodNs int64 `json:"heartbeat_period_ns"`
	// Published is the last published sequence number; Rate the frames
	// published per second over the window.
	Published      uint64  `json:"published"`
	Rate           float64 `json:"rate"`
	UptimeNs       int64   `json:"uptime_ns"`
	HeartbeatAgeNs int64   `json:"heartbeat_age_ns"`
}

// SlotCounts counts slots by state.
type SlotCounts struct {
	Free      int `json:"free"`
	Writing   int `json:"writing"`
	Published int `json:"published"`
	Held      int `json:"held"`
}

// Slot is one slot.
type Slot struct {
	Index int `json:"index"`
	// State is "free" (never used), "writing" (lent to the producer or its
	// frame grabber), "published" (readable, reusable) or "held" (readable,
	// borrowed by at least one consumer).
	State      string `json:"state"`
	Seq        uint64 `json:"seq"`
	Generation uint64 `json:"generation"`
	// HeldBy names the consumers holding the slot (from the holder bits;
	// "entry N" for an entry no longer in the table).
	HeldBy []string `json:"held_by"`
}

// Consumer is one consumer table entry.
type Consumer struct {
	Entry        int     `json:"entry"`
	Name         string  `json:"name"`
	Pid          int     `json:"pid"`
	UID          int     `json:"uid"`
	Mode         string  `json:"mode"`
	State        string  `json:"state"`
	AttachedUnix int64   `json:"attached_unix_ns"`
	Cursor       uint64  `json:"cursor"`
	Lag          uint64  `json:"lag"`
	Delivered    uint64  `json:"delivered"`
	Rate         float64 `json:"rate"` // delivered per second over the window
	Skipped      uint64  `json:"skipped"`
	Missed       uint64  `json:"missed"`
	Held         uint64  `json:"held"`
	// HeldSlots lists the slots whose holder bit for this entry is set.
	HeldSlots   []int  `json:"held_slots"`
	LastSeq     uint64 `json:"last_seq"`
	LatencyNs   uint64 `json:"latency_ns"`
	BlockDrops  uint64 `json:"block_drops"`
	EvictReason string `json:"evict_reason,omitempty"`
	// RevokedHolds counts its holds revoked when it was evicted;
	// RevokedSeen the leases it found revoked.
	RevokedHolds uint64 `json:"revoked_holds"`
	RevokedSeen  uint64 `json:"revoked_seen"`
}

// Drops counts frames that never reached the ring, by cause name (the
// causes of package loss; only those with a nonzero count), and their
// total.
type Drops struct {
	Total   uint64            `json:"total"`
	ByCause map[string]uint64 `json:"by_cause"`
	// Rate is the frames dropped per second over the window.
	Rate float64 `json:"rate"`
}

// StallAfter is how old a running producer's heartbeat may be, its source
// not idle, before a report calls it stalled (at least twice its period).
const StallAfter = time.Second

// Build makes a report from a snapshot, with rates against prev (taken
// window earlier; nil for none).
func Build(ring, socket string, cur ringbuf.Snapshot, prev *ringbuf.Snapshot, window time.Duration) *Report {
	r := &Report{
		Ring: ring, Socket: socket,
		Producer: Producer{Pid: cur.ProducerPid, Epoch: Epoch(cur.Epoch), State: cur.State, Published: cur.Published,
			UptimeNs: int64(cur.Uptime), HeartbeatAgeNs: int64(cur.HeartbeatAge), Source: cur.SourceState,
			HeartbeatPeriodNs: int64(cur.HeartbeatPeriod)},
		Slots: cur.Slots, SlotCapacity: cur.SlotCapacity, IndexSize: cur.IndexSize, HugePages: cur.HugePages,
		SlotList: []Slot{}, Consumers: []Consumer{},
		Drops:     Drops{Total: cur.Drops.Total(), ByCause: cur.Drops.Map()},
		Evictions: cur.Evictions, Detaches: cur.Detaches, Reclaims: cur.Reclaims, ReclaimedHolds: cur.ReclaimedHolds,
		RevokedHolds: cur.RevokedHolds, HoldQuota: cur.HoldQuota, Copies: cur.Copies,
	}
	stallAfter := max(StallAfter, 2*cur.HeartbeatPeriod)
	r.Producer.Stalled = cur.State == "running" && cur.SourceState != ringbuf.SourceStopped.String() && cur.HeartbeatAge > stallAfter
	if prev != nil && prev.Epoch != cur.Epoch {
		prev = nil // another producer run: nothing to compare
	}
	perSec := func(now, then uint64) float64 {
		if window <= 0 || now < then {
			return 0
		}
		return float64(now-then) / window.Seconds()
	}
	if prev != nil && window > 0 {
		r.WindowNs = int64(window)
		r.Producer.Rate = perSec(cur.Published, prev.Published)
		r.Drops.Rate = perSec(cur.Drops.Total(), prev.Drops.Total())
	}
	names := map[int]string{}
	for _, c := range cur.Consumers {
		names[c.Entry] = c.Name
	}
	holds := map[int][]int{}
	for _, s := range cur.SlotInfo {
		sl := Slot{Index: s.Index, Seq: s.Seq, Generation: s.Generation, HeldBy: []string{}}
		for m := s.Holders; m != 0; m &= m - 1 {
			e := bits.TrailingZeros64(m)
			holds[e] = append(holds[e], s.Index)
			n, ok := names[e]
			if !ok {
				n = fmt.Sprintf("entry %d", e)
			}
			sl.HeldBy = append(sl.HeldBy, n)
		}
		switch {
		case !s.Published:
			sl.State = "writing"
			r.SlotCounts.Writing++
		case s.Holders != 0:
			sl.State = "held"
			r.SlotCounts.Held++
		case s.Seq == 0:
			sl.State = "free"
			r.SlotCounts.Free++
		default:
			sl.State = "published"
			r.SlotCounts.Published++
		}
		r.SlotList = append(r.SlotList, sl)
	}
	for _, c := range cur.Consumers {
		v := Consumer{Entry: c.Entry, Name: c.Name, Pid: c.Pid, UID: c.UID, Mode: c.Mode, State: c.State,
			AttachedUnix: c.AttachedUnix, Cursor: c.Cursor, Lag: c.Lag, Delivered: c.Delivered, Skipped: c.Skipped,
			Missed: c.Missed, Held: c.Held, HeldSlots: holds[c.Entry], LastSeq: c.LastSeq, LatencyNs: c.LatencyNs,
			BlockDrops: c.BlockDrops, EvictReason: c.EvictReason, RevokedHolds: c.RevokedHolds, RevokedSeen: c.RevokedSeen}
		if v.HeldSlots == nil {
			v.HeldSlots = []int{}
		}
		if prev != nil {
			for _, p := range prev.Consumers {
				if p.Entry == c.Entry && p.AttachedUnix == c.AttachedUnix {
					v.Rate = perSec(c.Delivered, p.Delivered)
				}
			}
		}
		r.Consumers = append(r.Consumers, v)
	}
	return r
}

// Show attaches to t as an observer, takes two snapshots window apart
// (none if window <= 0) and reports the second with rates.
func Show(ctx context.Context, t Target, window time.Duration) (*Report, error) {
	path, err := t.path()
	if err != nil {
		return nil, fmt.Errorf("show ring: %w", err)
	}
	r, err := observe(ctx, t)
	if errors.Is(err, ringbuf.ErrNotResponding) {
		// The producer accepts connections but does not answer: stopped or
		// hung. Read its state from shared memory instead (no rates).
		snap, ierr := ringbuf.Inspect(ctx, t.Ring, t.Socket)
		if ierr != nil {
			return nil, errors.Join(err, ierr)
		}
		rep := Build(t.name(), path, snap, nil, 0)
		rep.Unresponsive = true
		return rep, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	s1, err := r.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot ring %s: %w", t.name(), err)
	}
	if window <= 0 {
		return Build(t.name(), path, s1, nil, 0), nil
	}
	t1 := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(window):
	}
	s2, err := r.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot ring %s: %w", t.name(), err)
	}
	return Build(t.name(), path, s2, &s1, time.Since(t1)), nil
}

// Entry is one ring in a List.
type Entry struct {
	Name   string `json:"name"`
	Socket string `json:"socket"`
	// Status is "live" (a producer answered), "stale" (a socket with no
	// producer behind it), "closing" (its producer is closing the ring) or
	// "error" (see Error).
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// The rest is set for live rings.
	Pid       int    `json:"pid,omitempty"`
	Epoch     *Epoch `json:"epoch,omitempty"`
	State     string `json:"state,omitempty"`
	UptimeNs  int64  `json:"uptime_ns,omitempty"`
	Published uint64 `json:"published"`
	Consumers int    `json:"consumers"`
}

// List reports every ring whose socket is in ringbuf.RuntimeDir, live or
// stale.
func List(ctx context.Context) ([]Entry, error) {
	names, err := ringbuf.ListRings()
	if err != nil {
		return nil, err
	}
	out := []Entry{}
	for _, n := range names {
		t := Target{Ring: n}
		e := Entry{Name: n}
		e.Socket, _ = t.path()
		r, err := observe(ctx, t)
		switch {
		case err == nil:
			s, serr := r.Snapshot()
			r.Close()
			if serr != nil {
				e.Status, e.Error = "error", serr.Error()
				break
			}
			ep := Epoch(s.Epoch)
			e.Status, e.Pid, e.Epoch, e.State = "live", s.ProducerPid, &ep, s.State
			e.UptimeNs, e.Published, e.Consumers = int64(s.Uptime), s.Published, len(s.Consumers)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, ringbuf.ErrProducerGone):
			e.Status = "stale"
		case errors.Is(err, ringbuf.ErrClosed):
			e.Status = "closing"
		default:
			e.Status, e.Error = "error", err.Error()
		}
		out = append(out, e)
	}
	return out, nil
}
