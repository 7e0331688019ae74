package archiver

// archiver verify: archive.Verify (every record, read through read-only
// file mappings), printed for people or as JSON, plus an optional check of
// every frame's test-pattern stamp.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/cli"
)

// VerifyResult is what the verify subcommand reports. Its JSON keys are
// snake_case throughout.
type VerifyResult struct {
	Dir        string   `json:"dir"`
	OK         bool     `json:"ok"`
	Segments   int      `json:"segments"`
	SegmentErr []string `json:"segment_errors,omitempty"`
	IndexErr   []string `json:"index_problems,omitempty"` // derived data: not damage
	Bytes      int64    `json:"bytes"`
	// Records, FirstRecord and LastRecord are the archive's own records
	// (frames and gaps) by record seq; LowWater is the first record seq it
	// must hold (below it, records were deleted on purpose).
	Records     uint64 `json:"records"`
	FirstRecord uint64 `json:"first_record"`
	LastRecord  uint64 `json:"last_record"`
	LowWater    uint64 `json:"low_water"`
	// Epochs are the producer runs the frames came from, with their ring
	// seqs: a frame is named by (epoch, ring seq).
	Epochs     []VerifyEpoch     `json:"epochs,omitempty"`
	Frames     uint64            `json:"frames"`
	RawBytes   uint64            `json:"raw_bytes"`
	GapRecords uint64            `json:"gap_records"`
	FramesLost uint64            `json:"frames_lost"`
	LostBy     map[string]uint64 `json:"lost_by_cause,omitempty"`
	// Deleted is what retention deleted (the manifest's count), Retired
	// segments still on disk below the low-water mark (a deletion a crash
	// interrupted; the next writer finishes it). Neither is damage.
	Deleted    *archive.Deleted `json:"deleted,omitempty"`
	Retired    []uint64         `json:"retired_segments,omitempty"`
	NoManifest bool             `json:"no_manifest,omitempty"`
	Manifest   string           `json:"manifest_error,omitempty"`
	Corrupt    []string         `json:"corrupt,omitempty"`
	// Missing are record seqs the archive should hold and does not, with
	// the ring identity of their frames where an index named it.
	Missing        []archive.MissingRange `json:"missing,omitempty"`
	MissingRecords uint64                 `json:"missing_records,omitempty"`
	TornTail       string                 `json:"torn_tail,omitempty"`
	// Pattern checking (-pattern): frames whose stamp or checksum is wrong,
	// or whose stamp names another frame id than the record.
	PatternChecked uint64   `json:"pattern_checked,omitempty"`
	PatternBad     []string `json:"pattern_bad,omitempty"`
}

// VerifyEpoch is one producer run's records in the archive.
type VerifyEpoch struct {
	Epoch    archive.Epoch `json:"epoch"`
	FirstSeq uint64        `json:"first_seq"` // ring seqs
	LastSeq  uint64        `json:"last_seq"`
	Records  uint64        `json:"records"`
}

// Verify checks the archive in dir with archive.Verify and, if pattern is
// set, checks that every frame carries a valid framering test pattern whose
// stamp names the record's frame id (for archives of synthetic sources).
func Verify(ctx context.Context, dir string, pattern bool) (*VerifyResult, error) {
	rep, err := archive.Verify(dir)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	res := &VerifyResult{Dir: dir, OK: rep.OK(), Segments: len(rep.Segments), Records: rep.Records,
		FirstRecord: rep.FirstSeq, LastRecord: rep.LastSeq, LowWater: rep.LowWater, Frames: rep.Frames, RawBytes: rep.RawBytes,
		GapRecords: rep.GapRecords, FramesLost: rep.FramesLost, Missing: rep.Missing, MissingRecords: rep.MissingRecords(),
		Retired: rep.Retired, NoManifest: rep.Manifest == nil && rep.ManifestErr == nil}
	if rep.Manifest != nil && rep.Manifest.Deleted.Segments > 0 {
		d := rep.Manifest.Deleted
		res.Deleted = &d
	}
	if rep.ManifestErr != nil {
		res.Manifest = rep.ManifestErr.Error()
	}
	for _, e := range rep.Epochs {
		res.Epochs = append(res.Epochs, VerifyEpoch{Epoch: archive.Epoch(e.Epoch), FirstSeq: e.FirstSeq, LastSeq: e.LastSeq, Records: e.Records})
	}
	for _, s := range rep.Segments {
		res.Bytes += s.Size
		if s.Err != nil {
			res.SegmentErr = append(res.SegmentErr, s.Err.Error())
		}
		if s.IndexErr != nil {
			res.IndexErr = append(res.IndexErr, fmt.Sprintf("segment %d: %v", s.Index, s.IndexErr))
		}
	}
	for _, g := range rep.Gaps {
		if res.LostBy == nil {
			res.LostBy = map[string]uint64{}
		}
		res.LostBy[g.Gap.Cause.String()] += g.Gap.Count
	}
	for _, r := range rep.Corrupt {
		res.Corrupt = append(res.Corrupt, fmt.Sprintf("segment %d offset %d length %d: %v", r.Segment, r.Offset, r.Length, r.Err))
	}
	if t := rep.TornTail; t != nil {
		res.TornTail = fmt.Sprintf("segment %d offset %d length %d: %v", t.Segment, t.Offset, t.Length, t.Err)
	}
	if pattern {
		if err := checkPatterns(ctx, dir, res); err != nil {
			return res, err
		}
		if len(res.PatternBad) > 0 {
			res.OK = false
		}
	}
	return res, nil
}

