package native

import "bytes"

// sharedRange reports whether [start, end) lies inside one mapping listed
// in maps (the text of /proc/<pid>/maps, one mapping per line) that is
// readable, writable and shared ("rw?s").
//
// Shared is what keeps C from holding Go memory: the Go runtime maps its
// heap (and goroutine stacks) as private anonymous memory, and never as
// MAP_SHARED, so a shared mapping is outside the Go heap whoever made it.
// Private mappings are refused even when they are not the Go heap (C
// malloc, a private mmap), because /proc/self/maps cannot tell them apart
// from it; device-private memory comes from Allocate instead. A range that
// spans two mappings is refused even if both are shared: a buffer is one
// piece of one mapping (a ring slot of the data segment).
//
// The parser trusts nothing in maps: a malformed line stops the search.
func sharedRange(maps []byte, start, end uint64) bool {
	if end <= start {
		return false
	}
	for len(maps) > 0 {
		var line []byte
		line, maps, _ = bytes.Cut(maps, []byte{'\n'})
		lo, hi, perms, ok := parseMapsLine(line)
		if !ok {
			return false
		}
		if start < lo || start >= hi {
			continue
		}
		return end <= hi && perms[0] == 'r' && perms[1] == 'w' && perms[3] == 's'
	}
	return false
}

// parseMapsLine parses "lo-hi perms ..." from one line of /proc/pid/maps.
func parseMapsLine(line []byte) (lo, hi uint64, perms [4]byte, ok bool) {
	rng, rest, found := bytes.Cut(line, []byte{' '})
	if !found || len(rest) < 4 {
		return 0, 0, perms, false
	}
	los, his, found := bytes.Cut(rng, []byte{'-'})
	if !found {
		return 0, 0, perms, false
	}
	if lo, ok = parseHex(los); !ok {
		return 0, 0, perms, false
	}
	if hi, ok = parseHex(his); !ok || hi <= lo {
		return 0, 0, perms, false
	}
	copy(perms[:], rest[:4])
	return lo, hi, perms, true
}

func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}
