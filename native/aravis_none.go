//go:build !aravis || !cgo

package native

import "fmt"

// AravisAvailable reports whether this build has the Aravis backend: it
// needs the aravis build tag and cgo, and this build lacks one of them.
const AravisAvailable = false

// OpenAravis would open a GenICam camera through Aravis; this build has no
// Aravis backend, so it returns ErrNoAravis, which says how to get one
// (after checking the options, as a build with the backend does).
func OpenAravis(cfg Config) (Grabber, error) {
	if cfg.Camera != nil {
		if err := cfg.Camera.validate(); err != nil {
			return nil, fmt.Errorf("open aravis grabber: %w", err)
		}
	}
	return nil, fmt.Errorf("open aravis grabber: %w", ErrNoAravis)
}

// ListCameras would list the cameras Aravis reaches; this build has no
// Aravis backend (ErrNoAravis).
func ListCameras() ([]CameraInfo, error) {
	return nil, fmt.Errorf("list cameras: %w", ErrNoAravis)
}

// AravisBufferData is 0: this build has no Aravis grabber.
func AravisBufferData(g Grabber, id BufferID) uintptr { return 0 }
