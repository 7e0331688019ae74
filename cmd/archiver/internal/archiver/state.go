package archiver

// Where the archive stands when the archiver starts: the last frame its
// records cover, by identity (producer epoch, ring sequence number) and
// frame id.
//
// Format version 2 stores the identity in every record. A version 1
// archive did not, so the version 1 archiver kept the epoch of its last
// records in a sidecar file (StateFile) next to the segments: it is still
// read for an archive whose last records are version 1, never written.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/framering/framering/archive"
)

// StateFile is the name of the archiver's sidecar file in the archive directory.
const StateFile = "archiver.state"

// state is the content of StateFile.
type state struct {
	Version  int    `json:"version"`
	Epoch    string `json:"epoch"` // %016x
	FirstSeq uint64 `json:"first_seq"`
}

func readState(dir string) (epoch, firstSeq uint64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("read archiver state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil || s.Version != 1 {
		return 0, 0, false, fmt.Errorf("read archiver state: %w: %q", ErrState, b)
	}
	if _, err := fmt.Sscanf(s.Epoch, "%x", &epoch); err != nil {
		return 0, 0, false, fmt.Errorf("read archiver state: %w: epoch %q", ErrState, s.Epoch)
	}
	return epoch, s.FirstSeq, true, nil
}

// lastPosition reads where the archive in dir stands: the frame id its last
// records cover. nextSeq is the writer's next sequence number (after
// recovery). The caller holds the archive's writer, so nothing appends
// meanwhile. It looks back over at most a few records for one whose ids are
// known (a gap with unknown ids, 0..MaxUint64, says nothing).
func lastPosition(dir string, nextSeq uint64) (position, error) {
	epoch, firstSeq, haveState, err := readState(dir)
	if err != nil {
		return position{}, err
	}
	if nextSeq == 0 {
		return position{}, nil
	}
	r, err := archive.OpenReader(dir)
	if err != nil {
		return position{}, fmt.Errorf("read last archived frame: %w", err)
	}
	defer r.Close()
	const lookBack = 64
	for seq := nextSeq - 1; ; seq-- {
		rec, err := r.ReadSeq(seq, nil)
		switch {
		case errors.Is(err, archive.ErrNotFound) || errors.Is(err, archive.ErrCorrupt):
			// A hole or damage: look further back.
		case err != nil:
			return position{}, fmt.Errorf("read last archived frame: %w", err)
		case rec.Kind == archive.KindFrame:
			p := posAt(rec.Meta.FrameID, seq, epoch, firstSeq, haveState)
			if rec.Meta.Epoch != 0 {
				p.epoch, p.ringSeq = rec.Meta.Epoch, rec.Meta.RingSeq
			}
			return p, nil
		case rec.Kind == archive.KindGap && !(rec.Gap.FirstID == 0 && rec.Gap.LastID == math.MaxUint64):
			p := posAt(rec.Gap.LastID, seq, epoch, firstSeq, haveState)
			if rec.Gap.Epoch != 0 {
				p.epoch, p.ringSeq = rec.Gap.Epoch, rec.Gap.LastSeq
			}
			return p, nil
		}
		if seq == 0 || nextSeq-seq >= lookBack {
			return position{}, nil
		}
	}
}

func posAt(id, seq, epoch, firstSeq uint64, haveState bool) position {
	p := position{known: true, lastID: id}
	if haveState && seq >= firstSeq {
		p.epoch = epoch
	}
	return p
}
