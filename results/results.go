// Package results is the analyzer's live results stream, specified in
// docs/RESULTS.md: a local (Unix) stream socket that serves newline-delimited
// JSON, one line per analyzed frame, keyed by the frame's identity (the
// ring's epoch and sequence number), to any number of subscribers (the
// archiver's event recording, a web view, a PLC bridge).
//
// The publisher is never held up by a subscriber: each subscriber has a
// bounded queue of lines; when it is full, lines for that subscriber are
// dropped, counted, and announced to it by a {"dropped":N,...} line before
// the next one it gets. Publish costs nothing while nobody subscribes.
//
// Ownership: Publish copies the line it is given (once, shared by every
// subscriber's queue, read-only from then on), so the caller may reuse its
// buffer at once. The Server owns its socket file: Listen creates it (and
// removes a stale one a crashed publisher left), Close removes it.
package results

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/ringbuf"
)

// Version is the protocol version this package speaks (the hello line's
// "results" field).
const Version = 1

// DefaultQueue is the lines a subscriber may have pending before lines for
// it are dropped.
const DefaultQueue = 1024

// maxLine bounds a line a Client accepts.
const maxLine = 4 << 20

// Errors.
var (
	// ErrInUse is returned by Listen when a live publisher serves the path.
	ErrInUse = errors.New("results socket in use by a live publisher")
	// ErrProtocol is returned by a Client for a stream that is not a
	// results stream of a version it speaks.
	ErrProtocol = errors.New("results protocol error")
)

// Path is the results socket of the analyzer called name on the ring
// called ring: "<runtime dir>/<ring>.<name>.results" (not ".sock": only
// rings' sockets end so).
func Path(ring, name string) string {
	return filepath.Join(ringbuf.RuntimeDir(), ring+"."+name+".results")
}

// PathForSocket is the results socket of the analyzer called name on the
// ring whose socket is sock.
func PathForSocket(sock, name string) string {
	return strings.TrimSuffix(sock, ".sock") + "." + name + ".results"
}

// Hello is the first line a subscriber gets.
type Hello struct {
	Results  int    `json:"results"`  // protocol version
	Ring     string `json:"ring"`     // the ring's name or socket path
	Analyzer string `json:"analyzer"` // the publisher's consumer name
	Pid      int    `json:"pid"`
}

// Result is a result line as a subscriber decodes it: the fields of the
// analyzer's per-frame record (cmd/analyzer) that subscribers key on. Raw
// is the whole line.
type Result struct {
	Seq         uint64            `json:"seq"`
	Epoch       ringbuf.Epoch     `json:"epoch"`
	FrameID     uint64            `json:"frame_id"`
	TimestampNs int64             `json:"timestamp_ns"`
	DefectCount int               `json:"defect_count"`
	Defects     []analysis.Defect `json:"defects"`
	Error       string            `json:"error,omitempty"`
	Raw         json.RawMessage   `json:"-"`
}

// Server publishes result lines.
type Server struct {
	ln    *net.UnixListener
	path  string
	hello []byte
	queue int
	log   *slog.Logger

	mu     sync.Mutex
	subs   map[*sub]struct{}
	closed bool
	n      atomic.Int32 // len(subs), read without mu by Publish
	wg     sync.WaitGroup

	published atomic.Uint64
	dropped   atomic.Uint64
}

// sub is one subscriber.
type sub struct {
	c       net.Conn
	ch      chan []byte
	dropped atomic.Uint64 // lines dropped since the last notice
	total   atomic.Uint64 // lines dropped over its life
	done    chan struct{}
	once    sync.Once
}

func (s *sub) close() { s.once.Do(func() { close(s.done); s.c.Close() }) }

