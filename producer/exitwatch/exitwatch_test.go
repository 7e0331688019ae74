package exitwatch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/asm"
)

const hangGuard = 60 * time.Second

// newWatcher skips (saying why) when this host cannot run the program:
// not root, no BPF ring buffers, no tracepoint to attach to.
func newWatcher(t *testing.T, attach string) *Watcher {
	t.Helper()
	return newWatcherOpts(t, Options{Attach: attach})
}

func newWatcherOpts(t *testing.T, opts Options) *Watcher {
	t.Helper()
	w, err := New(opts)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("New = %v, want ErrUnavailable on failure", err)
		}
		t.Skipf("kernel exit watch unavailable here (it needs CAP_BPF and CAP_PERFMON, BPF ring buffers, and tracefs for the classic tracepoint): %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// A watched child's exit is reported with its pid; an unwatched one's is
// not (the kernel filters by the watched map).
func TestReportsWatchedExit(t *testing.T) {
	for _, tc := range []struct {
		attach string
		leader bool
	}{{AttachTracepoint, false}, {AttachRaw, false}, {AttachTracepoint, true}, {AttachRaw, true}} {
		attach := tc.attach
		t.Run(fmt.Sprintf("%s/leader=%v", attach, tc.leader), func(t *testing.T) {
			w := newWatcherOpts(t, Options{Attach: attach, leaderOnly: tc.leader})
			if tc.leader && !strings.HasSuffix(w.Mode(), "/leader") {
				t.Fatalf("mode %q, want the leader rule", w.Mode())
			}
			t.Logf("mode %s", w.Mode())
			if !strings.HasPrefix(w.Mode(), map[string]string{AttachTracepoint: "tracepoint/", AttachRaw: "raw_tracepoint/"}[attach]) {
				t.Fatalf("mode %q for attach %q", w.Mode(), attach)
			}
			exits := make(chan Exit, 16)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx, func(e Exit) { exits <- e }) }()

			unwatched := exec.Command("sleep", "0")
			if err := unwatched.Run(); err != nil {
				t.Fatal(err)
			}
			// A watched child, killed with SIGKILL.
			child := exec.Command("sleep", "60")
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			pid := child.Process.Pid
			if err := w.Watch(pid); err != nil {
				t.Fatal(err)
			}
			if err := w.Watch(pid); err != nil {
				t.Fatalf("second Watch: %v", err)
			}
			child.Process.Kill()
			child.Wait()
			select {
			case e := <-exits:
				if e.Pid != pid {
					t.Fatalf("reported %+v, want pid %d (the unwatched child %d must not be reported)", e, pid, unwatched.Process.Pid)
				}
				if e.GroupDead != strings.HasSuffix(w.Mode(), "group_dead") {
					t.Fatalf("exit %+v under mode %s", e, w.Mode())
				}
				if !e.GroupDead && e.Thread != pid {
					t.Fatalf("leader rule reported thread %d of %d", e.Thread, pid)
				}
			case <-time.After(hangGuard):
				t.Fatal("no exit reported")
			}
			if err := w.Unwatch(pid); err != nil {
				t.Fatal(err)
			}
			if err := w.Unwatch(pid); err != nil {
				t.Fatalf("second Unwatch: %v", err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run after cancel: %v", err)
			}
		})
	}
}

// The thread-group rule: a process whose leader is not the last thread to
// exit is reported once, as itself.
func TestReportsMultiThreadedExitOnce(t *testing.T) {
	w := newWatcher(t, AttachAuto)
	exits := make(chan Exit, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, func(e Exit) { exits <- e })
	// This test binary is a multi-threaded Go process: run it as a child
	// that just waits.
	child := exec.Command(os.Args[0], "-test.run=^TestHelperSleep$")
	child.Env = append(os.Environ(), "EXITWATCH_HELPER=1")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	pid := child.Process.Pid
	time.Sleep(50 * time.Millisecond) // let the runtime start its threads (not a timing assertion)
	if err := w.Watch(pid); err != nil {
		t.Fatal(err)
	}
	child.Process.Kill()
	child.Wait()
	select {
	case e := <-exits:
		if e.Pid != pid {
			t.Fatalf("reported %+v, want pid %d", e, pid)
		}
	case <-time.After(hangGuard):
		t.Fatal("no exit reported")
	}
	select {
	case e := <-exits:
		t.Fatalf("a second report for one process: %+v", e)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestHelperSleep(t *testing.T) {
	if os.Getenv("EXITWATCH_HELPER") == "" {
		t.Skip("helper for TestReportsMultiThreadedExitOnce")
	}
	time.Sleep(time.Minute)
}

func TestCloseEndsRun(t *testing.T) {
	w := newWatcher(t, AttachAuto)
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background(), func(Exit) {}) }()
	time.Sleep(10 * time.Millisecond)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Run after Close = %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Run did not return after Close")
	}
	if err := w.Watch(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Watch after Close = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestParseFormat(t *testing.T) {
	const format = `name: sched_process_exit
ID: 369
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:char comm[16];	offset:8;	size:16;	signed:0;
	field:pid_t pid;	offset:24;	size:4;	signed:1;
	field:int prio;	offset:28;	size:4;	signed:1;
	field:bool group_dead;	offset:32;	size:1;	signed:0;

print fmt: "comm=%s pid=%d", REC->comm, REC->pid
`
	fields, err := parseFormat(strings.NewReader(format))
	if err != nil {
		t.Fatal(err)
	}
	if fields["comm"] != (field{8, 16}) || fields["pid"] != (field{24, 4}) || fields["group_dead"] != (field{32, 1}) {
		t.Fatalf("fields %v", fields)
	}
	if l, ok := groupDeadLoad(fields); !ok || l != (ctxLoad{off: 32, size: asm.Byte}) {
		t.Fatalf("group_dead load %+v %v", l, ok)
	}
	delete(fields, "group_dead")
	if _, ok := groupDeadLoad(fields); ok {
		t.Fatal("group_dead found in a format without it")
	}
	if _, err := parseFormat(strings.NewReader("field:int x; offset:abc; size:4;")); err == nil {
		t.Fatal("bad offset accepted")
	}
	if _, ok := groupDeadLoad(map[string]field{"group_dead": {off: 33, size: 4}}); ok {
		t.Fatal("misaligned group_dead accepted")
	}
}

func FuzzParseFormat(f *testing.F) {
	f.Add("field:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;\n")
	f.Add("field:char comm[16]; offset:8; size:16;\n")
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := parseFormat(strings.NewReader(s))
		if err != nil && fields != nil {
			t.Fatal("error with a result")
		}
		if l, ok := groupDeadLoad(fields); ok && (l.off < 0 || l.off > 1<<12) {
			t.Fatalf("load %+v", l)
		}
	})
}

// The instructions assemble for every rule (the verifier is the real test,
// in TestReportsWatchedExit).
func TestInstructionsAssemble(t *testing.T) {
	for _, r := range []rule{ruleGroupDead, ruleLeader} {
		insns := instructions(r, rawGroupDead, 3, 4)
		if err := insns.Marshal(&strings.Builder{}, binary.LittleEndian); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
}
