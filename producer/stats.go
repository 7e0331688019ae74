package producer

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/native"
	"github.com/framering/framering/ringstat"
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
	// SourceStats are the grabber's own counters, when it has some
	// (native.StatsReporter): a camera's stream statistics (completed
	// buffers, missing and resent packets, resend requests, ...) and its
	// disconnects and reconnects.
	SourceStats map[string]uint64 `json:"source_stats,omitempty"`
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
	var rates ringstat.Rates // since the previous line
	p.logStats(&rates, time.Now(), false)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.logStats(&rates, now, true)
		}
	}
}

// logStats writes one line for the ring and one per consumer, from the
// ring's report (package ringstat: the figures every view shows), with
// rates since the previous call. With log false it only feeds rates.
func (p *Producer) logStats(rates *ringstat.Rates, now time.Time, log bool) {
	snap, err := p.Snapshot()
	if err != nil {
		return // the ring closed under us: shutdown is logging
	}
	rep := rates.Report(p.cfg.Name, p.ring.Path(), snap, now)
	if !log {
		return
	}
	// Frames counts the grabber's frame ids, published, dropped or in
	// flight: the one figure that is the producer's own.
	attrs := append(rep.LogAttrs(), slog.Uint64("frames", p.frames.Load()))
	if src := p.sourceStatAttrs(); len(src) > 0 {
		attrs = append(attrs, slog.Group("source_stats", src...))
	}
	p.log.LogAttrs(context.Background(), slog.LevelInfo, "producer stats", attrs...)
	for i := range rep.Consumers {
		p.log.LogAttrs(context.Background(), slog.LevelInfo, "consumer stats", rep.Consumers[i].LogAttrs()...)
	}
}

// sourceStatAttrs are the grabber's own nonzero counters (a camera has a
// score of them, mostly 0), sorted by name, for the stats line.
func (p *Producer) sourceStatAttrs() []any {
	r, ok := p.grab.(native.StatsReporter)
	if !ok {
		return nil
	}
	stats := r.SourceStats(nil)
	slices.SortFunc(stats, func(a, b native.SourceStat) int { return strings.Compare(a.Name, b.Name) })
	var out []any
	for _, st := range stats {
		if st.Value != 0 {
			out = append(out, slog.Uint64(st.Name, st.Value))
		}
	}
	return out
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
