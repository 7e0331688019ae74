package ringbuf

// Snapshots: a consistent-enough picture of a ring for people (ringctl,
// the producer's periodic log line). Each word is loaded atomically; the
// snapshot as a whole is not atomic, and says so by its fields being
// counters that only grow.

import (
	"bytes"
	"fmt"
	"time"

	"github.com/framering/framering/clock"

	"github.com/framering/framering/shm"
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
	State        string `json:"state"` // active or evicted
	AttachedUnix int64  `json:"attached_unix_ns"`
	Cursor       uint64 `json:"cursor"`
	Lag          uint64 `json:"lag"` // published frames not yet passed
	Delivered    uint64 `json:"delivered"`
	Skipped      uint64 `json:"skipped"`
	Missed       uint64 `json:"missed"`
	Held         uint64 `json:"held"`
	LastSeq      uint64 `json:"last_seq"`
	LatencyNs    uint64 `json:"latency_ns"`
	BlockedDrops uint64 `json:"blocked_drops"`
}

// Snapshot is a ring's state as seen at one moment.
type Snapshot struct {
	Epoch         uint64         `json:"epoch"`
	ProducerPid   int            `json:"producer_pid"`
	State         string         `json:"state"`
	Published     uint64         `json:"published"`
	Slots         int            `json:"slots"`
	SlotCapacity  uint64         `json:"slot_capacity"`
	IndexSize     int            `json:"index_size"`
	HugePages     bool           `json:"huge_pages"`
	Uptime        time.Duration  `json:"uptime_ns"`
	HeartbeatAge  time.Duration  `json:"heartbeat_age_ns"`
	DropNoSlot    uint64         `json:"drop_no_slot"`
	DropUnderrun  uint64         `json:"drop_underrun"`
	DropSource    uint64         `json:"drop_source"`
	Evictions     uint64         `json:"evictions"`
	Reclaims      uint64         `json:"reclaims"`
	ReclaimedHold uint64         `json:"reclaimed_holds"`
	SlotInfo      []SlotInfo     `json:"slot_info"`
	Consumers     []ConsumerInfo `json:"consumers"`
}

type wordReader interface {
	load64(off uint64) uint64
	load32(off uint64) uint32
}

type ctlWords struct{ r *Reader }

func snapshot(g *geometry, data wordReader, ctl wordReader, ctlBytes []byte) Snapshot {
	now := clock.Nanos()
	s := Snapshot{
		Epoch: g.epoch, ProducerPid: int(g.producerPid), Published: data.load64(offPublished),
		Slots: int(g.slots), SlotCapacity: g.capacity, IndexSize: int(g.indexCount), HugePages: g.flags&flagHugePages != 0,
		Uptime:        time.Duration(now - int64(data.load64(offStartMonoNs))),
		HeartbeatAge:  time.Duration(now - int64(data.load64(offHeartbeatNs))),
		DropNoSlot:    data.load64(offDropNoSlot),
		DropUnderrun:  data.load64(offDropUnderrun),
		DropSource:    data.load64(offDropSource),
		Evictions:     data.load64(offEvictions),
		Reclaims:      data.load64(offReclaims),
		ReclaimedHold: data.load64(offReclaimedHold),
	}
	switch data.load32(offState) {
	case stateRunning:
		s.State = "running"
	case stateClosed:
		s.State = "closed"
	default:
		s.State = "init"
	}
	for k := uint32(0); k < g.slots; k++ {
		gen := data.load64(g.desc(k) + dGen)
		s.SlotInfo = append(s.SlotInfo, SlotInfo{Index: int(k), Generation: gen, Seq: data.load64(g.desc(k) + dSeq),
			Published: gen&1 == 0, Holders: ctl.load64(g.hold(k))})
	}
	for i := 0; i < MaxConsumers; i++ {
		base := g.entry(i)
		st := ctl.load32(base + eState)
		if st != entryActive && st != entryEvicted {
			continue
		}
		name := ctlBytes[base+eName : base+eName+maxNameLen]
		if j := bytes.IndexByte(name, 0); j >= 0 {
			name = name[:j]
		}
		c := ConsumerInfo{
			Entry: i, Name: string(name), Pid: int(ctl.load32(base + ePid)), UID: int(ctl.load32(base + eUID)),
			Mode: Mode(ctl.load32(base + eMode)).String(), State: "active", AttachedUnix: int64(ctl.load64(base + eAttachNs)),
			Cursor: ctl.load64(base + eCursor), Delivered: ctl.load64(base + eDelivered), Skipped: ctl.load64(base + eSkipped),
			Missed: ctl.load64(base + eMissed), Held: ctl.load64(base + eHeld), LastSeq: ctl.load64(base + eLastSeq),
			LatencyNs: ctl.load64(base + eLatencyNs), BlockedDrops: ctl.load64(base + eBlockDrops),
		}
		if st == entryEvicted {
			c.State = "evicted"
		}
		if s.Published >= c.Cursor {
			c.Lag = s.Published - c.Cursor + 1
		}
		s.Consumers = append(s.Consumers, c)
	}
	return s
}

type prodData struct{ p *Producer }

func (w prodData) load64(off uint64) uint64 { return w.p.dw[off/8].Load() }
func (w prodData) load32(off uint64) uint32 { return w.p.dw32[off/4].Load() }

type prodCtl struct{ p *Producer }

func (w prodCtl) load64(off uint64) uint64 { return w.p.cw[off/8].Load() }
func (w prodCtl) load32(off uint64) uint32 { return w.p.cw32[off/4].Load() }

type readerData struct {
	r   *Reader
	hdr shm.ReadUint32s
}

func (w readerData) load64(off uint64) uint64 { return w.r.dw.Load(off / 8) }
func (w readerData) load32(off uint64) uint32 { return w.hdr.Load(off / 4) }

func (w ctlWords) load64(off uint64) uint64 { return w.r.cw[off/8].Load() }
func (w ctlWords) load32(off uint64) uint32 { return w.r.cw32[off/4].Load() }

// Snapshot returns the ring's state as the producer sees it.
func (p *Producer) Snapshot() Snapshot {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed.Load() {
		return p.final
	}
	return p.snapshotLocked()
}

func (p *Producer) snapshotLocked() Snapshot {
	return snapshot(&p.geo, prodData{p}, prodCtl{p}, p.ctl.Bytes())
}

// Snapshot returns the ring's state as this Reader sees it (ringctl
// attaches as an observer and calls this).
func (r *Reader) Snapshot() (Snapshot, error) {
	if !r.enter() {
		return Snapshot{}, ErrClosed
	}
	defer r.exit()
	hdr, err := r.data.ReadUint32sAt(0, headerSize/4)
	if err != nil {
		return Snapshot{}, err
	}
	return snapshot(&r.geo, readerData{r: r, hdr: hdr}, ctlWords{r}, r.ctl.Bytes()), nil
}
