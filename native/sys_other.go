//go:build !linux

package native

// checkShared refuses everything: only Linux tells us where memory is
// mapped (/proc/self/maps), so elsewhere no memory can be announced and
// buffers come from Allocate.
func checkShared(buf []byte) error { return ErrNotShared }
