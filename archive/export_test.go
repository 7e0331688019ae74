package archive_test

import (
	"encoding/binary"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/tiff"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
)

// pixelAt returns the sample values of pixel (x, y) of a raw frame.
func pixelAt(m archive.Meta, raw []byte, x, y int) []uint32 {
	p := raw[y*m.Stride:]
	switch m.Format {
	case frame.Mono8:
		return []uint32{uint32(p[x])}
	case frame.Mono16:
		return []uint32{uint32(binary.LittleEndian.Uint16(p[2*x:]))}
	case frame.RGB8:
		return []uint32{uint32(p[3*x]), uint32(p[3*x+1]), uint32(p[3*x+2])}
	}
	return nil
}

func samples(img image.Image, f frame.Format, x, y int) []uint32 {
	r, g, b, a := img.At(x, y).RGBA() // 16-bit, alpha-premultiplied
	switch f {
	case frame.Mono8:
		return []uint32{r >> 8}
	case frame.Mono16:
		return []uint32{r}
	case frame.RGB8:
		if a != 0xffff {
			return []uint32{0xdead}
		}
		return []uint32{r >> 8, g >> 8, b >> 8}
	}
	return nil
}

func TestExportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{Codec: archive.CodecS2})
	appendFrames(t, w, 6) // Mono8, Mono16, RGB8 twice, with stride padding
	w.AppendGap(archive.Gap{FirstID: 6, LastID: 6, Count: 1, Cause: loss.ProducerDrop})
	w.Close()

	for _, format := range []archive.ExportFormat{archive.ExportPNG, archive.ExportTIFF} {
		t.Run(format.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			res, err := archive.Export(dir, 1, 6, out, format)
			if err != nil {
				t.Fatal(err)
			}
			if res.Frames != 5 || res.Gaps != 1 || len(res.Files) != 5 || res.Corrupt != 0 {
				t.Fatalf("result %+v", res)
			}
			for i, name := range res.Files {
				id := uint64(i + 1)
				if !strings.HasSuffix(name, "."+format.String()) {
					t.Fatalf("file name %s", name)
				}
				f, err := os.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				var img image.Image
				if format == archive.ExportPNG {
					img, err = png.Decode(f)
				} else {
					img, err = tiff.Decode(f)
				}
				f.Close()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				m, raw := patternFrame(t, id)
				if b := img.Bounds(); b.Dx() != m.Width || b.Dy() != m.Height {
					t.Fatalf("%s: %v for %dx%d", name, b, m.Width, m.Height)
				}
				for y := 0; y < m.Height; y++ {
					for x := 0; x < m.Width; x++ {
						want, got := pixelAt(m, raw, x, y), samples(img, m.Format, x, y)
						if len(want) != len(got) {
							t.Fatalf("%s (%v): pixel (%d,%d) %v, want %v", name, m.Format, x, y, got, want)
						}
						for k := range want {
							if want[k] != got[k] {
								t.Fatalf("%s (%v, %T): pixel (%d,%d) %v, want %v", name, m.Format, img, x, y, got, want)
							}
						}
					}
				}
			}
			if _, err := os.Stat(res.Files[0] + ".tmp"); !os.IsNotExist(err) {
				t.Fatal("temporary file left behind")
			}
		})
	}
}

func TestExportErrors(t *testing.T) {
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{})
	appendFrames(t, w, 4)
	m, b := patternFrame(t, 4)
	m.Format = 0x0abc0001 // stored, but not exportable
	w.Append(m, b)
	w.Close()
	out := t.TempDir()
	if _, err := archive.Export(dir, 3, 2, out, archive.ExportPNG); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("reversed range: %v", err)
	}
	if _, err := archive.Export(dir, 0, 1, out, archive.ExportFormat(9)); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("bad format: %v", err)
	}
	if _, err := archive.Export(dir, 100, 200, out, archive.ExportPNG); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("empty range: %v", err)
	}
	res, err := archive.Export(dir, 3, 4, out, archive.ExportPNG)
	if !errors.Is(err, archive.ErrFormat) || res.Frames != 1 || res.Unsupported != 1 {
		t.Fatalf("unknown format: %+v %v", res, err)
	}
	// Damage record 1: Export skips it, exports the others, and says so.
	seg := segFiles(t, dir, "*.frseg")[0]
	raw, _ := os.ReadFile(seg)
	offs := recordOffsets(t, dir)
	raw[offs[1]+200] ^= 1
	os.WriteFile(seg, raw, 0o644)
	res, err = archive.Export(dir, 0, 3, t.TempDir(), archive.ExportTIFF)
	if !errors.Is(err, archive.ErrCorrupt) || res.Frames != 3 || res.Corrupt != 1 {
		t.Fatalf("damaged record: %+v %v", res, err)
	}
	if _, err := archive.FrameImage(archive.Meta{Width: 2, Height: 2, Stride: 2, Format: frame.Mono8}, make([]byte, 3)); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("short raw: %v", err)
	}
}
