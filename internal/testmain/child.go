package testmain

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// HangGuard bounds every wait for a child. It guards against a hang and is
// never a performance bound.
const HangGuard = 60 * time.Second

// Child is the test binary re-executed in a role (see Run). It reports JSON
// objects, one per line on its stdout, which arrive on Lines; its stdin is
// open until Wait closes it (a role may wait for that EOF).
type Child struct {
	Cmd   *exec.Cmd
	Lines chan map[string]any
	Stdin io.WriteCloser
}

// Start re-executes the test binary with env=role (and envs) and no tests
// to run. The child is killed and reaped at cleanup if still running.
func Start(t testing.TB, env, role string, envs ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{env + "=" + role}, envs...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Child{Cmd: cmd, Lines: make(chan map[string]any, 64), Stdin: in}
	go func() {
		defer close(c.Lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 64<<20) // a report may list every sequence number seen
		for sc.Scan() {
			var r map[string]any
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				c.Lines <- r
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return c
}

// Next returns the child's next report, failing the test if the child ends
// first or reports nothing within HangGuard.
func (c *Child) Next(t testing.TB) map[string]any {
	t.Helper()
	select {
	case r, ok := <-c.Lines:
		if !ok {
			t.Fatalf("child %v exited without reporting", c.Cmd.Args)
		}
		return r
	case <-time.After(HangGuard):
		t.Fatalf("child %v reported nothing for %v", c.Cmd.Args, HangGuard)
	}
	return nil
}

// Wait closes the child's stdin and waits for it to exit successfully.
func (c *Child) Wait(t testing.TB) {
	t.Helper()
	c.Stdin.Close()
	if err := c.Cmd.Wait(); err != nil {
		t.Fatalf("child %v: %v", c.Cmd.Args, err)
	}
}

// Kill9 kills the child with SIGKILL and reaps it.
func (c *Child) Kill9(t testing.TB) {
	t.Helper()
	if err := c.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.Cmd.Wait()
}

// SmallFS mounts a tmpfs of the given size ("2m") on a fresh directory and
// unmounts it at cleanup: a real filesystem that fills up, for disk-full
// tests. It skips the test when the process may not mount.
func SmallFS(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_ADMIN) to mount a small tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skip("needs CAP_SYS_ADMIN to mount a small tmpfs: ", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
