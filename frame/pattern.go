package frame

// The test pattern, specified precisely enough to reimplement in C.
//
// Inputs: a Geometry (width W, height H, stride S, format F), a 64-bit frame
// id f, and whether defects are injected.
//
//  1. Background. For pixel (x, y) the base value is
//         v = 16 + ((x + 2*y + 3*f) mod 128)          (16..143)
//     computed with unsigned 64-bit arithmetic. It is written as
//         Mono8:  one byte v
//         Mono16: uint16 little-endian v*257
//         RGB8:   three bytes v, v+32, v+64
//     Padding bytes (row bytes W*bpp..S-1) are zero.
//  2. Defects (only when enabled; see Defects for placement). Each defect is
//     an axis-aligned square whose pixels are all set to the format's
//     maximum (bright: 0xFF, 0xFFFF, or 0xFF,0xFF,0xFF) or to zero (dark).
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

// Generator writes pattern frames of one geometry. It keeps one precomputed
// line so that filling a frame is a copy per row. A Generator is not safe for
// concurrent use; Fill allocates nothing.
type Generator struct {
	g       Geometry
	defects bool
	line    []byte // background values for x = 0..W+127, one period past the row
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
	bpp := g.Format.BytesPerPixel()
	gen := &Generator{g: g, defects: defects, line: make([]byte, (g.Width+128)*bpp), blobs: make([]Blob, 0, MaxDefects)}
	for i := 0; i < g.Width+128; i++ {
		putPixel(gen.line[i*bpp:], g.Format, 16+uint64(i%128))
	}
	return gen, nil
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
	bpp := g.Format.BytesPerPixel()
	row := g.RowBytes()
	for y := 0; y < g.Height; y++ {
		off := int((uint64(2*y) + 3*id) % 128)
		r := dst[y*g.Stride : y*g.Stride+g.Stride]
		copy(r, gen.line[off*bpp:off*bpp+row])
		clear(r[row:])
	}
	if gen.defects {
		gen.blobs = Defects(gen.blobs[:0], g, id)
		for _, b := range gen.blobs {
			var v uint64
			if b.Bright {
				v = 0xFFFF
			}
			for y := b.Y; y < b.Y+b.Size; y++ {
				r := dst[y*g.Stride:]
				for x := b.X; x < b.X+b.Size; x++ {
					putDefect(r[x*bpp:], g.Format, v != 0)
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

func putPixel(b []byte, f Format, v uint64) {
	switch f {
	case Mono8:
		b[0] = byte(v)
	case Mono16:
		binary.LittleEndian.PutUint16(b, uint16(v*257))
	case RGB8:
		b[0], b[1], b[2] = byte(v), byte(v+32), byte(v+64)
	}
}

func putDefect(b []byte, f Format, bright bool) {
	var v byte
	if bright {
		v = 0xFF
	}
	switch f {
	case Mono8:
		b[0] = v
	case Mono16:
		b[0], b[1] = v, v
	case RGB8:
		b[0], b[1], b[2] = v, v, v
	}
}
