package ringbuf

// Helpers of the white-box tests: a ring and a reader of their own, a
// consumer process, a hang guard, the union of every holder mask.

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
)

var internalRings atomic.Int64

func internalRing(t *testing.T, cfg Config) *Producer {
	t.Helper()
	cfg.SocketPath = fmt.Sprintf("%s/internal-%d.sock", os.Getenv("FRAMERING_RUNTIME_DIR"), internalRings.Add(1))
	if cfg.SlotSize == 0 {
		cfg.SlotSize = 4096
	}
	p, err := Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func internalAttach(t *testing.T, p *Producer, opts Options) *Reader {
	t.Helper()
	opts.SocketPath = p.Path()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := Attach(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// spawnChild starts this test binary as a consumer process of p in role
// (multiproc_test.go's runChild); it is killed at the end of the test.
func spawnChild(t *testing.T, p *Producer, role string, envs ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"FRAMERING_TEST_ROLE=" + role, "FR_PATH=" + p.Path()}, envs...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// poll waits for cond, failing the test if it does not hold within the
// hang guard.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("hang guard: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// reviewGuard fails the test if fn does not return within the hang guard.
func hangGuard(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("hang guard: %s did not finish", what)
	}
}

func holderBits(p *Producer) uint64 {
	var m uint64
	for k := uint32(0); k < p.geo.slots; k++ {
		m |= p.ctl.hold(k).Load()
	}
	return m
}

// fillPattern writes frame seq's test pattern over b: seq, then
// byte(seq) ^ i at every offset i from 8 on.
func fillPattern(b []byte, seq uint64) {
	binary.LittleEndian.PutUint64(b, seq)
	for i := 8; i < len(b); i++ {
		b[i] = byte(seq) ^ byte(i)
	}
}

// patternIntact reports whether b is the whole n-byte pattern of seq.
func patternIntact(b []byte, seq uint64, n int) bool {
	if len(b) != n || binary.LittleEndian.Uint64(b) != seq {
		return false
	}
	for i := 8; i < n; i++ {
		if b[i] != byte(seq)^byte(i) {
			return false
		}
	}
	return true
}
