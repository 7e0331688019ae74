// Command pipeline runs producer, analyzer and archiver together on the
// built-in synthetic frame source for a bounded time and prints what each
// did: frames produced, published, dropped (by cause), analyzed, archived,
// and whether the archive verifies and the analyzer found the injected
// defects. It expects the three binaries beside it (scripts/pipeline.sh
// builds them).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/framering/framering/cmd/pipeline/internal/pipeline"
	"github.com/framering/framering/frame"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	exe, _ := os.Executable()
	bin := fs.String("bin", filepath.Dir(exe), "directory holding the producer, analyzer and archiver binaries")
	out := fs.String("out", "pipeline-out", "directory for analysis.jsonl, archive/ and the processes' logs")
	ring := fs.String("ring", "pipeline", "ring name")
	dur := fs.Duration("duration", 10*time.Second, "how long frames flow")
	width := fs.Int("width", 1280, "frame width")
	height := fs.Int("height", 1024, "frame height")
	format := fs.String("format", "Mono8", "pixel format: "+frame.FormatNames())
	fps := fs.Float64("fps", 100, "frame rate")
	slots := fs.Int("slots", 16, "ring slots")
	source := fs.String("source", "synthetic", "frame source: synthetic (pure Go), sdk (the simulated C frame grabber) or aravis (a GenICam camera)")
	camera := fs.String("camera", "", "with -source aravis: the camera (id, MAC or address; default: the first found)")
	var sets setList
	fs.Var(&sets, "set", "with -source aravis: a GenICam `Feature=Value` for the camera (repeatable)")
	copyMode := fs.Bool("copy", false, "safe-copy mode in every process instead of zero-copy")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	f, err := frame.ParseFormat(*format)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := pipeline.Config{BinDir: *bin, OutDir: *out, Ring: *ring, Duration: *dur, Geometry: frame.Packed(*width, *height, f),
		FPS: *fps, Slots: *slots, Source: *source, Camera: *camera, Settings: sets, Copy: *copyMode, Progress: os.Stdout}
	if err := cfg.Geometry.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if (*camera != "" || len(sets) > 0) && *source != "aravis" {
		fmt.Fprintln(os.Stderr, "-camera and -set need -source aravis")
		return 2
	}
	fmt.Printf("running producer + analyzer + archiver on ring %q for %v (Ctrl-C stops early)\n", *ring, *dur)
	s, err := pipeline.Run(ctx, cfg)
	s.Print(os.Stdout, cfg)
	if err != nil {
		if !errors.Is(err, pipeline.ErrCheck) {
			fmt.Fprintln(os.Stderr, err)
		}
		return 1
	}
	return 0
}

// setList is the repeatable -set Feature=Value, passed on as it is.
type setList []string

func (l *setList) String() string { return strings.Join(*l, " ") }

func (l *setList) Set(v string) error {
	if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
		return fmt.Errorf("%q: want Feature=Value", v)
	}
	*l = append(*l, v)
	return nil
}
