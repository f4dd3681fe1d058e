//go:build !linux

package pluginhost

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts the plugin in a process group of its own; there is no
// parent-death signal here, but the SDK still exits when its parent
// changes.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// execFile executes the path: without /proc the file cannot be executed by
// descriptor, so a path replaced between the hash and the start is not
// detected here.
func execFile(*exec.Cmd, *os.File) {}

// killGroup kills the plugin's process group.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
