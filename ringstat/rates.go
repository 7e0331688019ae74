package ringstat

import (
	"time"

	"github.com/framering/framering/ringbuf"
)

// Rates turns successive snapshots of one ring into reports with rates:
// every view that refreshes (ringctl watch, the producer's stats line, the
// pipeline's progress line, the metrics server's history, the web view)
// feeds its snapshots in and reads rates out, so a rate means the same
// thing everywhere. It is for one goroutine.
//
// A rate compares the snapshot with the oldest kept one taken no longer
// than Window before it (with Window 0, or none that recent, the previous
// one). A snapshot of another producer run (a new epoch) starts over: no
// rates until the next snapshot of that run.
type Rates struct {
	// Window is the span rates are computed over (0: since the previous
	// snapshot).
	Window time.Duration
	kept   []stamped // oldest first, one epoch
}

type stamped struct {
	at   time.Time
	snap ringbuf.Snapshot
}

// maxKept bounds the samples kept whatever the Window and feeding rate.
const maxKept = 256

// Report builds the report of cur, taken at at, with rates over the
// window, and keeps cur for later reports.
func (r *Rates) Report(ring, socket string, cur ringbuf.Snapshot, at time.Time) *Report {
	if n := len(r.kept); n > 0 && (r.kept[n-1].snap.Epoch != cur.Epoch || !at.After(r.kept[n-1].at)) {
		r.kept = r.kept[:0]
	}
	var base *stamped
	if n := len(r.kept); n > 0 {
		base = &r.kept[n-1]
		if r.Window > 0 {
			for i := range r.kept {
				if at.Sub(r.kept[i].at) <= r.Window {
					base = &r.kept[i]
					break
				}
			}
		}
	}
	var rep *Report
	if base != nil {
		rep = Build(ring, socket, cur, &base.snap, at.Sub(base.at))
	} else {
		rep = Build(ring, socket, cur, nil, 0)
	}
	// Keep cur; drop what no later report can use: samples older than the
	// window except the newest of them (the base when nothing is recent).
	r.kept = append(r.kept, stamped{at: at, snap: cur})
	drop := 0
	for drop < len(r.kept)-1 && (r.Window <= 0 || at.Sub(r.kept[drop+1].at) > r.Window) {
		drop++
	}
	if len(r.kept)-drop > maxKept {
		drop = len(r.kept) - maxKept
	}
	if drop > 0 {
		r.kept = append(r.kept[:0], r.kept[drop:]...)
	}
	return rep
}

// Reset forgets every kept snapshot (the ring went away).
func (r *Rates) Reset() { r.kept = r.kept[:0] }
