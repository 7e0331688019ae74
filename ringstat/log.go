package ringstat

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"
)

// The report as a log line and as a progress line: the producer's periodic
// stats line and the pipeline's progress line are these, not figures of
// their own.

func round1(x float64) float64 { return math.Round(x*10) / 10 }

// LogAttrs returns the ring's figures as log attributes (the producer's
// "producer stats" line): the publish rate over the window ("fps"),
// published, dropped and drops by cause, the producer and source state,
// and the consumer table's counters.
func (r *Report) LogAttrs() []slog.Attr {
	p := r.Producer
	return []slog.Attr{
		slog.Float64("fps", round1(p.Rate)), slog.Uint64("published", p.Published),
		slog.Uint64("dropped", r.Drops.Total), slog.Any("drops", r.Drops.ByCause), slog.Float64("drop_rate", round1(r.Drops.Rate)),
		slog.String("state", p.State), slog.String("source", p.Source), slog.Bool("stalled", p.Stalled),
		slog.Int("consumers", len(r.Consumers)), slog.Int("held_slots", r.SlotCounts.Held),
		slog.Uint64("evictions", r.Evictions), slog.Uint64("detaches", r.Detaches), slog.Uint64("reclaims", r.Reclaims),
		slog.Uint64("reclaimed_holds", r.ReclaimedHolds), slog.Uint64("revoked_holds", r.RevokedHolds),
		slog.Uint64("copies", r.Copies),
	}
}

// LogAttrs returns one consumer's figures as log attributes (the
// producer's "consumer stats" line).
func (c *Consumer) LogAttrs() []slog.Attr {
	a := []slog.Attr{
		slog.String("name", c.Name), slog.Int("pid", c.Pid), slog.String("mode", c.Mode), slog.String("state", c.State),
		slog.Uint64("lag", c.Lag), slog.Uint64("delivered", c.Delivered), slog.Float64("fps", round1(c.Rate)),
		slog.Uint64("skipped", c.Skipped), slog.Uint64("missed", c.Missed), slog.Uint64("held", c.Held),
		slog.Uint64("block_drops", c.BlockDrops), slog.String("latency", time.Duration(c.LatencyNs).String()),
		slog.Uint64("revoked_holds", c.RevokedHolds), slog.Uint64("revoked_seen", c.RevokedSeen),
	}
	if c.EvictReason != "" {
		a = append(a, slog.String("evict_reason", c.EvictReason))
	}
	return a
}

// Line returns the report in one line for a terminal: published and its
// rate, drops by cause, and each consumer's mode and lag, consumers by
// name (not by table entry, which depends on who attached first), so that
// successive lines and runs read alike.
func (r *Report) Line() string {
	var b strings.Builder
	rate := "-"
	if r.WindowNs > 0 {
		rate = fmt.Sprintf("%.1f/s", r.Producer.Rate)
	}
	fmt.Fprintf(&b, "published %-7d %-8s dropped %d", r.Producer.Published, rate, r.Drops.Total)
	if r.Drops.Total > 0 {
		fmt.Fprintf(&b, " (%s)", causes(r.Drops.ByCause))
	}
	if r.Producer.Stalled {
		b.WriteString("  STALLED")
	}
	cs := slices.Clone(r.Consumers)
	slices.SortStableFunc(cs, func(a, b Consumer) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range cs {
		fmt.Fprintf(&b, "  %s(%s) lag %d", c.Name, c.Mode, c.Lag)
		if c.State != "active" {
			fmt.Fprintf(&b, " %s", consumerState(c))
		}
	}
	return b.String()
}
