package frame

// Sample scaling and the two bit packings (PFNC "p", GigE Vision
// "Packed"), shared by the pattern generator, the analyzer and the
// archive's image export so that each rule is written once. Nothing here
// allocates.

import (
	"encoding/binary"
	"fmt"
)

// Expand8 returns the 8-bit value v at n significant bits (8 <= n <= 16)
// by bit replication, v<<(n-8) | v>>(16-n): 0 stays 0, 255 becomes 2^n-1,
// and the mapping is strictly increasing, so comparing n-bit samples with
// Expand8(t, n) is comparing their top 8 bits with t whenever the sample is
// itself an expanded 8-bit value. For n = 16 it is v*257.
func Expand8(v uint8, n int) uint32 {
	return uint32(v)<<(n-8) | uint32(v)>>(16-n)
}

// To16 scales the n-bit sample s (8 <= n <= 16) to 16 bits by bit
// replication, s<<(16-n) | s>>(2n-16), so that 2^n-1 becomes 0xFFFF and
// To16(s, n)>>(16-n) == s. A sample above 2^n-1 (bits a camera must leave
// zero) is clamped to 2^n-1 first.
func To16(s uint32, n int) uint16 {
	s = min(s, 1<<n-1)
	return uint16(s<<(16-n) | s>>(2*n-16))
}

// packedInfo returns f's table row if f is a packed one-sample format,
// with the bytes width pixels need.
func packedInfo(f Format, width int) (*FormatInfo, int, error) {
	p := f.info()
	if p == nil || (p.Packing != PackedLSB && p.Packing != PackedGEV) || p.Components != 1 {
		return nil, 0, fmt.Errorf("%w: %v is not a packed one-sample format", ErrFormat, f)
	}
	if width < 0 {
		return nil, 0, fmt.Errorf("%w: width %d", ErrGeometry, width)
	}
	return p, f.RowBytes(width), nil
}

// Unpack16 decodes the first width samples of the packed (PackedLSB or
// PackedGEV) row src into dst as little-endian uint16 values, 2*width
// bytes. src must hold f.RowBytes(width) bytes and dst 2*width; otherwise,
// or for a format that is not packed, it returns an error wrapping
// ErrGeometry or ErrFormat and writes nothing.
func Unpack16(dst, src []byte, f Format, width int) error {
	p, rb, err := packedInfo(f, width)
	if err != nil {
		return fmt.Errorf("unpack row: %w", err)
	}
	if len(src) < rb || len(dst) < 2*width {
		return fmt.Errorf("unpack row: %w: %d source and %d destination bytes for %d %v pixels", ErrGeometry, len(src), len(dst), width, f)
	}
	src, dst = src[:rb], dst[:2*width]
	if p.Packing == PackedGEV {
		unpackGEV(dst, src, width, uint(p.SampleBits-8))
		return nil
	}
	x := 0
	switch p.BitsPerPixel {
	case 10: // 4 pixels in 5 bytes, read 8 at a time
		for ; x+4 <= width && len(src) >= x/4*5+8; x += 4 {
			w := binary.LittleEndian.Uint64(src[x/4*5:])
			d := dst[2*x : 2*x+8]
			binary.LittleEndian.PutUint64(d, w&0x3FF|(w>>10&0x3FF)<<16|(w>>20&0x3FF)<<32|(w>>30&0x3FF)<<48)
		}
	case 12: // 4 pixels in 6 bytes, read 8 at a time
		for ; x+4 <= width && len(src) >= x/2*3+8; x += 4 {
			w := binary.LittleEndian.Uint64(src[x/2*3:])
			d := dst[2*x : 2*x+8]
			binary.LittleEndian.PutUint64(d, w&0xFFF|(w>>12&0xFFF)<<16|(w>>24&0xFFF)<<32|(w>>36&0xFFF)<<48)
		}
	}
	b := uint(p.BitsPerPixel)
	mask := uint32(1)<<b - 1
	for ; x < width; x++ {
		binary.LittleEndian.PutUint16(dst[2*x:], uint16(getBits(src, uint(x)*b)&mask))
	}
	return nil
}

// unpackGEV decodes width GigE Vision packed samples with l low bits.
func unpackGEV(dst, src []byte, width int, l uint) {
	lo := uint16(1)<<l - 1
	for x := 0; x < width; x += 2 {
		b := src[x/2*3:]
		binary.LittleEndian.PutUint16(dst[2*x:], uint16(b[0])<<l|uint16(b[1])&lo)
		if x+1 < width {
			binary.LittleEndian.PutUint16(dst[2*x+2:], uint16(b[2])<<l|uint16(b[1]>>4)&lo)
		}
	}
}

// putGEV stores the n-bit sample s of pixel x into a GigE Vision packed
// row, leaving the bits of the pixel's pair partner as they are.
func putGEV(row []byte, x int, s uint32, n int) {
	l := uint(n - 8)
	lo := byte(1)<<l - 1
	b := row[x/2*3:]
	if x%2 == 0 {
		b[0] = byte(s >> l)
		b[1] = b[1]&^lo | byte(s)&lo
	} else {
		b[2] = byte(s >> l)
		b[1] = b[1]&^(lo<<4) | (byte(s)&lo)<<4
	}
}

// getBits returns the 24 bits of the stream src starting at bit pos, with
// bytes past the end of src read as zero.
func getBits(src []byte, pos uint) uint32 {
	i := int(pos / 8)
	var w uint32
	for k := 0; k < 3 && i+k < len(src); k++ {
		w |= uint32(src[i+k]) << (8 * k)
	}
	return w >> (pos % 8)
}

// Pack16 encodes width little-endian uint16 samples of src (2*width bytes)
// into the packed (PackedLSB or PackedGEV) row dst, writing exactly
// f.RowBytes(width) bytes: the low SampleBits bits of each sample, and zero
// in the unused bits of the last byte. It returns an error wrapping
// ErrGeometry or ErrFormat, and writes nothing, when the buffers are short
// or f is not packed.
func Pack16(dst, src []byte, f Format, width int) error {
	p, rb, err := packedInfo(f, width)
	if err != nil {
		return fmt.Errorf("pack row: %w", err)
	}
	if len(dst) < rb || len(src) < 2*width {
		return fmt.Errorf("pack row: %w: %d source and %d destination bytes for %d %v pixels", ErrGeometry, len(src), len(dst), width, f)
	}
	dst = dst[:rb]
	clear(dst)
	n := p.SampleBits
	mask := uint32(1)<<n - 1
	for x := 0; x < width; x++ {
		s := uint32(binary.LittleEndian.Uint16(src[2*x:])) & mask
		if p.Packing == PackedGEV {
			putGEV(dst, x, s, n)
		} else {
			putBits(dst, uint(x*n), s)
		}
	}
	return nil
}

// putBits ORs v (at most 17 bits) into the stream dst at bit pos; bits
// that fall past the end of dst are dropped.
func putBits(dst []byte, pos uint, v uint32) {
	i := int(pos / 8)
	v <<= pos % 8
	for k := 0; k < 3 && i+k < len(dst); k++ {
		dst[i+k] |= byte(v >> (8 * k))
	}
}

// setBits overwrites the b bits of the stream dst at bit pos with v.
func setBits(dst []byte, pos, b uint, v uint32) {
	i := int(pos / 8)
	sh := pos % 8
	m := (uint32(1)<<b - 1) << sh
	v = (v << sh) & m
	for k := 0; k < 3 && i+k < len(dst); k++ {
		dst[i+k] = dst[i+k]&^byte(m>>(8*k)) | byte(v>>(8*k))
	}
}
