package archiver

// The command line of cmd/archiver: subcommands, flags, logging, exit codes.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/internal/diag"
	"github.com/framering/framering/results"
)

// Exit codes of Command.
const (
	ExitOK      = 0
	ExitFailure = 1 // the run failed
	ExitUsage   = 2
	ExitDamaged = 3 // a check ran and found a problem: verify found damage
)

const usageText = `usage:
  archiver [run] [flags]      archive a ring's frames (lossless consumer)
  archiver verify -dir D      check every record of an archive
  archiver events -dir D [-json]  list the events an events archive recorded
  archiver export -dir D [-seq N | -from N -to M | -event ID] [-epoch E] -format png|tiff -out DIR
  archiver bench -dir D       archive write throughput vs a plain sequential write

Run "archiver <subcommand> -h" for a subcommand's flags.
`

// Command runs the archiver command line (args without the program name)
// and returns the process exit code. ctx ends the run (cmd/archiver cancels
// it on SIGINT and SIGTERM).
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
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
	case "events":
		err = eventsCommand(ctx, args, stdout, stderr)
	case "bench":
		err = benchCommand(ctx, args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "archiver: unknown subcommand %q\n%s", sub, usageText)
		return ExitUsage
	}
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(stderr, "archiver: %v\n", err)
		return ExitUsage
	case errors.Is(err, ErrDamaged):
		fmt.Fprintf(stderr, "archiver: %v\n", err)
		return ExitDamaged
	default:
		fmt.Fprintf(stderr, "archiver: %v\n", err)
		return ExitFailure
	}
}

// newFlagSet returns a flag set that reports errors as ErrUsage.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("archiver "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	return nil
}

// NewLogger returns the logger for -log-format (text or json) writing to w.
func NewLogger(format string, w io.Writer, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: -log-format %q: want text or json", ErrUsage, format)
}

