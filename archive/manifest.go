package archive

// The manifest (manifest.json): the archive's durable memory of what it
// promises to hold, so that records deleted on purpose are told apart from
// records that were lost.
//
// Invariants:
//   - The low-water mark (FirstSegment, FirstRecord) only moves up. Every
//     record with a record seq >= FirstRecord that was covered by an fsync
//     is in a segment >= FirstSegment, or it is damage. Segments below
//     FirstSegment are retired: deleted, or about to be (an interrupted
//     deletion), and never read.
//   - The manifest is replaced atomically (temporary file, fsync, rename,
//     directory fsync) and always before the files it retires are deleted:
//     a crash between the two leaves retired files, which the next Open
//     deletes, never a hole the manifest does not explain.
//   - Lost lists durable records a recovery found missing (the index listed
//     them, the data no longer holds them): the writer keeps the evidence
//     here before it rewrites the index, so Verify still names the range.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ManifestFile is the manifest's name in the archive directory.
const ManifestFile = "manifest.json"

// manifestVersion is the version of the manifest's content.
const manifestVersion = 1

// maxLostRanges bounds the Lost list: older entries are dropped first.
const maxLostRanges = 64

// Manifest is the content of manifest.json. The JSON form is part of the
// format (FORMAT.md, "Manifest").
type Manifest struct {
	Version int `json:"version"`
	// FirstSegment and FirstRecord are the low-water mark: the archive
	// holds segments >= FirstSegment and records >= FirstRecord.
	FirstSegment uint64 `json:"first_segment"`
	FirstRecord  uint64 `json:"first_record"`
	// Deleted counts what retention deleted, over the archive's life.
	Deleted Deleted `json:"deleted"`
	// Lost lists durable records found missing by recoveries.
	Lost []LostRange `json:"lost,omitempty"`
}

// Deleted counts what retention deleted.
type Deleted struct {
	Segments   uint64 `json:"segments"`
	Records    uint64 `json:"records"`
	Frames     uint64 `json:"frames"`
	GapRecords uint64 `json:"gap_records"`
	Bytes      uint64 `json:"bytes"`
	// LastUnixNs is when the last deletion was decided (Unix ns), 0 if none.
	LastUnixNs int64 `json:"last_unix_ns"`
}

// LostRange is a range of record seqs that were durable and are gone, with
// what the index said they held.
type LostRange struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	// Epoch and FirstSeq..LastSeq are the ring identity of the frames among
	// them, if the index named one epoch (0 otherwise).
	Epoch    Epoch  `json:"epoch,omitempty"`
	FirstSeq uint64 `json:"first_seq,omitempty"`
	LastSeq  uint64 `json:"last_seq,omitempty"`
	// FoundUnixNs is when the recovery found them missing.
	FoundUnixNs int64 `json:"found_unix_ns"`

	mixed bool // while collecting: the entries named several epochs
}

// Epoch is a producer epoch, 16 hex digits in text and JSON.
type Epoch uint64

// String returns the epoch as 16 hex digits.
func (e Epoch) String() string { return fmt.Sprintf("%016x", uint64(e)) }

// MarshalText implements encoding.TextMarshaler.
func (e Epoch) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (e *Epoch) UnmarshalText(b []byte) error {
	var v uint64
	if len(b) == 0 || len(b) > 16 {
		return fmt.Errorf("parse epoch %q: %w", b, ErrInvalid)
	}
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return fmt.Errorf("parse epoch %q: %w", b, ErrInvalid)
		}
		v = v<<4 | uint64(d)
	}
	*e = Epoch(v)
	return nil
}

// ReadManifest reads the manifest of the archive in dir. ok is false if
// there is none (an archive written before manifests, or an empty
// directory); a manifest that does not decode is ErrCorrupt.
func ReadManifest(dir string) (m Manifest, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return Manifest{}, false, nil
	}
	if err != nil {
		return Manifest{}, false, fmt.Errorf("read manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, false, fmt.Errorf("read manifest %s: %w: %v", dir, ErrCorrupt, err)
	}
	if m.Version < 1 {
		return Manifest{}, false, fmt.Errorf("read manifest %s: %w: version %d", dir, ErrCorrupt, m.Version)
	}
	if m.Version > manifestVersion {
		return Manifest{}, false, fmt.Errorf("read manifest %s: %w: version %d", dir, ErrVersion, m.Version)
	}
	for _, l := range m.Lost {
		if l.To < l.From || l.LastSeq < l.FirstSeq {
			return Manifest{}, false, fmt.Errorf("read manifest %s: %w: lost range %+v", dir, ErrCorrupt, l)
		}
	}
	return m, true, nil
}

