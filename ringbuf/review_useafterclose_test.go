package ringbuf_test

import (
	"fmt"
	"runtime/debug"
	"testing"

	"github.com/framering/framering/loss"

	"github.com/framering/framering/ringbuf"
)

// Producer accessors after Close must not touch the unmapped segments.
// (Without SetPanicOnFault the fault kills the process.)
func TestReviewProducerAccessorsAfterClose(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 2})
	publish(t, p, 1)
	p.Close()
	for name, fn := range map[string]func(){
		"Published":   func() { p.Published() },
		"Snapshot":    func() { p.Snapshot() },
		"RecordDrops": func() { p.RecordDrops(loss.SourceError, 1) },
	} {
		err := func() (err error) {
			old := debug.SetPanicOnFault(true)
			defer debug.SetPanicOnFault(old)
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%v", r)
				}
			}()
			fn()
			return nil
		}()
		if err != nil {
			t.Errorf("Producer.%s after Close: %v", name, err)
		}
	}
}
