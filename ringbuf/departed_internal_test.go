package ringbuf

// A consumer whose exit is noticed before its connection ends, white-box:
// the bye still queued on the connection decides clean detach or reclaim.

import (
	"path/filepath"
	"testing"

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

func TestDepartedReadsQueuedBye(t *testing.T) {
	p := internalRing(t, Config{})
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
