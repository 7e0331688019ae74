package archiver

import (
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// ring is a simulated ring's drop table for the accountant: plain values.
type ring struct {
	epoch uint64
	d     counts
}

func (r *ring) snap() (counts, uint64, bool) { return r.d, r.epoch, true }

// drops builds a drop table from cause, count pairs.
func drops(kv ...uint64) counts {
	var c counts
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] += kv[i+1]
	}
	return c
}

func meta(seq, id uint64) ringbuf.Meta { return ringbuf.Meta{Seq: seq, FrameID: id} }

// metaDB is meta with DropsBefore (cause, count pairs).
func metaDB(seq, id uint64, kv ...uint64) ringbuf.Meta {
	m := meta(seq, id)
	for i := 0; i+1 < len(kv); i += 2 {
		m.DropsBefore[i/2] = ringbuf.Drop{Cause: loss.Cause(kv[i]), Count: kv[i+1]}
	}
	return m
}

const (
	cBlocked   = uint64(loss.Blocked)
	cUnderrun  = uint64(loss.Underrun)
	cSource    = uint64(loss.SourceError)
	cIncompl   = uint64(loss.Incomplete)
	cTimeout   = uint64(loss.Timeout)
	cCamLost   = uint64(loss.CameraLost)
	cSeveral   = uint64(loss.Several)
	cDiscarded = uint64(loss.Discarded)
)

