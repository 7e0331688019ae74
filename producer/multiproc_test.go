package producer_test

// Multi-process tests: the test binary re-executes itself with
// FRAMERING_PRODUCER_TEST_ROLE=producer, and the child runs a real
// producer (the C SDK in zero-copy mode when this build has cgo) until it
// is signalled or killed; this process is the consumer.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/native"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ringbuf"
)

// mpGeo is a realistic small camera frame.
var mpGeo = frame.Packed(640, 480, frame.Mono8)

func runChild(role string) error {
	switch role {
	case "producer":
		return childProducer()
	case "consumer":
		return childConsumer()
	}
	return fmt.Errorf("unknown role %q", role)
}

// childProducer runs a producer on ring FR_RING with source FR_SOURCE
// (safe-copy if FR_COPY=1) at FR_FPS, reports {"ready":..} once the ring
// accepts consumers and its final Stats when SIGTERM ends it.
func childProducer() error {
	fps, _ := strconv.ParseFloat(os.Getenv("FR_FPS"), 64)
	cfg := producer.Config{
		Name: os.Getenv("FR_RING"), Source: os.Getenv("FR_SOURCE"), Copy: os.Getenv("FR_COPY") == "1",
		Geometry: mpGeo, Defects: true, FrameRate: fps, Slots: 16, StatsInterval: -1,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	p, err := producer.New(cfg)
	if err != nil {
		return err
	}
	emit(map[string]any{"ready": true, "pid": os.Getpid(), "epoch": strconv.FormatUint(p.Epoch(), 16)})
	st, err := p.Run(ctx)
	if err != nil {
		return err
	}
	emit(map[string]any{"stats": st})
	return p.Close()
}

// childConsumer attaches to FR_RING, borrows one frame and keeps it until
// it is killed.
func childConsumer() error {
	ctx := context.Background()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{Name: os.Getenv("FR_RING"), Consumer: "doomed"})
	if err != nil {
		return err
	}
	if _, err := r.Next(ctx); err != nil {
		return err
	}
	emit(map[string]any{"ready": true, "pid": os.Getpid()})
	select {}
}

func emit(v any) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}

type child struct {
	cmd   *exec.Cmd
	lines chan map[string]json.RawMessage
	exit  chan error
}

func startChild(t *testing.T, envs ...string) *child {
	t.Helper()
	return startRole(t, "producer", envs...)
}

func startRole(t *testing.T, role string, envs ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{roleEnv + "=" + role}, envs...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan map[string]json.RawMessage, 16), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				c.lines <- m
			}
		}
		io.Copy(io.Discard, out)
		close(c.lines)
		c.exit <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.exit
	})
	return c
}

func (c *child) next(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	select {
	case m, ok := <-c.lines:
		if !ok {
			t.Fatalf("producer child exited without reporting")
		}
		return m
	case <-time.After(hangGuard):
		t.Fatalf("producer child reported nothing for %v", hangGuard)
	}
	return nil
}

// verifyFrom attaches to ring name and verifies frames until it has
// verified want of them (then it returns the Reader, still attached) or the
// ring ends. Every frame must pass frame.Verify, equal the regenerated
// pattern and carry a larger frame id than the one before.
func verifyFrom(t *testing.T, name string, want int) (*ringbuf.Reader, *checker) {
	t.Helper()
	r := attach(t, name, ringbuf.Lossless, "mp-verifier")
	c := newChecker(t, mpGeo, true)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for c.n < want {
		l, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("after %d verified frames: %v", c.n, err)
		}
		if err := c.check(l.Meta(), l.Bytes()); err != nil {
			t.Error(err)
		}
		l.Release()
	}
	return r, c
}

// The producer in one process, the consumer in this one: every frame
// verifies and frame ids only increase. Then the producer is killed with
// SIGKILL mid-run, and a new producer serves the same name at once (the
// stale socket needs no cleanup); it is stopped with SIGTERM and accounts
// for every frame id.
func TestMultiProcessVerifyAndKill(t *testing.T) {
	source := native.KindSynthetic
	if native.SDKAvailable {
		source = native.KindSDK
	}
	name := ringName()
	env := []string{"FR_RING=" + name, "FR_SOURCE=" + source, "FR_FPS=1000"}

	first := startChild(t, env...)
	first.next(t) // ready
	r, c := verifyFrom(t, name, 300)
	if c.failed != 0 {
		t.Fatalf("%d of %d frames failed verification", c.failed, c.n)
	}

	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-first.exit; err == nil {
		t.Fatal("killed producer exited cleanly")
	}
	first.exit <- nil // for Cleanup
	// The consumer drains what was published, verifying, then learns the
	// producer is gone.
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for {
		l, err := r.Next(ctx)
		if err != nil {
			if !errors.Is(err, ringbuf.ErrProducerGone) && !errors.Is(err, ringbuf.ErrClosed) {
				t.Fatalf("after kill -9 of the producer, Next = %v, want ErrProducerGone", err)
			}
			break
		}
		if err := c.check(l.Meta(), l.Bytes()); err != nil {
			t.Error(err)
		}
		l.Release()
	}
	r.Close()

	second := startChild(t, env...)
	second.next(t) // ready: the stale socket was taken over
	_, c2 := verifyFrom(t, name, 100)
	if c2.failed != 0 || c.failed != 0 {
		t.Fatalf("verification failures: %d before the kill, %d after the restart", c.failed, c2.failed)
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var st producer.Stats
	if err := json.Unmarshal(second.next(t)["stats"], &st); err != nil {
		t.Fatal(err)
	}
	if err := <-second.exit; err != nil {
		t.Fatalf("producer after SIGTERM: %v", err)
	}
	second.exit <- nil
	if st.Frames != st.Accounted() || st.Published < 100 || st.Source != source || st.Mode != "zero-copy" {
		t.Fatalf("final stats %+v", st)
	}
	t.Logf("verified %d + %d frames across two producer processes; second producer: %+v", c.n, c2.n, st)
}
