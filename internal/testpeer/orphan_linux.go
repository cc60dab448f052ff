package testpeer

import (
	"os/exec"
	"syscall"
)

// DieWithTest has the kernel kill cmd when the test process dies, so a
// test that panics on its timeout (no cleanups run then) leaves no server
// or build behind.
func DieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
