//go:build unix

package notify

import (
	"os/exec"
	"syscall"
)

// inGroup runs the command in a process group of its own and has its
// cancel kill the whole group, so a command that started children leaves
// none behind when its time is up.
func inGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
