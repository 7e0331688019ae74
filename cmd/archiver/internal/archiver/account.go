package archiver

// The accountant: from the sequence of frames the ring delivers, the losses
// between them. Pure logic over plain values; the package comment says what
// each cause means.
//
// Sources of truth, best first:
//   - A frame's DropsBefore (docs/LAYOUT.md 8.5): exactly which causes, and
//     how many frames of each, the producer dropped between the previous
//     published frame and this one. A lossless consumer that got the
//     previous frame learns every drop this way, exactly.
//   - The ring's drop table (snapshots), only as a fallback: for the drops
//     before frames this consumer did not get (missed, evicted, published
//     while it was down), whose DropsBefore went with them, and to split a
//     DropsBefore word of cause "several". Attributed greedily, within the
//     budget the frame ids give; which gap a drop goes to is approximate
//     there, the totals per cause are exact once every drop is followed by
//     a frame.
//   - Ring sequence numbers: published frames this consumer did not get,
//     exactly (missed, evicted, consumer_down, producer_restart).
//
// No gap is ever recorded with cause "unknown": an id gap that neither the
// ring nor the sequence numbers explain is not a loss the pipeline knows of
// (a source whose ids skip); it is counted (unexplained) and logged, not
// recorded.
//
// Invariants:
//   - pos is the last frame accounted for: stored, or counted lost (disk
//     full, rejected). Every frame the producer offered between two
//     accounted frames is in exactly one gap that frame(...) returns, or
//     unexplained.
//   - base holds the ring's drop counts (of epoch pos.epoch) already
//     attributed to gaps, exact or by the fallback; baseOK says base
//     belongs to that epoch's ring.
//   - trailing holds the previous run's drops not yet bracketed by a frame;
//     it is non-zero only between a ring's end and the next run's first frame.
//   - reserve is the part of base that may belong to frames after pos: when
//     the baseline is taken at a frame F (the first after an attach), the
//     counters include drops that happened after F was published. The
//     counters at the attach (before F was published) bound them: reserve =
//     counters at F - counters at attach. A later gap the fresh counters do
//     not explain draws on the reserve.