// maxPatternReports bounds the bad frames listed.
const maxPatternReports = 20

func checkPatterns(ctx context.Context, dir string, res *VerifyResult) error {
	r, err := archive.OpenReader(dir)
	if err != nil {
		return fmt.Errorf("verify patterns: %w", err)
	}
	defer r.Close()
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("verify patterns: %w", err)
		}
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if errors.Is(err, archive.ErrClosed) {
				return fmt.Errorf("verify patterns: %w", err)
			}
			continue // damage: archive.Verify reports it
		}
		if rec.Kind != archive.KindFrame {
			continue
		}
		res.PatternChecked++
		st, err := frame.Verify(rec.Payload)
		if err == nil && (st.FrameID != rec.Meta.FrameID || st.Format != rec.Meta.Format || st.Width != rec.Meta.Width || st.Height != rec.Meta.Height) {
			err = fmt.Errorf("stamp says frame %d %dx%d %v", st.FrameID, st.Width, st.Height, st.Format)
		}
		if err != nil && len(res.PatternBad) < maxPatternReports {
			res.PatternBad = append(res.PatternBad, fmt.Sprintf("seq %d frame %d: %v", rec.Seq, rec.Meta.FrameID, err))
		}
	}
}

// WriteText prints the result for people.
func (res *VerifyResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "archive      %s\n", res.Dir)
	fmt.Fprintf(w, "segments     %d, %s\n", res.Segments, humanBytes(uint64(res.Bytes)))
	if res.Records == 0 {
		fmt.Fprintf(w, "records      0\n")
	} else {
		fmt.Fprintf(w, "records      %d, record seq %d..%d\n", res.Records, res.FirstRecord, res.LastRecord)
	}
	for _, e := range res.Epochs {
		fmt.Fprintf(w, "epoch        %s ring seq %d..%d (%d records)\n", e.Epoch, e.FirstSeq, e.LastSeq, e.Records)
	}
	fmt.Fprintf(w, "frames       %d stored, %s raw\n", res.Frames, humanBytes(res.RawBytes))
	fmt.Fprintf(w, "losses       %d frames in %d gap records\n", res.FramesLost, res.GapRecords)
	for _, k := range lostKeys(res.LostBy) {
		fmt.Fprintf(w, "  %-32s %d\n", k, res.LostBy[k])
	}
	if d := res.Deleted; d != nil {
		fmt.Fprintf(w, "retention    deleted %d segments, %d frames, %s; the archive starts at record seq %d\n", d.Segments, d.Frames, humanBytes(d.Bytes), res.LowWater)
	}
	for _, s := range res.Retired {
		fmt.Fprintf(w, "retired      segment %d (deletion interrupted; the next writer finishes it)\n", s)
	}
	if res.NoManifest {
		fmt.Fprintf(w, "manifest     none (an archive older than manifests: segments removed before the first one cannot be told)\n")
	}
	if res.Manifest != "" {
		fmt.Fprintf(w, "manifest     %s\n", res.Manifest)
	}
	if res.TornTail != "" {
		fmt.Fprintf(w, "torn tail    %s (left by a crash; the next writer cuts it)\n", res.TornTail)
	}
	for _, s := range res.SegmentErr {
		fmt.Fprintf(w, "bad segment  %s\n", s)
	}
	for _, s := range res.Corrupt {
		fmt.Fprintf(w, "corrupt      %s\n", s)
	}
	for _, m := range res.Missing {
		fmt.Fprintf(w, "missing      %s\n", describeMissing(m))
	}
	for _, s := range res.IndexErr {
		fmt.Fprintf(w, "index        %s (derived data, rebuilt by the writer)\n", s)
	}
	if res.PatternChecked > 0 {
		fmt.Fprintf(w, "pattern      %d frames checked, %d bad\n", res.PatternChecked, len(res.PatternBad))
		for _, s := range res.PatternBad {
			fmt.Fprintf(w, "  bad        %s\n", s)
		}
	}
	if res.OK {
		fmt.Fprintf(w, "result       OK\n")
	} else {
		fmt.Fprintf(w, "result       DAMAGED\n")
	}
}

// describeMissing says what a missing range held, as far as it is known.
func describeMissing(m archive.MissingRange) string {
	s := fmt.Sprintf("record seq %d..%d (%d records", m.From, m.To, m.To-m.From+1)
	if m.Listed > 0 {
		s += fmt.Sprintf(", %d listed by an index as written and fsynced", m.Listed)
	}
	s += ")"
	if m.Epoch != 0 {
		s += fmt.Sprintf(": frames of epoch %s, ring seq %d..%d", m.Epoch, m.FirstSeq, m.LastSeq)
	}
	return s
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func verifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", "-dir DIR [-json] [-pattern]")
	dir := fs.String("dir", "", "archive `directory` (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pattern := fs.Bool("pattern", false, "also check every frame's framering test-pattern stamp (archives of synthetic sources)")
	if err := fs.Parse(args, stdout); err != nil {
		return err
	}
	if *dir == "" {
		return cli.Usagef("-dir is required")
	}
	res, err := Verify(ctx, *dir, *pattern)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	} else {
		res.WriteText(stdout)
	}
	if !res.OK {
		return fmt.Errorf("verify %s: %w", *dir, ErrDamaged)
	}
	return nil
}
