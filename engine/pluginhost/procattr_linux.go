package pluginhost

import (
	"os/exec"
	"syscall"
)

// setProcAttr has the kernel kill the plugin when the executor dies, even
// by SIGKILL. The signal follows the thread that started the process; Go
// keeps its threads for the life of the process unless a goroutine exits
// while locked to one, which this package never does.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
