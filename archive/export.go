package archive

// Export: frames out of the archive as image files a user can open.
//
// Invariant: an exported image holds exactly the frame's pixels, Width x
// Height, with the stride padding removed, converted as FrameImage
// (frameimage.go) says for each pixel format. Files are written under a
// temporary name and renamed, so a file with the final name is complete.

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/image/tiff"
)

// ExportFormat is an image file format Export writes.
type ExportFormat int

const (
	// ExportPNG writes PNG: 8-bit gray, 16-bit gray, or 8-bit RGBA, as
	// FrameImage converts each pixel format.
	ExportPNG ExportFormat = iota + 1
	// ExportTIFF writes uncompressed TIFF with the same pixel types.
	ExportTIFF
)

// String names the format (its file extension).
func (f ExportFormat) String() string {
	switch f {
	case ExportPNG:
		return "png"
	case ExportTIFF:
		return "tiff"
	}
	return fmt.Sprintf("ExportFormat(%d)", int(f))
}

// ExportResult counts what Export did.
type ExportResult struct {
	Files       []string // written, in seq order
	Frames      int      // frames exported
	Gaps        int      // gap records in the range (nothing to export)
	Corrupt     int      // damaged records or headers met while reading the range, skipped (a damaged record's seq is unknown, so one just past the range may count)
	Unsupported int      // frames of a pixel format that cannot be exported, skipped
}

// Export writes the frames sel selects to outDir (created if needed), one
// file per frame named by its identity, ExportName. It goes on past damaged
// records and unexportable formats and then returns the files written
// together with an error matching ErrCorrupt or ErrFormat; ErrNotFound if
// the selection holds no record, ErrAmbiguous if it names ring sequence
// numbers of several epochs without saying which.
func Export(dir string, sel Selection, outDir string, format ExportFormat) (ExportResult, error) {
	var res ExportResult
	if sel.From > sel.To || (format != ExportPNG && format != ExportTIFF) {
		return res, fmt.Errorf("export %s: %w: %v, format %v", dir, ErrInvalid, sel, format)
	}
	r, err := OpenReader(dir)
	if err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	defer r.Close()
	sp, err := r.locate(sel)
	if err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	from, to := sp.firstRecord, sp.lastRecord
	if err := r.Seek(from); err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	var errs []error
	seen := false
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return res, fmt.Errorf("export: %w", err)
			}
			res.Corrupt++
			errs = append(errs, err)
			continue
		}
		if rec.Seq > to {
			break
		}
		if !sel.Records && (rec.Meta.Epoch != sp.epoch || rec.Meta.RingSeq < sel.From || rec.Meta.RingSeq > sel.To) {
			continue // another epoch's record, or a ring drop's gap, inside the span
		}
		seen = true
		if rec.Kind == KindGap {
			res.Gaps++
			continue
		}
		img, err := FrameImage(rec.Meta, rec.Payload)
		if err != nil {
			res.Unsupported++
			errs = append(errs, fmt.Errorf("export seq %d: %w", rec.Seq, err))
			continue
		}
		name := filepath.Join(outDir, ExportName(rec, format))
		if err := writeImage(name, img, format); err != nil {
			return res, fmt.Errorf("export seq %d: %w", rec.Seq, err)
		}
		res.Files = append(res.Files, name)
		res.Frames++
	}
	if !seen && len(errs) == 0 {
		return res, fmt.Errorf("export %s: %w: no record for %v", dir, ErrNotFound, sel)
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("export %s: %w", dir, err)
	}
	return res, nil
}

// ExportName is the file name Export gives a frame record: its identity,
// "<epoch, 16 hex digits>-<ring seq, at least 12 digits>.<ext>" (e.g.
// "e4b9b481229e8ae3-000000000140.png"), or for a record without one (a
// version 1 archive) "record<record seq, 20 digits>-id<frame id>.<ext>".
func ExportName(rec Record, format ExportFormat) string {
	if rec.Meta.Epoch == 0 && rec.Meta.RingSeq == 0 {
		return fmt.Sprintf("record%020d-id%d.%s", rec.Seq, rec.Meta.FrameID, format)
	}
	return fmt.Sprintf("%016x-%012d.%s", rec.Meta.Epoch, rec.Meta.RingSeq, format)
}

func writeImage(name string, img image.Image, format ExportFormat) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	switch format {
	case ExportPNG:
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(f, img)
	case ExportTIFF:
		err = tiff.Encode(f, img, &tiff.Options{Compression: tiff.Uncompressed})
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write image %s: %w", filepath.Base(name), err)
	}
	return nil
}
