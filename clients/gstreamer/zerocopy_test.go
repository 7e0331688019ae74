package framesrc_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const zcHeld = 4

// zerocopy starts tests/zerocopy (framesrc ! appsink in an application,
// sanitized) on a fresh producer's ring and waits until it holds its
// buffers; the ring then shows zcHeld slots held by it.
func zerocopy(t *testing.T) (prod, zc *proc, ring string) {
	t.Helper()
	ring = ringName(t)
	prod = producer(t, nil, ring, "-width", "64", "-height", "48", "-fps", "200", "-hold-quota", "8")
	zc = start(t, nil, tools.env, filepath.Join(tools.plugin, "zerocopy"), ring, fmt.Sprint(zcHeld))
	from := 0
	zc.waitContains(t, "zerocopy holding", &from, "HOLDING")
	// framesrc borrows again the slot the program released (appsink
	// queues every buffer): max-held slots, never more.
	waitRing(t, nil, ring, "zerocopy holding max-held slots", func(v ringView) bool {
		if got := v.heldBy("zerocopy"); got > zcHeld {
			t.Fatalf("ringctl: zerocopy holds %d slots, max-held is %d", got, zcHeld)
		}
		return v.heldBy("zerocopy") == zcHeld
	})
	return prod, zc, ring
}

// TestZeroCopyBuffersAreRingSlots: a buffer's memory is the ring slot
// (inside the process's mapping of the ring, read-only), copies beyond
// max-held, leases released only at the memory's last unref, and all of
// them back at a clean stop (the producer reclaims nothing).
func TestZeroCopyBuffersAreRingSlots(t *testing.T) {
	setup(t)
	prod, zc, ring := zerocopy(t)
	if _, err := zc.stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if code := finishGst(t, zc); code != 0 {
		t.Fatalf("zerocopy exited %d:\n%s", code, zc.text())
	}
	if !strings.Contains(zc.text(), "RELEASED") {
		t.Fatalf("zerocopy:\n%s", zc.text())
	}
	t.Logf("zerocopy:\n%s", zc.text())
	v := waitRing(t, nil, ring, "zerocopy detached", func(v ringView) bool { return len(v.Consumers) == 0 })
	if v.Reclaims != 0 || v.ReclaimedHolds != 0 || v.Evictions != 0 || v.SlotCounts.Held != 0 {
		t.Fatalf("after a clean stop: %+v", v)
	}
	stopProducer(t, prod)
}

// TestKilledHolderIsReclaimed: kill -9 of the application while its
// buffers hold slots; the producer reclaims the holds.
func TestKilledHolderIsReclaimed(t *testing.T) {
	setup(t)
	prod, zc, ring := zerocopy(t)
	zc.signal(t, syscall.SIGKILL)
	zc.wait(t)
	v := waitRing(t, nil, ring, "holds reclaimed", func(v ringView) bool {
		return len(v.Consumers) == 0 && v.SlotCounts.Held == 0
	})
	if v.Reclaims != 1 || v.ReclaimedHolds != zcHeld {
		t.Fatalf("after kill -9: reclaims %d, reclaimed holds %d, want 1 and %d", v.Reclaims, v.ReclaimedHolds, zcHeld)
	}
	stopProducer(t, prod)
}
