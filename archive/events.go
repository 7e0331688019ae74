package archive

// The events index of an events archive (archiver run -record events):
// DIR/events.jsonl, one JSON object per event, appended after the event's
// frames are durable (FORMAT.md, "Events").

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// EventsFile is the events index in an events archive's directory.
const EventsFile = "events.jsonl"

// Trigger is what set an event off.
type Trigger struct {
	Source      string          `json:"source"` // "results", "external", "signal"
	Epoch       Epoch           `json:"epoch"`
	Seq         uint64          `json:"seq"`
	TimestampNs int64           `json:"timestamp_ns"`
	Label       string          `json:"label,omitempty"`
	DefectCount int             `json:"defect_count,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"` // the analyzer's line
}

// Event is one line of events.jsonl.
type Event struct {
	ID    uint64 `json:"id"`
	Epoch Epoch  `json:"epoch"`
	// FirstSeq..LastSeq are the ring seqs recorded; Frames how many
	// frames (Missing: seqs in the range the archiver did not get).
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Frames   uint64 `json:"frames"`
	Missing  uint64 `json:"missing"`
	// After is the event this one continues (its window reached back
	// into that event's frames, which are not stored twice; FirstSeq is
	// then after that event's LastSeq); 0: none.
	After uint64 `json:"after,omitempty"`
	// PreMissing: frames of the pre-trigger window that were no longer in
	// the buffer (the trigger came too late or the buffer is too small).
	PreMissing uint64 `json:"pre_missing"`
	// FirstRecord, LastRecord are the archive's record seqs.
	FirstRecord uint64 `json:"first_record"`
	LastRecord  uint64 `json:"last_record"`
	// FirstTimestampNs, LastTimestampNs: capture times of the first and last frame.
	FirstTimestampNs int64 `json:"first_timestamp_ns"`
	LastTimestampNs  int64 `json:"last_timestamp_ns"`
	// Triggers (at most 16 listed), TriggerCount all of them.
	Triggers     []Trigger `json:"triggers"`
	TriggerCount uint64    `json:"trigger_count"`
	// Complete is false when the run ended (or the producer restarted)
	// before the post-trigger window did.
	Complete   bool      `json:"complete"`
	Pre        string    `json:"pre"`
	Post       string    `json:"post"`
	RecordedAt time.Time `json:"recorded_at"`
}

// ReadEvents reads an events archive's events.jsonl; lines that are not
// valid events (a torn last line after a crash) are skipped.
func ReadEvents(dir string) ([]Event, error) {
	f, err := os.Open(filepath.Join(dir, EventsFile))
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer f.Close()
	var evs []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		ev, err := ParseEvent(sc.Bytes())
		if err != nil {
			continue
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		return evs, fmt.Errorf("events: %w", err)
	}
	return evs, nil
}

// ParseEvent validates one events.jsonl line.
func ParseEvent(b []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, err
	}
	if ev.ID == 0 || ev.FirstSeq == 0 || ev.LastSeq < ev.FirstSeq || ev.LastRecord < ev.FirstRecord || ev.Frames == 0 ||
		ev.Frames > ev.LastSeq-ev.FirstSeq+1 || ev.LastSeq == math.MaxUint64 {
		return ev, fmt.Errorf("%w: event %d, seqs %d..%d, %d frames, records %d..%d", ErrInvalid, ev.ID, ev.FirstSeq, ev.LastSeq, ev.Frames, ev.FirstRecord, ev.LastRecord)
	}
	return ev, nil
}

// FindEvent returns the event with id of the events archive in dir.
func FindEvent(dir string, id uint64) (Event, error) {
	evs, err := ReadEvents(dir)
	if err != nil {
		return Event{}, err
	}
	for _, ev := range evs {
		if ev.ID == id {
			return ev, nil
		}
	}
	return Event{}, fmt.Errorf("no event %d in %s", id, dir)
}
