package testmain

import (
	"bytes"
	"flag"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// netnsEnv marks a test process re-executed inside a private network
// namespace by PrivateNetwork.
const netnsEnv = "FRAMERING_TEST_NETNS"

// InPrivateNetwork reports whether this process runs in the private
// network namespace PrivateNetwork made.
func InPrivateNetwork() bool { return os.Getenv(netnsEnv) != "" }

// PrivateNetwork runs the calling top-level test (or benchmark) in a
// private network namespace of its own, so that anything it does on the
// network (an Aravis camera simulator on loopback, GigE Vision discovery
// broadcasts) never leaves it: the namespace has only a loopback
// interface.
//
// Called outside such a namespace, it re-executes the test binary under
// `unshare --net` (with --map-root-user when not root) running only this
// test (and the subtests the -run pattern selects), reports the child's
// output, fails if the child failed, and returns false: the caller
// returns at once (a benchmark is skipped in the parent, and its results
// are the child's lines, printed as they are). Inside, it brings lo up and
// returns true: the test goes on. Every process the test starts inherits
// the namespace.
//
//	func TestCamera(t *testing.T) {
//		if !testmain.PrivateNetwork(t) {
//			return
//		}
//		...
//	}
func PrivateNetwork(tb testing.TB) bool {
	tb.Helper()
	if InPrivateNetwork() {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			tb.Fatalf("bring lo up in the private network namespace: %v\n%s", err, out)
		}
		return true
	}
	top, _, _ := strings.Cut(tb.Name(), "/")
	exe, err := os.Executable()
	if err != nil {
		tb.Fatalf("find the test binary: %v", err)
	}
	args := []string{"--net"}
	if os.Geteuid() != 0 {
		args = append(args, "--map-root-user")
	}
	args = append(args, "--", exe, "-test.count=1")
	_, bench := tb.(*testing.B)
	if bench {
		pattern := "^" + regexp.QuoteMeta(top) + "$"
		if f := flag.Lookup("test.bench"); f != nil {
			if _, sub, ok := strings.Cut(f.Value.String(), "/"); ok {
				pattern += "/" + sub
			}
		}
		args = append(args, "-test.run=^$", "-test.bench="+pattern)
		for _, name := range []string{"test.benchtime", "test.benchmem", "test.cpu", "test.timeout"} {
			if f := flag.Lookup(name); f != nil {
				args = append(args, "-"+name+"="+f.Value.String())
			}
		}
	} else {
		pattern := "^" + regexp.QuoteMeta(top) + "$"
		if f := flag.Lookup("test.run"); f != nil {
			if _, sub, ok := strings.Cut(f.Value.String(), "/"); ok {
				pattern += "/" + sub
			}
		}
		args = append(args, "-test.run="+pattern)
		if t, ok := tb.(*testing.T); ok {
			if dl, ok := t.Deadline(); ok {
				args = append(args, "-test.timeout="+time.Until(dl).Round(time.Second).String())
			}
		}
	}
	if testing.Verbose() {
		args = append(args, "-test.v=true")
	}
	if testing.Short() {
		args = append(args, "-test.short=true")
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	var out bytes.Buffer
	var w io.Writer = &out
	if bench {
		w = io.MultiWriter(&out, os.Stdout)
	}
	cmd.Stdout, cmd.Stderr = w, w // one writer: exec calls it from one goroutine
	err = cmd.Run()
	if err != nil {
		tb.Fatalf("%s in a private network namespace: %v\n%s", top, err, out.String())
	}
	if bytes.Contains(out.Bytes(), []byte("no tests to run")) {
		tb.Fatalf("%s in a private network namespace ran no test:\n%s", top, out.String())
	}
	if bench {
		tb.Skip("ran in a private network namespace (unshare --net): the results are the lines above")
	}
	tb.Logf("ran in a private network namespace (unshare --net):\n%s", out.String())
	return false
}
