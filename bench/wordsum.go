package bench

import "encoding/binary"

// wordSum is the "reads every byte" kernel: the payload as little-endian
// 64-bit words added into eight independent accumulators, so the loop is
// bound by memory bandwidth, not by a dependency chain (frame.Sum64, the
// integrity check, is a serial xor-rotate-multiply chain and is measured
// as its own row, ReadSum). The result is only folded into the child's
// report so that the compiler cannot drop the loads.
func wordSum(b []byte) uint64 {
	var a0, a1, a2, a3, a4, a5, a6, a7 uint64
	for len(b) >= 64 {
		w := b[:64:64]
		a0 += binary.LittleEndian.Uint64(w[0:])
		a1 += binary.LittleEndian.Uint64(w[8:])
		a2 += binary.LittleEndian.Uint64(w[16:])
		a3 += binary.LittleEndian.Uint64(w[24:])
		a4 += binary.LittleEndian.Uint64(w[32:])
		a5 += binary.LittleEndian.Uint64(w[40:])
		a6 += binary.LittleEndian.Uint64(w[48:])
		a7 += binary.LittleEndian.Uint64(w[56:])
		b = b[64:]
	}
	for _, c := range b {
		a0 += uint64(c)
	}
	return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7
}
