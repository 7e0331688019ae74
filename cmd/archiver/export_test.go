package main_test

import (
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/image/tiff"

	"github.com/framering/framering/frame"
)

// runCmd runs the archiver binary with args and returns its output and exit code.
func runCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(archiverBin, args...).CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatal(err)
	}
	return string(out), 0
}

// archiveSome archives n frames of every format and returns the directory.
func archiveSome(t *testing.T, n uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "archive")
	sock := filepath.Join(t.TempDir(), "ring.sock")
	tp := newProducer(t, sock, 8, 4096, geomFor, 0)
	p := startArchiver(t, "-socket", sock, "-dir", dir, "-reattach=false", "-stats-interval", "0")
	tp.waitAttached(p.pid())
	for tp.offered < n {
		tp.offer(true)
	}
	tp.waitDrained(p.pid())
	tp.close()
	p.wait(0)
	return dir
}

// wantColor is pixel (x, y) of the raw frame of geometry g, as 16-bit RGBA.
func wantColor(g frame.Geometry, raw []byte, x, y int) color.RGBA64 {
	row := raw[y*g.Stride:]
	switch g.Format {
	case frame.Mono8:
		v := uint16(row[x]) * 0x101
		return color.RGBA64{v, v, v, 0xffff}
	case frame.Mono16:
		v := binary.LittleEndian.Uint16(row[2*x:])
		return color.RGBA64{v, v, v, 0xffff}
	}
	return color.RGBA64{uint16(row[3*x]) * 0x101, uint16(row[3*x+1]) * 0x101, uint16(row[3*x+2]) * 0x101, 0xffff}
}

// TestExport exports frames of every format as PNG and TIFF and decodes
// them back to the original pixels.
func TestExport(t *testing.T) {
	dir := archiveSome(t, 12)
	for _, format := range []string{"png", "tiff"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			// Ring seqs 3..11: the producer published ids 0.. as seqs 1..
			text, code := runCmd(t, "export", "-dir", dir, "-from", "3", "-to", "11", "-format", format, "-out", out)
			if code != 0 || !strings.Contains(text, "exported 9 frames") {
				t.Fatalf("export: exit %d: %s", code, text)
			}
			files, err := filepath.Glob(filepath.Join(out, "*."+format))
			if err != nil || len(files) != 9 {
				t.Fatalf("%d files (%v)", len(files), err)
			}
			formats := map[frame.Format]bool{}
			for _, name := range files {
				// <epoch, 16 hex digits>-<ring seq, 12 digits>.<ext>; ring seq = id + 1.
				base := strings.TrimSuffix(filepath.Base(name), "."+format)
				epoch, seqText, ok := strings.Cut(base, "-")
				seq, err := strconv.ParseUint(seqText, 10, 64)
				if !ok || len(epoch) != 16 || len(seqText) != 12 || err != nil || seq < 3 || seq > 11 {
					t.Fatalf("file name %s (%v)", name, err)
				}
				id := seq - 1
				f, err := os.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				var img image.Image
				if format == "png" {
					img, err = png.Decode(f)
				} else {
					img, err = tiff.Decode(f)
				}
				f.Close()
				if err != nil {
					t.Fatalf("decode %s: %v", name, err)
				}
				g := geomFor(id)
				formats[g.Format] = true
				raw := patternFrame(t, g, id)
				if b := img.Bounds(); b.Dx() != g.Width || b.Dy() != g.Height {
					t.Fatalf("%s: %v, want %dx%d", name, b, g.Width, g.Height)
				}
				for y := 0; y < g.Height; y++ {
					for x := 0; x < g.Width; x++ {
						if got, want := color.RGBA64Model.Convert(img.At(x, y)).(color.RGBA64), wantColor(g, raw, x, y); got != want {
							t.Fatalf("%s (%v): pixel (%d,%d) = %v, want %v", name, g.Format, x, y, got, want)
						}
					}
				}
			}
			if len(formats) != 3 {
				t.Fatalf("formats exported: %v", formats)
			}
		})
	}
}

