package ringbuf

import "time"

// Test hooks, compiled only into this package's test binary (and so also
// into the children it re-executes as).

// HoldAllRaw sets r's holder bit on every slot directly, ignoring the hold
// quota and every check: what a hostile or broken client (written in C or
// Python against docs/LAYOUT.md, without this library's checks) can do.
func (r *Reader) HoldAllRaw() {
	for k := uint32(0); k < r.geo.slots; k++ {
		r.ctl.hold(k).Or(r.bit)
	}
}

// WaitersForTest returns the control header's waiters mask.
func WaitersForTest(p *Producer) uint64 { return p.ctl.waiters().Load() }

// WakeCountForTest is how many sleepers a Publish now would wake (0: all).
func WakeCountForTest(p *Producer) int { return p.wakeCount(p.ctl.waiters().Load()) }

// NoChainForTest makes opts attach as a client that does not pass wakes on.
func NoChainForTest(opts Options) Options { opts.noChain = true; return opts }

// LongSleepForTest makes a consumer's futex sleeps last an hour: only a
// wake-up ends them.
func LongSleepForTest(opts Options) Options { opts.sleepTimeout = time.Hour; return opts }

// SleepersForTest is how many of r's goroutines are in Wait's sleep loop.
func SleepersForTest(r *Reader) int { return int(r.sleepers.Load()) }

// FillPatternForTest and PatternIntactForTest are the white-box tests'
// frame pattern (fillPattern, patternIntact), for the black-box ones.
var (
	FillPatternForTest   = fillPattern
	PatternIntactForTest = patternIntact
)
