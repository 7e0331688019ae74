package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/tiff"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/cmd/pipeline/internal/pipeline"
	"github.com/framering/framering/frame"
)

// TestPipelineFormats runs every pixel format of frame's table through
// the real processes, from both sources (the pure-Go synthetic source and
// the simulated C SDK, zero-copy and safe-copy): producer -> ring ->
// analyzer + archiver -> export. For each run the analyzer must report
// exactly the injected defects (pipeline.Run checks it), every archived
// frame must carry a verifying stamp and be byte-identical to the pattern,
// and the exported PNG or TIFF must hold the pixels archive.FrameImage makes
// of the pattern frame. Runs are short and frames small: this is about
// formats, TestPipelineEndToEnd is about the pipeline.
func TestPipelineFormats(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three binaries per format")
	}
	bin := buildBinaries(t)
	t.Setenv("FRAMERING_RUNTIME_DIR", t.TempDir())
	for i, f := range frame.Formats() {
		for _, source := range []string{"synthetic", "sdk"} {
			name := fmt.Sprintf("%v/%s", f, source)
			t.Run(name, func(t *testing.T) {
				g := frame.Packed(96, 32, f)
				g.Stride += i % 3 // padded strides for a third of the runs
				c := pipeline.Config{
					BinDir: bin, OutDir: t.TempDir(), Ring: strings.ReplaceAll(name, "/", "-"),
					Geometry: g, Source: source, Copy: source == "sdk" && i%2 == 1,
					Duration: 250 * time.Millisecond, FPS: 100, Slots: 8,
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				s, err := pipeline.Run(ctx, c)
				var out strings.Builder
				s.Print(&out, c)
				late := lateAttach(s)
				if err != nil && !late {
					t.Fatalf("%v\n%s", err, out.String())
				}
				if s.Published == 0 || s.Archived == 0 || !s.VerifyOK || s.DefectsChecked == 0 ||
					s.DefectsWrong != 0 || s.Defects == 0 {
					t.Fatalf("summary:\n%s", out.String())
				}
				dir := filepath.Join(c.OutDir, "archive")
				frames := checkArchived(t, dir, g)
				ids := make([]uint64, len(frames))
				for k, fr := range frames {
					ids[k] = fr.id
				}
				if uint64(len(ids)) != s.Archived {
					t.Fatalf("%d frames in the archive, the archiver stored %d", len(ids), s.Archived)
				}
				for k := 1; k < len(ids); k++ {
					if ids[k] <= ids[k-1] {
						t.Fatalf("archived frame ids out of order: %v", ids)
					}
				}
				if late {
					t.Logf("archiver attached late: stored %d of %d published frames, from frame %d (%s)",
						s.Archived, s.Published, ids[0], s.Problems[0])
				}
				ef := "png"
				if i%2 == 1 {
					ef = "tiff"
				}
				checkExported(t, bin, dir, g, ef, frames)
			})
		}
	}
}

// lateAttach reports whether the run's only problem is that the archiver
// stored fewer frames than were published: with a v1 ring a lossless
// consumer that attaches after the producer's first frames cannot get
// them, and pipeline.Run starts the producer first. That is a property of
// the pipeline (TestPipelineEndToEnd's business), not of pixel formats,
// so this test tolerates it and checks what it stored.
func lateAttach(s pipeline.Summary) bool {
	return len(s.Problems) == 1 && strings.HasPrefix(s.Problems[0], "archiver stored ") &&
		s.Archived > 0 && s.Archived < s.Published
}

// pattern returns frame id of geometry g with defects, as every source
// writes it.
func pattern(t *testing.T, g frame.Geometry, id uint64) []byte {
	t.Helper()
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, g.Size())
	if err := gen.Fill(b, id); err != nil {
		t.Fatal(err)
	}
	return b
}

// archived is a frame read back from the archive.
type archived struct {
	id  uint64
	seq uint64 // the ring's sequence number (the archive's identity)
	raw []byte
}

// checkArchived reads every archived frame: right geometry and format, a
// verifying stamp, and the pattern's bytes. It returns them in order.
func checkArchived(t *testing.T, dir string, g frame.Geometry) []archived {
	t.Helper()
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var frames []archived
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind != archive.KindFrame {
			continue
		}
		if rec.Meta.Geometry() != g {
			t.Fatalf("seq %d: geometry %+v, want %+v", rec.Seq, rec.Meta.Geometry(), g)
		}
		st, err := frame.Verify(rec.Payload)
		if err != nil || st.Format != g.Format || st.FrameID != rec.Meta.FrameID {
			t.Fatalf("seq %d: stamp %+v: %v", rec.Seq, st, err)
		}
		if !bytes.Equal(rec.Payload, pattern(t, g, rec.Meta.FrameID)) {
			t.Fatalf("seq %d: frame %d is not the pattern", rec.Seq, rec.Meta.FrameID)
		}
		frames = append(frames, archived{rec.Meta.FrameID, rec.Meta.RingSeq, bytes.Clone(rec.Payload)})
	}
	if len(frames) == 0 {
		t.Fatal("no frame archived")
	}
	return frames
}

// checkExported exports the first frames with the real archiver command
// and requires each file to hold exactly the pixels archive.FrameImage
// makes of one of the archived frames (files are matched by content, so
// the test does not depend on how export names or selects them).
func checkExported(t *testing.T, bin, dir string, g frame.Geometry, format string, frames []archived) {
	t.Helper()
	out := t.TempDir()
	// The first four archived frames, by ring sequence number: the
	// archiver may have attached after the first frames.
	first := frames[0].seq
	cmd := exec.Command(filepath.Join(bin, "archiver"), "export", "-dir", dir, "-from", fmt.Sprint(first), "-to", fmt.Sprint(first+3),
		"-format", format, "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("archiver export: %v\n%s", err, b)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*."+format))
	if len(files) == 0 {
		t.Fatalf("nothing exported to %s", out)
	}
	want := make([]image.Image, len(frames))
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		var got image.Image
		if format == "png" {
			got, err = png.Decode(f)
		} else {
			got, err = tiff.Decode(f)
		}
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		found := false
		for k := range frames {
			if want[k] == nil {
				m := archive.Meta{FrameID: frames[k].id, Width: g.Width, Height: g.Height, Stride: g.Stride, Format: g.Format}
				if want[k], err = archive.FrameImage(m, frames[k].raw); err != nil {
					t.Fatal(err)
				}
			}
			if samePixels(got, want[k]) {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("%s (%v, %T): its pixels are those of no archived frame", name, g.Format, got)
		}
	}
}

// samePixels reports whether a and b have the same bounds and colors.
func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false
			}
		}
	}
	return true
}
