// Package testmain is the shared TestMain of framering's multi-process
// tests. A test binary doubles as every process a test needs: run with a
// role in its environment, it runs that role instead of the tests (the
// tests re-execute it, in the manner of cilium/ebpf's tests). Run with no
// role, it runs the tests in a private ring runtime directory and fails the
// binary if the tests leaked descriptors that pin shared memory.
package testmain

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// Run is a TestMain body; call it as os.Exit(testmain.Run(m, env, child)).
// With env set in the environment, it calls child with its value and
// returns 0, or 3 if child failed (env "" and a nil child: a test binary
// without roles). Otherwise it points
// FRAMERING_RUNTIME_DIR at a fresh directory, runs the tests, and returns
// 1 if, once the tests passed, more memfds, sockets or anonymous inodes
// (pidfds, epoll sets, eventfds) are open than before them. Logs are
// discarded unless FRAMERING_TEST_LOG is set.
func Run(m *testing.M, env string, child func(role string) error) int {
	if os.Getenv("FRAMERING_TEST_LOG") == "" {
		slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	if role := os.Getenv(env); env != "" && role != "" {
		if err := child(role); err != nil {
			fmt.Fprintln(os.Stderr, "child", role, "failed:", err)
			return 3
		}
		return 0
	}
	dir, err := os.MkdirTemp("", "framering-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Setenv("FRAMERING_RUNTIME_DIR", dir)
	// Start the runtime's netpoller (an epoll set and an eventfd of its
	// own) before counting, so that only descriptors the tests open count.
	if pr, pw, err := os.Pipe(); err == nil {
		pr.Close()
		pw.Close()
	}
	before := OpenFds()
	code := m.Run()
	if code != 0 {
		return code
	}
	// Closing goroutines (a producer's handlers, a reader's watcher) may
	// still be finishing: give them a moment before calling it a leak.
	deadline := time.Now().Add(5 * time.Second)
	for OpenFds() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := OpenFds(); after > before {
		fmt.Fprintf(os.Stderr, "file descriptors leaked: %d open before the tests, %d after\n", before, after)
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			fmt.Fprintln(os.Stderr, "  fd", e.Name(), l)
		}
		return 1
	}
	return 0
}

// OpenFds counts this process's memfds, sockets and anonymous inodes: what
// a ring, a reader or a grabber that was not closed would leak. The
// runtime's own files (cgroup limits, /dev/null) are not counted.
func OpenFds() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if strings.HasPrefix(l, "/memfd:") || strings.HasPrefix(l, "socket:") || strings.HasPrefix(l, "anon_inode:") {
			n++
		}
	}
	return n
}
