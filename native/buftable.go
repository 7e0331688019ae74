package native

// The buffer table: the one state machine of buffers a Go-side source
// lends to a thread of its own (the synthetic source's acquisition
// goroutine, Aravis's receive thread). The C sources keep theirs in C,
// beside their threads (frsdk.c buffer_op, frgst.c).
//
// States, and who may touch a buffer's memory in each:
//
//	FREE       no buffer in the slot
//	ANNOUNCED  idle with the caller (announced, detached, or given back by Stop)
//	QUEUED     the device's: in its input pool; a native thread may write it
//	           (Aravis: pushed into the stream)
//	FILLING    the device's thread writes a frame into it (the synthetic source)
//	OUTPUT     filled, awaiting Dequeue; nobody writes it
//	DELIVERED  leased to the caller (a Frame, lease.go); nobody else touches it
//
// The legal moves (move, apply), from -> to:
//
//	ANNOUNCED -> QUEUED     Queue
//	ANNOUNCED -> FREE       Revoke (revoke)
//	QUEUED    -> FILLING    the device's thread takes it to write a frame
//	QUEUED    -> DELIVERED  a frame the native thread wrote in place, popped by Dequeue (Aravis)
//	QUEUED    -> ANNOUNCED  Stop gives it back, unfilled
//	FILLING   -> OUTPUT     the frame is written
//	FILLING   -> QUEUED     given back unfilled (a replay that ended or stopped)
//	OUTPUT    -> DELIVERED  Dequeue leases it
//	OUTPUT    -> ANNOUNCED  Stop discards it
//	DELIVERED -> QUEUED     Frame.Requeue
//	DELIVERED -> ANNOUNCED  Frame.Detach
//
// A FREE slot becomes ANNOUNCED only by claim; every buffer becomes FREE at
// once by reset (Close). Any other move is refused with StatusBufferState
// and changes nothing.
//
// Invariants kept by this file:
//
//  1. Memory lent to a native thread is never released while that thread
//     may write it: a buffer becomes FREE (its memory forgotten, the
//     owner's native object freed) only from ANNOUNCED, or by reset, which
//     the owner calls only once it has stopped (joined) every thread it
//     lent buffers to. The owner, for its part, moves a buffer out of
//     QUEUED or FILLING only once its thread has given it back (the
//     synthetic goroutine: filled, or returned; Aravis: popped, or its
//     stream freed), so no ANNOUNCED buffer is held by any thread of the
//     device. Nothing here hands a buffer's memory to anyone: the owner
//     leases only a DELIVERED buffer's (lease.go).
//  2. Every field is guarded by the owner's mutex: every method needs it
//     held. Only this file writes a slot's gen and state, and its mem
//     (but for memory the owner allocates with the slot's index, which it
//     sets right after claim under the same hold); the owner owns x.
//  3. held is the number of DELIVERED buffers and announced the number of
//     buffers that are not FREE, at every return of a method: the only
//     writer of a state is set, which keeps them.
//  4. A live buffer's id is tag | gen | index with gen != 0; a slot's gen
//     only grows (mod 2^24, skipping 0), at each claim, so the id of a
//     revoked buffer, or of another device, is never found.
//  5. Once closed is set, claim, apply and revoke fail with
//     StatusInvalidHandle before any other check.

import (
	"sync/atomic"
	"unsafe"
)

type bufState uint8

const (
	bufFree bufState = iota
	bufAnnounced
	bufQueued
	bufFilling
	bufOutput
	bufDelivered
	nBufStates
)

var bufStateNames = [nBufStates]string{"FREE", "ANNOUNCED", "QUEUED", "FILLING", "OUTPUT", "DELIVERED"}

func (s bufState) String() string {
	if s < nBufStates {
		return bufStateNames[s]
	}
	return "bufState(?)"
}

// bufMoves is the table above: bufMoves[from] has bit to set for every
// legal move from -> to.
var bufMoves = [nBufStates]uint8{
	bufAnnounced: 1<<bufQueued | 1<<bufFree,
	bufQueued:    1<<bufFilling | 1<<bufDelivered | 1<<bufAnnounced,
	bufFilling:   1<<bufOutput | 1<<bufQueued,
	bufOutput:    1<<bufDelivered | 1<<bufAnnounced,
	bufDelivered: 1<<bufQueued | 1<<bufAnnounced,
}

// legalMove reports whether from -> to is in the table.
func legalMove(from, to bufState) bool {
	return from < nBufStates && to < nBufStates && bufMoves[from]&(1<<to) != 0
}

// deviceTags hands out device tags for buffer ids (16 bits, never 0).
var deviceTags atomic.Uint32

// nextTag returns a new device tag: buffer ids of two devices never match.
func nextTag() uint64 {
	tag := uint64(deviceTags.Add(1) & 0xFFFF)
	if tag == 0 {
		tag = uint64(deviceTags.Add(1) & 0xFFFF)
	}
	return tag
}

// bufTable is one device's buffers, by index, with their states (see the
// top of this file). X is the owner's own per-buffer data.
type bufTable[X any] struct {
	tag       uint64 // immutable once the owner is shared
	closed    bool   // the owner closed: invariant 5
	slots     []bufSlot[X]
	held      int // DELIVERED buffers (invariant 3)
	announced int // buffers not FREE (invariant 3)
}

// bufSlot is one buffer. The table writes every field but x (invariant 2).
type bufSlot[X any] struct {
	mem   []byte // the whole buffer; nil while FREE
	gen   uint64
	state bufState
	x     X
}

func newBufTable[X any]() bufTable[X] { return bufTable[X]{tag: nextTag()} }

