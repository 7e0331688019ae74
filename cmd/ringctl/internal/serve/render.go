package serve

// Frames for the web view: a raw frame in any format of frame's table,
// downscaled to a picture for a browser. It reads the frame where it lies
// (an observer's Peek of shared memory, which the producer may overwrite
// at any moment): every index is bounds-checked against the geometry,
// which is validated against the bytes first, so a torn or hostile frame
// renders garbage at worst, never a panic, and Peek's generation check
// tells the caller to throw that garbage away.
//
// Downscaling samples: output pixel (x, y) is the input pixel (x*s, y*s)
// for the integer step s that fits the frame in the requested size, so a
// refresh reads about as many input pixels as it writes output pixels,
// whatever the frame's size. By kind (the format table's):
//   - Mono, n bits: the top 8 of the n significant bits (bit replication,
//     frame.To16), so Mono10/12 in 16-bit containers and Mono16 all span
//     black to white; packed rows are unpacked first (only the rows used);
//   - Bayer: each output pixel is one 2x2 filter cell, read as color (its
//     red, the mean of its two greens, its blue, by the format's CFA): a
//     cheap demosaic at half resolution, never a mosaic of gray dots;
//   - RGB8/BGR8 by the format's byte order; YUV422 by color.YCbCrToRGB.
//
// With levels, the picture is stretched to span 0-255 (a dim scene, a
// 12-bit camera in a Mono16 container).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

// errRender is returned for a frame the view cannot draw.
var errRender = errors.New("cannot render frame")

// renderer draws frames; it keeps its buffers between frames (one
// goroutine at a time: the server pools them).
type renderer struct {
	gray  *image.Gray
	rgba  *image.RGBA
	row   []byte // an unpacked row (packed formats)
	cells []byte // a row of Bayer cells: four samples each
}

// step returns the integer downscale step that fits w x h in max x max.
func step(w, h, max int, even bool) int {
	s := 1
	for w/s > max || h/s > max {
		s++
	}
	if even && s%2 == 1 {
		s++
	}
	return s
}

// render draws frame m (its bytes data) at most maxSide pixels wide and
// high. The image belongs to r and is valid until the next render.
func (r *renderer) render(m ringbuf.Meta, data []byte, maxSide int, levels bool) (image.Image, error) {
	g := frame.Geometry{Width: int(m.Width), Height: int(m.Height), Stride: int(m.Stride), Format: m.Format}
	info, ok := g.Format.Info()
	if !ok {
		return nil, fmt.Errorf("render frame %d: %w: unknown format %v", m.Seq, errRender, g.Format)
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("render frame %d: %w: %w", m.Seq, errRender, err)
	}
	if len(data) < g.Size() {
		return nil, fmt.Errorf("render frame %d: %w: %d bytes for %dx%d stride %d", m.Seq, errRender, len(data), g.Width, g.Height, g.Stride)
	}
	maxSide = max(maxSide, 16)
	bayer := info.Kind == frame.KindBayer
	s := step(g.Width, g.Height, maxSide, bayer)
	ow, oh := max(g.Width/s, 1), max(g.Height/s, 1)
	if bayer && (g.Width < 2 || g.Height < 2) {
		bayer, s = false, 1 // a one-pixel mosaic: show it gray
		ow, oh = g.Width, g.Height
	}
	rowAt := func(y int) []byte { return data[y*g.Stride : y*g.Stride+g.RowBytes()] }
	switch {
	case info.Kind == frame.KindMono || (info.Kind == frame.KindBayer && !bayer):
		img := r.grayImage(ow, oh)
		for y := 0; y < oh; y++ {
			if err := r.samples8(img.Pix[y*img.Stride:y*img.Stride+ow], rowAt(y*s), 0, s, &info, g); err != nil {
				return nil, fmt.Errorf("render frame %d: %w", m.Seq, err)
			}
		}
		if levels {
			stretch(img.Pix)
		}
		return img, nil
	case bayer:
		img := r.rgbaImage(ow, oh)
		if cap(r.cells) < 4*ow {
			r.cells = make([]byte, 4*ow)
		}
		c := r.cells[:4*ow]
		// Where red, blue and the two greens sit in a cell (index k = 2*row + column).
		var red, blue int
		var greens []int
		for k, col := range info.CFA {
			switch col {
			case frame.Red:
				red = k
			case frame.Blue:
				blue = k
			default:
				greens = append(greens, k)
			}
		}
		if len(greens) != 2 {
			return nil, fmt.Errorf("render frame %d: %w: filter layout %v", m.Seq, errRender, info.CFA)
		}
		for y := 0; y < oh; y++ {
			y0 := y * s // s is even: y0+1 is a row of the frame
			for k := range 4 {
				if err := r.samples8(c[k*ow:(k+1)*ow], rowAt(y0+k/2), k%2, s, &info, g); err != nil {
					return nil, fmt.Errorf("render frame %d: %w", m.Seq, err)
				}
			}
			cr, cb, g0, g1 := c[red*ow:], c[blue*ow:], c[greens[0]*ow:], c[greens[1]*ow:]
			dst := img.Pix[y*img.Stride : y*img.Stride+4*ow]
			for x := 0; x < ow; x++ {
				d := dst[4*x : 4*x+4 : 4*x+4]
				d[0], d[1], d[2], d[3] = cr[x], uint8((int(g0[x])+int(g1[x]))/2), cb[x], 0xFF
			}
		}
		if levels {
			stretchRGBA(img.Pix)
		}
		return img, nil
	case info.Kind == frame.KindRGB && info.BitsPerPixel == 24:
		img := r.rgbaImage(ow, oh)
		o0, o1, o2 := int(info.Order[0]), int(info.Order[1]), int(info.Order[2])
		for y := 0; y < oh; y++ {
			src := rowAt(y * s)
			dst := img.Pix[y*img.Stride : y*img.Stride+4*ow]
			for x := 0; x < ow; x++ {
				px := src[3*x*s : 3*x*s+3 : 3*x*s+3]
				d := dst[4*x : 4*x+4 : 4*x+4]
				d[0], d[1], d[2], d[3] = px[o0], px[o1], px[o2], 0xFF
			}
		}
		if levels {
			stretchRGBA(img.Pix)
		}
		return img, nil
	case info.Kind == frame.KindYUV422 && info.BitsPerPixel == 16 && info.SampleBits == 8:
		img := r.rgbaImage(ow, oh)
		o := info.Order
		for y := 0; y < oh; y++ {
			src := rowAt(y * s)
			dst := img.Pix[y*img.Stride:]
			for x := 0; x < ow; x++ {
				xi := x * s
				pair := src[2*(xi&^1) : 2*(xi&^1)+4]
				yy := pair[o[0]]
				if xi&1 == 1 {
					yy = pair[o[2]]
				}
				rr, gg, bb := color.YCbCrToRGB(yy, pair[o[1]], pair[o[3]])
				d := dst[4*x : 4*x+4]
				d[0], d[1], d[2], d[3] = rr, gg, bb, 0xFF
			}
		}
		if levels {
			stretchRGBA(img.Pix)
		}
		return img, nil
	}
	return nil, fmt.Errorf("render frame %d: %w: %v", m.Seq, errRender, g.Format)
}