// manifestReserve is the size of the file the next manifest is written
// into: preallocated, so that a full disk can still record a retention
// deletion (which is what frees space).
const manifestReserve = 16 << 10

// reserveName is the preallocated file the next manifest is written into.
const reserveName = ManifestFile + ".next"

// writeManifest replaces the manifest of dir with m, durably: written over
// the preallocated reserve (no new blocks: a full disk does not stop it),
// fsynced, renamed over the manifest, the directory fsynced. Then a new
// reserve is made, best effort (ensureReserve).
func writeManifest(dir string, m Manifest) error {
	m.Version = manifestVersion
	if n := len(m.Lost); n > maxLostRanges {
		m.Lost = m.Lost[n-maxLostRanges:]
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	b = append(b, '\n')
	path := filepath.Join(dir, ManifestFile)
	tmp := filepath.Join(dir, reserveName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return manifestErr(err)
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Truncate(int64(len(b)))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return manifestErr(err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	ensureReserve(dir)
	return nil
}

// ensureReserve makes the preallocated file the next manifest is written
// into, if it is missing. Best effort: on a full disk it is made later.
func ensureReserve(dir string) {
	p := filepath.Join(dir, reserveName)
	if st, err := os.Stat(p); err == nil && st.Size() >= manifestReserve {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return
	}
	_, err = f.Write(make([]byte, manifestReserve))
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		os.Remove(p)
	}
}

func manifestErr(err error) error {
	if isDiskFull(err) {
		return fmt.Errorf("write manifest: %w: %w", ErrDiskFull, err)
	}
	return fmt.Errorf("write manifest: %w", err)
}

// openManifest reads the manifest at Open, or makes one for an archive
// that has none, deletes the segments it retires (left by a deletion that a
// crash interrupted), and returns the segments the archive holds. A new
// manifest is written only once the archive has a segment (by Open or
// here), so an empty directory stays empty until the first one exists.
func (w *Writer) openManifest() ([]uint64, error) {
	segs, err := listSegments(w.dir)
	if err != nil {
		return nil, err
	}
	m, ok, err := ReadManifest(w.dir)
	if err != nil {
		return nil, fmt.Errorf("%w (if the archive is otherwise intact, removing %s makes the writer rebuild it from the segments)", err, ManifestFile)
	}
	if !ok {
		// An archive older than manifests: it holds what it holds.
		m = Manifest{Version: manifestVersion}
		if len(segs) > 0 {
			m.FirstSegment = segs[0]
			m.FirstRecord = firstSeqOf(filepath.Join(w.dir, segName(segs[0])))
			if err := writeManifest(w.dir, m); err != nil {
				return nil, err
			}
			w.log.Info("wrote a manifest for an archive that had none", "first_segment", m.FirstSegment, "first_record", m.FirstRecord)
		}
	}
	w.manifest = m
	ensureReserve(w.dir)
	kept := segs[:0]
	for _, s := range segs {
		if s >= m.FirstSegment {
			kept = append(kept, s)
			continue
		}
		if err := removeSegment(w.dir, s); err != nil {
			return nil, err
		}
		w.log.Warn("deleted a segment the manifest retires (a deletion interrupted by a crash)", "segment", s)
	}
	if len(kept) < len(segs) {
		if err := syncDir(w.dir); err != nil {
			return nil, err
		}
	}
	return kept, nil
}

// firstSeqOf returns the first record seq of the segment at path: its
// header's, or 0 if the header cannot be read.
func firstSeqOf(path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var b [segHeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0
	}
	h, err := decodeSegHeader(b[:])
	if err != nil {
		return 0
	}
	return h.firstSeq
}

// removeSegment deletes segment s and its index (either may be gone
// already).
func removeSegment(dir string, s uint64) error {
	for _, name := range []string{idxName(s), segName(s)} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	return nil
}
