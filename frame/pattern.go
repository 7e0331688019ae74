package frame

// The test pattern, specified precisely enough to reimplement in C.
//
// Inputs: a Geometry (width W, height H, stride S, format F), a 64-bit frame
// id f, and whether defects are injected.
//
//  1. Background. For pixel (x, y) the base value is
//         v = 16 + ((x + 2*y + 3*f) mod 128)          (16..143)
//     computed with unsigned 64-bit arithmetic, and written according to
//     the format's kind (see the format table, format.go), with
//     n = SampleBits and E(u) = Expand8(u, n):
//         Mono:   one sample E(v)
//         Bayer:  one sample E(v + 16*c), c = 0, 1, 2 for the red, green,
//                 blue filter color of (x, y) (FormatInfo.CFA)
//         RGB:    samples R = v, G = v+32, B = v+64, at the byte offsets
//                 FormatInfo.Order gives (R, G, B for RGB8; B, G, R for BGR8)
//         YUV422: for each pair of pixels (x even, x+1): Y0 = v(x, y),
//                 Y1 = v(x+1, y), U = v(x, y)+32, V = v(x, y)+64, at the
//                 byte offsets FormatInfo.Order gives
//     and samples are stored by the packing: 8-bit samples as a byte,
//     16-bit-container samples (Mono10/12/16, Bayer16) as little-endian
//     uint16, PackedLSB samples into the row's LSB-first bit stream,
//     PackedGEV samples into their pair's three bytes.
//     Padding (bytes RowBytes..S-1 of each row, and the unused bits of a
//     packed row's last byte) is zero.
//  2. Defects (only when enabled; see Defects for placement). Each defect is
//     an axis-aligned square whose pixels are set to the format's maximum
//     (bright) or to zero (dark): every sample of the pixel (2^n-1 or 0)
//     for Mono, Bayer and RGB; only the pixel's Y sample (0xFF or 0) for
//     YUV422, its U and V staying as the background wrote them.
//  3. Stamp. The first StampSize bytes of the frame are overwritten with
//         off  0  uint32  StampMagic (0x54505246, bytes "FRPT")
//         off  4  uint32  format code F
//         off  8  uint64  frame id f
//         off 16  uint32  width W
//         off 20  uint32  height H
//         off 24  uint64  Sum64(f, frame[StampSize:S*H])
//     all little-endian. A frame shorter than StampSize cannot carry a stamp
//     and is rejected by Generator.
//
// Sum64(seed, b), on unsigned 64-bit values with wrapping multiplication:
//         h = seed*0x9E3779B97F4A7C15 ^ len(b)
//         for each 8-byte little-endian word w of b (the last one zero-padded):
//             h = rotl64(h ^ w, 27) * 0x9E3779B97F4A7C15
//         h ^= h >> 33; h *= 0xFF51AFD7ED558CCD; h ^= h >> 33
//
// Invariant kept by this file: Generator.Fill writes every byte of
// dst[:Size()] and nothing else, so a frame's bytes depend only on
// (Geometry, frame id, defects) and never on what the buffer held before.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// StampSize is the number of bytes at the start of a frame that carry the stamp.
const StampSize = 32

// StampMagic opens every stamped frame ("FRPT" in little-endian byte order).
const StampMagic uint32 = 0x54505246

// ErrStamp is returned by Verify when a frame carries no valid stamp, or its
// checksum does not match its bytes: the frame is corrupt or torn.
var ErrStamp = errors.New("frame stamp invalid")

const (
	sumMul = 0x9E3779B97F4A7C15
	sumFin = 0xFF51AFD7ED558CCD
)

// Sum64 is the pattern checksum (see the file comment). It is also what the
// ring's tests use to prove a payload is intact: seed it with the sequence
// number and the checksum binds the bytes to that frame.
func Sum64(seed uint64, b []byte) uint64 {
	h := seed*sumMul ^ uint64(len(b))
	for len(b) >= 8 {
		h = bits.RotateLeft64(h^binary.LittleEndian.Uint64(b), 27) * sumMul
		b = b[8:]
	}
	if len(b) > 0 {
		var tail [8]byte
		copy(tail[:], b)
		h = bits.RotateLeft64(h^binary.LittleEndian.Uint64(tail[:]), 27) * sumMul
	}
	h ^= h >> 33
	h *= sumFin
	h ^= h >> 33
	return h
}

// Stamp is the decoded header of a pattern frame.
type Stamp struct {
	Format   Format
	FrameID  uint64
	Width    int
	Height   int
	Checksum uint64
}

