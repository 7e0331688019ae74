package archive

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
)

// fuzzSegment returns a valid segment of a few records (frame, compressed
// frame, gap) to seed the fuzzers.
func fuzzSegment(tb testing.TB) []byte {
	seg := make([]byte, segHeaderSize)
	encodeSegHeader(seg, 0, 1, 10)
	gen, _ := frame.NewGenerator(frame.Packed(32, 8, frame.Mono8), true)
	raw := make([]byte, 256)
	gen.Fill(raw, 10)
	cp, _ := newCompressor(CodecS2)
	defer cp.close()
	add := func(h recHeader, payload []byte) {
		rec := make([]byte, align8(recHeaderSize+uint64(len(payload))))
		sealRecHeader(rec, &h, payload)
		copy(rec[recHeaderSize:], payload)
		seg = append(seg, rec...)
	}
	fh := recHeader{kind: KindFrame, seq: 10, frameID: 10, epoch: 0xabc, ringSeq: 11, width: 32, height: 8, stride: 32, format: uint32(frame.Mono8), stored: 256, raw: 256}
	add(fh, raw)
	stored, c := cp.compress(raw)
	fh.seq, fh.ringSeq, fh.flags, fh.stored = 11, 12, uint32(c), uint64(len(stored))
	add(fh, stored)
	var g [gapPayloadSize]byte
	encodeGap(g[:], Gap{FirstID: 12, LastID: 14, Count: 3, Cause: loss.Evicted, FirstSeq: 13, LastSeq: 15})
	add(recHeader{kind: KindGap, seq: 12, frameID: 12, epoch: 0xabc, ringSeq: 13, stored: gapPayloadSize, raw: gapPayloadSize}, g[:])
	return seg
}

// fuzzVersion maps a fuzzed byte to a format version this package reads.
func fuzzVersion(v uint8) uint16 {
	return MinFormatVersion + uint16(v)%(FormatVersion-MinFormatVersion+1)
}

// v1Segment is the first segment of the version 1 archive in testdata.
func v1Segment(tb testing.TB) []byte {
	b, err := os.ReadFile("testdata/v1/00000000.frseg")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func FuzzSegmentHeader(f *testing.F) {
	seg := fuzzSegment(f)
	f.Add(seg[:segHeaderSize])
	f.Add(seg)
	f.Add(v1Segment(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeSegHeader(b)
		if err != nil {
			if h != (segHeader{}) {
				t.Fatalf("error %v with a result %+v", err, h)
			}
			return
		}
		if uint64(h.hdrSize) > uint64(len(b)) || h.version < MinFormatVersion || h.version > FormatVersion {
			t.Fatalf("accepted %+v for %d bytes", h, len(b))
		}
		if h.hdrSize == segHeaderSize && h.version == FormatVersion {
			var re [segHeaderSize]byte
			encodeSegHeader(re[:], h.index, h.created, h.firstSeq)
			if string(re[:]) != string(b[:segHeaderSize]) {
				t.Fatal("decoded header does not re-encode to its bytes")
			}
		}
	})
}

func FuzzRecord(f *testing.F) {
	seg := fuzzSegment(f)
	f.Add(seg, uint64(segHeaderSize), uint8(1))
	f.Add(seg, uint64(segHeaderSize+recHeaderSize+256), uint8(1))
	f.Add(seg[:100], uint64(segHeaderSize), uint8(1))
	f.Add(v1Segment(f), uint64(segHeaderSize), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, off uint64, v uint8) {
		ver := fuzzVersion(v)
		h, err := parseRecord(data, off, ver)
		if err != nil {
			if h != (recHeader{}) {
				t.Fatalf("error %v with a result %+v", err, h)
			}
			return
		}
		n := uint64(len(data))
		if off > n || h.size() > n-off || off%recAlign != 0 || uint64(h.hdrLen) < minRecHeader(ver) {
			t.Fatalf("accepted a record of %d bytes at %d in %d", h.size(), off, n)
		}
		rec := data[off : off+h.size()]
		if recordCRC(rec, uint64(h.hdrLen), h.stored) != binary.LittleEndian.Uint32(rec[offRecCRC:]) {
			t.Fatal("accepted a record whose CRC does not match")
		}
		// Decoding a payload that passed must not panic either.
		var d decompressor
		defer d.close()
		p := uint64(h.hdrLen)
		if h.kind == KindFrame {
			d.decodePayload(h.codec(), rec[p:p+h.stored], h.raw)
		}
	})
}

func FuzzIndex(f *testing.F) {
	for _, ver := range []uint16{1, 2} {
		es := idxEntrySizeFor(ver)
		b := make([]byte, idxHeaderSize+3*es)
		encodeIndexHeader(b, 2, ver, 0)
		for i := range 3 {
			encodeIndexEntry(b[idxHeaderSize+i*es:], idxEntry{seq: uint64(10 + i), off: uint64(64 + 400*i), epoch: 7, ringSeq: uint64(i + 1)}, ver)
		}
		f.Add(b, uint64(2), uint8(ver-1))
		f.Add(b[:40], uint64(2), uint8(ver-1))
	}
	f.Fuzz(func(t *testing.T, b []byte, seg uint64, v uint8) {
		ver := fuzzVersion(v)
		ix, err := decodeIndex(b, seg, ver)
		ents := ix.ents
		if err != nil {
			if ents != nil || ix.sealed {
				t.Fatalf("error %v with %d entries", err, len(ents))
			}
			return
		}
		if uint64(len(ents)) > (uint64(len(b))-idxHeaderSize)/uint64(idxEntrySizeFor(ver)) {
			t.Fatal("more entries than bytes")
		}
		for i := 1; i < len(ents); i++ {
			if ents[i].seq <= ents[i-1].seq || ents[i].off <= ents[i-1].off {
				t.Fatal("accepted entries out of order")
			}
		}
	})
}

// FuzzScan checks that a scan of arbitrary bytes accounts for every byte
// exactly once and never panics.
func FuzzScan(f *testing.F) {
	seg := fuzzSegment(f)
	f.Add(seg, uint8(1))
	damaged := append([]byte(nil), seg...)
	damaged[segHeaderSize+100] ^= 0xff
	f.Add(damaged, uint8(1))
	f.Add(v1Segment(f), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, v uint8) {
		start := uint64(segHeaderSize)
		if uint64(len(data)) < start {
			start = 0
		}
		next := start
		scanRecords(data, start, fuzzVersion(v), func(off uint64, h *recHeader) {
			if off != next {
				t.Fatalf("record at %d, expected %d", off, next)
			}
			next = off + h.size()
		}, func(b badSpan) {
			if b.off != next || b.end <= b.off || b.err == nil {
				t.Fatalf("bad span %d..%d (%v), expected start %d", b.off, b.end, b.err, next)
			}
			next = b.end
		})
		if next < uint64(len(data)) && !(start == 0 && len(data) == 0) {
			t.Fatalf("scan stopped at %d of %d", next, len(data))
		}
	})
}
