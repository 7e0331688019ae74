package archiver

// The accountant: from the sequence of frames the ring delivers, the losses
// between them. Pure logic over plain values; the package comment says what
// each cause means.
//
// Invariants:
//   - pos is the last frame id accounted for: stored, or counted lost
//     (disk full, rejected). Every frame id the producer offered between two
//     accounted frames is in exactly one gap that frame(...) returns.
//   - base holds the ring's drop counters (of epoch pos.epoch) already
//     attributed to gaps; baseOK says base belongs to that epoch's ring.
//   - trailing holds the previous run's drops not yet bracketed by a frame;
//     it is non-zero only between a ring's end and the next run's first frame.
//   - reserve is the part of base that may belong to frames after pos: when
//     the baseline is taken at a frame F (the first after an attach), the
//     counters include drops that happened after F was published. The
//     counters at the attach (before F was published) bound them: reserve =
//     counters at F - counters at attach. A later gap the fresh counters do
//     not explain draws on the reserve before calling a loss unknown.

import (
	"math"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// drops are a ring's upstream loss counters, by cause.
type drops struct{ noSlot, underrun, source uint64 }

func dropsOf(s ringbuf.Snapshot) drops {
	// Layout v2's drop table, folded into the three causes this accountant
	// knows (blocked = v1's no-slot; every other ring cause = source).
	d := drops{noSlot: s.Drops[loss.Blocked], underrun: s.Drops[loss.Underrun]}
	d.source = s.Drops.Total() - d.noSlot - d.underrun
	return d
}

// sub returns d - o per cause, 0 where o is larger (a counter never shrinks
// within one ring; a smaller one means another ring).
func (d drops) sub(o drops) drops {
	s := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	return drops{s(d.noSlot, o.noSlot), s(d.underrun, o.underrun), s(d.source, o.source)}
}

func (d drops) add(o drops) drops {
	return drops{d.noSlot + o.noSlot, d.underrun + o.underrun, d.source + o.source}
}

func (d drops) total() uint64 { return d.noSlot + d.underrun + d.source }

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

// snapFunc returns the ring's drop counters now and the epoch they belong
// to; ok is false if the ring could not be read.
type snapFunc func() (d drops, epoch uint64, ok bool)

type accountant struct {
	// catchUpTo is the ring's last published sequence when a restarted
	// archiver attached to the same producer run as its archive: frames up
	// to it (and the first after it) are the catch-up on what was published
	// while the archiver was down. Their id gaps are losses of that
	// downtime (loss.ConsumerDown), and the position keeps lastSeq 0 until the
	// catch-up ends so that each is handled by the restart rule.
	catchUpTo uint64
	pos       position
	base      drops
	baseOK    bool
	trailing  drops
	reserve   drops
	// The ring's counters when this consumer attached (before the first
	// frame it gets was published).
	attachD     drops
	attachEpoch uint64
	attachOK    bool
	// context is the cause of published frames this consumer did not get
	// (a sequence gap) before the next frame: missed, or evicted after a
	// re-attach that followed an eviction.
	context loss.Cause
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

// addDrops adds d by cause, taking at most *budget frames (nil: no budget),
// and returns what it took.
func (l *gapList) addDrops(d drops, budget *uint64) drops {
	var took drops
	take := func(n uint64) uint64 {
		if budget != nil {
			n = min(n, *budget)
			*budget -= n
		}
		return n
	}
	took.noSlot = take(d.noSlot)
	took.underrun = take(d.underrun)
	took.source = take(d.source)
	l.add(loss.Blocked, took.noSlot)
	l.add(loss.Underrun, took.underrun)
	l.add(loss.SourceError, took.source)
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
// called only when the ring's counters are needed.
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
	id := m.FrameID
	var idGap uint64
	if id > prev.lastID {
		idGap = id - prev.lastID - 1
	}
	switch {
	case !prev.known:
		// The first frame of a fresh archive: what came before was not ours.
		a.rebase(e, snap)
		return nil

	case prev.epoch == e && prev.lastSeq != 0:
		// The same producer run and attachment.
		var seqGap uint64
		if m.Seq > prev.lastSeq {
			seqGap = m.Seq - prev.lastSeq - 1
		}
		if seqGap == 0 && idGap == 0 {
			return nil
		}
		upstream := idGap - min(seqGap, idGap)
		first, last := idRange(prev.lastID, id, max(idGap, seqGap))
		l := gapList{epoch: e, first: first, last: last}
		l.addPublished(ctxCause, seqGap, prev.lastSeq+1, m.Seq-1)
		if upstream > 0 {
			if now, ne, ok := snap(); ok && ne == e {
				if !a.baseOK {
					// No baseline for this ring: every count it shows
					// may be older than our position.
					a.base, a.baseOK = now, true
				}
				budget := upstream
				a.base = a.base.add(l.addDrops(now.sub(a.base), &budget))
				if budget > 0 {
					a.reserve = a.reserve.sub(l.addDrops(a.reserve, &budget))
				}
				upstream = budget
			}
			l.add(loss.Unknown, upstream)
		}
		return l.gaps

	case prev.epoch == e:
		// The same producer run, after this archiver was not running: its
		// ring position is lost with the process, so is the baseline.
		a.rebase(e, snap)
		if idGap == 0 {
			return nil
		}
		l := gapList{epoch: e, first: prev.lastID + 1, last: id - 1}
		l.add(loss.ConsumerDown, idGap)
		return l.gaps

	default:
		// Another producer run (prev.epoch 0: unknown run).
		now, ne, ok := snap()
		if !ok || ne != e {
			now = drops{}
		}
		a.base, a.baseOK = now, ok && ne == e
		a.reserve = drops{}
		if a.attachOK && a.attachEpoch == e && a.baseOK {
			// Only the drops counted at the attach certainly came before
			// this frame; the rest may be the next gap's.
			a.reserve = now.sub(a.attachD)
			now = a.attachD
		}
		trailing := a.trailing
		a.trailing = drops{}
		var pre uint64 // published by the new run before we attached
		if m.Seq > 1 {
			pre = m.Seq - 1
		}
		if idGap > 0 {
			// Ids continue across the restart (a camera's counter): the
			// ids between are lost, explained by drop counters where they can be.
			l := gapList{epoch: e, first: prev.lastID + 1, last: id - 1}
			budget := idGap
			l.addDrops(trailing, &budget)
			l.addDrops(now, &budget)
			l.add(loss.ProducerRestart, budget)
			return l.gaps
		}
		// Ids restarted: record what is known. The old run's trailing
		// drops followed its last frame.
		l := gapList{epoch: prev.epoch, first: prev.lastID + 1, last: prev.lastID + max(trailing.total(), 1)}
		if l.last < l.first { // overflow at the top of the id space
			l.first, l.last = 0, math.MaxUint64
		}
		l.addDrops(trailing, nil)
		known := pre + now.total()
		if known > 0 {
			// Below the first id we got, if the ids count frames.
			n := gapList{epoch: e, first: 0, last: math.MaxUint64}
			if id >= known {
				n.first, n.last = id-known, id-1
			}
			n.add(loss.ProducerRestart, pre)
			n.addDrops(now, nil)
			l.gaps = append(l.gaps, n.gaps...)
		}
		return l.gaps
	}
}

// endGaps returns the gaps for the drops of an ended ring that no frame
// followed, when no next run will: the archiver stops. With frame ids
// counting frames, they are the ids right after the last frame; the
// position moves past them, so that a later start does not count them again.
func (a *accountant) endGaps() []archive.Gap {
	n := a.trailing.total()
	if n == 0 || !a.pos.known || a.pos.lastID > math.MaxUint64-n {
		return nil
	}
	l := gapList{epoch: a.pos.epoch, first: a.pos.lastID + 1, last: a.pos.lastID + n}
	l.addDrops(a.trailing, nil)
	a.trailing = drops{}
	a.pos.lastID += n
	return l.gaps
}

// rebase takes the ring's counters as the baseline for epoch e.
func (a *accountant) rebase(e uint64, snap snapFunc) {
	now, ne, ok := snap()
	a.base, a.baseOK = now, ok && ne == e
	a.trailing, a.reserve = drops{}, drops{}
	if a.baseOK && a.attachOK && a.attachEpoch == e {
		a.reserve = now.sub(a.attachD)
	}
}

// catchUp notes, right after an attach, the ring's epoch and last published
// sequence: if the archive's last frame belongs to that same producer run
// and this process has not seen it run (a restarted archiver), the frames
// it now receives up to that sequence are a catch-up (see catchUpTo).
func (a *accountant) catchUp(e, published uint64) {
	if a.pos.known && a.pos.lastSeq == 0 && a.pos.epoch == e && published != 0 {
		a.catchUpTo = published
	}
}

// attached notes the ring's counters when this consumer attached, before
// the first frame it will get was published.
func (a *accountant) attached(d drops, e uint64, ok bool) {
	a.attachD, a.attachEpoch, a.attachOK = d, e, ok
}

// evicted notes that this consumer was evicted: the frames published until
// it is attached again are lost for that cause.
func (a *accountant) evicted() { a.context = loss.Evicted }

// ringEnded notes that the producer closed the ring or died, with its final
// counters: the drops after the last frame are carried to the next run.
func (a *accountant) ringEnded(now drops, e uint64, ok bool) {
	if ok && a.baseOK && a.pos.epoch == e {
		a.trailing = a.trailing.add(now.sub(a.base))
		a.base = now
	}
}
