package shm

// Pidfds name a process, not a pid number: a pidfd keeps naming the same
// process after it exits (it becomes readable) and can never name a pid's
// later reuse. Invariant: a Watcher reports each registered pidfd at most
// once, after its process has exited.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Pidfd is an owned process file descriptor. Its methods are safe for
// concurrent use: Close waits for a poll in progress, so the descriptor is
// never polled after it was closed (or reused for another file).
type Pidfd struct {
	mu  sync.Mutex
	fd  int // -1 after Close
	pid int
	ino uint64
}

// OpenPidfd opens a pidfd for pid (pidfd_open).
func OpenPidfd(pid int) (*Pidfd, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	return newPidfd(fd, pid)
}

func newPidfd(fd, pid int) (*Pidfd, error) {
	unix.CloseOnExec(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pidfd stat: %w", err)
	}
	return &Pidfd{fd: fd, pid: pid, ino: st.Ino}, nil
}

// Pid is the process's pid (as it was when the pidfd was opened).
func (p *Pidfd) Pid() int { return p.pid }

// Inode identifies the process uniquely for the host's uptime (pidfs,
// Linux 6.9 and later); on older kernels it is the shared anonymous inode.
func (p *Pidfd) Inode() uint64 { return p.ino }

// Exited reports whether the process has exited, without blocking.
func (p *Pidfd) Exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return false
	}
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// Exiting reports whether the process has exited or is exiting: its pidfd
// is readable, or the kernel has set PF_EXITING on it (/proc/PID/stat
// flags), which happens at the start of exit, before its memory is torn
// down and long before the pidfd becomes readable. A pid reused by another
// process does not carry PF_EXITING, so it is never mistaken for ours.
func (p *Pidfd) Exiting() bool {
	if p.Exited() {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return p.Exited() // gone from /proc: reaped, so exited
	}
	// Fields after the command name, which ends at the last ')': state is
	// the first, flags the seventh.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	const pfExiting = 0x4
	return err == nil && flags&pfExiting != 0
}

// Signal sends sig to the process (pidfd_send_signal), which cannot hit a
// reused pid.
func (p *Pidfd) Signal(sig unix.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return ErrClosed
	}
	if err := unix.PidfdSendSignal(p.fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal %d: %w", p.pid, err)
	}
	return nil
}

// descriptor returns the pidfd's descriptor, -1 after Close. Lock order:
// a Watcher's mu, then a Pidfd's.
func (p *Pidfd) descriptor() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fd
}

// Close releases the pidfd.
func (p *Pidfd) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return nil
	}
	err := unix.Close(p.fd)
	p.fd = -1
	return err
}

// Watcher reports processes' exits through one epoll set.
//
// Invariants: an epoll event carries a registration id, never a descriptor
// number, so an event fetched for a registration that was removed (and
// whose descriptor number was reused by a new one) is dropped instead of
// being attributed to the newcomer; and the wake eventfd is written only
// under mu while it is open, so a late cancellation can never write into a
// file that reused its number.
type Watcher struct {
	ep      int
	wakeFd  int // eventfd that interrupts epoll_wait on Close or cancellation
	mu      sync.Mutex
	nextID  uint32
	regs    map[uint32]uint64 // registration id -> caller's key
	byFd    map[int]uint32    // pidfd -> registration id, for Remove
	closed  bool
	fdsOff  bool          // ep and wakeFd are closed
	running chan struct{} // non-nil while Run is in progress; closed when it returns
}

// NewWatcher creates an empty watcher.
func NewWatcher() (*Watcher, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("new watcher: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("new watcher: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: 0}); err != nil {
		unix.Close(ep)
		unix.Close(efd)
		return nil, fmt.Errorf("new watcher: %w", err)
	}
	return &Watcher{ep: ep, wakeFd: efd, nextID: 1, regs: map[uint32]uint64{}, byFd: map[int]uint32{}}, nil
}

// Add watches p; key is reported when p's process exits. The Watcher does
// not take ownership of p, which must stay open until Remove.
func (w *Watcher) Add(p *Pidfd, key uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	id := w.nextID
	w.nextID++
	if w.nextID == 0 {
		w.nextID = 1 // 0 is the wake eventfd
	}
	fd := p.descriptor()
	if fd < 0 {
		return ErrClosed
	}
	if err := unix.EpollCtl(w.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(id)}); err != nil {
		return fmt.Errorf("watch pid %d: %w", p.pid, err)
	}
	w.regs[id] = key
	w.byFd[fd] = id
	return nil
}

// Remove stops watching p (call it before closing p).
func (w *Watcher) Remove(p *Pidfd) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fd := p.descriptor()
	if w.closed || fd < 0 {
		return
	}
	if id, ok := w.byFd[fd]; ok {
		unix.EpollCtl(w.ep, unix.EPOLL_CTL_DEL, fd, nil)
		delete(w.regs, id)
		delete(w.byFd, fd)
	}
}

// signal wakes Run. Callers hold mu.
func (w *Watcher) signal() {
	if !w.fdsOff {
		unix.Write(w.wakeFd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
}

// Run reports exits by calling fn(key) from its own goroutine until ctx
// ends or the Watcher is closed.
//
// Only one Run may be in progress at a time.
func (w *Watcher) Run(ctx context.Context, fn func(key uint64)) error {
	w.mu.Lock()
	if w.closed || w.running != nil {
		w.mu.Unlock()
		return ErrClosed
	}
	done := make(chan struct{})
	w.running = done
	w.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.signal()
		w.mu.Unlock()
	})
	defer func() {
		stop()
		w.mu.Lock()
		w.running = nil
		if w.closed {
			w.closeFds()
		}
		w.mu.Unlock()
		close(done)
	}()
	events := make([]unix.EpollEvent, 16)
	for {
		n, err := unix.EpollWait(w.ep, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("watch: %w", err)
		}
		for _, ev := range events[:n] {
			id := uint32(ev.Fd)
			if id == 0 {
				w.mu.Lock()
				closed := w.closed
				var b [8]byte
				unix.Read(w.wakeFd, b[:])
				w.mu.Unlock()
				if closed || ctx.Err() != nil {
					return ctx.Err()
				}
				continue
			}
			w.mu.Lock()
			key, ok := w.regs[id]
			delete(w.regs, id)
			for fd, rid := range w.byFd {
				if rid == id {
					delete(w.byFd, fd)
				}
			}
			w.mu.Unlock()
			if ok {
				fn(key)
			}
		}
	}
}

// Close releases the epoll set; a running Run returns first. The
// descriptors are closed only once no Run is blocked on them: closing the
// eventfd under a blocked epoll_wait would remove it from the set and lose
// the wake.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	done := w.running
	if done == nil {
		w.closeFds()
		w.mu.Unlock()
		return nil
	}
	w.signal()
	w.mu.Unlock()
	<-done
	return nil
}

// closeFds closes the epoll set and the eventfd. Callers hold mu.
func (w *Watcher) closeFds() {
	if w.fdsOff {
		return
	}
	w.fdsOff = true
	unix.Close(w.ep)
	unix.Close(w.wakeFd)
}
