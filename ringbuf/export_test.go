package ringbuf

// Test hooks, compiled only into this package's test binary (and so also
// into the children it re-executes as).

// HoldAllRaw sets r's holder bit on every slot directly, ignoring the hold
// quota and every check: what a hostile or broken client (written in C or
// Python against docs/LAYOUT.md, without this library's checks) can do.
func (r *Reader) HoldAllRaw() {
	for k := uint32(0); k < r.geo.slots; k++ {
		r.ctl.hold(k).Or(r.bit)
	}
}
