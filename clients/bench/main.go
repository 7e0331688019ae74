// Command clientbench measures consumers in Go, C and Python on one ring in
// one run: frames per second and time per frame at 64 KiB and 8 MiB frames,
// taking each frame's lease only, and reading every byte with the same
// memory-bound kernel (a 64-bit word sum over independent accumulators; in
// numpy a.view(np.uint64).sum()). It reports the clients' goals as met or
// not met: the Python consumer's per-frame overhead under 10 µs, and its
// every-byte rate within 1.5x of the C consumer's.
//
//	clients/bench/run.sh            # builds libframering and the C consumer, then runs this
//	go run ./clients/bench -c clients/c/build/frbench -py clients/bench/consume.py -seconds 2
//
// The ring is made here (ringbuf), with 8 slots of 8 MiB; a producer
// goroutine publishes Mono8 frames of the size under test as fast as slots
// come back, without writing their payload (what is measured is the
// consumer; the producer's own fill is the bench harness's subject). Each
// consumer is lossless, so it always has a backlog of published frames to
// take (up to the slot count) and a producer descheduled for a moment does
// not make it wait. Each runs as a separate process (the Go one is this
// program re-executed), alone, for -seconds after a 0.2 s warm-up. Its
// per-frame overhead is its own CPU time over the frames it took (time
// spent descheduled on a busy machine does not count), and its every-byte
// rate is bytes over that CPU time; the wall-clock figures are shown beside
// them, with the machine's other load measured before each row.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

const roleEnv = "CLIENTBENCH_ROLE"

