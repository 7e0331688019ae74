// Command frbench measures framering and its alternatives on this machine
// and prints the results as markdown, with a JSON copy and a latency plot
// in the output directory.
//
// Usage:
//
//	frbench [-quick] [-out DIR] [-only SECTIONS] [-payloads SIZES] [-waits WAITS] [-no-gst] [-no-ebpf] [-hugepages] [-quiet DURATION] [-v]
//
// -compare OLD (a results.json, or the directory holding one) prints, after
// the run, each metric both runs have with its ratio new/old, and appends
// that table to the new results.md.
//
// It re-executes itself for every process of every scenario (the
// FRBENCH_ROLE environment variable selects the child's role). Exit status
// (package internal/cli): 0, 1 when the bench failed, 2 for a usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/framering/framering/bench"
	"github.com/framering/framering/internal/cli"
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
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// help is frbench's -h text around its flags.
var help = cli.Help{
	Usage: "frbench [flags]   (bench/run.sh builds it and runs it)",
	About: `Measures framering and its alternatives on this machine: handoff latency,
throughput against a Unix socket, a pipe and GStreamer's shmsink, memory
bandwidth limits, and the targets. Prints markdown; results.md, results.json
and latency.png go to -out.`,
	More: cli.ExitStatus,
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("frbench", help)
	quick := fs.Bool("quick", false, "smoke check: under a minute on a 2-core machine")
	out := fs.String("out", "", "output `directory` (none: ./bench-results/<timestamp>)")
	only := fs.String("only", "", "comma-separated `sections` to run (none: all): "+strings.Join(bench.AllSections, ","))
	noGst := fs.Bool("no-gst", false, "skip the GStreamer baseline")
	plugin := fs.String("framesrc-plugin", "", "`directory` holding libgstframering.so (clients/gstreamer: make): adds framesrc runs to the GStreamer rows")
	noEBPF := fs.Bool("no-ebpf", false, "skip the eBPF split of the futex wake-up")
	huge := fs.Bool("hugepages", false, "back ring data segments with huge pages when possible")
	verbose := fs.Bool("v", false, "debug logs (children too)")
	quiet := fs.Duration("quiet", 0, "wait up to this `duration` before each scenario for the machine to go quiet (fewer than 0.25 cores busy)")
	payloads := fs.String("payloads", "", "comma-separated payload `sizes` of the latency rows (e.g. 4KiB,8MiB; none: 4KiB,64KiB,1MiB,8MiB,32MiB)")
	waits := fs.String("waits", "", "comma-separated consumer `waits` of the latency rows (none: "+strings.Join(bench.FullConfig().LatencyWaits, ",")+")")
	compare := fs.String("compare", "", "after the run, print each metric's ratio new/old against this earlier `results.json` (or its directory)")
	if err := fs.Parse(args, stdout); err != nil {
		return cli.Exit(stderr, "frbench", err)
	}
	var old *bench.Report
	if *compare != "" {
		// Read before the run: a bad path fails at once, not minutes later.
		var err error
		if old, err = bench.LoadReport(*compare); err != nil {
			return cli.Exit(stderr, "frbench", cli.Usagef("-compare: %v", err))
		}
	}
	if *quiet < 0 {
		return cli.Exit(stderr, "frbench", cli.Usagef("-quiet %v: want 0 or more", *quiet))
	}
	var sizes []int
	if *payloads != "" {
		for _, s := range strings.Split(*payloads, ",") {
			n, err := parsePayload(s)
			if err != nil {
				return cli.Exit(stderr, "frbench", cli.Usagef("-payloads: %v", err))
			}
			sizes = append(sizes, n)
		}
	}
	var waitList []string
	if *waits != "" {
		waitList = strings.Split(*waits, ",")
		for _, w := range waitList {
			if !slices.Contains(bench.FullConfig().LatencyWaits, w) {
				return cli.Exit(stderr, "frbench", cli.Usagef("-waits: unknown wait %q (want some of %s)", w, strings.Join(bench.FullConfig().LatencyWaits, ",")))
			}
		}
	}
	if *only != "" {
		for _, s := range strings.Split(*only, ",") {
			if !slices.Contains(bench.AllSections, s) {
				return cli.Exit(stderr, "frbench", cli.Usagef("-only: unknown section %q (want some of %s)", s, strings.Join(bench.AllSections, ",")))
			}
		}
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	cfg := bench.FullConfig()
	if *quick {
		cfg = bench.QuickConfig()
	}
	exe, err := os.Executable()
	if err != nil {
		log.Error("cannot find this executable", "err", err)
		return cli.ExitFailure
	}
	cfg.Exe, cfg.OutDir, cfg.HugePages, cfg.Log, cfg.Out = exe, *out, *huge, log, stdout
	cfg.QuietWait = *quiet
	if sizes != nil {
		cfg.Payloads = sizes
	}
	if waitList != nil {
		cfg.LatencyWaits = waitList
	}
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
	if rep != nil && old != nil {
		md := bench.CompareMarkdown(*compare, bench.Compare(old, rep))
		fmt.Fprint(stdout, "\n"+md)
		f, ferr := os.OpenFile(filepath.Join(rep.Config.OutDir, "results.md"), os.O_APPEND|os.O_WRONLY, 0)
		if ferr == nil {
			_, ferr = f.WriteString("\n" + md)
			ferr = errors.Join(ferr, f.Close())
		}
		if ferr != nil {
			log.Error("cannot append the comparison to results.md", "err", ferr)
		}
	}
	if rep != nil {
		fmt.Fprintf(stderr, "\nresults: %s/results.md, results.json, latency.png\n", rep.Config.OutDir)
	}
	if err != nil {
		log.Error("bench failed", "err", err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// parsePayload parses a payload size: bytes, or a number with KiB or MiB.
func parsePayload(s string) (int, error) {
	mult := 1
	num := strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", bench.KiB}, {"MiB", bench.MiB}} {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSuffix(num, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > 1<<30/mult || n*mult%64 != 0 {
		return 0, fmt.Errorf("%q: want a multiple of 64 bytes, as bytes or with KiB or MiB (up to 1 GiB)", s)
	}
	return n * mult, nil
}
