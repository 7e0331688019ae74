package shm

// The attach socket. Invariants kept by this file:
//   - At most one Listener per path on a host: Listen takes an exclusive
//     flock on path+".lock" for the Listener's lifetime. The kernel drops
//     the lock when the owner dies, so a socket file left by a crashed
//     owner is recognised (lock free, connect refused) and replaced, and a
//     restart never needs a manual cleanup.
//   - Received descriptors are close-on-exec (the net package receives with
//     MSG_CMSG_CLOEXEC) and every descriptor beyond what the caller asked
//     for is closed, so a peer cannot leak descriptors into us.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrInUse is returned by Listen when a live owner already serves the path.
var ErrInUse = errors.New("socket path in use by a live process")

// Listener accepts attach connections on a Unix stream socket.
type Listener struct {
	ln   *net.UnixListener
	lock *FileLock
	path string
}

// Listen binds a Unix socket at path with the given permission bits,
// replacing a stale socket left by a dead owner.
func Listen(path string, mode os.FileMode) (*Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o770); err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	lock, err := LockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			lock.Close()
			return nil, fmt.Errorf("listen %s: %w: exists and is not a socket", path, ErrInvalid)
		}
		// We hold the lock, so whoever made this socket is gone (or never
		// used the lock). A successful connect means someone still serves it.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			lock.Close()
			return nil, fmt.Errorf("listen %s: %w", path, ErrInUse)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			lock.Close()
			return nil, fmt.Errorf("listen %s: remove stale socket: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		lock.Close()
		return nil, fmt.Errorf("listen %s: chmod: %w", path, err)
	}
	return &Listener{ln: ln, lock: lock, path: path}, nil
}

// Path is the socket's filesystem path.
func (l *Listener) Path() string { return l.path }

// Accept waits for the next connection.
func (l *Listener) Accept() (*Conn, error) {
	c, err := l.ln.AcceptUnix()
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("accept: %w", err)
	}
	return &Conn{c: c}, nil
}

// Close stops listening, removes the socket file, then removes the lock
// file and releases the lock (in that order, docs/LAYOUT.md 6.1): a clean
// close leaves nothing behind.
func (l *Listener) Close() error {
	err := l.ln.Close()
	return errors.Join(err, l.lock.Remove())
}

// Conn is one attach connection. It stays open for the peer's lifetime:
// its end is how each side learns that the other is gone.
type Conn struct {
	c *net.UnixConn
}

// Dial connects to the socket at path. No socket there wraps
// ErrNoListener (no such ring); a socket nobody serves (left by a crashed
// owner) wraps ErrRefused.
func Dial(path string) (*Conn, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT):
			return nil, fmt.Errorf("dial %s: %w", path, ErrNoListener)
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("dial %s: %w", path, ErrRefused)
		}
		return nil, fmt.Errorf("dial %s: %w", path, err)
	}
	return &Conn{c: c}, nil
}

// PeerCred is the identity of the process at the other end, as the kernel
// recorded it at connect time.
type PeerCred struct {
	Pid, UID, GID int
}

// Peer returns the peer's credentials (SO_PEERCRED).
func (c *Conn) Peer() (PeerCred, error) {
	var cred *unix.Ucred
	var serr error
	if err := c.control(func(fd int) {
		cred, serr = unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return PeerCred{}, err
	}
	if serr != nil {
		return PeerCred{}, fmt.Errorf("peer credentials: %w", serr)
	}
	return PeerCred{Pid: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}

// PeerPidfd returns a pidfd for the peer process. It uses SO_PEERPIDFD,
// which names the very process that connected; on kernels without it, it
// falls back to pidfd_open of the SO_PEERCRED pid (racy only if that pid
// died and was reused in between).
func (c *Conn) PeerPidfd() (*Pidfd, error) {
	cred, err := c.Peer()
	if err != nil {
		return nil, err
	}
	fd := -1
	var serr error
	if err := c.control(func(s int) {
		fd, serr = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		if !errors.Is(serr, unix.ENOPROTOOPT) {
			return nil, fmt.Errorf("peer pidfd: %w", serr)
		}
		return OpenPidfd(cred.Pid)
	}
	return newPidfd(fd, cred.Pid)
}

func (c *Conn) control(fn func(fd int)) error {
	rc, err := c.c.SyscallConn()
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := rc.Control(func(fd uintptr) { fn(int(fd)) }); err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	return nil
}

// Send writes msg with files attached (SCM_RIGHTS). The caller keeps
// ownership of files.
func (c *Conn) Send(msg []byte, files ...*os.File) error {
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	n, oobn, err := c.c.WriteMsgUnix(msg, oob, nil)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if n != len(msg) || oobn != len(oob) {
		return fmt.Errorf("send: %w: short write", ErrPeer)
	}
	return nil
}

// Recv reads one message into buf and returns its length and at most
// maxFiles received descriptors, owned by the caller. Extra descriptors are
// closed and reported as ErrPeer.
func (c *Conn) Recv(buf []byte, maxFiles int) (int, []*os.File, error) {
	oob := make([]byte, unix.CmsgSpace(4*(maxFiles+4)))
	n, oobn, flags, _, err := c.c.ReadMsgUnix(buf, oob)
	if err != nil {
		return n, nil, fmt.Errorf("receive: %w", err)
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return n, nil, fmt.Errorf("receive: %w: %v", ErrPeer, err)
		}
		for _, m := range msgs {
			got, err := unix.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			fds = append(fds, got...)
		}
	}
	if flags&unix.MSG_CTRUNC != 0 || len(fds) > maxFiles {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return n, nil, fmt.Errorf("receive: %w: too many descriptors", ErrPeer)
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("received-fd-%d", i))
	}
	return n, files, nil
}

// Read reads plain bytes (no descriptors); it returns io.EOF when the peer
// closed the connection or died.
func (c *Conn) Read(b []byte) (int, error) { return c.c.Read(b) }

// Pending copies into buf, without consuming them and without waiting, the
// bytes the peer has sent that nobody has read yet; it returns how many.
// A reader blocked in Read on another goroutine may take them at any time:
// Pending sees what is still queued at the moment of the call.
func (c *Conn) Pending(buf []byte) (int, error) {
	var n int
	var rerr error
	err := c.control(func(fd int) {
		n, _, rerr = unix.Recvfrom(fd, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	})
	if err != nil {
		return 0, err
	}
	if errors.Is(rerr, unix.EAGAIN) {
		return 0, nil
	}
	if rerr != nil {
		return 0, fmt.Errorf("peek: %w", rerr)
	}
	return max(n, 0), nil
}

// CloseRead ends the connection's reading side (shutdown(SHUT_RD)) while
// the peer may still hold its end open. On a Unix stream socket the bytes
// the peer sent before are not discarded: Read returns them first, then
// io.EOF, and a Read blocked on another goroutine is woken. The peer's
// later sends fail (EPIPE). On a closed Conn it returns an error.
func (c *Conn) CloseRead() error {
	if err := c.c.CloseRead(); err != nil {
		return fmt.Errorf("close read side: %w", err)
	}
	return nil
}

// SetWriteDeadline bounds the next writes only; a read blocked in another
// goroutine is not affected.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.c.SetWriteDeadline(t) }

// SetDeadline bounds the next reads and writes.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }
