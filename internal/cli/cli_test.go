package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/internal/cli"
	"github.com/framering/framering/ringbuf"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, cli.ExitOK},
		{flag.ErrHelp, cli.ExitOK},
		{cli.Usagef("-x %d", 1), cli.ExitUsage},
		{fmt.Errorf("run: %w", cli.Usagef("bad")), cli.ExitUsage},
		{fmt.Errorf("verify: %w", cli.ErrCheck), cli.ExitCheck},
		{errors.New("disk on fire"), cli.ExitFailure},
	} {
		if got := cli.ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if msg := cli.Usagef("-from %d after -to %d", 20, 10).Error(); msg != "-from 20 after -to 10" {
		t.Errorf("a usage error reads %q: the message alone, please", msg)
	}
}

// Every flag is printed with its default; a boolean that defaults to true
// says how to turn it off; -h goes to stdout and is not an error; a bad
// value is a usage error naming where the help is.
func TestFlagSetHelpAndErrors(t *testing.T) {
	fs := cli.NewFlagSet("demo", cli.Help{Usage: "demo [flags]", About: "Does a demo.", More: cli.ExitStatus})
	fs.Bool("wait", true, "wait for it")
	fs.Bool("copy", false, "copy it")
	fs.String("out", "", "write to `file` (none: stdout)")
	fs.String("ring", "default", "ring `name`")
	fs.Duration("duration", 3*time.Second, "run this long")
	var out bytes.Buffer
	if err := fs.Parse([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) || cli.ExitCode(err) != cli.ExitOK {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{
		"usage: demo [flags]", "Does a demo.", "Exit status:",
		"  -wait\n    \twait for it (default true; -wait=false turns it off)\n",
		"  -copy\n    \tcopy it (default false)\n",
		"  -out file\n    \twrite to file (none: stdout) (default: none)\n",
		"  -ring name\n    \tring name (default \"default\")\n",
		"  -duration duration\n    \trun this long (default 3s)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	fs = cli.NewFlagSet("demo", cli.Help{Usage: "demo"})
	fs.Int("n", 0, "how many")
	err := fs.Parse([]string{"-n", "many"}, &out)
	if cli.ExitCode(err) != cli.ExitUsage || !strings.Contains(err.Error(), "run 'demo -h'") {
		t.Errorf("bad value: %v (exit %d)", err, cli.ExitCode(err))
	}
	if err := fs.Parse([]string{"stray"}, &out); cli.ExitCode(err) != cli.ExitUsage {
		t.Errorf("stray argument: %v", err)
	}
}

func TestCheckRing(t *testing.T) {
	for _, tc := range []struct {
		name, socket string
		ok           bool
	}{
		{"cam0", "", true}, {"", "/tmp/x.sock", true}, {"", "", false}, {"a/b", "", false}, {"-x", "", false},
	} {
		err := cli.CheckRing(tc.name, tc.socket)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, cli.ErrUsage)) {
			t.Errorf("CheckRing(%q, %q) = %v", tc.name, tc.socket, err)
		}
	}
}

// JSON logs name things the way text logs do.
func TestJSONLogsReadLikeText(t *testing.T) {
	var b bytes.Buffer
	log, err := cli.NewLogger(&b, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("attached", "mode", ringbuf.Lossy, "elapsed", 1500*time.Millisecond, "err", errors.New("boom"), "n", 3)
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["mode"] != "lossy" || m["elapsed"] != "1.5s" || m["err"] != "boom" || m["n"] != float64(3) {
		t.Errorf("JSON log line %s", b.String())
	}
	for _, bad := range [][2]string{{"xml", "info"}, {"text", "loud"}} {
		if _, err := cli.NewLogger(&b, bad[0], bad[1]); cli.ExitCode(err) != cli.ExitUsage {
			t.Errorf("NewLogger(%q, %q): %v", bad[0], bad[1], err)
		}
	}
}
