package cli_test

// The commands as a newcomer meets them: every binary is built and run
// with -h, help, no arguments and bad flag values; each help text names
// its subcommands and, for every flag of every flag set, a one-line
// description with its default (the help is printed from the flag set
// itself, so a flag added without a description fails here).

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/internal/cli"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds every command once (go build ./cmd/... and the bench's
// frbench) into a
// directory shared by the tests of this binary.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "framering-cli-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/...", "./bench/cmd/frbench")
		cmd.Dir = moduleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build ./cmd/...: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = filepath.Dir(dir)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs a built command with a private runtime directory, bounded by a
// hang guard.
func run(t *testing.T, runtime string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), name), args...)
	cmd.Env = append(os.Environ(), "FRAMERING_RUNTIME_DIR="+runtime)
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute): // hang guard, not a timing assertion
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q did not end", name, args)
	}
	return result{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

// checkFlags checks a help text's flag list: at least one flag, each with
// a description and its default, a true boolean saying how to turn it
// off, no generic placeholder.
func checkFlags(t *testing.T, what, help string) {
	t.Helper()
	lines := strings.Split(help, "\n")
	n := 0
	for i, l := range lines {
		if !strings.HasPrefix(l, "  -") {
			continue
		}
		n++
		head := strings.Fields(l)
		desc := ""
		if i+1 < len(lines) {
			desc = strings.TrimSpace(lines[i+1])
		}
		body, def, ok := strings.Cut(desc, "(default")
		switch {
		case !ok || strings.TrimSpace(body) == "":
			t.Errorf("%s: flag %s has no description with its default: %q", what, head[0], desc)
		case len(head) > 1 && head[1] == "value":
			t.Errorf("%s: flag %s has the placeholder %q: name it in its description with backquotes", what, head[0], head[1])
		case strings.HasPrefix(def, " true") && !strings.Contains(def, head[0]+"=false"):
			t.Errorf("%s: flag %s defaults to true and does not say how to turn it off: %q", what, head[0], desc)
		}
	}
	if n == 0 {
		t.Errorf("%s: no flags listed:\n%s", what, help)
	}
}

var multi = map[string][]string{
	"archiver": {"run", "verify", "export", "bench"},
	"ringctl":  {"list", "show", "watch", "serve"},
}

func TestHelpOfEveryCommand(t *testing.T) {
	rt := t.TempDir()
	for _, name := range []string{"producer", "analyzer", "pipeline", "frbench"} {
		r := run(t, rt, name, "-h")
		if r.code != cli.ExitOK || !strings.HasPrefix(r.stdout, "usage: "+name) || !strings.Contains(r.stdout, "Exit status:") {
			t.Errorf("%s -h: exit %d, stdout:\n%s\nstderr:\n%s", name, r.code, r.stdout, r.stderr)
		}
		checkFlags(t, name+" -h", r.stdout)
	}
	for name, subs := range multi {
		for _, args := range [][]string{{"-h"}, {"help"}, {"--help"}, {}} {
			r := run(t, rt, name, args...)
			text, want := r.stdout, cli.ExitOK
			if len(args) == 0 {
				text, want = r.stderr, cli.ExitUsage // no command: a usage error, the list on stderr
			}
			if r.code != want || !strings.HasPrefix(text, "usage: "+name+" COMMAND") {
				t.Errorf("%s %q: exit %d, want %d; stdout:\n%s\nstderr:\n%s", name, args, r.code, want, r.stdout, r.stderr)
			}
			for _, sub := range subs {
				if !strings.Contains(text, "\n  "+sub+" ") {
					t.Errorf("%s %q: the help does not name %q:\n%s", name, args, sub, text)
				}
			}
		}
		for _, sub := range subs {
			for _, args := range [][]string{{sub, "-h"}, {"help", sub}} {
				r := run(t, rt, name, args...)
				if r.code != cli.ExitOK || !strings.HasPrefix(r.stdout, "usage: "+name+" "+sub) {
					t.Errorf("%s %q: exit %d, stdout:\n%s\nstderr:\n%s", name, args, r.code, r.stdout, r.stderr)
				}
				checkFlags(t, name+" "+sub+" -h", r.stdout)
			}
		}
		if r := run(t, rt, name, "nosuchcommand"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "nosuchcommand") {
			t.Errorf("%s nosuchcommand: exit %d, stderr %q", name, r.code, r.stderr)
		}
	}
}

// A bad flag value, an invalid ring name or an impossible range is a usage
// error (exit 2) whose message names what was wrong, before anything is
// created or printed on stdout.
func TestUsageErrorsExit2(t *testing.T) {
	rt := t.TempDir()
	dir := filepath.Join(t.TempDir(), "archive")
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"producer", "-fps", "fast"}, "-fps"},
		{[]string{"producer", "-nosuchflag"}, "nosuchflag"},
		{[]string{"producer", "-ring", ""}, `-ring ""`},
		{[]string{"producer", "-ring", "a/b"}, `-ring "a/b"`},
		{[]string{"producer", "-format", "Mono9"}, "Mono8, Mono10"},
		{[]string{"producer", "-width", "0"}, "65536"},
		{[]string{"producer", "-log-format", "xml"}, "text or json"},
		{[]string{"analyzer", "-frames", "many"}, "-frames"},
		{[]string{"analyzer", "-ring", ""}, `-ring ""`},
		{[]string{"analyzer", "-threshold-bright", "300"}, "0-255"},
		{[]string{"analyzer", "stray"}, "stray"},
		{[]string{"pipeline", "-duration", "long"}, "-duration"},
		{[]string{"pipeline", "-format", "Mono9"}, "Mono8, Mono10"},
		{[]string{"pipeline", "-width", "70000"}, "65536"},
		{[]string{"pipeline", "-ring", ""}, `-ring ""`},
		{[]string{"pipeline", "-source", "webcam"}, "synthetic, sdk or aravis"},
		{[]string{"ringctl", "show", "-window", "soon"}, "-window"},
		{[]string{"ringctl", "show", "-ring", ""}, `-ring ""`},
		{[]string{"ringctl", "watch", "-interval", "0s"}, "-interval"},
		{[]string{"ringctl", "serve", "-log-format", "xml"}, "text or json"},
		{[]string{"archiver", "run", "-duration", "long", "-dir", dir}, "-duration"},
		{[]string{"archiver", "-ring", "", "-dir", dir}, `-ring ""`},
		{[]string{"archiver", "run", "-ring", "a/b", "-dir", dir}, `-ring "a/b"`},
		{[]string{"archiver", "run"}, "-dir"},
		{[]string{"archiver", "verify", "-nosuchflag"}, "nosuchflag"},
		{[]string{"archiver", "export", "-dir", dir, "-out", dir + "-png", "-from", "20", "-to", "10"}, "-from 20"},
		{[]string{"archiver", "export", "-dir", dir, "-out", dir + "-png", "-format", "gif"}, "png or tiff"},
		{[]string{"archiver", "bench", "-dir", dir, "-format", "Mono9"}, "Mono8, Mono10"},
		{[]string{"frbench", "-only", "latency,nosuchsection"}, "nosuchsection"},
		{[]string{"frbench", "-quiet", "-1s"}, "-quiet"},
	} {
		r := run(t, rt, tc.args[0], tc.args[1:]...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.says) || r.stdout != "" {
			t.Errorf("%q: exit %d (want 2), stderr %q (want it to say %q), stdout %q", tc.args, r.code, r.stderr, tc.says, r.stdout)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a usage error created %s (%v)", dir, err)
	}
}

