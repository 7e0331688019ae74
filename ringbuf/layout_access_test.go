package ringbuf

// forgeDesc writes a hostile descriptor into slot k behind the protocol's
// back (tests only): seq, a length, and a generation, as a broken producer
// might. Atomic stores: readers race with it on purpose.
func forgeDesc(p *Producer, k uint32, seq, length, gen uint64) {
	base := p.geo.desc(k)
	p.data.w[(base+dLength)/8].Store(length)
	p.data.seq(k).Store(seq)
	p.data.gen(k).Store(gen)
}
