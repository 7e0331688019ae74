package framesrc_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
)

// pixCase is one pixel format through framesrc. PNG cases go framesrc !
// TAIL ! pngenc ! multifilesink and are compared with `archiver export`
// of the same frames, pixel by pixel; raw cases go framesrc ! filesink and
// are compared with the archived bytes.
type pixCase struct {
	name   string
	format frame.Format
	w, h   int
	tail   []string // elements between framesrc and pngenc (png) or filesink (raw)
	png    bool
	// stampBytes returns the frame's first bytes (its pattern stamp) as
	// the ring had them, from the decoded PNG.
	stampBytes func(img image.Image) []byte
	// same compares one pixel of framesrc's PNG with the export's.
	same func(got, want color.Color) bool
}

func gray8Row(img image.Image) []byte {
	g := img.(*image.Gray)
	return g.Pix[:min(len(g.Pix), frame.StampSize)]
}

func TestPixelsMatchArchiverExport(t *testing.T) {
	const n = 5
	cases := []pixCase{
		{
			// 50 pixels: the ring's packed stride is not GStreamer's (52):
			// a GstVideoMeta, or a copy if downstream cannot take one.
			name: "Mono8-50x30", format: frame.Mono8, w: 50, h: 30, png: true,
			stampBytes: gray8Row,
			same: func(got, want color.Color) bool {
				return got.(color.Gray).Y == want.(color.Gray).Y
			},
		},
		{
			// GRAY16_LE with 12-bit samples; pngenc takes GRAY16_BE. The
			// export scales by bit replication, framesrc does not.
			name: "Mono12-40x30", format: frame.Mono12, w: 40, h: 30, png: true,
			tail: []string{"!", "videoconvert", "!", "video/x-raw,format=GRAY16_BE"},
			stampBytes: func(img image.Image) []byte {
				g := img.(*image.Gray16)
				b := make([]byte, frame.StampSize)
				for i := 0; i < frame.StampSize/2; i++ {
					binary.LittleEndian.PutUint16(b[2*i:], binary.BigEndian.Uint16(g.Pix[2*i:]))
				}
				return b
			},
			same: func(got, want color.Color) bool {
				return frame.To16(uint32(got.(color.Gray16).Y), 12) == want.(color.Gray16).Y
			},
		},
		{
			// BGR: pngenc takes RGB (videoconvert swaps, as the export does);
			// 30 pixels = 90 bytes a row, GStreamer's stride is 92.
			name: "BGR8-30x20", format: frame.BGR8, w: 30, h: 20, png: true,
			tail: []string{"!", "videoconvert", "!", "video/x-raw,format=RGB"},
			stampBytes: func(img image.Image) []byte {
				b := make([]byte, 0, frame.StampSize+3)
				for x := 0; len(b) < frame.StampSize; x++ {
					r, g, bl, _ := img.At(x, 0).RGBA()
					b = append(b, byte(bl>>8), byte(g>>8), byte(r>>8))
				}
				return b[:frame.StampSize]
			},
			same: func(got, want color.Color) bool {
				r1, g1, b1, _ := got.RGBA()
				r2, g2, b2, _ := want.RGBA()
				return r1 == r2 && g1 == g2 && b1 == b2
			},
		},
		{
			// video/x-bayer has no PNG: the mosaic's bytes as GRAY8 (what the
			// export writes: the raw mosaic, one gray pixel a sample).
			name: "BayerGR8-48x32", format: frame.BayerGR8, w: 48, h: 32, png: true,
			tail:       []string{"!", "capssetter", "join=false", "replace=true", "caps=video/x-raw,format=GRAY8,width=48,height=32,framerate=0/1"},
			stampBytes: gray8Row,
			same: func(got, want color.Color) bool {
				return got.(color.Gray).Y == want.(color.Gray).Y
			},
		},
		{
			// 4:2:2 converts to RGB differently in GStreamer and the export:
			// compare the raw bytes with the archived ones.
			name: "YUV422_8-32x16", format: frame.YUV422_8, w: 32, h: 16,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ring := ringName(t)
			prod := producer(t, nil, ring, "-format", tc.format.String(), "-width", fmt.Sprint(tc.w),
				"-height", fmt.Sprint(tc.h), "-fps", "200")
			arch := filepath.Join(dir, "archive")
			ar := start(t, nil, nil, filepath.Join(tools.bin, "archiver"), "run", "-ring", ring, "-dir", arch,
				"-fsync", "never", "-stats-interval", "0", "-reattach=false")
			from := 0
			ar.waitContains(t, "archiver attached", &from, "attached")

			// Both lossless, framesrc from the next frame: every frame it
			// pushes is in the archive.
			args := []string{"framesrc", "ring=" + ring, "lossless=true", fmt.Sprintf("num-buffers=%d", n)}
			args = append(args, tc.tail...)
			if tc.png {
				args = append(args, "!", "pngenc", "!", "multifilesink", "location="+filepath.Join(dir, "gst%03d.png"))
			} else {
				args = append(args, "!", "filesink", "location="+filepath.Join(dir, "gst.raw"))
			}
			g := gst(t, nil, args...)
			if code := finishGst(t, g); code != 0 {
				t.Fatalf("gst-launch-1.0 exited %d:\n%s", code, g.text())
			}
			st := lastStats(t, g)
			if st["pushed"] != n || st["lost"] != 0 || st["dropped"] != 0 {
				t.Fatalf("framesrc stats %v", st)
			}
			stopProducer(t, prod)
			if code := ar.wait(t); code != 0 {
				t.Fatalf("archiver exited %d:\n%s", code, ar.text())
			}
			t.Logf("framesrc: %d zero-copy, %d copied (stride), %d copied (quota)", st["zero-copy"], st["copied-stride"], st["copied-quota"])

			if tc.png {
				comparePNGs(t, tc, dir, arch, n)
			} else {
				compareRaw(t, tc, filepath.Join(dir, "gst.raw"), arch, n)
			}
		})
	}
}

