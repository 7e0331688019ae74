package analysis

// How each pixel format is measured, decided once per frame from the
// format table (frame.FormatInfo), never from format codes:
//
//   - one byte per sample (Mono8, the 8-bit Bayer mosaics): kernel k8 on
//     the row as it lies in the buffer;
//   - a little-endian uint16 per sample (Mono10/12/16, the 16-bit Bayer
//     mosaics): kernel k16 on the row as it lies, with the format's
//     significant bits n;
//   - packed, PFNC "p" (Mono10p, Mono12p) or GigE Vision (Mono10Packed,
//     Mono12Packed): each row is unpacked into the analyzer's scratch row
//     (frame.Unpack16) and measured by k16;
//   - RGB8 and BGR8: kernel kRGB on the luma (R + 2G + B) / 4, which is the
//     same for either byte order; the channel means follow the order;
//   - 4:2:2 YUV: each row's Y samples are copied into the scratch row and
//     measured by k8.
//
// Bayer formats are measured on the raw mosaic: every sample is a pixel
// of its own, whatever its filter color (no demosaicing, which would blur
// a defect's edges into its neighbors). A hot or dead pixel, dust or a
// scratch shows in every color, so thresholds on raw samples find it.
//
// A format of the table that none of these covers is refused with
// frame.ErrFormat before any pixel is read: never measured as zeros.

import (
	"fmt"

	"github.com/framering/framering/frame"
)

// kernel is the sample layout the statistics and labeling kernels read.
type kernel uint8

const (
	k8   kernel = iota + 1 // one byte per pixel
	k16                    // a little-endian uint16 per pixel, a.bits significant
	kRGB                   // three bytes per pixel
)

// decoding is how a row of the buffer becomes the kernel's layout.
type decoding uint8

const (
	decodeNone   decoding = iota // the buffer's row is read in place
	decodePacked                 // frame.Unpack16 into a.scratch
	decodeLuma                   // the Y samples of a 4:2:2 row into a.scratch
)

// setFormat derives the kernel, decoding and sample sizes for g's format.
func (a *Analyzer) setFormat(g frame.Geometry) error {
	info, ok := g.Format.Info()
	if !ok {
		return fmt.Errorf("%w: %v", frame.ErrFormat, g.Format)
	}
	a.info = info
	a.dec = decodeNone
	switch {
	case (info.Kind == frame.KindMono || info.Kind == frame.KindBayer) && info.Packing == frame.Unpacked && info.BitsPerPixel == 8:
		a.kern, a.sw = k8, 1
	case (info.Kind == frame.KindMono || info.Kind == frame.KindBayer) && info.Packing == frame.Unpacked && info.BitsPerPixel == 16:
		a.kern, a.sw = k16, 2
	case info.Kind == frame.KindMono && (info.Packing == frame.PackedLSB || info.Packing == frame.PackedGEV) && info.SampleBits <= 16:
		a.kern, a.sw, a.dec = k16, 2, decodePacked
	case info.Kind == frame.KindRGB && info.BitsPerPixel == 24:
		a.kern, a.sw = kRGB, 3
	case info.Kind == frame.KindYUV422 && info.BitsPerPixel == 16 && info.SampleBits == 8:
		a.kern, a.sw, a.dec = k8, 1, decodeLuma
	default:
		return fmt.Errorf("%w: %v cannot be analyzed", frame.ErrFormat, g.Format)
	}
	a.bits = 8
	if a.kern == k16 {
		a.bits = info.SampleBits
	}
	if a.dec != decodeNone {
		if n := g.Width * a.sw; cap(a.scratch) < n {
			a.scratch = make([]byte, n)
		}
	}
	a.lab.setBits(a.bits)
	return nil
}

// row returns row y of buf in the kernel's layout, Width*sw bytes: the
// buffer's own bytes, or the row decoded into a.scratch (valid until the
// next call).
func (a *Analyzer) row(buf []byte, y int) []byte {
	g := a.g
	r := buf[y*g.Stride : y*g.Stride+a.rb]
	switch a.dec {
	case decodePacked:
		// Cannot fail: r holds RowBytes (Invariant 1) and scratch 2*Width.
		_ = frame.Unpack16(a.scratch, r, g.Format, g.Width)
	case decodeLuma:
		d := a.scratch[:g.Width]
		o0, o1 := a.info.Order[0], a.info.Order[2]
		for i := 0; i+1 < len(d); i += 2 {
			pair := r[2*i : 2*i+4]
			d[i], d[i+1] = pair[o0], pair[o1]
		}
	default:
		return r
	}
	return a.scratch[:g.Width*a.sw]
}
