package framesrc_test

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// stopGst interrupts a gst-launch-1.0 started with -e (EOS on SIGINT) and
// checks that it ended cleanly, without a sanitizer report.
func stopGst(t *testing.T, g *proc) {
	t.Helper()
	g.signal(t, syscall.SIGINT)
	if code := finishGst(t, g); code != 0 {
		t.Fatalf("gst-launch-1.0 exited %d:\n%s", code, g.text())
	}
}

var chainLine = regexp.MustCompile(`last-message = chain .*offset: (\d+), offset_end: \d+, flags: [0-9a-f]+ ([^,]*),`)

// TestQuotaPolicy: a queue downstream keeps more buffers than the hold
// quota allows; framesrc stays within the quota (never evicted, the
// producer never blocked) and copies (quota-policy=copy) or drops
// (quota-policy=drop) the rest, counted. Every gap in the buffers'
// offsets (ring sequence numbers) carries DISCONT, and a clean stop
// releases every lease (the producer reclaims nothing).
func TestQuotaPolicy(t *testing.T) {
	for _, policy := range []string{"copy", "drop"} {
		t.Run(policy, func(t *testing.T) {
			ring := ringName(t)
			const quota = 4
			prod := producer(t, nil, ring, "-width", "64", "-height", "48", "-fps", "200", "-hold-quota", strconv.Itoa(quota))
			g := gst(t, nil, "-e", "-v", "framesrc", "ring="+ring, "consumer-name=fs", "quota-policy="+policy,
				"stats-interval=100", "!", "queue", "max-size-buffers=8", "max-size-bytes=0", "max-size-time=0",
				"!", "identity", "sleep-time=20000", "!", "fakesink", "silent=false")
			from := 0
			var st map[string]uint64
			switch policy {
			case "copy":
				st = waitStats(t, g, "copies", &from, func(s map[string]uint64) bool { return s["copied-quota"] >= 10 })
			case "drop":
				st = waitStats(t, g, "drops", &from, func(s map[string]uint64) bool { return s["dropped"] >= 10 && s["discont"] >= 2 })
			}
			v := ringctl(t, nil, ring)
			if h := v.heldBy("fs"); h > quota {
				t.Fatalf("framesrc holds %d slots, quota %d", h, quota)
			}
			if v.Evictions != 0 || v.HoldQuota != quota {
				t.Fatalf("ring: %+v", v)
			}
			if st["zero-copy"] < quota {
				t.Fatalf("stats %v: fewer zero-copy buffers than the quota", st)
			}
			// (Frames dropped after the last pushed buffer are not yet in
			// lost: the gap is counted when it closes.)
			if policy == "drop" && (st["copied-quota"] != 0 || st["lost"] == 0) {
				t.Fatalf("stats %v", st)
			}
			stopGst(t, g)
			final := lastStats(t, g)
			t.Logf("framesrc stats: %v", final)

			// Gaps in the ring's sequence numbers carry DISCONT; the rest
			// do not.
			var prev uint64
			n, gaps := 0, 0
			for _, l := range strings.Split(g.text(), "\n") {
				m := chainLine.FindStringSubmatch(l)
				if m == nil {
					continue
				}
				off, _ := strconv.ParseUint(m[1], 10, 64)
				discont := strings.Contains(m[2], "discont")
				if n > 0 && (off != prev+1) != discont {
					t.Fatalf("buffer offset %d after %d, discont %v: %s", off, prev, discont, l)
				}
				if n > 0 && discont {
					gaps++
				}
				prev = off
				n++
			}
			if n < 10 || (policy == "drop" && gaps == 0) {
				t.Fatalf("%d buffers, %d gaps seen by fakesink", n, gaps)
			}
			v = waitRing(t, nil, ring, "framesrc detached", func(v ringView) bool { return len(v.Consumers) == 0 })
			if v.Reclaims != 0 || v.SlotCounts.Held != 0 || v.Evictions != 0 {
				t.Fatalf("after a clean stop: %+v", v)
			}
			stopProducer(t, prod)
		})
	}
}

var capsLine = regexp.MustCompile(`GstFakeSink:fakesink0\.GstPad:sink: caps = (.*)$`)

// waitCaps waits for fakesink's sink pad to be given caps containing
// every want.
func waitCaps(t *testing.T, g *proc, from *int, want ...string) {
	t.Helper()
	g.waitLine(t, "caps "+strings.Join(want, " "), from, func(l string) bool {
		m := capsLine.FindStringSubmatch(l)
		if m == nil {
			return false
		}
		for _, w := range want {
			if !strings.Contains(m[1], w) {
				return false
			}
		}
		return true
	})
}

