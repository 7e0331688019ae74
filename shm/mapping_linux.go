package shm

// Invariant: every typed view returned by a Mapping (the []byte of Bytes,
// the words of Uint64At/Uint32At/ReadUint64At/ReadUint32At) points inside
// the mapping, is naturally aligned, and is valid until Close. The owner of
// the Mapping (ringbuf's Producer or Reader) drops every view before it
// calls Close; nothing here can enforce that, so owners keep a reference
// count of outstanding leases and unmap only when it reaches zero.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mapping is an owned shared mapping of a Segment.
type Mapping struct {
	mu       sync.Mutex
	data     []byte
	writable bool
}

// Bytes returns the mapped memory. It is valid until Close; writing to it
// when the mapping is read-only faults.
func (m *Mapping) Bytes() []byte { return m.data }

// Len is the mapping's length in bytes.
func (m *Mapping) Len() uint64 { return uint64(len(m.data)) }

// Writable reports whether the mapping was made writable.
func (m *Mapping) Writable() bool { return m.writable }

func (m *Mapping) word(off, size uint64) (unsafe.Pointer, error) {
	if m.data == nil {
		return nil, ErrClosed
	}
	if off%size != 0 || off > uint64(len(m.data)) || uint64(len(m.data))-off < size {
		return nil, fmt.Errorf("word at %d of %d bytes: %w", off, size, ErrInvalid)
	}
	return unsafe.Pointer(&m.data[off]), nil
}

// Uint64At returns the aligned 64-bit word at off as an atomic, for a
// writable mapping.
func (m *Mapping) Uint64At(off uint64) (*atomic.Uint64, error) {
	if !m.writable {
		return nil, fmt.Errorf("word at %d: %w: mapping is read-only", off, ErrInvalid)
	}
	p, err := m.word(off, 8)
	return (*atomic.Uint64)(p), err
}

// Uint32At returns the aligned 32-bit word at off as an atomic, for a
// writable mapping.
func (m *Mapping) Uint32At(off uint64) (*atomic.Uint32, error) {
	if !m.writable {
		return nil, fmt.Errorf("word at %d: %w: mapping is read-only", off, ErrInvalid)
	}
	p, err := m.word(off, 4)
	return (*atomic.Uint32)(p), err
}

// ReadUint64 is a 64-bit word of a mapping that may only be loaded.
type ReadUint64 struct{ p *atomic.Uint64 }

// Load atomically loads the word (an acquire load on every architecture
// Go supports).
func (w ReadUint64) Load() uint64 { return w.p.Load() }

// ReadUint32 is a 32-bit word of a mapping that may only be loaded, or
// waited on as a futex.
type ReadUint32 struct{ p *atomic.Uint32 }

// Load atomically loads the word.
func (w ReadUint32) Load() uint32 { return w.p.Load() }

// ReadUint64At returns the aligned 64-bit word at off for loading; it works
// on read-only and writable mappings.
func (m *Mapping) ReadUint64At(off uint64) (ReadUint64, error) {
	p, err := m.word(off, 8)
	return ReadUint64{(*atomic.Uint64)(p)}, err
}

// ReadUint32At returns the aligned 32-bit word at off for loading.
func (m *Mapping) ReadUint32At(off uint64) (ReadUint32, error) {
	p, err := m.word(off, 4)
	return ReadUint32{(*atomic.Uint32)(p)}, err
}

// Close unmaps the memory. Every view obtained from the mapping must have
// been dropped. Close is idempotent.
func (m *Mapping) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil
	}
	err := unix.Munmap(m.data)
	m.data = nil
	if err != nil {
		return fmt.Errorf("unmap: %w", err)
	}
	return nil
}

// Advise applies madvise(advice) to the whole mapping, for example to drop
// the pages of a closed ring or to ask for huge pages.
func (m *Mapping) Advise(advice int) error {
	if m.data == nil {
		return ErrClosed
	}
	return unix.Madvise(m.data, advice)
}

func (m *Mapping) words(off, n, size uint64) (unsafe.Pointer, error) {
	if m.data == nil {
		return nil, ErrClosed
	}
	if n == 0 || off%size != 0 || off > uint64(len(m.data)) || (uint64(len(m.data))-off)/size < n {
		return nil, fmt.Errorf("%d words of %d bytes at %d: %w", n, size, off, ErrInvalid)
	}
	return unsafe.Pointer(&m.data[off]), nil
}

// Uint64s returns n aligned 64-bit words starting at off as atomics, for a
// writable mapping. Indexing the slice is bounds-checked.
func (m *Mapping) Uint64s(off, n uint64) ([]atomic.Uint64, error) {
	return writableWords[atomic.Uint64](m, off, n)
}

// Uint32s returns n aligned 32-bit words starting at off as atomics, for a
// writable mapping.
func (m *Mapping) Uint32s(off, n uint64) ([]atomic.Uint32, error) {
	return writableWords[atomic.Uint32](m, off, n)
}

// writableWords views n words of type W (an atomic integer) at off of a
// writable mapping.
func writableWords[W atomic.Uint64 | atomic.Uint32](m *Mapping, off, n uint64) ([]W, error) {
	if !m.writable {
		return nil, fmt.Errorf("words at %d: %w: mapping is read-only", off, ErrInvalid)
	}
	var w W
	p, err := m.words(off, n, uint64(unsafe.Sizeof(w)))
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*W)(p), n), nil
}

// ReadUint64s is an array of mapped 64-bit words that may only be loaded.
type ReadUint64s struct{ s []atomic.Uint64 }

// Load atomically loads word i (bounds-checked).
func (w ReadUint64s) Load(i uint64) uint64 { return w.s[i].Load() }

// Len is the number of words.
func (w ReadUint64s) Len() uint64 { return uint64(len(w.s)) }

// ReadUint32s is an array of mapped 32-bit words that may only be loaded.
type ReadUint32s struct{ s []atomic.Uint32 }

// Load atomically loads word i (bounds-checked).
func (w ReadUint32s) Load(i uint64) uint32 { return w.s[i].Load() }

// Word returns word i as a ReadUint32, for futex waits.
func (w ReadUint32s) Word(i uint64) ReadUint32 { return ReadUint32{&w.s[i]} }

// ReadUint64sAt returns n 64-bit words at off for loading; it works on
// read-only and writable mappings.
func (m *Mapping) ReadUint64sAt(off, n uint64) (ReadUint64s, error) {
	p, err := m.words(off, n, 8)
	if err != nil {
		return ReadUint64s{}, err
	}
	return ReadUint64s{unsafe.Slice((*atomic.Uint64)(p), n)}, nil
}

// ReadUint32sAt returns n 32-bit words at off for loading.
func (m *Mapping) ReadUint32sAt(off, n uint64) (ReadUint32s, error) {
	p, err := m.words(off, n, 4)
	if err != nil {
		return ReadUint32s{}, err
	}
	return ReadUint32s{unsafe.Slice((*atomic.Uint32)(p), n)}, nil
}