// samples8 sets dst[i] to the 8-bit value of pixel x0 + i*step of row (a
// one-sample format): the top 8 of its n significant bits, which is what
// bit replication to 16 bits (frame.To16) puts in the high byte. A packed
// row is unpacked first.
func (r *renderer) samples8(dst, row []byte, x0, step int, info *frame.FormatInfo, g frame.Geometry) error {
	if info.Packing == frame.Unpacked && info.BitsPerPixel == 8 {
		for i := range dst {
			dst[i] = row[x0+i*step]
		}
		return nil
	}
	if info.Packing != frame.Unpacked {
		if cap(r.row) < 2*g.Width {
			r.row = make([]byte, 2*g.Width)
		}
		r.row = r.row[:2*g.Width]
		if err := frame.Unpack16(r.row, row, g.Format, g.Width); err != nil {
			return fmt.Errorf("%w: %w", errRender, err)
		}
		row = r.row
	}
	n := info.SampleBits
	top := uint32(1)<<n - 1
	shift := uint(n - 8)
	for i := range dst {
		x := x0 + i*step
		v := uint32(binary.LittleEndian.Uint16(row[2*x : 2*x+2]))
		dst[i] = uint8(min(v, top) >> shift)
	}
	return nil
}

func (r *renderer) grayImage(w, h int) *image.Gray {
	if r.gray == nil || r.gray.Rect.Dx() != w || r.gray.Rect.Dy() != h {
		r.gray = image.NewGray(image.Rect(0, 0, w, h))
	}
	return r.gray
}

func (r *renderer) rgbaImage(w, h int) *image.RGBA {
	if r.rgba == nil || r.rgba.Rect.Dx() != w || r.rgba.Rect.Dy() != h {
		r.rgba = image.NewRGBA(image.Rect(0, 0, w, h))
	}
	return r.rgba
}

// stretch maps the gray values' range onto 0-255.
func stretch(p []byte) {
	lo, hi := uint8(255), uint8(0)
	for _, v := range p {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi <= lo {
		return
	}
	span := int(hi) - int(lo)
	for i, v := range p {
		p[i] = uint8((int(v) - int(lo)) * 255 / span)
	}
}

// stretchRGBA maps the color channels' common range onto 0-255.
func stretchRGBA(p []byte) {
	lo, hi := uint8(255), uint8(0)
	for i, v := range p {
		if i%4 != 3 {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if hi <= lo {
		return
	}
	span := int(hi) - int(lo)
	for i, v := range p {
		if i%4 != 3 {
			p[i] = uint8((int(v) - int(lo)) * 255 / span)
		}
	}
}