// TestRenegotiateOnNewProducer: the producer is restarted with another
// geometry and format (after a clean close with eos-on-close=false, and
// after kill -9): framesrc attaches again and renegotiates caps.
func TestRenegotiateOnNewProducer(t *testing.T) {
	ring := ringName(t)
	a := producer(t, nil, ring, "-format", "Mono8", "-width", "64", "-height", "48", "-fps", "100")
	g := gst(t, nil, "-e", "-v", "framesrc", "ring="+ring, "eos-on-close=false", "stats-interval=100", "!", "fakesink")
	from := 0
	waitCaps(t, g, &from, "format=(string)GRAY8", "width=(int)64", "height=(int)48")
	stopProducer(t, a)
	g.waitContains(t, "waiting after close", &from, "was closed; waiting for its next producer")

	b := producer(t, nil, ring, "-format", "RGB8", "-width", "80", "-height", "60", "-fps", "100")
	waitCaps(t, g, &from, "format=(string)RGB", "width=(int)80", "height=(int)60")
	b.signal(t, syscall.SIGKILL)
	b.wait(t)
	g.waitContains(t, "producer gone", &from, "is gone; waiting for a new one")

	c := producer(t, nil, ring, "-format", "Mono12", "-width", "32", "-height", "16", "-fps", "100")
	waitCaps(t, g, &from, "format=(string)GRAY16_LE", "width=(int)32", "height=(int)16")
	st := waitStats(t, g, "two renegotiations", &from, func(s map[string]uint64) bool {
		return s["caps-changes"] == 2 && s["reattaches"] >= 2
	})
	if st["evictions"] != 0 {
		t.Fatalf("stats %v", st)
	}
	stopGst(t, g)
	stopProducer(t, c)
}

// TestEOSOnRingClose: a lossless framesrc ends its stream when the
// producer closes the ring, after reading every frame.
func TestEOSOnRingClose(t *testing.T) {
	ring := ringName(t)
	prod := producer(t, nil, ring, "-width", "64", "-height", "48", "-fps", "200")
	g := gst(t, nil, "framesrc", "ring="+ring, "lossless=true", "stats-interval=50", "!", "fakesink")
	from := 0
	waitStats(t, g, "frames", &from, func(s map[string]uint64) bool { return s["pushed"] >= 20 })
	stopProducer(t, prod)
	sum := summary(t, prod)
	if code := finishGst(t, g); code != 0 {
		t.Fatalf("gst-launch-1.0 exited %d:\n%s", code, g.text())
	}
	if !strings.Contains(g.text(), "Got EOS from element") {
		t.Fatalf("no EOS:\n%s", g.text())
	}
	st := lastStats(t, g)
	if st["lost"] != 0 || st["pushed"] == 0 || st["pushed"] > sum.Published {
		t.Fatalf("stats %v, producer published %d", st, sum.Published)
	}
}

// TestProducerGoneEOS: with reattach=false, a killed producer ends the
// stream (EOS, exit 0) with a warning.
func TestProducerGoneEOS(t *testing.T) {
	ring := ringName(t)
	prod := producer(t, nil, ring, "-width", "64", "-height", "48", "-fps", "200")
	g := gst(t, nil, "framesrc", "ring="+ring, "reattach=false", "stats-interval=50", "!", "fakesink")
	from := 0
	waitStats(t, g, "frames", &from, func(s map[string]uint64) bool { return s["pushed"] >= 5 })
	prod.signal(t, syscall.SIGKILL)
	prod.wait(t)
	if code := finishGst(t, g); code != 0 {
		t.Fatalf("gst-launch-1.0 exited %d:\n%s", code, g.text())
	}
	for _, want := range []string{"is gone; ending the stream", "Got EOS from element"} {
		if !strings.Contains(g.text(), want) {
			t.Fatalf("no %q:\n%s", want, g.text())
		}
	}
}

// TestKilledGstLaunchIsReclaimed: kill -9 of gst-launch-1.0 while a queue
// holds framesrc's buffers; the producer reclaims the slots they held.
func TestKilledGstLaunchIsReclaimed(t *testing.T) {
	ring := ringName(t)
	prod := producer(t, nil, ring, "-width", "64", "-height", "48", "-fps", "200", "-hold-quota", "4")
	g := gst(t, nil, "framesrc", "ring="+ring, "consumer-name=fs", "!", "queue", "!", "identity", "sleep-time=100000",
		"!", "fakesink")
	waitRing(t, nil, ring, "framesrc holding its quota", func(v ringView) bool { return v.heldBy("fs") == 4 })
	g.signal(t, syscall.SIGKILL)
	g.wait(t)
	v := waitRing(t, nil, ring, "holds reclaimed", func(v ringView) bool {
		return len(v.Consumers) == 0 && v.SlotCounts.Held == 0
	})
	// (identity may have just freed one, not yet borrowed again.)
	if v.Reclaims != 1 || v.ReclaimedHolds < 1 || v.ReclaimedHolds > 4 {
		t.Fatalf("after kill -9: reclaims %d, reclaimed holds %d, want 1 and 1..4", v.Reclaims, v.ReclaimedHolds)
	}
	stopProducer(t, prod)
}
