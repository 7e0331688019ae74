package inspect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/consumers"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/results"
	"github.com/framering/framering/ringbuf"
)

// Config is what the analyzer command's flags set.
type Config struct {
	// Consumer says which ring and how to consume it (Logger is filled in
	// from Run's logger when nil).
	Consumer consumers.Options
	// Analysis configures the per-frame analysis.
	Analysis analysis.Options
	// Frames stops the run after this many frames were analyzed (0: no
	// limit).
	Frames uint64
	// Duration stops the run after this long (0: no limit).
	Duration time.Duration
	// Metrics, if not nil, counts the run for Prometheus (see NewMetrics).
	Metrics *Metrics
	// Results, if not nil, gets every frame's line as it is written: the
	// live results stream (package results, docs/RESULTS.md).
	Results *results.Server
}

// Summary is the last JSON line, under the key "summary".
type Summary struct {
	// Frames analyzed, and frames that could not be (bad geometry).
	Frames uint64 `json:"frames"`
	Errors uint64 `json:"errors"`
	// Skipped (lossy: passed over for a newer frame) and missed (overwritten
	// before they could be read) frames, over the run.
	Skipped uint64 `json:"skipped"`
	Missed  uint64 `json:"missed"`
	// Reattaches counts producer restarts followed (and re-attaches after
	// an eviction); Evictions the times the producer evicted the analyzer,
	// LostToEviction the frames it never saw because of them; Revoked the
	// frames whose hold was revoked while analyzed, Torn those of them that
	// changed meanwhile (their results were discarded).
	Reattaches     uint64 `json:"reattaches"`
	Evictions      uint64 `json:"evictions"`
	LostToEviction uint64 `json:"lost_to_eviction"`
	// RingDrops are the frames the producer dropped before publishing
	// them, by cause: the ring's drop table (summed over restarts).
	RingDrops loss.Counts `json:"ring_drops"`
	Revoked   uint64      `json:"revoked"`
	Torn      uint64      `json:"torn"`
	// Defects is the number of defects found in all frames; DefectFrames
	// the number of frames with at least one.
	Defects      uint64 `json:"defects"`
	DefectFrames uint64 `json:"defect_frames"`
	// Latency from capture to result, over the frames with a timestamp
	// (p50 and p99 within 1%).
	LatencyP50Ns int64 `json:"latency_p50_ns"`
	LatencyP99Ns int64 `json:"latency_p99_ns"`
	LatencyMaxNs int64 `json:"latency_max_ns"`
	// ElapsedNs is the run's wall time from its start (waiting for a
	// producer included) to the end, and FramesPerSec the analyzed frames
	// over it.
	ElapsedNs    int64   `json:"elapsed_ns"`
	FramesPerSec float64 `json:"frames_per_sec"`
	// End says why the run ended: "signal or deadline", "frame limit",
	// "ring closed", or the error.
	End string `json:"end"`
}

type summaryLine struct {
	Summary *Summary `json:"summary"`
}

// Run attaches to the ring as cfg says, analyzes frames until ctx ends,
// the frame or time limit is reached, or the consumer stops, writing a JSON
// line per frame to w and a summary line at the end. It returns the summary
// and the error that ended the run: nil for ctx, a limit, or a producer
// that closed the ring (without Reattach); otherwise the consumer's error
// (ErrProducerGone, ErrEvicted, ...) or a write error.
func Run(ctx context.Context, cfg Config, w io.Writer, log *slog.Logger) (*Summary, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Consumer.Logger == nil {
		cfg.Consumer.Logger = log
	}
	in, err := NewInspector(cfg.Analysis)
	if err != nil {
		return nil, err
	}
	in.metrics = cfg.Metrics
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	start := time.Now()
	c, err := consumers.Attach(ctx, cfg.Consumer)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped while waiting for a producer: an empty run, as
			// long as the wait.
			sum := in.summary(nil, start, "signal or deadline before a producer came")
			return sum, writeSummary(w, sum)
		}
		return nil, err
	}
	defer c.Close()
	return in.run(ctx, c, start, cfg.Frames, w, cfg.Results, log)
}