import (
	"math"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// counts are drop counts by cause: the shape of the ring's drop table.
type counts = loss.Counts

func dropsOf(s ringbuf.Snapshot) counts { return s.Drops }

// subFloor returns d - o per cause, 0 where o is larger (a counter never
// shrinks within one ring; a smaller one means another ring).
func subFloor(d, o counts) counts {
	for i := range d {
		if d[i] < o[i] {
			d[i] = 0
		} else {
			d[i] -= o[i]
		}
	}
	return d
}

func addCounts(d, o counts) counts {
	for i := range d {
		d[i] += o[i]
	}
	return d
}

// dropsBefore reads a frame's DropsBefore: the counts by cause, and the
// count of the "several" word (more than four causes: the split is only in
// the drop table).
func dropsBefore(m *ringbuf.Meta) (c counts, several uint64) {
	for _, d := range m.DropsBefore {
		switch {
		case d.Count == 0:
		case d.Cause == loss.Several:
			several += d.Count
		case int(d.Cause) < len(c):
			c[d.Cause] += d.Count
		}
	}
	return c, several
}

// position is the last frame accounted for.
type position struct {
	known   bool   // false: nothing is known (a fresh archive)
	epoch   uint64 // the producer run of lastID, 0 if unknown
	lastID  uint64 // frame id
	lastSeq uint64 // ring sequence number in the current attachment, 0 if unknown (another process)
	// ringSeq is the ring sequence number of lastID's frame if known, also
	// when it was archived by an earlier process (0: not known, or the
	// last frame accounted for was lost before publication).
	ringSeq uint64
}

// snapFunc returns the ring's drop table now and the epoch it belongs to;
// ok is false if the ring could not be read.
type snapFunc func() (d counts, epoch uint64, ok bool)

type accountant struct {
	// catchUpTo is, for an archive without ring seqs (version 1), the
	// ring's last published sequence when a restarted archiver attached to
	// the same producer run as its archive: frames up to it are the
	// catch-up on what was published while the archiver was down, each
	// handled by the restart rule.
	catchUpTo uint64
	pos       position
	base      counts
	baseOK    bool
	trailing  counts
	reserve   counts
	// spec is what the fallback attributed from the table that may have
	// been dropped after the frame it was attributed before (the table a
	// snapshot shows runs ahead): when a later frame's DropsBefore lists
	// the same cause and the table cannot hold both, the overlap was
	// counted already and the fallback's guess is corrected (correct).
	spec counts
	// The ring's counters when this consumer attached (before the first
	// frame it gets was published, unless the ring held older frames).
	attachD     counts
	attachEpoch uint64
	attachOK    bool
	// context is the cause of published frames this consumer did not get
	// (a sequence gap) before the next frame: missed, or evicted after a
	// re-attach that followed an eviction.
	context loss.Cause
	// unexplained counts frame ids skipped that no count explains (not
	// recorded: not a loss the ring knows of).
	unexplained uint64
}

func newAccountant(pos position) *accountant {
	return &accountant{pos: pos, context: loss.Missed}
}

// gapList collects the gaps for one frame; it is a small helper that keeps
// zero counts out and clamps counts to a budget.
type gapList struct {
	epoch       uint64 // the producer run of the lost frames
	first, last uint64 // id range every gap of the list covers
	gaps        []archive.Gap
}

func (l *gapList) add(c loss.Cause, n uint64) {
	if n == 0 {
		return
	}
	l.gaps = append(l.gaps, archive.Gap{FirstID: l.first, LastID: l.last, Count: n, Cause: c, Epoch: l.epoch})
}

// addPublished adds the n published frames with ring seqs firstSeq..lastSeq
// that this consumer did not get.
func (l *gapList) addPublished(c loss.Cause, n, firstSeq, lastSeq uint64) {
	if n == 0 {
		return
	}
	l.gaps = append(l.gaps, archive.Gap{FirstID: l.first, LastID: l.last, Count: n, Cause: c, Epoch: l.epoch, FirstSeq: firstSeq, LastSeq: lastSeq})
}

// addDrops adds d by cause, in code order, taking at most *budget frames
// (nil: no budget), and returns what it took.
func (l *gapList) addDrops(d counts, budget *uint64) counts {
	var took counts
	for c, n := range d {
		if n == 0 {
			continue
		}
		if budget != nil {
			n = min(n, *budget)
			*budget -= n
		}
		took[c] = n
		l.add(loss.Cause(c), n)
	}
	return took
}

// idRange is the id range that holds n lost frames with ids below next and
// above last: [last+1, next-1] if it is large enough, else every id (the
// producer's ids do not count its frames).
func idRange(last, next, n uint64) (uint64, uint64) {
	if next > last+1 && next-last-1 >= n {
		return last + 1, next - 1
	}
	return 0, math.MaxUint64
}

// frame accounts for frame m of producer epoch e and returns the losses
// between the last accounted frame and m, to be recorded before m. snap is
// called only when the ring's counters are needed. The path of a frame
// without losses allocates nothing.
func (a *accountant) frame(e uint64, m ringbuf.Meta, snap snapFunc) []archive.Gap {
	prev := a.pos
	ctxCause := a.context
	a.pos = position{known: true, epoch: e, lastID: m.FrameID, lastSeq: m.Seq, ringSeq: m.Seq}
	if a.catchUpTo != 0 {
		if e == prev.epoch && m.Seq <= a.catchUpTo {
			a.pos.lastSeq = 0 // still catching up: the next frame too follows the restart rule
		} else {
			a.catchUpTo = 0
		}
	}
	a.context = loss.Missed
	switch {
	case !prev.known:
		// The first frame of a fresh archive: what came before was not ours.
		a.rebase(e, snap)
		return nil
	case prev.epoch == e && prev.lastSeq != 0:
		return a.sameAttachment(prev, e, &m, ctxCause, snap)
	case prev.epoch == e:
		return a.afterDowntime(prev, e, &m, snap)
	default:
		return a.newRun(prev, e, &m, snap)
	}
}

// idGap is the number of frame ids between the last accounted frame and m.
func idGap(prev position, m *ringbuf.Meta) uint64 {
	if m.FrameID > prev.lastID {
		return m.FrameID - prev.lastID - 1
	}
	return 0
}

// sameAttachment accounts for a frame of the run and attachment the last
// one came through: the published frames between them this consumer did
// not get (by ring seq), the drops right before m (exact, DropsBefore),
// and the drops before the frames it did not get (fallback: counters).
func (a *accountant) sameAttachment(prev position, e uint64, m *ringbuf.Meta, ctxCause loss.Cause, snap snapFunc) []archive.Gap {
	var seqGap uint64
	if m.Seq > prev.lastSeq {
		seqGap = m.Seq - prev.lastSeq - 1
	}
	before, several := dropsBefore(m)
	exact := before.Total()
	if seqGap == 0 && exact == 0 && several == 0 {
		if ids := idGap(prev, m); ids > 0 {
			a.unexplained += ids // the ring dropped nothing: the source's ids skip
		}
		return nil
	}
	ids := idGap(prev, m)
	first, last := idRange(prev.lastID, m.FrameID, max(ids, seqGap+exact+several))
	l := gapList{epoch: e, first: first, last: last}
	l.addPublished(ctxCause, seqGap, prev.lastSeq+1, m.Seq-1)
	// Exact: what the producer dropped right before m.
	a.correct(e, &before, &l, snap)
	l.addDrops(before, nil)
	a.base = addCounts(a.base, before)
	// Fallback: the split of a "several" word, and what was dropped before
	// the frames this consumer did not get (their DropsBefore went with
	// them), from the ring's counters within the ids' budget.
	budget := several
	if seqGap > 0 && ids > seqGap+exact+several {
		budget += ids - seqGap - exact - several
	}
	if budget > 0 {
		if now, ne, ok := snap(); ok && ne == e {
			if !a.baseOK {
				// No baseline for this ring: every count it shows may be
				// older than our position.
				a.base, a.baseOK = now, true
			}
			took := l.addDrops(subFloor(now, a.base), &budget)
			a.base = addCounts(a.base, took)
			a.spec = addCounts(a.spec, took)
			if budget > 0 {
				a.reserve = subFloor(a.reserve, l.addDrops(a.reserve, &budget))
			}
		}
		a.unexplained += budget
	}
	return l.gaps
}

// correct reconciles a frame's exact DropsBefore with what the fallback
// attributed earlier from a table that ran ahead: if the table now cannot
// hold both what was attributed and what before lists for a cause, the
// overlap was counted already (by the fallback, as this cause, for drops
// that were in truth of other causes and earlier); it is taken out of
// before, and the same number of drops is recorded under the causes the
// table shows unattributed (the ones the fallback should have taken).
// Only called work when spec and before share a cause.
func (a *accountant) correct(e uint64, before *counts, l *gapList, snap snapFunc) {
	shared := false
	for c, n := range before {
		shared = shared || (n > 0 && a.spec[c] > 0)
	}
	if !shared {
		return
	}
	now, ne, ok := snap()
	if !ok || ne != e {
		return
	}
	var moved uint64
	for c, n := range before {
		if n == 0 || a.spec[c] == 0 || a.base[c]+n <= now[c] {
			continue
		}
		o := min(a.base[c]+n-now[c], a.spec[c], n)
		before[c] -= o
		a.spec[c] -= o
		moved += o
	}
	if moved > 0 {
		avail := subFloor(subFloor(now, a.base), *before)
		took := l.addDrops(avail, &moved)
		a.base = addCounts(a.base, took)
		a.unexplained += moved
	}
}

// afterDowntime accounts for the first frame of the producer run the
// archive ends with, after this archiver was not running: the published
// frames it did not get (by ring seq, when the archive has them) were
// "consumer_down", as are the drops before them, whose causes went with
// them; the drops right before m are exact (DropsBefore).
func (a *accountant) afterDowntime(prev position, e uint64, m *ringbuf.Meta, snap snapFunc) []archive.Gap {
	// The ring position is lost with the process, so is the baseline.
	a.rebase(e, snap)
	ids := idGap(prev, m)
	before, several := dropsBefore(m)
	l := gapList{epoch: e, first: prev.lastID + 1, last: m.FrameID - 1}
	if ids == 0 {
		if before.Total()+several > 0 {
			a.unexplained += before.Total() + several // ids say nothing was lost
		}
		return nil
	}
	if prev.ringSeq == 0 || m.Seq <= prev.ringSeq {
		// No ring seqs to tell published frames from drops (a version 1
		// archive): every id between was lost while the archiver was down.
		l.add(loss.ConsumerDown, ids)
		return l.gaps
	}
	seqGap := m.Seq - prev.ringSeq - 1
	budget := ids
	take := func(n uint64) uint64 { n = min(n, budget); budget -= n; return n }
	l.addPublished(loss.ConsumerDown, take(seqGap), prev.ringSeq+1, m.Seq-1)
	l.addDrops(before, &budget)      // exact: right before m
	l.add(loss.ConsumerDown, budget) // dropped while the archiver was down, before frames it did not see: causes unknown to it
	return l.gaps
}

// newRun accounts for the first frame of another producer run (prev.epoch
// 0: an unknown run): the old run's trailing drops, the frames the new run
// published before this consumer got one (producer_restart, by ring seq),
// and the new run's drops (exact before m, the rest from its counters).
func (a *accountant) newRun(prev position, e uint64, m *ringbuf.Meta, snap snapFunc) []archive.Gap {
	now, ne, ok := snap()
	if !ok || ne != e {
		now = counts{}
	}
	a.base, a.baseOK = now, ok && ne == e
	a.reserve = counts{}
	if a.attachOK && a.attachEpoch == e && a.baseOK {
		// Only the drops counted at the attach certainly came before
		// this frame; the rest may be the next gap's.
		a.reserve = subFloor(now, a.attachD)
		now = a.attachD
	}
	before, several := dropsBefore(m)
	if several == 0 {
		// Exact: what DropsBefore lists came before m, whatever the
		// counters at the attach said.
		for c, n := range before {
			now[c] = max(now[c], n)
		}
	}
	trailing := a.trailing
	a.trailing = counts{}
	var pre uint64 // published by the new run before this consumer got a frame
	if m.Seq > 1 {
		pre = m.Seq - 1
	}
	ids := idGap(prev, m)
	if ids > 0 {
		// Ids continue across the restart (a camera's counter): the ids
		// between are lost, explained by drop counters where they can be.
		l := gapList{epoch: e, first: prev.lastID + 1, last: m.FrameID - 1}
		budget := ids
		if trailing.Total() > 0 {
			old := gapList{epoch: prev.epoch, first: l.first, last: l.last}
			old.addDrops(trailing, &budget)
			l.gaps = old.gaps
		}
		if pre > 0 {
			n := min(pre, budget)
			budget -= n
			l.addPublished(loss.ProducerRestart, n, 1, n)
		}
		l.addDrops(now, &budget)
		l.add(loss.ProducerRestart, budget)
		return l.gaps
	}
	// Ids restarted: record what is known. The old run's trailing drops
	// followed its last frame.
	l := gapList{epoch: prev.epoch, first: prev.lastID + 1, last: prev.lastID + max(trailing.Total(), 1)}
	if l.last < l.first { // overflow at the top of the id space
		l.first, l.last = 0, math.MaxUint64
	}
	l.addDrops(trailing, nil)
	if known := pre + now.Total(); known > 0 {
		// Below the first id we got, if the ids count frames.
		n := gapList{epoch: e, first: 0, last: math.MaxUint64}
		if m.FrameID >= known {
			n.first, n.last = m.FrameID-known, m.FrameID-1
		}
		n.addPublished(loss.ProducerRestart, pre, 1, pre)
		n.addDrops(now, nil)
		l.gaps = append(l.gaps, n.gaps...)
	}
	return l.gaps
}

// endGaps returns the gaps for the drops of an ended ring that no frame
// followed, when no next run will: the archiver stops. With frame ids
// counting frames, they are the ids right after the last frame; the
// position moves past them, so that a later start does not count them again.
func (a *accountant) endGaps() []archive.Gap {
	n := a.trailing.Total()
	if n == 0 || !a.pos.known || a.pos.lastID > math.MaxUint64-n {
		return nil
	}
	l := gapList{epoch: a.pos.epoch, first: a.pos.lastID + 1, last: a.pos.lastID + n}
	l.addDrops(a.trailing, nil)
	a.trailing = counts{}
	a.pos.lastID += n
	return l.gaps
}

// rebase takes the ring's counters as the baseline for epoch e.
func (a *accountant) rebase(e uint64, snap snapFunc) {
	now, ne, ok := snap()
	a.base, a.baseOK = now, ok && ne == e
	a.trailing, a.reserve = counts{}, counts{}
	if a.baseOK && a.attachOK && a.attachEpoch == e {
		a.reserve = subFloor(now, a.attachD)
	}
}

// catchUp notes, right after an attach, the ring's epoch and last published
// sequence: if the archive's last frame belongs to that same producer run,
// this process has not seen it run (a restarted archiver) and the archive
// has no ring seqs to compare with (version 1), the frames it now receives
// up to that sequence are a catch-up (see catchUpTo).
func (a *accountant) catchUp(e, published uint64) {
	if a.pos.known && a.pos.lastSeq == 0 && a.pos.ringSeq == 0 && a.pos.epoch == e && published != 0 {
		a.catchUpTo = published
	}
}

// attached notes the ring's counters when this consumer attached.
func (a *accountant) attached(d counts, e uint64, ok bool) {
	a.attachD, a.attachEpoch, a.attachOK = d, e, ok
}

// evicted notes that this consumer was evicted: the frames published until
// it is attached again are lost for that cause.
func (a *accountant) evicted() { a.context = loss.Evicted }

// ringEnded notes that the producer closed the ring or died, with its final
// counters: the drops after the last frame are carried to the next run.
func (a *accountant) ringEnded(now counts, e uint64, ok bool) {
	if ok && a.baseOK && a.pos.epoch == e {
		a.trailing = addCounts(a.trailing, subFloor(now, a.base))
		a.base = now
	}
}
