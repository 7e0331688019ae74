package pipeline_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/cmd/pipeline/internal/pipeline"
	"github.com/framering/framering/frame"
)

// buildBinaries builds the real commands the pipeline runs.
func buildBinaries(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+"/", "github.com/framering/framering/cmd/producer", "github.com/framering/framering/cmd/analyzer", "github.com/framering/framering/cmd/archiver")
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// The pipeline end to end, as a newcomer runs it: three real processes on
// a real ring; every published frame archived, the archive verifies, and
// the analyzer reports exactly the defects the source injected.
func TestPipelineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three binaries")
	}
	bin := buildBinaries(t)
	t.Setenv("FRAMERING_RUNTIME_DIR", t.TempDir())
	for _, tc := range []struct {
		name string
		cfg  pipeline.Config
	}{
		{"zero-copy Mono8", pipeline.Config{Geometry: frame.Packed(320, 240, frame.Mono8), Source: "synthetic"}},
		{"safe-copy RGB8 SDK", pipeline.Config{Geometry: frame.Packed(256, 128, frame.RGB8), Source: "sdk", Copy: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.BinDir, c.OutDir, c.Ring = bin, t.TempDir(), strings.ReplaceAll(tc.name, " ", "-")
			c.Duration, c.FPS, c.Slots = 2*time.Second, 100, 16
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
			if s.Published < 50 || s.Archived != s.Published || !s.VerifyOK || s.Analyzed == 0 ||
				s.DefectsChecked == 0 || s.DefectsWrong != 0 || s.Defects == 0 {
				t.Fatalf("summary:\n%s", out.String())
			}
			if _, err := os.Stat(filepath.Join(c.OutDir, "analysis.jsonl")); err != nil {
				t.Fatal(err)
			}
			t.Log(out.String())
		})
	}
}

func TestPipelineMissingBinaries(t *testing.T) {
	_, err := pipeline.Run(context.Background(), pipeline.Config{BinDir: t.TempDir(), OutDir: t.TempDir(), Ring: "none",
		Geometry: frame.Packed(64, 64, frame.Mono8), Duration: time.Second, FPS: 10})
	if err == nil || errors.Is(err, pipeline.ErrCheck) {
		t.Fatalf("missing binaries: %v", err)
	}
}
