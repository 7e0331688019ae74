package shm

// File locks: the exclusive flock a producer holds on NAME.sock.lock for
// its lifetime (used by the attach socket in socket_linux.go).
//
// Invariants: a FileLock is an exclusive flock held from LockFile until
// Close or the holder's death; the kernel releases it when the process
// dies, so a crashed holder never leaves a lock behind. A holder may remove
// the lock file when it is done (Remove), while still holding the lock; so
// LockFile, after taking a lock, checks that the path still names the file
// it locked, and starts over if a departing holder removed it meanwhile.
// At most one live FileLock is therefore ever held on the file a path
// names.

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// FileLock is an owned exclusive advisory lock on a file.
type FileLock struct {
	f    *os.File
	path string
}

// LockFile creates path if needed and takes an exclusive lock on it without
// waiting. It returns ErrInUse when a live process (or another open file in
// this process) holds it.
func LockFile(path string) (*FileLock, error) {
	for range 100 {
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
		// The file we locked may have been removed by its previous holder
		// between our open and our flock: then the path names another
		// file (or none), which somebody else may lock too. Start over.
		var held, named unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := unix.Stat(path, &named); err == nil && named.Dev == held.Dev && named.Ino == held.Ino {
			return &FileLock{f: f, path: path}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("lock %s: %w: the lock file keeps being replaced", path, ErrInUse)
}

// Remove deletes the lock file and releases the lock: the holder's clean
// exit, which leaves nothing behind. The file is removed while the lock is
// still held, so a concurrent LockFile either fails to lock it or, having
// locked it after this, finds the path no longer names it and starts over.
func (l *FileLock) Remove() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, l.Close())
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
