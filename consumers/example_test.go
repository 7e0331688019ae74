package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/framering/framering/consumers"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

// demoProducer stands in for cmd/producer: an in-process ring, whose socket
// lives in a temporary directory, filled with pattern frames.
type demoProducer struct {
	p   *ringbuf.Producer
	gen *frame.Generator
	dir string
}

func startDemoProducer() (*demoProducer, string) {
	dir, err := os.MkdirTemp("", "framering-example-")
	if err != nil {
		panic(err)
	}
	sock := filepath.Join(dir, "cam0.sock")
	g := frame.Packed(64, 16, frame.Mono8)
	p, err := ringbuf.Create(ringbuf.Config{SocketPath: sock, Slots: 4, SlotSize: g.Size(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		panic(err)
	}
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		panic(err)
	}
	return &demoProducer{p: p, gen: gen, dir: dir}, sock
}

// publish publishes n pattern frames (frame id = sequence number).
func (d *demoProducer) publish(n int) {
	for i := 0; i < n; i++ {
		if err := publishPattern(d.p, d.gen); err != nil {
			panic(err)
		}
	}
}

func (d *demoProducer) stop() {
	d.p.Close()
	os.RemoveAll(d.dir)
}

// A complete consumer: attach, range over the frames, check why the loop
// ended. Here the producer publishes three frames and closes the ring.
func Example() {
	prod, sock := startDemoProducer()
	defer prod.stop()
	ctx := context.Background()

	c, err := consumers.Attach(ctx, consumers.Options{SocketPath: sock, Name: "example", Mode: consumers.Lossless})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	prod.publish(3)
	prod.p.Close()

	for f := range c.Frames(ctx) {
		m := f.Meta()
		st, err := frame.Verify(f.Bytes()) // f.Bytes() is shared memory: read, never keep
		fmt.Printf("seq %d: %dx%d %v, %d bytes, stamp id %d, intact %v\n",
			m.Seq, m.Width, m.Height, m.Format, len(f.Bytes()), st.FrameID, err == nil)
	}
	fmt.Println("ring closed:", errors.Is(c.Err(), consumers.ErrClosed))
	fmt.Println("delivered:", c.Stats().Delivered)
	// Output:
	// seq 1: 64x16 Mono8, 1024 bytes, stamp id 1, intact true
	// seq 2: 64x16 Mono8, 1024 bytes, stamp id 2, intact true
	// seq 3: 64x16 Mono8, 1024 bytes, stamp id 3, intact true
	// ring closed: true
	// delivered: 3
}

// Keep holds a frame past its loop iteration (and its slot, so the producer
// cannot overwrite it) until Release.
func ExampleFrame_Keep() {
	prod, sock := startDemoProducer()
	defer prod.stop()
	ctx := context.Background()
	c, err := consumers.Attach(ctx, consumers.Options{SocketPath: sock, Name: "keeper", Mode: consumers.Lossless})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	prod.publish(3)

	var first *consumers.Frame
	for f := range c.Frames(ctx) {
		if first == nil {
			first = f.Keep() // keep the handle Keep returns, not f
		}
		if f.Meta().Seq == 3 {
			break
		}
	}
	fmt.Println("kept frames:", c.Stats().Kept)
	st, err := frame.Verify(first.Bytes())
	fmt.Println("kept frame", first.Meta().Seq, "still intact:", err == nil && st.FrameID == 1)
	fmt.Println("release:", first.Release())
	fmt.Println("bytes after release:", first.Bytes() == nil, "kept frames:", c.Stats().Kept)
	// Output:
	// kept frames: 1
	// kept frame 1 still intact: true
	// release: <nil>
	// bytes after release: true kept frames: 0
}

// Safe-copy mode: the same frames, each copied into private memory that
// belongs to the caller, so keeping the bytes is fine. Switching a
// misbehaving consumer to Copy: true tells an ownership bug (it behaves)
// from an algorithm bug (it does not).
func ExampleOptions_copy() {
	prod, sock := startDemoProducer()
	defer prod.stop()
	ctx := context.Background()
	c, err := consumers.Attach(ctx, consumers.Options{SocketPath: sock, Name: "copier",
		Mode: consumers.Lossless, Copy: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	prod.publish(3)

	var saved [][]byte
	for f := range c.Frames(ctx) {
		saved = append(saved, f.Bytes()) // private copies: safe to keep
		if len(saved) == 3 {
			break
		}
	}
	for _, b := range saved {
		st, err := frame.Verify(b)
		fmt.Println("frame", st.FrameID, "intact:", err == nil)
	}
	// Output:
	// frame 1 intact: true
	// frame 2 intact: true
	// frame 3 intact: true
}
