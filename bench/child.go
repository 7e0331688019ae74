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
	"runtime/pprof"
	"sync"
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
	}[role]
	if run == nil {
		return fmt.Errorf("run child: %w: unknown role %q", errBadParams, role)
	}
	if (p.Role != roleMemcpy && p.Role != rolePingSender && p.Role != rolePingReceiver) && p.Payload < 16 {
		return fmt.Errorf("run child %s: %w: payload %d", role, errBadParams, p.Payload)
	}
	// FRBENCH_MEMPROF=DIR records every allocation and writes a heap
	// profile per child (for finding what allocates in a measured window).
	prof := os.Getenv("FRBENCH_MEMPROF")
	if prof != "" {
		runtime.MemProfileRate = 1
	}
	primeThreads(runtime.GOMAXPROCS(0) + 4)
	res, err := run(ctx, p, log)
	if err != nil {
		return err
	}
	if prof != "" {
		writeMemProfile(filepath.Join(prof, fmt.Sprintf("%s-%d-%d.pprof", role, p.Index, os.Getpid())), log)
	}
	return emitResult(res)
}

func writeMemProfile(path string, log *slog.Logger) {
	f, err := os.Create(path)
	if err != nil {
		log.Warn("no memory profile", "err", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		log.Warn("no memory profile", "err", err)
	}
}

// primeThreads makes the runtime create n OS threads now and park them
// idle. Without it, the runtime creates threads as a measured loop first
// needs them (when sysmon hands off the P of a thread sleeping in a futex,
// or a preempted spinner wakes another P), and each creation allocates a
// few objects that MemStats would charge to the frames being measured.
// Idle threads are reused, never freed, so the pool only grows here.
func primeThreads(n int) {
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
