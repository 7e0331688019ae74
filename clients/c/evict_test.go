package libframering_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

// A C consumer evicted by the producer (docs/LAYOUT.md 11.4) learns of it
// on every path: a lease check reports the lease revoked, fr_next and
// fr_borrow refuse with FR_ERR_EVICTED, fr_get_health says evicted, and each
// release reports its lease revoked — overwritten once the producer reused
// the slots — and counts it in the consumer table (revoked_seen).
func TestEvicted(t *testing.T) {
	b := cBuild(t)
	for _, tc := range []struct {
		name   string
		cfg    ringbuf.Config
		args   []string
		reason string
	}{
		// Holding every slot (the quota allows it here): blamed for blocking
		// the producer, evicted after EvictAfter.
		{"holds", ringbuf.Config{Slots: 4, HoldQuota: 4, EvictAfter: 50 * time.Millisecond}, []string{"hoard"},
			ringbuf.EvictHolds.String()},
		// Past the quota, as a client that ignores it would (frtest sets a
		// hold bit behind the library's back): evicted at once.
		{"over-quota", ringbuf.Config{Slots: 8, HoldQuota: 2}, []string{"hoard", "-forge"}, ringbuf.EvictQuota.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(t, frame.Packed(64, 32, frame.Mono8), tc.cfg)
			r.interval = 200 * time.Microsecond
			pr := startC(t, b, "frtest", append(tc.args, r.p.Path())...)
			r.start()
			h := pr.expect(t, "holding")
			quota := num(t, h, "quota")
			if num(t, h, "n") != quota || quota != uint64(r.p.HoldQuota()) {
				t.Fatalf("holding %v with a quota of %d", h, r.p.HoldQuota())
			}
			if q := pr.expect(t, "quota-check"); tc.cfg.Slots > tc.cfg.HoldQuota && q["rc"] != "FR_ERR_TOO_MANY_HELD" {
				t.Fatalf("a borrow past the quota: %v (the library must refuse it before its hold RMW)", q)
			}
			rv := pr.expect(t, "revoked")
			if c := rv["check"]; c != "FR_ERR_REVOKED" && c != "FR_ERR_REVOKED_OVERWRITTEN" {
				t.Fatalf("lease check after the eviction: %v", rv)
			}
			for _, want := range []string{"next", "borrow"} {
				if l := pr.expect(t, want); l["rc"] != "FR_ERR_EVICTED" {
					t.Fatalf("%s after the eviction: %v", want, l)
				}
			}
			if hl := pr.expect(t, "health"); hl["evicted"] != "1" {
				t.Fatalf("health after the eviction: %v", hl)
			}
			s := r.p.Snapshot()
			c, ok := consumerByPid(s, pr.cmd.Process.Pid)
			if !ok || c.State != "evicted" || c.EvictReason != tc.reason || s.Evictions != 1 {
				t.Fatalf("producer's view: %+v (evictions %d), want evicted for %q", c, s.Evictions, tc.reason)
			}
			// Let the producer reuse every slot the consumer held: each lease
			// is then revoked and overwritten.
			p := r.p.Published()
			waitFor(t, "the producer to reuse the slots", func() bool { return r.p.Published() > p+2*uint64(r.p.Slots()) })
			fmt.Fprintln(pr.stdin)
			for i := uint64(0); i < quota; i++ {
				if l := pr.expect(t, "release"); l["rc"] != "FR_ERR_REVOKED_OVERWRITTEN" {
					t.Fatalf("release %d of a revoked, reused lease: %v", i, l)
				}
			}
			if l := pr.expect(t, "release-again"); l["rc"] != "FR_ERR_RELEASED" {
				t.Fatalf("a second release: %v", l)
			}
			rel := pr.expect(t, "released")
			if num(t, rel, "revoked") != quota || num(t, rel, "held") != 0 {
				t.Fatalf("after releasing: %v", rel)
			}
			c, _ = consumerByPid(r.p.Snapshot(), pr.cmd.Process.Pid)
			if c.RevokedSeen != quota || c.RevokedHolds < quota {
				t.Fatalf("consumer table after the releases: %+v", c)
			}
			if code := pr.finish(t); code != 0 {
				t.Fatalf("frtest exited %d\nstderr:\n%s", code, pr.errText())
			}
			waitDetached(t, r.p, pr.cmd.Process.Pid)
		})
	}
}
