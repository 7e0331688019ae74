package archive

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrCorrupt is returned when bytes of a segment or index file contradict the
// format: a bad magic number, a CRC32C mismatch, an impossible length, size or
// offset, non-zero reserved or padding bytes. The error message names the file
// and the offset of the damage.
var ErrCorrupt = errors.New("archive corrupt")

// ErrTruncated is returned when a segment ends inside a header or a record: a
// torn tail left by a crash (which the next Open cuts), or a file cut short.
// Every error that matches ErrTruncated also matches ErrCorrupt.
var ErrTruncated = errors.New("archive truncated")

// ErrVersion is returned when a segment or index file is intact (its CRC
// matches) but uses a format version, flag, record kind or codec that this
// package does not know.
var ErrVersion = errors.New("unsupported archive format version")

// ErrNotFound is returned when a requested sequence number is not in the
// archive: before its first record, after its last, or in a hole.
var ErrNotFound = errors.New("sequence not in archive")

// ErrDiskFull is returned by Append and AppendGap when the filesystem reported
// ENOSPC or EDQUOT. Nothing of the record was kept: the partial write was cut
// back, the archive is valid, the sequence number was not consumed, and the
// Writer stays usable. The caller still owns the frame and must either retry
// it later or record its loss with AppendGap and loss.DiskFull.
var ErrDiskFull = errors.New("archive disk full")

// ErrSync is returned when fsync of a segment fails after the record was
// written. The record is in the file and its sequence number is consumed, but
// the records appended since the last successful fsync are not known to be
// durable; the Writer retries the fsync at the next trigger. ErrSync never
// matches ErrDiskFull (the underlying errno, e.g. syscall.ENOSPC, still
// matches with errors.Is).
var ErrSync = errors.New("archive fsync failed")

// ErrInvalid is returned when an argument is impossible: frame metadata that
// does not describe the payload, a gap with no frames, a bad option or range.
var ErrInvalid = errors.New("invalid archive argument")

// ErrTooLarge is returned when a payload exceeds MaxPayload.
var ErrTooLarge = errors.New("archive payload too large")

// ErrClosed is returned when a Writer or Reader is used after Close.
var ErrClosed = errors.New("archive closed")

// ErrFormat is returned by Export when a frame's pixel format cannot be
// written as an image (frame.Format values unknown to framering).
var ErrFormat = errors.New("pixel format not exportable")

// isDiskFull reports whether err is the filesystem saying it has no room for
// this user: ENOSPC, or EDQUOT from a quota.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// corruptf builds an error matching ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// truncatedf builds an error matching both ErrTruncated and ErrCorrupt.
func truncatedf(format string, args ...any) error {
	return fmt.Errorf("%w (%w): "+format, append([]any{ErrTruncated, ErrCorrupt}, args...)...)
}

// versionf builds an error matching ErrVersion.
func versionf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrVersion}, args...)...)
}

// wrapAt prefixes err with the file offset it was found at.
func wrapAt(off uint64, err error) error {
	return fmt.Errorf("record at %d: %w", off, err)
}

// ErrLocked is returned by Open when another writer (in this or another
// process) has the archive directory open: one directory, one writer.
var ErrLocked = errors.New("archive in use by another writer")

// ErrPayloadChanged is returned by AppendChecked when its check says the
// payload changed while it was written (a revoked ring lease): nothing was
// stored.
var ErrPayloadChanged = errors.New("payload changed while it was written")
