package shm_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/clock"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/shm"
)

func newSeg(t *testing.T, size uint64) *shm.Segment {
	t.Helper()
	s, err := shm.CreateSegment("test", size, shm.SegmentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mapSeg(t *testing.T, s *shm.Segment, w bool) *shm.Mapping {
	t.Helper()
	m, err := s.Map(w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestSegmentSealsAndFutureWrite(t *testing.T) {
	s := newSeg(t, 100)
	if s.Size() != uint64(os.Getpagesize()) {
		t.Fatalf("size %d not rounded to a page", s.Size())
	}
	seals, err := s.Seals()
	if err != nil || seals&(shm.SealShrink|shm.SealGrow) != shm.SealShrink|shm.SealGrow {
		t.Fatalf("new segment seals %#x %v", seals, err)
	}
	rw := mapSeg(t, s, true)
	if err := s.AddSeals(shm.SealFutureWrite | shm.SealSeal); err != nil {
		t.Fatal(err)
	}
	// After F_SEAL_FUTURE_WRITE: no new writable mapping, no write(2)...
	if _, err := s.Map(true); !errors.Is(err, unix.EPERM) {
		t.Fatalf("writable map of a sealed segment: %v", err)
	}
	if err := s.Write([]byte{1}, 0); !errors.Is(err, unix.EPERM) {
		t.Fatalf("write(2) to a sealed segment: %v", err)
	}
	if err := s.AddSeals(shm.SealGrow); err == nil {
		t.Fatal("seals added after F_SEAL_SEAL")
	}
	// ...but the owner's earlier mapping still writes, and readers see it.
	ro := mapSeg(t, s, false)
	rw.Bytes()[10] = 42
	if ro.Bytes()[10] != 42 || ro.Writable() {
		t.Fatal("read-only mapping does not see the owner's write")
	}
}

// reopen returns a second open file of the segment's memfd, as a peer
// receives it.
func reopen(t *testing.T, s *shm.Segment) *os.File {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", s.File().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestOpenSegmentChecks(t *testing.T) {
	s := newSeg(t, 8192)
	if _, err := shm.OpenSegment(reopen(t, s), shm.SealFutureWrite, 0, false); !errors.Is(err, shm.ErrSeals) {
		t.Fatalf("missing future-write seal accepted: %v", err)
	}
	if _, err := shm.OpenSegment(reopen(t, s), shm.SealGrow, 1<<20, false); !errors.Is(err, shm.ErrInvalid) {
		t.Fatalf("short segment accepted: %v", err)
	}
	f, _ := os.Open(os.DevNull)
	if _, err := shm.OpenSegment(f, 0, 0, false); err == nil {
		t.Fatal("non-memfd accepted")
	}
	got, err := shm.OpenSegment(reopen(t, s), shm.SealGrow|shm.SealShrink, 4096, true)
	if err != nil || got.Size() != 8192 {
		t.Fatal(got, err)
	}
	got.Close()
	if _, err := shm.CreateSegment("zero", 0, shm.SegmentOptions{}); !errors.Is(err, shm.ErrInvalid) {
		t.Fatalf("zero size: %v", err)
	}
	if _, err := shm.CreateSegment("huge", 1<<62, shm.SegmentOptions{}); !errors.Is(err, shm.ErrTooLarge) {
		t.Fatalf("absurd size: %v", err)
	}
}

func TestHugePagesFallBack(t *testing.T) {
	// Whether or not the host reserved huge pages, creation succeeds.
	s, err := shm.CreateSegment("huge", 1<<20, shm.SegmentOptions{HugePages: true, Prefault: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.HugePages() && s.Size()%(2<<20) != 0 {
		t.Fatalf("huge segment of %d bytes", s.Size())
	}
	m, err := s.Map(true)
	if err != nil {
		t.Fatal(err)
	}
	m.Bytes()[len(m.Bytes())-1] = 1
	m.Close()
}

func TestWords(t *testing.T) {
	s := newSeg(t, 4096)
	rw := mapSeg(t, s, true)
	ro := mapSeg(t, s, false)
	for _, off := range []uint64{4, 4096, 4092, 1 << 63} {
		if _, err := rw.Uint64At(off); !errors.Is(err, shm.ErrInvalid) {
			t.Errorf("Uint64At(%d): %v", off, err)
		}
	}
	if _, err := ro.Uint64At(0); !errors.Is(err, shm.ErrInvalid) {
		t.Fatal("writable word of a read-only mapping")
	}
	if _, err := ro.Uint64s(0, 1); !errors.Is(err, shm.ErrInvalid) {
		t.Fatal("writable words of a read-only mapping")
	}
	if _, err := rw.Uint64s(8, 512); !errors.Is(err, shm.ErrInvalid) {
		t.Fatal("words past the end")
	}
	w, err := rw.Uint64At(8)
	if err != nil {
		t.Fatal(err)
	}
	w.Store(0x1122334455667788)
	r, _ := ro.ReadUint64At(8)
	words, _ := ro.ReadUint64sAt(0, 512)
	r32, _ := ro.ReadUint32sAt(8, 2)
	if r.Load() != 0x1122334455667788 || words.Load(1) != r.Load() || words.Len() != 512 || r32.Load(0) != 0x55667788 {
		t.Fatal("views disagree")
	}
	rw.Close()
	if _, err := rw.Uint64At(0); !errors.Is(err, shm.ErrClosed) {
		t.Fatal("word of a closed mapping")
	}
}

// A futex on a shared mapping is keyed by the page, not the address: a
// wake through one mapping reaches a sleeper on another.
func TestFutexAcrossMappings(t *testing.T) {
	s := newSeg(t, 4096)
	a := mapSeg(t, s, true)
	b := mapSeg(t, s, false)
	w, _ := a.Uint32At(64)
	rs, _ := b.ReadUint32sAt(64, 1)
	sleeper := rs.Word(0)
	done := make(chan struct{})
	go func() {
		for sleeper.Load() == 0 {
			sleeper.Wait(0, 0) // no timeout: only a wake ends it
		}
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	w.Store(1)
	wakeUntil(t, w, done, "sleeper on the read-only mapping never woke")
}

// wakeUntil wakes w's sleepers every millisecond until done closes.
func wakeUntil(t *testing.T, w *atomic.Uint32, done <-chan struct{}, failure string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if _, err := shm.FutexWake(w, 0); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			return
		case <-deadline:
			t.Fatal(failure)
		case <-time.After(time.Millisecond):
		}
	}
}

func TestFutexWaitTimeoutAndValueMismatch(t *testing.T) {
	s := newSeg(t, 4096)
	m := mapSeg(t, s, true)
	w, _ := m.Uint32At(0)
	w.Store(5)
	if err := shm.FutexWait(w, 4, time.Hour); err != nil { // value differs: returns at once
		t.Fatal(err)
	}
	if err := shm.FutexWait(w, 5, time.Millisecond); err != nil { // times out
		t.Fatal(err)
	}
}

func TestReserveFullTmpfs(t *testing.T) {
	dir := testmain.SmallFS(t, "1m")
	f, err := os.Create(filepath.Join(dir, "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := shm.ReserveForTest(int(f.Fd()), 8<<20); !errors.Is(err, shm.ErrNoSpace) {
		t.Fatalf("8 MiB on a 1 MiB tmpfs: %v", err)
	}
	if err := shm.ReserveForTest(int(f.Fd()), 64<<10); err != nil {
		t.Fatal(err)
	}
}

func TestSocketPassesSegmentsAndCreds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.sock")
	ln, err := shm.Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v %v", st.Mode(), err)
	}
	if _, err := shm.Listen(path, 0o600); !errors.Is(err, shm.ErrInUse) {
		t.Fatalf("second listener: %v", err)
	}
	s := newSeg(t, 4096)
	m := mapSeg(t, s, true)
	m.Bytes()[0] = 99
	served := make(chan struct{})
	defer func() { <-served }() // the server uses s; it must end before s is closed
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Send([]byte("hi"), s.File())
		c.Send([]byte("three"), s.File(), s.File(), s.File())
		var b [1]byte
		c.Read(b[:])
	}()
	c, err := shm.Dial(path)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	defer c.Close() // runs before the wait for the server: its Read returns
	cred, err := c.Peer()
	if err != nil || cred.Pid != os.Getpid() || cred.UID != os.Geteuid() {
		t.Fatalf("peer %+v %v", cred, err)
	}
	pfd, err := c.PeerPidfd()
	if err != nil {
		t.Fatal(err)
	}
	if pfd.Pid() != os.Getpid() || pfd.Exited() {
		t.Fatalf("pidfd of ourselves: pid %d exited %v", pfd.Pid(), pfd.Exited())
	}
	pfd.Close()
	buf := make([]byte, 16)
	n, files, err := c.Recv(buf, 2)
	if err != nil || string(buf[:n]) != "hi" || len(files) != 1 {
		t.Fatal(n, files, err)
	}
	got, err := shm.OpenSegment(files[0], shm.SealGrow, 4096, false)
	if err != nil {
		t.Fatal(err)
	}
	gm, _ := got.Map(false)
	if gm.Bytes()[0] != 99 {
		t.Fatal("received segment has other contents")
	}
	gm.Close()
	got.Close()
	if _, _, err := c.Recv(buf, 2); !errors.Is(err, shm.ErrPeer) {
		t.Fatalf("three descriptors where two were allowed: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stale.sock")
	// A socket file whose owner is gone (as after kill -9).
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal("stale socket not left behind")
	}
	ln, err := shm.Listen(path, 0o660)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("socket file left after Close")
	}
}

func TestWatcherReportsExit(t *testing.T) {
	cmd := exec.Command("sleep", "0.05")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	p, err := shm.OpenPidfd(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w, err := shm.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(p, 77); err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64, 1)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(ctx, func(k uint64) { got <- k }) }()
	self, err := shm.OpenPidfd(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.Exiting() || self.Exited() {
		t.Fatal("this live process reported exiting")
	}
	self.Close()
	select {
	case k := <-got:
		if k != 77 || !p.Exited() || !p.Exiting() {
			t.Fatalf("key %d, exited %v, exiting %v", k, p.Exited(), p.Exiting())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("exit never reported")
	}
	cmd.Wait()
	cancel()
	if err := <-runDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	// Close while Run blocks returns promptly (regression: a lost wake hung here).
	go func() { runDone <- w.Run(context.Background(), func(uint64) {}) }()
	time.Sleep(5 * time.Millisecond)
	w.Close()
	select {
	case <-runDone:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not end Run")
	}
}

func TestFileMapping(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("framering"), 0o600)
	m, err := shm.OpenFile(p)
	if err != nil || string(m.Bytes()) != "framering" {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil || m.Bytes() != nil || m.Close() != nil {
		t.Fatal("close")
	}
	os.WriteFile(p, nil, 0o600)
	if m, err := shm.OpenFile(p); err != nil || len(m.Bytes()) != 0 {
		t.Fatal("empty file", err)
	}
	if _, err := shm.OpenFile(dir); !errors.Is(err, shm.ErrInvalid) {
		t.Fatalf("directory: %v", err)
	}
}

func TestMonotonicNanos(t *testing.T) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	d := clock.Nanos() - ts.Nano()
	if d < 0 || d > int64(time.Second) {
		t.Fatalf("MonotonicNanos is %v away from CLOCK_MONOTONIC", time.Duration(d))
	}
	if n := testing.AllocsPerRun(100, func() { clock.Nanos() }); n != 0 {
		t.Fatal("allocates")
	}
}

func TestLockFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	l, err := shm.LockFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shm.LockFile(p); !errors.Is(err, shm.ErrInUse) {
		t.Fatalf("second lock: %v", err)
	}
	l.Close()
	l2, err := shm.LockFile(p)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Close()
	l2.Close()
}