// TestExportSeq exports one frame by its ring sequence number, with and
// without the epoch.
func TestExportSeq(t *testing.T) {
	dir := archiveSome(t, 8)
	out := t.TempDir()
	text, code := runCmd(t, "export", "-dir", dir, "-seq", "5", "-out", out)
	files, _ := filepath.Glob(filepath.Join(out, "*-000000000005.png"))
	if code != 0 || len(files) != 1 || !strings.Contains(text, "exported 1 frames") {
		t.Fatalf("export -seq 5: exit %d, files %v: %s", code, files, text)
	}
	epoch := filepath.Base(files[0])[:16]
	out2 := t.TempDir()
	if text, code := runCmd(t, "export", "-dir", dir, "-seq", "5", "-epoch", epoch[:5], "-out", out2); code != 0 {
		t.Fatalf("export -seq 5 -epoch %s: exit %d: %s", epoch[:5], code, text)
	}
	if text, code := runCmd(t, "export", "-dir", dir, "-seq", "5", "-epoch", "g", "-out", out2); code != 1 || !strings.Contains(text, "not in archive") {
		t.Fatalf("export with an epoch the archive does not hold: exit %d: %s", code, text)
	}
}

// TestVerifyCommand runs archiver verify on a good archive and on one with
// a flipped byte.
func TestVerifyCommand(t *testing.T) {
	dir := archiveSome(t, 30)
	text, code := runCmd(t, "verify", "-dir", dir, "-pattern")
	if code != 0 || !strings.Contains(text, "result       OK") || !strings.Contains(text, "30 frames checked, 0 bad") {
		t.Fatalf("verify: exit %d:\n%s", code, text)
	}
	t.Logf("verify output:\n%s", text)
	seg := lastSegment(t, dir)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[64+80+40] ^= 0x55 // in the payload of the first record
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	text, code = runCmd(t, "verify", "-dir", dir)
	if code != 3 || !strings.Contains(text, "corrupt") || !strings.Contains(text, "DAMAGED") {
		t.Fatalf("verify of a damaged archive: exit %d (want 3, a check that found a problem):\n%s", code, text)
	}
	if _, code := runCmd(t, "verify"); code != 2 {
		t.Fatalf("verify without -dir: exit %d, want 2", code)
	}
}

// TestBenchCommand runs a small bench: it must report both throughputs and
// their ratio, and leave nothing behind.
func TestBenchCommand(t *testing.T) {
	dir := t.TempDir()
	text, code := runCmd(t, "bench", "-dir", dir, "-frames", "16", "-width", "320", "-height", "240", "-rounds", "2")
	if code != 0 || !strings.Contains(text, "ratio archive/plain") {
		t.Fatalf("bench: exit %d:\n%s", code, text)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Fatalf("bench left %d files", len(left))
	}
	t.Logf("%s", text)
}

// TestBenchRetentionReplayPreTrigger runs the bench's optional passes
// small: retention must delete segments in its pass (the cap is a quarter
// of what it writes), the read passes read every frame back, the
// pre-trigger memory pass dirties nothing for the disk (what the file pass
// dirties depends on the filesystem: none on a tmpfs), and nothing is left
// behind.
func TestBenchRetentionReplayPreTrigger(t *testing.T) {
	dir := t.TempDir()
	// 64 frames of 75 KiB: 4.7 MiB per pass, 256 KiB segments, 1 MiB cap.
	out, code := runCmd(t, "bench", "-dir", dir, "-frames", "64", "-width", "320", "-height", "240", "-rounds", "1",
		"-segment-size", "256KiB", "-keep-size", "1MiB", "-read", "-pre-frames", "8", "-json")
	if code != 0 {
		t.Fatalf("bench: exit %d:\n%s", code, out)
	}
	var res struct {
		Retention []struct {
			Deleted uint64 `json:"deleted_segments"`
		} `json:"retention"`
		ReplayRead []struct {
			Written uint64 `json:"bytes_written"`
		} `json:"replay_read"`
		PreMemory []struct {
			Dirtied uint64 `json:"bytes_dirtied"`
		} `json:"pre_memory"`
		PreFile []struct {
			Dirtied uint64 `json:"bytes_dirtied"`
		} `json:"pre_file"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	const frameBytes = 320 * 240
	switch {
	case len(res.Retention) != 1 || res.Retention[0].Deleted == 0:
		t.Fatalf("retention pass deleted nothing:\n%s", out)
	case len(res.ReplayRead) != 1 || res.ReplayRead[0].Written != 64*frameBytes:
		t.Fatalf("replay read did not read every frame once:\n%s", out)
	case len(res.PreMemory) != 1 || len(res.PreFile) != 1 || res.PreMemory[0].Dirtied != 0:
		t.Fatalf("pre-trigger passes:\n%s", out)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Fatalf("bench left %d files", len(left))
	}
}
