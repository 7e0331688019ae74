package shm

// Segments are memfds. Invariants kept by this file:
//   - A Segment's size is reserved with fallocate before it is returned, so
//     no page of it can fail to materialise later (no SIGBUS on a full tmpfs).
//   - A Segment created here is sealed against shrinking and growing before
//     it is returned; its size never changes, so no mapping of it can fault
//     by truncation.
//   - A Segment received from a peer is mapped only after its seals and its
//     size have been checked (OpenSegment).

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// Seals is a set of memfd seals (F_SEAL_*), as F_GET_SEALS reports them.
type Seals uint32

// The seals framering uses.
const (
	SealSeal        Seals = unix.F_SEAL_SEAL         // no more seals may be added
	SealShrink      Seals = unix.F_SEAL_SHRINK       // the size may not decrease
	SealGrow        Seals = unix.F_SEAL_GROW         // the size may not increase
	SealFutureWrite Seals = unix.F_SEAL_FUTURE_WRITE // no new writable mapping, no write(2)
)

// SegmentOptions tunes how a segment is backed and mapped.
type SegmentOptions struct {
	// HugePages asks for MFD_HUGETLB backing. When the host has no huge
	// pages reserved (or refuses), the segment falls back to normal pages
	// and the reason is logged.
	HugePages bool
	// Prefault maps with MAP_POPULATE so that no page fault happens on the
	// hot path later.
	Prefault bool
	// Logger receives fallback reasons; nil means slog.Default().
	Logger *slog.Logger
}

// Segment is an owned memfd. Close releases the descriptor; mappings made
// from it stay valid until they are closed themselves.
type Segment struct {
	f        *os.File
	size     uint64
	huge     bool
	prefault bool
}

const hugePageSize = 2 << 20

// CreateSegment creates a memfd named name (visible in /proc/PID/fd as
// "memfd:name"), reserves size bytes (rounded up to the page size) and
// seals it against shrinking and growing.
func CreateSegment(name string, size uint64, opts SegmentOptions) (*Segment, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if size == 0 {
		return nil, fmt.Errorf("create segment %s: %w: size 0", name, ErrInvalid)
	}
	if size > uint64(maxInt)/2 {
		return nil, fmt.Errorf("create segment %s: %w: %d bytes", name, ErrTooLarge, size)
	}
	if opts.HugePages {
		seg, err := createSegment(name, roundUp(size, hugePageSize), unix.MFD_HUGETLB, opts.Prefault)
		if err == nil {
			seg.huge = true
			return seg, nil
		}
		log.Warn("huge pages unavailable, using normal pages", "segment", name, "reason", err)
	}
	return createSegment(name, roundUp(size, uint64(os.Getpagesize())), 0, opts.Prefault)
}

func createSegment(name string, size uint64, extra int, prefault bool) (*Segment, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|extra)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: memfd_create: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if err := reserve(fd, size); err != nil {
		f.Close()
		return nil, fmt.Errorf("create segment %s: %w", name, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, int(SealShrink|SealGrow)); err != nil {
		f.Close()
		return nil, fmt.Errorf("create segment %s: seal: %w", name, err)
	}
	return &Segment{f: f, size: size, prefault: prefault}, nil
}

// reserve allocates size bytes of backing store for fd now, so that a full
// tmpfs (or an exhausted huge page pool) is an error here and never a
// SIGBUS on first touch.
func reserve(fd int, size uint64) error {
	if err := unix.Fallocate(fd, 0, 0, int64(size)); err != nil {
		if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.ENOMEM) {
			return fmt.Errorf("reserve %d bytes: %w (%v)", size, ErrNoSpace, err)
		}
		return fmt.Errorf("reserve %d bytes: %w", size, err)
	}
	return nil
}

// OpenSegment adopts a memfd received from a peer. It checks that the
// segment carries at least the seals in want and is at least minSize bytes,
// before anything maps it. On success the Segment owns f; on failure f is
// closed.
func OpenSegment(f *os.File, want Seals, minSize uint64, prefault bool) (*Segment, error) {
	if f == nil {
		return nil, fmt.Errorf("open segment: %w: no file", ErrInvalid)
	}
	got, err := getSeals(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open segment %s: %w", f.Name(), err)
	}
	if got&want != want {
		f.Close()
		return nil, fmt.Errorf("open segment %s: %w: have %#x, need %#x", f.Name(), ErrSeals, got, want)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("open segment %s: fstat: %w", f.Name(), err)
	}
	if st.Size < 0 || uint64(st.Size) < minSize || uint64(st.Size) > uint64(maxInt)/2 {
		f.Close()
		return nil, fmt.Errorf("open segment %s: %w: %d bytes, need at least %d", f.Name(), ErrInvalid, st.Size, minSize)
	}
	return &Segment{f: f, size: uint64(st.Size), prefault: prefault}, nil
}

func getSeals(f *os.File) (Seals, error) {
	s, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		return 0, fmt.Errorf("get seals: %w", err)
	}
	return Seals(s), nil
}

// Seals reports the segment's current seals.
func (s *Segment) Seals() (Seals, error) {
	if s.f == nil {
		return 0, ErrClosed
	}
	return getSeals(s.f)
}

// AddSeals adds seals to the segment. Sealing SealFutureWrite after the
// owner has mapped the segment writable leaves that mapping writable and
// refuses every later writable mapping and write(2).
func (s *Segment) AddSeals(seals Seals) error {
	if s.f == nil {
		return ErrClosed
	}
	if _, err := unix.FcntlInt(s.f.Fd(), unix.F_ADD_SEALS, int(seals)); err != nil {
		return fmt.Errorf("add seals %#x: %w", seals, err)
	}
	return nil
}

// Size is the segment's size in bytes (rounded up to the page size).
func (s *Segment) Size() uint64 { return s.size }

// HugePages reports whether the segment is backed by huge pages.
func (s *Segment) HugePages() bool { return s.huge }

// File returns the segment's descriptor, for passing to a peer with
// Conn.Send. The Segment keeps ownership.
func (s *Segment) File() *os.File { return s.f }

// Map maps the whole segment shared, writable or read-only.
func (s *Segment) Map(writable bool) (*Mapping, error) {
	if s.f == nil {
		return nil, ErrClosed
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	flags := unix.MAP_SHARED
	if s.prefault {
		flags |= unix.MAP_POPULATE
	}
	b, err := unix.Mmap(int(s.f.Fd()), 0, int(s.size), prot, flags)
	if err != nil {
		return nil, fmt.Errorf("map segment %s: %w", s.f.Name(), err)
	}
	return &Mapping{data: b, writable: writable}, nil
}

// Write writes b at off through the descriptor (not a mapping). It exists
// so that tests can prove a sealed segment refuses it.
func (s *Segment) Write(b []byte, off int64) error {
	if s.f == nil {
		return ErrClosed
	}
	if _, err := s.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("write segment: %w", err)
	}
	return nil
}

// Close releases the descriptor. Mappings stay valid.
func (s *Segment) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

func roundUp(n, to uint64) uint64 { return (n + to - 1) / to * to }
