package native

import (
	"fmt"
	"os"
	"unsafe"
)

// checkShared returns nil if buf lies inside writable MAP_SHARED mappings
// of this process (see sharedRange), ErrNotShared otherwise. It reads
// /proc/self/maps once per call.
//
// The answer holds only as long as the caller keeps the memory mapped: the
// contract of Announce.
func checkShared(buf []byte) error {
	if len(buf) == 0 {
		return ErrNotShared
	}
	start := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return fmt.Errorf("check buffer mapping: %w", err)
	}
	if !sharedRange(maps, start, start+uint64(len(buf))) {
		return ErrNotShared
	}
	return nil
}
