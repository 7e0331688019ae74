package archiver

import (
	"github.com/framering/framering/loss"
)

// The archiver records every loss under a code of the one table of loss
// causes (package loss; archive/FORMAT.md and docs/LAYOUT.md list it), and
// reports it under that code's name. It records, in particular:
//
//   - loss.Blocked, loss.Underrun, loss.SourceError (and every other ring
//     cause): frames the producer never published, as the ring counted them;
//   - loss.Missed: published and overwritten before this lossless consumer
//     could take them (it should never happen);
//   - loss.Evicted: published while the archiver was evicted and
//     re-attaching;
//   - loss.ProducerRestart: lost while the producer restarted;
//   - loss.ConsumerDown: published while the archiver was not running;
//   - loss.DiskFull, loss.WriteError, loss.Rejected: frames the archive
//     could not keep.
//
// loss.Unknown is never written: a loss whose cause cannot be established
// exactly is attributed by the rules of the accountant (account.go).

// reportOrder lists the causes in the order reports print them: the ring's,
// then the consumer's, then the archive's own.
func reportOrder() []loss.Cause {
	var out []loss.Cause
	for _, w := range []loss.Where{loss.Ring, loss.Consumer, loss.Archive, loss.Legacy} {
		for _, c := range loss.Known() {
			if c.Where() == w && c != loss.Several {
				out = append(out, c)
			}
		}
	}
	return out
}