func TestAccountantCases(t *testing.T) {
	const e1, e2 = 0xE1, 0xE2
	type step struct {
		epoch    uint64
		m        ringbuf.Meta
		d        counts // the ring's drop table at the frame
		evicted  bool   // evicted before this frame
		ended    bool   // the ring ended before this frame, with d of the previous step's ring
		endDrops counts
		attach   *counts // attached to the step's ring, with this table, before this frame
		want     []archive.Gap
	}
	g := func(e, first, last, n uint64, c loss.Cause) archive.Gap {
		return archive.Gap{FirstID: first, LastID: last, Count: n, Cause: c, Epoch: e}
	}
	gs := func(e, first, last, n uint64, c loss.Cause, s1, s2 uint64) archive.Gap {
		return archive.Gap{FirstID: first, LastID: last, Count: n, Cause: c, Epoch: e, FirstSeq: s1, LastSeq: s2}
	}
	wide := func(e, n uint64, c loss.Cause, s1, s2 uint64) archive.Gap {
		return gs(e, 0, math.MaxUint64, n, c, s1, s2)
	}
	for _, c := range []struct {
		name        string
		start       position
		steps       []step
		unexplained uint64
	}{
		{"fresh archive, dense", position{}, []step{
			{epoch: e1, m: meta(5, 40), d: drops(cBlocked, 9)}, // the first frame: nothing before is ours
			{epoch: e1, m: meta(6, 41), d: drops(cBlocked, 9)},
		}, 0},
		{"exact drops by cause, from DropsBefore", position{}, []step{
			{epoch: e1, m: meta(1, 0)},
			{epoch: e1, m: metaDB(2, 4, cBlocked, 1, cUnderrun, 1, cIncompl, 1), d: drops(cBlocked, 1, cUnderrun, 1, cIncompl, 1), want: []archive.Gap{
				g(e1, 1, 3, 1, loss.Underrun), g(e1, 1, 3, 1, loss.Blocked), g(e1, 1, 3, 1, loss.Incomplete)}},
			// The table is ahead (drops after this frame): DropsBefore is what counts.
			{epoch: e1, m: metaDB(3, 7, cTimeout, 2), d: drops(cBlocked, 5, cUnderrun, 1, cIncompl, 1, cTimeout, 2), want: []archive.Gap{
				g(e1, 5, 6, 2, loss.Timeout)}},
			{epoch: e1, m: metaDB(4, 11, cBlocked, 3), d: drops(cBlocked, 5, cUnderrun, 1, cIncompl, 1, cTimeout, 2), want: []archive.Gap{
				g(e1, 8, 10, 3, loss.Blocked)}},
		}, 0},
		{"ids that skip without a ring drop are not losses", position{}, []step{
			{epoch: e1, m: meta(1, 10)},
			{epoch: e1, m: meta(2, 15), d: drops(cBlocked, 4)},
		}, 4},
		{"several causes before one frame: the split from the table", position{}, []step{
			{epoch: e1, m: meta(1, 0)},
			{epoch: e1, m: metaDB(2, 9, cUnderrun, 1, cBlocked, 1, cIncompl, 1, cSeveral, 5), d: drops(cUnderrun, 1, cBlocked, 1, cIncompl, 1, cTimeout, 3, cCamLost, 2),
				want: []archive.Gap{g(e1, 1, 8, 1, loss.Underrun), g(e1, 1, 8, 1, loss.Blocked), g(e1, 1, 8, 1, loss.Incomplete),
					g(e1, 1, 8, 3, loss.Timeout), g(e1, 1, 8, 2, loss.CameraLost)}},
		}, 0},
		{"missed and evicted: the drops before frames not got, from the table", position{}, []step{
			{epoch: e1, m: meta(1, 100)},
			{epoch: e1, m: meta(4, 103), want: []archive.Gap{gs(e1, 101, 102, 2, loss.Missed, 2, 3)}},
			{epoch: e1, m: metaDB(10, 112, cUnderrun, 1), evicted: true, d: drops(cBlocked, 2, cUnderrun, 1), want: []archive.Gap{
				gs(e1, 104, 111, 5, loss.Evicted, 5, 9), g(e1, 104, 111, 1, loss.Underrun), g(e1, 104, 111, 2, loss.Blocked)}},
			{epoch: e1, m: meta(12, 114), d: drops(cBlocked, 2, cUnderrun, 1), want: []archive.Gap{gs(e1, 113, 113, 1, loss.Missed, 11, 11)}},
		}, 0},
		{"ids that do not count frames", position{}, []step{
			{epoch: e1, m: meta(1, 5)},
			{epoch: e1, m: meta(5, 7), want: []archive.Gap{wide(e1, 3, loss.Missed, 2, 4)}},
		}, 0},
		{"archiver restarted, same producer run, ring seqs in the archive", position{known: true, epoch: e1, lastID: 50, ringSeq: 50}, []step{
			// Ring seqs 51..59 published while it was down; ids 51..61: two
			// more frames were dropped before m, one of them in DropsBefore.
			{epoch: e1, m: metaDB(60, 62, cUnderrun, 1), d: drops(cBlocked, 9), want: []archive.Gap{
				gs(e1, 51, 61, 9, loss.ConsumerDown, 51, 59), g(e1, 51, 61, 1, loss.Underrun), g(e1, 51, 61, 1, loss.ConsumerDown)}},
			{epoch: e1, m: metaDB(61, 64, cBlocked, 1), d: drops(cBlocked, 10), want: []archive.Gap{g(e1, 63, 63, 1, loss.Blocked)}},
		}, 0},
		{"archiver restarted, the next frame still in the ring", position{known: true, epoch: e1, lastID: 50, ringSeq: 50}, []step{
			{epoch: e1, m: metaDB(51, 53, cBlocked, 2), d: drops(cBlocked, 2), want: []archive.Gap{g(e1, 51, 52, 2, loss.Blocked)}},
		}, 0},
		{"archiver restarted on a version 1 archive (no ring seqs)", position{known: true, epoch: e1, lastID: 50}, []step{
			{epoch: e1, m: meta(300, 80), d: drops(cBlocked, 9), want: []archive.Gap{g(e1, 51, 79, 29, loss.ConsumerDown)}},
			{epoch: e1, m: metaDB(301, 82, cBlocked, 1), d: drops(cBlocked, 10), want: []archive.Gap{g(e1, 81, 81, 1, loss.Blocked)}},
		}, 0},
		{"producer restart, ids go on", position{}, []step{
			{epoch: e1, m: meta(1, 10), d: drops(cBlocked, 1)},
			{epoch: e1, m: meta(2, 11), d: drops(cBlocked, 1)},
			// Run 1 dropped 2 after its last frame; run 2 published 3 frames
			// (ring seqs 1..3) and dropped 1 before this consumer got seq 4.
			{epoch: e2, m: meta(4, 30), ended: true, endDrops: drops(cUnderrun, 2), d: drops(cBlocked, 1), want: []archive.Gap{
				g(e1, 12, 29, 2, loss.Underrun), gs(e2, 12, 29, 3, loss.ProducerRestart, 1, 3), g(e2, 12, 29, 1, loss.Blocked), g(e2, 12, 29, 12, loss.ProducerRestart)}},
			{epoch: e2, m: meta(5, 31), d: drops(cBlocked, 1)},
		}, 0},
		{"producer restart, ids start over", position{}, []step{
			{epoch: e1, m: meta(1, 500)},
			{epoch: e2, m: meta(4, 5), ended: true, endDrops: drops(cSource, 2), d: drops(cDiscarded, 1), want: []archive.Gap{
				g(e1, 501, 502, 2, loss.SourceError), gs(e2, 1, 4, 3, loss.ProducerRestart, 1, 3), g(e2, 1, 4, 1, loss.Discarded)}},
		}, 0},
		{"unknown previous run", position{known: true, lastID: 20}, []step{
			{epoch: e1, m: meta(1, 25), want: []archive.Gap{g(e1, 21, 24, 4, loss.ProducerRestart)}},
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newAccountant(c.start)
			for i, s := range c.steps {
				if s.evicted {
					a.evicted()
				}
				if s.ended {
					prev := c.steps[i-1]
					a.ringEnded(addCounts(prev.d, s.endDrops), prev.epoch, true)
				}
				if s.attach != nil {
					a.attached(*s.attach, s.epoch, true)
				}
				r := &ring{epoch: s.epoch, d: s.d}
				got := a.frame(s.epoch, s.m, r.snap)
				if !slices.Equal(got, s.want) {
					t.Fatalf("step %d (seq %d id %d): gaps\n%+v, want\n%+v", i, s.m.Seq, s.m.FrameID, got, s.want)
				}
			}
			if a.unexplained != c.unexplained {
				t.Fatalf("%d unexplained ids, want %d", a.unexplained, c.unexplained)
			}
		})
	}
}

