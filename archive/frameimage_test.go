package archive_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"testing"

	"golang.org/x/image/tiff"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
)

// wantRGBA is what the exported image must hold at (x, y) of a raw frame,
// as 16-bit R, G, B (gray formats: R = G = B), from a naive reading of the
// raw bytes and the conversions FrameImage documents.
func wantRGBA(t *testing.T, g frame.Geometry, raw []byte, x, y int) [3]uint32 {
	info, _ := g.Format.Info()
	row := raw[y*g.Stride:]
	gray := func(v uint32) [3]uint32 { return [3]uint32{v, v, v} }
	n := info.SampleBits
	scale := func(s uint32) uint32 { // bit replication to 16 bits, clamped
		s = min(s, 1<<n-1)
		return (s<<(16-n) | s>>(2*n-16)) & 0xFFFF
	}
	switch {
	case info.Packing == frame.PackedGEV:
		b, l := row[x/2*3:], n-8
		if x%2 == 0 {
			return gray(scale(uint32(b[0])<<l | uint32(b[1])&(1<<l-1)))
		}
		return gray(scale(uint32(b[2])<<l | uint32(b[1]>>4)&(1<<l-1)))
	case info.Packing == frame.PackedLSB:
		var s uint32
		for k := 0; k < info.BitsPerPixel; k++ {
			bit := x*info.BitsPerPixel + k
			s |= uint32(row[bit/8]>>(bit%8)&1) << k
		}
		return gray(scale(s))
	case info.Kind == frame.KindRGB:
		px := row[3*x:]
		return [3]uint32{uint32(px[info.Order[0]]) * 0x101, uint32(px[info.Order[1]]) * 0x101, uint32(px[info.Order[2]]) * 0x101}
	case info.Kind == frame.KindYUV422:
		pair := row[x/2*4:]
		yy := pair[info.Order[0]]
		if x%2 == 1 {
			yy = pair[info.Order[2]]
		}
		r, gg, b := color.YCbCrToRGB(yy, pair[info.Order[1]], pair[info.Order[3]])
		return [3]uint32{uint32(r) * 0x101, uint32(gg) * 0x101, uint32(b) * 0x101}
	case info.BitsPerPixel == 8:
		return gray(uint32(row[x]) * 0x101)
	default:
		return gray(scale(uint32(binary.LittleEndian.Uint16(row[2*x:]))))
	}
}

