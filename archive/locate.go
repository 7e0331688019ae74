package archive

// Finding frames by their identity, the ring's (epoch, sequence number),
// through the segments' indexes.
//
// Invariant: an index entry only points the way. A lookup checks the
// entries it relies on (the first and last of each segment) against the
// records they point to and rebuilds a segment's entries by a scan when one
// does not hold up; whoever then reads the records (Export) matches their
// own, checked headers, so a damaged index can make a lookup miss, never
// return a wrong frame.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrAmbiguous is returned when a ring sequence number is asked for without
// an epoch and the archive holds it in more than one producer run.
var ErrAmbiguous = errors.New("sequence number in more than one epoch")

// EpochInfo is what the archive holds of one producer run (one ring epoch).
type EpochInfo struct {
	Epoch uint64
	// FirstSeq and LastSeq are the smallest and largest ring sequence
	// numbers its records carry (frames, and gaps of published frames).
	FirstSeq, LastSeq uint64
	// Records is how many records carry this epoch, FirstRecord and
	// LastRecord the first and last one's record sequence numbers.
	Records                 uint64
	FirstRecord, LastRecord uint64
}

// Selection picks frames to read or export.
type Selection struct {
	// Epoch is the producer run; 0 means the only one that holds ring
	// sequence numbers in [From, To] (ErrAmbiguous if several do).
	Epoch uint64
	// From and To are ring sequence numbers, inclusive.
	From, To uint64
	// Records makes From and To record sequence numbers instead (the
	// archive's own numbering; the only one version 1 records have), and
	// Epoch is ignored.
	Records bool
}

// String says what s selects, for messages.
func (s Selection) String() string {
	switch {
	case s.Records:
		return fmt.Sprintf("records %d..%d", s.From, s.To)
	case s.Epoch == 0:
		return fmt.Sprintf("ring seqs %d..%d", s.From, s.To)
	}
	return fmt.Sprintf("epoch %016x ring seqs %d..%d", s.Epoch, s.From, s.To)
}

// span is where a selection lies: the record sequence numbers to read, and
// the epoch the frames must carry.
type span struct {
	epoch                   uint64
	firstRecord, lastRecord uint64
}

// Epochs lists the producer runs whose records the archive holds, in the
// order of their first record. Version 1 records carry no epoch and are
// not listed.
func (r *Reader) Epochs() ([]EpochInfo, error) {
	var out []EpochInfo
	err := r.eachEntry(func(e idxEntry) {
		if e.epoch == 0 {
			return
		}
		i := slices.IndexFunc(out, func(x EpochInfo) bool { return x.Epoch == e.epoch })
		if i < 0 {
			out = append(out, EpochInfo{Epoch: e.epoch, FirstSeq: e.ringSeq, LastSeq: e.ringSeq, FirstRecord: e.seq})
			i = len(out) - 1
		}
		x := &out[i]
		x.Records++
		x.LastRecord = e.seq
		if e.ringSeq != 0 {
			if x.FirstSeq == 0 || e.ringSeq < x.FirstSeq {
				x.FirstSeq = e.ringSeq
			}
			x.LastSeq = max(x.LastSeq, e.ringSeq)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ResolveEpoch returns the one epoch of the archive whose 16-digit hex form
// starts with prefix (case-insensitive), ErrNotFound if none does, or
// ErrAmbiguous if several do.
func (r *Reader) ResolveEpoch(prefix string) (uint64, error) {
	eps, err := r.Epochs()
	if err != nil {
		return 0, err
	}
	prefix = strings.ToLower(prefix)
	var found []uint64
	for _, e := range eps {
		if strings.HasPrefix(fmt.Sprintf("%016x", e.Epoch), prefix) {
			found = append(found, e.Epoch)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("resolve epoch %q: %w", prefix, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("resolve epoch %q: %w: %s", prefix, ErrAmbiguous, epochList(found))
}

func epochList(eps []uint64) string {
	var b strings.Builder
	for i, e := range eps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%016x", e)
	}
	return b.String()
}

// locate finds the records a selection covers.
func (r *Reader) locate(sel Selection) (span, error) {
	if sel.From > sel.To {
		return span{}, fmt.Errorf("locate %v: %w", sel, ErrInvalid)
	}
	if sel.Records {
		return span{firstRecord: sel.From, lastRecord: sel.To}, nil
	}
	type hit struct{ first, last uint64 }
	hits := map[uint64]*hit{}
	var order []uint64
	err := r.eachEntry(func(e idxEntry) {
		if e.epoch == 0 || e.ringSeq < sel.From || e.ringSeq > sel.To || (sel.Epoch != 0 && e.epoch != sel.Epoch) {
			return
		}
		h := hits[e.epoch]
		if h == nil {
			h = &hit{first: e.seq}
			hits[e.epoch] = h
			order = append(order, e.epoch)
		}
		h.last = e.seq
	})
	if err != nil {
		return span{}, err
	}
	switch len(order) {
	case 0:
		return span{}, fmt.Errorf("locate %v in %s: %w", sel, r.dir, ErrNotFound)
	case 1:
		h := hits[order[0]]
		return span{epoch: order[0], firstRecord: h.first, lastRecord: h.last}, nil
	}
	return span{}, fmt.Errorf("locate %v in %s: %w: epochs %s", sel, r.dir, ErrAmbiguous, epochList(order))
}

// eachEntry calls fn for every record's index entry, in archive order.
// Segments whose header was refused are skipped.
func (r *Reader) eachEntry(fn func(idxEntry)) error {
	for i, s := range r.segs {
		if s.info.Err != nil {
			continue
		}
		if err := r.checkedEntries(i); err != nil {
			return err
		}
		for _, e := range s.ents {
			fn(e)
		}
	}
	return nil
}

// checkedEntries loads segment i's entries and checks its first and last
// against their records, rebuilding them by a scan if either does not hold.
func (r *Reader) checkedEntries(i int) error {
	s := r.segs[i]
	if s.loaded && (s.rebuilt || s.checked) {
		return nil
	}
	data, err := r.mapSeg(i)
	if err != nil {
		return err
	}
	if !s.loaded {
		if err := r.loadEntries(s, data, false); err != nil {
			return err
		}
	}
	ok := func(e idxEntry) bool {
		h, err := parseRecord(data, e.off, s.hdr.version)
		return err == nil && entryOf(e.off, &h) == e
	}
	n := len(s.ents)
	if n > 0 && !(ok(s.ents[0]) && ok(s.ents[n-1])) {
		return r.loadEntries(s, data, true)
	}
	// A short index (a live writer's, or one a crash cut) does not list the
	// records after its last entry: scan for them.
	end := recordStart(s.hdr)
	if n > 0 {
		h, _ := parseRecord(data, s.ents[n-1].off, s.hdr.version)
		end = s.ents[n-1].off + h.size()
	}
	if end < uint64(len(data)) {
		return r.loadEntries(s, data, true)
	}
	s.checked = true
	return nil
}
