package bench

// The Eclipse iceoryx baseline: a publisher and a subscriber on the
// iceoryx C binding (iceoryx/iox_bench.c, Debian's iceoryx 2.0.3), built
// by the harness with the system C compiler, talking through a RouDi the
// harness starts with a mempool configuration of its own and stops with
// SIGINT (RouDi then removes its shared memory; whatever a killed RouDi
// left is removed by name). RouDi's shared memory names are fixed, so one
// RouDi runs per machine: the harness refuses to start while another
// iox-roudi process lives, removes what a dead one left, and has the
// kernel send its own RouDi SIGINT if the harness dies (PR_SET_PDEATHSIG),
// so a harness killed with SIGKILL leaves no RouDi behind. Same payloads, pacing, number of rotating
// buffers (the mempool's chunk count) and read kernel as the ring's rows:
// latency rows at Payloads with the latency rows' buffer count, one
// subscriber waiting on a WaitSet (the futex rows' counterpart) or
// busy-polling; throughput rows at the sweep payloads, flat out, lossless,
// reading nothing (lease) or every word (words).

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed iceoryx/iox_bench.c
var ioxBenchSource []byte

// The iceoryx subscriber's waits.
const (
	IoxWaitSet = "waitset"
	IoxPoll    = "poll"
)

// ioxInclude is where Debian's libiceoryx-binding-c-dev puts its headers.
const ioxInclude = "/usr/include/iceoryx/v2.0.3"

var errIceoryx = errors.New("iceoryx baseline")

// IceoryxRow is one iceoryx scenario with the ring's matching row.
type IceoryxRow struct {
	Kind    string `json:"kind"` // "latency" or "throughput"
	Payload int    `json:"payload"`
	Wait    string `json:"wait"`
	Read    string `json:"read"`
	// Buffers is the mempool's chunk count: the rotating buffers.
	Buffers  int         `json:"buffers"`
	Latency  Percentiles `json:"latency"` // one-way, publisher's clock to subscriber's
	Received uint64      `json:"received"`
	Lost     uint64      `json:"lost"`
	FPS      float64     `json:"fps,omitempty"`
	GBps     float64     `json:"gbps,omitempty"`
	// The ring's matching row (latency: futex for WaitSet, poll for poll;
	// throughput: one lossless consumer, same read) and ring/iceoryx.
	RingWait string  `json:"ring_wait,omitempty"`
	RingP50  int64   `json:"ring_p50,omitempty"`
	RingP99  int64   `json:"ring_p99,omitempty"`
	RingFPS  float64 `json:"ring_fps,omitempty"`
	Ratio    float64 `json:"ring_vs_iceoryx,omitempty"` // latency: ring p50 / iceoryx p50; throughput: ring fps / iceoryx fps
}

type ioxItem struct {
	kind, wait, read string
	payload, buffers int
}

func (h *harness) ioxPlan() (lat, tput []ioxItem) {
	for _, p := range h.cfg.Payloads {
		for _, w := range h.cfg.IceoryxWaits {
			lat = append(lat, ioxItem{"latency", w, ReadLease, p, 4})
		}
	}
	for _, p := range slices.Concat(h.cfg.SweepPayloads, []int{h.cfg.ThroughputPayload}) {
		for _, r := range []string{ReadLease, ReadWords} {
			it := ioxItem{"throughput", IoxPoll, r, p, tputItem{payload: p, consumers: 1}.slotCount()}
			if !slices.Contains(tput, it) {
				tput = append(tput, it)
			}
		}
	}
	return lat, tput
}

func (h *harness) iceoryx(ctx context.Context) {
	roudi, err := exec.LookPath("iox-roudi")
	if err != nil {
		h.skip("iceoryx: iox-roudi is not installed (Debian: apt-get install iceoryx libiceoryx-binding-c-dev; bench/run.sh does it)")
		return
	}
	bin, err := h.buildIox(ctx)
	if err != nil {
		h.fail("iceoryx", err)
		return
	}
	lat, tput := h.ioxPlan()
	for _, items := range [][]ioxItem{lat, tput} {
		if len(items) == 0 || ctx.Err() != nil {
			continue
		}
		if err := h.withRouDi(ctx, roudi, items, func() {
			for _, it := range items {
				if ctx.Err() != nil {
					return
				}
				label := fmt.Sprintf("iceoryx %s %s %s %s", it.kind, sizeName(it.payload), it.wait, it.read)
				h.log.Info("scenario", "name", label)
				if it.kind == "latency" {
					h.waitQuiet(ctx, label)
				}
				row, err := h.ioxRun(ctx, bin, it)
				if err != nil {
					h.fail(label, err)
					continue
				}
				h.ioxCompare(&row)
				h.rep.Iceoryx = append(h.rep.Iceoryx, row)
			}
		}); err != nil {
			h.fail("iceoryx RouDi", err)
		}
	}
}

