package native

import (
	"bytes"
	"errors"
	"testing"
)

const sampleMaps = `55d0c0a00000-55d0c0a21000 r--p 00000000 08:01 131 /usr/bin/x
c000000000-c000400000 rw-p 00000000 00:00 0
7f0000000000-7f0000100000 rw-s 00000000 00:01 1042 /memfd:ring (deleted)
7f0000100000-7f0000200000 rw-s 00000000 00:01 1043 /dev/zero (deleted)
7f0000200000-7f0000300000 r--s 00000000 00:01 1044 /memfd:ro (deleted)
7f0000400000-7f0000500000 rw-s 00000000 00:01 1045 /memfd:gap (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
`

func TestSharedRange(t *testing.T) {
	cases := []struct {
		name       string
		start, end uint64
		want       bool
	}{
		{"inside a memfd", 0x7f0000001000, 0x7f0000002000, true},
		{"the whole memfd", 0x7f0000000000, 0x7f0000100000, true},
		{"shared anonymous", 0x7f0000100000, 0x7f0000100001, true},
		{"Go heap", 0xc000001000, 0xc000002000, false},
		{"stack", 0x7ffd00000000, 0x7ffd00000100, false},
		{"read-only shared", 0x7f0000200000, 0x7f0000201000, false},
		{"across two shared mappings", 0x7f00000ff000, 0x7f0000101000, false},
		{"into a read-only one", 0x7f00001ff000, 0x7f0000201000, false},
		{"into a hole", 0x7f00004ff000, 0x7f0000501000, false},
		{"in a hole", 0x7f0000300000, 0x7f0000300100, false},
		{"below everything", 0x1000, 0x2000, false},
		{"empty", 0x7f0000001000, 0x7f0000001000, false},
		{"reversed", 0x7f0000002000, 0x7f0000001000, false},
	}
	for _, c := range cases {
		if got := sharedRange([]byte(sampleMaps), c.start, c.end); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	for _, bad := range []string{"", "zzzz-1000 rw-s\n", "1000-0800 rw-s 0\n", "1000 rw-s\n", "1000-2000\n", "10000000000000000-20000000000000000 rw-s\n"} {
		if sharedRange([]byte(bad), 0x1000, 0x1800) {
			t.Errorf("malformed maps %q accepted", bad)
		}
	}
}

func TestCheckSharedRefusesGoMemory(t *testing.T) {
	var stack [64]byte
	for name, b := range map[string][]byte{"heap": make([]byte, 1<<20), "stack": stack[:], "data": sampleData[:]} {
		if err := checkShared(b); !errors.Is(err, ErrNotShared) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

var sampleData [4096]byte

// FuzzSharedRange: the parser never panics, and whatever it accepts lies
// inside one line's range.
func FuzzSharedRange(f *testing.F) {
	f.Add([]byte(sampleMaps), uint64(0x7f0000001000), uint64(0x7f0000002000))
	f.Add([]byte("0-ffffffffffffffff rw-s\n"), uint64(0), ^uint64(0))
	f.Fuzz(func(t *testing.T, maps []byte, start, end uint64) {
		if !sharedRange(maps, start, end) {
			return
		}
		rest := maps
		for len(rest) > 0 {
			var line []byte
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				line, rest = rest, nil
			}
			lo, hi, perms, ok := parseMapsLine(line)
			if ok && lo <= start && end <= hi && perms[3] == 's' {
				return
			}
		}
		t.Fatalf("accepted [%#x, %#x) that no shared line covers", start, end)
	})
}
