//go:build aravis && cgo

package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/cmd/pipeline/internal/pipeline"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
)

// buildCameraBinaries builds the commands with the Aravis backend.
func buildCameraBinaries(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-tags", "aravis", "-o", bin+"/",
		"github.com/framering/framering/cmd/producer", "github.com/framering/framering/cmd/analyzer",
		"github.com/framering/framering/cmd/archiver")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestAravisPipeline: frames flow from Aravis's GigE Vision simulator
// (real GVCP/GVSP on loopback, in a private network namespace) through the
// producer into the ring, to the archiver and the analyzer, with the
// camera configured by -set; every archived frame is byte-identical to
// what a plain Aravis client (testdata/arvgrab.c, no framering code)
// receives from the same camera with the same settings, and its metadata
// is the camera's. Zero-copy and safe-copy.
func TestAravisPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three binaries against a camera simulator")
	}
	if !testmain.PrivateNetwork(t) {
		return
	}
	bin := buildCameraBinaries(t)
	t.Setenv("FRAMERING_RUNTIME_DIR", t.TempDir())
	cam := testmain.StartFakeCamera(t, "FRPIPE", 0)
	settings := []string{"Width=320", "Height=240", "PixelFormat=Mono16", "AcquisitionFrameRate=100",
		"GainRaw=1", "ExposureTimeAbs=20000"}
	g := frame.Packed(320, 240, frame.Mono16)

	// The reference: a plain Aravis client, from a fresh simulator (its
	// block ids start at 1).
	client := testmain.PlainAravisClient(t)
	ref, said := testmain.RunPlainAravisClient(t, client, testmain.FakeCameraAddr, 60, settings)
	if said != "320 240 Mono16" || len(ref) != 60 {
		t.Fatalf("the plain client got %d frames of %q", len(ref), said)
	}
	scale := testmain.FakeCameraScale(1, 20000)
	for id, b := range ref {
		if !bytes.Equal(b, testmain.FakeCameraFrame(g, id, scale)) {
			t.Fatalf("the plain client's frame %d is not the simulator's pattern", id)
		}
	}

	for _, cp := range []bool{false, true} {
		name := map[bool]string{false: "zero-copy", true: "safe-copy"}[cp]
		t.Run(name, func(t *testing.T) {
			cam.Kill()
			cam.Restart() // block ids from 1 again, as the reference's
			c := pipeline.Config{BinDir: bin, OutDir: t.TempDir(), Ring: "aravis-" + name, Duration: 2 * time.Second,
				Slots: 16, Source: "aravis", Camera: testmain.FakeCameraAddr, Settings: settings, Copy: cp}
			var progress strings.Builder
			c.Progress = &progress
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			s, err := pipeline.Run(ctx, c)
			var out strings.Builder
			s.Print(&out, c)
			if err != nil {
				t.Fatalf("%v\n%s\nprogress:\n%s", err, out.String(), progress.String())
			}
			if s.Published < 100 || s.Archived != s.Published || !s.VerifyOK || s.Analyzed == 0 {
				t.Fatalf("summary:\n%s", out.String())
			}
			t.Log(out.String())

			rd, err := archive.OpenReader(filepath.Join(c.OutDir, "archive"))
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			compared, frames := 0, 0
			var prev archive.Meta
			for {
				rec, err := rd.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if rec.Kind != archive.KindFrame {
					continue
				}
				m := rec.Meta
				if m.Width != g.Width || m.Height != g.Height || m.Stride != g.Stride || m.Format != g.Format {
					t.Fatalf("archived frame %d: %+v, want %+v", m.FrameID, m, g)
				}
				if frames > 0 && (m.FrameID <= prev.FrameID || m.Timestamp < prev.Timestamp) {
					t.Fatalf("archived frame %d (ts %d) after %d (ts %d)", m.FrameID, m.Timestamp, prev.FrameID, prev.Timestamp)
				}
				prev = m
				frames++
				if want, ok := ref[m.FrameID]; ok {
					if !bytes.Equal(rec.Payload, want) {
						t.Fatalf("archived frame %d differs from what the plain Aravis client received", m.FrameID)
					}
					compared++
				}
			}
			if compared < 40 {
				t.Fatalf("only %d of %d archived frames had a reference to compare with", compared, frames)
			}
			t.Logf("%s: %d archived frames, %d compared byte for byte with the plain client's", name, frames, compared)
		})
	}
	if _, err := os.Stat(client); err != nil {
		t.Fatal(err)
	}
}
