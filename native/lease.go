package native

// Frame leases, shared by both backends.
//
// Invariants kept by this file:
//
//  1. A Frame is a value {table, slot index, generation}. It is live iff its
//     table is not closed, the slot is held, and the slot's generation equals
//     the Frame's. Generations only grow: begin and end each increment the
//     slot's, so a copy of a Frame from an earlier lease never matches a
//     later lease of the same buffer, and a lease ends at most once (two
//     goroutines ending one lease serialize on the table's mutex; the second
//     sees the new generation and gets ErrLeaseEnded).
//  2. While a slot is held, the device holds the buffer in its DELIVERED
//     state (nobody but the lease holder reads or writes it). A lease ends
//     only after the device accepted the transition (requeue or detach), so
//     the two sides never disagree about who holds a buffer.
//  3. slot.mem is set by Announce/Allocate and cleared by Revoke/Close, all
//     under the table's mutex, so a leased slot always has its memory.
//  4. Lock order: leases.mu, then the device's own lock (the C device mutex
//     inside an SDK call, or Synthetic.mu). A device never calls into the
//     table while holding its own lock.
//
// Everything on the Dequeue/Requeue path here allocates nothing: Frame is a
// small value, errors are built only on failure.

import (
	"fmt"
	"sync"
)

// leaseOwner is the device side of a lease: the two transitions that end
// one. Both are called with leases.mu held.
type leaseOwner interface {
	requeueBuffer(id BufferID) Status // DELIVERED -> QUEUED
	detachBuffer(id BufferID) Status  // DELIVERED -> idle with the caller
}

// leases is one device's table of buffers as the Go side sees them: their
// memory and, for the ones dequeued, the current lease.
type leases struct {
	owner leaseOwner // immutable

	mu     sync.Mutex
	closed bool
	slots  []leaseSlot // by buffer index
}

type leaseSlot struct {
	mem  []byte // the whole buffer; nil if no buffer has this index
	gen  uint64
	held bool
	info FrameInfo
}

// setBuffer records the memory of a new buffer. Needs l.mu.
func (l *leases) setBuffer(id BufferID, mem []byte) {
	i := id.index()
	if i >= len(l.slots) {
		l.slots = append(l.slots, make([]leaseSlot, i+1-len(l.slots))...)
	}
	l.slots[i].mem = mem
	l.slots[i].held = false
}

// clearBuffer forgets a revoked buffer. Needs l.mu.
func (l *leases) clearBuffer(id BufferID) {
	if i := id.index(); i < len(l.slots) {
		l.slots[i].mem = nil
	}
}

// begin starts the lease of a buffer the device just moved to DELIVERED.
func (l *leases) begin(info FrameInfo) (Frame, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Frame{}, ErrClosed
	}
	i := info.Buffer.index()
	if i >= len(l.slots) || l.slots[i].mem == nil || l.slots[i].held ||
		info.Length <= 0 || info.Length > len(l.slots[i].mem) {
		// The device reported a buffer this table does not know, or a
		// frame larger than its buffer: hand the buffer back rather than
		// expose memory we cannot vouch for.
		l.owner.detachBuffer(info.Buffer)
		return Frame{}, fmt.Errorf("lease buffer %#x: %w: device reported %d bytes", uint64(info.Buffer), ErrBufferSize, info.Length)
	}
	s := &l.slots[i]
	s.gen++
	s.held = true
	s.info = info
	return Frame{l: l, slot: uint32(i), gen: s.gen}, nil
}

// close ends every lease and forgets every buffer: from now on every Frame
// of this device reports ErrClosed and Bytes returns nil.
func (l *leases) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for i := range l.slots {
		s := &l.slots[i]
		if s.held {
			s.held = false
			s.gen++
		}
		s.mem = nil
	}
}

