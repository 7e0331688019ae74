package results_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/framering/framering/results"
)

func line(seq uint64, defects int) []byte {
	return fmt.Appendf(nil, `{"seq":%d,"epoch":"00000000000000e1","frame_id":%d,"timestamp_ns":%d,"defect_count":%d,"defects":[]}`, seq, seq-1, seq*1000, defects)
}

func listen(t *testing.T, queue int) (*results.Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ring.analyzer.results")
	s, err := results.Listen(path, results.Hello{Ring: "ring", Analyzer: "analyzer"}, queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func dial(t *testing.T, s *results.Server, path string, want int) *results.Client {
	t.Helper()
	c, err := results.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for s.Subscribers() < want {
		time.Sleep(time.Millisecond)
	}
	return c
}

// TestStream: a subscriber gets the hello, then every line in order, keyed
// by (epoch, seq); Close ends the stream and removes the socket.
func TestStream(t *testing.T) {
	s, path := listen(t, 0)
	c := dial(t, s, path, 1)
	if c.Hello.Results != results.Version || c.Hello.Ring != "ring" || c.Hello.Analyzer != "analyzer" || c.Hello.Pid != os.Getpid() {
		t.Fatalf("hello %+v", c.Hello)
	}
	for seq := uint64(1); seq <= 100; seq++ {
		s.Publish(line(seq, int(seq%2)))
	}
	for seq := uint64(1); seq <= 100; seq++ {
		m, err := c.Next()
		if err != nil || m.Result == nil {
			t.Fatalf("seq %d: %+v %v", seq, m, err)
		}
		r := m.Result
		if r.Seq != seq || r.Epoch != 0xe1 || r.FrameID != seq-1 || r.DefectCount != int(seq%2) || string(r.Raw) != string(line(seq, int(seq%2))) {
			t.Fatalf("seq %d: %+v", seq, r)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after close: %v", err)
	}
}

// TestSlowSubscriber: a subscriber that does not read never holds up the
// publisher; it misses lines, is told how many, and goes on; another
// subscriber meanwhile gets every line.
func TestSlowSubscriber(t *testing.T) {
	s, path := listen(t, 16)
	slow := dial(t, s, path, 1)
	fast := dial(t, s, path, 2)
	const n = 4000
	progress := make(chan uint64, n)
	go func() {
		var last uint64
		for last < n {
			m, err := fast.Next()
			if err != nil || m.Result == nil || m.Result.Seq != last+1 {
				t.Errorf("fast subscriber: %+v %v after %d", m, err, last)
				close(progress)
				return
			}
			last = m.Result.Seq
			progress <- last
		}
	}()
	// Batches of 8 (half the queue), each published once the fast one has
	// read the previous: it never overflows; the slow one, which reads
	// nothing, overflows at once, and Publish never waits for it.
	for seq := uint64(1); seq <= n; seq++ {
		s.Publish(line(seq, 0))
		if seq%8 == 0 {
			for got := range progress {
				if got == seq {
					break
				}
			}
		}
	}
	// The slow one now reads: the lines its queue and the socket held, a
	// drop notice, then lines again. Its last lines may have been dropped
	// too, so lines after n are published until one reaches it: every line
	// up to the first it gets after n was either delivered or announced as
	// dropped before it.
	got := make(chan uint64, 1)
	go func() {
		var lines, dropped, last uint64
		for {
			m, err := slow.Next()
			if err != nil {
				t.Error(err)
				close(got)
				return
			}
			if m.Result == nil {
				dropped += m.Dropped
				continue
			}
			if m.Result.Seq <= last {
				t.Errorf("seq %d after %d", m.Result.Seq, last)
			}
			last = m.Result.Seq
			lines++
			if last > n {
				if dropped == 0 || lines+dropped != last {
					t.Errorf("slow subscriber: %d lines + %d dropped up to line %d", lines, dropped, last)
				}
				got <- dropped
				return
			}
		}
	}()
	seq := uint64(n)
	for {
		seq++
		s.Publish(line(seq, 0))
		select {
		case dropped, ok := <-got:
			if !ok {
				return
			}
			if _, total := s.Stats(); total < dropped {
				t.Fatalf("server counts %d dropped, the subscriber was told %d", total, dropped)
			}
			return
		case <-time.After(10 * time.Millisecond): // not yet: publish another
		}
	}
}

// TestListenReplacesStaleSocket: a socket file a dead publisher left is
// replaced; one a live publisher serves is refused.
func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.a.results")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := results.Listen(path, results.Hello{}, 0, nil); !errors.Is(err, results.ErrInUse) {
		t.Fatalf("live socket: %v", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody listens: a dead publisher's
	s, err := results.Listen(path, results.Hello{}, 0, nil)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	s.Close()
}

// TestPublishWithoutSubscribersAllocatesNothing: the analyzer publishes
// every frame; with nobody listening that costs nothing.
func TestPublishWithoutSubscribersAllocatesNothing(t *testing.T) {
	s, _ := listen(t, 0)
	l := line(1, 0)
	if n := testing.AllocsPerRun(1000, func() { s.Publish(l) }); n != 0 {
		t.Fatalf("Publish allocates %v times without subscribers", n)
	}
}

func TestPaths(t *testing.T) {
	if p := results.PathForSocket("/run/x/line1.sock", "analyzer"); p != "/run/x/line1.analyzer.results" {
		t.Fatal(p)
	}
	if p := results.Path("line1", "a"); filepath.Base(p) != "line1.a.results" {
		t.Fatal(p)
	}
}