// run is Run's loop over an attached consumer.
func (in *Inspector) run(ctx context.Context, c *consumers.Consumer, start time.Time, limit uint64, w io.Writer, pub *results.Server, log *slog.Logger) (*Summary, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	// Each line is encoded once into line, then written and published.
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	var werr error
	end := ""
	for f := range c.Frames(ctx) {
		rec, err := in.Inspect(f, c.Stats())
		in.metrics.observe(rec, err)
		// The record lives in the Inspector's memory: let the producer
		// have the slot back before we spend time writing. If the producer
		// evicted us meanwhile and reused the slot, what we computed came
		// from torn bytes: it is not written (Summary.Torn counts it).
		if rerr := f.Release(); errors.Is(rerr, consumers.ErrRevoked) && errors.Is(rerr, ringbuf.ErrOverwritten) {
			log.Warn("frame changed while it was analyzed (evicted, its lease revoked); result discarded", "seq", rec.Seq)
			continue
		}
		if err != nil {
			log.Warn("frame not analyzed", "seq", rec.Seq, "err", err)
		}
		line.Reset()
		if werr = enc.Encode(rec); werr == nil {
			if _, werr = bw.Write(line.Bytes()); werr == nil {
				werr = bw.Flush() // one line per frame, as it happens
			}
		}
		if werr == nil && pub != nil {
			pub.Publish(bytes.TrimSuffix(line.Bytes(), []byte{'\n'}))
		}
		if werr != nil {
			werr = fmt.Errorf("write result: %w", werr)
			break
		}
		if limit > 0 && in.tally.frames+in.tally.errors >= limit {
			end = "frame limit"
			break
		}
	}
	ringDrops := c.RingDrops()
	err := werr
	if err == nil {
		err = c.Err()
	}
	switch {
	case end != "":
	case err == nil:
		end = "signal or deadline"
	case errors.Is(err, consumers.ErrClosed):
		end, err = "ring closed", nil
	default:
		end = err.Error()
	}
	st := c.Stats()
	sum := in.summary(&st, start, end)
	sum.RingDrops = ringDrops
	log.Info("analyzer done", "frames", sum.Frames, "errors", sum.Errors, "skipped", sum.Skipped, "missed", sum.Missed,
		"defects", sum.Defects, "latency_p50", time.Duration(sum.LatencyP50Ns), "latency_p99", time.Duration(sum.LatencyP99Ns),
		"latency_max", time.Duration(sum.LatencyMaxNs), "end", sum.End)
	if werr == nil {
		if serr := writeSummary(bw, sum); serr != nil {
			return sum, serr
		}
	}
	return sum, err
}

func (in *Inspector) summary(st *consumers.Stats, start time.Time, end string) *Summary {
	elapsed := time.Since(start)
	s := &Summary{Frames: in.tally.frames, Errors: in.tally.errors, Defects: in.tally.defects,
		DefectFrames: in.tally.defectFrames, LatencyP50Ns: in.lat.quantile(0.50), LatencyP99Ns: in.lat.quantile(0.99),
		LatencyMaxNs: in.lat.max, ElapsedNs: int64(elapsed), End: end}
	if st != nil {
		s.Skipped, s.Missed, s.Reattaches = st.Skipped, st.Missed, st.Reattaches
		s.Evictions, s.LostToEviction, s.Revoked, s.Torn = st.Evictions, st.LostToEviction, st.Revoked, st.Torn
	}
	if elapsed > 0 {
		s.FramesPerSec = float64(s.Frames) / elapsed.Seconds()
	}
	return s
}

func writeSummary(w io.Writer, s *Summary) error {
	b, err := json.Marshal(summaryLine{s})
	if err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	if bw, ok := w.(*bufio.Writer); ok {
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	}
	return nil
}