type result struct {
	Lang       string  `json:"lang"`
	Frames     uint64  `json:"frames"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Bytes      uint64  `json:"bytes"`
	Sum        uint64  `json:"sum"`
	// Filled by the harness.
	Size      int     `json:"size"`
	Read      string  `json:"read"`
	OtherLoad float64 `json:"other_load_cores"` // busy cores before the row, our producer paused
}

func (r result) perFrameUs() float64 { return r.Seconds / float64(max(r.Frames, 1)) * 1e6 }
func (r result) cpuPerFrameUs() float64 {
	return r.CPUSeconds / float64(max(r.Frames, 1)) * 1e6
}
func (r result) fps() float64     { return float64(r.Frames) / r.Seconds }
func (r result) gbps() float64    { return float64(r.Bytes) / r.Seconds / 1e9 }
func (r result) cpuGbps() float64 { return float64(r.Bytes) / r.CPUSeconds / 1e9 }
func (r result) String() string   { return fmt.Sprintf("%s %d %s", r.Lang, r.Size, r.Read) }

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(goConsumer(os.Args[1], os.Args[2], os.Args[3]))
	}
	cbin := flag.String("c", "clients/c/build/frbench", "the C consumer (make -C clients/c bench)")
	py := flag.String("py", "clients/bench/consume.py", "the Python consumer")
	python := flag.String("python", "/usr/bin/python3", "the Python interpreter (Debian's, with numpy)")
	seconds := flag.Float64("seconds", 2, "seconds each consumer is measured")
	jsonOut := flag.String("json", "", "also write the results as JSON to this file")
	quiet := flag.Duration("quiet", 0, "before each row, wait up to this long for fewer than 0.3 other busy cores")
	flag.Parse()
	if err := run(*cbin, *py, *python, *seconds, *quiet, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "clientbench:", err)
		os.Exit(1)
	}
}

func run(cbin, py, python string, seconds float64, quiet time.Duration, jsonOut string) error {
	for _, f := range []string{cbin, py, python} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w (build with clients/bench/run.sh)", err)
		}
	}
	dir, err := os.MkdirTemp("", "clientbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	const capacity = 8 << 20
	p, err := ringbuf.Create(ringbuf.Config{SocketPath: filepath.Join(dir, "bench.sock"), Slots: 8, SlotSize: capacity,
		EvictAfter: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer p.Close()
	var size atomic.Int64
	var paused atomic.Bool
	size.Store(64 << 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- produce(ctx, p, &size, &paused) }()
	defer func() {
		cancel()
		<-done
	}()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	secs := strconv.FormatFloat(seconds, 'f', -1, 64)
	var results []result
	for _, sz := range []int{64 << 10, 8 << 20} {
		size.Store(int64(sz))
		time.Sleep(50 * time.Millisecond) // frames of the new size in every slot
		for _, read := range []string{"lease", "sum"} {
			for _, c := range []struct {
				lang string
				cmd  []string
				env  []string
			}{
				{"Go", []string{self, p.Path(), secs, read}, []string{roleEnv + "=go"}},
				{"C", []string{cbin, p.Path(), secs, read}, nil},
				{"Python", []string{python, py, p.Path(), secs, read}, nil},
			} {
				// The machine's other load, measured with our producer paused
				// (waiting for a quieter moment if asked).
				paused.Store(true)
				other, end := busyCores(200*time.Millisecond), time.Now().Add(quiet)
				for other >= 0.3 && time.Now().Before(end) {
					other = busyCores(200 * time.Millisecond)
				}
				paused.Store(false)
				r, err := runConsumer(c.cmd, c.env)
				if err != nil {
					return fmt.Errorf("%s consumer: %w", c.lang, err)
				}
				r.Size, r.Read, r.OtherLoad = sz, read, other
				results = append(results, r)
				fmt.Fprintf(os.Stderr, "  %-7s %6s %-5s %9.0f frames/s %8.2f µs/frame (%.2f µs CPU)\n", r.Lang,
					sizeName(sz), read, r.fps(), r.perFrameUs(), r.cpuPerFrameUs())
			}
		}
	}
	report(os.Stdout, results, seconds)
	if jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		return os.WriteFile(jsonOut, b, 0o644)
	}
	return nil
}

// produce publishes frames of the current size as fast as slots come back
// (unless paused).
func produce(ctx context.Context, p *ringbuf.Producer, size *atomic.Int64, paused *atomic.Bool) error {
	for ctx.Err() == nil {
		if paused.Load() {
			time.Sleep(time.Millisecond)
			continue
		}
		s, err := p.Acquire()
		if errors.Is(err, ringbuf.ErrNoFreeSlot) {
			p.RecordDrops(loss.Blocked, 1)
			runtime.Gosched()
			continue
		}
		if err != nil {
			return err
		}
		n := int(size.Load())
		w := 256
		if n >= 8<<20 {
			w = 4096
		}
		if _, err := p.Publish(s, ringbuf.Meta{Width: uint32(w), Height: uint32(n / w), Stride: uint32(w),
			Format: frame.Mono8, Length: uint64(n), Timestamp: time.Now().UnixNano()}); err != nil {
			return err
		}
	}
	return nil
}

func runConsumer(argv, env []string) (result, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, err
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("%w: %q", err, out)
	}
	return r, nil
}

// goConsumer is the Go consumer: ringbuf's Reader, lossy, Next and Release,
// and the word sum when asked.
func goConsumer(socket, secs, read string) int {
	seconds, _ := strconv.ParseFloat(secs, 64)
	ctx := context.Background()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: socket, Consumer: "frbench-go", Mode: ringbuf.Lossless})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Close()
	doSum := read == "sum"
	var frames, nbytes, sum uint64
	var t0 time.Time
	var c0 time.Duration
	warm := time.Now().Add(200 * time.Millisecond)
	measuring := false
	for {
		l, err := r.Next(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		b := l.Bytes()
		if doSum {
			sum += sum64(b)
		}
		l.Release()
		if !measuring {
			if time.Now().Before(warm) {
				continue
			}
			measuring, t0, c0 = true, time.Now(), cpuTime()
			continue
		}
		frames++
		nbytes += uint64(len(b))
		if frames&63 == 0 && time.Since(t0).Seconds() >= seconds {
			break
		}
	}
	res := result{Lang: "Go", Frames: frames, Seconds: time.Since(t0).Seconds(), CPUSeconds: (cpuTime() - c0).Seconds(),
		Bytes: nbytes, Sum: sum}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// sum64 adds the 64-bit little-endian words of b in four independent
// accumulators: the same kernel as the C and numpy consumers.
func sum64(b []byte) uint64 {
	var a0, a1, a2, a3 uint64
	for len(b) >= 32 {
		a0 += binary.LittleEndian.Uint64(b[0:8])
		a1 += binary.LittleEndian.Uint64(b[8:16])
		a2 += binary.LittleEndian.Uint64(b[16:24])
		a3 += binary.LittleEndian.Uint64(b[24:32])
		b = b[32:]
	}
	for len(b) >= 8 {
		a0 += binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	return a0 + a1 + a2 + a3
}

// busyCores samples how many cores the whole machine keeps busy over d
// (/proc/stat: user, nice, system, irq, softirq).
func busyCores(d time.Duration) float64 {
	read := func() int64 {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0
		}
		var v [8]int64
		fmt.Sscanf(string(b), "cpu %d %d %d %d %d %d %d %d", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7])
		return v[0] + v[1] + v[2] + v[5] + v[6]
	}
	a, t := read(), time.Now()
	time.Sleep(d)
	b := read()
	return float64(b-a) * 1e9 / 100 / float64(time.Since(t).Nanoseconds()) // USER_HZ = 100
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

func report(w io.Writer, rs []result, seconds float64) {
	fmt.Fprintf(w, "\nConsumers in Go, C and Python on one ring (8 slots, lossless, producer not writing payloads), %g s each, %s, %d CPUs\n\n",
		seconds, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintln(w, "| payload | reads | consumer | frames/s | µs/frame (wall) | CPU µs/frame | GB/s (wall) | GB/s per CPU-second | other load |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	find := map[string]result{}
	for _, r := range rs {
		find[r.String()] = r
		gb, gbc := "—", "—"
		if r.Read == "sum" {
			gb, gbc = fmt.Sprintf("%.1f", r.gbps()), fmt.Sprintf("%.1f", r.cpuGbps())
		}
		reads := "lease only"
		if r.Read == "sum" {
			reads = "every byte"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.2f | %.2f | %s | %s | %.2f cores |\n", sizeName(r.Size), reads, r.Lang,
			r.fps(), r.perFrameUs(), r.cpuPerFrameUs(), gb, gbc, r.OtherLoad)
	}
	fmt.Fprintln(w)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	for _, sz := range []int{64 << 10, 8 << 20} {
		py := find[result{Lang: "Python", Size: sz, Read: "lease"}.String()]
		c := find[result{Lang: "C", Size: sz, Read: "lease"}.String()]
		fmt.Fprintf(w, "- **%s**: Python per-frame overhead < 10 µs at %s: %.2f µs of CPU per frame (C %.2f µs, Go %.2f µs)\n",
			verdict(py.cpuPerFrameUs() < 10), sizeName(sz), py.cpuPerFrameUs(), c.cpuPerFrameUs(),
			find[result{Lang: "Go", Size: sz, Read: "lease"}.String()].cpuPerFrameUs())
	}
	for _, sz := range []int{64 << 10, 8 << 20} {
		py := find[result{Lang: "Python", Size: sz, Read: "sum"}.String()]
		c := find[result{Lang: "C", Size: sz, Read: "sum"}.String()]
		ratio := c.cpuGbps() / py.cpuGbps()
		fmt.Fprintf(w, "- **%s**: Python every-byte rate within 1.5x of C at %s: %.1f vs %.1f GB/s per CPU-second "+
			"(%.2fx; Go %.1f; wall: Python %.1f, C %.1f GB/s)\n",
			verdict(ratio <= 1.5), sizeName(sz), py.cpuGbps(), c.cpuGbps(), ratio,
			find[result{Lang: "Go", Size: sz, Read: "sum"}.String()].cpuGbps(), py.gbps(), c.gbps())
	}
}