// TestAccountantSimulation runs a simulated camera, ring and lossless
// consumer with random drops of many causes, where the producer runs ahead
// of the consumer (so the drop table a snapshot shows includes drops after
// the frame being accounted for), each published frame carrying its
// DropsBefore. A consumer that gets every frame accounts for every frame id
// exactly and for every drop by its cause, with no "unknown". In half of
// the rounds it also misses frames (their DropsBefore lost with them): the
// missed frames are still exact, and the drops before them are attributed
// from the table, within a few frames per cause of the truth.
func TestAccountantSimulation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := 300
	if testing.Short() {
		rounds = 30
	}
	causes := []loss.Cause{loss.Blocked, loss.Underrun, loss.SourceError, loss.Incomplete, loss.Timeout}
	type event struct {
		drop      bool
		cause     loss.Cause
		seq, id   uint64
		missed    bool // published, and overwritten before the consumer got it
		countsLen int  // drops counted up to and including this event
		before    [4]ringbuf.Drop
	}
	for round := 0; round < rounds; round++ {
		withMissed := round%2 == 1
		var evs []event
		var seq, id uint64
		var table []loss.Cause // the ring's drop table increments, in order
		var pending [4]ringbuf.Drop
		addPending := func(c loss.Cause) {
			for i := range pending {
				if pending[i].Count > 0 && pending[i].Cause == c {
					pending[i].Count++
					return
				}
				if pending[i].Count == 0 {
					pending[i] = ringbuf.Drop{Cause: c, Count: 1}
					return
				}
			}
			// More than four causes: the fourth word says "several".
			pending[3].Cause = loss.Several
			pending[3].Count++
		}
		for n := 0; n < 400; n++ {
			id++
			if rng.IntN(4) == 0 {
				// Four causes at most when no frame is missed: a fifth
				// between two frames makes a "several" word, whose split
				// only the table knows (approximate, like the missed case).
				nc := len(causes)
				if !withMissed {
					nc = 4
				}
				c := causes[rng.IntN(nc)]
				table = append(table, c)
				addPending(c)
				evs = append(evs, event{drop: true, cause: c, id: id, countsLen: len(table)})
				continue
			}
			seq++
			evs = append(evs, event{seq: seq, id: id, missed: withMissed && n > 5 && rng.IntN(25) == 0, countsLen: len(table), before: pending})
			pending = [4]ringbuf.Drop{}
		}
		evs = append(evs, event{seq: seq + 1, id: id + 1, countsLen: len(table), before: pending}) // a last frame brackets every drop
		tableAt := func(i int) counts {
			var d counts
			for _, c := range table[:evs[i].countsLen] {
				d[c]++
			}
			return d
		}
		a := newAccountant(position{})
		first := -1
		for i, ev := range evs {
			if !ev.drop {
				first = i
				break
			}
		}
		a.attached(tableAt(max(first-1, 0)), 1, true)
		lost := map[loss.Cause]uint64{}
		want := map[loss.Cause]uint64{}
		for i := first + 1; i < len(evs); i++ {
			switch {
			case evs[i].drop:
				want[evs[i].cause]++
			case evs[i].missed:
				want[loss.Missed]++
			}
		}
		var frames uint64
		for i := first; i < len(evs); i++ {
			ev := evs[i]
			if ev.drop || ev.missed {
				continue
			}
			ahead := min(i+rng.IntN(6), len(evs)-1)
			snap := func() (counts, uint64, bool) { return tableAt(ahead), 1, true }
			m := meta(ev.seq, ev.id)
			m.DropsBefore = ev.before
			for _, g := range a.frame(1, m, snap) {
				lost[g.Cause] += g.Count
				if g.Count == 0 || g.FirstID > g.LastID || g.Count-1 > g.LastID-g.FirstID || g.LastID >= ev.id || g.Epoch != 1 {
					t.Fatalf("round %d: bad gap %+v before id %d", round, g, ev.id)
				}
			}
			frames++
		}
		var total uint64
		for _, n := range lost {
			total += n
		}
		ids := evs[len(evs)-1].id - evs[first].id + 1
		if !withMissed {
			if frames+total != ids || a.unexplained != 0 {
				t.Fatalf("round %d: %d frames + %d lost (%d unexplained), ids %d..%d", round, frames, total, a.unexplained, evs[first].id, evs[len(evs)-1].id)
			}
			for c, n := range want {
				if lost[c] != n {
					t.Fatalf("round %d: cause %s: %d recorded, %d happened (all %v, want %v)", round, c.String(), lost[c], n, lost, want)
				}
			}
		} else {
			diff := func(a, b uint64) uint64 { return max(a, b) - min(a, b) }
			if lost[loss.Missed] != want[loss.Missed] || diff(frames+total+a.unexplained, ids) > want[loss.Missed] {
				t.Fatalf("round %d: %d frames + %d lost (%d unexplained), ids %d; missed %d, want %d", round, frames, total, a.unexplained, ids, lost[loss.Missed], want[loss.Missed])
			}
			for c, n := range want {
				if diff(lost[c], n) > 3 {
					t.Fatalf("round %d: cause %s: %d recorded, %d happened (all %v, want %v)", round, c.String(), lost[c], n, lost, want)
				}
			}
		}
		if lost[loss.Unknown] != 0 || lost[loss.Several] != 0 {
			t.Fatalf("round %d: recorded %v", round, lost)
		}
	}
}

