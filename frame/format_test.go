package frame_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/framering/framering/frame"
)

// pfnc is the format list typed from the PFNC 2.x standard (and Aravis's
// arvenums.h where it has the code), independently of the table: the
// table must match it exactly.
var pfnc = map[string]uint32{
	"Mono8": 0x01080001, "Mono10": 0x01100003, "Mono12": 0x01100005, "Mono16": 0x01100007,
	"Mono10p": 0x010A0046, "Mono12p": 0x010C0047, "Mono10Packed": 0x010C0004, "Mono12Packed": 0x010C0006,
	"BayerGR8": 0x01080008, "BayerRG8": 0x01080009, "BayerGB8": 0x0108000A, "BayerBG8": 0x0108000B,
	"BayerGR16": 0x0110002E, "BayerRG16": 0x0110002F, "BayerGB16": 0x01100030, "BayerBG16": 0x01100031,
	"RGB8": 0x02180014, "BGR8": 0x02180015,
	"YUV422_8": 0x02100032, "YUV422_8_UYVY": 0x0210001F,
}

func TestFormatTable(t *testing.T) {
	all := frame.Formats()
	if len(all) != len(pfnc) {
		t.Fatalf("%d formats in the table, %d in the PFNC list", len(all), len(pfnc))
	}
	seen := map[frame.Format]bool{}
	for _, f := range all {
		info, ok := f.Info()
		if !ok || info.Format != f || !f.Valid() || seen[f] {
			t.Fatalf("%v: info %+v ok %v seen %v", f, info, ok, seen[f])
		}
		seen[f] = true
		if code, ok := pfnc[info.Name]; !ok || code != uint32(f) {
			t.Fatalf("%s = %#08x, PFNC says %#08x (known %v)", info.Name, uint32(f), code, ok)
		}
		// PFNC codes carry the occupied bits per pixel in bits 16-23 and
		// the color/mono flag in bits 24-31.
		if got := int(uint32(f) >> 16 & 0xFF); got != info.BitsPerPixel || got != f.BitsPerPixel() {
			t.Fatalf("%v: code says %d bits per pixel, table %d", f, got, info.BitsPerPixel)
		}
		color := uint32(f)>>24 == 2
		if color != (info.Kind == frame.KindRGB || info.Kind == frame.KindYUV422) {
			t.Fatalf("%v: PFNC color flag %v for kind %v", f, color, info.Kind)
		}
		if f.String() != info.Name {
			t.Fatalf("%v: String %q", f, f.String())
		}
		if p, err := frame.ParseFormat(info.Name); p != f || err != nil {
			t.Fatalf("ParseFormat(%q) = %v, %v", info.Name, p, err)
		}
		if !strings.Contains(frame.FormatNames(), info.Name) {
			t.Fatalf("FormatNames lacks %s", info.Name)
		}
		switch info.Kind {
		case frame.KindMono, frame.KindBayer:
			if info.Components != 1 || info.SampleBits > 16 || info.SampleBits < 8 ||
				(info.Packing == frame.Unpacked && info.BitsPerPixel != 8 && info.BitsPerPixel != 16) ||
				(info.Packing == frame.PackedLSB && info.BitsPerPixel != info.SampleBits) ||
				(info.Packing == frame.PackedGEV && (info.BitsPerPixel != 12 || info.SampleBits < 9 || info.SampleBits > 12)) {
				t.Fatalf("%v: %+v", f, info)
			}
		case frame.KindRGB:
			if info.Components != 3 || info.BitsPerPixel != 24 || info.Order[0]+info.Order[1]+info.Order[2] != 3 {
				t.Fatalf("%v: %+v", f, info)
			}
		case frame.KindYUV422:
			if info.Components != 2 || info.BitsPerPixel != 16 || info.WidthMultiple != 2 {
				t.Fatalf("%v: %+v", f, info)
			}
		default:
			t.Fatalf("%v: kind %v", f, info.Kind)
		}
		if info.Kind == frame.KindBayer {
			var n [3]int
			for _, c := range info.CFA {
				n[c]++
			}
			if n != [3]int{1, 2, 1} || info.CFA[0] == info.CFA[3] && info.CFA[0] != frame.Green {
				t.Fatalf("%v: CFA %v", f, info.CFA)
			}
			// The name spells the first row's colors.
			name := "RGB"
			if got := string(name[info.CFA[0]]) + string(name[info.CFA[1]]); !strings.Contains(info.Name, got) {
				t.Fatalf("%v: CFA %v", f, info.CFA)
			}
		}
	}
	for _, bad := range []frame.Format{0, 7, 0x01080002, 0x01100025, 0x810C0001} {
		if bad.Valid() || bad.BitsPerPixel() != 0 || bad.BytesPerPixel() != 0 || bad.RowBytes(10) != 0 {
			t.Fatalf("%v is valid", bad)
		}
		if _, ok := bad.Info(); ok {
			t.Fatalf("%v has info", bad)
		}
	}
	if _, err := frame.ParseFormat("mono8"); !errors.Is(err, frame.ErrFormat) {
		t.Fatalf("ParseFormat is case-sensitive: %v", err)
	}
}

