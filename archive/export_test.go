package archive_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
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
	w.AppendGap(archive.Gap{FirstID: 6, LastID: 6, Count: 1, Cause: loss.Missed, Epoch: testEpoch, FirstSeq: 7, LastSeq: 7})
	w.Close()

	for _, format := range []archive.ExportFormat{archive.ExportPNG, archive.ExportTIFF} {
		t.Run(format.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			res, err := archive.Export(dir, archive.Selection{From: 2, To: 7}, out, format) // frame ids 1..6
			if err != nil {
				t.Fatal(err)
			}
			if res.Frames != 5 || res.Gaps != 1 || len(res.Files) != 5 || res.Corrupt != 0 {
				t.Fatalf("result %+v", res)
			}
			for i, name := range res.Files {
				id := uint64(i + 1)
				if filepath.Base(name) != fmt.Sprintf("e4b9b481229e8ae3-%012d.%s", id+1, format) {
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
	if _, err := archive.Export(dir, archive.Selection{From: 3, To: 2}, out, archive.ExportPNG); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("reversed range: %v", err)
	}
	if _, err := archive.Export(dir, archive.Selection{From: 1, To: 2}, out, archive.ExportFormat(9)); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("bad format: %v", err)
	}
	if _, err := archive.Export(dir, archive.Selection{From: 100, To: 200}, out, archive.ExportPNG); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("empty range: %v", err)
	}
	if _, err := archive.Export(dir, archive.Selection{Epoch: 7, From: 1, To: 2}, out, archive.ExportPNG); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("another epoch: %v", err)
	}
	res, err := archive.Export(dir, archive.Selection{From: 4, To: 5}, out, archive.ExportPNG)
	if !errors.Is(err, archive.ErrFormat) || res.Frames != 1 || res.Unsupported != 1 {
		t.Fatalf("unknown format: %+v %v", res, err)
	}
	// Damage record 1: Export skips it, exports the others, and says so.
	seg := segFiles(t, dir, "*.frseg")[0]
	raw, _ := os.ReadFile(seg)
	offs := recordOffsets(t, dir)
	raw[offs[1]+200] ^= 1
	os.WriteFile(seg, raw, 0o644)
	res, err = archive.Export(dir, archive.Selection{Epoch: testEpoch, From: 1, To: 4}, t.TempDir(), archive.ExportTIFF)
	if !errors.Is(err, archive.ErrCorrupt) || res.Frames != 3 || res.Corrupt != 1 {
		t.Fatalf("damaged record: %+v %v", res, err)
	}
	if _, err := archive.FrameImage(archive.Meta{Width: 2, Height: 2, Stride: 2, Format: frame.Mono8}, make([]byte, 3)); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("short raw: %v", err)
	}
}

// TestExportByIdentity: ring sequence numbers restart with each producer
// run, so a sequence number two runs share needs the epoch (a unique prefix
// of it will do); records of a version 1 archive, which carry no identity,
// are exported by record sequence number.
func TestExportByIdentity(t *testing.T) {
	dir := t.TempDir()
	w := openW(t, dir, archive.Options{})
	appendFrames(t, w, 3) // epoch testEpoch, ring seqs 1..3
	for id := uint64(3); id < 6; id++ {
		m, b := patternFrame(t, id)
		m.Epoch, m.RingSeq = 0x1234000000000000, id-2 // a second run: ring seqs 1..3 again
		if _, err := w.Append(m, b); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := r.Epochs()
	if err != nil || len(eps) != 2 || eps[0] != (archive.EpochInfo{Epoch: testEpoch, FirstSeq: 1, LastSeq: 3, Records: 3, FirstRecord: 0, LastRecord: 2}) ||
		eps[1] != (archive.EpochInfo{Epoch: 0x1234000000000000, FirstSeq: 1, LastSeq: 3, Records: 3, FirstRecord: 3, LastRecord: 5}) {
		t.Fatalf("epochs %+v %v", eps, err)
	}
	if e, err := r.ResolveEpoch("1234"); err != nil || e != 0x1234000000000000 {
		t.Fatalf("resolve: %x %v", e, err)
	}
	if _, err := r.ResolveEpoch("9"); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("resolve a prefix no epoch has: %v", err)
	}
	r.Close()

	if _, err := archive.Export(dir, archive.Selection{From: 2, To: 2}, t.TempDir(), archive.ExportPNG); !errors.Is(err, archive.ErrAmbiguous) {
		t.Fatalf("seq 2 of two epochs: %v", err)
	}
	res, err := archive.Export(dir, archive.Selection{Epoch: 0x1234000000000000, From: 2, To: 2}, t.TempDir(), archive.ExportPNG)
	if err != nil || len(res.Files) != 1 || filepath.Base(res.Files[0]) != "1234000000000000-000000000002.png" {
		t.Fatalf("export epoch 1234 seq 2: %+v %v", res, err)
	}
	res, err = archive.Export(dir, archive.Selection{Records: true, From: 4, To: 4}, t.TempDir(), archive.ExportPNG)
	if err != nil || len(res.Files) != 1 || filepath.Base(res.Files[0]) != "1234000000000000-000000000002.png" {
		t.Fatalf("export record 4: %+v %v", res, err)
	}

	v1 := copyDir(t, "testdata/v1")
	res, err = archive.Export(v1, archive.Selection{Records: true, From: 0, To: 1}, t.TempDir(), archive.ExportPNG)
	if err != nil || len(res.Files) != 2 || filepath.Base(res.Files[1]) != "record00000000000000000001-id1.png" {
		t.Fatalf("export a version 1 archive: %+v %v", res, err)
	}
}
