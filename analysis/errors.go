package analysis

import (
	"errors"

	"github.com/framering/framering/frame"
)

// ErrGeometry is returned when a frame geometry is impossible (see
// frame.Geometry.Validate) or does not fit the buffer it describes. It is
// frame.ErrGeometry itself, so either name matches with errors.Is; an
// unknown pixel format also matches frame.ErrFormat.
var ErrGeometry = frame.ErrGeometry

// ErrOptions is returned by New and SetOptions when an Options value is
// inconsistent: a negative area or limit, an ignore rectangle with a
// negative size, or bright and dark thresholds that overlap.
var ErrOptions = errors.New("invalid analysis options")

// ErrConcurrentUse is returned when an Analyzer is used by two goroutines at
// once. The call that loses the race touches nothing and returns this error;
// the analyzer stays usable.
var ErrConcurrentUse = errors.New("analyzer used concurrently")