// Runtime failures exit 1 and say what failed, without creating outputs
// for a ring that is not there; a wait that ends without a ring reports
// the time it waited.
func TestRuntimeFailuresAndEmptyRuns(t *testing.T) {
	rt := t.TempDir()
	dir := filepath.Join(t.TempDir(), "archive")
	r := run(t, rt, "archiver", "run", "-ring", "nosuchring", "-dir", dir, "-wait=false")
	if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "no such ring") {
		t.Errorf("archiver on a missing ring: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the archiver created %s for a ring that does not exist (%v)", dir, err)
	}
	// A socket left by a producer that died (nobody listens on it): the
	// same, nothing created.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	r = run(t, rt, "archiver", "run", "-socket", stale, "-dir", dir, "-wait=false")
	if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "producer gone") {
		t.Errorf("archiver on a stale socket: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the archiver created %s for a ring nobody serves (%v)", dir, err)
	}
	if r := run(t, rt, "ringctl", "show", "-ring", "nosuchring"); r.code != cli.ExitFailure || !strings.Contains(r.stderr, "no such ring") {
		t.Errorf("ringctl show of a missing ring: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(t, rt, "analyzer", "-ring", "nosuchring", "-wait=false"); r.code != cli.ExitFailure || !strings.Contains(r.stderr, "no such ring") {
		t.Errorf("analyzer on a missing ring: exit %d, stderr %q", r.code, r.stderr)
	}
	// Waiting for a ring that never comes, until -duration: a clean, empty
	// run whose elapsed time is the wait.
	r = run(t, rt, "analyzer", "-ring", "nosuchring", "-duration", "300ms")
	var line struct {
		Summary struct {
			Frames    uint64 `json:"frames"`
			ElapsedNs int64  `json:"elapsed_ns"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &line); err != nil || r.code != cli.ExitOK {
		t.Fatalf("analyzer waiting: exit %d, stdout %q: %v", r.code, r.stdout, err)
	}
	if line.Summary.Frames != 0 || line.Summary.ElapsedNs < int64(300*time.Millisecond) {
		t.Errorf("analyzer that waited 300ms for a ring reports %d frames in %v", line.Summary.Frames, time.Duration(line.Summary.ElapsedNs))
	}
}

// JSON logs name values the way text logs do: a consumer's mode is
// "lossy", a duration "1.5s", never 1 or nanoseconds.
func TestJSONLogsNameThings(t *testing.T) {
	rt := t.TempDir()
	prod := exec.Command(filepath.Join(binaries(t), "producer"), "-ring", "jsonlogs", "-width", "64", "-height", "64",
		"-fps", "200", "-duration", "1m", "-log-format", "json", "-stats-interval", "0")
	prod.Env = append(os.Environ(), "FRAMERING_RUNTIME_DIR="+rt)
	var perr, pout bytes.Buffer
	prod.Stderr, prod.Stdout = &perr, &pout
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	defer prod.Process.Kill()
	r := run(t, rt, "analyzer", "-ring", "jsonlogs", "-frames", "20", "-log-format", "json")
	if r.code != cli.ExitOK {
		t.Fatalf("analyzer: exit %d: %s", r.code, r.stderr)
	}
	if err := prod.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := prod.Wait(); err != nil {
		t.Fatalf("producer: %v: %s", err, perr.String())
	}
	logs := perr.String()
	if !strings.Contains(logs, `"msg":"consumer attached"`) || !strings.Contains(logs, `"mode":"lossy"`) {
		t.Errorf("the producer's JSON log does not name the consumer's mode:\n%s", logs)
	}
	if !strings.Contains(logs, `"elapsed":"`) {
		t.Errorf("the producer's JSON log gives its elapsed time not as a duration string:\n%s", logs)
	}
}
