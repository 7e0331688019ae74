package ringstat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

func newTab(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// dur prints a duration for people: whole seconds past a minute, three
// significant digits below.
func dur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d <= 0:
		return "-"
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d >= time.Microsecond:
		return d.Round(10 * time.Nanosecond).String()
	}
	return d.String()
}

func size(b uint64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", b>>30)
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

func yesno(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// WriteList writes List's entries as a table.
func WriteList(w io.Writer, entries []Entry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintf(w, "no rings in %s\n", ringbuf.RuntimeDir())
		return err
	}
	tw := newTab(w)
	fmt.Fprintln(tw, "NAME\tSTATUS\tPID\tEPOCH\tSTATE\tUPTIME\tPUBLISHED\tCONSUMERS")
	for _, e := range entries {
		switch e.Status {
		case "live":
			fmt.Fprintf(tw, "%s\tlive\t%d\t%v\t%s\t%s\t%d\t%d\n", e.Name, e.Pid, e.Epoch, e.State, dur(e.UptimeNs),
				e.Published, e.Consumers)
		case "stale":
			fmt.Fprintf(tw, "%s\tstale (no producer)\t-\t-\t-\t-\t-\t-\n", e.Name)
		default:
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t%s\n", e.Name, e.Status, e.Error)
		}
	}
	return tw.Flush()
}

// WriteText writes the report as text tables.
func (r *Report) WriteText(w io.Writer) error {
	p := r.Producer
	rate := "-"
	if r.WindowNs > 0 {
		rate = fmt.Sprintf("%.1f/s", p.Rate)
	}
	tw := newTab(w)
	fmt.Fprintf(tw, "ring\t%s\t(%s)\n", r.Ring, r.Socket)
	state := p.State
	if p.Stalled {
		state += ", STALLED"
	}
	if r.Unresponsive {
		state += " (not answering: read from its shared memory)"
	}
	fmt.Fprintf(tw, "producer\tpid %d\tepoch %v\tstate %s\tsource %s\tuptime %s\theartbeat %s ago\n", p.Pid, p.Epoch, state,
		p.Source, dur(p.UptimeNs), dur(p.HeartbeatAgeNs))
	fmt.Fprintf(tw, "frames\tpublished %d\trate %s\n", p.Published, rate)
	sc := r.SlotCounts
	fmt.Fprintf(tw, "slots\t%d x %s\tindex %d\thuge pages %s\t%d free, %d writing, %d published, %d held\n",
		r.Slots, size(r.SlotCapacity), r.IndexSize, yesno(r.HugePages), sc.Free, sc.Writing, sc.Published, sc.Held)
	fmt.Fprintf(tw, "drops\t%d\t%s\n", r.Drops.Total, causes(r.Drops.ByCause))
	fmt.Fprintf(tw, "consumers\thold quota %d\tevictions %d\tdetaches %d\treclaims %d\treclaimed holds %d\trevoked holds %d\n",
		r.HoldQuota, r.Evictions, r.Detaches, r.Reclaims, r.ReclaimedHolds, r.RevokedHolds)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	tw = newTab(w)
	fmt.Fprintln(tw, "SLOT\tSTATE\tSEQ\tGENERATION\tHELD BY")
	for _, s := range r.SlotList {
		by := strings.Join(s.HeldBy, ", ")
		if by == "" {
			by = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\n", s.Index, s.State, s.Seq, s.Generation, by)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if len(r.Consumers) == 0 {
		_, err := fmt.Fprintln(w, "no consumers")
		return err
	}
	tw = newTab(w)
	fmt.Fprintln(tw, "ENTRY\tNAME\tPID\tMODE\tSTATE\tLAG\tDELIVERED\tRATE\tSKIPPED\tMISSED\tHELD\tSLOTS\tLAST SEQ\tLATENCY\tBLOCK DROPS")
	for _, c := range r.Consumers {
		crate := "-"
		if r.WindowNs > 0 {
			crate = fmt.Sprintf("%.1f/s", c.Rate)
		}
		slots := make([]string, len(c.HeldSlots))
		for i, k := range c.HeldSlots {
			slots[i] = strconv.Itoa(k)
		}
		held := strings.Join(slots, ",")
		if held == "" {
			held = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t%d\n", c.Entry, c.Name, c.Pid, c.Mode,
			consumerState(c), c.Lag, c.Delivered, crate, c.Skipped, c.Missed, c.Held, held, c.LastSeq, dur(int64(c.LatencyNs)),
			c.BlockDrops)
	}
	return tw.Flush()
}

// CausesText lists counts by cause name ("blocked 3, underrun 1") in the
// order of the cause codes, "none" when all are zero: how every text view
// writes drops by cause.
func CausesText(m map[string]uint64) string { return causes(m) }

// causes lists drop counts by cause in the order of the cause codes.
func causes(m map[string]uint64) string {
	var parts []string
	for _, c := range loss.Known() {
		if n := m[c.String()]; n != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func consumerState(c Consumer) string {
	if c.EvictReason != "" {
		return c.State + " (" + c.EvictReason + ")"
	}
	return c.State
}

// clearScreen moves the cursor home and clears the terminal (ANSI).
const clearScreen = "\x1b[H\x1b[2J"

// Watch shows t every interval until ctx ends: as text after clearing the
// screen, or as one JSON object per line with asJSON. Rates are over the
// interval. While there is no producer it says so and keeps trying.
func Watch(ctx context.Context, t Target, interval time.Duration, w io.Writer, asJSON bool) error {
	path, err := t.path()
	if err != nil {
		return fmt.Errorf("watch ring: %w", err)
	}
	var rates Rates // rates since the previous refresh
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var rep *Report
		r, oerr := observe(ctx, t)
		if oerr == nil {
			s, serr := r.Snapshot()
			at := time.Now()
			r.Close()
			if serr != nil {
				oerr = serr
			} else {
				rep = rates.Report(t.name(), path, s, at)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if rep == nil {
			rates.Reset()
		}
		switch {
		case asJSON && rep != nil:
			err = json.NewEncoder(w).Encode(rep)
		case asJSON:
			err = json.NewEncoder(w).Encode(map[string]string{"ring": t.name(), "socket": path, "error": oerr.Error()})
		case rep != nil:
			var b strings.Builder
			b.WriteString(clearScreen)
			rep.WriteText(&b)
			fmt.Fprintf(&b, "\nevery %v; ^C to stop\n", interval)
			_, err = io.WriteString(w, b.String())
		default:
			_, err = fmt.Fprintf(w, "%sring %s (%s): %v\nretrying every %v; ^C to stop\n", clearScreen, t.name(), path, oerr, interval)
		}
		if err != nil {
			return fmt.Errorf("watch ring: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
