// Command analyzer attaches to a framering ring as a consumer and inspects
// every frame it takes in place, without copying it (unless -copy): pixel
// statistics and defect detection (thresholds and connected components),
// written as one JSON line per frame, then a {"summary":{...}} line.
//
// Lossy by default: it analyzes the newest frame, counts the frames it
// skipped, and reports its latency from capture to result. -lossless makes
// it take every frame (the producer drops new frames rather than overwrite
// one it has not analyzed).
//
// Usage:
//
//	analyzer [-ring NAME | -socket PATH] [-name NAME] [-lossless] [-copy]
//	         [-threshold-bright N] [-threshold-dark N] [-min-area N] [-histogram]
//	         [-out FILE] [-frames N] [-duration D] [-reattach=false] [-wait=false]
//	         [-metrics localhost:9465] [-debug-addr localhost:PORT] [-results]
//
// -results publishes every frame's line on the live results stream, a Unix
// socket at $FRAMERING_RUNTIME_DIR/RING.NAME.results (docs/RESULTS.md), for
// the archiver's event recording and ringctl serve's overlay.
//
// -debug-addr serves net/http/pprof (localhost unless a host is given), for
// a heap profile of a process that has run for weeks.
//
// It stops on SIGINT or SIGTERM, after -frames frames or -duration, or when
// the ring ends (without -reattach). Exit status (package internal/cli): 0
// for those, 1 when the consumer failed (producer gone without -reattach,
// evicted, write error), 2 for a usage error (a bad flag, an invalid ring
// name). Logs go to stderr (-log-format text or json).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/cmd/analyzer/internal/inspect"
	"github.com/framering/framering/consumers"
	"github.com/framering/framering/internal/cli"
	"github.com/framering/framering/internal/diag"
	"github.com/framering/framering/results"
	"github.com/framering/framering/ringbuf"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// help is the analyzer's -h text around its flags.
