//go:build !unix

package executor

// processExists cannot tell here: the process counts as alive.
func processExists(int) bool { return true }
