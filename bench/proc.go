package bench

// Running a scenario's processes. Invariants kept by this file:
//   - every child gets a stdin pipe that the harness holds open until the
//     child is reaped, so a child sees EOF exactly when the harness is gone;
//   - every child is started under a context whose deadline is the
//     scenario's cap plus grace: exec kills (SIGKILL) whatever is still
//     running then, or as soon as a sibling fails or the harness is
//     cancelled; runGroup returns only after every child was reaped.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"
)

// proc is one child to start.
type proc struct {
	p     params
	files []*os.File // ExtraFiles: descriptor 3 onwards
}

// group is the processes of one scenario.
type group struct {
	label string
	procs []proc
	// closeAfterStart are the harness's copies of descriptors handed to
	// children (a pipe's write end must close here, or its reader never
	// sees EOF).
	closeAfterStart []io.Closer
	// onStart, if set, is called with each child's pid once it started.
	onStart func(p params, pid int)
}

// childLimit is how long a child may live: its cap plus grace.
func (h *harness) childLimit(p params) time.Duration {
	return time.Duration(p.CapNs) + h.cfg.Grace
}

// groupStat is what a scenario's run looked like from outside.
type groupStat struct {
	wallNs int64
	// otherCores is the CPU time of processes outside the scenario per
	// wall second (cores); stealCores, time the hypervisor took.
	otherCores, stealCores float64
}

// runGroup starts every process of g, waits for all of them and returns
// their results in order. On the first failure it kills the others.
func (h *harness) runGroup(ctx context.Context, g group) ([]result, error) {
	res, _, err := h.runGroupStat(ctx, g)
	return res, err
}

// outcome is how a child of a group ended: its result or its error.
type outcome struct {
	i   int
	res result
	err error
}

// startChild starts process i of a group (pr) and a goroutine that waits for
// it and sends its outcome to done, adding its CPU time to childCPU.
func (h *harness) startChild(ctx context.Context, label string, i int, pr proc, onStart func(params, int), done chan<- outcome, childCPU *atomic.Int64) error {
	b, err := json.Marshal(pr.p)
	if err != nil {
		return fmt.Errorf("encode params: %w", err)
	}
	cmd := exec.CommandContext(ctx, h.cfg.Exe, h.cfg.ExeArgs...)
	cmd.Env = append(os.Environ(), EnvRole+"="+pr.p.Role, envParams+"="+string(b))
	if h.cfg.ChildLogLevel != "" {
		cmd.Env = append(cmd.Env, envLogLevel+"="+h.cfg.ChildLogLevel)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.ExtraFiles = pr.files
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("start %s: %w", pr.p.Role, err)
	}
	if err := cmd.Start(); err != nil {
		stdin.Close()
		return fmt.Errorf("start %s: %w", pr.p.Role, err)
	}
	if onStart != nil {
		onStart(pr.p, cmd.Process.Pid)
	}
	h.log.Debug("child started", "scenario", label, "role", pr.p.Role, "index", pr.p.Index, "pid", cmd.Process.Pid)
	startedAt := time.Now()
	go func() {
		err := cmd.Wait()
		stdin.Close()
		h.log.Debug("child exited", "scenario", label, "role", pr.p.Role, "index", pr.p.Index, "took", time.Since(startedAt).Round(time.Millisecond))
		if ps := cmd.ProcessState; ps != nil {
			childCPU.Add(int64(ps.UserTime() + ps.SystemTime()))
		}
		if err != nil {
			msg := strings.TrimSpace(stderr.String())
			if len(msg) > 2000 {
				msg = msg[len(msg)-2000:]
			}
			done <- outcome{i: i, err: fmt.Errorf("%s[%d] (pid %d): %w: %s", pr.p.Role, pr.p.Index, cmd.Process.Pid, err, msg)}
			return
		}
		res, err := parseResult(stdout.Bytes())
		if err != nil {
			err = fmt.Errorf("%s[%d]: %w", pr.p.Role, pr.p.Index, err)
		}
		if s := strings.TrimSpace(stderr.String()); s != "" {
			h.log.Debug("child stderr", "role", pr.p.Role, "index", pr.p.Index, "stderr", s)
		}
		done <- outcome{i: i, res: res, err: err}
	}()
	return nil
}

func (h *harness) runGroupStat(ctx context.Context, g group) ([]result, groupStat, error) {
	h.waitQuiet(ctx, g.label)
	var st groupStat
	sys0, self0, t0 := readCPUTimes(), readSchedstat(), time.Now()
	var childCPU atomic.Int64
	var limit time.Duration
	for _, pr := range g.procs {
		limit = max(limit, h.childLimit(pr.p))
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	done := make(chan outcome, len(g.procs))
	started := 0
	var startErr error
	for i, pr := range g.procs {
		if startErr = h.startChild(ctx, g.label, i, pr, g.onStart, done, &childCPU); startErr != nil {
			break
		}
		started++
	}
	for _, c := range g.closeAfterStart {
		c.Close()
	}
	if startErr != nil {
		cancel()
	}
	results := make([]result, len(g.procs))
	var errs []error
	for n := 0; n < started; n++ {
		o := <-done
		if o.err != nil {
			if len(errs) == 0 {
				cancel() // kill the siblings: the scenario is lost
			}
			errs = append(errs, o.err)
			continue
		}
		results[o.i] = o.res
	}
	if startErr != nil {
		errs = append([]error{startErr}, errs...)
	}
	if len(errs) > 0 {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
			errs = append(errs, fmt.Errorf("%w (%v)", errTimeout, limit))
		}
		return nil, st, fmt.Errorf("run scenario %s: %w", g.label, errors.Join(errs...))
	}
	sys1, self1 := readCPUTimes(), readSchedstat()
	st.wallNs = time.Since(t0).Nanoseconds()
	if sys0.ok && sys1.ok && st.wallNs > 0 {
		other := sys1.busy - sys0.busy - childCPU.Load() - (self1 - self0)
		st.otherCores = max(float64(other)/float64(st.wallNs), 0)
		st.stealCores = float64(sys1.steal-sys0.steal) / float64(st.wallNs)
	}
	return results, st, nil
}
