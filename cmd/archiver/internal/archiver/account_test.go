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

// ring is a simulated ring's counters for the accountant: plain values.
type ring struct {
	epoch uint64
	d     drops
}

func (r *ring) snap() (drops, uint64, bool) { return r.d, r.epoch, true }

func meta(seq, id uint64) ringbuf.Meta { return ringbuf.Meta{Seq: seq, FrameID: id} }

func TestAccountantCases(t *testing.T) {
	const e1, e2 = 0xE1, 0xE2
	type step struct {
		epoch    uint64
		seq, id  uint64
		d        drops // ring counters at the frame
		evicted  bool  // evicted before this frame
		ended    bool  // the ring ended before this frame, with d of the previous step's ring
		endDrops drops
		attach   *drops // attached to the step's ring, with these counters, before this frame
		want     []archive.Gap
	}
	wide := func(n uint64, c archive.Cause) archive.Gap {
		return archive.Gap{FirstID: 0, LastID: math.MaxUint64, Count: n, Cause: c}
	}
	g := func(first, last, n uint64, c archive.Cause) archive.Gap {
		return archive.Gap{FirstID: first, LastID: last, Count: n, Cause: c}
	}
	for _, c := range []struct {
		name  string
		start position
		steps []step
	}{
		{"fresh archive, dense", position{}, []step{
			{epoch: e1, seq: 5, id: 40, d: drops{noSlot: 9}}, // the first frame: nothing before is ours
			{epoch: e1, seq: 6, id: 41, d: drops{noSlot: 9}},
		}},
		{"upstream drops by cause", position{}, []step{
			{epoch: e1, seq: 1, id: 0},
			{epoch: e1, seq: 2, id: 4, d: drops{noSlot: 1, underrun: 1, source: 1}, want: []archive.Gap{
				g(1, 3, 1, loss.Blocked), g(1, 3, 1, loss.Underrun), g(1, 3, 1, loss.SourceError)}},
			{epoch: e1, seq: 3, id: 7, d: drops{noSlot: 2, underrun: 1, source: 1}, want: []archive.Gap{
				g(5, 6, 1, loss.Blocked), g(5, 6, 1, loss.Unknown)}},
			// Counters ahead of the frames (a drop after this frame): the
			// surplus waits for the next gap.
			{epoch: e1, seq: 4, id: 9, d: drops{noSlot: 4, underrun: 1, source: 1}, want: []archive.Gap{g(8, 8, 1, loss.Blocked)}},
			{epoch: e1, seq: 5, id: 11, d: drops{noSlot: 4, underrun: 1, source: 1}, want: []archive.Gap{g(10, 10, 1, loss.Blocked)}},
		}},
		{"missed and evicted", position{}, []step{
			{epoch: e1, seq: 1, id: 100},
			{epoch: e1, seq: 4, id: 103, want: []archive.Gap{g(101, 102, 2, loss.Missed)}},
			{epoch: e1, seq: 10, id: 112, evicted: true, d: drops{noSlot: 3}, want: []archive.Gap{
				g(104, 111, 5, loss.Evicted), g(104, 111, 3, loss.Blocked)}},
			{epoch: e1, seq: 12, id: 114, want: []archive.Gap{g(113, 113, 1, loss.Missed)}},
		}},
		{"ids that do not count frames", position{}, []step{
			{epoch: e1, seq: 1, id: 7},
			{epoch: e1, seq: 5, id: 7, want: []archive.Gap{wide(3, loss.Missed)}},
		}},
		{"archiver restarted, same producer run", position{known: true, epoch: e1, lastID: 50}, []step{
			{epoch: e1, seq: 300, id: 80, d: drops{noSlot: 9}, want: []archive.Gap{g(51, 79, 29, loss.ConsumerDown)}},
			// The baseline is the ring's counters at the restart.
			{epoch: e1, seq: 301, id: 82, d: drops{noSlot: 10}, want: []archive.Gap{g(81, 81, 1, loss.Blocked)}},
		}},
		{"producer restart, ids go on", position{}, []step{
			{epoch: e1, seq: 1, id: 10},
			{epoch: e1, seq: 2, id: 11},
			// The old run dropped 2 after id 11 and ended; the new one
			// published 3 before we attached and dropped 1.
			{epoch: e2, seq: 4, id: 30, ended: true, endDrops: drops{underrun: 2}, d: drops{noSlot: 1}, want: []archive.Gap{
				g(12, 29, 2, loss.Underrun), g(12, 29, 1, loss.Blocked), g(12, 29, 15, loss.ProducerRestart)}},
			{epoch: e2, seq: 5, id: 31, d: drops{noSlot: 1}},
		}},
		{"producer restart, ids start over", position{}, []step{
			{epoch: e1, seq: 1, id: 500},
			{epoch: e2, seq: 4, id: 5, ended: true, endDrops: drops{source: 2}, d: drops{noSlot: 1}, want: []archive.Gap{
				g(501, 502, 2, loss.SourceError), g(1, 4, 3, loss.ProducerRestart), g(1, 4, 1, loss.Blocked)}},
		}},
		{"producer restart, nothing known lost", position{}, []step{
			{epoch: e1, seq: 1, id: 500},
			{epoch: e2, seq: 1, id: 0, ended: true},
		}},
		{"drops after the first frame, before its baseline", position{}, []step{
			{epoch: e1, seq: 10, id: 100, attach: &drops{underrun: 5}, d: drops{underrun: 7}},
			{epoch: e1, seq: 11, id: 103, d: drops{underrun: 7}, want: []archive.Gap{g(101, 102, 2, loss.Underrun)}},
			{epoch: e1, seq: 12, id: 105, d: drops{underrun: 7}, want: []archive.Gap{g(104, 104, 1, loss.Unknown)}},
		}},
		{"producer restart with an attach baseline", position{}, []step{
			{epoch: e1, seq: 1, id: 10},
			{epoch: e1, seq: 2, id: 11},
			{epoch: e2, seq: 4, id: 30, ended: true, attach: &drops{noSlot: 1}, d: drops{noSlot: 2}, want: []archive.Gap{
				g(12, 29, 1, loss.Blocked), g(12, 29, 17, loss.ProducerRestart)}},
			{epoch: e2, seq: 5, id: 32, d: drops{noSlot: 2}, want: []archive.Gap{g(31, 31, 1, loss.Blocked)}},
		}},
		{"unknown previous run", position{known: true, lastID: 20}, []step{
			{epoch: e1, seq: 1, id: 25, want: []archive.Gap{g(21, 24, 4, loss.ProducerRestart)}},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newAccountant(c.start)
			for i, s := range c.steps {
				if s.evicted {
					a.evicted()
				}
				if s.ended {
					prev := c.steps[i-1]
					a.ringEnded(prev.d.add(s.endDrops), prev.epoch, true)
				}
				if s.attach != nil {
					a.attached(*s.attach, s.epoch, true)
				}
				r := &ring{epoch: s.epoch, d: s.d}
				got := a.frame(s.epoch, meta(s.seq, s.id), r.snap)
				if !slices.Equal(idsOnly(got), s.want) {
					t.Fatalf("step %d (seq %d id %d): gaps %+v, want %+v", i, s.seq, s.id, got, s.want)
				}
			}
		})
	}
}

