package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"
)

var (
	// errBadParams is returned when a child's parameters are impossible.
	errBadParams = errors.New("bad parameters")
	// errTimeout is returned when a scenario's wall-clock cap passes.
	errTimeout = errors.New("wall-clock cap reached")
)

// IsChild reports whether this process was started by the harness to run
// one role (EnvRole is set).
func IsChild() bool { return os.Getenv(EnvRole) != "" }

// RunChild runs the role named by EnvRole with the parameters the harness
// put in the environment (logging to stderr at the level in FRBENCH_LOG,
// warn by default), and prints its result line on stdout. The
// caller (a main, or a TestMain) exits with a non-zero code when it
// returns an error, and should exit when its stdin reaches EOF: stdin is a
// pipe from the harness, so EOF means the harness is gone.
func RunChild(ctx context.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv(envLogLevel))); err != nil {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	role := os.Getenv(EnvRole)
	var p params
	if err := json.Unmarshal([]byte(os.Getenv(envParams)), &p); err != nil {
		return fmt.Errorf("run child %s: decode params: %w", role, err)
	}
	if p.Role != role {
		return fmt.Errorf("run child %s: %w: params for %q", role, errBadParams, p.Role)
	}
	if p.CapNs <= 0 {
		return fmt.Errorf("run child %s: %w: no wall-clock cap", role, errBadParams)
	}
	log = log.With("role", role, "index", p.Index, "pid", os.Getpid())
	run := map[string]func(context.Context, params, *slog.Logger) (*result, error){
		roleRingProducer:   runRingProducer,
		roleRingConsumer:   runRingConsumer,
		roleStreamSender:   runStreamSender,
		roleStreamReceiver: runStreamReceiver,
		rolePingSender:     runPingSender,
		rolePingReceiver:   runPingReceiver,
		roleMemcpy:         runMemcpy,
		roleCache:          runCache,
	}[role]
	if run == nil {
		return fmt.Errorf("run child: %w: unknown role %q", errBadParams, role)
	}
	if (p.Role != roleMemcpy && p.Role != roleCache && p.Role != rolePingSender && p.Role != rolePingReceiver) && p.Payload < 16 {
		return fmt.Errorf("run child %s: %w: payload %d", role, errBadParams, p.Payload)
	}
	// FRBENCH_MEMPROF=DIR records every allocation and writes a heap
	// profile per child (for finding what allocates in a measured window).
	prof := os.Getenv("FRBENCH_MEMPROF")
	if prof != "" {
		runtime.MemProfileRate = 1
		memProfPrefix = filepath.Join(prof, fmt.Sprintf("%s-%d-%d", role, p.Index, os.Getpid()))
	}
	// No GC in a child: its heap is small and its life short, and a GC
	// cycle (its mark workers, the finalizers it queues) would allocate
	// inside measured windows. The measured loops allocate nothing, so
	// the heap does not grow while they run.
	debug.SetGCPercent(-1)
	primeRuntime(runtime.GOMAXPROCS(0) + 4)
	res, err := run(ctx, p, log)
	if err != nil {
		return err
	}
	return emitResult(res)
}

// memProfPrefix is set when FRBENCH_MEMPROF asks for allocation
// profiles: one at the start and one at the end of the measured window,
// so that "go tool pprof -sample_index=alloc_objects -base START END"
// shows exactly what the window allocated.
var memProfPrefix string

func writeMemProfile(suffix string) {
	if memProfPrefix == "" || (suffix == "start" && os.Getenv("FRBENCH_MEMPROF_NOSTART") != "") {
		return
	}
	f, err := os.Create(memProfPrefix + "-" + suffix + ".pprof")
	if err != nil {
		return
	}
	defer f.Close()
	// The profile is as of the last completed GC: finish one first.
	runtime.GC()
	pprof.Lookup("allocs").WriteTo(f, 0)
}

// primeRuntime makes the runtime allocate, before any measured window,
// what it would otherwise allocate lazily inside one and MemStats would
// charge to the frames being measured:
//   - OS threads: the runtime creates one as a loop first needs it (when
//     sysmon hands off the P of a thread sleeping in a futex, or a
//     preempted spinner wakes another P). Here n threads are created and
//     parked idle; idle threads are reused, never freed.
//   - timers: the calling goroutine's sleep timer (its first time.Sleep)
//     and room in every P's timer heap (many goroutines sleeping at once
//     on every P).
func primeRuntime(n int) {
	time.Sleep(time.Microsecond)
	// Each sleeper spins first, so that every P ends up running (and
	// parking) some of them: every P's timer heap then grows to hold
	// several timers at once, as it may need to later (the scavenger's,
	// a sleep's, a deadline's). The heaps keep their capacity.
	var sleepers sync.WaitGroup
	for i := 0; i < 8*n; i++ {
		sleepers.Add(1)
		go func() {
			defer sleepers.Done()
			for end := now() + int64(200*time.Microsecond); now() < end; {
			}
			time.Sleep(3 * time.Millisecond)
		}()
	}
	sleepers.Wait()
	var started sync.WaitGroup
	release := make(chan struct{})
	var done sync.WaitGroup
	for i := 0; i < n; i++ {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			// A locked goroutine that blocks keeps its thread: the next
			// goroutine needs another one.
			runtime.LockOSThread()
			started.Done()
			<-release
			runtime.UnlockOSThread()
		}()
	}
	started.Wait()
	close(release)
	done.Wait()
}
