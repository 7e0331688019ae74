// Package analysis is the inspection library of framering's analyzer
// process: it measures a frame in place, straight from a read-only
// shared-memory view (a []byte and a frame.Geometry), without copying it.
//
// For each frame an Analyzer computes
//   - statistics: pixel count, min, max, exact sum, mean, population
//     standard deviation and a 256-bin histogram, of each pixel's measured
//     value: the sample for Mono8 and the 8-bit Bayer mosaics; the full
//     n-bit sample for Mono10/12/16, Mono10p/12p (unpacked on the fly into
//     a reused scratch row) and the 16-bit Bayer mosaics, with the
//     histogram of value>>(n-8); the luma Y = (R + 2G + B) / 4 (integer
//     division) for RGB8 and BGR8, plus per-channel means; the Y sample for
//     the 4:2:2 YUV formats. Bayer formats are measured on the raw mosaic,
//     every sample a pixel (pixels.go says why);
//   - defects: pixels at or above a bright threshold or at or below a dark
//     threshold (in 8-bit terms, scaled to n-bit samples by bit
//     replication, frame.Expand8: times 257 for 16 bits), grouped into
//     8-connected blobs of one polarity by run-based union-find labeling,
//     each reported with its bounding box, area, centroid and polarity,
//     after a minimum-area filter.
//
// The format's layout comes from frame's format table; a format the
// analyzer has no measurement for is refused with frame.ErrFormat, never
// measured as zeros.
//
// Pixels can be ignored: Options.SkipStamp drops the 32-byte pattern stamp
// at the start of the frame, which is not image content, and
// Options.Ignore drops a rectangle. Ignored pixels count for neither the
// statistics nor the defects.
//
// Padding bytes between the end of a row's pixels and the next stride are
// never read. A geometry that is invalid or does not fit the buffer is
// refused with ErrGeometry before any pixel is read; nothing in this
// package panics on bad input.
//
// An Analyzer owns its scratch and its Result, sized on first use and
// reused: after warm-up, analyzing a frame allocates nothing. The Result
// returned by Analyze is valid until the next Analyze on the same
// Analyzer; Result.CopyTo and Result.Clone copy it out. The Result is
// JSON-friendly, for the analyzer's JSON-lines output.
//
// Each frame is read in two passes over its rows. The statistics pass
// loads eight bytes at a time into four sub-histograms (16-bit samples
// also sum values and squares and track min/max). Every 16 KiB or so of rows it
// looks at the histogram's foreground bins; the labeling pass then scans
// only the bands of rows that gained foreground pixels (none, on a good
// frame) and stops after the last foreground pixel the histogram counted.
// Within a band, 64 pixels at a time are compared word-wise into bright
// and dark bit masks, runs are read off the masks, and runs are joined by
// union-find, so labeling costs a cheap scan plus work proportional to
// the number of runs.
//
// The package is pure Go (no unsafe, no cgo) and imports only the standard
// library and frame.
package analysis