// TestAccountantSimulation runs a simulated camera, ring and lossless
// consumer with random losses of every kind, where the producer runs ahead
// of the consumer (so the counters a snapshot shows include drops of frames
// after the one being accounted for), and checks that the gaps account for
// every frame id exactly, and for every drop by its cause.
func TestAccountantSimulation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := 300
	if testing.Short() {
		rounds = 30
	}
	type event struct {
		drop      bool
		cause     archive.Cause
		seq, id   uint64
		missed    bool // published, and overwritten before the consumer got it
		countsLen int  // drops counted up to and including this event
	}
	for round := 0; round < rounds; round++ {
		// The producer's history: drops and publishes, in order.
		var evs []event
		var seq, id uint64
		var counts []archive.Cause // the ring's drop counter increments, in order
		for n := 0; n < 400; n++ {
			id++
			if rng.IntN(4) == 0 {
				c := []archive.Cause{loss.Blocked, loss.Underrun, loss.SourceError}[rng.IntN(3)]
				counts = append(counts, c)
				evs = append(evs, event{drop: true, cause: c, id: id, countsLen: len(counts)})
				continue
			}
			seq++
			evs = append(evs, event{seq: seq, id: id, missed: n > 5 && rng.IntN(25) == 0, countsLen: len(counts)})
		}
		evs = append(evs, event{seq: seq + 1, id: id + 1, countsLen: len(counts)}) // a last frame brackets every drop
		countersAt := func(i int) drops {
			var d drops
			for _, c := range counts[:evs[i].countsLen] {
				switch c {
				case loss.Blocked:
					d.noSlot++
				case loss.Underrun:
					d.underrun++
				default:
					d.source++
				}
			}
			return d
		}
		// The consumer attaches just before the first publish, then gets
		// every publish that is not missed; at each, the producer is some
		// events ahead.
		a := newAccountant(position{})
		first := -1
		for i, ev := range evs {
			if !ev.drop {
				first = i
				break
			}
		}
		a.attached(countersAt(max(first-1, 0)), 1, first > 0)
		if first == 0 {
			a.attached(drops{}, 1, true)
		}
		lost := map[archive.Cause]uint64{}
		want := map[archive.Cause]uint64{}
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
			snap := func() (drops, uint64, bool) { return countersAt(ahead), 1, true }
			for _, g := range a.frame(1, meta(ev.seq, ev.id), snap) {
				lost[g.Cause] += g.Count
				if g.Count == 0 || g.FirstID > g.LastID || g.Count-1 > g.LastID-g.FirstID || g.LastID >= ev.id {
					t.Fatalf("round %d: bad gap %+v before id %d", round, g, ev.id)
				}
			}
			frames++
		}
		var total uint64
		for _, n := range lost {
			total += n
		}
		if frames+total != evs[len(evs)-1].id-evs[first].id+1 {
			t.Fatalf("round %d: %d frames + %d lost, ids %d..%d", round, frames, total, evs[first].id, evs[len(evs)-1].id)
		}
		for c, n := range want {
			if lost[c] != n {
				t.Fatalf("round %d: cause %s: %d recorded, %d happened (all %v, want %v)", round, c.String(), lost[c], n, lost, want)
			}
		}
		if lost[loss.Unknown] != 0 {
			t.Fatalf("round %d: %d unknown losses", round, lost[loss.Unknown])
		}
	}
}

