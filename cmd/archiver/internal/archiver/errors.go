package archiver

import (
	"errors"

	"github.com/framering/framering/internal/cli"
)

// The errors of the package, tested with errors.Is.
var (
	// ErrUsage is returned when the command line is wrong: an unknown
	// subcommand, flag or value. It is the commands' one usage error,
	// cli.ErrUsage (exit 2).
	ErrUsage = cli.ErrUsage
	// ErrState is returned when the archiver's sidecar state file cannot be
	// understood.
	ErrState = errors.New("archiver state file invalid")
	// ErrDamaged is returned by the verify subcommand when the archive has
	// damaged or missing records (or frames whose test pattern is wrong):
	// the check ran and found a problem (exit status 3).
	ErrDamaged = errors.New("archive damaged")
	// ErrUnrecorded is returned by Run when losses were counted (and are in
	// the summary) but their gap records could not be written before exit:
	// the disk was still full.
	ErrUnrecorded = errors.New("losses not recorded in the archive")
	// ErrEvicted is returned by Run when the producer evicted the archiver
	// and re-attaching is off.
	ErrEvicted = errors.New("archiver evicted from the ring")
)
