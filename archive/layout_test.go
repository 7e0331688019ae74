package archive

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
)

// TestLayoutSizes pins the sizes FORMAT.md documents (the compile-time checks
// in layout.go pin the offsets against them).
func TestLayoutSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"segment header", segHeaderSize, 64},
		{"record header", recHeaderSize, 96},
		{"record header, version 1", recHeaderSizeV1, 80},
		{"record epoch offset", offRecEpoch, 80},
		{"record ring seq offset", offRecRingSeq, 88},
		{"gap payload", gapPayloadSize, 48},
		{"gap payload, version 1", gapPayloadSizeV1, 32},
		{"index header", idxHeaderSize, 32},
		{"index entry", idxEntrySize, 40},
		{"index entry, version 1", idxEntrySizeV1, 16},
		{"record alignment", recAlign, 8},
		{"segment CRC offset", offSegCRC, 60},
		{"record CRC offset", offRecCRC, 76},
		{"index CRC offset", offIdxCRC, 28},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
	if crc32.Checksum([]byte("123456789"), castagnoli) != 0xE3069283 {
		t.Error("CRC32C check value differs from FORMAT.md")
	}
	if string([]byte{0x46, 0x52, 0x52, 0x43}) != "FRRC" || binary.LittleEndian.Uint32([]byte("FRRC")) != recMagic {
		t.Error("record magic is not \"FRRC\" little-endian")
	}
}

// TestSegmentHeaderBytes reads an encoded header at the offsets FORMAT.md
// gives, with an independent CRC.
func TestSegmentHeaderBytes(t *testing.T) {
	var b [segHeaderSize]byte
	encodeSegHeader(b[:], 0x0102030405060708, -5, 0x1112131415161718)
	le := binary.LittleEndian
	if string(b[0:8]) != "FRARCSEG" || le.Uint16(b[8:]) != 2 || le.Uint16(b[10:]) != 64 || le.Uint32(b[12:]) != 0 ||
		le.Uint64(b[16:]) != 0x0102030405060708 || int64(le.Uint64(b[24:])) != -5 || le.Uint64(b[32:]) != 0x1112131415161718 {
		t.Fatalf("header bytes % x", b)
	}
	for i := 40; i < 60; i++ {
		if b[i] != 0 {
			t.Fatalf("reserved byte %d = %#x", i, b[i])
		}
	}
	if le.Uint32(b[60:]) != crc32.Checksum(b[:60], crc32.MakeTable(crc32.Castagnoli)) {
		t.Fatal("header CRC is not CRC32C of bytes 0..59")
	}
	h, err := decodeSegHeader(b[:])
	if err != nil || h.index != 0x0102030405060708 || h.created != -5 || h.firstSeq != 0x1112131415161718 || h.hdrSize != 64 {
		t.Fatalf("decode: %+v %v", h, err)
	}
}

