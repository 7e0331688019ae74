package shm_test

// The attach socket: Listen on a path that is not a socket, descriptors
// passed and refused, peer credentials.

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/framering/framering/shm"
	"golang.org/x/sys/unix"
)

// Listen replaces a stale *socket*; a regular file that happens to be at
// the path (a typo in a configured socket path) must be left alone.
func TestListenKeepsNonSocketFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.txt")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := shm.Listen(path, 0o660)
	if err == nil {
		ln.Close()
	}
	b, rerr := os.ReadFile(path)
	if string(b) != "precious" {
		t.Fatalf("Listen on a regular file: err %v; the file is gone (%v)", err, rerr)
	}
}

// Several would-be owners start at once on a path holding a stale socket:
// exactly one gets it (the others get ErrInUse), and its socket is live.
func TestListenConcurrentOwners(t *testing.T) {
	for trial := 0; trial < 50; trial++ {
		path := filepath.Join(t.TempDir(), "r.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		l.Close() // stale, as after kill -9
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []*shm.Listener
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ln, err := shm.Listen(path, 0o600)
				if err != nil {
					if !errors.Is(err, shm.ErrInUse) {
						t.Errorf("listen: %v", err)
					}
					return
				}
				mu.Lock()
				won = append(won, ln)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("trial %d: %d owners", trial, len(won))
		}
		c, err := shm.Dial(path)
		if err != nil {
			t.Fatalf("the owner's socket is not live: %v", err)
		}
		c.Close()
		won[0].Close()
	}
}

func countFds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.HasPrefix(l, "/memfd:") {
			n++
		}
	}
	return n
}

// Recv: descriptors beyond maxFiles, and a control message too large for
// its buffer (MSG_CTRUNC), are refused and none of them stays open; the
// descriptors it returns are close-on-exec.
func TestRecvDescriptorHandling(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.sock")
	ln, err := shm.Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seg, err := shm.CreateSegment("review-recv", 4096, shm.SegmentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	sent := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sent <- err
			return
		}
		defer c.Close()
		many := make([]*os.File, 40)
		for i := range many {
			many[i] = seg.File()
		}
		for _, files := range [][]*os.File{many[:2], many[:3], many} {
			if err := c.Send([]byte("x"), files...); err != nil {
				sent <- err
				return
			}
		}
		var b [1]byte
		c.Read(b[:])
		sent <- nil
	}()
	c, err := shm.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := countFds(t)
	buf := make([]byte, 1)
	_, files, err := c.Recv(buf, 2)
	if err != nil || len(files) != 2 {
		t.Fatalf("two descriptors: %d %v", len(files), err)
	}
	for _, f := range files {
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Fatalf("received descriptor not close-on-exec: %#x %v", flags, err)
		}
		f.Close()
	}
	for _, what := range []string{"three descriptors", "forty descriptors (MSG_CTRUNC)"} {
		if _, files, err := c.Recv(buf, 2); !errors.Is(err, shm.ErrPeer) || files != nil {
			t.Fatalf("%s where two were allowed: %d files, %v", what, len(files), err)
		}
		if after := countFds(t); after != before {
			t.Fatalf("%s: %d memfds open before, %d after", what, before, after)
		}
	}
	c.Close()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// Pending shows what the peer sent and nobody read, without consuming it
// and without waiting: empty before, the bytes after, the same bytes for
// the next Read.
func TestPendingPeeksWithoutConsuming(t *testing.T) {
	server, client := socketPair(t)
	buf := make([]byte, 16)
	if n, err := server.Pending(buf); n != 0 || err != nil {
		t.Fatalf("nothing sent: Pending %d, %v", n, err)
	}
	if err := client.Send([]byte("goodbye")); err != nil {
		t.Fatal(err)
	}
	// A Unix socket queues the bytes on the receiver before Send returns.
	n, err := server.Pending(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "goodbye" {
		t.Fatalf("Pending saw %q", buf[:n])
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(server, got); err != nil || string(got) != "goodbye" {
		t.Fatalf("Read after Pending: %q, %v", got, err)
	}
	if n, err := server.Pending(buf); n != 0 || err != nil {
		t.Fatalf("after the read: Pending %d, %v", n, err)
	}
}

// socketPair returns both ends of one attach connection.
func socketPair(t *testing.T) (server, client *shm.Conn) {
	t.Helper()
	ln, err := shm.Listen(filepath.Join(t.TempDir(), "r.sock"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan *shm.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = shm.Dial(ln.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server = <-accepted; server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}

// CloseRead while the peer keeps its end open: what the peer sent before
// is still read, in order, and only then io.EOF; the peer's next send
// fails. A reader blocked with nothing queued is woken with io.EOF.
func TestCloseReadKeepsQueuedBytes(t *testing.T) {
	server, client := socketPair(t)
	for _, m := range []string{"first message", "goodbye"} {
		if err := client.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := server.CloseRead(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("first message")+len("goodbye"))
	if _, err := io.ReadFull(server, got); err != nil || string(got) != "first messagegoodbye" {
		t.Fatalf("read after CloseRead: %q, %v; want every queued byte", got, err)
	}
	if n, err := server.Read(got); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read past the queued bytes: %d, %v; want io.EOF", n, err)
	}
	if err := client.Send([]byte("late")); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("send to a closed reading side: %v; want EPIPE", err)
	}

	blocked, _ := socketPair(t)
	done := make(chan error, 1)
	go func() {
		var b [8]byte
		_, err := blocked.Read(b[:])
		done <- err
	}()
	if err := blocked.CloseRead(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, io.EOF) {
		t.Fatalf("a blocked read after CloseRead: %v; want io.EOF", err)
	}
	server.Close()
	if err := server.CloseRead(); err == nil {
		t.Fatal("CloseRead of a closed connection succeeded")
	}
}