var help = cli.Help{
	Usage: "analyzer [-ring NAME | -socket PATH] [flags]",
	About: `Attaches to a ring as a consumer and inspects every frame it takes in place:
pixel statistics and defects (thresholds, connected components), one JSON line
per frame on stdout (or -out), then a {"summary":{...}} line. Lossy by default
(the newest frame; -lossless takes every frame). Stops on SIGINT/SIGTERM,
-frames, -duration, or when the ring ends (without -reattach).`,
	More: cli.ExitStatus,
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("analyzer", help)
	var (
		ring      = fs.String("ring", "default", "ring `name`")
		socket    = fs.String("socket", "", "ring socket `path` (overrides -ring)")
		name      = fs.String("name", "analyzer", "consumer `name` in the ring's consumer table")
		lossless  = fs.Bool("lossless", false, "take every frame (false: lossy, the newest frame)")
		copyMode  = fs.Bool("copy", false, "safe-copy mode: copy each frame out of shared memory first")
		reattach  = fs.Bool("reattach", true, "follow the ring across producer restarts")
		wait      = fs.Bool("wait", true, "wait for a producer if there is none yet")
		bright    = fs.Int("threshold-bright", 200, "bright defect `threshold`, 0-255 in 8-bit terms (-1: off)")
		dark      = fs.Int("threshold-dark", 10, "dark defect `threshold`, 0-255 in 8-bit terms (-1: off)")
		minArea   = fs.Int("min-area", 0, "drop defects of fewer `pixels`")
		maxDef    = fs.Int("max-defects", 0, "list at most `n` defects per frame (0: analysis default)")
		skipStamp = fs.Bool("skip-stamp", true, "ignore the 32-byte pattern stamp at the start of row 0")
		histogram = fs.Bool("histogram", false, "include the 256-bin histogram in each line")
		out       = fs.String("out", "", "write JSON lines to `file` (none: stdout)")
		frames    = fs.Uint64("frames", 0, "stop after `n` frames (0: no limit)")
		duration  = fs.Duration("duration", 0, "stop after this `duration` (0: no limit)")
		logFormat = fs.String("log-format", "text", "log `format` on stderr: "+cli.LogFormats)
		logLevel  = fs.String("log-level", "info", "log `level`: "+cli.LogLevels)
		metrics   = fs.String("metrics", "", "serve Prometheus metrics at http://`address`/metrics (a bare :PORT is localhost; none: off)")
		debugAddr = fs.String("debug-addr", "", "serve net/http/pprof on this `address` (e.g. localhost:6062; none: off)")
		publish   = fs.Bool("results", false, "publish each frame's result on the live results stream (RING.NAME.results in the runtime directory; docs/RESULTS.md)")
		latency   = fs.Bool("latency", false, "latency mode: GOMAXPROCS=1 and a raw futex wait for frames (README, Performance)")
		cpus      = fs.String("cpus", "", "run every thread on these `cpus` (e.g. 1 or 2-3; none: no pinning)")
		earlyWake = fs.Duration("early-wake", 0, "for a periodic source: wake this `duration` before the next frame is due and poll for it, at about that much CPU per frame (e.g. 200us; 0: off; README, Performance)")
	)
	if err := fs.Parse(args, stdout); err != nil {
		return cli.Exit(stderr, "analyzer", err)
	}
	if err := cli.CheckRing(*ring, *socket); err != nil {
		return cli.Exit(stderr, "analyzer", err)
	}
	log, err := cli.NewLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return cli.Exit(stderr, "analyzer", err)
	}
	if *cpus != "" {
		list, err := ringbuf.ParseCPUList(*cpus)
		if err == nil {
			err = ringbuf.PinProcess(list...)
		}
		if err != nil {
			return cli.Exit(stderr, "analyzer", cli.Usagef("-cpus: %v", err))
		}
	}
	if *earlyWake < 0 {
		return cli.Exit(stderr, "analyzer", cli.Usagef("-early-wake %v: want 0 (off) or a positive duration", *earlyWake))
	}
	if *latency {
		// One P: a wake-up never searches for an idle P or wakes a thread.
		runtime.GOMAXPROCS(1)
	}
	opts := analysis.Options{SkipStamp: *skipStamp, MinArea: *minArea, MaxDefects: *maxDef, Histogram: *histogram}
	for _, th := range []struct {
		name string
		v    int
		on   *bool
		to   *uint8
	}{{"-threshold-bright", *bright, &opts.Bright, &opts.Hi}, {"-threshold-dark", *dark, &opts.Dark, &opts.Lo}} {
		switch {
		case th.v == -1:
		case th.v >= 0 && th.v <= 255:
			*th.on, *th.to = true, uint8(th.v)
		default:
			fmt.Fprintf(stderr, "analyzer: %s %d: want 0-255, or -1 for off\n", th.name, th.v)
			return cli.ExitUsage
		}
	}
	mode := consumers.Lossy
	if *lossless {
		mode = consumers.Lossless
	}
	cfg := inspect.Config{
		Consumer: consumers.Options{Ring: *ring, SocketPath: *socket, Name: *name, Mode: mode, Copy: *copyMode,
			Wait: *wait, Reattach: *reattach, Latency: *latency, EarlyWake: *earlyWake, Logger: log},
		Analysis: opts,
		Frames:   *frames,
		Duration: *duration,
	}
	if *duration < 0 || *minArea < 0 || *maxDef < 0 {
		fmt.Fprintln(stderr, "analyzer: -duration, -min-area and -max-defects: want 0 or more")
		return cli.ExitUsage
	}
	if _, err := inspect.NewInspector(opts); err != nil {
		fmt.Fprintln(stderr, "analyzer:", err)
		return cli.ExitUsage
	}
	if *debugAddr != "" {
		dctx, stopDiag := context.WithCancel(context.Background())
		defer stopDiag()
		if _, err := diag.Serve(dctx, *debugAddr, log); err != nil {
			log.Error("debug endpoint", "err", err)
			return cli.ExitFailure
		}
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			log.Error("open output", "err", err)
			return cli.ExitFailure
		}
		defer f.Close()
		w = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *metrics != "" {
		cfg.Metrics = inspect.NewMetrics(*ring)
		if _, err := diag.ServeMetrics(ctx, *metrics, log, cfg.Metrics.Collectors()...); err != nil {
			log.Error("metrics", "err", err)
			return cli.ExitFailure
		}
	}
	if *publish {
		path, ringName := results.Path(*ring, *name), *ring
		if *socket != "" {
			path, ringName = results.PathForSocket(*socket, *name), *socket
		}
		srv, err := results.Listen(path, results.Hello{Ring: ringName, Analyzer: *name}, 0, log)
		if err != nil {
			log.Error("results stream", "err", err)
			return 1
		}
		defer srv.Close()
		log.Info("results stream", "socket", path)
		cfg.Results = srv
	}
	if _, err := inspect.Run(ctx, cfg, w, log); err != nil {
		log.Error("analyzer stopped", "err", err)
		return cli.ExitFailure
	}
	if f, ok := w.(*os.File); ok && *out != "" {
		// fsync a file; /dev/null, a pipe or a terminal cannot be fsynced.
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if err := f.Sync(); err != nil {
				log.Error("sync output", "err", err)
				return cli.ExitFailure
			}
		}
	}
	return cli.ExitOK
}
