package exitwatch

// Loading, attaching and reading.
//
// Invariants kept by this file:
//
//  1. A Watcher holds its maps, program, link and reader until Close,
//     which detaches the program first (no more records), then closes the
//     reader (Run returns) and the maps.
//  2. Run is the only reader of the ring buffer; Watch and Unwatch only
//     update the hash map, which the kernel reads under RCU.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	bpfringbuf "github.com/cilium/ebpf/ringbuf"
)

// MaxWatched is how many processes a Watcher watches at once.
const MaxWatched = 1024

// Attachment kinds for Options.Attach.
const (
	// AttachAuto tries the classic tracepoint, then the raw tracepoint.
	AttachAuto = ""
	// AttachTracepoint uses sched/sched_process_exit through tracefs.
	AttachTracepoint = "tracepoint"
	// AttachRaw uses the raw tracepoint sched_process_exit (no tracefs).
	AttachRaw = "raw"
)

// Options configure a Watcher.
type Options struct {
	// Attach is AttachAuto (default), AttachTracepoint or AttachRaw.
	Attach string
	// Logger receives notes about attachment choices (default slog.Default()).
	Logger *slog.Logger

	leaderOnly bool // tests: apply the leader rule even if group_dead exists
}

// Exit is one watched process's exit, as the kernel reported it.
type Exit struct {
	// Pid is the process (thread-group) id.
	Pid int
	// Thread is the id of the thread whose exit was reported: the last
	// one (GroupDead) or the leader, whose id is Pid.
	Thread int
	// GroupDead is true when the kernel said the whole thread group is gone
	// (the group_dead rule); false under the leader rule.
	GroupDead bool
}

// Watcher reports the exits of the processes it watches.
type Watcher struct {
	log     *slog.Logger
	mode    string
	rule    rule
	watched *ebpf.Map
	events  *ebpf.Map
	prog    *ebpf.Program
	link    link.Link
	reader  *bpfringbuf.Reader

	mu     sync.Mutex
	closed bool
}

// New loads the program and attaches it. Any failure is ErrUnavailable,
// wrapping the reason.
func New(opts Options) (*Watcher, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &Watcher{log: opts.Logger}
	ok := false
	defer func() {
		if !ok {
			w.release()
		}
	}()
	var err error
	w.watched, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "fr_watched", Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: MaxWatched,
	})
	if err != nil {
		return nil, fmt.Errorf("create watch map: %w: %w", ErrUnavailable, err)
	}
	w.events, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "fr_exits", Type: ebpf.RingBuf, MaxEntries: 16 * uint32(os.Getpagesize()),
	})
	if err != nil {
		return nil, fmt.Errorf("create event ring: %w: %w", ErrUnavailable, err)
	}
	var errs []error
	if opts.Attach == AttachAuto || opts.Attach == AttachTracepoint {
		err := w.attachTracepoint(opts.leaderOnly)
		if err == nil {
			ok = true
		} else {
			errs = append(errs, err)
		}
	}
	if !ok && (opts.Attach == AttachAuto || opts.Attach == AttachRaw) {
		rules := []rule{ruleGroupDead, ruleLeader}
		if opts.leaderOnly {
			rules = rules[1:]
		}
		for _, r := range rules {
			err := w.attachRaw(r)
			if err == nil {
				ok = true
				break
			}
			errs = append(errs, err)
		}
	}
	if !ok && len(errs) == 0 {
		return nil, fmt.Errorf("attach exit watch: %w: unknown attachment %q", ErrUnavailable, opts.Attach)
	}
	if !ok {
		return nil, fmt.Errorf("attach exit watch: %w: %w", ErrUnavailable, errors.Join(errs...))
	}
	ok = false
	if w.reader, err = bpfringbuf.NewReader(w.events); err != nil {
		return nil, fmt.Errorf("read event ring: %w: %w", ErrUnavailable, err)
	}
	ok = true
	w.log.Debug("kernel exit watch attached", "mode", w.mode)
	return w, nil
}

