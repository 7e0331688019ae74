package exitwatch

import "errors"

var (
	// ErrUnavailable is returned by New when the kernel side cannot be set
	// up: the program does not load or attach, or a map cannot be created.
	// The error wraps the reason (often a permission error).
	ErrUnavailable = errors.New("kernel exit watch unavailable")
	// ErrClosed is returned when a Watcher is used after Close.
	ErrClosed = errors.New("exit watcher closed")
	// ErrFull is returned by Watch when MaxWatched processes are watched.
	ErrFull = errors.New("exit watch set full")
)
