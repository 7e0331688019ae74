package archive

// Payload compression. A record is stored compressed only if that makes it
// smaller; otherwise it is stored as is with CodecNone, so a reader never
// pays for a codec that did not help.
//
// Invariant: decodePayload returns exactly raw bytes or an error; a payload
// that does not decompress to its recorded raw length is ErrCorrupt, and
// nothing is allocated past MaxPayload whatever the stored bytes say.

import (
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// compressor keeps the buffers and encoder state of one Writer.
type compressor struct {
	codec Codec
	buf   []byte
	zenc  *zstd.Encoder
}

func newCompressor(c Codec) (*compressor, error) {
	cp := &compressor{codec: c}
	if c == CodecZstd {
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), // the record's CRC32C covers the stored bytes
		)
		if err != nil {
			return nil, fmt.Errorf("create zstd encoder: %w", err)
		}
		cp.zenc = enc
	}
	return cp, nil
}

// compress returns the bytes to store for payload and their codec. The
// returned slice is payload itself or the compressor's buffer, valid until
// the next call.
func (cp *compressor) compress(payload []byte) ([]byte, Codec) {
	var out []byte
	switch cp.codec {
	case CodecS2:
		need := s2.MaxEncodedLen(len(payload))
		if need < 0 {
			return payload, CodecNone
		}
		if cap(cp.buf) < need {
			cp.buf = make([]byte, need)
		}
		out = s2.Encode(cp.buf[:need], payload)
	case CodecZstd:
		out = cp.zenc.EncodeAll(payload, cp.buf[:0])
		if cap(out) > cap(cp.buf) {
			cp.buf = out[:0]
		}
	default:
		return payload, CodecNone
	}
	if len(out) == 0 || len(out) >= len(payload) {
		return payload, CodecNone
	}
	return out, cp.codec
}

func (cp *compressor) close() {
	if cp.zenc != nil {
		cp.zenc.Close()
	}
}

// decompressor keeps the decode buffer and zstd state of one Reader.
type decompressor struct {
	buf  []byte
	zdec *zstd.Decoder
}

// decodePayload returns the raw payload of a record whose CRC matched. For
// CodecNone it is stored itself; otherwise it is the decompressor's buffer,
// valid until the next call.
func (d *decompressor) decodePayload(c Codec, stored []byte, raw uint64) ([]byte, error) {
	if raw > MaxPayload {
		return nil, corruptf("raw length %d over limit", raw)
	}
	switch c {
	case CodecNone:
		if uint64(len(stored)) != raw {
			return nil, corruptf("stored %d bytes, raw %d", len(stored), raw)
		}
		return stored, nil
	case CodecS2:
		n, err := s2.DecodedLen(stored)
		if err != nil || uint64(n) != raw {
			return nil, corruptf("s2 block of %d raw bytes (%v), record says %d", n, err, raw)
		}
		d.grow(raw)
		out, err := s2.Decode(d.buf[:raw], stored)
		if err != nil || uint64(len(out)) != raw {
			return nil, corruptf("decode s2 block: %v", err)
		}
		return out, nil
	case CodecZstd:
		if d.zdec == nil {
			dec, err := zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxMemory(MaxPayload),
				zstd.WithDecoderMaxWindow(MaxPayload))
			if err != nil {
				return nil, fmt.Errorf("create zstd decoder: %w", err)
			}
			d.zdec = dec
		}
		d.grow(raw)
		out, err := d.zdec.DecodeAll(stored, d.buf[:0])
		if cap(out) > cap(d.buf) {
			d.buf = out[:0]
		}
		if err != nil || uint64(len(out)) != raw {
			return nil, corruptf("decode zstd frame: %d bytes (%v), record says %d", len(out), err, raw)
		}
		return out, nil
	}
	return nil, versionf("unknown codec %d", c)
}

func (d *decompressor) grow(n uint64) {
	if uint64(cap(d.buf)) < n {
		d.buf = make([]byte, n)
	}
}

func (d *decompressor) close() {
	if d.zdec != nil {
		d.zdec.Close()
		d.zdec = nil
	}
}
