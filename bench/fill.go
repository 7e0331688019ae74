package bench

import (
	"encoding/binary"
	"math/bits"

	"github.com/framering/framering/clock"
)

// now is CLOCK_MONOTONIC in nanoseconds, comparable across processes.
func now() int64 { return clock.Nanos() }

// fillChunk is the source of a fill: small enough to stay in L1/L2, so
// that filling a frame costs what writing it costs, as it would for a
// frame grabber's DMA.
const fillChunk = 16 << 10

// filler writes every byte of a frame: a per-frame pattern copied in
// chunks, then the frame id in the first and the last 8 bytes (the stamp
// a reader checks for torn frames). It allocates nothing after
// newFiller.
type filler struct{ pat []byte }

func newFiller() *filler {
	pat := make([]byte, fillChunk+4096)
	for i := range pat {
		pat[i] = byte(i*7 + i>>9)
	}
	return &filler{pat: pat}
}

func (f *filler) fill(dst []byte, id uint64) {
	off := int(id%509) * 8
	src := f.pat[off : off+fillChunk]
	b := dst
	for len(b) > 0 {
		b = b[copy(b, src):]
	}
	stamp(dst, id)
}

// stamp writes id into the first and last 8 bytes of b.
func stamp(b []byte, id uint64) {
	if len(b) < 16 {
		return
	}
	binary.LittleEndian.PutUint64(b, id)
	binary.LittleEndian.PutUint64(b[len(b)-8:], id)
}

// stampOK checks what stamp wrote.
func stampOK(b []byte, id uint64) bool {
	if len(b) < 16 {
		return true
	}
	return binary.LittleEndian.Uint64(b) == id && binary.LittleEndian.Uint64(b[len(b)-8:]) == id
}

// dims returns a width and height (Mono8, packed) whose product is
// payload: a power-of-two width near the square root.
func dims(payload int) (w, h int) {
	if payload <= 0 {
		return 0, 0
	}
	k := min(bits.TrailingZeros(uint(payload)), bits.Len(uint(payload))/2)
	w = 1 << k
	return w, payload / w
}