func (h *harness) buildIox(ctx context.Context) (string, error) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		return "", fmt.Errorf("%w: no C compiler (cc) on PATH", errIceoryx)
	}
	src := filepath.Join(h.dir, "iox_bench.c")
	bin := filepath.Join(h.dir, "iox_bench")
	if err := os.WriteFile(src, ioxBenchSource, 0o644); err != nil {
		return "", fmt.Errorf("%w: %w", errIceoryx, err)
	}
	out, err := exec.CommandContext(ctx, cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-I"+ioxInclude, "-o", bin, src, "-liceoryx_binding_c").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: build (needs libiceoryx-binding-c-dev): %w: %s", errIceoryx, err, out)
	}
	return bin, nil
}

// roudiLeftovers are the shared memory areas a RouDi creates: its
// management segment and one payload segment named after the user.
func roudiLeftovers() []string {
	paths := []string{"/dev/shm/iceoryx_mgmt"}
	if u, err := user.Current(); err == nil {
		paths = append(paths, "/dev/shm/"+u.Username)
	}
	var left []string
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			left = append(left, p)
		}
	}
	return left
}

// roudiPids are the process ids of the running iox-roudi processes.
func roudiPids() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil && strings.TrimSpace(string(comm)) == "iox-roudi" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// withRouDi runs fn with a RouDi whose mempools hold each item's payload
// size with its buffer count, and stops it.
func (h *harness) withRouDi(ctx context.Context, roudi string, items []ioxItem, fn func()) (err error) {
	if pids := roudiPids(); len(pids) > 0 {
		return fmt.Errorf("%w: another RouDi is running (pid %v): not touching it", errIceoryx, pids)
	}
	if left := roudiLeftovers(); len(left) > 0 {
		// No RouDi lives: a dead one's (killed with SIGKILL) shared memory.
		h.log.Warn("removing a dead RouDi's shared memory", "paths", left)
		for _, p := range left {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("%w: a dead RouDi left %s: %w", errIceoryx, p, err)
			}
		}
	}
	pools := map[int]int{}
	for _, it := range items {
		pools[it.payload] = max(pools[it.payload], it.buffers)
	}
	sizes := make([]int, 0, len(pools))
	for s := range pools {
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	var cfg strings.Builder
	cfg.WriteString("[general]\nversion = 1\n\n[[segment]]\n")
	for _, s := range sizes {
		fmt.Fprintf(&cfg, "\n[[segment.mempool]]\nsize = %d\ncount = %d\n", s, pools[s])
	}
	conf := filepath.Join(h.dir, "roudi.toml")
	if err := os.WriteFile(conf, []byte(cfg.String()), 0o644); err != nil {
		return fmt.Errorf("%w: %w", errIceoryx, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(rctx, roudi, "-c", conf, "-l", "warning", "-m", "off")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	// If this process dies first (even by SIGKILL), the kernel interrupts
	// RouDi, which then removes its shared memory. The signal follows the
	// thread that forked RouDi: lock it for the child's lifetime, so the
	// Go runtime cannot retire that thread meanwhile.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%w: %w", errIceoryx, err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: start RouDi: %w", errIceoryx, err)
	}
	defer func() {
		cancel() // SIGINT: RouDi shuts down and removes its shared memory
		werr := cmd.Wait()
		if left := roudiLeftovers(); len(left) > 0 {
			for _, p := range left {
				os.Remove(p)
			}
			err = errors.Join(err, fmt.Errorf("%w: RouDi left %v (removed): %v", errIceoryx, left, werr))
		}
	}()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && strings.Contains(sc.Text(), "RouDi is ready for clients") {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			return fmt.Errorf("%w: RouDi exited before it was ready: %s", errIceoryx, stderr.String())
		}
	case <-time.After(h.cfg.Setup):
		return fmt.Errorf("%w: RouDi not ready within %v", errIceoryx, h.cfg.Setup)
	case <-ctx.Done():
		return ctx.Err()
	}
	fn()
	return nil
}

