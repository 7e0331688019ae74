package frame_test

import (
	"errors"
	"testing"

	"github.com/framering/framering/frame"
)

func TestFillVerifyRoundTrip(t *testing.T) {
	for _, f := range frame.Formats() {
		g := frame.Packed(160, 90, f)
		g.Stride += 7 // padding must be zeroed and covered by the checksum
		gen, err := frame.NewGenerator(g, true)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, g.Size())
		for id := uint64(0); id < 12; id++ {
			for i := range buf {
				buf[i] = 0xA5 // Fill must not depend on old contents
			}
			if err := gen.Fill(buf, id); err != nil {
				t.Fatal(err)
			}
			s, err := frame.Verify(buf)
			if err != nil {
				t.Fatalf("%v id %d: %v", f, id, err)
			}
			if s.FrameID != id || s.Format != f || s.Width != 160 || s.Height != 90 {
				t.Fatalf("%v: stamp %+v", f, s)
			}
			if buf[g.RowBytes()] != 0 || buf[g.Stride-1] != 0 {
				t.Fatalf("%v: padding not zeroed", f)
			}
			buf[len(buf)/2] ^= 1
			if _, err := frame.Verify(buf); !errors.Is(err, frame.ErrStamp) {
				t.Fatalf("%v: flipped byte verified: %v", f, err)
			}
		}
	}
}

// TestPatternReference compares every pixel of pattern frames, in every
// format, with the pattern as the file comment (and LAYOUT.md Appendix A)
// specifies it, decoded naively here: background, defects, padding.
func TestPatternReference(t *testing.T) {
	for _, f := range frame.Formats() {
		for _, w := range []int{54, 61, 100} {
			g := frame.Packed(w, 40, f)
			if g.Validate() != nil {
				continue // odd width of a YUV422 format
			}
			g.Stride += 3
			gen, err := frame.NewGenerator(g, true)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, g.Size())
			for _, id := range []uint64{1, 2, 5, 127, 1<<63 + 2, ^uint64(0)} {
				if err := gen.Fill(buf, id); err != nil {
					t.Fatal(err)
				}
				checkReference(t, buf, g, id)
			}
		}
	}
}

func checkReference(t *testing.T, buf []byte, g frame.Geometry, id uint64) {
	t.Helper()
	info, _ := g.Format.Info()
	blobs := frame.Defects(nil, g, id)
	if id%3 != 0 && len(blobs) == 0 {
		t.Fatalf("%v: no defects in %+v", g.Format, g)
	}
	for y := 0; y < g.Height; y++ {
		row := buf[y*g.Stride : (y+1)*g.Stride]
		for x := 0; x < g.Width; x++ {
			if y*g.Stride*8+x*info.BitsPerPixel < 8*frame.StampSize {
				continue // under the stamp
			}
			want := refPixel(info, x, y, id, blobs)
			if got := decodePixel(info, row, x); got != want {
				t.Fatalf("%v %dx%d id %d pixel (%d,%d) = %v, want %v", g.Format, g.Width, g.Height, id, x, y, got, want)
			}
		}
		for i := g.RowBytes(); i < g.Stride; i++ {
			if row[i] != 0 {
				t.Fatalf("%v: padding byte %d of row %d = %#x", g.Format, i, y, row[i])
			}
		}
		if r := g.Width * info.BitsPerPixel % 8; r != 0 && row[g.RowBytes()-1]>>r != 0 {
			t.Fatalf("%v: unused bits of row %d = %#x", g.Format, y, row[g.RowBytes()-1])
		}
	}
}

// sample is up to four sample values of a pixel: its own (Mono, Bayer:
// s[0]; RGB: R, G, B; YUV: Y, and the pair's U and V).
type sample [4]uint32

func base(x, y int, id uint64) uint32 { return 16 + uint32((uint64(x)+uint64(2*y)+3*id)%128) }

func expand(v uint32, n int) uint32 { return v<<(n-8) | v>>(16-n) }

// refPixel is the pattern's pixel (x, y) of frame id, from the spec.
func refPixel(info frame.FormatInfo, x, y int, id uint64, blobs []frame.Blob) sample {
	var s sample
	v := base(x, y, id)
	n := info.SampleBits
	switch info.Kind {
	case frame.KindMono:
		s[0] = expand(v, n)
	case frame.KindBayer:
		s[0] = expand(v+16*uint32(info.CFA[y%2*2+x%2]), n)
	case frame.KindRGB:
		s = sample{v, v + 32, v + 64}
	case frame.KindYUV422:
		x0 := x &^ 1
		s = sample{v, base(x0, y, id) + 32, base(x0, y, id) + 64}
	}
	for _, b := range blobs {
		if x >= b.X && x < b.X+b.Size && y >= b.Y && y < b.Y+b.Size {
			m := uint32(1)<<n - 1
			if !b.Bright {
				m = 0
			}
			switch info.Kind {
			case frame.KindRGB:
				s = sample{m, m, m}
			default:
				s[0] = m
			}
		}
	}
	return s
}

