package shm

// A child process that must not outlive the process starting it (a helper
// daemon such as the bench's iceoryx RouDi): the kernel signals the child
// when its parent thread exits (PR_SET_PDEATHSIG), even when the parent
// was killed with SIGKILL and ran no clean-up.

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// DieWithParent makes the process cmd starts receive sig when the OS thread
// that starts it exits, which for a Go program is when the program exits.
// The Go runtime may retire an idle thread only if a goroutine locked to it
// exits, but to be exact the caller starts cmd from a goroutine locked to
// its thread (runtime.LockOSThread) and keeps it locked while the child
// lives. Call it before cmd.Start; it keeps cmd's other process attributes.
func DieWithParent(cmd *exec.Cmd, sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("die with parent: %v is not a system signal", sig)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = s
	return nil
}
