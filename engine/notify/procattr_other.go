//go:build !unix

package notify

import "os/exec"

// inGroup leaves the command's cancel to kill the command alone where there
// are no process groups.
func inGroup(*exec.Cmd) {}
