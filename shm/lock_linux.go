package shm

// Invariant: a FileLock is an exclusive flock held from LockFile until
// Close or the holder's death; the kernel releases it when the process
// dies, so a crashed holder never leaves a lock behind (the file stays and
// is harmless).

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// FileLock is an owned exclusive advisory lock on a file.
type FileLock struct{ f *os.File }

// LockFile creates path if needed and takes an exclusive lock on it without
// waiting. It returns ErrInUse when a live process (or another open file in
// this process) holds it.
func LockFile(path string) (*FileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o660)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &FileLock{f: f}, nil
}

// Close releases the lock. It is idempotent.
func (l *FileLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