// ioxRun runs one subscriber and one publisher and reads the
// subscriber's report.
func (h *harness) ioxRun(ctx context.Context, bin string, it ioxItem) (IceoryxRow, error) {
	row := IceoryxRow{Kind: it.kind, Payload: it.payload, Wait: it.wait, Read: it.read, Buffers: it.buffers}
	frames, warmup, interval, d := h.cfg.LatencyFrames, h.cfg.LatencyWarmup, h.cfg.LatencyInterval, h.cfg.LatencyDuration
	if it.kind == "throughput" {
		frames, warmup, interval, d = h.cfg.ThroughputFrames, h.cfg.ThroughputWarmup, 0, h.cfg.ThroughputDuration
	}
	if interval > 0 {
		// Paced: at most the frames that fit the duration.
		frames = min(frames, int(d/interval))
	}
	capNs := h.capFor(d + time.Duration(warmup)*interval)
	cctx, cancel := context.WithTimeout(ctx, time.Duration(capNs)+h.cfg.Grace)
	defer cancel()
	// The publisher holds one loaned chunk and keeps its last sent one
	// (iceoryx reuses it), and the subscriber holds one taken chunk, so a
	// queue of buffers-3 never runs the pool dry (buffers-2 deadlocked at
	// 32 MiB: every chunk in flight, the publisher waiting for a loan).
	sub := exec.CommandContext(cctx, bin, "sub", it.wait, it.read, strconv.Itoa(it.payload), strconv.Itoa(max(1, it.buffers-3)),
		strconv.Itoa(warmup), strconv.FormatInt(capNs, 10))
	var subOut, subErr, pubErr bytes.Buffer
	sub.Stdout, sub.Stderr = &subOut, &subErr
	if err := sub.Start(); err != nil {
		return row, fmt.Errorf("%w: start subscriber: %w", errIceoryx, err)
	}
	pub := exec.CommandContext(cctx, bin, "pub", strconv.Itoa(it.payload), strconv.Itoa(frames), strconv.Itoa(warmup),
		strconv.FormatInt(int64(interval), 10), strconv.FormatInt(int64(d), 10))
	pub.Stderr = &pubErr
	perr := pub.Run()
	serr := sub.Wait()
	if err := errors.Join(perr, serr); err != nil {
		return row, fmt.Errorf("%w: publisher %v (%s), subscriber %v (%s)", errIceoryx, perr, tail(pubErr.String()), serr, tail(subErr.String()))
	}
	lat := newHist()
	var first, last int64
	sc := bufio.NewScanner(&subOut)
	total := false
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "total "); ok {
			var sum uint64
			if _, err := fmt.Sscan(f, &row.Received, &first, &last, &row.Lost, &sum); err != nil {
				return row, fmt.Errorf("%w: parse %q: %w", errIceoryx, line, err)
			}
			total = true
			continue
		}
		v, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return row, fmt.Errorf("%w: parse %q: %w", errIceoryx, line, err)
		}
		record(lat, v)
	}
	if !total || row.Received == 0 {
		return row, fmt.Errorf("%w: the subscriber received no measured frame", errIceoryx)
	}
	row.Latency = percentiles(lat)
	if row.Received >= 2 && last > first {
		row.FPS = float64(row.Received-1) / (float64(last-first) / 1e9)
		row.GBps = row.FPS * float64(it.payload) / 1e9
	}
	return row, nil
}

// ioxCompare fills in the ring's matching row of the same run.
func (h *harness) ioxCompare(row *IceoryxRow) {
	if row.Kind == "latency" {
		want := WaitPoll
		if row.Wait == IoxWaitSet {
			want = WaitFutex
		}
		for _, r := range h.rep.Latency {
			if r.Payload == row.Payload && r.Wait == want && row.Latency.P50 > 0 {
				row.RingWait, row.RingP50, row.RingP99 = want, r.Latency.P50, r.Latency.P99
				row.Ratio = float64(r.Latency.P50) / float64(row.Latency.P50)
			}
		}
		return
	}
	for _, r := range h.rep.Throughput {
		if r.Payload == row.Payload && r.Consumers == 1 && r.Mode == "lossless" && r.Read == row.Read && r.Slots == row.Buffers && row.FPS > 0 {
			row.RingFPS, row.Ratio = r.FPS, r.FPS/row.FPS
		}
	}
}

// tail is the end of a child's stderr (iceoryx repeats its messages).
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = "…" + s[len(s)-300:]
	}
	return s
}
