package archive

// Naming and listing of segment and index files, and small file helpers.
//
// Invariant: a segment's file name is its index printed with at least eight
// decimal digits ("%08d.frseg") and nothing else; a name that does not print
// back to itself (such as "000000001.frseg") is not a segment, so no two
// files can claim one index.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	segSuffix = ".frseg"
	idxSuffix = ".fridx"
)

func segName(index uint64) string { return fmt.Sprintf("%08d%s", index, segSuffix) }
func idxName(index uint64) string { return fmt.Sprintf("%08d%s", index, idxSuffix) }

// parseSegName returns the index of a segment file name.
func parseSegName(name string) (uint64, bool) {
	stem, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(stem) < 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(stem, 10, 64)
	if err != nil || segName(v) != name {
		return 0, false
	}
	return v, true
}

// listSegments returns the indices of the segments in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	var out []uint64
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if v, ok := parseSegName(e.Name()); ok {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out, nil
}

// dropSpare returns segs without a last segment that is an empty file: the
// next segment a live writer pre-created (FORMAT.md, "Writing"), which holds
// nothing until the writer rotates into it.
func dropSpare(dir string, segs []uint64) []uint64 {
	if n := len(segs); n > 0 {
		if st, err := os.Stat(filepath.Join(dir, segName(segs[n-1]))); err == nil && st.Size() == 0 {
			return segs[:n-1]
		}
	}
	return segs
}

// syncDir fsyncs a directory so that file creations and renames in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// writeIndexFile replaces the index of segment segIndex (of format version
// ver) at path with ents and flags, and fsyncs it if sync is set. The index
// is derived data, so the file is rewritten in place: a crash halfway
// leaves an index the next Open or reader rebuilds.
func writeIndexFile(path string, segIndex uint64, ver, flags uint16, ents []idxEntry, sync bool) error {
	es := idxEntrySizeFor(ver)
	b := make([]byte, idxHeaderSize+len(ents)*es)
	encodeIndexHeader(b, segIndex, ver, flags)
	for i, e := range ents {
		encodeIndexEntry(b[idxHeaderSize+i*es:], e, ver)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		_ = os.Truncate(path, 0) // an empty index is rebuilt; a torn one is too, this just frees space
		return fmt.Errorf("write index %s: %w", filepath.Base(path), err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("sync index %s: %w", filepath.Base(path), err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write index %s: %w", filepath.Base(path), err)
	}
	return nil
}

func nowNano() int64 { return time.Now().UnixNano() }