func TestAccountantEndGaps(t *testing.T) {
	a := newAccountant(position{})
	r := &ring{epoch: 1}
	a.frame(1, meta(1, 10), r.snap)
	a.ringEnded(drops(cUnderrun, 2, cSource, 1), 1, true)
	got := a.endGaps()
	want := []archive.Gap{{FirstID: 11, LastID: 13, Count: 2, Cause: loss.Underrun, Epoch: 1}, {FirstID: 11, LastID: 13, Count: 1, Cause: loss.SourceError, Epoch: 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("end gaps %+v, want %+v", got, want)
	}
	if a.pos.lastID != 13 || a.endGaps() != nil {
		t.Fatalf("position %+v after the end gaps", a.pos)
	}
}

func TestLoseMerges(t *testing.T) {
	a := &archiver{log: slog.New(slog.DiscardHandler), lost: map[archive.Cause]uint64{}}
	for id := uint64(10); id < 20; id++ {
		a.lose(archive.Gap{FirstID: id, LastID: id, Count: 1, Cause: loss.DiskFull})
	}
	if len(a.pending) != 1 || a.pending[0] != (archive.Gap{FirstID: 10, LastID: 19, Count: 10, Cause: loss.DiskFull}) {
		t.Fatalf("pending %+v", a.pending)
	}
	// Alternating causes fill the list; beyond maxPending they merge per cause.
	for i := uint64(0); i < 3*maxPending; i++ {
		c := loss.DiskFull
		if i%2 == 0 {
			c = loss.Missed
		}
		a.lose(archive.Gap{FirstID: 100 + 2*i, LastID: 100 + 2*i, Count: 1, Cause: c})
	}
	if len(a.pending) > maxPending {
		t.Fatalf("%d pending gaps", len(a.pending))
	}
	var total uint64
	for _, g := range a.pending {
		total += g.Count
		if g.Count-1 > g.LastID-g.FirstID {
			t.Fatalf("merged gap %+v cannot hold its count", g)
		}
	}
	if total != 10+3*maxPending || a.pendingCount() != total || a.sum.LostTotal != total {
		t.Fatalf("pending %d frames, counted %d, want %d", total, a.sum.LostTotal, 10+3*maxPending)
	}
}