// Verify decodes the stamp at the start of b and checks the checksum over
// the rest of b. b must be exactly the frame (Stride*Height bytes).
func Verify(b []byte) (Stamp, error) {
	if len(b) < StampSize {
		return Stamp{}, fmt.Errorf("verify frame: %w: %d bytes is shorter than a stamp", ErrStamp, len(b))
	}
	if m := binary.LittleEndian.Uint32(b[0:]); m != StampMagic {
		return Stamp{}, fmt.Errorf("verify frame: %w: magic %#08x", ErrStamp, m)
	}
	s := Stamp{
		Format:   Format(binary.LittleEndian.Uint32(b[4:])),
		FrameID:  binary.LittleEndian.Uint64(b[8:]),
		Width:    int(binary.LittleEndian.Uint32(b[16:])),
		Height:   int(binary.LittleEndian.Uint32(b[20:])),
		Checksum: binary.LittleEndian.Uint64(b[24:]),
	}
	if got := Sum64(s.FrameID, b[StampSize:]); got != s.Checksum {
		return s, fmt.Errorf("verify frame %d: %w: checksum %#016x, stamped %#016x", s.FrameID, ErrStamp, got, s.Checksum)
	}
	return s, nil
}

// Blob is an injected defect: a square of Size×Size pixels at (X, Y).
type Blob struct {
	X, Y, Size int
	Bright     bool
}

// MaxDefects is the most defects a frame carries.
const MaxDefects = 3

// Defects returns the defects injected into frame id of geometry g, appended
// to dst (pass a slice with capacity MaxDefects to avoid allocating).
//
// Placement: frame f carries n = f mod 3 defects. Defect i (0 <= i < n) uses
// h = splitmix64(4*f + i) and lies in the vertical band
// [i*W/3, (i+1)*W/3) (integer division), so defects never touch:
//
//	size   = 4 + (h >> 8) mod 13                      (4..16)
//	x      = i*W/3 + (h >> 16) mod (W/3 - size - 1)
//	y      = 1 + (h >> 32) mod (H - size - 1)         (never row 0: the stamp)
//	bright = (h >> 60) & 1 == 0
//
// splitmix64(z): z += 0x9E3779B97F4A7C15; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9;
// z = (z ^ z>>27) * 0x94D049BB133111EB; return z ^ z>>31.
// A frame narrower than 3*18 or shorter than 18 pixels carries no defects.
func Defects(dst []Blob, g Geometry, id uint64) []Blob {
	if g.Width < 3*18 || g.Height < 18 {
		return dst
	}
	n := int(id % 3)
	band := g.Width / 3
	for i := 0; i < n; i++ {
		h := splitmix64(4*id + uint64(i))
		size := 4 + int((h>>8)%13)
		dst = append(dst, Blob{
			X:      i*band + int((h>>16)%uint64(band-size-1)),
			Y:      1 + int((h>>32)%uint64(g.Height-size-1)),
			Size:   size,
			Bright: (h>>60)&1 == 0,
		})
	}
	return dst
}

func splitmix64(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// Generator writes pattern frames of one geometry. It keeps precomputed
// background lines so that filling a frame is a copy per row: line
// (r, ph) holds the encoded background of pixels j = 0..L-1 with base
// values 16 + (j+ph) mod 128, as they are written in a row of parity r
// (Bayer rows alternate filter colors; other formats have one row
// variant). Row y of frame f needs the values from offset
// o = (2y + 3f) mod 128; with ph = o mod P and s = o - ph (a multiple of P,
// the pixels of a byte-aligned group that also keep Bayer column colors
// and YUV pairs in step), the row is bytes [s*B/8, s*B/8 + RowBytes) of
// line (y mod 2, ph). A Generator is not safe for concurrent use; Fill
// allocates nothing.
type Generator struct {
	g       Geometry
	info    FormatInfo
	defects bool
	phases  int      // P
	lines   [][]byte // [r*phases+ph]
	tail    byte     // mask of the used bits of a row's last byte
	blobs   []Blob
}

// NewGenerator returns a generator for geometry g, injecting defects if asked.
func NewGenerator(g Geometry, defects bool) (*Generator, error) {
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("new pattern generator: %w", err)
	}
	if g.Size() < StampSize {
		return nil, fmt.Errorf("new pattern generator: %w: %d-byte frame cannot hold a %d-byte stamp", ErrGeometry, g.Size(), StampSize)
	}
	info, _ := g.Format.Info()
	gen := &Generator{g: g, info: info, defects: defects, phases: patternPhases(&info), tail: 0xFF,
		blobs: make([]Blob, 0, MaxDefects)}
	if r := g.Width * info.BitsPerPixel % 8; r != 0 {
		gen.tail = byte(1)<<r - 1
	}
	rows := 1
	if info.Kind == KindBayer {
		rows = 2
	}
	n := (g.Width + 128 + gen.phases - 1) / gen.phases * gen.phases // L pixels: whole groups
	for r := 0; r < rows; r++ {
		for ph := 0; ph < gen.phases; ph++ {
			line := make([]byte, n*info.BitsPerPixel/8)
			encodeLine(line, &info, n, r, ph)
			gen.lines = append(gen.lines, line)
		}
	}
	return gen, nil
}

