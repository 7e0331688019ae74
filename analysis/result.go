package analysis

// Result is what Analyze reports for one frame. Its JSON form is
//
//	{
//	  "format": "RGB8", "width": 1024, "height": 1024,
//	  "stats": {"count": 1048565, "min": 48, "max": 255, "sum": 117440280,
//	            "mean": 112.0, "stddev": 37.0,
//	            "channels": {"r": 80.0, "g": 112.0, "b": 144.0}},
//	  "histogram": [0, 0, ...],          (256 counts; only with Options.Histogram)
//	  "defect_count": 1,
//	  "truncated": true,                 (only when defect_count > len(defects))
//	  "overflow": true,                  (only when labeling was abandoned)
//	  "defects": [{"x": 10, "y": 20, "w": 5, "h": 5, "area": 25,
//	               "cx": 12, "cy": 22, "bright": true}]
//	}
//
// (illustrative numbers), where "channels" appears for RGB8 and BGR8 only
// (the other statistics are of the luma there). "defects" is always an array,
// never null.
//
// A *Result returned by Analyzer.Analyze is owned by the analyzer: it, and
// the Histogram and Defects slices and the Channels pointer inside it, stay
// valid only until the next call to Analyze on the same Analyzer, which
// overwrites them in place. Use CopyTo or Clone to keep a result longer.
type Result struct {
	// Format is the pixel format's PFNC name, as frame.Format.String prints it.
	Format string `json:"format"`
	Width  int    `json:"width"`
	Height int    `json:"height"`

	Stats Stats `json:"stats"`

	// Histogram has 256 bins: of the 8-bit sample (Mono8, 8-bit Bayer), of
	// value>>(n-8) for n-bit samples (bin 255 also counts a sample above
	// 2^n-1, which a camera should not send), of the luma (RGB8, BGR8) or
	// of Y (YUV422). It is nil unless Options.Histogram is set.
	Histogram []uint64 `json:"histogram,omitempty"`

	// DefectCount is the number of blobs of at least Options.MinArea
	// pixels; Defects lists the first Options.MaxDefects of them in raster
	// order of their first pixel (top row first, then leftmost).
	DefectCount int  `json:"defect_count"`
	Truncated   bool `json:"truncated,omitempty"`
	// Overflow is set when the frame had more than Options.MaxRuns
	// foreground runs: labeling was abandoned, DefectCount is 0 and
	// Defects is empty. The statistics are still valid.
	Overflow bool     `json:"overflow,omitempty"`
	Defects  []Defect `json:"defects"`
}

// Stats are the statistics of the pixels that were not ignored: of the
// sample for Mono and Bayer formats (the full n-bit value for 10-, 12- and
// 16-bit ones, packed or not; the raw mosaic for Bayer), of the luma
// Y = (R + 2G + B) / 4 (integer division) for RGB8 and BGR8, of the Y
// sample for YUV422.
//
// With no pixel counted (everything ignored) every field is zero.
type Stats struct {
	// Count is the number of pixels measured.
	Count uint64 `json:"count"`
	Min   int    `json:"min"`
	Max   int    `json:"max"`
	// Sum is the exact sum of the values; Mean is Sum/Count.
	Sum  uint64  `json:"sum"`
	Mean float64 `json:"mean"`
	// StdDev is the population standard deviation, computed from exact
	// integer sums.
	StdDev float64 `json:"stddev"`
	// Channels holds the per-channel means for RGB8 and BGR8 and is nil
	// otherwise.
	Channels *ChannelMeans `json:"channels,omitempty"`
}

// ChannelMeans are the means of the red, green and blue bytes of an RGB8
// or BGR8 frame (over the pixels that were not ignored).
type ChannelMeans struct {
	R float64 `json:"r"`
	G float64 `json:"g"`
	B float64 `json:"b"`
}

// Defect is one connected blob of foreground pixels of one polarity
// (8-connectivity).
type Defect struct {
	// X, Y, W, H is the bounding box: columns [X, X+W), rows [Y, Y+H).
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
	// Area is the number of pixels in the blob.
	Area int `json:"area"`
	// CX, CY is the centroid: the mean of the blob's pixel coordinates
	// (pixel (x, y) counts at x, y, so a 5x5 square at (10, 20) has its
	// centroid at (12, 22)).
	CX float64 `json:"cx"`
	CY float64 `json:"cy"`
	// Bright is true for a blob of bright pixels, false for dark.
	Bright bool `json:"bright"`
}

// CopyTo copies r into dst without sharing memory with r, reusing dst's
// Histogram, Defects and Channels storage when they are large enough, so
// that copying every frame into the same dst allocates nothing after the
// first frames.
func (r *Result) CopyTo(dst *Result) {
	hist, defects, ch := dst.Histogram, dst.Defects, dst.Stats.Channels
	*dst = *r
	if r.Histogram != nil {
		dst.Histogram = append(hist[:0], r.Histogram...)
	}
	if defects == nil {
		defects = make([]Defect, 0, len(r.Defects))
	}
	dst.Defects = append(defects[:0], r.Defects...)
	if r.Stats.Channels != nil {
		if ch == nil || ch == r.Stats.Channels {
			ch = new(ChannelMeans)
		}
		*ch = *r.Stats.Channels
		dst.Stats.Channels = ch
	}
}

// Clone returns a copy of r that shares no memory with it.
func (r *Result) Clone() *Result {
	c := new(Result)
	r.CopyTo(c)
	return c
}