func TestRowBytes(t *testing.T) {
	cases := []struct {
		f          frame.Format
		w, rb, bpp int
	}{
		{frame.Mono8, 7, 7, 1}, {frame.Mono10, 7, 14, 2}, {frame.Mono16, 1, 2, 2},
		{frame.Mono10p, 4, 5, 0}, {frame.Mono10p, 5, 7, 0}, {frame.Mono10p, 1, 2, 0}, {frame.Mono10p, 8, 10, 0},
		{frame.Mono12p, 2, 3, 0}, {frame.Mono12p, 3, 5, 0}, {frame.Mono12p, 1, 2, 0},
		{frame.Mono10Packed, 2, 3, 0}, {frame.Mono10Packed, 3, 5, 0}, {frame.Mono12Packed, 1, 2, 0},
		{frame.BayerRG8, 5, 5, 1}, {frame.BayerBG16, 5, 10, 2},
		{frame.RGB8, 5, 15, 3}, {frame.BGR8, 2, 6, 3}, {frame.YUV422_8, 4, 8, 2}, {frame.YUV422_8_UYVY, 2, 4, 2},
	}
	for _, c := range cases {
		if got := c.f.RowBytes(c.w); got != c.rb {
			t.Errorf("%v RowBytes(%d) = %d, want %d", c.f, c.w, got, c.rb)
		}
		if got := c.f.BytesPerPixel(); got != c.bpp {
			t.Errorf("%v BytesPerPixel = %d, want %d", c.f, got, c.bpp)
		}
		if g := frame.Packed(c.w, 3, c.f); g.Stride != c.rb || (g.Validate() != nil) != (c.w%2 != 0 && c.f.String()[0] == 'Y') {
			t.Errorf("%v Packed(%d) = %+v: %v", c.f, c.w, g, g.Validate())
		}
	}
	if frame.Mono8.RowBytes(0) != 0 || frame.Mono8.RowBytes(-3) != 0 {
		t.Fatal("RowBytes of a non-positive width")
	}
}

func TestGeometryValidate(t *testing.T) {
	good := []frame.Geometry{
		{Width: 5, Height: 1, Stride: 7, Format: frame.Mono10p},
		{Width: 2, Height: 1, Stride: 4, Format: frame.YUV422_8},
		{Width: frame.MaxDimension, Height: 1, Stride: 3 * frame.MaxDimension, Format: frame.BGR8},
	}
	for _, g := range good {
		if err := g.Validate(); err != nil {
			t.Errorf("%+v: %v", g, err)
		}
	}
	bad := []frame.Geometry{
		{Width: 5, Height: 1, Stride: 6, Format: frame.Mono10p},
		{Width: 3, Height: 1, Stride: 8, Format: frame.YUV422_8},
		{Width: 3, Height: 1, Stride: 8, Format: frame.YUV422_8_UYVY},
		{Width: 4, Height: 0, Stride: 8, Format: frame.Mono12},
		{Width: 4, Height: 1, Stride: frame.MaxStride + 1, Format: frame.Mono12},
		{Width: 4, Height: 1, Stride: 4, Format: 0x01100025}, // Mono14: not in the table
	}
	for _, g := range bad {
		if err := g.Validate(); !errors.Is(err, frame.ErrGeometry) && !errors.Is(err, frame.ErrFormat) {
			t.Errorf("%+v: %v", g, err)
		}
	}
}

