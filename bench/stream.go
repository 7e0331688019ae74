package bench

// The copying baselines: the same frames over a Unix stream socket or a
// pipe, the sender filling every byte into its own buffer and writing it
// (one copy into the kernel), each receiver reading it out (one copy out)
// and optionally checksumming it. With several receivers the sender fans
// the frame out, writing it to every connection concurrently, which is
// what replacing the ring with sockets would take.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/framering/framering/frame"
)

// streamBuf is the socket buffer size the baselines ask for (the kernel
// caps it at net.core.wmem_max/rmem_max).
const streamBuf = 4 << 20

// warmMark is ORed into the stamp of warm-up frames.
const warmMark = uint64(1) << 63

// setDeadline bounds a connection's reads and writes by the child's cap.
// A pipe inherited in blocking mode has no deadlines; the harness's kill is
// its bound.
func setDeadline(c any, t time.Time, log *slog.Logger) {
	if d, ok := c.(deadliner); ok {
		if err := d.SetDeadline(t); err != nil {
			log.Debug("no deadline on this descriptor", "err", err)
		}
	}
}

func streamPath(prefix string, i int) string { return fmt.Sprintf("%s.%d", prefix, i) }

type deadliner interface {
	SetDeadline(time.Time) error
}

func runStreamSender(ctx context.Context, p params, log *slog.Logger) (*result, error) {
	start := now()
	capAt := time.Now().Add(time.Duration(p.CapNs))
	n := max(p.Consumers, 1)
	ws := make([]io.WriteCloser, 0, n)
	defer func() {
		for _, w := range ws {
			w.Close()
		}
	}()
	for i := 0; i < n; i++ {
		switch p.Transport {
		case TransportSocket:
			c, err := dialRetry(ctx, streamPath(p.Path, i), start+int64(20*time.Second))
			if err != nil {
				return nil, fmt.Errorf("run stream sender: %w", err)
			}
			if err := c.SetWriteBuffer(streamBuf); err != nil {
				log.Warn("set socket write buffer", "err", err)
			}
			ws = append(ws, c)
		case TransportPipe:
			ws = append(ws, os.NewFile(uintptr(3+i), fmt.Sprintf("pipe-%d", i)))
		default:
			return nil, fmt.Errorf("run stream sender: transport %q: %w", p.Transport, errBadParams)
		}
	}
	for _, w := range ws {
		setDeadline(w, capAt, log)
	}
	fo := newFanout(ws)
	defer fo.stop()
	buf := make([]byte, p.Payload)
	f := newFiller()
	res := &result{Role: p.Role}
	total := p.Warmup + p.Frames
	var u0 usage
	var deadline int64
	for i := 0; i < total; i++ {
		measuring := i >= p.Warmup
		if i == p.Warmup {
			u0 = startUsage()
			deadline = u0.mono + p.DurationNs
		}
		if measuring && now() >= deadline {
			break
		}
		id := uint64(i)
		if !measuring {
			id |= warmMark
		}
		f.fill(buf, id)
		t := now()
		if len(buf) >= 24 {
			binary.LittleEndian.PutUint64(buf[8:], uint64(t))
		}
		if err := fo.write(buf); err != nil {
			return nil, fmt.Errorf("run stream sender: frame %d: %w", i, err)
		}
		if measuring {
			res.Frames++
			if res.FirstNs == 0 {
				res.FirstNs = t
			}
			res.LastNs = now()
		} else {
			res.Warmup++
		}
	}
	u1 := endUsage()
	res.Cost = u0.until(u1)
	res.Bytes = res.Frames * uint64(p.Payload)
	return res, nil
}

// fanout writes one buffer to several writers at once, with one
// long-lived goroutine per writer (a single writer is written inline).
type fanout struct {
	ws   []io.WriteCloser
	reqs []chan []byte
	errs chan error
}

func newFanout(ws []io.WriteCloser) *fanout {
	fo := &fanout{ws: ws, errs: make(chan error, len(ws))}
	if len(ws) == 1 {
		return fo
	}
	for _, w := range ws {
		c := make(chan []byte)
		fo.reqs = append(fo.reqs, c)
		go func() {
			for b := range c {
				_, err := w.Write(b)
				fo.errs <- err
			}
		}()
	}
	return fo
}

func (fo *fanout) write(b []byte) error {
	if len(fo.ws) == 1 {
		_, err := fo.ws[0].Write(b)
		return err
	}
	for _, c := range fo.reqs {
		c <- b
	}
	var first error
	for range fo.reqs {
		if err := <-fo.errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (fo *fanout) stop() {
	for _, c := range fo.reqs {
		close(c)
	}
}

func dialRetry(ctx context.Context, path string, deadline int64) (*net.UnixConn, error) {
	for {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || now() > deadline {
			return nil, fmt.Errorf("dial %s: %w", path, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runStreamReceiver(ctx context.Context, p params, log *slog.Logger) (*result, error) {
	capAt := time.Now().Add(time.Duration(p.CapNs))
	var r io.ReadCloser
	switch p.Transport {
	case TransportSocket:
		path := streamPath(p.Path, p.Index)
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			return nil, fmt.Errorf("run stream receiver: %w", err)
		}
		if err := ln.SetDeadline(capAt); err != nil {
			ln.Close()
			return nil, fmt.Errorf("run stream receiver: %w", err)
		}
		c, err := ln.AcceptUnix()
		ln.Close()
		if err != nil {
			return nil, fmt.Errorf("run stream receiver: accept: %w", err)
		}
		if err := c.SetReadBuffer(streamBuf); err != nil {
			log.Warn("set socket read buffer", "err", err)
		}
		r = c
	case TransportPipe:
		r = os.NewFile(3, "pipe")
	default:
		return nil, fmt.Errorf("run stream receiver: transport %q: %w", p.Transport, errBadParams)
	}
	defer r.Close()
	setDeadline(r, capAt, log)
	stopCtx := context.AfterFunc(ctx, func() { r.Close() })
	defer stopCtx()
	buf := make([]byte, p.Payload)
	res := &result{Role: p.Role, Index: p.Index}
	sum, words := p.Read == ReadSum, p.Read == ReadWords
	lat := newHist()
	var u0 usage
	measuring := false
	var next uint64
	for {
		_, err := io.ReadFull(r, buf)
		t := now()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("run stream receiver: after %d frames: %w", res.Frames, err)
		}
		id := binary.LittleEndian.Uint64(buf)
		if id&warmMark != 0 {
			res.Warmup++
			next = id&^warmMark + 1
			continue
		}
		if !measuring {
			u0 = startUsage()
			measuring = true
			res.FirstNs = t
		}
		if id != next {
			res.Corrupt++
		}
		next = id + 1
		if len(buf) >= 24 {
			record(lat, t-int64(binary.LittleEndian.Uint64(buf[8:])))
		}
		switch {
		case sum:
			res.Sum ^= frame.Sum64(id, buf)
			if !stampOK(buf, id) {
				res.Corrupt++
			}
		case words:
			res.Sum ^= wordSum(buf)
		}
		res.Frames++
		res.LastNs = t
	}
	if !measuring {
		return res, nil
	}
	u1 := endUsage()
	res.Cost = u0.until(u1)
	res.Bytes = res.Frames * uint64(p.Payload)
	var err error
	if res.Lat, err = encodeHist(lat); err != nil {
		return nil, err
	}
	return res, nil
}
