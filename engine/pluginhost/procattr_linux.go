package pluginhost

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts the plugin in a process group of its own, so that
// killing the group also kills what the plugin started, and has the kernel
// kill the plugin when the executor dies, even by SIGKILL. The signal
// follows the thread that started the process; Go keeps its threads for the
// life of the process unless a goroutine exits while locked to one, which
// this package never does.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// execFile makes cmd execute the open file f rather than whatever its path
// names when the process starts: f becomes the child's descriptor 3 and the
// child executes /proc/self/fd/3, which is f's file even if the path was
// replaced since f was opened and hashed. argv[0] stays the path, so the
// plugin sees its own name. The descriptor stays open in the plugin, which
// an interpreter needs to read a script by that name.
func execFile(cmd *exec.Cmd, f *os.File) {
	cmd.ExtraFiles = []*os.File{f}
	cmd.Path = "/proc/self/fd/3"
}

// killGroup kills the plugin's process group: the plugin and every process
// it started that did not leave the group.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