func TestRecordBytes(t *testing.T) {
	payload := []byte("0123456789abc") // 13 bytes: 3 bytes of padding after a 96-byte header
	h := recHeader{kind: KindFrame, seq: 7, frameID: 9, timestamp: -1, width: 13, height: 1, stride: 13,
		format: uint32(frame.Mono8), flags: uint32(CodecNone), stored: 13, raw: 13, epoch: 0xe4b9b481229e8ae3, ringSeq: 140}
	rec := make([]byte, align8(recHeaderSize+13))
	sealRecHeader(rec, &h, payload)
	copy(rec[recHeaderSize:], payload)
	le := binary.LittleEndian
	if le.Uint32(rec[0:]) != 0x43525246 || le.Uint16(rec[4:]) != 96 || le.Uint16(rec[6:]) != 1 ||
		le.Uint64(rec[8:]) != 7 || le.Uint64(rec[16:]) != 9 || int64(le.Uint64(rec[24:])) != -1 ||
		le.Uint32(rec[32:]) != 13 || le.Uint32(rec[36:]) != 1 || le.Uint32(rec[40:]) != 13 ||
		le.Uint32(rec[44:]) != 0x01080001 || le.Uint32(rec[48:]) != 0 || le.Uint32(rec[52:]) != 0 ||
		le.Uint64(rec[56:]) != 13 || le.Uint64(rec[64:]) != 13 || le.Uint32(rec[72:]) != 0 ||
		le.Uint64(rec[80:]) != 0xe4b9b481229e8ae3 || le.Uint64(rec[88:]) != 140 {
		t.Fatalf("record bytes % x", rec[:96])
	}
	tab := crc32.MakeTable(crc32.Castagnoli)
	want := crc32.Update(crc32.Update(crc32.Checksum(rec[:76], tab), tab, rec[80:96]), tab, payload)
	if le.Uint32(rec[76:]) != want {
		t.Fatal("record CRC is not CRC32C of header[0:76], header[80:96], then payload")
	}
	if len(rec) != 112 {
		t.Fatalf("record of %d bytes, want 112", len(rec))
	}
	seg := make([]byte, segHeaderSize, segHeaderSize+len(rec))
	encodeSegHeader(seg, 0, 0, 7)
	seg = append(seg, rec...)
	got, err := parseRecord(seg, segHeaderSize, FormatVersion)
	if err != nil || got != h {
		t.Fatalf("parse: %+v %v", got, err)
	}

	var g [gapPayloadSize]byte
	encodeGap(g[:], Gap{FirstID: 1, LastID: 2, Count: 2, Cause: loss.Evicted, FirstSeq: 30, LastSeq: 31})
	if le.Uint64(g[0:]) != 1 || le.Uint64(g[8:]) != 2 || le.Uint64(g[16:]) != 2 || le.Uint32(g[24:]) != 2 || le.Uint32(g[28:]) != 0 ||
		le.Uint64(g[32:]) != 30 || le.Uint64(g[40:]) != 31 {
		t.Fatalf("gap bytes % x", g)
	}

	var ib [idxHeaderSize + idxEntrySize]byte
	encodeIndexHeader(ib[:], 3, FormatVersion, idxSealed)
	encodeIndexEntry(ib[idxHeaderSize:], idxEntry{seq: 5, off: 64, epoch: 9, ringSeq: 6}, FormatVersion)
	if string(ib[:8]) != "FRARCIDX" || le.Uint16(ib[8:]) != 2 || le.Uint16(ib[10:]) != 32 || le.Uint16(ib[12:]) != 40 ||
		le.Uint16(ib[14:]) != 1 || le.Uint64(ib[16:]) != 3 || le.Uint32(ib[28:]) != crc32.Checksum(ib[:28], tab) ||
		le.Uint64(ib[32:]) != 5 || le.Uint64(ib[40:]) != 64 || le.Uint64(ib[48:]) != 9 || le.Uint64(ib[56:]) != 6 ||
		le.Uint32(ib[64:]) != crc32.Checksum(ib[32:64], tab) || le.Uint32(ib[68:]) != 0 {
		t.Fatalf("index bytes % x", ib)
	}
}

// TestVersion1Bytes reads the version 1 archive in testdata (written by the
// version 1 writer) at the offsets FORMAT.md gives for version 1.
func TestVersion1Bytes(t *testing.T) {
	seg := v1Segment(t)
	le := binary.LittleEndian
	if le.Uint16(seg[8:]) != 1 || le.Uint16(seg[offSegHdrSize:]) != 64 {
		t.Fatalf("not a version 1 segment: % x", seg[:16])
	}
	h, err := decodeSegHeader(seg)
	if err != nil || h.version != 1 {
		t.Fatalf("decode: %+v %v", h, err)
	}
	r, err := parseRecord(seg, segHeaderSize, 1)
	if err != nil || r.hdrLen != 80 || r.kind != KindFrame || r.epoch != 0 || r.ringSeq != 0 {
		t.Fatalf("first record: %+v %v", r, err)
	}
	// As version 2, the same bytes are refused: an 80-byte header is too short.
	if _, err := parseRecord(seg, segHeaderSize, 2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a version 1 record parsed as version 2: %v", err)
	}
}

// segWith builds a segment holding records made by mk (which may damage them).
func segWith(t *testing.T, mk func(rec []byte, h *recHeader)) []byte {
	t.Helper()
	payload := make([]byte, 16)
	h := recHeader{kind: KindFrame, seq: 0, frameID: 1, width: 16, height: 1, stride: 16, format: uint32(frame.Mono8), stored: 16, raw: 16}
	rec := make([]byte, align8(recHeaderSize+16))
	sealRecHeader(rec, &h, payload)
	if mk != nil {
		mk(rec, &h)
	}
	seg := make([]byte, segHeaderSize)
	encodeSegHeader(seg, 0, 0, 0)
	return append(seg, rec...)
}

// reseal recomputes a record's CRC after a field was changed on purpose.
func reseal(rec []byte) {
	hl := uint64(binary.LittleEndian.Uint16(rec[offRecHdrLen:]))
	stored := binary.LittleEndian.Uint64(rec[offRecStored:])
	binary.LittleEndian.PutUint32(rec[offRecCRC:], recordCRC(rec, hl, stored))
}

