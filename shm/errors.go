package shm

import "errors"

const maxInt = int(^uint(0) >> 1)

// ErrInvalid is returned when an argument (a size, an offset, a file) is
// impossible: zero or negative, misaligned, or outside the mapping.
var ErrInvalid = errors.New("invalid argument")

// ErrTooLarge is returned when a size does not fit the address space or a
// configured limit.
var ErrTooLarge = errors.New("size too large")

// ErrNoSpace is returned when the shared-memory filesystem cannot back a
// segment: the memory is reserved at creation (fallocate), so a full
// /dev/shm is reported here instead of as a SIGBUS on first touch.
var ErrNoSpace = errors.New("no space for shared memory")

// ErrSeals is returned when a received segment lacks the seals the protocol
// requires (so its size or contents could change under the mapping).
var ErrSeals = errors.New("segment seals missing")

// ErrClosed is returned when an owned mapping, segment or socket is used
// after Close.
var ErrClosed = errors.New("closed")

// ErrPeer is returned when a peer on the attach socket is refused: not in
// the allowed uid/gid lists, or it sent a malformed message or file descriptors.
var ErrPeer = errors.New("peer refused")

// ErrNoListener is returned by Dial when no socket exists at the path.
var ErrNoListener = errors.New("no socket at the path")

// ErrRefused is returned by Dial when a socket exists but nobody serves it
// (its owner crashed and left it behind).
var ErrRefused = errors.New("connection refused: nobody serves the socket")
