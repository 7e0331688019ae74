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
	"slices"
	"strings"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/internal/cli"
	"github.com/framering/framering/internal/diag"
	"github.com/framering/framering/results"
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
	{Name: "export", Summary: "write frames (-from SEQ -to SEQ, -seq N or -event ID) of an archive as PNG or TIFF files"},
	{Name: "events", Summary: "list the events an events archive (run -record events) recorded"},
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
	case "events":
		err = eventsCommand(ctx, args, stdout, stderr)
	case "bench":
		err = benchCommand(ctx, args, stdout, stderr)
	default:
		return commandLine.Unknown(stderr, sub)
	}
	if errors.Is(err, ErrDamaged) {
		err = fmt.Errorf("%w: %w", cli.ErrCheck, err)
	}
	return cli.Exit(stderr, "archiver", err)
}

// newFlagSet returns the flag set of a subcommand; usage is its synopsis
// after "archiver NAME".
func newFlagSet(name, usage string) *cli.FlagSet { return commandLine.FlagSet(name, usage) }

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
	fs.Var(sizeFlag{&cfg.Retention.MaxBytes}, "keep-size", "retention: delete the oldest segments while the archive is larger than this `size` (0: no limit)")
	fs.DurationVar(&cfg.Retention.MaxAge, "keep-age", 0, "retention: delete segments whose last frame is older than this `duration` (0: no limit)")
	fs.Var(sizeFlag{&cfg.Retention.MinFree}, "keep-free", "retention: delete the oldest segments while the filesystem has less free space than this `size` (0 with -keep-size or -keep-age: two segments)")
	fs.Var(syncFlag{&cfg.Sync}, "fsync", "fsync `policy`: always | never | every=N | interval=D | bytes=SIZE, comma-combined")
	fs.BoolVar(&cfg.Compress, "compress", false, "compress frames with S2 (fast) when that makes them smaller")
	fs.BoolVar(&cfg.Copy, "copy", false, "safe-copy consumer mode: copy each frame out of shared memory before writing it")
	fs.BoolVar(&cfg.Reattach, "reattach", true, "attach again after an eviction or when the producer restarts")
	fs.BoolVar(&cfg.Wait, "wait", true, "wait for the producer if it is not there yet")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this `duration` (0: until signalled)")
	fs.Uint64Var(&cfg.Frames, "frames", 0, "stop after this many `frames` received from the ring (0: no limit)")
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
	logFormat := fs.String("log-format", "text", "log `format` on stderr: "+cli.LogFormats)
	fs.DurationVar(&cfg.StatsInterval, "stats-interval", 10*time.Second, "period of the stats log line (0: none)")
	logLevel := fs.String("log-level", "info", "log `level`: "+cli.LogLevels)
	debugAddr := fs.String("debug-addr", "", "serve net/http/pprof on this `address` (e.g. localhost:6061; off when empty)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://`address`/metrics (a bare :PORT is localhost; empty: off)")
	fs.BoolVar(&cfg.Latency, "latency", false, "latency mode: sleep for frames in a raw futex wait (README, Performance)")
	cpus := fs.String("cpus", "", "run every thread on these `cpus` (e.g. 1 or 2-3; none: no pinning)")
	fs.DurationVar(&cfg.EarlyWake, "early-wake", 0, "for a periodic source: wake this `duration` before the next frame is due and poll for it, at about that much CPU per frame (0: off; README, Performance)")
	if err := fs.Parse(args, stdout); err != nil {
		return err
	}
	if cfg.EarlyWake < 0 {
		return cli.Usagef("-early-wake %v: want 0 (off) or a positive duration", cfg.EarlyWake)
	}
	if *cpus != "" {
		list, err := ringbuf.ParseCPUList(*cpus)
		if err == nil {
			err = ringbuf.PinProcess(list...)
		}
		if err != nil {
			return cli.Usagef("-cpus: %v", err)
		}
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
	log, err := cli.NewLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	cfg.Logger = log
	if !cfg.Wait {
		// Without -wait a missing ring ends the run: find that out before
		// creating an archive directory, lock and segment for nothing.
		if err := ringExists(cfg.Ring, cfg.SocketPath); err != nil {
			return fmt.Errorf("run archiver: %w", err)
		}
	}
	switch *record {
	case "all":
		if ev.Results != "" || *analyzerName != "" || ev.TriggerSocket != "" {
			return cli.Usagef("triggers need -record events")
		}
	case "events":
		if *analyzerName != "" {
			if ev.Results != "" {
				return cli.Usagef("-trigger-results or -trigger-analyzer, not both")
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
		return cli.Usagef("-record %q: want all or events", *record)
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
		"triggers_stale", e.Stale, "pre_frames_missing", e.PreMissing, "results_stream_errs", e.ResultsErr)
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
	// A socket left by a producer that died: nobody serves it. An
	// observer's attach tells (it takes no entry and no holds); a producer
	// that does not answer in time is left to the run to report.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: path, Role: ringbuf.RoleObserver,
		Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		r.Close()
		return nil
	}
	if errors.Is(err, ringbuf.ErrNoSuchRing) || errors.Is(err, ringbuf.ErrProducerGone) {
		return fmt.Errorf("ring %s: %w (-wait waits for it)", path, err)
	}
	return nil
}

func exportCommand(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("export", "-dir DIR -out DIR [-from SEQ] [-to SEQ | -seq SEQ | -event ID] [-epoch E] [-format png|tiff]")
	dir := fs.String("dir", "", "archive `directory` (required)")
	seq := fs.Uint64("seq", 0, "export the one frame with this ring sequence `number` (same as -from N -to N)")
	from := fs.Uint64("from", 1, "first ring sequence `number`")
	to := fs.Uint64("to", math.MaxUint64, "last ring sequence `number` (inclusive)")
	epoch := fs.String("epoch", "", "the producer run (ring epoch, hex, a unique prefix will do); needed when the archive holds the sequence numbers in several runs")
	event := fs.Uint64("event", 0, "export the frames of the event with this `id` (archiver events)")
	records := fs.Bool("records", false, "-from and -to are record sequence numbers of the archive instead (version 1 archives have no others)")
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
	sel := archive.Selection{From: *from, To: *to, Records: *records}
	if *seq != 0 {
		sel.From, sel.To = *seq, *seq
	}
	if *event != 0 {
		if *seq != 0 || *epoch != "" || *records {
			return cli.Usagef("-event selects the frames itself (no -seq, -epoch, -records)")
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
	if err != nil {
		return fmt.Errorf("export (%d frames written to %s before it failed): %w", res.Frames, *out, err)
	}
	fmt.Fprintf(stdout, "exported %d frames as %s to %s (gap records in range: %d, damaged: %d, unsupported formats: %d)\n",
		res.Frames, f, *out, res.Gaps, res.Corrupt, res.Unsupported)
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
