package consumers_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/framering/framering/internal/testmain"

	"github.com/framering/framering/consumers"
	"github.com/framering/framering/frame"
)

// A producer in another process is killed with -9 while a consumer with
// Reattach reads it; a new producer process takes over the stale socket and
// the consumer follows it: new epoch, sequence numbers from 1 again, every
// frame intact.
func TestReattachAfterKill9(t *testing.T) {
	path := sockPath(t)
	p1 := startChild(t, "producer", "FR_PATH="+path, "FR_INTERVAL_US=500")
	e1, _ := strconv.ParseUint(p1.Next(t)["epoch"].(string), 16, 64)
	c := attach(t, consumers.Options{SocketPath: path, Name: "survivor", Reattach: true})
	var p2 *testmain.Child
	var e2 uint64
	perEpoch := map[uint64]int{}
	lastSeq := map[uint64]uint64{}
	for f := range c.Frames(testCtx(t)) {
		m := f.Meta()
		if st, err := frame.Verify(f.Bytes()); err != nil || st.FrameID != m.Seq || m.FrameID != m.Seq {
			t.Fatalf("frame seq %d of epoch %x: stamp %+v, %v", m.Seq, f.Epoch(), st, err)
		}
		if m.Seq <= lastSeq[f.Epoch()] {
			t.Fatalf("epoch %x: seq %d after %d", f.Epoch(), m.Seq, lastSeq[f.Epoch()])
		}
		lastSeq[f.Epoch()] = m.Seq
		perEpoch[f.Epoch()]++
		if perEpoch[e1] == 5 && p2 == nil {
			p1.Kill9(t)
			p2 = startChild(t, "producer", "FR_PATH="+path, "FR_INTERVAL_US=500")
			e2, _ = strconv.ParseUint(p2.Next(t)["epoch"].(string), 16, 64)
		}
		if e2 != 0 && perEpoch[e2] == 5 {
			break
		}
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if e1 == e2 || len(perEpoch) != 2 || perEpoch[e1] < 5 || perEpoch[e2] != 5 {
		t.Fatalf("frames per epoch %v (epochs %x, %x)", perEpoch, e1, e2)
	}
	if st := c.Stats(); st.Reattaches != 1 || st.Epoch != e2 {
		t.Fatalf("stats %+v", st)
	}
}

// Without Reattach, kill -9 of the producer ends Frames with
// ErrProducerGone.
func TestKill9WithoutReattach(t *testing.T) {
	path := sockPath(t)
	p := startChild(t, "producer", "FR_PATH="+path, "FR_INTERVAL_US=500")
	p.Next(t)
	c := attach(t, consumers.Options{SocketPath: path, Name: "mortal"})
	n := 0
	for range c.Frames(testCtx(t)) {
		if n++; n == 3 {
			p.Kill9(t)
		}
	}
	if !errors.Is(c.Err(), consumers.ErrProducerGone) {
		t.Fatalf("Err after kill -9 of the producer: %v", c.Err())
	}
}