func decodePNG(t *testing.T, name string) image.Image {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return img
}

func comparePNGs(t *testing.T, tc pixCase, dir, arch string, n int) {
	t.Helper()
	out := filepath.Join(dir, "export")
	if b, err := execOut(filepath.Join(tools.bin, "archiver"), "export", "-dir", arch, "-format", "png", "-out", out); err != nil {
		t.Fatalf("archiver export: %v\n%s", err, b)
	}
	// The export names each file by the frame's identity (archive.ExportName);
	// the pattern stamp in the pixels carries its frame id.
	byID := map[uint64]string{}
	eachArchivedRecord(t, arch, func(rec archive.Record) {
		name := filepath.Join(out, archive.ExportName(rec, archive.ExportPNG))
		if _, err := os.Stat(name); err == nil {
			byID[rec.Meta.FrameID] = name
		}
	})
	got, _ := filepath.Glob(filepath.Join(dir, "gst*.png"))
	sort.Strings(got)
	if len(got) != n {
		t.Fatalf("framesrc wrote %d PNGs, want %d", len(got), n)
	}
	var prev uint64
	for i, name := range got {
		img := decodePNG(t, name)
		if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
			t.Fatalf("%s: %v, want %dx%d", name, b, tc.w, tc.h)
		}
		stamp := tc.stampBytes(img)
		if binary.LittleEndian.Uint32(stamp) != frame.StampMagic || frame.Format(binary.LittleEndian.Uint32(stamp[4:])) != tc.format {
			t.Fatalf("%s: no pattern stamp of %v in the first pixels: % x", name, tc.format, stamp)
		}
		id := binary.LittleEndian.Uint64(stamp[8:])
		if i > 0 && id != prev+1 {
			t.Fatalf("%s: frame id %d after %d (lossless)", name, id, prev)
		}
		prev = id
		exp, ok := byID[id]
		if !ok {
			t.Fatalf("%s: frame id %d is not in the archive's export (%d files)", name, id, len(byID))
		}
		want := decodePNG(t, exp)
		if want.Bounds() != img.Bounds() {
			t.Fatalf("frame %d: export %v, framesrc %v", id, want.Bounds(), img.Bounds())
		}
		for y := 0; y < tc.h; y++ {
			for x := 0; x < tc.w; x++ {
				if !tc.same(img.At(x, y), want.At(x, y)) {
					t.Fatalf("frame %d pixel (%d,%d): framesrc %v, export %v", id, x, y, img.At(x, y), want.At(x, y))
				}
			}
		}
	}
}

func compareRaw(t *testing.T, tc pixCase, rawName, arch string, n int) {
	t.Helper()
	raw, err := os.ReadFile(rawName)
	if err != nil {
		t.Fatal(err)
	}
	// framesrc hands out GStreamer's layout (rows 4-byte aligned) or the
	// ring's with a GstVideoMeta; filesink writes the buffer as it is.
	g := frame.Packed(tc.w, tc.h, tc.format)
	if len(raw) != n*g.Size() {
		t.Fatalf("framesrc wrote %d bytes, want %d frames of %d", len(raw), n, g.Size())
	}
	byID := map[uint64][]byte{}
	eachArchived(t, arch, func(m archive.Meta, payload []byte) {
		byID[m.FrameID] = append([]byte(nil), payload...)
	})
	for i := 0; i < n; i++ {
		f := raw[i*g.Size() : (i+1)*g.Size()]
		st, err := frame.Verify(f)
		if err != nil {
			t.Fatalf("frame %d from framesrc: %v", i, err)
		}
		want, ok := byID[st.FrameID]
		if !ok {
			t.Fatalf("frame id %d is not in the archive", st.FrameID)
		}
		if !bytes.Equal(f, want) {
			t.Fatalf("frame %d differs from the archived bytes", st.FrameID)
		}
	}
}

// eachArchived calls fn with every frame of the archive in dir, in order
// (payload is valid during the call only).
func eachArchived(t *testing.T, dir string, fn func(m archive.Meta, payload []byte)) {
	t.Helper()
	eachArchivedRecord(t, dir, func(rec archive.Record) { fn(rec.Meta, rec.Payload) })
}

// eachArchivedRecord calls fn with every frame record of the archive in
// dir, in order (its payload is valid during the call only).
func eachArchivedRecord(t *testing.T, dir string, fn func(rec archive.Record)) {
	t.Helper()
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind == archive.KindFrame {
			fn(rec)
		}
	}
}
