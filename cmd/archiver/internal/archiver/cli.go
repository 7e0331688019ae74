package archiver

// The command line of cmd/archiver: subcommands, flags, logging, exit codes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/internal/cli"
	"github.com/framering/framering/internal/diag"
	"github.com/framering/framering/ringbuf"
)

// Exit codes of Command: the convention of package internal/cli.
const (
	ExitOK      = cli.ExitOK
	ExitFailure = cli.ExitFailure // the run failed
	ExitUsage   = cli.ExitUsage
	ExitCheck   = cli.ExitCheck // verify found damage
)

// commandLine is the archiver's subcommands, for its help.
var commandLine = cli.Multi{Prog: "archiver", About: `Stores every frame of a ring on disk, losslessly: each published frame is
stored, or its loss is recorded in the archive with its cause.`, Commands: []cli.Command{
	{Name: "run", Summary: "archive a ring's frames, losslessly (the default: 'archiver -ring R -dir D' is 'archiver run ...')"},
	{Name: "verify", Summary: "check every record of an archive (exit 3 when it finds damage)"},
	{Name: "export", Summary: "write frames -from SEQ -to SEQ of an archive as PNG or TIFF files"},
	{Name: "bench", Summary: "the archive's write rate against a plain sequential write"},
	{Name: "help", Summary: "this list, or 'archiver help COMMAND' for a command's flags"},
}}

// Command runs the archiver command line (args without the program name)
// and returns the process exit code. ctx ends the run (cmd/archiver cancels
// it on SIGINT and SIGTERM).
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	args, code, done := commandLine.Start(args, stdout, stderr)
	if done {
		return code
	}
	sub := "run" // archiver -ring R -dir D
	if !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	var err error
	switch sub {
	case "run":
		err = runCommand(ctx, args, stdout, stderr)
	case "verify":
		err = verifyCommand(ctx, args, stdout, stderr)
	case "export":
		err = exportCommand(ctx, args, stdout, stderr)
	case "bench":
		err = benchCommand(ctx, args, stdout, stderr)
	default:
		return commandLine.Unknown(stderr, sub)
	}
	if errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("%w: %w", cli.ErrCheck, err)
	}
	return cli.Exit(stderr, "archiver", err)
}

// newFlagSet returns the flag set of a subcommand; usage is its synopsis
// after "archiver NAME".
func newFlagSet(name, usage string) *cli.FlagSet { return commandLine.FlagSet(name, usage) }

// NewLogger returns the logger for -log-format (text or json) writing to w.
func NewLogger(format string, w io.Writer, level slog.Level) (*slog.Logger, error) {
	return cli.NewLogger(w, format, level.String())
}

func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "-ring NAME -dir DIR [flags]")
	cfg := Config{}
	sync, _ := ParseSyncPolicy(DefaultSync)
	cfg.Sync = sync
	fs.StringVar(&cfg.Ring, "ring", "default", "ring `name`")
	fs.StringVar(&cfg.SocketPath, "socket", "", "ring socket `path` (overrides -ring)")
	fs.StringVar(&cfg.Name, "name", "archiver", "consumer `name` in the ring's consumer table")
	fs.StringVar(&cfg.Dir, "dir", "", "archive `directory` (required)")
	fs.Var(sizeFlag{&cfg.SegmentSize}, "segment-size", "rotate segments at this `size` (e.g. 256MiB; 0: 1GiB)")
	fs.Var(syncFlag{&cfg.Sync}, "fsync", "fsync `policy`: always | never | every=N | interval=D | bytes=SIZE, comma-combined")
	fs.BoolVar(&cfg.Compress, "compress", false, "compress frames with S2 (fast) when that makes them smaller")
	fs.BoolVar(&cfg.Copy, "copy", false, "safe-copy consumer mode: copy each frame out of shared memory before writing it")
	fs.BoolVar(&cfg.Reattach, "reattach", true, "attach again after an eviction or when the producer restarts")
	fs.BoolVar(&cfg.Wait, "wait", true, "wait for the producer if it is not there yet")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this `duration` (0: until signalled)")
	fs.Uint64Var(&cfg.Frames, "frames", 0, "stop after this many `frames` received from the ring (0: no limit)")
	logFormat := fs.String("log-format", "text", "log `format` on stderr: "+cli.LogFormats)
	fs.DurationVar(&cfg.StatsInterval, "stats-interval", 10*time.Second, "period of the stats log line (0: none)")
	debug := fs.Bool("debug", false, "log at debug level")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://`address`/metrics (a bare :PORT is localhost; empty: off)")
	if err := fs.Parse(args, stdout); err != nil {
		return err
	}
	if cfg.Dir == "" {
		return cli.Usagef("-dir is required")
	}
	if err := cli.CheckRing(cfg.Ring, cfg.SocketPath); err != nil {
		return err
	}
	if cfg.Duration < 0 || cfg.StatsInterval < 0 {
		return cli.Usagef("-duration and -stats-interval: want 0 or more")
	}
	if !cfg.Wait {
		// Without -wait a missing ring ends the run: find that out before
		// creating an archive directory, lock and segment for nothing.
		if err := ringExists(cfg.Ring, cfg.SocketPath); err != nil {
			return fmt.Errorf("run archiver: %w", err)
		}
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log, err := NewLogger(*logFormat, stderr, level)
	if err != nil {
		return err
	}
	cfg.Logger = log
	if *metricsAddr != "" {
		cfg.Metrics = NewMetrics(cfg.Ring, cfg.Dir)
		if _, err := diag.ServeMetrics(ctx, *metricsAddr, log, cfg.Metrics); err != nil {
			return err
		}
	}
	sum, err := Run(ctx, cfg)
	if sum != nil {
		logSummary(log, sum)
	}
	return err
}

