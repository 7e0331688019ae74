// Command frbench measures framering and its alternatives on this machine
// and prints the results as markdown, with a JSON copy and a latency plot
// in the output directory.
//
// Usage:
//
//	frbench [-quick] [-out DIR] [-only SECTIONS] [-no-gst] [-no-ebpf] [-hugepages] [-quiet DURATION] [-v]
//
// It re-executes itself for every process of every scenario (the
// FRBENCH_ROLE environment variable selects the child's role).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/framering/framering/bench"
)

func main() {
	if bench.IsChild() {
		// stdin is a pipe from the harness: EOF means it is gone, and a
		// child must not outlive it (busy-polling forever).
		go func() {
			io.Copy(io.Discard, os.Stdin)
			os.Exit(2)
		}()
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		if err := bench.RunChild(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(run())
}

func run() int {
	quick := flag.Bool("quick", false, "smoke check: under a minute on a 2-core machine")
	out := flag.String("out", "", "output directory (default ./bench-results/<timestamp>)")
	only := flag.String("only", "", "comma-separated sections to run: "+strings.Join(bench.AllSections, ","))
	noGst := flag.Bool("no-gst", false, "skip the GStreamer baseline")
	plugin := flag.String("framesrc-plugin", "", "directory holding libgstframering.so (clients/gstreamer: make): adds framesrc runs to the GStreamer rows")
	noEBPF := flag.Bool("no-ebpf", false, "skip the eBPF split of the futex wake-up")
	huge := flag.Bool("hugepages", false, "back ring data segments with huge pages when possible")
	verbose := flag.Bool("v", false, "debug logs (children too)")
	quiet := flag.Duration("quiet", 0, "wait up to this long before each scenario for the machine to go quiet (fewer than 0.25 cores busy)")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	cfg := bench.FullConfig()
	if *quick {
		cfg = bench.QuickConfig()
	}
	exe, err := os.Executable()
	if err != nil {
		log.Error("cannot find this executable", "err", err)
		return 1
	}
	cfg.Exe, cfg.OutDir, cfg.HugePages, cfg.Log, cfg.Out = exe, *out, *huge, log, os.Stdout
	cfg.QuietWait = *quiet
	cfg.FramesrcPlugin = *plugin
	if *verbose {
		cfg.ChildLogLevel = "debug"
	}
	if *only != "" {
		cfg.Sections = strings.Split(*only, ",")
	}
	for _, skip := range []struct {
		on   bool
		name string
	}{{*noGst, bench.SectionGStreamer}, {*noEBPF, bench.SectionEBPF}} {
		if !skip.on {
			continue
		}
		if len(cfg.Sections) == 0 {
			cfg.Sections = slices.Clone(bench.AllSections)
		}
		cfg.Sections = slices.DeleteFunc(cfg.Sections, func(s string) bool { return s == skip.name })
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		fmt.Fprintf(os.Stderr, "\nresults: %s/results.md, results.json, latency.png\n", rep.Config.OutDir)
	}
	if err != nil {
		log.Error("bench failed", "err", err)
		return 1
	}
	return 0
}