// tracefsFormat finds the tracepoint's format file in a mounted tracefs.
func tracefsFormat() (*os.File, error) {
	var errs []error
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		f, err := os.Open(filepath.Join(dir, "events/sched/sched_process_exit/format"))
		if err == nil {
			return f, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("find tracefs: %w", errors.Join(errs...))
}

func (w *Watcher) attachTracepoint(leaderOnly bool) error {
	f, err := tracefsFormat()
	if err != nil {
		return fmt.Errorf("tracepoint: %w", err)
	}
	fields, err := parseFormat(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("tracepoint: %w", err)
	}
	r := ruleLeader
	load, hasGroupDead := groupDeadLoad(fields)
	if hasGroupDead && !leaderOnly {
		r = ruleGroupDead
	}
	prog, err := w.load(ebpf.TracePoint, r, load)
	if err != nil {
		return fmt.Errorf("tracepoint: %w", err)
	}
	l, err := link.Tracepoint("sched", "sched_process_exit", prog, nil)
	if err != nil {
		prog.Close()
		return fmt.Errorf("tracepoint: attach: %w", err)
	}
	w.prog, w.link, w.rule, w.mode = prog, l, r, "tracepoint/"+r.String()
	return nil
}

func (w *Watcher) attachRaw(r rule) error {
	prog, err := w.load(ebpf.RawTracepoint, r, rawGroupDead)
	if err != nil {
		return fmt.Errorf("raw tracepoint (%s): %w", r, err)
	}
	// A kernel whose tracepoint has a single argument refuses the
	// group_dead program here (its context access is past the arguments).
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exit", Program: prog})
	if err != nil {
		prog.Close()
		return fmt.Errorf("raw tracepoint (%s): attach: %w", r, err)
	}
	w.prog, w.link, w.rule, w.mode = prog, l, r, "raw_tracepoint/"+r.String()
	return nil
}

func (w *Watcher) load(t ebpf.ProgramType, r rule, gd ctxLoad) (*ebpf.Program, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "fr_exit_watch",
		Type:         t,
		License:      "GPL", // bpf_ringbuf_output and tracing helpers are GPL-only
		Instructions: instructions(r, gd, w.watched.FD(), w.events.FD()),
	})
	if err != nil {
		return nil, fmt.Errorf("load program: %w", err)
	}
	return prog, nil
}

// Mode says how the program is attached and which rule it applies:
// "tracepoint/group_dead", "raw_tracepoint/leader", ...
func (w *Watcher) Mode() string { return w.mode }

// Watch asks for pid's exit to be reported. Watching a pid twice is fine.
func (w *Watcher) Watch(pid int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("watch pid %d: %w", pid, ErrClosed)
	}
	if err := w.watched.Put(uint32(pid), uint8(1)); err != nil {
		if errors.Is(err, ebpf.ErrKeyExist) || errors.Is(err, os.ErrExist) {
			return nil
		}
		return fmt.Errorf("watch pid %d: %w: %w", pid, ErrFull, err)
	}
	return nil
}

// Unwatch forgets pid. Unwatching a pid not watched is fine.
func (w *Watcher) Unwatch(pid int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("unwatch pid %d: %w", pid, ErrClosed)
	}
	if err := w.watched.Delete(uint32(pid)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unwatch pid %d: %w", pid, err)
	}
	return nil
}

// pollInterval bounds how long Run waits in the ring buffer before it
// looks at its context again. Records wake it at once.
const pollInterval = 100 * time.Millisecond

// Run calls fn for every reported exit until ctx ends (it then returns
// nil) or the Watcher is closed (ErrClosed). A watched process is reported
// once; it stays watched (Unwatch it, as its pid may be reused). Run is for
// one goroutine.
func (w *Watcher) Run(ctx context.Context, fn func(Exit)) error {
	var rec bpfringbuf.Record
	for ctx.Err() == nil {
		w.reader.SetDeadline(time.Now().Add(pollInterval))
		err := w.reader.ReadInto(&rec)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue
		case errors.Is(err, bpfringbuf.ErrClosed):
			return fmt.Errorf("read exits: %w", ErrClosed)
		default:
			return fmt.Errorf("read exits: %w", err)
		}
		if len(rec.RawSample) < eventSize {
			continue
		}
		v := binary.NativeEndian.Uint64(rec.RawSample)
		fn(Exit{Pid: int(v >> 32), Thread: int(uint32(v)), GroupDead: w.rule == ruleGroupDead})
	}
	return nil
}

// Close detaches the program and releases everything (invariant 1). A Run
// in progress returns ErrClosed.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	return w.release()
}

func (w *Watcher) release() error {
	var errs []error
	if w.link != nil {
		errs = append(errs, w.link.Close())
	}
	if w.prog != nil {
		errs = append(errs, w.prog.Close())
	}
	if w.reader != nil {
		errs = append(errs, w.reader.Close())
	}
	for _, m := range []*ebpf.Map{w.watched, w.events} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}
