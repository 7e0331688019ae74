package serve

// The defect overlay's source. The analyzer's live results stream is
// defined by the analyzer, not here: the view reads it through Results, so
// that whichever transport the stream uses plugs in without touching the
// page or the handlers.

// Results finds the analyzer's results for a ring's frames. Methods are
// called concurrently from HTTP handlers and must not block long.
type Results interface {
	// Latest returns the newest result published for ring, if any.
	Latest(ring string) (Result, bool)
	// Lookup returns the result for frame (epoch, seq) of ring, if known.
	Lookup(ring string, epoch, seq uint64) (Result, bool)
}

// Result is the analyzer's verdict on one frame: its defects' bounding
// boxes in the frame's pixel coordinates.
type Result struct {
	Epoch uint64 `json:"-"`
	Seq   uint64 `json:"seq"`
	Boxes []Box  `json:"boxes"`
}

// Box is one defect's bounding box.
type Box struct {
	X      int  `json:"x"`
	Y      int  `json:"y"`
	W      int  `json:"w"`
	H      int  `json:"h"`
	Bright bool `json:"bright"`
}
