// Command ringctl shows the state of framering rings. It attaches to a
// ring as an observer: it takes no consumer table entry and no holds, and
// writes nothing to the ring.
//
// Usage:
//
//	ringctl list  [-json]
//	ringctl show  [-ring NAME | -socket PATH] [-json] [-window 200ms]
//	ringctl watch [-ring NAME | -socket PATH] [-json] [-interval 1s]
//	ringctl serve [-listen localhost:9464] [-interval 1s] [-history 5m]
//
// list prints every ring in the runtime directory ($FRAMERING_RUNTIME_DIR,
// see ringbuf.RuntimeDir), live or stale (a socket left by a producer that
// died). show prints one ring: its producer (pid, epoch, state, publish
// rate over -window, uptime, heartbeat age), its slots (free, writing,
// published, held, and by which consumers), its consumers (mode, state,
// lag, counters, holds, latency), drops by cause, evictions and reclaims.
// watch repeats show every -interval until SIGINT; with -json it prints
// one JSON object per line. serve runs an HTTP server for every ring on
// the host: Prometheus metrics at /metrics and a live web view at /
// (package cmd/ringctl/internal/serve); it binds to localhost unless
// -listen names another host, and stops on SIGINT or SIGTERM.
//
// Exit status (package internal/cli): 0, 1 when the ring cannot be
// observed, 2 for a usage error (a bad flag, an invalid ring name).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/framering/framering/cmd/ringctl/internal/serve"
	"github.com/framering/framering/internal/cli"
	"github.com/framering/framering/ringbuf"
	"github.com/framering/framering/ringstat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// ringctl is the command's subcommands, for its help.
var ringctl = cli.Multi{Prog: "ringctl", About: `Shows the state of framering rings. It attaches as an observer: no consumer
table entry, no holds, nothing written to the ring.`, Commands: []cli.Command{
	{Name: "list", Summary: "list the rings on this host, live or stale"},
	{Name: "show", Summary: "show one ring: producer, rate, slots and their holders, consumers, drops by cause"},
	{Name: "watch", Summary: "show one ring again every -interval until Ctrl-C"},
	{Name: "serve", Summary: "serve Prometheus metrics and a live web view of every ring on the host"},
	{Name: "help", Summary: "this list, or 'ringctl help COMMAND' for a command's flags"},
}}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	args, code, done := ringctl.Start(args, stdout, stderr)
	if done {
		return code
	}
	cmd, args := args[0], args[1:]
	fs := ringctl.FlagSet(cmd, "[flags]")
	var asJSON *bool
	if cmd != "serve" {
		asJSON = fs.Bool("json", false, "print JSON")
	}
	var logFmt *string
	var t ringstat.Target
	var window, interval *time.Duration
	var scfg serve.Config
	var overlay *bool
	switch cmd {
	case "serve":
		fs.StringVar(&scfg.Listen, "listen", serve.DefaultListen, "`address` to serve metrics and the web view on (\":PORT\" is localhost:PORT; 0.0.0.0:PORT exposes it)")
		fs.DurationVar(&scfg.Interval, "interval", time.Second, "how often to look for rings and record the history")
		fs.DurationVar(&scfg.History, "history", 5*time.Minute, "how much history the sparklines show")
		fs.IntVar(&scfg.MaxSide, "max-side", 640, "largest side of a frame picture, in `pixels`")
		logFmt = fs.String("log-format", "text", "log `format` on stderr: "+cli.LogFormats)
		overlay = fs.Bool("overlay", true, "draw the defects of the analyzers' live results streams (analyzer -results) on the frames")
	case "list":
	case "show", "watch":
		fs.StringVar(&t.Ring, "ring", "default", "ring `name`")
		fs.StringVar(&t.Socket, "socket", "", "ring socket `path` (overrides -ring)")
		if cmd == "show" {
			window = fs.Duration("window", 200*time.Millisecond, "time between the two snapshots rates come from")
		} else {
			interval = fs.Duration("interval", time.Second, "refresh interval")
		}
	default:
		return ringctl.Unknown(stderr, cmd)
	}
	if err := fs.Parse(args, stdout); err != nil {
		return cli.Exit(stderr, "ringctl", err)
	}
	if cmd == "show" || cmd == "watch" {
		if err := cli.CheckRing(t.Ring, t.Socket); err != nil {
			return cli.Exit(stderr, "ringctl "+cmd, err)
		}
	}
	var err error
	switch cmd {
	case "serve":
		if scfg.Interval <= 0 || scfg.History < scfg.Interval || scfg.MaxSide < 16 {
			fmt.Fprintln(stderr, "ringctl serve: want -interval > 0, -history >= -interval, -max-side >= 16")
			return cli.ExitUsage
		}
		if scfg.Logger, err = cli.NewLogger(stderr, *logFmt, "info"); err != nil {
			return cli.Exit(stderr, "ringctl serve", err)
		}
		if *overlay {
			scfg.Results = serve.NewFeed(ctx, ringbuf.RuntimeDir(), scfg.Logger)
		}
		err = serve.Serve(ctx, scfg, nil)
	case "list":
		var entries []ringstat.Entry
		if entries, err = ringstat.List(ctx); err == nil {
			if *asJSON {
				err = ringstat.WriteJSON(stdout, entries)
			} else {
				err = ringstat.WriteList(stdout, entries)
			}
		}
	case "show":
		var rep *ringstat.Report
		if rep, err = ringstat.Show(ctx, t, *window); err == nil {
			if *asJSON {
				err = ringstat.WriteJSON(stdout, rep)
			} else {
				err = rep.WriteText(stdout)
			}
		}
	case "watch":
		if *interval <= 0 {
			fmt.Fprintln(stderr, "ringctl watch: -interval must be positive")
			return cli.ExitUsage
		}
		err = ringstat.Watch(ctx, t, *interval, stdout, *asJSON)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ringctl %s: %v\n", cmd, err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}
