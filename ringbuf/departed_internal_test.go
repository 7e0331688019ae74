package ringbuf

// A consumer whose exit is noticed before its connection ends, white-box:
// the bye it sent decides clean detach or reclaim, whether it is still
// queued on the connection or already read by the handler, and the
// consumer is dropped by the time departed (or ConsumerExited) returns.

import (
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/shm"
)

// queuedPeer registers a consumer on a connection nobody reads (no handler),
// as if its process exit had been noticed before the handler got to it.
func queuedPeer(t *testing.T, p *Producer, name string) (*peer, *shm.Conn) {
	t.Helper()
	ln, err := shm.Listen(filepath.Join(t.TempDir(), "peer.sock"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan *shm.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := shm.Dial(ln.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	cred, err := server.Peer()
	if err != nil {
		t.Fatal(err)
	}
	pr := &peer{conn: server, cred: cred, name: name, mode: Lossy, entry: -1}
	if err := p.register(pr); err != nil {
		t.Fatal(err)
	}
	return pr, client
}

// The fallback, when no handler finishes in time (here there is none):
// departed decides from the bytes still queued.
func TestDepartedReadsQueuedBye(t *testing.T) {
	p := internalRing(t, Config{})
	p.departWait = 0 // no handler will ever finish: fall back at once
	polite, client := queuedPeer(t, p, "polite")
	var bye [msgSize]byte
	encodeBye(bye[:])
	if err := client.Send(bye[:]); err != nil {
		t.Fatal(err)
	}
	p.departed(polite)
	if s := p.Snapshot(); s.Detaches != 1 || s.Reclaims != 0 {
		t.Fatalf("a bye queued when the exit was noticed: detaches %d reclaims %d, want 1 and 0", s.Detaches, s.Reclaims)
	}
	rude, client := queuedPeer(t, p, "rude")
	var junk [msgSize]byte
	junk[0] = 1
	if err := client.Send(junk[:]); err != nil {
		t.Fatal(err)
	}
	p.departed(rude)
	if s := p.Snapshot(); s.Detaches != 2 || s.Reclaims != 1 {
		t.Fatalf("no bye: detaches %d reclaims %d, want 2 and 1", s.Detaches, s.Reclaims)
	}
}

// gate stops a connection's handler at a test hook until released; release
// is also registered as a cleanup (before the ring's Close runs), so a
// failed test never leaves a handler stopped under Close.
type gate struct {
	stopped chan *peer
	open    chan struct{}
	once    sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{stopped: make(chan *peer, 1), open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

// stop reports pr and blocks until release.
func (g *gate) stop(pr *peer) {
	g.stopped <- pr
	<-g.open
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// waitPeer returns the peer the handler stopped for.
func (g *gate) waitPeer(t *testing.T, what string) *peer {
	t.Helper()
	select {
	case pr := <-g.stopped:
		return pr
	case <-time.After(60 * time.Second):
		t.Fatalf("hang guard: %s", what)
		return nil
	}
}

// departRacing runs fn (departed or ConsumerExited) while the handler is
// stopped at its gate, and releases the handler once fn either returned
// (it decided alone) or ended the reading side and waits for the handler.
// It returns fn's result after both.
func departRacing(t *testing.T, g *gate, departing <-chan *peer, fn func() int) int {
	t.Helper()
	res := make(chan int, 1)
	go func() { res <- fn() }()
	var n int
	returned := false
	select {
	case n = <-res:
		returned = true
	case <-departing:
	case <-time.After(60 * time.Second):
		t.Fatal("hang guard: departure neither returned nor waited for the handler")
	}
	g.release()
	if !returned {
		select {
		case n = <-res:
		case <-time.After(60 * time.Second):
			t.Fatal("hang guard: departure did not return after the handler was released")
		}
	}
	return n
}

// The window the handler leaves between reading a bye and recording it: a
// departure noticed then (the pidfd or a kernel report) must still count a
// clean detach, not a reclaim. The consumer either closed its connection
// after the bye (its process exited) or left it open (inherited by a child).
func TestDepartedWaitsForTheHandlersBye(t *testing.T) {
	for _, tc := range []struct {
		name string
		bye  func(t *testing.T, r *Reader)
	}{
		{"closed", func(t *testing.T, r *Reader) {
			if err := r.Close(); err != nil { // sends the bye, closes the connection
				t.Fatal(err)
			}
		}},
		{"open", func(t *testing.T, r *Reader) {
			var b [msgSize]byte
			encodeBye(b[:])
			if err := r.conn.Send(b[:]); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := internalRing(t, Config{})
			p.departWait = time.Hour // only the handler may decide
			g := newGate(t)
			departing := make(chan *peer, 1)
			p.hooks.Store(&testHooks{
				read: func(pr *peer, msg []byte, err error) {
					if err == nil && isBye(msg) {
						g.stop(pr) // the bye is read, not yet recorded
					}
				},
				departing: func(pr *peer) { departing <- pr },
			})
			r := internalAttach(t, p, Options{Consumer: "polite"})
			tc.bye(t, r)
			pr := g.waitPeer(t, "the handler to read the bye")
			departRacing(t, g, departing, func() int { p.departed(pr); return 0 })
			s := p.Snapshot()
			if s.Detaches != 1 || s.Reclaims != 0 || len(s.Consumers) != 0 {
				t.Fatalf("bye read but not recorded when the exit was noticed: detaches %d reclaims %d consumers %d, want 1, 0 and 0",
					s.Detaches, s.Reclaims, len(s.Consumers))
			}
		})
	}
}

// A consumer that leaves without a bye, its connection still open (as if
// inherited by a child), holding a lease: departed counts a reclaim, the
// handler discards what else it sent, and the holds are cleared when
// departed returns. Only the handler can decide here (no fallback), so a
// handler that never sees the end of its connection hangs the test.
func TestDepartedReclaimsRudeConsumer(t *testing.T) {
	p := internalRing(t, Config{Slots: 4, EvictAfter: time.Hour})
	p.departWait = time.Hour
	var registered *peer
	r := internalAttach(t, p, Options{Consumer: "rude"})
	s, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(s, Meta{Length: 8}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Borrow(1); err != nil { // never released
		t.Fatal(err)
	}
	var junk [msgSize]byte
	junk[0] = 1
	if err := r.conn.Send(junk[:]); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	for _, pr := range p.entries {
		if pr != nil {
			registered = pr
		}
	}
	p.mu.Unlock()
	hangGuard(t, "departed", func() { p.departed(registered) })
	snap := p.Snapshot()
	if snap.Detaches != 1 || snap.Reclaims != 1 || snap.ReclaimedHolds != 1 || len(snap.Consumers) != 0 {
		t.Fatalf("rude consumer departed: detaches %d reclaims %d reclaimed holds %d consumers %d, want 1, 1, 1 and 0",
			snap.Detaches, snap.Reclaims, snap.ReclaimedHolds, len(snap.Consumers))
	}
	if m := holderBits(p); m != 0 {
		t.Fatalf("holder bits %#x left when departed returned", m)
	}
}

// ConsumerExited reclaims before it returns: a consumer killed with holds,
// reported by the kernel while its handler has read the connection's end
// but not yet dropped it, is reclaimed (counted, holds cleared) when
// ConsumerExited returns, and is counted as one consumer reclaimed.
func TestConsumerExitedReclaimsBeforeReturning(t *testing.T) {
	p := internalRing(t, Config{Slots: 4, EvictAfter: time.Hour})
	p.departWait = time.Hour
	g := newGate(t)
	departing := make(chan *peer, 1)
	p.hooks.Store(&testHooks{
		read: func(pr *peer, _ []byte, err error) {
			if err != nil && pr.name == "holder" {
				g.stop(pr) // the end is read, the peer not yet dropped
			}
		},
		departing: func(pr *peer) { departing <- pr },
	})
	cmd := spawnChild(t, p, "holder", "FR_HOLD=2")
	poll(t, "holder attached", func() bool { return len(p.Snapshot().Consumers) == 1 })
	for i := 0; i < 2; i++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Publish(s, Meta{Length: 8}); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "holder holding 2 frames", func() bool {
		held := 0
		for k := uint32(0); k < p.geo.slots; k++ {
			if p.ctl.hold(k).Load() != 0 {
				held++
			}
		}
		return held == 2
	})
	var holder *peer
	p.mu.Lock()
	for _, pr := range p.entries {
		if pr != nil {
			holder = pr
		}
	}
	p.mu.Unlock()
	if holder.pidfd == nil {
		t.Fatal("no pidfd for the holder: ConsumerExited needs one")
	}
	// Only the kernel report notices the exit: the pidfd watcher is told
	// to look away.
	p.watcher.Remove(holder.pidfd)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if pr := g.waitPeer(t, "the handler to read the end of the connection"); pr != holder {
		t.Fatalf("handler stopped for %q, want the holder", pr.name)
	}
	n := departRacing(t, g, departing, func() int { return p.ConsumerExited(cmd.Process.Pid) })
	snap := p.Snapshot()
	if n != 1 || snap.Detaches != 1 || snap.Reclaims != 1 || snap.ReclaimedHolds != 2 || len(snap.Consumers) != 0 {
		t.Fatalf("ConsumerExited returned %d: detaches %d reclaims %d reclaimed holds %d consumers %d, want 1, 1, 1, 2 and 0",
			n, snap.Detaches, snap.Reclaims, snap.ReclaimedHolds, len(snap.Consumers))
	}
	if m := holderBits(p); m != 0 {
		t.Fatalf("holder bits %#x left when ConsumerExited returned", m)
	}
}