func TestScaling(t *testing.T) {
	for _, n := range []int{8, 10, 12, 16} {
		prev := uint32(0)
		for v := 0; v < 256; v++ {
			e := frame.Expand8(uint8(v), n)
			if e>>(n-8) != uint32(v) || (v > 0 && e <= prev) || e >= 1<<n {
				t.Fatalf("Expand8(%d, %d) = %d", v, n, e)
			}
			prev = e
		}
		if frame.Expand8(255, n) != 1<<n-1 {
			t.Fatalf("Expand8(255, %d) = %d", n, frame.Expand8(255, n))
		}
		for s := uint32(0); s < 1<<n; s++ {
			if got := frame.To16(s, n); uint32(got)>>(16-n) != s {
				t.Fatalf("To16(%d, %d) = %d", s, n, got)
			}
		}
		if frame.To16(1<<n-1, n) != 0xFFFF || frame.To16(0, n) != 0 || frame.To16(1<<20, n) != 0xFFFF {
			t.Fatalf("To16 ends for %d bits", n)
		}
	}
	if frame.Expand8(200, 16) != 200*257 || frame.To16(200, 8) != 200*257 {
		t.Fatal("16-bit scaling is not *257")
	}
}

// TestPackKnownVectors pins the PFNC "p" bit order with hand-computed bytes.
func TestPackKnownVectors(t *testing.T) {
	cases := []struct {
		f    frame.Format
		px   []uint16
		want []byte
	}{
		// 1 | 2<<10 | 3<<20 | 4<<30 = 0x1_0030_0801.
		{frame.Mono10p, []uint16{1, 2, 3, 4}, []byte{0x01, 0x08, 0x30, 0x00, 0x01}},
		{frame.Mono10p, []uint16{0x3FF, 0, 0, 0x3FF}, []byte{0xFF, 0x03, 0x00, 0xC0, 0xFF}},
		// Five pixels: 50 bits, 7 bytes, the last 6 bits zero.
		{frame.Mono10p, []uint16{0, 0, 0, 0, 0x3FF}, []byte{0, 0, 0, 0, 0, 0xFF, 0x03}},
		// Mono12p: byte0 = p0[7:0], byte1 = p1[3:0]<<4 | p0[11:8], byte2 = p1[11:4].
		{frame.Mono12p, []uint16{0x123, 0x456}, []byte{0x23, 0x61, 0x45}},
		{frame.Mono12p, []uint16{0xABC}, []byte{0xBC, 0x0A}},
		// GigE Vision Mono12Packed: byte0 = p0[11:4], byte1 = p1[3:0]<<4 |
		// p0[3:0], byte2 = p1[11:4].
		{frame.Mono12Packed, []uint16{0x123, 0x456}, []byte{0x12, 0x63, 0x45}},
		{frame.Mono12Packed, []uint16{0xABC}, []byte{0xAB, 0x0C}},
		// Mono10Packed: byte0 = p0[9:2], byte1 = p1[1:0]<<4 | p0[1:0],
		// byte2 = p1[9:2].
		{frame.Mono10Packed, []uint16{0x2A7, 0x1F2, 0x3FF}, []byte{0xA9, 0x23, 0x7C, 0xFF, 0x03}},
	}
	for _, c := range cases {
		src := make([]byte, 2*len(c.px))
		for i, v := range c.px {
			binary.LittleEndian.PutUint16(src[2*i:], v)
		}
		dst := bytes.Repeat([]byte{0xEE}, len(c.want)+3)
		if err := frame.Pack16(dst, src, c.f, len(c.px)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst[:len(c.want)], c.want) || !bytes.Equal(dst[len(c.want):], []byte{0xEE, 0xEE, 0xEE}) {
			t.Fatalf("%v %x: packed % x, want % x", c.f, c.px, dst, c.want)
		}
		back := make([]byte, len(src))
		if err := frame.Unpack16(back, c.want, c.f, len(c.px)); err != nil || !bytes.Equal(back, src) {
			t.Fatalf("%v: unpacked % x, want % x (%v)", c.f, back, src, err)
		}
	}
}

