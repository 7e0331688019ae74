package shm

// FileMapping is a read-only mapping of a regular file (an archive segment
// read back for verification or export).
//
// Invariant: Bytes() is valid from Open until Close; after Close it returns
// nil, and any slice obtained earlier must no longer be used (the pages are
// unmapped and touching them faults). The mapping is PROT_READ: a write
// through it faults instead of changing the file.

import (
	"errors"
	"fmt"
	"os"
	"sync"

	mmap "github.com/edsrzf/mmap-go"
)

// FileMapping is an owned, read-only mapping of a whole file.
type FileMapping struct {
	mu   sync.Mutex
	f    *os.File
	data mmap.MMap
}

// OpenFile maps the file at path read-only. A zero-length file maps to an
// empty, valid FileMapping (mmap of zero bytes is not possible, so no
// mapping is made).
//
// The file must not be truncated while mapped: pages past the new end would
// fault. Archive segments are append-only and never truncated while a
// reader holds them, except by recovery, which runs before any reader.
func OpenFile(path string) (*FileMapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open file mapping: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open file mapping: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open file mapping %s: %w: not a regular file", path, ErrInvalid)
	}
	fm := &FileMapping{f: f}
	if st.Size() == 0 {
		return fm, nil
	}
	if uint64(st.Size()) > uint64(maxInt) {
		f.Close()
		return nil, fmt.Errorf("open file mapping %s: %w: %d bytes", path, ErrTooLarge, st.Size())
	}
	fm.data, err = mmap.Map(f, mmap.RDONLY, 0)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open file mapping %s: %w", path, err)
	}
	return fm, nil
}

// Bytes returns the mapped file. The slice is read-only memory and is valid
// only until Close.
func (m *FileMapping) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data
}

// Close unmaps the file and closes it. It is safe to call more than once.
func (m *FileMapping) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	if m.data != nil {
		errs = append(errs, m.data.Unmap())
		m.data = nil
	}
	if m.f != nil {
		errs = append(errs, m.f.Close())
		m.f = nil
	}
	return errors.Join(errs...)
}
