package archive

// Pixel conversion for export: a raw frame, in any format of frame's
// format table, to an image the PNG and TIFF encoders write. The layout of
// each format is read from the table, never from format codes; a format
// with no conversion here is ErrFormat, never an image of zeros.

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/color"

	"github.com/framering/framering/frame"
)

// FrameImage converts a raw frame to an image without stride padding. The
// image does not alias raw. By format kind:
//
//   - Mono8 and the 8-bit Bayer formats: *image.Gray, the samples as they
//     are. Bayer frames are exported as the raw mosaic, one gray pixel per
//     sample, not debayered: the file keeps exactly what the sensor
//     measured, and the filter layout is the format's (frame.FormatInfo.CFA);
//   - Mono10, Mono12, Mono16, Mono10p, Mono12p, Mono10Packed,
//     Mono12Packed and the 16-bit Bayer formats: *image.Gray16 (16-bit PNG and TIFF). An n-bit sample s is
//     scaled to 16 bits by bit replication, frame.To16 (s<<(16-n) |
//     s>>(2n-16)), so that the image spans the full range and s is
//     exactly the top n bits of the stored value; packed samples are
//     unpacked first. A sample above 2^n-1 (bits the camera must leave
//     zero) is stored as 0xFFFF;
//   - RGB8 and BGR8: *image.NRGBA, opaque, channels in R, G, B order
//     (BGR8's bytes swapped);
//   - YUV422_8 and YUV422_8_UYVY: *image.NRGBA, opaque, each pixel's Y
//     with its pair's U and V converted by color.YCbCrToRGB (full-range
//     BT.601, as JPEG/JFIF: U and V centered on 128).
//
// A format not in the table, or one with no conversion, is refused with
// ErrFormat (which also matches frame.ErrFormat); a geometry that does not
// describe raw exactly with ErrInvalid.
func FrameImage(m Meta, raw []byte) (image.Image, error) {
	g := m.Geometry()
	info, ok := g.Format.Info()
	if !ok {
		return nil, fmt.Errorf("convert frame %d: %w: %w: %v", m.FrameID, ErrFormat, frame.ErrFormat, g.Format)
	}
	if err := g.Validate(); err != nil || len(raw) != g.Size() {
		return nil, fmt.Errorf("convert frame %d: %w: %dx%d stride %d for %d bytes (%v)", m.FrameID, ErrInvalid, g.Width, g.Height, g.Stride, len(raw), err)
	}
	rect := image.Rect(0, 0, g.Width, g.Height)
	rb := g.RowBytes()
	row := func(y int) []byte { return raw[y*g.Stride : y*g.Stride+rb] }
	oneSample := info.Kind == frame.KindMono || info.Kind == frame.KindBayer
	switch {
	case oneSample && info.Packing == frame.Unpacked && info.BitsPerPixel == 8:
		img := image.NewGray(rect)
		for y := 0; y < g.Height; y++ {
			copy(img.Pix[y*img.Stride:y*img.Stride+g.Width], row(y))
		}
		return img, nil
	case oneSample && (info.Packing == frame.Unpacked && info.BitsPerPixel == 16 || info.Packing == frame.PackedLSB || info.Packing == frame.PackedGEV):
		img := image.NewGray16(rect)
		var unpacked []byte
		if info.Packing != frame.Unpacked {
			unpacked = make([]byte, 2*g.Width)
		}
		n := info.SampleBits
		for y := 0; y < g.Height; y++ {
			src := row(y)
			if unpacked != nil {
				if err := frame.Unpack16(unpacked, src, g.Format, g.Width); err != nil {
					return nil, fmt.Errorf("convert frame %d: %w: %w", m.FrameID, ErrInvalid, err)
				}
				src = unpacked
			}
			dst := img.Pix[y*img.Stride:]
			for x := 0; x < g.Width; x++ {
				binary.BigEndian.PutUint16(dst[2*x:], frame.To16(uint32(binary.LittleEndian.Uint16(src[2*x:])), n))
			}
		}
		return img, nil
	case info.Kind == frame.KindRGB && info.BitsPerPixel == 24:
		img := image.NewNRGBA(rect)
		o := info.Order
		for y := 0; y < g.Height; y++ {
			src := row(y)
			dst := img.Pix[y*img.Stride:]
			for x := 0; x < g.Width; x++ {
				px := src[3*x : 3*x+3]
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = px[o[0]], px[o[1]], px[o[2]], 0xFF
			}
		}
		return img, nil
	case info.Kind == frame.KindYUV422 && info.BitsPerPixel == 16 && info.SampleBits == 8:
		img := image.NewNRGBA(rect)
		o := info.Order
		for y := 0; y < g.Height; y++ {
			src := row(y)
			dst := img.Pix[y*img.Stride:]
			for x := 0; x+1 < g.Width; x += 2 { // widths are even (frame.Geometry.Validate)
				pair := src[2*x : 2*x+4]
				u, v := pair[o[1]], pair[o[3]]
				for k, yy := range [2]byte{pair[o[0]], pair[o[2]]} {
					r, gg, b := color.YCbCrToRGB(yy, u, v)
					d := dst[4*(x+k) : 4*(x+k)+4]
					d[0], d[1], d[2], d[3] = r, gg, b, 0xFF
				}
			}
		}
		return img, nil
	}
	return nil, fmt.Errorf("convert frame %d: %w: %v cannot be exported", m.FrameID, ErrFormat, g.Format)
}