func runCommand(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	cfg := Config{}
	sync, _ := ParseSyncPolicy(DefaultSync)
	cfg.Sync = sync
	fs.StringVar(&cfg.Ring, "ring", "default", "ring `name`")
	fs.StringVar(&cfg.SocketPath, "socket", "", "ring socket `path` (overrides -ring)")
	fs.StringVar(&cfg.Name, "name", "archiver", "consumer `name` in the ring's consumer table")
	fs.StringVar(&cfg.Dir, "dir", "", "archive `directory` (required)")
	fs.Var(sizeFlag{&cfg.SegmentSize}, "segment-size", "rotate segments at this `size` (e.g. 256MiB; 0: 1GiB)")
	fs.Var(sizeFlag{&cfg.Retention.MaxBytes}, "keep-size", "retention: delete the oldest segments while the archive is larger than this `size` (0: no limit)")
	fs.DurationVar(&cfg.Retention.MaxAge, "keep-age", 0, "retention: delete segments whose last frame is older than this `duration` (0: no limit)")
	fs.Var(sizeFlag{&cfg.Retention.MinFree}, "keep-free", "retention: delete the oldest segments while the filesystem has less free space than this `size` (default with -keep-size or -keep-age: two segments)")
	fs.Var(syncFlag{&cfg.Sync}, "fsync", "fsync `policy`: always | never | every=N | interval=D | bytes=SIZE, comma-combined (default "+DefaultSync+")")
	fs.BoolVar(&cfg.Compress, "compress", false, "compress frames with S2 (fast) when that makes them smaller")
	fs.BoolVar(&cfg.Copy, "copy", false, "safe-copy consumer mode: copy each frame out of shared memory before writing it")
	fs.BoolVar(&cfg.Reattach, "reattach", true, "attach again after an eviction or when the producer restarts")
	fs.BoolVar(&cfg.Wait, "wait", true, "wait for the producer if it is not there yet")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this `long` (0: until signalled)")
	fs.Uint64Var(&cfg.Frames, "frames", 0, "stop after this many frames received from the ring (0: no limit)")
	record := fs.String("record", "all", "what to keep: all (every frame) or events (the frames around triggers; see -pre, -post)")
	ev := EventsConfig{Pre: Window{Frames: 10}, Post: Window{Frames: 10}}
	fs.Var(windowFlag{&ev.Pre}, "pre", "-record events: frames (`N`) or capture time (a duration) kept before the trigger frame")
	fs.Var(windowFlag{&ev.Post}, "post", "-record events: frames (`N`) or capture time (a duration) kept after the trigger frame")
	fs.Var(windowFlag{&ev.Holdoff}, "holdoff", "-record events: triggers this many frames (`N`) or this long after an event are counted, not recorded")
	fs.Uint64Var(&ev.MaxEvent, "max-event", 0, "-record events: close an event at this many `frames` (0: no limit)")
	fs.Var(sizeFlag{&ev.Buffer}, "buffer", "-record events: bytes of the pre-trigger buffer in memory (`size`; default 256MiB)")
	fs.StringVar(&ev.Results, "trigger-results", "", "-record events: the analyzer's results `socket` (analyzer -results); results with defects trigger")
	analyzerName := fs.String("trigger-analyzer", "", "-record events: the results socket of the analyzer with this consumer `name` on -ring (RING.NAME.results in the runtime directory)")
	fs.IntVar(&ev.MinDefects, "min-defects", 1, "-record events: defects a result needs to trigger")
	fs.StringVar(&ev.TriggerSocket, "trigger-socket", "", "-record events: serve external triggers on this Unix `socket` (one JSON object per line); SIGUSR1 triggers too")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	fs.DurationVar(&cfg.StatsInterval, "stats-interval", 10*time.Second, "period of the stats log line (0: none)")
	debug := fs.Bool("debug", false, "log at debug level")
	debugAddr := fs.String("debug-addr", "", "serve net/http/pprof on this `address` (e.g. localhost:6061; off when empty)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://`address`/metrics (a bare :PORT is localhost; empty: off)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if cfg.Dir == "" {
		return fmt.Errorf("%w: -dir is required", ErrUsage)
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
	switch *record {
	case "all":
		if ev.Results != "" || *analyzerName != "" || ev.TriggerSocket != "" {
			return fmt.Errorf("%w: triggers need -record events", ErrUsage)
		}
	case "events":
		if *analyzerName != "" {
			if ev.Results != "" {
				return fmt.Errorf("%w: -trigger-results or -trigger-analyzer, not both", ErrUsage)
			}
			if cfg.SocketPath != "" {
				ev.Results = results.PathForSocket(cfg.SocketPath, *analyzerName)
			} else {
				ev.Results = results.Path(cfg.Ring, *analyzerName)
			}
		}
		ev.Signal = true
		cfg.Events = &ev
	default:
		return fmt.Errorf("%w: -record %q: want all or events", ErrUsage, *record)
	}
	if *debugAddr != "" {
		dctx, stopDiag := context.WithCancel(ctx)
		defer stopDiag()
		if _, err := diag.Serve(dctx, *debugAddr, log); err != nil {
			return fmt.Errorf("run archiver: %w", err)
		}
	}
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
	for _, k := range lostKeys(s.Lost) {
		lost = append(lost, slog.Uint64(k, s.Lost[k]))
	}
	mbps := 0.0
	if sec := s.Elapsed.Seconds(); sec > 0 {
		mbps = round1(float64(s.Bytes) / sec / 1e6)
	}
	log.Info("summary", "dir", s.Dir, "received", s.Received, "stored", s.Stored, "bytes", s.Bytes,
		"lost_total", s.LostTotal, slog.Group("lost", lost...), "recorded", s.Recorded, "unrecorded", s.Pending,
		"gap_records", s.GapRecords, "archive_bytes", s.ArchiveSize, "fsyncs", s.Fsyncs, "sync_errors", s.SyncErrors,
		"segments_created", s.Segments, "disk_full_refusals", s.DiskFull, "evictions", s.Evictions,
		"retention_deleted_segments", s.Deleted.Segments, "retention_deleted_frames", s.Deleted.Frames, "retention_deleted_bytes", s.Deleted.Bytes,
		"unexplained_id_gaps", s.Unexplained,
		"attaches", s.Attaches, "producer_restarts", s.Restarts, "next_seq", s.NextSeq, "durable_seq", s.DurableSeq,
		"elapsed", s.Elapsed.Round(time.Millisecond).String(), "mb_per_s", mbps, eventsGroup(s.Events))
}

// eventsGroup is the summary's events group (empty without -record events).
func eventsGroup(e *EventStats) slog.Attr {
	if e == nil {
		return slog.Group("events")
	}
	return slog.Group("events", "events", e.Events, "event_frames", e.Frames, "triggers", e.Triggers,
		"triggers_merged", e.Merged, "triggers_held_off", e.HeldOff, "triggers_dropped", e.Dropped,
		"triggers_stale", e.Stale, "pre_frames_missing", e.PreMissing)
}

// lostKeys returns the cause names of a by-name count map in report order
// (reportOrder), names no cause of this build has last, sorted.
func lostKeys(m map[string]uint64) []string {
	var keys []string
	for _, c := range reportOrder() {
		if _, ok := m[c.String()]; ok {
			keys = append(keys, c.String())
		}
	}
	var other []string
	for k := range m {
		if !slices.Contains(keys, k) {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	return append(keys, other...)
}

func exportCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", stderr)
	dir := fs.String("dir", "", "archive `directory` (required)")
	seq := fs.Uint64("seq", 0, "export the one frame with this ring sequence `number` (same as -from N -to N)")
	from := fs.Uint64("from", 1, "first ring sequence `number`")
	to := fs.Uint64("to", math.MaxUint64, "last ring sequence `number` (inclusive)")
	epoch := fs.String("epoch", "", "the producer run (ring epoch, hex, a unique prefix will do); needed when the archive holds the sequence numbers in several runs")
	event := fs.Uint64("event", 0, "export the frames of the event with this `id` (archiver events)")
	records := fs.Bool("records", false, "-from and -to are record sequence numbers of the archive instead (version 1 archives have no others)")
	format := fs.String("format", "png", "image `format`: png or tiff")
	out := fs.String("out", "", "output `directory` (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" || *out == "" {
		return fmt.Errorf("%w: -dir and -out are required", ErrUsage)
	}
	var f archive.ExportFormat
	switch *format {
	case "png":
		f = archive.ExportPNG
	case "tiff", "tif":
		f = archive.ExportTIFF
	default:
		return fmt.Errorf("%w: -format %q: want png or tiff", ErrUsage, *format)
	}
	sel := archive.Selection{From: *from, To: *to, Records: *records}
	if *seq != 0 {
		sel.From, sel.To = *seq, *seq
	}
	if *event != 0 {
		if *seq != 0 || *epoch != "" || *records {
			return fmt.Errorf("%w: -event selects the frames itself (no -seq, -epoch, -records)", ErrUsage)
		}
		ev, err := archive.FindEvent(*dir, *event)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		sel = archive.Selection{Epoch: uint64(ev.Epoch), From: ev.FirstSeq, To: ev.LastSeq}
	}
	if *epoch != "" {
		e, err := resolveEpoch(*dir, *epoch)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		sel.Epoch = e
	}
	res, err := archive.Export(*dir, sel, *out, f)
	fmt.Fprintf(stdout, "exported %d frames as %s to %s (gap records in range: %d, damaged: %d, unsupported formats: %d)\n",
		res.Frames, f, *out, res.Gaps, res.Corrupt, res.Unsupported)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// resolveEpoch finds the archive's epoch that s (hex) is a prefix of.
func resolveEpoch(dir, s string) (uint64, error) {
	r, err := archive.OpenReader(dir)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.ResolveEpoch(s)
}
