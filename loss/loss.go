// Package loss is the one table of the causes for which a frame can be
// lost between the camera and a consumer's disk. Every report uses it: the
// ring's drop counters (docs/LAYOUT.md, "Drop causes"), the producer's
// stats, ringctl and the metrics, the analyzer's and archiver's summaries,
// and the archive's gap records (archive/FORMAT.md). A cause is a small
// code with a name; the code is what shared memory and files carry, the
// name is what people and JSON see.
//
// Codes are part of two formats and never change meaning. New causes take
// the next free code; the ring has a counter for every code below Max, so
// a new cause needs no new layout version. Codes 0-10 are the archive
// format's first causes, kept so that old archives read back unchanged.
package loss

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Cause is why frames were lost.
type Cause uint8

// The causes. Who counts each is in its Where.
const (
	Unknown         Cause = 0  // not said: only read back from old archives, never written
	ProducerDrop    Cause = 1  // old archives: dropped at the producer, cause not recorded
	Evicted         Cause = 2  // the consumer was evicted; frames it had not read were overwritten
	DiskFull        Cause = 3  // the archive's filesystem was full
	WriteError      Cause = 4  // another write error of the archive
	Rejected        Cause = 5  // the frame was refused (metadata the consumer cannot store)
	ConsumerDown    Cause = 6  // published while the consumer was not attached (down, restarting), or in flight at its stop
	Underrun        Cause = 7  // the source had no buffer queued when a frame was due
	SourceError     Cause = 8  // the source delivered a failed frame
	ProducerRestart Cause = 9  // lost while the producer restarted
	Missed          Cause = 10 // published, and overwritten before the consumer could take it
	Blocked         Cause = 11 // no free slot: consumers' holds or a lossless cursor kept every slot
	Incomplete      Cause = 12 // the camera delivered an incomplete frame (lost packets)
	Timeout         Cause = 13 // the camera's frame did not complete in time
	CameraLost      Cause = 14 // due while the camera was unreachable
	Discarded       Cause = 15 // filled, but thrown away when acquisition stopped
	SizeMismatch    Cause = 16 // the source delivered a frame of another size or geometry than configured
	ReplayGap       Cause = 17 // missing from the archive being replayed
	Retention       Cause = 18 // deleted from an archive by its retention policy

	// Several is not a cause of its own: a published frame's drops_before
	// (docs/LAYOUT.md 8.5) uses it when more than four causes preceded one
	// frame, for the sum of the fourth and later ones.
	Several Cause = 63
)

// Max is the number of cause codes the ring's drop table has room for:
// codes 0..Max-1.
const Max = 64

// Where says which part of the pipeline counts a cause.
type Where uint8

const (
	// Legacy causes are only read back from old archives.
	Legacy Where = iota
	// Ring causes are counted by the producer in the ring's drop table:
	// the frame never got a sequence number.
	Ring
	// Consumer causes are frames that were published (or would have been)
	// but that a consumer did not get; each consumer counts its own.
	Consumer
	// Archive causes are frames an archiver received but did not keep.
	Archive
)

var whereNames = [...]string{Legacy: "legacy", Ring: "ring", Consumer: "consumer", Archive: "archive"}

func (w Where) String() string {
	if int(w) < len(whereNames) {
		return whereNames[w]
	}
	return "where(" + strconv.Itoa(int(w)) + ")"
}

type entry struct {
	name  string
	where Where
	text  string
}

var table = [...]entry{
	Unknown:         {"unknown", Legacy, "not said (old archives only)"},
	ProducerDrop:    {"producer_drop", Legacy, "dropped at the producer, cause not recorded (old archives only)"},
	Evicted:         {"evicted", Consumer, "the consumer was evicted; frames it had not read were overwritten"},
	DiskFull:        {"disk_full", Archive, "the archive's filesystem was full"},
	WriteError:      {"write_error", Archive, "another write error of the archive"},
	Rejected:        {"rejected", Archive, "the frame was refused: metadata the consumer cannot store"},
	ConsumerDown:    {"consumer_down", Consumer, "published while the consumer was not attached, or in flight when it stopped"},
	Underrun:        {"underrun", Ring, "grabber underrun: the source had no buffer queued when a frame was due"},
	SourceError:     {"source_error", Ring, "the source delivered a failed frame"},
	ProducerRestart: {"producer_restart", Consumer, "lost while the producer restarted"},
	Missed:          {"missed", Consumer, "published, and overwritten before the consumer could take it"},
	Blocked:         {"blocked", Ring, "blocked by consumers: their holds or a lossless cursor kept every slot"},
	Incomplete:      {"incomplete", Ring, "the camera delivered an incomplete frame (lost packets)"},
	Timeout:         {"timeout", Ring, "the camera's frame did not complete in time"},
	CameraLost:      {"camera_lost", Ring, "due while the camera was unreachable"},
	Discarded:       {"discarded", Ring, "filled, but thrown away when acquisition stopped"},
	SizeMismatch:    {"size_mismatch", Ring, "the source delivered a frame of another size or geometry than configured"},
	ReplayGap:       {"replay_gap", Ring, "missing from the archive being replayed"},
	Retention:       {"retention", Archive, "deleted from an archive by its retention policy"},
}

