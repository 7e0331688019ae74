package inspect

import (
	"fmt"

	"github.com/framering/framering/clock"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/consumers"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

// Record is one frame's JSON line.
//
// (Epoch, Seq) is the frame's identity: the ring's epoch (the producer run)
// and the ring sequence number it was published under. The archive stores
// the same pair in every record and names exported files by it, so a frame
// seen here is exported with "archiver export -seq Seq -epoch Epoch".
// FrameID is the source's own counter (a camera's block id may wrap): it
// is not an identity.
type Record struct {
	Seq         uint64            `json:"seq"`
	Epoch       Epoch             `json:"epoch"`
	FrameID     uint64            `json:"frame_id"`
	TimestampNs int64             `json:"timestamp_ns"`
	LatencyNs   int64             `json:"latency_ns"`
	Width       int               `json:"width"`
	Height      int               `json:"height"`
	Format      string            `json:"format"`
	Stats       *analysis.Stats   `json:"stats,omitempty"`
	Histogram   []uint64          `json:"histogram,omitempty"`
	DefectCount int               `json:"defect_count"`
	Truncated   bool              `json:"truncated,omitempty"`
	Overflow    bool              `json:"overflow,omitempty"`
	Defects     []analysis.Defect `json:"defects"`
	Error       string            `json:"error,omitempty"`
	// Skipped and missed frames so far, over the consumer's life.
	SkippedTotal uint64 `json:"skipped_total"`
	MissedTotal  uint64 `json:"missed_total"`
}

// noDefects makes "defects" an empty array, never null.
var noDefects = []analysis.Defect{}

// Epoch is a producer epoch, 16 hex digits in text and JSON.
type Epoch = ringbuf.Epoch

// Inspector analyzes frames in place and turns them into Records. It owns
// an analysis.Analyzer and the Record it returns, both reused: after
// warm-up, Inspect allocates nothing. It is for one goroutine.
type Inspector struct {
	a     *analysis.Analyzer
	rec   Record
	stats analysis.Stats
	lat   latencies
	tally tally
	// metrics, if not nil, counts for Prometheus (set by Run).
	metrics *Metrics
}

// tally is what the summary counts.
type tally struct {
	frames, errors, defects, defectFrames uint64
}

// NewInspector returns an Inspector with the given analysis options.
func NewInspector(opts analysis.Options) (*Inspector, error) {
	a, err := analysis.New(opts)
	if err != nil {
		return nil, fmt.Errorf("new inspector: %w", err)
	}
	return &Inspector{a: a}, nil
}

// Inspect analyzes f where it lies (zero-copy: in shared memory, which it
// only reads) and returns its Record, valid until the next Inspect. st is
// the consumer's counters, for the running totals. The frame may be
// released as soon as Inspect returns: the Record refers only to the
// Inspector's memory. An error means the frame could not be analyzed; the
// Record then carries it in Error.
func (in *Inspector) Inspect(f *consumers.Frame, st consumers.Stats) (*Record, error) {
	m := f.Meta()
	r := &in.rec
	*r = Record{Seq: m.Seq, Epoch: Epoch(f.Epoch()), FrameID: m.FrameID, TimestampNs: m.Timestamp,
		Width: int(m.Width), Height: int(m.Height), Format: m.Format.String(),
		SkippedTotal: st.Skipped, MissedTotal: st.Missed, Defects: noDefects}
	g := frame.Geometry{Width: int(m.Width), Height: int(m.Height), Stride: int(m.Stride), Format: m.Format}
	res, err := in.a.Analyze(f.Bytes(), g)
	r.LatencyNs = latency(m.Timestamp)
	if err != nil {
		in.tally.errors++
		r.Error = err.Error()
		return r, fmt.Errorf("inspect frame %d: %w", m.Seq, err)
	}
	in.lat.add(r.LatencyNs)
	in.stats = res.Stats
	r.Stats = &in.stats
	r.Histogram = res.Histogram
	r.DefectCount, r.Truncated, r.Overflow, r.Defects = res.DefectCount, res.Truncated, res.Overflow, res.Defects
	in.tally.frames++
	in.tally.defects += uint64(res.DefectCount)
	if res.DefectCount > 0 {
		in.tally.defectFrames++
	}
	return r, nil
}

// latency is the time from the capture timestamp to now, or -1 when the
// timestamp is missing or from another clock (in the future).
func latency(ts int64) int64 {
	if ts <= 0 {
		return -1
	}
	d := clock.Nanos() - ts
	if d < 0 {
		return -1
	}
	return d
}
