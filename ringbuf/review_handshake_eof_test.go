package ringbuf_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
	"github.com/framering/framering/shm"
)

// A producer that closes the connection without a welcome (it is closing,
// or timed out waiting for the hello) is gone, not corrupt: a consumer that
// re-attaches waits for ErrProducerGone/ErrClosed and gives up on anything
// else.
func TestReviewHandshakeEOFIsProducerGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := shm.Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var b [64]byte
			c.Read(b[:]) // the hello
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = ringbuf.Attach(ctx, ringbuf.Options{SocketPath: path})
	if !errors.Is(err, ringbuf.ErrProducerGone) && !errors.Is(err, ringbuf.ErrClosed) {
		t.Fatalf("connection closed without a welcome: %v", err)
	}
}
