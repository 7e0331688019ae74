// Command goconsumer is the Python tests' Go consumer: it reads frames from
// a ring with ringbuf (the Go reader) and prints one JSON line per frame —
// its sequence number, metadata and the SHA-256 of its bytes — so that a
// test can compare what a Go and a Python consumer received.
//
//	goconsumer -socket PATH -n 200 [-lossless] [-start 1]
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/framering/framering/ringbuf"
)

func main() {
	socket := flag.String("socket", "", "ring socket path")
	n := flag.Int("n", 100, "frames to read")
	lossless := flag.Bool("lossless", false, "lossless consumer")
	start := flag.Uint64("start", 0, "first sequence number wanted")
	flag.Parse()
	if err := run(*socket, *n, *lossless, *start); err != nil {
		fmt.Fprintln(os.Stderr, "goconsumer:", err)
		os.Exit(1)
	}
}

func run(socket string, n int, lossless bool, start uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mode := ringbuf.Lossy
	if lossless {
		mode = ringbuf.Lossless
	}
	r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: socket, Consumer: "goconsumer", Mode: mode, From: start})
	if err != nil {
		return err
	}
	defer r.Close()
	enc := json.NewEncoder(os.Stdout)
	enc.Encode(map[string]any{"attached": true})
	for i := 0; i < n; i++ {
		l, err := r.Next(ctx)
		if err != nil {
			return err
		}
		m := l.Meta()
		sum := sha256.Sum256(l.Bytes())
		rec := map[string]any{"seq": m.Seq, "frame_id": m.FrameID, "width": m.Width, "height": m.Height,
			"stride": m.Stride, "format": uint32(m.Format), "length": m.Length, "flags": m.Flags,
			"timestamp": m.Timestamp, "sha256": hex.EncodeToString(sum[:])}
		if err := l.Release(); err != nil {
			return err
		}
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	return nil
}