// logSummary logs the final summary line.
func logSummary(log *slog.Logger, s *Summary) {
	var lost []any
	for _, c := range causeOrder {
		if n := s.Lost[causeKey(c)]; n > 0 {
			lost = append(lost, slog.Uint64(causeKey(c), n))
		}
	}
	for k, n := range s.Lost { // archiver-unknown causes, if any
		if !knownKey(k) {
			lost = append(lost, slog.Uint64(k, n))
		}
	}
	mbps := 0.0
	if sec := s.Elapsed.Seconds(); sec > 0 {
		mbps = round1(float64(s.Bytes) / sec / 1e6)
	}
	log.Info("summary", "dir", s.Dir, "received", s.Received, "stored", s.Stored, "bytes", s.Bytes,
		"lost_total", s.LostTotal, slog.Group("lost", lost...), "recorded", s.Recorded, "unrecorded", s.Pending,
		"gap_records", s.GapRecords, "archive_bytes", s.ArchiveSize, "fsyncs", s.Fsyncs, "sync_errors", s.SyncErrors,
		"segments_created", s.Segments, "disk_full_refusals", s.DiskFull, "evictions", s.Evictions,
		"attaches", s.Attaches, "producer_restarts", s.Restarts, "next_seq", s.NextSeq, "durable_seq", s.DurableSeq,
		"elapsed", s.Elapsed.Round(time.Millisecond).String(), "mb_per_s", mbps)
}

func knownKey(k string) bool {
	for _, c := range causeOrder {
		if causeKey(c) == k {
			return true
		}
	}
	return false
}

// ringExists reports ringbuf.ErrNoSuchRing when the ring's socket is not
// there (a socket left by a dead producer is found by attaching).
func ringExists(name, socket string) error {
	path := socket
	if path == "" {
		var err error
		if path, err = ringbuf.SocketPath(name); err != nil {
			return err
		}
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ring %s: %w (-wait waits for it)", path, ringbuf.ErrNoSuchRing)
	}
	return nil
}

func exportCommand(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("export", "-dir DIR -out DIR [-from SEQ] [-to SEQ] [-format png|tiff]")
	dir := fs.String("dir", "", "archive `directory` (required)")
	from := fs.Uint64("from", 0, "first sequence `number`")
	to := fs.Uint64("to", math.MaxUint64, "last sequence `number` (inclusive)")
	format := fs.String("format", "png", "image `format`: png or tiff")
	out := fs.String("out", "", "output `directory` (required)")
	if err := fs.Parse(args, stdout); err != nil {
		return err
	}
	if *dir == "" || *out == "" {
		return cli.Usagef("-dir and -out are required")
	}
	if *from > *to {
		return cli.Usagef("-from %d is after -to %d", *from, *to)
	}
	var f archive.ExportFormat
	switch *format {
	case "png":
		f = archive.ExportPNG
	case "tiff", "tif":
		f = archive.ExportTIFF
	default:
		return cli.Usagef("-format %q: want png or tiff", *format)
	}
	res, err := archive.Export(*dir, *from, *to, *out, f)
	if err != nil {
		return fmt.Errorf("export (%d frames written to %s before it failed): %w", res.Frames, *out, err)
	}
	fmt.Fprintf(stdout, "exported %d frames as %s to %s (gap records in range: %d, damaged: %d, unsupported formats: %d)\n",
		res.Frames, f, *out, res.Gaps, res.Corrupt, res.Unsupported)
	return nil
}
