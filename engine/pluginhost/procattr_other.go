//go:build !linux

package pluginhost

import "os/exec"

// setProcAttr does nothing where there is no parent-death signal; the SDK
// still exits when its parent changes.
func setProcAttr(*exec.Cmd) {}
