package producer

import (
	"context"
	"log/slog"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/framering/framering/native"
)

// Stats are a producer's counts. Every frame id the grabber consumed is
// counted exactly once, so that once Run has returned
//
//	Frames == Published + DropNoSlot + DropUnderrun + DropSource + Discarded
//
// While Run runs, frames being filled or waiting to be dequeued are in
// Frames and not yet elsewhere; a Run that failed may leave the frame it
// held unaccounted.
type Stats struct {
	Ring   string `json:"ring"`
	Source string `json:"source"`
	Mode   string `json:"mode"` // zero-copy or safe-copy
	// Frames is the number of frame ids the grabber has consumed, delivered
	// or lost (its Counters.NextFrameID).
	Frames    uint64 `json:"frames"`
	Published uint64 `json:"published"`
	// DropNoSlot counts frames dropped because no ring slot was free
	// (safe-copy mode; zero-copy mode loses them as underruns instead).
	DropNoSlot uint64 `json:"drop_no_slot"`
	// DropUnderrun counts frames the grabber lost because no buffer was
	// queued when they were due.
	DropUnderrun uint64 `json:"drop_underrun"`
	// DropSource counts incomplete or malformed frames.
	DropSource uint64 `json:"drop_source"`
	// Discarded counts frames filled but not yet dequeued when the grabber
	// was stopped at shutdown.
	Discarded uint64 `json:"discarded"`
	// CopiedBytes is what safe-copy mode copied (0 in zero-copy mode).
	CopiedBytes uint64        `json:"copied_bytes"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	// ExitWatch is the kernel exit observer's mode ("tracepoint/group_dead",
	// "raw_tracepoint/leader", ...), "unavailable", or "" when not asked
	// for; KernelExits counts the consumer exits it reported.
	ExitWatch   string `json:"exit_watch,omitempty"`
	KernelExits uint64 `json:"kernel_exits"`
	// SourceStats are the grabber's own counters, when it has some
	// (native.StatsReporter): a camera's stream statistics (completed
	// buffers, missing and resent packets, resend requests, ...) and its
	// disconnects and reconnects.
	SourceStats map[string]uint64 `json:"source_stats,omitempty"`
}

// Drops is the sum of the three drop causes the ring records.
func (s Stats) Drops() uint64 { return s.DropNoSlot + s.DropUnderrun + s.DropSource }

// Accounted is the number of frame ids whose fate is known:
// Published + Drops + Discarded. It equals Frames once Run has returned.
func (s Stats) Accounted() uint64 { return s.Published + s.Drops() + s.Discarded }

// FPS is the average published frame rate over Elapsed.
func (s Stats) FPS() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Published) / s.Elapsed.Seconds()
}

// Stats returns the producer's counts so far (final once Run returned).
func (p *Producer) Stats() Stats {
	s := Stats{
		Ring: p.ring.Path(), Source: p.cfg.Source, Mode: p.cfg.mode(),
		Frames: p.frames.Load(), Published: p.published.Load(),
		DropNoSlot: p.dropNoSlot.Load(), DropUnderrun: p.dropUnderrun.Load(), DropSource: p.dropSource.Load(),
		Discarded: p.discarded.Load(), CopiedBytes: p.copied.Load(), KernelExits: p.kernelExits.Load(),
	}
	if m, ok := p.exitWatch.Load().(string); ok {
		s.ExitWatch = m
	}
	if r, ok := p.grab.(native.StatsReporter); ok {
		s.SourceStats = map[string]uint64{}
		for _, st := range r.SourceStats(nil) {
			s.SourceStats[st.Name] = st.Value
		}
	}
	if start := p.startNs.Load(); start != 0 {
		end := p.endNs.Load()
		if end == 0 {
			end = time.Now().UnixNano()
		}
		s.Elapsed = time.Duration(end - start)
	}
	return s
}

// statsLoop writes the periodic stats lines until ctx ends.
func (p *Producer) statsLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.StatsInterval)
	defer t.Stop()
	last, lastAt := p.Stats(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			last, lastAt = p.logStats(last, lastAt, now), now
		}
	}
}

// logStats writes one line for the ring and one per consumer, and returns
// the stats it used, for the next line's rate.
func (p *Producer) logStats(prev Stats, prevAt, now time.Time) Stats {
	s := p.Stats()
	snap, err := p.Snapshot()
	if err != nil {
		return s // the ring closed under us: shutdown is logging
	}
	fps := 0.0
	if dt := now.Sub(prevAt).Seconds(); dt > 0 {
		fps = float64(s.Published-prev.Published) / dt
	}
	attrs := []any{"fps", round1(fps), "published", s.Published, "frames", s.Frames,
		"drop_no_slot", snap.DropNoSlot, "drop_underrun", snap.DropUnderrun, "drop_source", snap.DropSource,
		"consumers", len(snap.Consumers), "evictions", snap.Evictions, "reclaims", snap.Reclaims,
		"reclaimed_holds", snap.ReclaimedHold}
	if len(s.SourceStats) > 0 {
		names := slices.Sorted(maps.Keys(s.SourceStats))
		group := make([]any, 0, len(names))
		for _, n := range names {
			group = append(group, slog.Uint64(n, s.SourceStats[n]))
		}
		attrs = append(attrs, slog.Group("source", group...))
	}
	p.log.Info("producer stats", attrs...)
	for _, c := range snap.Consumers {
		p.log.Info("consumer stats", "name", c.Name, "pid", c.Pid, "mode", c.Mode, "state", c.State,
			"lag", c.Lag, "delivered", c.Delivered, "skipped", c.Skipped, "missed", c.Missed,
			"held", c.Held, "blocked_drops", c.BlockedDrops, "latency", time.Duration(c.LatencyNs))
	}
	return s
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