// patternPhases returns P: the fewest pixels whose bits fill whole bytes,
// doubled where the column parity matters (Bayer colors, YUV pairs).
func patternPhases(p *FormatInfo) int {
	n := 8 / gcd(p.BitsPerPixel, 8)
	if (p.Kind == KindBayer || p.Kind == KindYUV422) && n%2 != 0 {
		n *= 2
	}
	return n
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// encodeLine writes the background of pixels j = 0..n-1 (n a multiple of
// the phases) with base values 16 + (j+ph) mod 128 into line, for a row of
// parity r.
func encodeLine(line []byte, p *FormatInfo, n, r, ph int) {
	v := func(j int) uint32 { return 16 + uint32((j+ph)%128) }
	for j := 0; j < n; j++ {
		switch p.Kind {
		case KindMono, KindBayer:
			u := v(j)
			if p.Kind == KindBayer {
				u += 16 * uint32(p.CFA[r*2+j%2])
			}
			putSample(line, p, j, Expand8(uint8(u), p.SampleBits))
		case KindRGB:
			px := line[3*j : 3*j+3]
			px[p.Order[0]], px[p.Order[1]], px[p.Order[2]] = byte(v(j)), byte(v(j)+32), byte(v(j)+64)
		case KindYUV422:
			if j%2 == 0 {
				pair := line[2*j : 2*j+4]
				pair[p.Order[0]], pair[p.Order[1]], pair[p.Order[2]], pair[p.Order[3]] = byte(v(j)), byte(v(j)+32), byte(v(j+1)), byte(v(j)+64)
			}
		}
	}
}

// putSample stores the one-sample pixel x (Mono, Bayer) of a row.
func putSample(row []byte, p *FormatInfo, x int, s uint32) {
	switch {
	case p.Packing == PackedLSB:
		setBits(row, uint(x*p.BitsPerPixel), uint(p.BitsPerPixel), s)
	case p.Packing == PackedGEV:
		putGEV(row, x, s, p.SampleBits)
	case p.BitsPerPixel == 8:
		row[x] = byte(s)
	default:
		binary.LittleEndian.PutUint16(row[2*x:], uint16(s))
	}
}

// Geometry returns the generator's geometry.
func (gen *Generator) Geometry() Geometry { return gen.g }

// Fill writes frame id into dst[:Size()]. dst must be at least Size() bytes.
func (gen *Generator) Fill(dst []byte, id uint64) error {
	g := gen.g
	size := g.Size()
	if len(dst) < size {
		return fmt.Errorf("fill frame %d: %w: buffer of %d bytes for a %d-byte frame", id, ErrGeometry, len(dst), size)
	}
	dst = dst[:size]
	p := &gen.info
	bits := p.BitsPerPixel
	row := g.RowBytes()
	rows := len(gen.lines) / gen.phases
	for y := 0; y < g.Height; y++ {
		off := int((uint64(2*y) + 3*id) % 128)
		ph := off % gen.phases
		start := (off - ph) * bits / 8
		r := dst[y*g.Stride : y*g.Stride+g.Stride]
		copy(r, gen.lines[(y%rows)*gen.phases+ph][start:start+row])
		r[row-1] &= gen.tail
		clear(r[row:])
	}
	if gen.defects {
		gen.blobs = Defects(gen.blobs[:0], g, id)
		for _, b := range gen.blobs {
			for y := b.Y; y < b.Y+b.Size; y++ {
				r := dst[y*g.Stride : y*g.Stride+row]
				for x := b.X; x < b.X+b.Size; x++ {
					putDefect(r, p, x, b.Bright)
				}
			}
		}
	}
	binary.LittleEndian.PutUint32(dst[0:], StampMagic)
	binary.LittleEndian.PutUint32(dst[4:], uint32(g.Format))
	binary.LittleEndian.PutUint64(dst[8:], id)
	binary.LittleEndian.PutUint32(dst[16:], uint32(g.Width))
	binary.LittleEndian.PutUint32(dst[20:], uint32(g.Height))
	binary.LittleEndian.PutUint64(dst[24:], Sum64(id, dst[StampSize:]))
	return nil
}

// putDefect sets pixel x of a row to the format's maximum (bright) or zero.
func putDefect(row []byte, p *FormatInfo, x int, bright bool) {
	var v byte
	if bright {
		v = 0xFF
	}
	switch p.Kind {
	case KindMono, KindBayer:
		var s uint32
		if bright {
			s = 1<<p.SampleBits - 1
		}
		putSample(row, p, x, s)
	case KindRGB:
		row[3*x], row[3*x+1], row[3*x+2] = v, v, v
	case KindYUV422:
		row[x/2*4+int(p.Order[2*(x%2)])] = v
	}
}