func TestDecoderSentinels(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		name string
		seg  []byte
		want error
	}{
		{"valid", segWith(t, nil), nil},
		{"bad magic", segWith(t, func(r []byte, _ *recHeader) { r[0] = 'X' }), ErrCorrupt},
		{"bad CRC", segWith(t, func(r []byte, _ *recHeader) { r[recHeaderSize+3] ^= 1 }), ErrCorrupt},
		{"header length odd", segWith(t, func(r []byte, _ *recHeader) { le.PutUint16(r[offRecHdrLen:], 97) }), ErrCorrupt},
		{"version 1 header length", segWith(t, func(r []byte, _ *recHeader) { le.PutUint16(r[offRecHdrLen:], 80) }), ErrCorrupt},
		{"stored past end", segWith(t, func(r []byte, _ *recHeader) { le.PutUint64(r[offRecStored:], 1000) }), ErrTruncated},
		{"stored over limit", segWith(t, func(r []byte, _ *recHeader) { le.PutUint64(r[offRecStored:], MaxPayload+1) }), ErrCorrupt},
		{"unknown codec", segWith(t, func(r []byte, _ *recHeader) { le.PutUint32(r[offRecFlags:], 7); reseal(r) }), ErrVersion},
		{"unknown flag", segWith(t, func(r []byte, _ *recHeader) { le.PutUint32(r[offRecFlags:], 1<<20); reseal(r) }), ErrVersion},
		{"unknown kind", segWith(t, func(r []byte, _ *recHeader) { le.PutUint16(r[offRecKind:], 9); reseal(r) }), ErrVersion},
		{"reserved set", segWith(t, func(r []byte, _ *recHeader) { r[offRecReserved2] = 1; reseal(r) }), ErrCorrupt},
		{"geometry lies", segWith(t, func(r []byte, _ *recHeader) { le.PutUint32(r[offRecHeight:], 2); reseal(r) }), ErrCorrupt},
		{"short header", segWith(t, nil)[:segHeaderSize+40], ErrTruncated},
		{"short payload", segWith(t, nil)[:segHeaderSize+recHeaderSize+8], ErrTruncated},
	}
	for _, c := range cases {
		_, err := parseRecord(c.seg, segHeaderSize, FormatVersion)
		if c.want == nil && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ErrTruncated without ErrCorrupt", c.name)
		}
	}

	// Padding: a 13-byte payload leaves 3 padding bytes that must be zero.
	payload := make([]byte, 13)
	h := recHeader{kind: KindFrame, width: 13, height: 1, stride: 13, format: uint32(frame.Mono8), stored: 13, raw: 13}
	rec := make([]byte, align8(recHeaderSize+13))
	sealRecHeader(rec, &h, payload)
	seg := append(make([]byte, segHeaderSize), rec...)
	encodeSegHeader(seg, 0, 0, 0)
	if _, err := parseRecord(seg, segHeaderSize, FormatVersion); err != nil {
		t.Fatal(err)
	}
	seg[len(seg)-1] = 1
	if _, err := parseRecord(seg, segHeaderSize, FormatVersion); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("padding: %v", err)
	}
	if _, err := parseRecord(seg, segHeaderSize+4, FormatVersion); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("misaligned: %v", err)
	}
	if _, err := parseRecord(seg, 1<<62, FormatVersion); !errors.Is(err, ErrTruncated) {
		t.Fatalf("offset past end: %v", err)
	}

	// Segment header.
	hb := make([]byte, segHeaderSize)
	encodeSegHeader(hb, 1, 2, 3)
	v3 := append([]byte(nil), hb...)
	le.PutUint16(v3[offSegVersion:], 3)
	le.PutUint32(v3[offSegCRC:], crc32.Checksum(v3[:offSegCRC], castagnoli))
	v0 := append([]byte(nil), hb...)
	le.PutUint16(v0[offSegVersion:], 0)
	le.PutUint32(v0[offSegCRC:], crc32.Checksum(v0[:offSegCRC], castagnoli))
	flags := append([]byte(nil), hb...)
	le.PutUint32(flags[offSegFlags:], 1)
	le.PutUint32(flags[offSegCRC:], crc32.Checksum(flags[:offSegCRC], castagnoli))
	big := append([]byte(nil), hb...)
	le.PutUint16(big[offSegHdrSize:], 72)
	bigOK := append(append([]byte(nil), big...), make([]byte, 8)...)
	le.PutUint32(bigOK[offSegCRC:], crc32.Update(crc32.Checksum(bigOK[:offSegCRC], castagnoli), castagnoli, bigOK[64:72]))
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", hb[:63], ErrTruncated},
		{"magic", append([]byte("X"), hb[1:]...), ErrCorrupt},
		{"version 3", v3, ErrVersion},
		{"version 0", v0, ErrVersion},
		{"flags", flags, ErrVersion},
		{"crc", append(append([]byte(nil), hb[:40]...), append([]byte{1}, hb[41:]...)...), ErrCorrupt},
		{"header size past end", big, ErrTruncated},
		{"larger header", bigOK, nil},
	} {
		h, err := decodeSegHeader(c.b)
		if (c.want == nil && err != nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("segment header %s: %v, want %v", c.name, err, c.want)
		}
		if err != nil && h != (segHeader{}) {
			t.Errorf("segment header %s: error with a result", c.name)
		}
	}

	// Index.
	ib := make([]byte, idxHeaderSize+2*idxEntrySize)
	encodeIndexHeader(ib, 4, FormatVersion, 0)
	encodeIndexEntry(ib[32:], idxEntry{seq: 1, off: 64}, FormatVersion)
	encodeIndexEntry(ib[72:], idxEntry{seq: 2, off: 160}, FormatVersion)
	if ix, err := decodeIndex(append(ib, 1, 2, 3), 4, FormatVersion); err != nil || len(ix.ents) != 2 || ix.sealed {
		t.Fatalf("index with a torn trailing entry: %+v %v", ix, err)
	}
	if _, err := decodeIndex(ib, 5, FormatVersion); !errors.Is(err, ErrCorrupt) {
		t.Errorf("index of another segment: %v", err)
	}
	if _, err := decodeIndex(ib, 4, 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("version 2 index of a version 1 segment: %v", err)
	}
	back := append([]byte(nil), ib...)
	encodeIndexEntry(back[72:], idxEntry{seq: 1, off: 160}, FormatVersion)
	if _, err := decodeIndex(back, 4, FormatVersion); !errors.Is(err, ErrCorrupt) {
		t.Errorf("index seq not increasing: %v", err)
	}
	if _, err := decodeIndex(ib[:20], 4, FormatVersion); !errors.Is(err, ErrTruncated) {
		t.Errorf("short index: %v", err)
	}
	flipped := append([]byte(nil), ib...)
	flipped[32] ^= 1 // the first entry's seq: its CRC no longer matches
	if _, err := decodeIndex(flipped, 4, FormatVersion); !errors.Is(err, ErrCorrupt) {
		t.Errorf("index entry with a flipped bit: %v", err)
	}
	torn := append([]byte(nil), ib...)
	torn[72] ^= 1 // the last entry: taken for a torn append, ignored
	if ix, err := decodeIndex(torn, 4, FormatVersion); err != nil || len(ix.ents) != 1 {
		t.Errorf("index with a damaged last entry: %+v %v", ix, err)
	}
	flagged := append([]byte(nil), ib...)
	encodeIndexHeader(flagged, 4, FormatVersion, 0x8000)
	if _, err := decodeIndex(flagged, 4, FormatVersion); !errors.Is(err, ErrVersion) {
		t.Errorf("unknown index flag: %v", err)
	}

	// Writer metadata.
	if err := checkMeta(&Meta{Width: 1, Height: 1, Stride: 1, Format: frame.Mono8}, MaxPayload+1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized payload: %v", err)
	}

	// Codecs.
	var d decompressor
	defer d.close()
	if _, err := d.decodePayload(CodecS2, []byte{0xff, 0xff, 0xff}, 10); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad s2: %v", err)
	}
	if _, err := d.decodePayload(CodecZstd, []byte("not zstd"), 10); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad zstd: %v", err)
	}
	if _, err := d.decodePayload(Codec(5), nil, 0); !errors.Is(err, ErrVersion) {
		t.Errorf("unknown codec: %v", err)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	gen, _ := frame.NewGenerator(frame.Packed(512, 256, frame.Mono16), true)
	raw := make([]byte, 512*256*2)
	gen.Fill(raw, 3)
	for _, c := range []Codec{CodecS2, CodecZstd} {
		cp, err := newCompressor(c)
		if err != nil {
			t.Fatal(err)
		}
		stored, got := cp.compress(raw)
		if got != c || len(stored) >= len(raw) {
			t.Fatalf("%v: codec %v, %d bytes", c, got, len(stored))
		}
		var d decompressor
		out, err := d.decodePayload(c, stored, uint64(len(raw)))
		if err != nil || string(out) != string(raw) {
			t.Fatalf("%v: round trip failed: %v", c, err)
		}
		if _, err := d.decodePayload(c, stored, uint64(len(raw))-1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v: wrong raw length accepted: %v", c, err)
		}
		d.close()
		cp.close()
	}
}
