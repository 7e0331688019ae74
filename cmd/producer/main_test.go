package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/native"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ringbuf"
)

const roleEnv = "FRAMERING_CMD_PRODUCER_ROLE"

const hangGuard = 60 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "main" {
		// The child: the command itself, with its arguments after "--".
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	dir, err := os.MkdirTemp("", "framering-cmd-producer-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("FRAMERING_RUNTIME_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var seq atomic.Int64

func ringName() string { return fmt.Sprintf("c%d-%d", os.Getpid(), seq.Add(1)) }

func TestFlagsToConfig(t *testing.T) {
	o, err := parseFlags([]string{
		"-ring", "cam0", "-slots", "4", "-socket-mode", "0600", "-allow-uid", "1000,1001", "-allow-uid", "7",
		"-allow-gid", "44", "-evict-after", "3s", "-huge-pages", "-prefault", "-source", "synthetic",
		"-width", "640", "-height", "480", "-stride", "2048", "-format", "Mono16", "-fps", "0", "-defects",
		"-copy", "-queue", "3", "-stats-interval", "0", "-duration", "1m", "-log-format", "json", "-json",
		"-log-level", "debug", "-exit-watch",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	want := frame.Geometry{Width: 640, Height: 480, Stride: 2048, Format: frame.Mono16}
	if c.Name != "cam0" || c.Slots != 4 || c.SocketMode != 0o600 || fmt.Sprint(c.AllowUIDs) != "[1000 1001 7]" ||
		fmt.Sprint(c.AllowGIDs) != "[44]" || c.EvictAfter != 3*time.Second || !c.HugePages || !c.Prefault ||
		c.Source != "synthetic" || c.Geometry != want || c.FrameRate != producer.FreeRun || !c.Defects ||
		!c.Copy || c.QueueDepth != 3 || c.StatsInterval >= 0 || o.duration != time.Minute ||
		o.logFormat != "json" || !o.json || o.logLevel != slog.LevelDebug || !c.ExitWatch {
		t.Fatalf("parsed %+v", o)
	}
	o, err = parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// One rule in every binary: synthetic, which every build has.
	if o.cfg.Source != native.KindSynthetic || o.cfg.FrameRate != producer.DefaultFrameRate || o.cfg.Geometry.Format != frame.Mono8 || o.duration != 0 {
		t.Fatalf("defaults %+v", o)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-format", "Bayer"}, {"-fps", "-1"}, {"-slots", "0"}, {"-socket-mode", "999"}, {"-log-format", "xml"},
		{"-allow-uid", "bob"}, {"-nosuchflag"}, {"extra"}, {"-duration", "-1s"}, {"-source", "v4l2"},
		{"-width", "8", "-height", "2"}, {"-ring", "bad/name"}, {"-ring", ""}, {"-width", "0"}, {"-height", "70000"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, code, exitUsage, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("%q: printed a summary %q", args, out.String())
		}
	}
	var out bytes.Buffer
	if code := run([]string{"-h"}, &out, io.Discard); code != exitOK {
		t.Errorf("-h: exit %d", code)
	}
}

// -duration ends the run; the summary line accounts for every frame.
func TestRunForDuration(t *testing.T) {
	for _, cp := range []string{"-copy=false", "-copy=true"} {
		var out, errb bytes.Buffer
		code := run([]string{"-ring", ringName(), "-source", "synthetic", "-width", "64", "-height", "64",
			"-fps", "500", "-duration", "300ms", "-json", "-stats-interval", "50ms", "-log-format", "json", cp}, &out, &errb)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", cp, code, errb.String())
		}
		var st producer.Stats
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatalf("summary %q: %v", out.String(), err)
		}
		if st.Frames != st.Accounted() || st.Source != "synthetic" {
			t.Fatalf("summary %+v", st)
		}
		if !strings.Contains(errb.String(), `"msg":"producer stopped"`) {
			t.Fatalf("logs lack the stop line: %s", errb.String())
		}
	}
	var out bytes.Buffer
	if code := run([]string{"-ring", ringName(), "-source", "synthetic", "-width", "64", "-height", "64",
		"-duration", "50ms"}, &out, io.Discard); code != exitOK || !strings.HasPrefix(out.String(), "ring=") {
		t.Fatalf("text summary: exit %d, %q", code, out.String())
	}
}

// The command as a process: it serves its ring until SIGTERM, exits 0 with
// a summary; a second one on the same live name fails with exit 1.
func TestSignalStopsCleanly(t *testing.T) {
	name := ringName()
	args := []string{"-ring", name, "-width", "320", "-height", "240", "-fps", "200", "-defects", "-json"}
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), roleEnv+"=main")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "producer ready") {
				close(ready)
				once = true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(hangGuard):
		t.Fatal("the producer never became ready")
	}

	// A consumer verifies frames from the running command.
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{Name: name, Consumer: "cmd-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 10; i++ {
		l, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := frame.Verify(l.Bytes()); err != nil {
			t.Fatal(err)
		}
		l.Release()
	}

	var errb bytes.Buffer
	if code := run(append([]string{"-duration", "1s"}, args...), io.Discard, &errb); code != exitFail {
		t.Fatalf("second producer on a live ring: exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(errb.String(), "ring already exists") {
		t.Errorf("second producer's log: %s", errb.String())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	var st producer.Stats
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		t.Fatalf("summary %q: %v", stdout.String(), err)
	}
	if st.Published < 10 || st.Frames != st.Accounted() {
		t.Fatalf("summary %+v", st)
	}
}