var several = entry{"several", Ring, "more than four causes before one frame (only in a descriptor's drops_before)"}

func (c Cause) entry() (entry, bool) {
	if int(c) < len(table) {
		return table[c], true
	}
	if c == Several {
		return several, true
	}
	return entry{}, false
}

// Known returns every defined cause, in code order.
func Known() []Cause {
	out := make([]Cause, 0, len(table)+1)
	for i := range table {
		out = append(out, Cause(i))
	}
	return append(out, Several)
}

// Defined reports whether c is a cause this build knows.
func (c Cause) Defined() bool { _, ok := c.entry(); return ok }

// String returns the cause's name (snake_case, as in JSON, metrics labels
// and the specifications), or "cause_N" for a code this build does not
// know (a newer writer's).
func (c Cause) String() string {
	if e, ok := c.entry(); ok {
		return e.name
	}
	return "cause_" + strconv.Itoa(int(c))
}

// Description is one line saying what the cause means.
func (c Cause) Description() string {
	if e, ok := c.entry(); ok {
		return e.text
	}
	return "a cause this version does not know"
}

// Where says which part of the pipeline counts the cause.
func (c Cause) Where() Where {
	if e, ok := c.entry(); ok {
		return e.where
	}
	return Legacy
}

// Parse returns the cause named s (a name as String returns it, including
// "cause_N").
func Parse(s string) (Cause, error) {
	for _, c := range Known() {
		if c.String() == s {
			return c, nil
		}
	}
	if len(s) > len("cause_") && s[:len("cause_")] == "cause_" {
		if n, err := strconv.ParseUint(s[len("cause_"):], 10, 8); err == nil {
			return Cause(n), nil
		}
	}
	return 0, fmt.Errorf("parse loss cause %q: %w", s, ErrUnknownCause)
}

// MarshalText writes the cause's name.
func (c Cause) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a cause's name.
func (c *Cause) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// ErrUnknownCause is returned by Parse when a name is no cause's.
var ErrUnknownCause = fmt.Errorf("unknown loss cause")

// Counts is a count per cause code, the shape of the ring's drop table.
// The zero value is empty; it is a plain array, so copying it allocates
// nothing.
type Counts [Max]uint64

// Total is the sum over every cause.
func (c Counts) Total() uint64 {
	var t uint64
	for _, n := range c {
		t += n
	}
	return t
}

// Sub returns c - o cause by cause (for deltas between two readings of
// monotonic counters).
func (c Counts) Sub(o Counts) Counts {
	for i := range c {
		c[i] -= o[i]
	}
	return c
}

// Nonzero returns the causes with a nonzero count, in code order.
func (c Counts) Nonzero() []Cause {
	var out []Cause
	for i, n := range c {
		if n != 0 {
			out = append(out, Cause(i))
		}
	}
	return out
}

// Map returns the nonzero counts by name (for JSON reports).
func (c Counts) Map() map[string]uint64 {
	m := map[string]uint64{}
	for i, n := range c {
		if n != 0 {
			m[Cause(i).String()] = n
		}
	}
	return m
}

// MarshalJSON writes the nonzero counts as an object keyed by cause name.
func (c Counts) MarshalJSON() ([]byte, error) { return json.Marshal(c.Map()) }

// UnmarshalJSON reads an object keyed by cause name (names of unknown
// causes as "cause_N").
func (c *Counts) UnmarshalJSON(b []byte) error {
	var m map[string]uint64
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("decode loss counts: %w", err)
	}
	*c = Counts{}
	for name, n := range m {
		cause, err := Parse(name)
		if err != nil {
			return fmt.Errorf("decode loss counts: %w", err)
		}
		if int(cause) >= Max {
			return fmt.Errorf("decode loss counts: %w: code %d", ErrUnknownCause, cause)
		}
		c[cause] = n
	}
	return nil
}