// decodePixel reads pixel x of a row naively, bit by bit for packed formats.
func decodePixel(info frame.FormatInfo, row []byte, x int) sample {
	var s sample
	switch {
	case info.Packing == frame.PackedLSB:
		for k := 0; k < info.BitsPerPixel; k++ {
			bit := x*info.BitsPerPixel + k
			s[0] |= uint32(row[bit/8]>>(bit%8)&1) << k
		}
	case info.Packing == frame.PackedGEV:
		b, l := row[x/2*3:], info.SampleBits-8
		if x%2 == 0 {
			s[0] = uint32(b[0])<<l | uint32(b[1])&(1<<l-1)
		} else {
			s[0] = uint32(b[2])<<l | uint32(b[1]>>4)&(1<<l-1)
		}
	case info.Kind == frame.KindRGB:
		s = sample{uint32(row[3*x+int(info.Order[0])]), uint32(row[3*x+int(info.Order[1])]), uint32(row[3*x+int(info.Order[2])])}
	case info.Kind == frame.KindYUV422:
		pair := row[x/2*4:]
		yOff := info.Order[0]
		if x%2 == 1 {
			yOff = info.Order[2]
		}
		s = sample{uint32(pair[yOff]), uint32(pair[info.Order[1]]), uint32(pair[info.Order[3]])}
	case info.BitsPerPixel == 8:
		s[0] = uint32(row[x])
	default:
		s[0] = uint32(row[2*x]) | uint32(row[2*x+1])<<8
	}
	return s
}

func TestDefectsPlacement(t *testing.T) {
	g := frame.Packed(320, 240, frame.Mono8)
	gen, _ := frame.NewGenerator(g, true)
	buf := make([]byte, g.Size())
	seen := 0
	for id := uint64(0); id < 30; id++ {
		blobs := frame.Defects(nil, g, id)
		if len(blobs) != int(id%3) {
			t.Fatalf("id %d: %d defects", id, len(blobs))
		}
		if err := gen.Fill(buf, id); err != nil {
			t.Fatal(err)
		}
		for _, b := range blobs {
			seen++
			if b.Y < 1 || b.Y+b.Size > g.Height || b.X < 0 || b.X+b.Size > g.Width || b.Size < 4 || b.Size > 16 {
				t.Fatalf("id %d: blob out of range %+v", id, b)
			}
			want := byte(0)
			if b.Bright {
				want = 0xFF
			}
			if buf[(b.Y+b.Size/2)*g.Stride+b.X+b.Size/2] != want {
				t.Fatalf("id %d: blob %+v not drawn", id, b)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no defects generated")
	}
	if n := len(frame.Defects(nil, frame.Packed(40, 10, frame.Mono8), 2)); n != 0 {
		t.Fatalf("tiny frame got %d defects", n)
	}
}

func TestGeneratorRejects(t *testing.T) {
	cases := []frame.Geometry{
		{Width: 0, Height: 1, Stride: 1, Format: frame.Mono8},
		{Width: 10, Height: 10, Stride: 9, Format: frame.Mono8},
		{Width: 10, Height: 10, Stride: 10, Format: 42},
		{Width: 4, Height: 4, Stride: 4, Format: frame.Mono8}, // 16 bytes < stamp
	}
	for _, g := range cases {
		if _, err := frame.NewGenerator(g, false); !errors.Is(err, frame.ErrGeometry) && !errors.Is(err, frame.ErrFormat) {
			t.Errorf("%+v: err %v", g, err)
		}
	}
	gen, _ := frame.NewGenerator(frame.Packed(16, 16, frame.Mono8), false)
	if err := gen.Fill(make([]byte, 10), 0); !errors.Is(err, frame.ErrGeometry) {
		t.Fatalf("short buffer: %v", err)
	}
}

func TestFillAllocs(t *testing.T) {
	for _, f := range frame.Formats() {
		g := frame.Packed(256, 64, f)
		gen, _ := frame.NewGenerator(g, true)
		buf := make([]byte, g.Size())
		id := uint64(0)
		if n := testing.AllocsPerRun(20, func() { id++; _ = gen.Fill(buf, id) }); n != 0 {
			t.Fatalf("%v: Fill allocates %v", f, n)
		}
	}
}

func FuzzVerify(f *testing.F) {
	gen, _ := frame.NewGenerator(frame.Packed(32, 8, frame.Mono8), true)
	buf := make([]byte, 256)
	_ = gen.Fill(buf, 7)
	f.Add(buf)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := frame.Verify(b)
		if err == nil && frame.Sum64(s.FrameID, b[frame.StampSize:]) != s.Checksum {
			t.Fatal("verified a frame whose checksum does not match")
		}
	})
}

func BenchmarkFill8MiB(b *testing.B) {
	for _, f := range []frame.Format{frame.Mono8, frame.Mono10p, frame.BayerRG16, frame.YUV422_8} {
		b.Run(f.String(), func(b *testing.B) {
			g := frame.Packed(4096, 8<<20/f.RowBytes(4096), f)
			gen, _ := frame.NewGenerator(g, true)
			buf := make([]byte, g.Size())
			b.SetBytes(int64(g.Size()))
			for i := 0; b.Loop(); i++ {
				_ = gen.Fill(buf, uint64(i))
			}
		})
	}
}
