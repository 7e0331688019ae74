package producer

// The recording a replay source reads (producer -source archive): an
// archive's frames in order, its gap records turned into the replayed
// ring's replay gaps.

import (
	"errors"
	"fmt"
	"io"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/native"
)

// ReplaySelection picks the frames to replay: ring seqs From..To of the
// recording's producer run Epoch (0: every run; To 0: to the end).
type ReplaySelection struct {
	Epoch    uint64
	From, To uint64
}

func (s ReplaySelection) holds(m archive.Meta) bool {
	return (s.Epoch == 0 || m.Epoch == s.Epoch) && m.RingSeq >= s.From && (s.To == 0 || m.RingSeq <= s.To)
}

// ArchiveReplay reads an archive for a replay; it implements
// native.Replayer. Not for concurrent use (the source's acquisition
// goroutine calls Next).
type ArchiveReplay struct {
	r       *archive.Reader
	sel     ReplaySelection
	started bool
	pending uint64 // frames lost since the last frame delivered
	// Frames and Copies count the frames delivered and the bytes copied.
	frames, bytes uint64
}

// ErrNothingToReplay is returned by OpenArchiveReplay for a selection
// without a frame.
var ErrNothingToReplay = errors.New("no frame to replay")

// OpenArchiveReplay opens the archive in dir for replay and returns it
// with the geometry of its first selected frame (the ring's).
func OpenArchiveReplay(dir string, sel ReplaySelection) (*ArchiveReplay, frame.Geometry, error) {
	probe, err := archive.OpenReader(dir)
	if err != nil {
		return nil, frame.Geometry{}, fmt.Errorf("open replay: %w", err)
	}
	var g frame.Geometry
	for {
		rec, err := probe.Next()
		if errors.Is(err, io.EOF) {
			probe.Close()
			return nil, g, fmt.Errorf("open replay %s (%+v): %w", dir, sel, ErrNothingToReplay)
		}
		if err != nil {
			probe.Close()
			return nil, g, fmt.Errorf("open replay: %w", err)
		}
		if rec.Kind == archive.KindFrame && sel.holds(rec.Meta) {
			g = rec.Meta.Geometry()
			break
		}
	}
	probe.Close()
	r, err := archive.OpenReader(dir)
	if err != nil {
		return nil, g, fmt.Errorf("open replay: %w", err)
	}
	return &ArchiveReplay{r: r, sel: sel}, g, nil
}

// Next implements native.Replayer. It allocates nothing for an
// uncompressed record (one copy, from the archive's mapping into dst).
func (a *ArchiveReplay) Next(dst []byte) (native.ReplayFrame, error) {
	for {
		rec, err := a.r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return native.ReplayFrame{}, io.EOF
			}
			return native.ReplayFrame{}, fmt.Errorf("replay: %w", err)
		}
		switch rec.Kind {
		case archive.KindGap:
			// The recording's own losses between selected frames.
			if a.started && (a.sel.Epoch == 0 || rec.Gap.Epoch == 0 || rec.Gap.Epoch == a.sel.Epoch) {
				a.pending += rec.Gap.Count
			}
			continue
		case archive.KindFrame:
		default:
			continue
		}
		if !a.sel.holds(rec.Meta) {
			if a.started && a.sel.To != 0 && (a.sel.Epoch == 0 || rec.Meta.Epoch == a.sel.Epoch) && rec.Meta.RingSeq > a.sel.To {
				return native.ReplayFrame{}, io.EOF
			}
			continue
		}
		a.started = true
		if len(rec.Payload) > len(dst) {
			a.pending++ // larger than the ring's slots: not replayed, counted
			continue
		}
		copy(dst, rec.Payload)
		lost := a.pending
		a.pending = 0
		a.frames++
		a.bytes += uint64(len(rec.Payload))
		m := rec.Meta
		return native.ReplayFrame{Geometry: m.Geometry(), Timestamp: m.Timestamp, OriginEpoch: m.Epoch, OriginSeq: m.RingSeq,
			LostBefore: lost}, nil
	}
}

// Replayed returns the frames delivered and their bytes (each copied once).
func (a *ArchiveReplay) Replayed() (frames, bytes uint64) { return a.frames, a.bytes }

// Close closes the archive.
func (a *ArchiveReplay) Close() error { return a.r.Close() }