// Frame is a lease on a filled buffer, returned by Dequeue.
//
// The lease ends exactly once, by Requeue (the buffer goes back to the
// device's input pool) or Detach (the buffer goes back to the caller, idle,
// to be queued or revoked later). After it ends, or after the device
// closes, Bytes returns nil and the other methods return ErrLeaseEnded or
// ErrClosed. The zero Frame is an ended lease.
//
// A Frame is a small value: copies name the same lease, and ending it
// through one copy ends it for all. Its methods are safe for concurrent
// use; concurrent attempts to end it succeed once.
type Frame struct {
	l    *leases
	slot uint32
	gen  uint64
}

// live returns the frame's slot if the lease is live. Needs f.l.mu.
func (f Frame) live() (*leaseSlot, error) {
	if f.l.closed {
		return nil, ErrClosed
	}
	if int(f.slot) >= len(f.l.slots) {
		return nil, ErrLeaseEnded
	}
	s := &f.l.slots[f.slot]
	if !s.held || s.gen != f.gen {
		return nil, ErrLeaseEnded
	}
	return s, nil
}

// Bytes returns the frame: Info().Length bytes at the start of the buffer.
// The slice aliases the buffer (shared memory for announced buffers, the
// device's own memory for allocated ones): it is valid only until the lease
// ends or the device closes, and must not be used after that (a device's
// allocated memory is unmapped at Close, and touching it faults). Bytes
// returns nil if the lease has ended.
func (f Frame) Bytes() []byte {
	if f.l == nil {
		return nil
	}
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	s, err := f.live()
	if err != nil {
		return nil
	}
	n := s.info.Length
	return s.mem[:n:n]
}

// Info returns the frame's metadata.
func (f Frame) Info() (FrameInfo, error) {
	if f.l == nil {
		return FrameInfo{}, fmt.Errorf("frame info: %w", ErrLeaseEnded)
	}
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	s, err := f.live()
	if err != nil {
		return FrameInfo{}, fmt.Errorf("frame info: %w", err)
	}
	return s.info, nil
}

// CopyTo copies the frame into dst, which must hold Info().Length bytes,
// and returns the number of bytes copied. This is the safe-copy path: dst
// may be any memory, the copy holds the device's lease table locked so a
// concurrent Close cannot unmap the source under it, and the lease stays
// live (end it with Requeue).
func (f Frame) CopyTo(dst []byte) (int, error) {
	if f.l == nil {
		return 0, fmt.Errorf("copy frame: %w", ErrLeaseEnded)
	}
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	s, err := f.live()
	if err != nil {
		return 0, fmt.Errorf("copy frame: %w", err)
	}
	if len(dst) < s.info.Length {
		return 0, fmt.Errorf("copy frame %d: %w: %d-byte destination for %d bytes", s.info.FrameID, ErrBufferSize, len(dst), s.info.Length)
	}
	return copy(dst, s.mem[:s.info.Length]), nil
}

// Requeue ends the lease and gives the buffer back to the device's input
// pool, to be filled again. It allocates nothing.
func (f Frame) Requeue() error {
	if _, err := f.end(false); err != nil {
		return fmt.Errorf("requeue frame: %w", err)
	}
	return nil
}

// Detach ends the lease and gives the buffer back to the caller, idle: the
// device no longer holds it, its bytes stay as filled, and the caller may
// Queue or Revoke it later. This is the zero-copy path: a producer
// publishes the filled memory in place and queues a different free buffer.
// It returns the buffer's id.
func (f Frame) Detach() (BufferID, error) {
	id, err := f.end(true)
	if err != nil {
		return 0, fmt.Errorf("detach frame: %w", err)
	}
	return id, nil
}

func (f Frame) end(detach bool) (BufferID, error) {
	if f.l == nil {
		return 0, ErrLeaseEnded
	}
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	s, err := f.live()
	if err != nil {
		return 0, err
	}
	id := s.info.Buffer
	var st Status
	if detach {
		st = f.l.owner.detachBuffer(id)
	} else {
		st = f.l.owner.requeueBuffer(id)
	}
	if st != StatusOK {
		return 0, st
	}
	s.held = false
	s.gen++
	return id, nil
}
