package ringbuf

// Snapshots: a consistent-enough picture of a ring for people (ringctl,
// the producer's periodic log line). Each word is loaded atomically; the
// snapshot as a whole is not atomic, and says so by its fields being
// counters that only grow.

import (
	"fmt"
	"time"

	"github.com/framering/framering/clock"
	"github.com/framering/framering/loss"
)

// Epoch is a producer run's random identity as tools show it: 16 hex
// digits in text and JSON (a JSON number would lose precision in most
// readers of 64-bit values).
type Epoch uint64

// String returns the epoch as 16 hex digits.
func (e Epoch) String() string { return fmt.Sprintf("%016x", uint64(e)) }

// MarshalText implements encoding.TextMarshaler.
func (e Epoch) MarshalText() ([]byte, error) { return fmt.Appendf(nil, "%016x", uint64(e)), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (e *Epoch) UnmarshalText(b []byte) error {
	var v uint64
	if _, err := fmt.Sscanf(string(b), "%x", &v); err != nil {
		return fmt.Errorf("parse epoch %q: %w", b, err)
	}
	*e = Epoch(v)
	return nil
}

// SlotInfo is one slot as a snapshot saw it.
type SlotInfo struct {
	Index      int    `json:"index"`
	Generation uint64 `json:"generation"`
	Seq        uint64 `json:"seq"`
	Published  bool   `json:"published"` // even generation: carries a readable frame
	Holders    uint64 `json:"holders"`   // bit per consumer table entry
}

// ConsumerInfo is one consumer table entry.
type ConsumerInfo struct {
	Entry        int    `json:"entry"`
	Name         string `json:"name"`
	Pid          int    `json:"pid"`
	UID          int    `json:"uid"`
	Mode         string `json:"mode"`
	State        string `json:"state"`                  // active or evicted
	EvictReason  string `json:"evict_reason,omitempty"` // why, when evicted
	AttachedUnix int64  `json:"attached_unix_ns"`
	Cursor       uint64 `json:"cursor"`
	Lag          uint64 `json:"lag"` // published frames not yet passed
	Delivered    uint64 `json:"delivered"`
	Skipped      uint64 `json:"skipped"`
	Missed       uint64 `json:"missed"`
	Held         uint64 `json:"held"`
	LastSeq      uint64 `json:"last_seq"`
	LatencyNs    uint64 `json:"latency_ns"`
	// BlockDrops counts frames dropped (cause blocked) while this consumer
	// was the one blamed for keeping the producer from every slot.
	BlockDrops uint64 `json:"block_drops"`
	// RevokedHolds counts its hold bits cleared when it was evicted;
	// RevokedSeen the leases it found revoked at release.
	RevokedHolds uint64 `json:"revoked_holds"`
	RevokedSeen  uint64 `json:"revoked_seen"`
}

// Snapshot is a ring's state as seen at one moment. Each word is loaded
// atomically; the whole is not atomic, but its counters only grow.
type Snapshot struct {
	Epoch           uint64        `json:"epoch"`
	ProducerPid     int           `json:"producer_pid"`
	State           string        `json:"state"`        // the ring: init, running, closed
	SourceState     string        `json:"source_state"` // the acquisition loop: starting, acquiring, waiting, source lost, stopped
	Published       uint64        `json:"published"`
	Slots           int           `json:"slots"`
	SlotCapacity    uint64        `json:"slot_capacity"`
	IndexSize       int           `json:"index_size"`
	HoldQuota       int           `json:"hold_quota"`
	HugePages       bool          `json:"huge_pages"`
	HeartbeatPeriod time.Duration `json:"heartbeat_period_ns"`
	EvictAfter      time.Duration `json:"evict_after_ns"`
	Uptime          time.Duration `json:"uptime_ns"`
	HeartbeatAge    time.Duration `json:"heartbeat_age_ns"`
	// Drops is the drop table: frames lost before they got a sequence
	// number, by cause (JSON: an object of the nonzero causes by name).
	Drops          loss.Counts    `json:"drops"`
	Evictions      uint64         `json:"evictions"`
	Detaches       uint64         `json:"detaches"`
	Reclaims       uint64         `json:"reclaims"` // detaches without a bye: crashes, kills
	ReclaimedHolds uint64         `json:"reclaimed_holds"`
	RevokedHolds   uint64         `json:"revoked_holds"`
	Copies         uint64         `json:"copies"`
	SlotInfo       []SlotInfo     `json:"slot_info"`
	Consumers      []ConsumerInfo `json:"consumers"`
}

// DropsTotal is the sum of the drop table.
func (s *Snapshot) DropsTotal() uint64 { return s.Drops.Total() }

func snapshot(d dataRO, c ctlWords) Snapshot {
	g := d.geo
	now := clock.Nanos()
	s := Snapshot{
		Epoch: g.epoch, ProducerPid: int(g.producerPid), Published: d.published(),
		Slots: int(g.slots), SlotCapacity: g.capacity, IndexSize: int(g.indexCount), HoldQuota: int(g.holdQuota),
		HugePages: g.flags&flagHugePages != 0, HeartbeatPeriod: g.heartbeat, EvictAfter: g.evictAfter,
		Uptime:         time.Duration(now - d.startMono()),
		HeartbeatAge:   time.Duration(now - d.heartbeat()),
		Drops:          d.dropTable(),
		Evictions:      d.evictions(),
		Detaches:       d.detaches(),
		Reclaims:       d.reclaims(),
		ReclaimedHolds: d.reclaimedHolds(),
		RevokedHolds:   d.revokedHolds(),
		Copies:         d.copies(),
		SourceState:    SourceState(d.sourceState()).String(),
	}
	switch d.ringState() {
	case stateRunning:
		s.State = "running"
	case stateClosed:
		s.State = "closed"
	default:
		s.State = "init"
	}
	for k := uint32(0); k < g.slots; k++ {
		gen := d.gen(k)
		s.SlotInfo = append(s.SlotInfo, SlotInfo{Index: int(k), Generation: gen, Seq: d.seq(k),
			Published: gen&1 == 0, Holders: c.hold(k).Load()})
	}
	for i := 0; i < MaxConsumers; i++ {
		st := c.entryState(i).Load()
		if st != entryActive && st != entryEvicted {
			continue
		}
		ci := ConsumerInfo{
			Entry: i, Name: c.nameString(i), Pid: int(c.entryPid(i).Load()), UID: int(c.entryUID(i).Load()),
			Mode: Mode(c.entryMode(i).Load()).String(), State: "active", AttachedUnix: int64(c.attachNs(i).Load()),
			Cursor: c.cursor(i).Load(), Delivered: c.delivered(i).Load(), Skipped: c.skipped(i).Load(),
			Missed: c.missed(i).Load(), Held: c.held(i).Load(), LastSeq: c.lastSeq(i).Load(),
			LatencyNs: c.latency(i).Load(), BlockDrops: c.blockDrops(i).Load(),
			RevokedHolds: c.revokedHolds(i).Load(), RevokedSeen: c.revokedSeen(i).Load(),
		}
		if st == entryEvicted {
			ci.State = "evicted"
			ci.EvictReason = EvictReason(c.evictReason(i).Load()).String()
		}
		if s.Published >= ci.Cursor {
			ci.Lag = s.Published - ci.Cursor + 1
		}
		s.Consumers = append(s.Consumers, ci)
	}
	return s
}

// Snapshot returns the ring's state as the producer sees it.
func (p *Producer) Snapshot() Snapshot {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.unmapped {
		return p.final
	}
	return p.snapshotLocked()
}

func (p *Producer) snapshotLocked() Snapshot { return snapshot(p.ro, p.ctl) }

// Snapshot returns the ring's state as this Reader sees it (ringctl
// attaches as an observer and calls this).
func (r *Reader) Snapshot() (Snapshot, error) {
	if !r.enter() {
		return Snapshot{}, ErrClosed
	}
	defer r.exit()
	return snapshot(r.data, r.ctl), nil
}

// ConsumerPids appends the pids of the attached consumers (active or
// evicted) to dst and returns it: the cheap question a supervisor asks
// often, without building a Snapshot. It allocates nothing when dst has
// room for MaxConsumers.
func (p *Producer) ConsumerPids(dst []int) []int {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.unmapped {
		return dst
	}
	for i := 0; i < MaxConsumers; i++ {
		if st := p.ctl.entryState(i).Load(); st == entryActive || st == entryEvicted {
			dst = append(dst, int(p.ctl.entryPid(i).Load()))
		}
	}
	return dst
}
