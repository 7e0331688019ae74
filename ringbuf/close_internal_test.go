package ringbuf

// Closing, white-box: the status a consumer registering during Close gets.

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/framering/framering/shm"
)

// reviewMutexWaiters is the number of goroutines parked on m (the waiter
// count of the runtime's mutex state word; test-only introspection).
func reviewMutexWaiters(m *sync.Mutex) int32 {
	return atomic.LoadInt32((*int32)(unsafe.Pointer(m))) >> 3
}

// A consumer whose hello was accepted just before Producer.Close set
// closed, and whose registration runs just after, is refused as "table
// full" (ErrRefused): a consumer that re-attaches (consumers.Options.
// Reattach) takes that for a definitive refusal and stops, where "closing"
// (ErrClosed) would have made it wait for the next producer.
func TestRegisterDuringCloseSaysClosing(t *testing.T) {
	p := internalRing(t, Config{Slots: 2})
	c, err := shm.Dial(p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The handler is now waiting for our hello. Hold the table lock, so
	// that the registration that follows the hello waits for it (after the
	// handler's own closed check).
	poll(t, "the handler to start", func() bool {
		p.mu.Lock()
		n := len(p.conns)
		p.mu.Unlock()
		return n == 1
	})
	p.mu.Lock()
	var b [msgSize]byte
	hello{version: Version, role: RoleConsumer, mode: Lossless, name: "late"}.encode(b[:])
	if err := c.Send(b[:]); err != nil {
		t.Fatal(err)
	}
	poll(t, "the registration to wait for the table lock", func() bool { return reviewMutexWaiters(&p.mu) >= 1 })
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	poll(t, "Close to mark the ring closed and wait for the lock", func() bool {
		return p.closed.Load() && reviewMutexWaiters(&p.mu) >= 2
	})
	p.mu.Unlock()
	n, files, err := c.Recv(b[:], 2)
	for _, f := range files {
		f.Close()
	}
	<-closed
	// Close may win the lock first (a mutex hands itself to no waiter in
	// particular): then it ends our connection before any welcome, which
	// Attach reports as the producer gone. Either way no consumer is
	// welcomed into a closing ring.
	if errors.Is(err, io.EOF) && n == 0 {
		return
	}
	if err != nil || n != msgSize {
		t.Fatalf("no welcome: %d bytes, %v", n, err)
	}
	w, err := decodeWelcome(b[:])
	if err != nil {
		t.Fatal(err)
	}
	if w.status != statusClosing {
		t.Fatalf("a consumer registering while the ring closes is told status %d, want %d (closing)", w.status, statusClosing)
	}
}
