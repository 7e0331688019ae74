package consumers_test

// The test binary doubles as a producer process: with FRAMERING_TEST_ROLE
// set it runs that role instead of the tests (multi-process tests
// re-execute it).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/framering/framering/clock"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/ringbuf"
)

const roleEnv = "FRAMERING_TEST_ROLE"

func TestMain(m *testing.M) { os.Exit(testmain.Run(m, roleEnv, runChild)) }

var testGeometry = frame.Packed(96, 32, frame.Mono8)

// runChild runs a role in a child process.
//
//	producer: creates a ring at FR_PATH and publishes pattern frames (frame
//	id = sequence number) every FR_INTERVAL_US, forever, after printing
//	{"epoch": "<hex>", "pid": N}. It ends by kill -9, or when stdin closes.
func runChild(role string) error {
	if role != "producer" {
		return fmt.Errorf("unknown role %q", role)
	}
	p, err := ringbuf.Create(ringbuf.Config{SocketPath: os.Getenv("FR_PATH"), Slots: 8, SlotSize: testGeometry.Size()})
	if err != nil {
		return err
	}
	defer p.Close()
	gen, err := frame.NewGenerator(testGeometry, true)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]any{"epoch": strconv.FormatUint(p.Epoch(), 16), "pid": os.Getpid()})
	os.Stdout.Write(append(b, '\n'))
	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	interval, _ := strconv.Atoi(os.Getenv("FR_INTERVAL_US"))
	tick := time.NewTicker(time.Duration(max(interval, 100)) * time.Microsecond)
	defer tick.Stop()
	for {
		select {
		case <-stdinClosed:
			return nil
		case <-tick.C:
		}
		if err := publishPattern(p, gen); err != nil && !errors.Is(err, ringbuf.ErrNoFreeSlot) {
			return err
		}
	}
}

// publishPattern publishes the pattern frame whose id is the sequence
// number it will get.
func publishPattern(p *ringbuf.Producer, gen *frame.Generator) error {
	s, err := p.Acquire()
	if err != nil {
		return err
	}
	id := p.Published() + 1
	if err := gen.Fill(s.Bytes(), id); err != nil {
		p.Abort(s)
		return err
	}
	g := gen.Geometry()
	_, err = p.Publish(s, ringbuf.Meta{FrameID: id, Timestamp: clock.Nanos(), Width: uint32(g.Width),
		Height: uint32(g.Height), Stride: uint32(g.Stride), Format: g.Format, Length: uint64(g.Size())})
	return err
}

// startChild re-executes this test binary in role.
func startChild(t *testing.T, role string, envs ...string) *testmain.Child {
	return testmain.Start(t, roleEnv, role, envs...)
}

// testCtx is a hang guard, not a timing assertion.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
