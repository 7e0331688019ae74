package archiver

// Where the archive stands when the archiver starts: the last frame id its
// records cover, and the producer epoch those records came from.
//
// The epoch is not part of the archive format, so the archiver keeps it in a
// sidecar file (StateFile) next to the segments, which the archive ignores.
// It is written, atomically (temporary file, fsync, rename, directory fsync),
// before the first record of a new epoch is appended, together with the
// archive's next sequence number at that moment: records at or after
// FirstSeq came from Epoch. A stale or missing state file only changes the
// cause a restart gap is attributed to, never its count.

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

func writeState(dir string, epoch, firstSeq uint64) error {
	b, err := json.Marshal(state{Version: 1, Epoch: fmt.Sprintf("%016x", epoch), FirstSeq: firstSeq})
	if err != nil {
		return fmt.Errorf("write archiver state: %w", err)
	}
	path := filepath.Join(dir, StateFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write archiver state: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
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
		return fmt.Errorf("write archiver state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write archiver state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write archiver state: sync directory: %w", err)
	}
	return nil
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
			return posAt(rec.Meta.FrameID, seq, epoch, firstSeq, haveState), nil
		case rec.Kind == archive.KindGap && !(rec.Gap.FirstID == 0 && rec.Gap.LastID == math.MaxUint64):
			return posAt(rec.Gap.LastID, seq, epoch, firstSeq, haveState), nil
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
