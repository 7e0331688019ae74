//go:build !linux

package native

import "time"

// checkShared refuses everything: only Linux tells us where memory is
// mapped (/proc/self/maps), so elsewhere no memory can be announced and
// buffers come from Allocate.
func checkShared(buf []byte) error { return ErrNotShared }

var clockBase = time.Now()

// monotonicNanos approximates CLOCK_MONOTONIC with the Go monotonic clock.
func monotonicNanos() int64 { return int64(time.Since(clockBase)) }