// TestPackRoundTrip: random samples of every width round-trip, the word-wise
// unpacker agrees with the bit-wise one at every alignment.
func TestPackRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, f := range []frame.Format{frame.Mono10p, frame.Mono12p, frame.Mono10Packed, frame.Mono12Packed} {
		info, _ := f.Info()
		n := info.SampleBits
		for w := 1; w < 70; w++ {
			src := make([]byte, 2*w)
			for x := 0; x < w; x++ {
				binary.LittleEndian.PutUint16(src[2*x:], uint16(rng.IntN(1<<n)))
			}
			packed := make([]byte, f.RowBytes(w))
			if err := frame.Pack16(packed, src, f, w); err != nil {
				t.Fatal(err)
			}
			if r := w * info.BitsPerPixel % 8; r != 0 && packed[len(packed)-1]>>r != 0 {
				t.Fatalf("%v w %d: unused bits set: %#x", f, w, packed[len(packed)-1])
			}
			back := make([]byte, 2*w)
			if err := frame.Unpack16(back, packed, f, w); err != nil || !bytes.Equal(back, src) {
				t.Fatalf("%v w %d: round trip % x -> % x (%v)", f, w, src, back, err)
			}
			// Each sample read naively from the bit stream or pair.
			for x := 0; x < w; x++ {
				var s uint16
				if info.Packing == frame.PackedGEV {
					b, l := packed[x/2*3:], n-8
					if x%2 == 0 {
						s = uint16(b[0])<<l | uint16(b[1])&(1<<l-1)
					} else {
						s = uint16(b[2])<<l | uint16(b[1]>>4)&(1<<l-1)
					}
				} else {
					for k := 0; k < n; k++ {
						bit := x*n + k
						s |= uint16(packed[bit/8]>>(bit%8)&1) << k
					}
				}
				if s != binary.LittleEndian.Uint16(src[2*x:]) {
					t.Fatalf("%v w %d x %d: bit stream holds %#x", f, w, x, s)
				}
			}
		}
	}
}

func TestPackErrors(t *testing.T) {
	if err := frame.Unpack16(make([]byte, 8), make([]byte, 5), frame.Mono16, 4); !errors.Is(err, frame.ErrFormat) {
		t.Fatalf("unpacked format: %v", err)
	}
	if err := frame.Unpack16(make([]byte, 8), make([]byte, 4), frame.Mono10p, 4); !errors.Is(err, frame.ErrGeometry) {
		t.Fatalf("short source: %v", err)
	}
	if err := frame.Unpack16(make([]byte, 7), make([]byte, 5), frame.Mono10p, 4); !errors.Is(err, frame.ErrGeometry) {
		t.Fatalf("short destination: %v", err)
	}
	if err := frame.Pack16(make([]byte, 2), make([]byte, 4), frame.Mono12p, 2); !errors.Is(err, frame.ErrGeometry) {
		t.Fatalf("short packed row: %v", err)
	}
	if err := frame.Pack16(make([]byte, 3), make([]byte, 4), frame.BayerRG16, 2); !errors.Is(err, frame.ErrFormat) {
		t.Fatalf("unpacked format: %v", err)
	}
}

