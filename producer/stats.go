package producer

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/framering/framering/loss"
)

// Stats are a producer's counts. Every frame id the grabber consumed is
// counted exactly once, so that once Run has returned
//
//	Frames == Published + DropTotal()
//
// The drops are the ring's drop table (one source: what every consumer
// and ringctl see), by cause. While Run runs, frames being filled or
// waiting to be dequeued are in Frames and not yet elsewhere; a Run that
// failed may leave the frame it held unaccounted.
type Stats struct {
	Ring   string `json:"ring"`
	Source string `json:"source"`
	Mode   string `json:"mode"` // zero-copy or safe-copy
	// Frames is the number of frame ids the grabber has consumed, delivered
	// or lost (its Counters.NextFrameID).
	Frames    uint64 `json:"frames"`
	Published uint64 `json:"published"`
	// Drops are the frames lost before they got a sequence number, by
	// cause (the ring's drop table); in JSON an object keyed by cause name.
	Drops loss.Counts `json:"drops"`
	// Copies counts frames copied into their slot (safe-copy mode, or a
	// source that would not write into ring memory); CopiedBytes is what
	// safe-copy mode copied.
	Copies      uint64        `json:"copies"`
	CopiedBytes uint64        `json:"copied_bytes"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	// ExitWatch is the kernel exit observer's mode ("tracepoint/group_dead",
	// "raw_tracepoint/leader", ...), "unavailable", or "" when not asked
	// for; KernelExits counts the consumer exits it reported.
	ExitWatch   string `json:"exit_watch,omitempty"`
	KernelExits uint64 `json:"kernel_exits"`
}

// DropTotal is the number of frames dropped, every cause.
func (s Stats) DropTotal() uint64 { return s.Drops.Total() }

// Accounted is the number of frame ids whose fate is known:
// Published + DropTotal. It equals Frames once Run has returned.
func (s Stats) Accounted() uint64 { return s.Published + s.DropTotal() }

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
		Drops: p.ring.Drops(), CopiedBytes: p.copied.Load(), KernelExits: p.kernelExits.Load(),
	}
	s.Copies = p.ring.Snapshot().Copies
	if m, ok := p.exitWatch.Load().(string); ok {
		s.ExitWatch = m
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
	p.log.Info("producer stats", "fps", round1(fps), "published", s.Published, "frames", s.Frames,
		"dropped", snap.Drops.Total(), slog.Any("drops", snap.Drops.Map()), "source", snap.SourceState,
		"consumers", len(snap.Consumers), "evictions", snap.Evictions, "detaches", snap.Detaches,
		"reclaims", snap.Reclaims, "reclaimed_holds", snap.ReclaimedHolds, "revoked_holds", snap.RevokedHolds,
		"copies", snap.Copies)
	for _, c := range snap.Consumers {
		p.log.Info("consumer stats", "name", c.Name, "pid", c.Pid, "mode", c.Mode, "state", c.State,
			"lag", c.Lag, "delivered", c.Delivered, "skipped", c.Skipped, "missed", c.Missed,
			"held", c.Held, "block_drops", c.BlockDrops, "latency", time.Duration(c.LatencyNs).String())
	}
	return s
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
