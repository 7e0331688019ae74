package ringbuf

import "testing"

// The cadence learns a steady period, ignores a lone outlier, adopts a new
// rate after cadenceOutliers intervals in a row, and predicts nothing it
// has no basis for.
func TestCadence(t *testing.T) {
	var c cadence
	if c.due(0) != 0 {
		t.Fatal("prediction with no frames seen")
	}
	const ms = int64(1e6)
	c.observe(1, 10*ms)
	if c.due(1) != 0 {
		t.Fatal("prediction from one frame")
	}
	for s := uint64(2); s <= 10; s++ {
		c.observe(s, 10*ms+int64(s-1)*ms)
	}
	if per := c.period.Load(); per != ms {
		t.Fatalf("period %d, want %d", per, ms)
	}
	if got, want := c.due(10), 10*ms+10*ms; got != want {
		t.Fatalf("due(10) = %d, want %d", got, want)
	}
	// A lossy consumer that skipped frames: the prediction steps by the
	// period per frame still to come, and a skip counts per frame.
	if got, want := c.due(12), 10*ms+12*ms; got != want {
		t.Fatalf("due(12) = %d, want %d", got, want)
	}
	c.observe(13, 10*ms+12*ms) // 3 frames, 3 ms: still 1 ms each
	if per := c.period.Load(); per != ms {
		t.Fatalf("after a skip: period %d, want %d", per, ms)
	}
	// Older frames (a random Borrow) change nothing.
	c.observe(5, 99*ms)
	if c.lastSeq.Load() != 13 {
		t.Fatal("an older frame moved the cadence")
	}
	// One late frame is an outlier: the period holds.
	last := 22 * ms
	last += 5 * ms
	c.observe(14, last)
	if per := c.period.Load(); per != ms {
		t.Fatalf("one outlier moved the period to %d", per)
	}
	// The source slowed to 4 ms: adopted after cadenceOutliers intervals.
	for s := uint64(15); s < 15+cadenceOutliers; s++ {
		last += 4 * ms
		c.observe(s, last)
	}
	if per := c.period.Load(); per != 4*ms {
		t.Fatalf("new rate: period %d, want %d", per, 4*ms)
	}
	// Beyond cadenceMaxGap frames ahead, no prediction.
	if c.due(c.lastSeq.Load()+cadenceMaxGap+1) != 0 {
		t.Fatal("prediction too far ahead")
	}
	// Lateness is smoothed and bounded by half a period.
	for range 40 {
		c.noteLate(100 * ms)
	}
	if l := c.late.Load(); l > 2*ms || l < ms {
		t.Fatalf("lateness %d, want about half the 4 ms period", l)
	}
	c.noteLate(-5)
	if l := c.late.Load(); l >= 2*ms {
		t.Fatalf("lateness %d did not come down", l)
	}
}