func TestUnpackAllocs(t *testing.T) {
	src, dst := make([]byte, frame.Mono10p.RowBytes(1000)), make([]byte, 2000)
	if n := testing.AllocsPerRun(50, func() { _ = frame.Unpack16(dst, src, frame.Mono10p, 1000) }); n != 0 {
		t.Fatalf("Unpack16 allocates %v", n)
	}
}

func BenchmarkUnpack16(b *testing.B) {
	for _, f := range []frame.Format{frame.Mono10p, frame.Mono12p} {
		b.Run(f.String(), func(b *testing.B) {
			src, dst := make([]byte, f.RowBytes(4096)), make([]byte, 2*4096)
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				_ = frame.Unpack16(dst, src, f, 4096)
			}
		})
	}
}

// TestLayoutAppendixTable: the format table of docs/LAYOUT.md Appendix A,
// which C implementations of the pattern read, lists exactly the table's
// formats with their codes, bits per pixel and sample bits.
func TestLayoutAppendixTable(t *testing.T) {
	doc, err := os.ReadFile("../docs/LAYOUT.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "## Appendix A")
	end := strings.Index(text, "## Appendix B")
	if start < 0 || end < start {
		t.Fatal("LAYOUT.md has no Appendix A")
	}
	rows := map[string]string{}
	for _, line := range strings.Split(text[start:end], "\n") {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) == 7 && strings.HasPrefix(strings.TrimSpace(cells[2]), "`0x") {
			rows[strings.TrimSpace(cells[1])] = strings.Join(cells[2:5], "|")
		}
	}
	if len(rows) != len(frame.Formats()) {
		t.Fatalf("Appendix A lists %d formats, the table has %d", len(rows), len(frame.Formats()))
	}
	for _, f := range frame.Formats() {
		info, _ := f.Info()
		want := fmt.Sprintf(" `%#08X` | %d | %d ", uint32(f), info.BitsPerPixel, info.SampleBits)
		want = strings.Replace(want, "0X", "0x", 1)
		if rows[info.Name] != want {
			t.Errorf("Appendix A row %s: %q, want %q", info.Name, rows[info.Name], want)
		}
	}
}

// FuzzUnpack16: any bytes and width unpack without panicking or reading
// past the row, to samples of at most SampleBits bits, and packing them
// again and unpacking gives the same samples.
func FuzzUnpack16(f *testing.F) {
	f.Add([]byte{0x01, 0x08, 0x30, 0x00, 0x01}, uint8(0), uint16(4))
	f.Add([]byte{0x12, 0x63, 0x45, 0xAB}, uint8(3), uint16(3))
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, uint8(1), uint16(7))
	packed := []frame.Format{frame.Mono10p, frame.Mono12p, frame.Mono10Packed, frame.Mono12Packed}
	f.Fuzz(func(t *testing.T, src []byte, fi uint8, w uint16) {
		fm := packed[int(fi)%len(packed)]
		info, _ := fm.Info()
		width := int(w % 512)
		dst := make([]byte, 2*width)
		err := frame.Unpack16(dst, src, fm, width)
		if len(src) < fm.RowBytes(width) {
			if !errors.Is(err, frame.ErrGeometry) {
				t.Fatalf("%d bytes for %d %v pixels: %v", len(src), width, fm, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for x := 0; x < width; x++ {
			if binary.LittleEndian.Uint16(dst[2*x:])>>info.SampleBits != 0 {
				t.Fatalf("%v sample %d = %#x", fm, x, binary.LittleEndian.Uint16(dst[2*x:]))
			}
		}
		re := make([]byte, fm.RowBytes(width))
		if err := frame.Pack16(re, dst, fm, width); err != nil {
			t.Fatal(err)
		}
		again := make([]byte, 2*width)
		if err := frame.Unpack16(again, re, fm, width); err != nil || !bytes.Equal(again, dst) {
			t.Fatalf("%v: repacked samples differ (%v)", fm, err)
		}
	})
}
