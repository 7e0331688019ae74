// Command pipeline runs producer, analyzer and archiver together on the
// built-in synthetic frame source for a bounded time and prints what each
// did: frames produced, published, dropped (by cause), analyzed, archived,
// and whether the archive verifies and the analyzer found the injected
// defects. It expects the three binaries beside it (scripts/pipeline.sh
// builds them). Exit status (package internal/cli): 0 when the books
// balance, 1 when a process could not be run, 2 for a usage error, 3 when
// the processes ran and the cross-check found a problem.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/framering/framering/cmd/pipeline/internal/pipeline"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// help is the pipeline's -h text around its flags.
var help = cli.Help{
	Usage: "pipeline [flags]   (scripts/pipeline.sh builds the binaries and runs it)",
	About: `Runs producer, analyzer and archiver as three processes on one ring for
-duration, prints a progress line a second, stops the producer first, and
cross-checks what each process reported: every published frame archived or
recorded as lost, the archive verified, defects found where injected. The
default source is synthetic (pure Go, in every build); -source sdk is the
simulated C frame grabber (needs cgo). Outputs stay in -out.`,
	More: cli.ExitStatus + "\n(3: the processes ran and their books do not balance.)",
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("pipeline", help)
	exe, _ := os.Executable()
	bin := fs.String("bin", filepath.Dir(exe), "`directory` holding the producer, analyzer and archiver binaries")
	out := fs.String("out", "pipeline-out", "`directory` for analysis.jsonl, archive/ and the processes' logs")
	ring := fs.String("ring", "pipeline", "ring `name`")
	dur := fs.Duration("duration", 5*time.Second, "how long frames flow")
	width := fs.Int("width", 640, "frame width in `pixels`")
	height := fs.Int("height", 480, "frame height in `pixels`")
	format := fs.String("format", "Mono8", "pixel `format`: "+frame.FormatNames())
	fps := fs.Float64("fps", 100, "frame `rate` per second")
	slots := fs.Int("slots", 16, "ring `slots`")
	source := fs.String("source", "synthetic", "frame `source`: synthetic (pure Go, every build), sdk (the simulated C frame grabber, needs cgo) or aravis (a GenICam camera)")
	camera := fs.String("camera", "", "with -source aravis: the camera (id, MAC or address; none: the first found)")
	var sets setList
	fs.Var(&sets, "set", "with -source aravis: a GenICam `Feature=Value` for the camera (repeatable)")
	copyMode := fs.Bool("copy", false, "safe-copy mode in every process instead of zero-copy")
	if err := fs.Parse(args, stdout); err != nil {
		return cli.Exit(stderr, "pipeline", err)
	}
	if err := check(*ring, *dur, *fps, *slots, *source, *camera, sets); err != nil {
		return cli.Exit(stderr, "pipeline", err)
	}
	f, err := frame.ParseFormat(*format)
	if err != nil {
		return cli.Exit(stderr, "pipeline", cli.Usagef("-format %q: %w", *format, err))
	}
	cfg := pipeline.Config{BinDir: *bin, OutDir: *out, Ring: *ring, Duration: *dur, Geometry: frame.Packed(*width, *height, f),
		FPS: *fps, Slots: *slots, Source: *source, Camera: *camera, Settings: sets, Copy: *copyMode, Progress: stdout}
	if err := cfg.Geometry.Validate(); err != nil && *source != "aravis" {
		return cli.Exit(stderr, "pipeline", cli.Usagef("-width %d -height %d -format %v: %w", *width, *height, f, err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "running producer + analyzer + archiver on ring %q for %v (Ctrl-C stops early)\n", *ring, *dur)
	s, err := pipeline.Run(ctx, cfg)
	s.Print(stdout, cfg)
	if err != nil && !errors.Is(err, pipeline.ErrCheck) {
		return cli.Exit(stderr, "pipeline", err)
	}
	if err != nil {
		return cli.Exit(io.Discard, "pipeline", fmt.Errorf("%w: %w", cli.ErrCheck, err)) // the summary said why
	}
	return cli.ExitOK
}

// check refuses the flag values the pipeline cannot run with.
func check(ring string, dur time.Duration, fps float64, slots int, source, camera string, sets setList) error {
	if err := cli.CheckRing(ring, ""); err != nil {
		return err
	}
	switch {
	case dur <= 0:
		return cli.Usagef("-duration %v: want a positive duration", dur)
	case fps <= 0:
		return cli.Usagef("-fps %v: want a positive rate", fps)
	case slots < 2:
		return cli.Usagef("-slots %d: want 2 or more", slots)
	case source != "synthetic" && source != "sdk" && source != "aravis":
		return cli.Usagef("-source %q: want synthetic, sdk or aravis", source)
	case (camera != "" || len(sets) > 0) && source != "aravis":
		return cli.Usagef("-camera and -set need -source aravis")
	}
	return nil
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
