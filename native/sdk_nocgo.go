//go:build !cgo

package native

import "fmt"

// SDKAvailable reports whether this build includes the C SDK backend (it
// needs cgo; this build has none).
const SDKAvailable = false

// OpenSDK would open the simulated C SDK; without cgo it returns ErrNoCgo.
func OpenSDK(cfg Config) (Grabber, error) {
	return nil, fmt.Errorf("open sdk grabber: %w", ErrNoCgo)
}