func TestAccountantEndGaps(t *testing.T) {
	a := newAccountant(position{})
	r := &ring{epoch: 1}
	a.frame(1, meta(1, 10), r.snap)
	a.ringEnded(drops{underrun: 2, source: 1}, 1, true)
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

// idsOnly drops the identity fields of gaps (these cases predate them;
// TestAccountantIdentity checks them).
func idsOnly(gs []archive.Gap) []archive.Gap {
	out := make([]archive.Gap, len(gs))
	for i, g := range gs {
		g.Epoch, g.FirstSeq, g.LastSeq = 0, 0, 0
		out[i] = g
	}
	return out
}

// TestAccountantIdentity: every gap names the producer run it belongs to,
// and published frames the archiver did not get name their ring seqs.
func TestAccountantIdentity(t *testing.T) {
	const e = 0xe1
	a := newAccountant(position{})
	r := &ring{epoch: e}
	a.frame(e, meta(1, 100), r.snap)
	got := a.frame(e, meta(4, 103), r.snap)
	want := []archive.Gap{{FirstID: 101, LastID: 102, Count: 2, Cause: loss.Missed, Epoch: e, FirstSeq: 2, LastSeq: 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("gaps %+v, want %+v", got, want)
	}
	r.d = drops{underrun: 1}
	got = a.frame(e, meta(5, 105), r.snap)
	want = []archive.Gap{{FirstID: 104, LastID: 104, Count: 1, Cause: loss.Underrun, Epoch: e}}
	if !slices.Equal(got, want) {
		t.Fatalf("gaps %+v, want %+v", got, want)
	}
}
