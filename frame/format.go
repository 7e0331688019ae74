package frame

import (
	"errors"
	"fmt"
)

// Format is a pixel format, identified by its GenICam Pixel Format Naming
// Convention (PFNC) code, the 32-bit value frame grabbers and GenTL
// producers report. Using PFNC codes means a real SDK's value can be stored
// in a ring descriptor unchanged.
type Format uint32

// The pixel formats framering's sources produce and its analyzer reads.
const (
	// Mono8 is 8-bit grayscale, one byte per pixel.
	Mono8 Format = 0x01080001
	// Mono16 is 16-bit grayscale, two bytes per pixel, little-endian.
	Mono16 Format = 0x01100007
	// RGB8 is 8-bit-per-channel color, three bytes per pixel in R, G, B order.
	RGB8 Format = 0x02180014
)

// ErrFormat is returned when a pixel format code is not one framering knows.
var ErrFormat = errors.New("unknown pixel format")

// ErrGeometry is returned when a width, height or stride is impossible for
// its format, or does not fit the buffer it describes.
var ErrGeometry = errors.New("invalid frame geometry")

// BytesPerPixel returns the size of one pixel, or 0 for an unknown format.
func (f Format) BytesPerPixel() int {
	switch f {
	case Mono8:
		return 1
	case Mono16:
		return 2
	case RGB8:
		return 3
	}
	return 0
}

// Valid reports whether f is a format framering knows.
func (f Format) Valid() bool { return f.BytesPerPixel() != 0 }

// String returns the PFNC name of the format.
func (f Format) String() string {
	switch f {
	case Mono8:
		return "Mono8"
	case Mono16:
		return "Mono16"
	case RGB8:
		return "RGB8"
	}
	return fmt.Sprintf("Format(%#08x)", uint32(f))
}

// ParseFormat maps a PFNC name (case-sensitive, as printed by String) to a Format.
func ParseFormat(name string) (Format, error) {
	for _, f := range []Format{Mono8, Mono16, RGB8} {
		if f.String() == name {
			return f, nil
		}
	}
	return 0, fmt.Errorf("parse pixel format %q: %w", name, ErrFormat)
}

// MaxDimension bounds width and height so that every size computed from
// them fits comfortably in int and uint32 on every platform.
const MaxDimension = 1 << 16

// Geometry is the shape of a frame in memory: Height rows of Stride bytes,
// of which the first Width*BytesPerPixel carry pixels and the rest is
// padding.
type Geometry struct {
	Width, Height, Stride int
	Format                Format
}

// Validate checks that the geometry is possible: a known format, positive
// dimensions no larger than MaxDimension, and a stride that holds a row.
func (g Geometry) Validate() error {
	bpp := g.Format.BytesPerPixel()
	if bpp == 0 {
		return fmt.Errorf("validate geometry: %w: %v", ErrFormat, g.Format)
	}
	if g.Width <= 0 || g.Height <= 0 || g.Width > MaxDimension || g.Height > MaxDimension {
		return fmt.Errorf("validate geometry: %w: %dx%d", ErrGeometry, g.Width, g.Height)
	}
	if g.Stride < g.Width*bpp || g.Stride > MaxDimension*4 {
		return fmt.Errorf("validate geometry: %w: stride %d for %d pixels of %d bytes",
			ErrGeometry, g.Stride, g.Width, bpp)
	}
	return nil
}

// RowBytes is the number of bytes of a row that carry pixels.
func (g Geometry) RowBytes() int { return g.Width * g.Format.BytesPerPixel() }

// Size is the number of bytes the frame occupies: Stride*Height.
func (g Geometry) Size() int { return g.Stride * g.Height }

// Packed returns a geometry with the smallest stride for width and format.
func Packed(width, height int, f Format) Geometry {
	return Geometry{Width: width, Height: height, Stride: width * f.BytesPerPixel(), Format: f}
}
