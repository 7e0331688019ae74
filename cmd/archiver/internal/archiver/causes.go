package archiver

import (
	"strconv"

	"github.com/framering/framering/archive"
)

// Causes of loss the archiver records: the archive format's own (FORMAT.md),
// under the names the archiver's reports use.
const (
	// CauseUnknown: lost upstream, and the ring's drop counters do not say why.
	CauseUnknown = archive.CauseUnknown
	// CauseNoSlot: dropped at the producer, no free slot (ring DropNoSlot).
	CauseNoSlot = archive.CauseProducerDrop
	// CauseEvicted: published while the archiver was evicted and re-attaching.
	CauseEvicted = archive.CauseEvicted
	// CauseDiskFull: the archive's filesystem was full.
	CauseDiskFull = archive.CauseDiskFull
	// CauseWriteError: another write error of the archive.
	CauseWriteError = archive.CauseWriteError
	// CauseRejected: the archive refused the frame's metadata.
	CauseRejected = archive.CauseRejected
	// CauseShutdown: published while the archiver was not running.
	CauseShutdown = archive.CauseShutdown

	// CauseUnderrun: the grabber had no buffer queued (ring DropUnderrun).
	CauseUnderrun = archive.CauseUnderrun
	// CauseSourceError: the source delivered a failed frame (ring DropSource).
	CauseSourceError = archive.CauseSourceError
	// CauseProducerRestart: lost while the producer restarted.
	CauseProducerRestart = archive.CauseProducerRestart
	// CauseMissed: published and overwritten before this (lossless)
	// consumer could borrow it.
	CauseMissed = archive.CauseMissed
)

// causeOrder lists the causes in the order reports print them.
var causeOrder = []archive.Cause{
	CauseNoSlot, CauseUnderrun, CauseSourceError, CauseMissed, CauseEvicted,
	CauseProducerRestart, CauseShutdown, CauseDiskFull, CauseWriteError, CauseRejected, CauseUnknown,
}

// CauseName names a cause for reports: archive.Cause.String, with the
// archiver's own wording where it says more.
func CauseName(c archive.Cause) string {
	switch c {
	case CauseNoSlot:
		return "dropped at producer (no slot)"
	case CauseShutdown:
		return "archiver down"
	}
	return c.String()
}

// causeKey is a cause's name as a JSON or log key.
func causeKey(c archive.Cause) string {
	switch c {
	case CauseUnknown:
		return "unknown"
	case CauseNoSlot:
		return "no_slot"
	case CauseUnderrun:
		return "underrun"
	case CauseSourceError:
		return "source_error"
	case CauseMissed:
		return "missed"
	case CauseEvicted:
		return "evicted"
	case CauseProducerRestart:
		return "producer_restart"
	case CauseShutdown:
		return "archiver_down"
	case CauseDiskFull:
		return "disk_full"
	case CauseWriteError:
		return "write_error"
	case CauseRejected:
		return "rejected"
	}
	return "cause_" + strconv.FormatUint(uint64(c), 10)
}