// id is the BufferID of slot i's current buffer.
func (t *bufTable[X]) id(i int) BufferID {
	return BufferID(t.tag<<(idIndexBits+idGenBits) | (t.slots[i].gen&idGenMask)<<idIndexBits | uint64(i))
}

// find returns the index of the live buffer id names, or -1.
func (t *bufTable[X]) find(id BufferID) int {
	i := id.index()
	if uint64(id)>>(idIndexBits+idGenBits) != t.tag || i >= len(t.slots) ||
		t.slots[i].state == bufFree || t.id(i) != id {
		return -1
	}
	return i
}

// claim takes a FREE slot for a buffer of size bytes and makes it
// ANNOUNCED: at mem (len(mem) == size), which must not overlap a live
// buffer's memory, or, with mem nil, at memory the owner allocates (with
// the slot's index: Aravis) and stores in slots[i].mem before it releases
// its mutex. need is the least size a buffer must have. The checks, in
// order: closed (StatusInvalidHandle), size (StatusBufferSize), overlap
// (StatusOverlap), a free slot (StatusResource, at MaxBuffers).
func (t *bufTable[X]) claim(mem []byte, size, need int) (int, Status) {
	if t.closed {
		return -1, StatusInvalidHandle
	}
	if size < need {
		return -1, StatusBufferSize
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	hi := lo + uintptr(len(mem))
	free := -1
	for i := range t.slots {
		b := &t.slots[i]
		if b.state == bufFree {
			if free < 0 {
				free = i
			}
			continue
		}
		blo := uintptr(unsafe.Pointer(unsafe.SliceData(b.mem)))
		if len(mem) > 0 && len(b.mem) > 0 && lo < blo+uintptr(len(b.mem)) && blo < hi {
			return -1, StatusOverlap
		}
	}
	if free < 0 {
		if len(t.slots) == MaxBuffers {
			return -1, StatusResource
		}
		t.slots = append(t.slots, bufSlot[X]{})
		free = len(t.slots) - 1
	}
	b := &t.slots[free]
	gen := (b.gen + 1) & idGenMask
	if gen == 0 {
		gen = 1
	}
	*b = bufSlot[X]{mem: mem, gen: gen}
	t.set(free, bufAnnounced)
	return free, StatusOK
}

// apply moves the buffer id names from state from to state to, for a call
// of the device's user (Queue, Frame.Requeue, Frame.Detach): it returns
// the buffer's index, or StatusInvalidHandle once closed,
// StatusUnknownBuffer for an id that names no live buffer of this table,
// and StatusBufferState when the buffer is not in from or from -> to is
// not a legal move; an error changes nothing.
func (t *bufTable[X]) apply(id BufferID, from, to bufState) (int, Status) {
	i, st := t.lookup(id)
	if st == StatusOK {
		st = t.move(i, from, to)
	}
	return i, st
}

// revoke is apply(id, bufAnnounced, bufFree) for Revoke, returning the
// buffer as it was, so that the owner can release what it held for it.
func (t *bufTable[X]) revoke(id BufferID) (bufSlot[X], Status) {
	i, st := t.lookup(id)
	if st != StatusOK {
		return bufSlot[X]{}, st
	}
	old := t.slots[i]
	if st := t.move(i, bufAnnounced, bufFree); st != StatusOK {
		return bufSlot[X]{}, st
	}
	return old, StatusOK
}

// lookup is the index of the live buffer id names, checked as apply says.
func (t *bufTable[X]) lookup(id BufferID) (int, Status) {
	if t.closed {
		return -1, StatusInvalidHandle
	}
	if i := t.find(id); i >= 0 {
		return i, StatusOK
	}
	return -1, StatusUnknownBuffer
}

// move moves buffer i from state from to state to, for the device itself
// (its thread, Dequeue, Stop): StatusUnknownBuffer if i is no slot,
// StatusBufferState if the buffer is not in from or from -> to is not a
// legal move; an error changes nothing. It works on a closed table too:
// Stop and Close give the buffers back after closed is set.
func (t *bufTable[X]) move(i int, from, to bufState) Status {
	if i < 0 || i >= len(t.slots) {
		return StatusUnknownBuffer
	}
	if t.slots[i].state != from || !legalMove(from, to) {
		return StatusBufferState
	}
	t.set(i, to)
	return StatusOK
}

// set is the only writer of a state: it keeps held and announced
// (invariant 3), and forgets a FREE buffer's memory and owner data.
func (t *bufTable[X]) set(i int, to bufState) {
	b := &t.slots[i]
	switch {
	case b.state == bufDelivered && to != bufDelivered:
		t.held--
	case b.state != bufDelivered && to == bufDelivered:
		t.held++
	}
	switch {
	case b.state == bufFree && to != bufFree:
		t.announced++
	case b.state != bufFree && to == bufFree:
		t.announced--
		*b = bufSlot[X]{gen: b.gen}
		return
	}
	b.state = to
}

// fits reports whether every live buffer holds at least need bytes.
func (t *bufTable[X]) fits(need int) bool {
	for i := range t.slots {
		if t.slots[i].state != bufFree && len(t.slots[i].mem) < need {
			return false
		}
	}
	return true
}

// count returns the number of buffers in state s.
func (t *bufTable[X]) count(s bufState) int {
	n := 0
	for i := range t.slots {
		if t.slots[i].state == s {
			n++
		}
	}
	return n
}

// reset forgets every buffer (Close), keeping each slot's gen so that no
// old id is found again. The owner calls it only once no thread of its
// own, nor a native one, can touch any buffer (invariant 1), with closed
// set.
func (t *bufTable[X]) reset() {
	for i := range t.slots {
		t.slots[i] = bufSlot[X]{gen: t.slots[i].gen}
	}
	t.held, t.announced = 0, 0
}
