package analysis

import "fmt"

// Default limits used when the corresponding Options field is zero.
const (
	// DefaultMaxDefects is the default cap on the defects listed in a Result.
	DefaultMaxDefects = 256
	// DefaultMaxRuns is the default cap on foreground runs per frame. The
	// labeling scratch takes at most about 60 bytes per run (12 for the run,
	// up to 48 for its component), so 16 MiB at this default. A 65536-row
	// frame that is all foreground has 65536 runs; a 1 MiB frame of noise
	// with 20% foreground has about 190,000.
	DefaultMaxRuns = 1 << 18
	// maxRunsLimit keeps run indices in int32.
	maxRunsLimit = 1 << 30
)

// Rect is an axis-aligned rectangle of pixels: columns [X, X+W) of rows
// [Y, Y+H). The zero Rect is empty.
type Rect struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Empty reports whether r contains no pixel.
func (r Rect) Empty() bool { return r.W <= 0 || r.H <= 0 }

// Options configures an Analyzer. The zero value computes statistics only.
//
// Thresholds are in 8-bit terms: for 8-bit samples (Mono8, 8-bit Bayer)
// they apply to the sample; for n-bit samples (Mono10/12/16, Mono10p/12p,
// 16-bit Bayer) to the sample compared with frame.Expand8(t, n), t's bits
// replicated to n bits (t*257 for 16 bits, so 200 means 51400; 200 means
// 803 for 10 bits); for RGB8 and BGR8 to the luma Y = (R + 2G + B) / 4
// (integer division); for YUV422 to the Y sample.
type Options struct {
	// Bright enables bright-defect detection: a pixel is bright when its
	// value is >= Hi.
	Bright bool  `json:"bright"`
	Hi     uint8 `json:"hi"`
	// Dark enables dark-defect detection: a pixel is dark when its value
	// is <= Lo. With both enabled, Lo must be below Hi so that no pixel is
	// both.
	Dark bool  `json:"dark"`
	Lo   uint8 `json:"lo"`

	// MinArea drops blobs of fewer pixels. 0 and 1 keep every blob.
	MinArea int `json:"min_area"`
	// MaxDefects caps the defects listed in Result.Defects (0 means
	// DefaultMaxDefects). Result.DefectCount still counts them all.
	MaxDefects int `json:"max_defects"`
	// MaxRuns caps the foreground runs (horizontal stretches of
	// same-polarity foreground pixels in one row) labeled per frame (0
	// means DefaultMaxRuns, at most 1<<30). A frame with more, such as a
	// noise frame, sets Result.Overflow and reports no defects instead of
	// growing the scratch without bound.
	MaxRuns int `json:"max_runs"`

	// SkipStamp ignores every pixel that overlaps the first
	// frame.StampSize bytes of the buffer: the pattern stamp, which is not
	// image content. In a frame whose stride holds the stamp that is the
	// first ceil(32/bytes-per-pixel) pixels of row 0.
	SkipStamp bool `json:"skip_stamp"`
	// Ignore is a rectangle of pixels to ignore (clipped to the frame; the
	// zero Rect ignores nothing).
	//
	// Ignored pixels, by SkipStamp or Ignore, are excluded from the
	// statistics and the histogram as well as from defect detection: they
	// count as background and are not in Stats.Count.
	Ignore Rect `json:"ignore"`

	// Histogram makes Result.Histogram non-nil. The histogram is always
	// computed; this only decides whether it is reported (and emitted in
	// JSON).
	Histogram bool `json:"histogram"`
}

// DefaultOptions returns options suited to the test pattern: bright defects
// at >= 200, dark at <= 10 (the background is 16..143, luma 48..175), the
// stamp ignored, no area filter.
func DefaultOptions() Options {
	return Options{Bright: true, Hi: 200, Dark: true, Lo: 10, SkipStamp: true}
}

// detect reports whether any defect detection is enabled.
func (o *Options) detect() bool { return o.Bright || o.Dark }

// validate checks o and returns a copy with defaults filled in.
func (o Options) validate() (Options, error) {
	if o.MinArea < 0 {
		return o, fmt.Errorf("validate options: %w: min area %d", ErrOptions, o.MinArea)
	}
	if o.MaxDefects < 0 {
		return o, fmt.Errorf("validate options: %w: max defects %d", ErrOptions, o.MaxDefects)
	}
	if o.MaxRuns < 0 || o.MaxRuns > maxRunsLimit {
		return o, fmt.Errorf("validate options: %w: max runs %d not in [0, %d]", ErrOptions, o.MaxRuns, maxRunsLimit)
	}
	if o.Ignore.W < 0 || o.Ignore.H < 0 {
		return o, fmt.Errorf("validate options: %w: ignore rectangle %+v", ErrOptions, o.Ignore)
	}
	if o.Bright && o.Dark && o.Lo >= o.Hi {
		return o, fmt.Errorf("validate options: %w: dark threshold %d not below bright threshold %d", ErrOptions, o.Lo, o.Hi)
	}
	if o.MaxDefects == 0 {
		o.MaxDefects = DefaultMaxDefects
	}
	if o.MaxRuns == 0 {
		o.MaxRuns = DefaultMaxRuns
	}
	return o, nil
}