// roundTrip encodes img as PNG or TIFF with the encoders and options
// Export uses and decodes it again.
func roundTrip(t *testing.T, img image.Image, tiffFile bool) image.Image {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if tiffFile {
		err = tiff.Encode(&buf, img, &tiff.Options{Compression: tiff.Uncompressed})
	} else {
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	var out image.Image
	if tiffFile {
		out, err = tiff.Decode(&buf)
	} else {
		out, err = png.Decode(&buf)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFrameImageEveryFormat converts pattern frames of every format, writes
// them as PNG and TIFF files' bytes and reads them back, and checks every
// pixel against the raw frame; then checks that formats holding the same
// picture (RGB8 and BGR8, the two YUV422 orders, Mono10 and its two
// packings, Mono12 and its two) give identical images. (Export's own
// file handling is TestExportRoundTrip's; the real archiver command
// exporting every format is cmd/pipeline's TestPipelineFormats.)
func TestFrameImageEveryFormat(t *testing.T) {
	const id = 4 // one defect, dark or bright
	for _, tiffFile := range []bool{false, true} {
		imgs := map[frame.Format]image.Image{}
		for i, f := range frame.Formats() {
			g := frame.Packed(57, 19, f) // odd: packed rows end inside a byte or a pair
			if g.Validate() != nil {
				g = frame.Packed(58, 19, f) // 4:2:2 widths are even
			}
			g.Stride += i % 3
			gen, err := frame.NewGenerator(g, true)
			if err != nil {
				t.Fatal(err)
			}
			raw := make([]byte, g.Size())
			if err := gen.Fill(raw, id); err != nil {
				t.Fatal(err)
			}
			m := archive.Meta{FrameID: id, Width: g.Width, Height: g.Height, Stride: g.Stride, Format: f}
			conv, err := archive.FrameImage(m, raw)
			if err != nil {
				t.Fatal(err)
			}
			img := roundTrip(t, conv, tiffFile)
			if b := img.Bounds(); b.Dx() != g.Width || b.Dy() != g.Height {
				t.Fatalf("%v: bounds %v", f, b)
			}
			for y := 0; y < g.Height; y++ {
				for x := 0; x < g.Width; x++ {
					r, gg, b, a := img.At(x, y).RGBA()
					want := wantRGBA(t, g, raw, x, y)
					if [3]uint32{r, gg, b} != want || a != 0xFFFF {
						t.Fatalf("tiff=%v %v (%T): pixel (%d,%d) = %x %x %x %x, want %x", tiffFile, f, img, x, y, r, gg, b, a, want)
					}
				}
			}
			imgs[f] = img
		}
		for _, same := range [][2]frame.Format{{frame.RGB8, frame.BGR8}, {frame.YUV422_8, frame.YUV422_8_UYVY},
			{frame.Mono10, frame.Mono10p}, {frame.Mono12, frame.Mono12p}, {frame.Mono10, frame.Mono10Packed}, {frame.Mono12, frame.Mono12Packed}} {
			a, b := imgs[same[0]], imgs[same[1]]
			if b.Bounds() != a.Bounds() {
				t.Fatalf("%v and %v: bounds %v and %v", same[0], same[1], a.Bounds(), b.Bounds())
			}
			w := a.Bounds().Dx()
			for i := frame.StampSize; i < 19*w; i++ { // pixels past the stamp, which differs
				p := image.Pt(i%w, i/w)
				if a.At(p.X, p.Y) != b.At(p.X, p.Y) {
					t.Fatalf("tiff=%v: %v at %v is %v, %v is %v", tiffFile, same[0], p, a.At(p.X, p.Y), same[1], b.At(p.X, p.Y))
				}
			}
		}
	}
}

// TestFrameImageTypes pins the image type (and so the file's pixel type)
// of each kind of format, and the 16-bit scaling of extreme samples.
func TestFrameImageTypes(t *testing.T) {
	for _, f := range frame.Formats() {
		g := frame.Packed(4, 2, f)
		info, _ := f.Info()
		img, err := archive.FrameImage(archive.Meta{Width: 4, Height: 2, Stride: g.Stride, Format: f}, make([]byte, g.Size()))
		if err != nil {
			t.Fatal(err)
		}
		want := "*image.NRGBA"
		switch {
		case info.Kind != frame.KindRGB && info.Kind != frame.KindYUV422 && info.BitsPerPixel == 8:
			want = "*image.Gray"
		case info.Kind == frame.KindMono || info.Kind == frame.KindBayer:
			want = "*image.Gray16"
		}
		if got := fmt.Sprintf("%T", img); got != want {
			t.Fatalf("%v: %s, want %s", f, got, want)
		}
	}
	// Mono10: 1023 is full scale, 1 is 0x0040, a value with bits above
	// the tenth (not allowed) is clamped, not wrapped.
	raw := make([]byte, 8)
	for i, v := range []uint16{1023, 1, 0xFFFF, 512} {
		binary.LittleEndian.PutUint16(raw[2*i:], v)
	}
	img, err := archive.FrameImage(archive.Meta{Width: 4, Height: 1, Stride: 8, Format: frame.Mono10}, raw)
	if err != nil {
		t.Fatal(err)
	}
	g16 := img.(*image.Gray16)
	for x, want := range []uint16{0xFFFF, 0x0040, 0xFFFF, 0x8020} {
		if got := g16.Gray16At(x, 0).Y; got != want {
			t.Fatalf("Mono10 sample %d exported as %#x, want %#x", x, got, want)
		}
	}
}

func TestFrameImageErrors(t *testing.T) {
	_, err := archive.FrameImage(archive.Meta{Width: 4, Height: 1, Stride: 4, Format: 0x01100025}, make([]byte, 4)) // Mono14
	if !errors.Is(err, archive.ErrFormat) || !errors.Is(err, frame.ErrFormat) {
		t.Fatalf("unknown format: %v", err)
	}
	if _, err := archive.FrameImage(archive.Meta{Width: 3, Height: 1, Stride: 6, Format: frame.YUV422_8}, make([]byte, 6)); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("odd 4:2:2 width: %v", err)
	}
	if _, err := archive.FrameImage(archive.Meta{Width: 5, Height: 2, Stride: 6, Format: frame.Mono10p}, make([]byte, 12)); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("Mono10p stride one byte short: %v", err)
	}
}
