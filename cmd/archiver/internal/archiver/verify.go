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
)

// VerifyResult is what the verify subcommand reports.
type VerifyResult struct {
	Dir        string             `json:"dir"`
	OK         bool               `json:"ok"`
	Segments   int                `json:"segments"`
	SegmentErr []string           `json:"segment_errors,omitempty"`
	IndexErr   []string           `json:"index_problems,omitempty"` // derived data: not damage
	Bytes      int64              `json:"bytes"`
	Records    uint64             `json:"records"`
	FirstSeq   uint64             `json:"first_seq"`
	LastSeq    uint64             `json:"last_seq"`
	Frames     uint64             `json:"frames"`
	RawBytes   uint64             `json:"raw_bytes"`
	GapRecords uint64             `json:"gap_records"`
	FramesLost uint64             `json:"frames_lost"`
	LostBy     map[string]uint64  `json:"lost_by_cause,omitempty"`
	Corrupt    []string           `json:"corrupt,omitempty"`
	Missing    []archive.SeqRange `json:"missing,omitempty"`
	TornTail   string             `json:"torn_tail,omitempty"`
	// Pattern checking (-pattern): frames whose stamp or checksum is wrong,
	// or whose stamp names another frame id than the record.
	PatternChecked uint64   `json:"pattern_checked,omitempty"`
	PatternBad     []string `json:"pattern_bad,omitempty"`
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
		FirstSeq: rep.FirstSeq, LastSeq: rep.LastSeq, Frames: rep.Frames, RawBytes: rep.RawBytes,
		GapRecords: rep.GapRecords, FramesLost: rep.FramesLost, Missing: rep.Missing}
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
		fmt.Fprintf(w, "records      %d, seq %d..%d\n", res.Records, res.FirstSeq, res.LastSeq)
	}
	fmt.Fprintf(w, "frames       %d stored, %s raw\n", res.Frames, humanBytes(res.RawBytes))
	fmt.Fprintf(w, "losses       %d frames in %d gap records\n", res.FramesLost, res.GapRecords)
	for _, k := range lostKeys(res.LostBy) {
		fmt.Fprintf(w, "  %-32s %d\n", k, res.LostBy[k])
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
		fmt.Fprintf(w, "missing      seq %d..%d\n", m.From, m.To)
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
	fs := newFlagSet("verify", stderr)
	dir := fs.String("dir", "", "archive `directory` (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pattern := fs.Bool("pattern", false, "also check every frame's framering test-pattern stamp (archives of synthetic sources)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("%w: -dir is required", ErrUsage)
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
		return fmt.Errorf("verify %s: %w", *dir, ErrCorrupt)
	}
	return nil
}