// Listen creates the results socket at path (mode 0660) and serves it
// until Close. A socket file left by a publisher that died is replaced; one
// a live publisher serves is ErrInUse. queue bounds each subscriber's
// pending lines (0: DefaultQueue).
func Listen(path string, hello Hello, queue int, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if queue <= 0 {
		queue = DefaultQueue
	}
	hello.Results = Version
	if hello.Pid == 0 {
		hello.Pid = os.Getpid()
	}
	hb, err := json.Marshal(hello)
	if err != nil {
		return nil, fmt.Errorf("results listen: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("results listen: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("results listen %s: %w", path, ErrInUse)
	} else if errors.Is(err, syscall.ECONNREFUSED) {
		os.Remove(path) // left by a publisher that died
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("results listen: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("results listen: %w", err)
	}
	s := &Server{ln: ln, path: path, hello: append(hb, '\n'), queue: queue, log: log, subs: map[*sub]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Subscribers is how many subscribers are connected.
func (s *Server) Subscribers() int { return int(s.n.Load()) }

// Stats returns the lines published and the lines dropped for slow
// subscribers, over the server's life.
func (s *Server) Stats() (published, dropped uint64) {
	return s.published.Load(), s.dropped.Load()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		sb := &sub{c: c, ch: make(chan []byte, s.queue), done: make(chan struct{})}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.subs[sb] = struct{}{}
		s.n.Store(int32(len(s.subs)))
		s.mu.Unlock()
		s.wg.Add(2)
		go s.write(sb)
		go s.watch(sb)
	}
}

// watch reads (and discards) what the subscriber sends, to notice it left.
func (s *Server) watch(sb *sub) {
	defer s.wg.Done()
	_, _ = io.Copy(io.Discard, sb.c)
	s.remove(sb)
}

// write sends the hello, then the subscriber's queue, with a drop notice
// before a line that follows drops.
func (s *Server) write(sb *sub) {
	defer s.wg.Done()
	defer s.remove(sb)
	w := bufio.NewWriterSize(sb.c, 64<<10)
	if _, err := w.Write(s.hello); err != nil {
		return
	}
	if err := w.Flush(); err != nil {
		return
	}
	var notice []byte
	for {
		select {
		case <-sb.done:
			return
		case line := <-sb.ch:
			if n := sb.dropped.Swap(0); n > 0 {
				notice = fmt.Appendf(notice[:0], "{\"dropped\":%d,\"dropped_total\":%d}\n", n, sb.total.Load())
				if _, err := w.Write(notice); err != nil {
					return
				}
			}
			if _, err := w.Write(line); err != nil {
				return
			}
			// Flush when the queue is empty: one write per burst.
			if len(sb.ch) == 0 {
				if err := w.Flush(); err != nil {
					return
				}
			}
		}
	}
}

func (s *Server) remove(sb *sub) {
	sb.close()
	s.mu.Lock()
	delete(s.subs, sb)
	s.n.Store(int32(len(s.subs)))
	s.mu.Unlock()
}

// Publish sends line (one JSON object, without a newline) to every
// subscriber, never waiting: a subscriber whose queue is full misses it
// (counted, and announced to it). With no subscriber it does nothing.
func (s *Server) Publish(line []byte) {
	if s.n.Load() == 0 {
		return
	}
	s.published.Add(1)
	cp := make([]byte, len(line)+1)
	copy(cp, line)
	cp[len(line)] = '\n'
	s.mu.Lock()
	for sb := range s.subs {
		select {
		case sb.ch <- cp:
		default:
			sb.dropped.Add(1)
			sb.total.Add(1)
			s.dropped.Add(1)
		}
	}
	s.mu.Unlock()
}

// Close stops serving, disconnects every subscriber and removes the
// socket file. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := make([]*sub, 0, len(s.subs))
	for sb := range s.subs {
		subs = append(subs, sb)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, sb := range subs {
		sb.close()
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("results close: %w", err)
	}
	return nil
}

// Client reads a results stream.
type Client struct {
	c     net.Conn
	sc    *bufio.Scanner
	Hello Hello
}

// Message is what Next returns: a result, or a notice that Dropped lines
// were dropped for this subscriber (it was too slow) before the next one.
type Message struct {
	Result  *Result
	Dropped uint64
}

// Dial connects to the results socket at path and reads its hello.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("results dial: %w", err)
	}
	cl, err := newClient(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("results dial %s: %w", path, err)
	}
	return cl, nil
}

// maxName bounds the hello's names.
const maxName = 4096

// newClient reads the hello from c.
func newClient(c net.Conn) (*Client, error) {
	cl := &Client{c: c, sc: bufio.NewScanner(c)}
	cl.sc.Buffer(make([]byte, 64<<10), maxLine)
	if !cl.sc.Scan() {
		return nil, fmt.Errorf("%w: no hello (%v)", ErrProtocol, cl.sc.Err())
	}
	h := &cl.Hello
	if err := json.Unmarshal(cl.sc.Bytes(), h); err != nil || h.Results != Version || h.Pid <= 0 ||
		len(h.Ring) > maxName || len(h.Analyzer) > maxName {
		return nil, fmt.Errorf("%w: hello %.200q", ErrProtocol, cl.sc.Bytes())
	}
	return cl, nil
}

// validate checks what a subscriber keys on: an identity (epoch, seq),
// a defect count that the list does not exceed, boxes inside the first
// quadrant with a size.
func (r *Result) validate() error {
	switch {
	case r.Seq == 0:
		return errors.New("seq 0")
	case r.Epoch == 0:
		return errors.New("epoch 0")
	case r.DefectCount < 0 || len(r.Defects) > r.DefectCount:
		return fmt.Errorf("defect_count %d with %d defects", r.DefectCount, len(r.Defects))
	}
	for _, d := range r.Defects {
		if d.X < 0 || d.Y < 0 || d.W <= 0 || d.H <= 0 || d.Area < 0 || d.X > math.MaxInt32-d.W || d.Y > math.MaxInt32-d.H {
			return fmt.Errorf("defect box %d,%d %dx%d", d.X, d.Y, d.W, d.H)
		}
	}
	return nil
}

// Next returns the next message; io.EOF when the publisher closed the
// stream. Result.Raw aliases nothing: it is a copy of the line.
func (c *Client) Next() (Message, error) {
	for c.sc.Scan() {
		b := c.sc.Bytes()
		var probe struct {
			Dropped *uint64 `json:"dropped"`
			Seq     *uint64 `json:"seq"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return Message{}, fmt.Errorf("results: %w: %v", ErrProtocol, err)
		}
		switch {
		case probe.Dropped != nil:
			return Message{Dropped: *probe.Dropped}, nil
		case probe.Seq != nil:
			var r Result
			if err := json.Unmarshal(b, &r); err != nil {
				return Message{}, fmt.Errorf("results: %w: %v", ErrProtocol, err)
			}
			if err := r.validate(); err != nil {
				return Message{}, fmt.Errorf("results: %w: %v", ErrProtocol, err)
			}
			r.Raw = append(json.RawMessage(nil), b...)
			return Message{Result: &r}, nil
		}
		// A line of a kind this version does not know: skipped.
	}
	if err := c.sc.Err(); err != nil {
		return Message{}, fmt.Errorf("results: %w", err)
	}
	return Message{}, io.EOF
}

// Close disconnects.
func (c *Client) Close() error { return c.c.Close() }
